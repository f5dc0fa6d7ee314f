#!/usr/bin/env node
// Prints the images' table for docs/IMAGES.md: reference, manifest digest, compressed size per
// layer, and the pinned Debian packages of each base (building what is not cached yet).
//
//   node images/report.mjs [name ...]
import { ensureImages } from "./build.mjs";

const mb = (n) => `${(n / 1e6).toFixed(1)} MB`;
const images = await ensureImages(process.argv.slice(2).length ? process.argv.slice(2) : undefined);
console.log("| image | reference | manifest digest | compressed size | layers |");
console.log("| --- | --- | --- | --- | --- |");
for (const i of images)
  console.log(
    `| ${i.name} | \`${i.ref}\` | \`${i.digest}\` | ${mb(i.size)} | ${i.layers.map((l) => `${l.name} ${mb(l.size)}`).join(", ")} |`,
  );
for (const i of images) {
  console.log(
    `\n<details><summary>${i.name}: Debian packages in the base (${i.packages.length})</summary>\n`,
  );
  console.log(i.packages.join(" "));
  console.log("\n</details>");
}
