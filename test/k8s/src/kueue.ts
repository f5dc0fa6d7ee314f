// A real Kueue for tests: the controller manager built from the Go module sigs.k8s.io/kueue
// (pinned in kueuebin/go.mod), its CRDs applied from the same module, its webhooks served on
// 127.0.0.1 with a certificate made here and registered with the API server, configured for
// batch/v1 Jobs only (manageJobsWithoutQueueName: false). One Kueue per cluster: stop()
// removes the webhook configurations again, so the cluster stays usable without it.

import { spawnSync } from "node:child_process";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { KubeClient } from "@loraforge/kube";
import { parseAllDocuments, stringify } from "yaml";
import { z } from "zod";
import {
  type GoBuild,
  goBuildCached,
  goBuildKey,
  type Log,
  loraforgeCacheDir,
} from "./binaries.ts";
import { eventually } from "./eventually.ts";
import { type Connection, renderKubeconfig } from "./kubeconfig.ts";
import {
  type Component,
  freePort,
  launch,
  startWatchdog,
  terminate,
  waitReady,
} from "./processes.ts";

export const KUEUEBIN_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "..", "kueuebin");
const MODULE = "sigs.k8s.io/kueue";

/** The Kueue release kueuebin/go.mod pins, e.g. "v0.17.0". */
export function pinnedKueueVersion(): string {
  const goMod = readFileSync(join(KUEUEBIN_DIR, "go.mod"), "utf8");
  const match = /^\s*sigs\.k8s\.io\/kueue (v\d+\.\d+\.\d+)\b/m.exec(goMod);
  if (!match?.[1]) throw new Error(`${join(KUEUEBIN_DIR, "go.mod")}: no "${MODULE} vX.Y.Z" line`);
  return match[1];
}

/** The module's directory in the Go module cache (downloaded through the proxy if absent). */
function moduleSourceDir(version: string): string {
  const r = spawnSync("go", ["mod", "download", "-json", `${MODULE}@${version}`], {
    cwd: KUEUEBIN_DIR,
    env: { ...process.env, GOTOOLCHAIN: "local" },
    encoding: "utf8",
  });
  if (r.status !== 0) {
    throw new Error(`go mod download ${MODULE}@${version} failed:\n${r.stdout}${r.stderr}`);
  }
  return z.object({ Dir: z.string() }).parse(JSON.parse(r.stdout)).Dir;
}

function kueueBuild(version: string): GoBuild {
  return {
    label: "kueue",
    moduleDir: KUEUEBIN_DIR,
    packages: [{ pkg: `${MODULE}/cmd/kueue`, goName: "kueue", name: "kueue" }],
    ldflags: `-s -w -X ${MODULE}/pkg/version.GitVersion=${version}`,
    // The CRDs and webhook manifests travel with the binary, so a started cluster needs no Go.
    finish: (staging) => {
      const source = moduleSourceDir(version);
      cpSync(join(source, "config", "components", "crd", "bases"), join(staging, "crds"), {
        recursive: true,
      });
      cpSync(
        join(source, "config", "components", "webhook", "manifests.yaml"),
        join(staging, "webhook-manifests.yaml"),
      );
    },
    extraFiles: ["crds", "webhook-manifests.yaml"],
    coldNote: "cold: about 3 min of 2 cores, 2 GB peak memory; later runs reuse the cache",
  };
}

export interface KueueInstall {
  dir: string;
  binary: string;
  crdDir: string;
  webhookManifests: string;
  version: string;
}

/**
 * Kueue's controller manager, CRDs and webhook manifests, built once into
 * ~/.cache/loraforge/kueue/<version>-<hash of go.mod, go.sum, Go version, flags>/.
 */
export async function ensureKueue(
  log: Log = (l) => process.stderr.write(`${l}\n`),
): Promise<KueueInstall> {
  const version = pinnedKueueVersion();
  const build = kueueBuild(version);
  const dir = join(loraforgeCacheDir("kueue"), `${version}-${goBuildKey(build)}`);
  await goBuildCached(build, dir, log);
  return {
    dir,
    binary: join(dir, "kueue"),
    crdDir: join(dir, "crds"),
    webhookManifests: join(dir, "webhook-manifests.yaml"),
    version,
  };
}

// ── certificates ─────────────────────────────────────────────────────────────────────

function openssl(args: string[], cwd: string) {
  const r = spawnSync("openssl", args, { cwd, encoding: "utf8" });
  if (r.error || r.status !== 0) {
    throw new Error(
      `openssl ${args.join(" ")} failed (openssl is needed for Kueue's webhook certificate): ` +
        `${r.error?.message ?? r.stderr}`,
    );
  }
}

/** A CA, and tls.crt/tls.key for 127.0.0.1 signed by it, in `dir`. Returns the CA's PEM. */
function makeServingCertificate(dir: string): string {
  mkdirSync(dir, { recursive: true });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  openssl(
    ["req", "-x509", ...ec, "-days", "2", "-subj", "/CN=loraforge-test-kueue-ca"].concat([
      "-keyout",
      "ca.key",
      "-out",
      "ca.crt",
    ]),
    dir,
  );
  openssl(["req", ...ec, "-subj", "/CN=127.0.0.1", "-keyout", "tls.key", "-out", "tls.csr"], dir);
  writeFileSync(join(dir, "san.ext"), "subjectAltName=IP:127.0.0.1\n");
  openssl(
    [
      "x509",
      "-req",
      "-in",
      "tls.csr",
      "-CA",
      "ca.crt",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
    ].concat(["-days", "2", "-extfile", "san.ext", "-out", "tls.crt"]),
    dir,
  );
  return readFileSync(join(dir, "ca.crt"), "utf8");
}

/**
 * Kueue v0.17 reads its metrics certificate from this fixed path whenever it does not manage
 * certificates itself, and exits if the files are missing, even with metrics off (as here).
 * The files are never served; they only have to parse. Made once per machine, atomically.
 */
const METRICS_CERT_DIR = "/etc/kueue/metrics/certs";

function ensureMetricsCertificate() {
  if (existsSync(join(METRICS_CERT_DIR, "tls.crt"))) return;
  const staging = mkdtempSync(join(tmpdir(), "kueue-metrics-cert-"));
  openssl(
    ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
      .concat(["-days", "3650", "-subj", "/CN=kueue-metrics-unused"])
      .concat(["-keyout", "tls.key", "-out", "tls.crt"]),
    staging,
  );
  try {
    mkdirSync(dirname(METRICS_CERT_DIR), { recursive: true });
    renameSync(staging, METRICS_CERT_DIR);
  } catch (error) {
    rmSync(staging, { recursive: true, force: true });
    if (!existsSync(join(METRICS_CERT_DIR, "tls.crt"))) {
      throw new Error(
        `Kueue needs ${METRICS_CERT_DIR}/tls.{crt,key} (a fixed path in its main.go) and it ` +
          `could not be made: ${error instanceof Error ? error.message : error}`,
      );
    }
  }
}

// ── CRDs and webhook configurations ──────────────────────────────────────────────────

const CrdDoc = z.object({
  metadata: z.object({ name: z.string() }),
  spec: z.object({
    group: z.string(),
    names: z.object({ plural: z.string() }),
    versions: z.array(z.object({ name: z.string(), storage: z.boolean() })),
  }),
});

async function applyCrds(client: KubeClient, crdDir: string) {
  const crds = readdirSync(crdDir)
    .filter((f) => f.endsWith(".yaml"))
    .map((f) => {
      const raw: unknown = parseAllDocuments(readFileSync(join(crdDir, f), "utf8"))[0]?.toJS();
      const parsed = CrdDoc.safeParse(raw);
      if (!parsed.success)
        throw new Error(`${join(crdDir, f)}: not a CRD: ${parsed.error.message}`);
      return { raw, crd: parsed.data };
    });
  for (const { raw, crd } of crds) {
    await client.patch(
      `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata.name}?fieldManager=loraforge-tests&force=true`,
      raw,
      "apply",
    );
  }
  for (const { crd } of crds) {
    const storage = crd.spec.versions.find((v) => v.storage)?.name;
    await eventually(`CRD ${crd.metadata.name} to be served`, async () => {
      const r = await client.request(
        "GET",
        `/apis/${crd.spec.group}/${storage}/${crd.spec.names.plural}?limit=1`,
      );
      return r.status === 200 ? true : undefined;
    });
  }
  // Served is not yet discoverable: Kueue maps kinds through the aggregated discovery document,
  // which the API server updates a moment later, and exits at start-up ("no matches for kind
  // Workload") if one is missing there (seen on this machine).
  const wanted = crds.map(({ crd }) => ({
    group: crd.spec.group,
    version: crd.spec.versions.find((v) => v.storage)?.name,
    plural: crd.spec.names.plural,
  }));
  await eventually("Kueue's kinds in the API server's aggregated discovery", async () => {
    const doc = AggregatedDiscovery.parse(
      await client.getAs(
        "/apis",
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
      ),
    );
    const missing = wanted.filter(
      (w) =>
        !doc.items
          .find((g) => g.metadata.name === w.group)
          ?.versions.find((v) => v.version === w.version)
          ?.resources.some((r) => r.resource === w.plural),
    );
    if (missing.length === 0) return true;
    throw new Error(
      `not yet listed: ${missing.map((m) => `${m.plural}.${m.group}/${m.version}`).join(", ")}`,
    );
  });
}

const AggregatedDiscovery = z.object({
  items: z.array(
    z.object({
      metadata: z.object({ name: z.string() }),
      versions: z.array(
        z.object({
          version: z.string(),
          resources: z.array(z.object({ resource: z.string() })).default([]),
        }),
      ),
    }),
  ),
});

const Webhook = z
  .object({
    name: z.string(),
    clientConfig: z.object({ service: z.object({ path: z.string() }).passthrough() }),
    rules: z.array(
      z.object({ apiGroups: z.array(z.string()), resources: z.array(z.string()) }).passthrough(),
    ),
  })
  .passthrough();
const WebhookConfiguration = z.object({
  kind: z.enum(["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"]),
  webhooks: z.array(Webhook),
});

/** Kueue's own kinds, and batch/v1 Jobs: the webhooks of the integrations this Kueue runs. */
function servedHere(rule: { apiGroups: string[]; resources: string[] }): boolean {
  if (rule.apiGroups.every((g) => g === "kueue.x-k8s.io")) return true;
  return rule.apiGroups.every((g) => g === "batch") && rule.resources.every((r) => r === "jobs");
}

export const WEBHOOK_CONFIGURATION_NAMES = {
  MutatingWebhookConfiguration: "loraforge-test-kueue-mutating",
  ValidatingWebhookConfiguration: "loraforge-test-kueue-validating",
} as const;

const webhookPath = (kind: keyof typeof WEBHOOK_CONFIGURATION_NAMES) =>
  `/apis/admissionregistration.k8s.io/v1/${kind === "MutatingWebhookConfiguration" ? "mutating" : "validating"}webhookconfigurations/${WEBHOOK_CONFIGURATION_NAMES[kind]}`;

/**
 * Kueue's webhook manifests (config/components/webhook/manifests.yaml), each service
 * reference turned into https://127.0.0.1:<port><path> with our CA.
 */
export function webhookConfigurations(manifestsFile: string, port: number, caPem: string) {
  return parseAllDocuments(readFileSync(manifestsFile, "utf8")).map((doc, index) => {
    const parsed = WebhookConfiguration.safeParse(doc.toJS());
    if (!parsed.success) {
      throw new Error(`${manifestsFile}: document ${index + 1}: ${parsed.error.message}`);
    }
    const { kind, webhooks } = parsed.data;
    return {
      apiVersion: "admissionregistration.k8s.io/v1",
      kind,
      metadata: { name: WEBHOOK_CONFIGURATION_NAMES[kind] },
      webhooks: webhooks
        .filter((w) => w.rules.every(servedHere))
        .map(({ clientConfig, ...w }) => ({
          ...w,
          clientConfig: {
            url: `https://127.0.0.1:${port}${clientConfig.service.path}`,
            caBundle: Buffer.from(caPem).toString("base64"),
          },
        })),
    };
  });
}

// ── the controller manager ───────────────────────────────────────────────────────────

export interface KueueOptions {
  log?: Log;
  /** Readiness deadline (default 180 s). */
  startTimeoutMs?: number;
}

export interface RunningKueue {
  version: string;
  logPath: string;
  /** Seconds from the call to a Kueue whose webhooks answer (binary already built). */
  startSeconds: number;
  stop(): Promise<void>;
}

const NAMESPACE = "kueue-system";

/** Starts Kueue against `cluster` (which needs kube-controller-manager for Jobs to run). */
export async function startKueue(
  cluster: Connection & { client: KubeClient },
  options: KueueOptions = {},
): Promise<RunningKueue> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const timeoutMs = options.startTimeoutMs ?? 180_000;
  const install = await ensureKueue(log);
  ensureMetricsCertificate();
  const started = Date.now();
  const { client } = cluster;
  const dir = mkdtempSync(join(tmpdir(), "loraforge-kueue-"));
  let kueue: Component | undefined;
  let watchdog: ReturnType<typeof startWatchdog> | undefined;
  const removeWebhooks = async () => {
    for (const kind of Object.keys(
      WEBHOOK_CONFIGURATION_NAMES,
    ) as (keyof typeof WEBHOOK_CONFIGURATION_NAMES)[]) {
      await client.request("DELETE", webhookPath(kind));
    }
  };
  const stop = async () => {
    // Webhooks first: with failurePolicy Fail they would refuse every Job once Kueue is gone.
    await removeWebhooks().catch(() => {});
    if (kueue) await terminate(kueue);
    watchdog?.kill("SIGKILL");
    if (!process.env.LORAFORGE_K8S_KEEP) rmSync(dir, { recursive: true, force: true });
  };
  try {
    await applyCrds(client, install.crdDir);
    const ns = await client.request("POST", "/api/v1/namespaces", {
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name: NAMESPACE },
    });
    if (ns.status !== 201 && ns.status !== 409) {
      throw new Error(`creating namespace ${NAMESPACE}: ${ns.status} ${JSON.stringify(ns.body)}`);
    }

    const certDir = join(dir, "webhook-certs");
    const caPem = makeServingCertificate(certDir);
    const [webhookPort, healthPort] = await Promise.all([freePort(), freePort()]);
    const config = {
      apiVersion: "config.kueue.x-k8s.io/v1beta2",
      kind: "Configuration",
      namespace: NAMESPACE,
      manageJobsWithoutQueueName: false,
      health: { healthProbeBindAddress: `127.0.0.1:${healthPort}` },
      metrics: { bindAddress: "0" }, // off
      webhook: { host: "127.0.0.1", port: webhookPort, certDir },
      leaderElection: { leaderElect: false },
      internalCertManagement: { enable: false }, // the certificate above instead
      integrations: { frameworks: ["batch/job"] },
      // The visibility API is an aggregated API server: it would need an APIService the
      // API server reaches through a Service, which this harness has no network for.
      featureGates: { VisibilityOnDemand: false },
    };
    writeFileSync(join(dir, "config.yaml"), stringify(config));
    writeFileSync(join(dir, "kubeconfig.yaml"), renderKubeconfig(cluster), { mode: 0o600 });

    kueue = launch(
      "kueue",
      install.binary,
      [`--config=${join(dir, "config.yaml")}`, `--kubeconfig=${join(dir, "kubeconfig.yaml")}`],
      dir,
    );
    watchdog = startWatchdog(undefined, [kueue]);
    await waitReady(
      kueue,
      async () => {
        const res = await fetch(`http://127.0.0.1:${healthPort}/readyz`).catch(() => undefined);
        return res?.status === 200;
      },
      timeoutMs,
    );
    for (const configuration of webhookConfigurations(
      install.webhookManifests,
      webhookPort,
      caPem,
    )) {
      const kind = configuration.kind;
      await client.patch(
        `${webhookPath(kind)}?fieldManager=loraforge-tests&force=true`,
        configuration,
        "apply",
      );
    }
    // Ready when the API server gets an answer through the webhook (a dry run changes nothing).
    const component = kueue;
    await waitReady(
      component,
      async () => {
        const r = await client.request(
          "POST",
          "/apis/kueue.x-k8s.io/v1beta2/resourceflavors?dryRun=All",
          {
            apiVersion: "kueue.x-k8s.io/v1beta2",
            kind: "ResourceFlavor",
            metadata: { name: "loraforge-webhook-probe" },
          },
        );
        return r.status === 201 || r.status === 409;
      },
      timeoutMs,
    );
    const startSeconds = (Date.now() - started) / 1000;
    log(`[kueue] ${install.version} ready in ${startSeconds.toFixed(1)} s (${dir})`);
    return { version: install.version, logPath: component.logPath, startSeconds, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
