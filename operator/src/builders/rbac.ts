// The per-run identity of the trainer pod: a ServiceAccount whose Role allows exactly
// `get` and `patch` on its own LoraFineTune's status (resourceNames), nothing else.

import { GROUP, PLURAL } from "@loraforge/crds";
import { runAccountName, runLabels } from "../naming.ts";
import { type OwnedRun, ownerReference } from "./owner.ts";

export function buildServiceAccount(run: OwnedRun) {
  const name = runAccountName(run.lft.metadata.name);
  return {
    apiVersion: "v1",
    kind: "ServiceAccount",
    metadata: {
      name,
      namespace: run.namespace,
      labels: runLabels(run.lft.metadata.name),
      ownerReferences: [ownerReference(run)],
    },
    // The token is projected into the trainer pod only (automountServiceAccountToken on the pod).
    automountServiceAccountToken: false,
  };
}

export function buildRole(run: OwnedRun) {
  const name = runAccountName(run.lft.metadata.name);
  return {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "Role",
    metadata: {
      name,
      namespace: run.namespace,
      labels: runLabels(run.lft.metadata.name),
      ownerReferences: [ownerReference(run)],
    },
    rules: [
      {
        apiGroups: [GROUP],
        resources: [`${PLURAL}/status`],
        resourceNames: [run.lft.metadata.name],
        verbs: ["get", "patch"],
      },
    ],
  };
}

export function buildRoleBinding(run: OwnedRun) {
  const name = runAccountName(run.lft.metadata.name);
  return {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "RoleBinding",
    metadata: {
      name,
      namespace: run.namespace,
      labels: runLabels(run.lft.metadata.name),
      ownerReferences: [ownerReference(run)],
    },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name },
    subjects: [{ kind: "ServiceAccount", name, namespace: run.namespace }],
  };
}
