// The import graph of cli/src, built from the source files' relative specifiers (`import ...
// from "./x.ts"`, `export ... from "../y.ts"`, type-only imports included), has no cycle.
// A cycle makes a module's exports depend on which file was loaded first.

import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), "../../src");
const SOURCE = /\.(ts|mts|mjs|js)$/;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? sourceFiles(join(dir, e.name))
      : SOURCE.test(e.name)
        ? [join(dir, e.name)]
        : [],
  );
}

/** Relative specifiers of static imports and re-exports (`from "./x"`, `import "./x"`). */
export function relativeImports(source: string): string[] {
  const found: string[] = [];
  const withoutComments = source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
  for (const m of withoutComments.matchAll(
    /(?:^|[;\n])\s*(?:import|export)\b[^;"']*?(?:\bfrom\s*)?["'](\.{1,2}\/[^"']+)["']/g,
  ))
    found.push(m[1] as string);
  return found;
}

export function importGraph(root: string): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sourceFiles(root)) {
    const deps = relativeImports(readFileSync(file, "utf8")).map((s) =>
      relative(root, resolve(dirname(file), s)),
    );
    graph.set(relative(root, file), deps);
  }
  return graph;
}

/** Every elementary cycle found by a depth-first search, each once, as "a → b → a". */
export function findCycles(graph: Map<string, string[]>): string[] {
  const cycles = new Set<string>();
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const visit = (node: string) => {
    state.set(node, "open");
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      if (state.get(next) === "open") {
        const loop = stack.slice(stack.indexOf(next));
        // rotate so that the smallest name leads, to report each cycle once
        const start = loop.indexOf([...loop].sort()[0] as string);
        const rotated = [...loop.slice(start), ...loop.slice(0, start)];
        cycles.add([...rotated, rotated[0]].join(" → "));
      } else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(node, "done");
  };
  for (const node of [...graph.keys()].sort()) if (!state.has(node)) visit(node);
  return [...cycles].sort();
}

test("relativeImports reads import, import type, export from and side-effect imports", () => {
  const src = [
    'import { a } from "./a.ts";',
    'import type { B } from "../b.ts";',
    "import {\n  c,\n  d,\n} from './c.ts';",
    'export { e } from "./e.ts";',
    'export * from "./f.ts";',
    'import "./g.ts";',
    'import { z } from "zod";',
    '// import { h } from "./h.ts";',
    "const s = \"import x from './not.ts'\";",
  ].join("\n");
  assert.deepEqual(relativeImports(src), [
    "./a.ts",
    "../b.ts",
    "./c.ts",
    "./e.ts",
    "./f.ts",
    "./g.ts",
  ]);
});

test("findCycles finds a cycle and reports it once", () => {
  const graph = new Map([
    ["main.ts", ["cmd.ts", "leaf.ts"]],
    ["cmd.ts", ["pipe.ts"]],
    ["pipe.ts", ["main.ts", "leaf.ts"]],
    ["leaf.ts", []],
  ]);
  assert.deepEqual(findCycles(graph), ["cmd.ts → pipe.ts → main.ts → cmd.ts"]);
  assert.deepEqual(
    findCycles(
      new Map([
        ["a.ts", ["b.ts"]],
        ["b.ts", []],
      ]),
    ),
    [],
  );
});

test("cli/src has no import cycle", () => {
  const graph = importGraph(SRC);
  assert.ok(graph.size > 50, `read ${graph.size} files under ${SRC}`);
  assert.ok(graph.get("main.ts")?.includes("commands/job.ts"), "main.ts imports the command table");
  const cycles = findCycles(graph);
  assert.deepEqual(cycles, [], `import cycles in cli/src:\n  ${cycles.join("\n  ")}`);
});
