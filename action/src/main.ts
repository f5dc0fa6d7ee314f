// Entry point of the bundled action (dist/index.js): reads the runner's environment, builds
// the real clients, runs, and turns any error into a failed step with a clear message.

import { octokitGitHub } from "./github.ts";
import { InputError, type Inputs, readInputs } from "./inputs.ts";
import { connectKube, kubeRunStore } from "./k8s.ts";
import { decodeKubeconfig, kubeconfigSecrets, writeKubeconfig } from "./kubeconfig.ts";
import { actionInput, actionsReporter, type Reporter } from "./reporter.ts";
import { run } from "./run.ts";

function required(name: string): string {
  const v = process.env[name];
  if (!v) throw new InputError(`$${name} is not set: run this as a GitHub Actions step`);
  return v;
}

/**
 * Masks the kubeconfig input's credentials. Called first, before anything could log them; the
 * file is written only when the cluster is needed. A kubeconfig that cannot be read is an
 * error only then (validation needs no cluster).
 */
function maskKubeconfig(inputs: Inputs, reporter: Reporter): string | Error | undefined {
  if (!inputs.kubeconfig) return undefined;
  // A base64 kubeconfig is one line: mask it whole. Either way mask each credential in it.
  if (!inputs.kubeconfig.trim().includes("\n")) reporter.setSecret(inputs.kubeconfig.trim());
  const text = decodeKubeconfig(inputs.kubeconfig);
  try {
    for (const secret of kubeconfigSecrets(text)) reporter.setSecret(secret);
  } catch (error) {
    return error as Error;
  }
  return text;
}

async function main(): Promise<void> {
  const reporter = actionsReporter();
  try {
    const token = actionInput("github-token");
    if (token) reporter.setSecret(token);
    const inputs = readInputs(actionInput);
    const kubeconfig = maskKubeconfig(inputs, reporter);
    let kubeconfigPath: string | undefined;
    await run({
      inputs,
      env: {
        eventName: required("GITHUB_EVENT_NAME"),
        eventPath: required("GITHUB_EVENT_PATH"),
        ...(process.env.GITHUB_REPOSITORY ? { repository: process.env.GITHUB_REPOSITORY } : {}),
      },
      reporter,
      github: octokitGitHub(
        inputs["github-token"],
        process.env.GITHUB_API_URL || "https://api.github.com",
      ),
      openStore: (namespace) => {
        if (kubeconfig instanceof Error) throw kubeconfig;
        if (kubeconfigPath === undefined && kubeconfig !== undefined) {
          kubeconfigPath = writeKubeconfig(kubeconfig);
          reporter.info(`kubeconfig written to ${kubeconfigPath} (mode 0600)`);
        }
        return kubeRunStore(connectKube(kubeconfigPath), namespace);
      },
    });
  } catch (error) {
    const e = error as Error;
    reporter.setFailed(e.name && e.name !== "Error" ? `${e.name}: ${e.message}` : e.message);
  } finally {
    await reporter
      .flush()
      .catch((e: Error) => reporter.warning(`could not write the job summary: ${e.message}`));
  }
}

await main();
