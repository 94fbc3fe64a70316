import assert from "node:assert/strict";
import { monoToIso, WireAggregator } from "./wire_aggregator.ts";
import { rawEvent } from "./_test_events.ts";

const offset = Date.parse("2026-01-01T00:00:00Z") - 1000; // mono 1 s == 2026-01-01T00:00:00Z

Deno.test("an exchange event becomes a WireExchange with wall time and latency", () => {
  const agg = new WireAggregator({
    node: "node-1",
    monoToWallOffsetMs: offset,
  });
  assert.equal(agg.add(rawEvent({ kind: "track" })), null);
  const x = agg.add(rawEvent({
    tsNs: 2_000_000_000n,
    startNs: 1_000_000_000n,
    firstRxNs: 1_002_345_678n,
    lastRxNs: 1_003_000_000n,
    bytesSent: 612,
    bytesReceived: 1500,
    srttUs: 420,
    retrans: 1,
  }));
  assert.deepEqual(x, {
    node: "node-1",
    conn: "127.0.0.1:50000->127.0.0.1:6443",
    at: "2026-01-01T00:00:00.000Z",
    latencyMs: 2.346,
    bytesSent: 612,
    bytesReceived: 1500,
    srttUs: 420,
    retransmits: 1,
    resets: 0,
  });
});

Deno.test("resets count once, on the first exchange after them", () => {
  const agg = new WireAggregator({ node: "n", monoToWallOffsetMs: 0 });
  agg.add(rawEvent({ kind: "reset", resets: 1, resetDirection: "received" }));
  const first = agg.add(rawEvent({ startNs: 1n, firstRxNs: 2n, resets: 1 }));
  const second = agg.add(rawEvent({ startNs: 3n, firstRxNs: 4n, resets: 1 }));
  assert.equal(first?.resets, 1);
  assert.equal(second?.resets, 0);
});

Deno.test("an unanswered exchange lasts until it was given up and received nothing", () => {
  const agg = new WireAggregator({ node: "n", monoToWallOffsetMs: 0 });
  const x = agg.add(
    rawEvent({ tsNs: 5_500_000n, startNs: 500_000n, bytesSent: 100 }),
  );
  assert.equal(x?.latencyMs, 5);
  assert.equal(x?.bytesReceived, 0);
});

Deno.test("closed connections are forgotten and the remembered set stays bounded", () => {
  const agg = new WireAggregator({
    node: "n",
    monoToWallOffsetMs: 0,
    maxConnections: 3,
  });
  for (let i = 0n; i < 10n; i++) {
    agg.add(rawEvent({ kind: "track", cookie: i }));
  }
  assert.equal(agg.connections, 3);
  agg.add(
    rawEvent({
      kind: "state",
      cookie: 9n,
      oldState: "ESTABLISHED",
      newState: "CLOSE",
    }),
  );
  assert.equal(agg.connections, 2);
});

Deno.test("addAll returns only the completed exchanges, in order", () => {
  const agg = new WireAggregator({ node: "n", monoToWallOffsetMs: 0 });
  const out = agg.addAll([
    rawEvent({ kind: "track" }),
    rawEvent({ startNs: 1n, firstRxNs: 2n, bytesSent: 1 }),
    rawEvent({ kind: "retransmit" }),
    rawEvent({ startNs: 3n, firstRxNs: 4n, bytesSent: 2 }),
  ]);
  assert.deepEqual(out.map((x) => x.bytesSent), [1, 2]);
  assert.equal(monoToIso(0n, 0), "1970-01-01T00:00:00.000Z");
});
