#!/usr/bin/env node
// `npm run verify`: generated files are committed, so regenerate each and fail on a diff.
// - the CRD (crds/) and its copy in the Helm chart, from the zod schemas;
// - the Action's bundled dist/, from action/src;
// - TypeScript types of every workspace;
// - lint and format (biome).
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";

const steps = [
  {
    name: "CRD and chart copy are generated from crds/src",
    cmd: ["npx", "tsx", "crds/src/gen/main.ts", "--check"],
  },
  {
    name: "action/dist is built from action/src",
    when: () => existsSync("action/src/main.ts"),
    cmd: [
      "bash",
      "-c",
      "npm run build -w @loraforge/action >/dev/null && git diff --exit-code --stat -- action/dist",
    ],
  },
  {
    name: "TypeScript (strict) in every workspace",
    cmd: ["npm", "run", "typecheck", "--workspaces", "--if-present"],
  },
  { name: "biome lint and format", cmd: ["npx", "biome", "check", "."] },
];

let failed = 0;
for (const step of steps) {
  if (step.when && !step.when()) {
    console.log(`- ${step.name}: nothing to check yet`);
    continue;
  }
  const r = spawnSync(step.cmd[0], step.cmd.slice(1), { stdio: "inherit" });
  const ok = r.status === 0;
  console.log(`${ok ? "✓" : "✗"} ${step.name}`);
  if (!ok) failed++;
}
console.log(
  failed === 0 ? "verify: everything generated is up to date" : `verify: ${failed} check(s) failed`,
);
process.exit(failed === 0 ? 0 : 1);
