import assert from "node:assert/strict";
import { WireRateLimiter } from "./wire_rate.ts";

Deno.test("a node may send its burst at once, then one report per interval", () => {
  const rate = new WireRateLimiter({ perSecond: 2, burst: 3 });
  assert.deepEqual([0, 0, 0].map(() => rate.take("n1", 0)), [0, 0, 0]);
  assert.equal(rate.take("n1", 0), 500, "the fourth waits half a second");
  assert.equal(rate.take("n1", 200), 300, "a refused report takes nothing");
  assert.equal(rate.take("n1", 500), 0);
  assert.equal(rate.take("n1", 500), 500);
  assert.equal(rate.take("n1", 1000), 0);
});

Deno.test("each node has its own bucket", () => {
  const rate = new WireRateLimiter({ perSecond: 1, burst: 1 });
  assert.equal(rate.take("n1", 0), 0);
  assert.equal(rate.take("n1", 0), 1000);
  assert.equal(rate.take("n2", 0), 0, "n1's excess does not touch n2");
});

Deno.test("a quiet node saves up no more than its burst", () => {
  const rate = new WireRateLimiter({ perSecond: 1, burst: 2 });
  rate.take("n1", 0);
  assert.equal(rate.take("n1", 60_000), 0);
  assert.equal(rate.take("n1", 60_000), 0);
  assert.equal(rate.take("n1", 60_000), 1000);
});

Deno.test("a node evicted for room starts again with a full burst", () => {
  const rate = new WireRateLimiter({ perSecond: 1, burst: 1, nodes: () => 0 });
  for (let i = 0; i < 64; i++) rate.take(`n${i}`, 0);
  assert.equal(rate.take("n0", 0), 1000, "64 buckets are kept at least");
  rate.take("n64", 0);
  assert.equal(rate.take("n1", 0), 0, "n1 was the least recently used");
});

Deno.test("a rate that is not positive is refused", () => {
  assert.throws(
    () => new WireRateLimiter({ perSecond: 0 }),
    /perSecond > 0 and burst >= 1, got 0 and 5/,
  );
});
