/**
 * Heap the episode book holds at its bound: 10,000 closed episodes of late
 * nodes without wire data (what kwok's late renewals leave on a loaded test
 * cluster), each opened, diagnosed again and closed as the hub does it. A
 * script that prints figures, not part of `deno task bench`:
 *
 *   deno run -A --v8-flags=--expose-gc tests/bench/episode_memory.ts [--episodes 10000] [--nodes 5000]
 *
 * Reads the V8 heap after two full collections before the book is filled
 * and after, and prints the difference: the bytes each kept episode costs,
 * against the length of its JSON (what keeping it whole as text would hold).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { EpisodeBook } from "../../server/episodes.ts";
import { diagnoseHeart } from "../../server/diagnosis.ts";

const args = parseArgs({
  args: Deno.args,
  options: {
    episodes: { type: "string", default: "10000" },
    nodes: { type: "string", default: "5000" },
  },
});
const episodes = Number(args.values.episodes);
const nodes = Number(args.values.nodes);
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) {
  console.error(
    "episode_memory: run with --v8-flags=--expose-gc (the heap is read after full collections)",
  );
  Deno.exit(2);
}

function collected(): number {
  gc!();
  gc!();
  return Deno.memoryUsage().heapUsed;
}

const before = collected();
const book = new EpisodeBook({ maxTotal: episodes });
const t0 = Date.parse("2026-12-02T19:00:00Z");
for (let i = 0; i < episodes; i++) {
  const name = `kwok-node-${i % nodes}`;
  const id = `kube-node-lease/${name}`;
  const at = t0 + i * 100;
  const heart = {
    kind: "node" as const,
    name,
    holder: name,
    holderAtStart: name,
    silentSince: at - 20_000 - (i % 1000),
    recentIntervals: [],
    version: String(1000 + i),
  };
  book.record(id, at, "late", diagnoseHeart(heart, null, at), at, { id });
  const end = at + 1000 + (i % 3000);
  book.record(id, end, "late", diagnoseHeart(heart, null, end), end);
  book.close(id, end);
}
const after = collected();
const json = JSON.stringify(book.list("kube-node-lease/kwok-node-7")[0]);
console.log(
  `${book.size} closed episodes of ${nodes} late nodes: ${
    ((after - before) / 1048576).toFixed(2)
  } MiB of heap, ${
    Math.round((after - before) / book.size)
  } B each (an episode's JSON: ${json.length} B)`,
);
