import assert from "node:assert/strict";
import { ago, formatMs, formatSeconds, timeOfDay } from "./format.ts";

Deno.test("durations read naturally from milliseconds to hours", () => {
  assert.equal(formatSeconds(null), "—");
  assert.equal(formatSeconds(0.038), "38 ms");
  assert.equal(formatSeconds(9.76), "9.8 s");
  assert.equal(formatSeconds(-2.5), "-2.5 s");
  assert.equal(formatSeconds(125), "2 m 05 s");
  assert.equal(formatSeconds(3720), "1 h 02 m");
});

Deno.test("milliseconds keep a precision that fits their size", () => {
  assert.equal(formatMs(0.423), "0.42 ms");
  assert.equal(formatMs(12.34), "12.3 ms");
  assert.equal(formatMs(840.4), "840 ms");
  assert.equal(formatMs(undefined), "—");
});

Deno.test("times of day and ages are formatted from epoch milliseconds", () => {
  const at = new Date(2025, 0, 1, 7, 5, 9).getTime();
  assert.equal(timeOfDay(at), "07:05:09");
  assert.equal(ago(new Date(at).toISOString(), at + 12_000), "12.0 s ago");
  assert.equal(ago(null, at), "never");
});
