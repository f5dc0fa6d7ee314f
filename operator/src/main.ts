// Entry point: `node main.js` (the container) or `tsx src/main.ts`. One top-level catch.

import { ConfigError, configFromEnv } from "./config.ts";
import { createLogger } from "./log.ts";
import { defaultIdentity, Operator } from "./operator.ts";

async function run(): Promise<void> {
  const config = configFromEnv(process.env, defaultIdentity());
  const log = createLogger(config.logLevel, { component: "loraforge-operator" });
  const operator = new Operator(config, log, process.env.KUBECONFIG || undefined, () => {
    log.error("lost leadership; exiting so that a fresh start re-syncs", {});
    process.exit(1);
  });
  const shutdown = (signal: string) => {
    log.info("shutting down", { signal });
    const hard = setTimeout(() => process.exit(0), 10_000);
    hard.unref();
    operator.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once("SIGTERM", () => shutdown("SIGTERM"));
  process.once("SIGINT", () => shutdown("SIGINT"));
  await operator.start();
  log.info("started", {
    namespace: config.watchNamespace || "(all)",
    leaderElection: config.leaderElection.enabled,
    identity: config.leaderElection.identity,
    httpPort: operator.httpPort,
  });
}

run().catch((error: unknown) => {
  const message =
    error instanceof ConfigError || error instanceof Error ? error.message : String(error);
  process.stderr.write(
    `${JSON.stringify({ time: new Date().toISOString(), level: "error", msg: message })}\n`,
  );
  process.exit(1);
});
