// Every relative link in every tracked Markdown file resolves: the file or folder exists,
// and a #anchor names a heading (GitHub's slugs) or an explicit id in the target file.
// Links with a scheme (https:, mailto:) are not fetched: CI has no network.
//
// It lives in the cross-component test workspace so that `npm test` counts it.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, posix } from "node:path";
import { test } from "node:test";

const repo = join(import.meta.dirname, "..", "..", "..", "..");

/**
 * Upstream files kept verbatim beside the assets they came with (provenance, see the
 * folder's SOURCE.txt); the images they show were not copied, so their links stay broken.
 */
const VERBATIM = new Set(["native/golden/assets/stories260K/README.llama2.c64.md"]);

interface Link {
  line: number;
  target: string;
}

/**
 * The text without fenced code blocks (line numbers kept), and inline code blanked out, or
 * with `keepCode` reduced to its text (as a heading renders it).
 */
function prose(text: string, keepCode = false): string[] {
  const lines = text.split("\n");
  let fence: string | undefined;
  return lines.map((line) => {
    const marker = /^\s{0,3}(`{3,}|~{3,})/.exec(line)?.[1];
    if (fence) {
      if (marker && marker[0] === fence[0] && marker.length >= fence.length) fence = undefined;
      return "";
    }
    if (marker) {
      fence = marker;
      return "";
    }
    return line.replace(/(`+)([^`]*?)\1/g, keepCode ? "$2" : "");
  });
}

/** Inline links and images, reference definitions, and HTML href/src attributes. */
export function linksOf(text: string): Link[] {
  const out: Link[] = [];
  prose(text).forEach((line, i) => {
    const add = (target: string | undefined) => {
      if (target) out.push({ line: i + 1, target: target.replace(/^<|>$/g, "") });
    };
    for (const m of line.matchAll(/!?\[[^\]]*\]\(\s*(<[^>]*>|[^)\s]+)(?:\s+"[^"]*")?\s*\)/g))
      add(m[1]);
    const ref = /^\s{0,3}\[[^\]]+\]:\s*(\S+)/.exec(line);
    if (ref) add(ref[1]);
    for (const m of line.matchAll(/\b(?:href|src)="([^"]+)"/g)) add(m[1]);
  });
  return out;
}

/**
 * Repository files that code blocks name (`kubectl apply -f examples/x.yaml`): tokens that
 * start with one of the repository's top-level folders and end in a file extension.
 * Commands are run from the repository root, so that is where they must exist.
 */
export function codePathsOf(text: string, folders: readonly string[]): Link[] {
  const out: Link[] = [];
  const lines = text.split("\n");
  const code = prose(text);
  lines.forEach((line, i) => {
    if (code[i] !== "" || /^\s{0,3}(`{3,}|~{3,})/.test(line)) return; // prose, or a fence
    for (const token of line.split(/[\s"'`()=<>,;|]+/)) {
      const path = token.replace(/^\.\//, "").replace(/[.:]$/, "");
      const top = path.split("/")[0] ?? "";
      if (!folders.includes(top) || /[*?{}$]/.test(path)) continue;
      if (/\/[^/]+\.[A-Za-z0-9]+$/.test(path)) out.push({ line: i + 1, target: path });
    }
  });
  return out;
}

/** GitHub's anchors of a Markdown file: heading slugs (with -1, -2 for repeats) and ids. */
export function anchorsOf(text: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const line of prose(text, true)) {
    const heading = /^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$/.exec(line)?.[1];
    if (heading !== undefined) {
      const rendered = heading
        .replace(/!?\[([^\]]*)\]\([^)]*\)/g, "$1") // a link's text
        .replace(/<[^>]+>/g, ""); // inline HTML
      const slug = rendered
        .toLowerCase()
        .replace(/[^\p{L}\p{N}\p{M}\s_-]/gu, "")
        .replace(/ /g, "-");
      const n = seen.get(slug) ?? 0;
      seen.set(slug, n + 1);
      anchors.add(n === 0 ? slug : `${slug}-${n}`);
    }
    for (const m of line.matchAll(/<a\s+(?:name|id)="([^"]+)"/g)) if (m[1]) anchors.add(m[1]);
  }
  return anchors;
}

/** Problems with the relative links of `file` (a path relative to `root`), one line each. */
export function brokenLinks(root: string, file: string): string[] {
  const text = readFileSync(join(root, file), "utf8");
  const problems: string[] = [];
  for (const { line, target } of linksOf(text)) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith("//")) continue;
    const hash = target.indexOf("#");
    const pathPart = decodeURIComponent(hash >= 0 ? target.slice(0, hash) : target);
    const anchor = hash >= 0 ? decodeURIComponent(target.slice(hash + 1)) : undefined;
    const where = `${file}:${line}: ${target}`;
    // GitHub resolves "/x" from the repository root, anything else from the file's folder.
    const resolved = pathPart.startsWith("/")
      ? posix.normalize(pathPart.slice(1))
      : posix.normalize(posix.join(posix.dirname(file), pathPart));
    if (pathPart !== "") {
      if (resolved.startsWith("..")) {
        problems.push(`${where}: leaves the repository`);
        continue;
      }
      if (!existsSync(join(root, resolved))) {
        problems.push(`${where}: ${resolved} does not exist`);
        continue;
      }
    }
    const targetFile = pathPart === "" ? file : resolved;
    if (
      anchor !== undefined &&
      anchor !== "" &&
      targetFile.endsWith(".md") &&
      statSync(join(root, targetFile)).isFile() &&
      !anchorsOf(readFileSync(join(root, targetFile), "utf8")).has(anchor)
    ) {
      problems.push(`${where}: no heading or id "${anchor}" in ${targetFile}`);
    }
  }
  return problems;
}

function trackedMarkdown(): string[] {
  return execFileSync("git", ["ls-files", "-z", "--", "*.md"], { cwd: repo })
    .toString("utf8")
    .split("\0")
    .filter((f) => f !== "" && existsSync(join(repo, f)));
}

test("the checker finds missing files, folders and anchors, and ignores code and URLs", () => {
  const root = mkdtempSync(join(tmpdir(), "md-links-"));
  try {
    writeFileSync(
      join(root, "GUIDE.md"),
      [
        "# Install the `operator`",
        "## Upgrading CRDs (Helm never does)",
        "## Notes",
        "## Notes",
        '<a id="custom"></a>',
      ].join("\n"),
    );
    writeFileSync(
      join(root, "README.md"),
      [
        "See [the guide](GUIDE.md), [install](GUIDE.md#install-the-operator) and",
        "[upgrades](./GUIDE.md#upgrading-crds-helm-never-does), [again](GUIDE.md#notes-1),",
        "[custom](GUIDE.md#custom), [here](#top), [web](https://example.com/x.md).",
        "# Top",
        "![logo](missing.png) and [gone](docs/GONE.md) and [bad](GUIDE.md#nope)",
        "`[not a link](nowhere.md)`",
        "```",
        "[also not](nowhere.md)",
        "```",
        "[ref]: ./ALSO-GONE.md",
        '<img src="pic.svg">',
      ].join("\n"),
    );
    assert.deepEqual(brokenLinks(root, "README.md"), [
      "README.md:5: missing.png: missing.png does not exist",
      "README.md:5: docs/GONE.md: docs/GONE.md does not exist",
      'README.md:5: GUIDE.md#nope: no heading or id "nope" in GUIDE.md',
      "README.md:10: ./ALSO-GONE.md: ALSO-GONE.md does not exist",
      "README.md:11: pic.svg: pic.svg does not exist",
    ]);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("every relative link in the repository's tracked Markdown files resolves", () => {
  const files = trackedMarkdown();
  assert.ok(files.includes("README.md"), "git ls-files found the Markdown files");
  for (const f of VERBATIM) assert.ok(files.includes(f), `${f} is still tracked (else drop it)`);
  const problems = files.filter((f) => !VERBATIM.has(f)).flatMap((f) => brokenLinks(repo, f));
  assert.deepEqual(problems, [], `broken links:\n${problems.join("\n")}`);
  console.log(`# ${files.length} tracked Markdown files, every relative link resolves`);
});

test("files named in the Markdown files' code blocks exist (e.g. `kubectl apply -f examples/…`)", () => {
  const files = trackedMarkdown();
  const folders = [
    ...new Set(
      execFileSync("git", ["ls-files", "-z"], { cwd: repo })
        .toString("utf8")
        .split("\0")
        .filter((f) => f.includes("/"))
        .map((f) => f.split("/")[0] ?? ""),
    ),
  ];
  assert.deepEqual(
    codePathsOf("```sh\nkubectl apply -f examples/finetune.yaml && ls docs/*.md\n```\n", folders),
    [{ line: 2, target: "examples/finetune.yaml" }],
  );
  const problems = files
    .filter((f) => !VERBATIM.has(f))
    .flatMap((f) =>
      codePathsOf(readFileSync(join(repo, f), "utf8"), folders)
        .filter((l) => !existsSync(join(repo, l.target)))
        .map((l) => `${f}:${l.line}: ${l.target} does not exist`),
    );
  assert.deepEqual(problems, [], `missing files:\n${problems.join("\n")}`);
});
