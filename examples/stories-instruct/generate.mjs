#!/usr/bin/env node
// Generates the demo's instruction dataset: "Write a story about NAME and THING." -> a short
// story in the simple English of TinyStories (the only English stories260K knows) that uses both.
// Deterministic: the same file every time (a seeded generator, no clock, no randomness source).
//
//   node examples/stories-instruct/generate.mjs > examples/stories-instruct/stories.jsonl
//
// The text is written by this project (CC0 / public domain); no third-party data is used.

const names = [
  ["Lily", "she", "her"],
  ["Tim", "he", "his"],
  ["Sue", "she", "her"],
  ["Ben", "he", "his"],
  ["Mia", "she", "her"],
  ["Max", "he", "his"],
  ["Anna", "she", "her"],
  ["Tom", "he", "his"],
  ["Lucy", "she", "her"],
  ["Sam", "he", "his"],
  ["Amy", "she", "her"],
  ["Jack", "he", "his"],
  ["Zoe", "she", "her"],
  ["Leo", "he", "his"],
  ["Emma", "she", "her"],
  ["Joe", "he", "his"],
];
const things = [
  ["ball", "red"],
  ["kite", "blue"],
  ["dog", "small"],
  ["cat", "soft"],
  ["boat", "little"],
  ["car", "fast"],
  ["cake", "sweet"],
  ["hat", "big"],
  ["book", "old"],
  ["bird", "yellow"],
  ["drum", "loud"],
  ["teddy bear", "brown"],
  ["flower", "pretty"],
  ["box", "shiny"],
  ["truck", "green"],
  ["doll", "pink"],
  ["bike", "new"],
  ["frog", "funny"],
  ["star", "bright"],
  ["cup", "white"],
  ["fish", "orange"],
  ["toy", "special"],
  ["balloon", "purple"],
  ["shell", "tiny"],
];
const places = ["park", "garden", "yard", "forest", "beach", "house"];
const friends = ["mom", "dad", "friend", "sister", "brother"];

const cap = (s) => s[0].toUpperCase() + s.slice(1);

/** Story shapes; each uses the name and the thing more than once. */
const stories = [
  ({ n, p, q, t, a, place, f }) =>
    `Once upon a time, there was a little ${p === "she" ? "girl" : "boy"} named ${n}. ${cap(p)} had a ${a} ${t}. ${n} loved the ${t} very much. Every day, ${p} played with the ${t} in the ${place}. One day, the ${t} was gone. ${n} was sad. ${cap(q)} ${f} helped ${p === "she" ? "her" : "him"} look. They found the ${t} under a tree. ${n} was happy again.`,
  ({ n, p, q, t, a, place, f }) =>
    `One day, ${n} went to the ${place}. There ${p} saw a ${a} ${t}. "What a nice ${t}!" said ${n}. ${cap(p)} took the ${t} home and showed it to ${q} ${f}. "Can I keep the ${t}?" ${n} asked. ${cap(q)} ${f} said yes. ${n} and the ${t} were friends from that day on.`,
  ({ n, p, t, a, place }) =>
    `${n} had a ${a} ${t}. ${cap(p)} wanted to share it. ${cap(p)} went to the ${place} and met a new friend. "Do you want to play with my ${t}?" asked ${n}. The friend smiled and said yes. They played with the ${t} all day. ${n} learned that sharing is fun.`,
  ({ n, p, q, t, a, place, f }) =>
    `Once upon a time, ${n} found a ${a} ${t} in the ${place}. The ${t} was dirty. ${n} wanted to help. ${cap(p)} washed the ${t} with water. Now the ${t} was clean and happy. ${n} smiled. ${cap(q)} ${f} said, "Good job, ${n}!"`,
  ({ n, p, q, t, a, place, f }) =>
    `It was a sunny day. ${n} and ${q} ${f} went to the ${place}. ${n} brought ${q} ${a} ${t}. ${cap(p)} ran and jumped with the ${t}. Then it started to rain. ${n} hid the ${t} under ${q} coat. They ran home. The ${t} was safe and ${n} was glad.`,
  ({ n, q, t, a, place, f }) =>
    `${n} was playing in the ${place} with ${q} ${a} ${t}. Then the wind came and the ${t} went up into a tree. ${n} was sad. ${cap(q)} ${f} came and said, "Let us get it down together." They used a long stick. Soon the ${t} was back. ${n} hugged ${q} ${f} and played with the ${t} again.`,
];

// mulberry32: small, seeded, the same on every platform
function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const rand = rng(260);
const pick = (xs) => xs[Math.floor(rand() * xs.length)];
const lines = [];
for (const [n, p, q] of names) {
  for (const [t, a] of things) {
    const story = pick(stories)({ n, p, q, t, a, place: pick(places), f: pick(friends) });
    const article = /^[aeiou]/.test(t) ? "an" : "a";
    const instruction = pick([
      `Write a story about ${n} and ${article} ${t}.`,
      `Write a short story about ${n} and ${article} ${t}.`,
      `Tell me a story about ${n} and ${article} ${t}.`,
    ]);
    lines.push(JSON.stringify({ instruction, input: "", output: story }));
  }
}
process.stdout.write(`${lines.join("\n")}\n`);
