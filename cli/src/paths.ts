/**
 * Where the cli package lives, found the same way from its sources (src/…/x.ts, run by tsx) and
 * from its bundle (dist/loraforge.mjs): the nearest folder above this module with a package.json.
 */
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

function packageRoot(from: string): string {
  for (let dir = dirname(from); ; dir = dirname(dir)) {
    if (existsSync(join(dir, "package.json"))) return dir;
    if (dirname(dir) === dir) throw new Error(`no package.json above ${from}`);
  }
}

export const CLI_ROOT = packageRoot(fileURLToPath(import.meta.url));
