#!/usr/bin/env node
// The loraforge command: the bundle that scripts/bundle.mjs builds (`npm run build -w @loraforge/cli`).
import { existsSync } from "node:fs";

const bundle = new URL("../dist/loraforge.mjs", import.meta.url);
if (!existsSync(bundle)) {
  console.error(
    "loraforge: cli/dist/loraforge.mjs is not built; run `npm run build -w @loraforge/cli` (or `node scripts/bundle.mjs cli`)",
  );
  process.exit(1);
}
await import(bundle.href);
