import assert from "node:assert/strict";
import type { Beat } from "../core/api_types.ts";
import { intervalStats, quantile, transitionsOf } from "./stats.ts";

function beat(interval: number | null, holder = "a", transition = false): Beat {
  return {
    renewTime: "2025-01-01T00:00:00Z",
    observedAt: "2025-01-01T00:00:00Z",
    intervalSeconds: interval,
    holder,
    transition,
  };
}

Deno.test("interval statistics ignore the first beat's missing interval", () => {
  const { p95, ...stats } = intervalStats([
    beat(null),
    beat(10),
    beat(12),
    beat(9),
    beat(30),
  ]);
  assert.deepEqual(stats, {
    beats: 5,
    intervals: 4,
    min: 9,
    median: 11,
    max: 30,
  });
  assert.ok(Math.abs(p95! - 27.3) < 1e-9, `p95 ${p95} is 27.3`);
});

Deno.test("interval statistics of no beats are empty", () => {
  assert.deepEqual(intervalStats([]), {
    beats: 0,
    intervals: 0,
    min: null,
    median: null,
    p95: null,
    max: null,
  });
  assert.equal(quantile([4], 0.95), 4);
});

Deno.test("transitions list holder changes newest first with the previous holder", () => {
  const beats = [
    beat(null, "a"),
    beat(10, "a"),
    beat(10, "b", true),
    beat(10, "c", true),
  ];
  assert.deepEqual(transitionsOf(beats).map((t) => [t.from, t.to]), [
    ["b", "c"],
    ["a", "b"],
  ]);
});
