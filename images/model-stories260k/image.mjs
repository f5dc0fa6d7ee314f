// model-stories260k: an example of a model shipped as an image, for a LoraFineTune's
// `baseModel.source.image` ({reference, path: models/stories260K}). The operator copies the
// folder out in an init container that runs this image's own `cp`, so it works on any container
// runtime. The model is stories260K (llama2.c, MIT) imported to the Hugging Face layout by
// `loraforge import llama2c`. Not built by default: `node images/build.mjs model-stories260k`.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const REPO = resolve(import.meta.dirname, "..", "..");
const ASSETS = join(REPO, "..", "shared", "assets", "stories260K");
export const MODEL_PATH = "models/stories260K";

/** The imported model's files, written by the bundled cli into a fresh folder. */
async function importedModel(inputs) {
  const cli = (await inputs.cliBundle()).files.find((f) => f.name === "loraforge.mjs");
  if (!cli) throw new Error("images: the cli bundle has no loraforge.mjs");
  const out = join(mkdtempSync(join(tmpdir(), "lf-model-image-")), "stories260K");
  const r = spawnSync(
    process.execPath,
    [
      cli.path,
      "import",
      "llama2c",
      join(ASSETS, "stories260K.bin"),
      join(ASSETS, "tok512.model"),
      "--out",
      out,
    ],
    { encoding: "utf8" },
  );
  if (r.status !== 0)
    throw new Error(`images: loraforge import llama2c failed (exit ${r.status}):\n${r.stderr}`);
  return readdirSync(out)
    .sort()
    .map((f) => ({ path: `/${MODEL_PATH}/${f}`, from: join(out, f), mode: 0o444 }));
}

/** @type {import("../build.mjs").ImageDefinition} */
export default {
  name: "model-stories260k",
  description: "stories260K (llama2.c) in the Hugging Face layout at /models/stories260K",
  // minbase has coreutils: the init container's `cp -R -L`
  base: { suite: "bookworm", packages: {} },
  layers: async (inputs) => [{ name: "model", files: await importedModel(inputs) }],
  config: {
    entrypoint: ["/bin/ls", "-l", `/${MODEL_PATH}`],
    env: {},
    labels: {},
  },
};
