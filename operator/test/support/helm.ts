// Real Helm for the chart tests: built once from the upstream Go module (helm.sh/helm/v3,
// through the Go module proxy) into the same cache as the Kubernetes test binaries, or
// taken from $LORAFORGE_HELM / PATH.

import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";

export const HELM_VERSION = "v3.22.0";

function cacheRoot(): string {
  if (process.env.LORAFORGE_K8S_BIN_CACHE) return process.env.LORAFORGE_K8S_BIN_CACHE;
  return join(process.env.XDG_CACHE_HOME || join(homedir(), ".cache"), "loraforge");
}

export function helmPath(): string {
  return join(cacheRoot(), `helm-${HELM_VERSION}`, "helm");
}

/** The helm binary, building it (minutes, once) when neither the cache nor PATH has one. */
export function ensureHelm(
  log: (l: string) => void = (l) => process.stderr.write(`${l}\n`),
): string {
  if (process.env.LORAFORGE_HELM) return process.env.LORAFORGE_HELM;
  const cached = helmPath();
  if (existsSync(cached)) return cached;
  const onPath = spawnSync("helm", ["version", "--short"], { encoding: "utf8" });
  if (onPath.status === 0 && onPath.stdout.startsWith("v3.")) return "helm";
  const src = join(cacheRoot(), "helm-src");
  mkdirSync(src, { recursive: true });
  if (!existsSync(join(src, "go.mod"))) {
    writeFileSync(join(src, "go.mod"), "module loraforge.dev/helmbin\n\ngo 1.24\n");
    writeFileSync(
      join(src, "tools.go"),
      '//go:build tools\n\npackage tools\n\nimport _ "helm.sh/helm/v3/cmd/helm"\n',
    );
  }
  log(`[helm] building helm ${HELM_VERSION} from the Go module proxy (once) into ${cached}`);
  const env = { ...process.env, GOTOOLCHAIN: "local", GOFLAGS: "-mod=mod" };
  const get = spawnSync("go", ["get", `helm.sh/helm/v3@${HELM_VERSION}`], {
    cwd: src,
    env,
    encoding: "utf8",
  });
  if (get.status !== 0) throw new Error(`go get helm failed:\n${get.stderr}`);
  const build = spawnSync(
    "nice",
    [
      "go",
      "build",
      "-trimpath",
      "-ldflags",
      `-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}`,
      "-o",
      cached,
      "helm.sh/helm/v3/cmd/helm",
    ],
    { cwd: src, env, encoding: "utf8" },
  );
  if (build.status !== 0) throw new Error(`go build helm failed:\n${build.stderr}`);
  return cached;
}

function helmEnv() {
  return {
    ...process.env,
    HELM_CACHE_HOME: join(cacheRoot(), "helm-home"),
    HELM_CONFIG_HOME: join(cacheRoot(), "helm-home"),
    HELM_DATA_HOME: join(cacheRoot(), "helm-home"),
  };
}

/** Any helm command; the caller decides what its exit status means. */
export function helmRun(helm: string, args: string[]) {
  const r = spawnSync(helm, args, { encoding: "utf8", env: helmEnv() });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** `helm template` → the rendered YAML (extra args e.g. --kube-version of the target cluster). */
export function helmTemplate(
  helm: string,
  release: string,
  chart: string,
  namespace: string,
  sets: Record<string, string>,
  extra: string[] = [],
): string {
  const args = ["template", release, chart, "--namespace", namespace, ...extra];
  for (const [k, v] of Object.entries(sets)) args.push("--set", `${k}=${v}`);
  const r = spawnSync(helm, args, { encoding: "utf8", env: helmEnv() });
  if (r.status !== 0) throw new Error(`helm ${args.join(" ")} failed:\n${r.stderr}`);
  return r.stdout;
}

export type Obj = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  [k: string]: unknown;
};

/** The objects of a multi-document YAML stream (empty documents dropped). */
export function docs(yamlText: string): Obj[] {
  return parseAllDocuments(yamlText)
    .map((d) => d.toJS() as Obj | null)
    .filter((d): d is Obj => d !== null);
}

const PLURALS: Record<string, string> = {
  ServiceAccount: "serviceaccounts",
  ClusterRole: "clusterroles",
  ClusterRoleBinding: "clusterrolebindings",
  Role: "roles",
  RoleBinding: "rolebindings",
  Deployment: "deployments",
  Service: "services",
  CustomResourceDefinition: "customresourcedefinitions",
  ValidatingAdmissionPolicy: "validatingadmissionpolicies",
  ValidatingAdmissionPolicyBinding: "validatingadmissionpolicybindings",
  NetworkPolicy: "networkpolicies",
  PodDisruptionBudget: "poddisruptionbudgets",
  ServiceMonitor: "servicemonitors",
  ResourceFlavor: "resourceflavors",
  ClusterQueue: "clusterqueues",
  LocalQueue: "localqueues",
  WorkloadPriorityClass: "workloadpriorityclasses",
};

/** The REST path of a rendered object. */
export function pathOf(o: Obj): string {
  const [group, version] = o.apiVersion.includes("/")
    ? o.apiVersion.split("/")
    : ["", o.apiVersion];
  const p = PLURALS[o.kind];
  if (!p) throw new Error(`no path for kind ${o.kind}`);
  const base = group ? `/apis/${group}/${version}` : `/api/${version}`;
  const ns = o.metadata.namespace ? `/namespaces/${o.metadata.namespace}` : "";
  return `${base}${ns}/${p}/${o.metadata.name}`;
}
