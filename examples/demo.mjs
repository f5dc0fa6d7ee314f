#!/usr/bin/env node
// `npm run demo`: the first thing to run. Imports stories260K (a 260K-parameter Llama trained on
// TinyStories, from ../shared/assets), fine-tunes a LoRA adapter on CPU to follow "Write a story
// about NAME and THING.", prints the training and validation loss before and after, then
// evaluates base vs fine-tuned on the validation split (metric table, sample answers, eval.json).
// Each step is an ordinary loraforge command, printed before it runs.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { bundle } from "../scripts/bundle.mjs";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
// A fresh machine: the Debian packages the core's build needs and `npm ci`, once.
const { setup } = await import("../scripts/setup.mjs");
await setup("demo").catch((error) => {
  console.error(`set-up failed: ${error.message}`);
  process.exit(1);
});
const assets = resolve(root, process.env.LORAFORGE_ASSETS ?? "../shared/assets");
const cli = join(root, "cli", "bin", "loraforge.mjs");
// bin/ runs the bundle: build it from the sources first (about a second).
await bundle(["cli"]);
const rel = (p) => relative(process.cwd(), p) || ".";

function loraforge(...args) {
  console.log(`\n$ loraforge ${args.join(" ")}`);
  const r = spawnSync(process.execPath, [cli, ...args], { stdio: "inherit", cwd: root });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

const ckpt = join(assets, "stories260K", "stories260K.bin");
if (!existsSync(ckpt)) {
  console.error(`stories260K not found at ${ckpt} (set LORAFORGE_ASSETS to the assets folder)`);
  process.exit(3);
}
function run(cmd, args) {
  console.log(`\n$ ${cmd} ${args.join(" ")}`);
  const r = spawnSync(cmd, args, { stdio: "inherit", cwd: root });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

// A fresh clone has no trainer binary yet: build it (once; later runs find it).
if (!process.env.LORAFORGE_CORE && !existsSync(join(root, "native", "build", "loraforge-core"))) {
  run("cmake", ["-S", "native", "-B", "native/build", "-DCMAKE_BUILD_TYPE=Release"]);
  run("cmake", ["--build", "native/build", "-j2", "--target", "loraforge-core"]);
}

const started = Date.now();
loraforge(
  "import",
  "llama2c",
  rel(ckpt),
  rel(join(assets, "stories260K", "tok512.model")),
  "--out",
  ".cache/models/stories260K",
);
loraforge(
  "validate",
  "examples/stories-instruct/stories.jsonl",
  "--model",
  ".cache/models/stories260K",
  "--template",
  "alpaca_short",
  "--val-set-size",
  "48",
);
loraforge(
  "train",
  "examples/stories260k-demo.yaml",
  "--volume",
  "models=.cache/models",
  "--out",
  ".cache/runs/stories260k-demo",
  ...(process.argv.includes("--fresh") ? ["--fresh"] : []),
);
const runDir = ".cache/runs/stories260k-demo";
console.log(
  `\nthe evaluation is in ${join(runDir, "eval.json")}; run it again with: loraforge eval examples/stories260k-demo.yaml --volume models=.cache/models --out ${runDir}`,
);
// The chat page (cli/src/commands/chat.ts): the same prompt template the demo trained with.
console.log(
  `\ntalk to it in the browser (base/tuned switch, tokens streamed): loraforge chat .cache/models/stories260K --adapter ${join(runDir, "adapter")} --template alpaca_short`,
);
console.log(
  `\ndemo finished in ${((Date.now() - started) / 1000).toFixed(0)} s (run it again to see a completed run; add --fresh to retrain)`,
);
