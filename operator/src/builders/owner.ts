import { API_VERSION, KIND, type LoraFineTune } from "@loraforge/crds";

export interface OwnedRun {
  lft: LoraFineTune;
  /** metadata.uid of the LoraFineTune (the parsed type keeps unknown metadata). */
  uid: string;
  namespace: string;
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller: true;
  blockOwnerDeletion: true;
}

/** The controller owner reference: deleting the LoraFineTune garbage-collects the child. */
export function ownerReference(run: OwnedRun): OwnerReference {
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    name: run.lft.metadata.name,
    uid: run.uid,
    controller: true,
    blockOwnerDeletion: true,
  };
}
