import assert from "node:assert/strict";
import type { Beat } from "../core/api_types.ts";
import {
  intervalPoints,
  intervalStats,
  quantile,
  transitionsOf,
} from "./stats.ts";

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

function beatAt(seconds: number, interval: number | null): Beat {
  const at = new Date(Date.UTC(2025, 0, 1) + seconds * 1000).toISOString();
  return {
    renewTime: at,
    observedAt: at,
    intervalSeconds: interval,
    holder: "a",
    transition: false,
  };
}

Deno.test("the beat-history line breaks at a silence instead of ramping across it", () => {
  const t0 = Date.UTC(2025, 0, 1);
  const { points, gaps } = intervalPoints([
    beatAt(0, null),
    beatAt(10, 10),
    beatAt(20, 10),
    beatAt(80, 60), // a minute of silence
    beatAt(90, 10),
  ], 10);
  assert.equal(gaps, 1);
  assert.deepEqual(points, [
    { x: t0 + 10_000, y: 10 },
    { x: t0 + 20_000, y: 10 },
    { x: t0 + 50_000, y: null },
    { x: t0 + 80_000, y: 60 },
    { x: t0 + 90_000, y: 10 },
  ]);
});

Deno.test("a beat without an interval inside the history (Earthworm restarted) breaks the line too", () => {
  const { points, gaps } = intervalPoints([
    beatAt(0, null),
    beatAt(10, 10),
    beatAt(15, null),
    beatAt(25, 10),
  ], null);
  assert.equal(gaps, 1);
  assert.deepEqual(points.map((p) => p.y), [10, null, 10]);
});
