// Where a run's files go inside spec.output: a folder of its own, `<run name>-<uid>`, so two
// runs of one spec (a pull request's and the base branch's, or a run deleted and created again
// under the same name) never share checkpoints. The uid keeps it stable across the Job's
// retries of one run, which resume from that folder.

/** `<name>-<uid>`: the run's own folder under spec.output's path or prefix. */
export function runOutputFolder(name: string, uid: string): string {
  return `${name}-${uid}`;
}

/** The object written last to an s3 output: its presence means every other file is there. */
export const OUTPUT_COMPLETE_MARKER = "loraforge-complete.json";
