// The fine-tune settings come from the BASE branch: the spec file is read through the API at
// the base commit, never from the pull request's checkout, so a PR cannot change the image,
// resources or hyperparameters of the run it triggers.

import { type LoraFineTune, parseLoraFineTune } from "@loraforge/crds";
import { parseAllDocuments } from "yaml";
import type { GitHubApi } from "./github.ts";

export class SpecError extends Error {
  override name = "SpecError";
}

/** Parses the text of a spec file holding exactly one LoraFineTune; `source` names it in errors. */
export function parseSpecText(text: string, source: string): LoraFineTune {
  const docs = parseAllDocuments(text).filter((d) => d.contents !== null);
  if (docs.length !== 1) {
    throw new SpecError(`${source}: expected exactly one YAML document, found ${docs.length}`);
  }
  const doc = docs[0];
  const err = doc?.errors[0];
  if (err) {
    const line = err.linePos?.[0]?.line;
    throw new SpecError(`${source}${line ? `:${line}` : ""}: ${err.message}`);
  }
  return parseLoraFineTune(doc?.toJS(), source);
}

export async function readBaseSpec(
  github: GitHubApi,
  owner: string,
  repo: string,
  path: string,
  sha: string,
): Promise<LoraFineTune> {
  const source = `${path}@${sha.slice(0, 7)}`;
  const bytes = await github.fileAt(owner, repo, path, sha);
  if (bytes === undefined) {
    throw new SpecError(
      `${source}: the base spec does not exist at the base commit (set the spec input to the LoraFineTune file on the base branch)`,
    );
  }
  return parseSpecText(new TextDecoder().decode(bytes), source);
}
