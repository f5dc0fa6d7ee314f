// Where the API server is and who we are to it, as one @kubernetes/client-node KubeConfig:
// from a kubeconfig file, from the pod's service account (in-cluster), or from a plain
// server + CA + token (the test harness). client-node applies the credentials of every
// kind (token, client certificate, exec plugin, ...) to each request.

import { existsSync, readFileSync } from "node:fs";
import { isIPv6 } from "node:net";
import { homedir } from "node:os";
import { delimiter, join } from "node:path";
import { KubeConfig, type User } from "@kubernetes/client-node";

/** The service account directory kubelet mounts into every pod. */
export const SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/** A server, its CA and a bearer token (a literal, or a function that reads the current one). */
export interface Connection {
  /** https://host:port */
  server: string;
  caPem: string;
  token: string | (() => string);
}

/** A kubeconfig could not be loaded; the message names the file or the variable. */
export class KubeConfigError extends Error {
  override name = "KubeConfigError";
}

// A user whose token is read from a file at every request: kubelet rotates projected
// service-account tokens in place, and a request must never go out with one it replaced.
// (client-node's own tokenFile provider keeps a token for 60 s and does not trim it.)
const TOKEN_FILE_PROVIDER = "loraforge-token-file";
const TOKEN_FN_PROVIDER = "loraforge-token-function";

/** Reads a token file: trimmed, non-empty, an error naming the file otherwise. */
export function readTokenFile(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new KubeConfigError(
      `cannot read the service-account token ${file}: ${(e as Error).message}`,
    );
  }
  const token = text.trim();
  if (!token) throw new KubeConfigError(`the service-account token ${file} is empty`);
  return token;
}

const tokenFunctions = new WeakMap<KubeConfig, () => string>();

function withTokenAuth(kc: KubeConfig): KubeConfig {
  kc.addAuthenticator({
    isAuthProvider: (user: User) =>
      user.authProvider?.name === TOKEN_FILE_PROVIDER ||
      user.authProvider?.name === TOKEN_FN_PROVIDER,
    applyAuthentication: async (user: User, opts: { headers?: Record<string, unknown> }) => {
      const provider = user.authProvider;
      const token =
        provider?.name === TOKEN_FILE_PROVIDER
          ? readTokenFile(String(provider.config.path))
          : tokenFunctions.get(kc)?.();
      if (!token) throw new KubeConfigError(`user ${user.name}: no token`);
      opts.headers = { ...opts.headers, Authorization: `Bearer ${token}` };
    },
  });
  return kc;
}

function fromParts(server: string, caPem: string, user: User): KubeConfig {
  const kc = withTokenAuth(new KubeConfig());
  kc.loadFromOptions({
    clusters: [
      {
        name: "cluster",
        server,
        caData: Buffer.from(caPem).toString("base64"),
        skipTLSVerify: false,
      },
    ],
    users: [user],
    contexts: [{ name: "context", cluster: "cluster", user: user.name }],
    currentContext: "context",
  });
  return kc;
}

/** A KubeConfig for a server, its CA and a token. */
export function connectionConfig(c: Connection): KubeConfig {
  if (typeof c.token === "string")
    return fromParts(c.server, c.caPem, { name: "user", token: c.token });
  const kc = fromParts(c.server, c.caPem, {
    name: "user",
    authProvider: { name: TOKEN_FN_PROVIDER, config: {} },
  });
  tokenFunctions.set(kc, c.token);
  return kc;
}

/**
 * The pod's own API server and service account: KUBERNETES_SERVICE_HOST/PORT, `dir`/ca.crt
 * and `dir`/token (re-read at every request). `dir` is LORAFORGE_SA_DIR when set (tests).
 */
export function inClusterConfig(
  env: NodeJS.ProcessEnv = process.env,
  dir = env.LORAFORGE_SA_DIR ?? SA_DIR,
): KubeConfig {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT ?? "443";
  if (!host)
    throw new KubeConfigError(
      "KUBERNETES_SERVICE_HOST is not set: in-cluster configuration needs to run inside a pod",
    );
  if (!/^\d+$/.test(port))
    throw new KubeConfigError(`KUBERNETES_SERVICE_PORT: not a port number: "${port}"`);
  const caFile = `${dir}/ca.crt`;
  let caPem: string;
  try {
    caPem = readFileSync(caFile, "utf8");
  } catch (e) {
    throw new KubeConfigError(`cannot read the cluster CA ${caFile}: ${(e as Error).message}`);
  }
  readTokenFile(`${dir}/token`); // fail now, naming the file, not at the first request
  const server = `https://${isIPv6(host) ? `[${host}]` : host}:${port}`;
  return fromParts(server, caPem, {
    name: "service-account",
    // `path`, not `tokenFile`: client-node's own provider would claim a `tokenFile` user first.
    authProvider: { name: TOKEN_FILE_PROVIDER, config: { path: `${dir}/token` } },
  });
}

/**
 * Finds the cluster the way controller-runtime does: the kubeconfig `file` when given, else
 * the files in $KUBECONFIG (merged, first one wins), else in-cluster when
 * KUBERNETES_SERVICE_HOST is set, else ~/.kube/config. Errors name the file or variable.
 */
export function loadKubeConfig(file?: string, env: NodeJS.ProcessEnv = process.env): KubeConfig {
  const files = file ? [file] : (env.KUBECONFIG ?? "").split(delimiter).filter((f) => f.length > 0);
  if (files.length === 0 && env.KUBERNETES_SERVICE_HOST) return inClusterConfig(env);
  if (files.length === 0) {
    const home = join(env.HOME ?? homedir(), ".kube", "config");
    if (!existsSync(home))
      throw new KubeConfigError(
        `no Kubernetes cluster configured: give a kubeconfig file, set $KUBECONFIG, run in a pod, or write ${home}`,
      );
    files.push(home);
  }
  const where = file ? file : env.KUBECONFIG ? `$KUBECONFIG (${env.KUBECONFIG})` : files[0];
  const kc = withTokenAuth(new KubeConfig());
  for (const [i, f] of files.entries()) {
    try {
      if (i === 0) kc.loadFromFile(f);
      else {
        const more = new KubeConfig();
        more.loadFromFile(f);
        kc.mergeConfig(more, true);
      }
    } catch (e) {
      throw new KubeConfigError(`cannot load the kubeconfig ${f}: ${(e as Error).message}`);
    }
  }
  const cluster = kc.getCurrentCluster();
  if (!cluster)
    throw new KubeConfigError(
      `${where}: no current cluster (current-context "${kc.getCurrentContext()}" names none)`,
    );
  if (!URL.canParse(cluster.server))
    throw new KubeConfigError(
      `${where}: cluster "${cluster.name}": server is not a URL: "${cluster.server}"`,
    );
  return kc;
}
