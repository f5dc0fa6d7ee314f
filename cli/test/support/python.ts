/**
 * The Python of the reference checks: .venv (or $LORAFORGE_PYTHON) with
 * native/golden/requirements.txt installed, which `npm test`'s set-up makes. A test that compares
 * with a Python reference fails when the reference is missing, naming what to install; it never
 * skips or passes without having compared (CI would then show a green check that checked nothing).
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "./helpers.ts";

const INSTALL =
  "python3 -m venv .venv && .venv/bin/pip install -r native/golden/requirements.txt (or: node scripts/setup.mjs test)";

/** The interpreter, after checking that it imports every module named. */
export function referencePython(...modules: string[]): string {
  const python = process.env.LORAFORGE_PYTHON ?? join(REPO_ROOT, ".venv", "bin", "python");
  if (!existsSync(python)) throw new Error(`${python}: no such file; make it with ${INSTALL}`);
  for (const module of modules) {
    const r = spawnSync(python, ["-c", `import ${module}`], { encoding: "utf8" });
    if (r.status !== 0)
      throw new Error(
        `${python} cannot import ${module} (${r.stderr.trim().split("\n").pop()}); install it with ${INSTALL}`,
      );
  }
  return python;
}
