// Whose is an existing object that has the name of one of a run's children? The operator
// only ever changes objects its run controls: anything else with that name (created by a
// user, another controller, or an earlier resource of the same name on its way out) is
// never applied over, so a run cannot borrow an existing ServiceAccount or have a
// stranger's object garbage-collected with it.

import { GROUP, KIND } from "@loraforge/crds";

interface OwnerRef {
  apiVersion?: string;
  kind?: string;
  name?: string;
  uid?: string;
  controller?: boolean;
}

export interface RunIdentity {
  name: string;
  uid: string;
}

export type Ownership =
  | { kind: "ours" }
  /** Controlled by an earlier LoraFineTune of the same name: the garbage collector removes it. */
  | { kind: "earlierRun"; uid: string }
  /** Anything else: not ours to touch. `holder` says who controls it, for the message. */
  | { kind: "foreign"; holder: string };

export function ownershipOf(obj: unknown, run: RunIdentity): Ownership {
  const refs = (obj as { metadata?: { ownerReferences?: OwnerRef[] } } | undefined)?.metadata
    ?.ownerReferences;
  const controller = refs?.find((r) => r.controller === true);
  if (!controller) return { kind: "foreign", holder: "it has no controller" };
  const isRun = controller.kind === KIND && (controller.apiVersion ?? "").split("/")[0] === GROUP;
  if (isRun && controller.uid === run.uid) return { kind: "ours" };
  if (isRun && controller.name === run.name && controller.uid)
    return { kind: "earlierRun", uid: controller.uid };
  return {
    kind: "foreign",
    holder: `its controller is ${controller.kind ?? "?"} ${controller.name ?? "?"} (uid ${controller.uid ?? "?"})`,
  };
}
