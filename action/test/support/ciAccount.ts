// The cluster side of the action as the admin sets it up: examples/ci-rbac.yaml applied in the
// runs' namespace (the file says ml-ci) and a kubeconfig for its ServiceAccount made as the
// file's comment says (a TokenRequest, the server and its CA).

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { type KubeClient, renderKubeconfig } from "@loraforge/test-k8s";
import { parseAllDocuments } from "yaml";
import { z } from "zod";

export const CI_RBAC_EXAMPLE = join(
  import.meta.dirname,
  "..",
  "..",
  "..",
  "examples",
  "ci-rbac.yaml",
);
export const CI_ACCOUNT = "loraforge-ci";

export const CiRbacDoc = z
  .object({
    apiVersion: z.string(),
    kind: z.enum(["ServiceAccount", "Role", "RoleBinding"]),
    metadata: z.object({ name: z.string(), namespace: z.string() }).passthrough(),
    subjects: z.array(z.object({ namespace: z.string().optional() }).passthrough()).optional(),
  })
  .passthrough(); // rules and roleRef go to the server as written
export type CiRbacDoc = z.infer<typeof CiRbacDoc>;

/** The example's objects, moved into `namespace`; `onDoc` sees each as the file has it. */
export function ciRbacObjects(
  namespace: string,
  onDoc: (o: CiRbacDoc) => void = () => {},
): CiRbacDoc[] {
  return parseAllDocuments(readFileSync(CI_RBAC_EXAMPLE, "utf8")).map((d) => {
    const o = CiRbacDoc.parse(d.toJS());
    onDoc(o);
    o.metadata.namespace = namespace;
    for (const s of o.subjects ?? []) s.namespace = namespace;
    return o;
  });
}

export const ciRbacPath = (o: CiRbacDoc) => {
  const ns = o.metadata.namespace;
  return o.kind === "ServiceAccount"
    ? `/api/v1/namespaces/${ns}/serviceaccounts/${o.metadata.name}`
    : `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/${o.kind.toLowerCase()}s/${o.metadata.name}`;
};

/**
 * Applies the example in `namespace` and returns the CI account's connection (`kubectl create
 * token loraforge-ci`) and its kubeconfig, as the repository secret would hold it.
 */
export async function setUpCiAccount(
  admin: KubeClient,
  cluster: { server: string; caPem: string },
  namespace: string,
  fieldManager: string,
) {
  for (const o of ciRbacObjects(namespace))
    await admin.patch(`${ciRbacPath(o)}?fieldManager=${fieldManager}&force=true`, o, "apply");
  const token = z.object({ status: z.object({ token: z.string() }) }).parse(
    await admin.create(`/api/v1/namespaces/${namespace}/serviceaccounts/${CI_ACCOUNT}/token`, {
      apiVersion: "authentication.k8s.io/v1",
      kind: "TokenRequest",
      spec: { expirationSeconds: 3600 },
    }),
  ).status.token;
  const connection = { server: cluster.server, caPem: cluster.caPem, token };
  return { connection, kubeconfig: renderKubeconfig(connection) };
}
