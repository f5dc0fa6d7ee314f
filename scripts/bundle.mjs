#!/usr/bin/env node
// The one build of the three TypeScript entrypoints: each becomes plain ESM for node 20 in its
// package's dist/, so bin/, the images and the GitHub runner run JavaScript, never tsx.
//
//   node scripts/bundle.mjs [cli|operator|action ...]     (no name: all three)
//
// - cli      → cli/dist/loraforge.mjs (+ dist/workerEntry.mjs, the chat's inference worker)
// - operator → operator/dist/operator.mjs
// - action   → action/dist/index.js (committed: `npm run verify` rebuilds it and fails on a diff)
//
// Packages with native code stay external (onnxruntime-node loads a .node addon and its shared
// library from its own folder); whoever ships a bundle ships node_modules/<that package> beside it.
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build } from "esbuild";

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** Packages never bundled: they carry native addons. */
export const EXTERNAL = ["onnxruntime-node"];

// A bundle of CommonJS dependencies inside ESM still calls require() for node builtins.
const REQUIRE_BANNER =
  "import { createRequire as __lfCreateRequire } from 'node:module'; const require = __lfCreateRequire(import.meta.url);";

const COMMON = {
  bundle: true,
  platform: "node",
  target: "node20",
  format: "esm",
  external: EXTERNAL,
  banner: { js: REQUIRE_BANNER },
  logLevel: "warning",
  legalComments: "none",
};

/** One entry per bundle; a package may produce several files (the cli's worker). */
export const BUNDLES = {
  cli: [
    {
      // main() returns the exit code; the bundle is the command itself.
      stdin: {
        contents:
          'import { main } from "./src/main.ts";\nprocess.exitCode = await main(process.argv.slice(2));\n',
        resolveDir: join(REPO, "cli"),
        sourcefile: "cli-entry.ts",
        loader: "ts",
      },
      outfile: join(REPO, "cli", "dist", "loraforge.mjs"),
    },
    {
      // src/chat/inference.ts starts `new URL("./workerEntry.mjs", import.meta.url)`: beside the
      // bundle that is this file, beside the sources it is the tsx shim of the same worker.
      entryPoints: [join(REPO, "cli", "src", "chat", "worker.ts")],
      outfile: join(REPO, "cli", "dist", "workerEntry.mjs"),
    },
  ],
  operator: [
    {
      entryPoints: [join(REPO, "operator", "src", "main.ts")],
      outfile: join(REPO, "operator", "dist", "operator.mjs"),
    },
  ],
  action: [
    {
      entryPoints: [join(REPO, "action", "src", "main.ts")],
      outfile: join(REPO, "action", "dist", "index.js"),
      // Committed: keep it small and diffable.
      minifySyntax: true,
      minifyWhitespace: true,
    },
  ],
};

/** Bundles the named packages; returns the files written. */
export async function bundle(names = Object.keys(BUNDLES)) {
  const written = [];
  for (const name of names) {
    const entries = BUNDLES[name];
    if (!entries)
      throw new Error(
        `scripts/bundle.mjs: unknown bundle "${name}" (known: ${Object.keys(BUNDLES).join(", ")})`,
      );
    for (const entry of entries) {
      await build({ ...COMMON, ...entry });
      written.push(entry.outfile);
    }
  }
  return written;
}

/** The cli bundle's path, built first when it is missing (tests and the demo call this). */
export async function cliBundle() {
  const out = BUNDLES.cli[0].outfile;
  if (!existsSync(out) || !existsSync(BUNDLES.cli[1].outfile)) await bundle(["cli"]);
  return out;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  try {
    for (const f of await bundle(process.argv.slice(2).length ? process.argv.slice(2) : undefined))
      console.log(`bundled ${f.slice(REPO.length + 1)}`);
  } catch (e) {
    console.error(e instanceof Error ? e.message : String(e));
    process.exitCode = 1;
  }
}
