import assert from "node:assert/strict";
import { MAX_PENDING_NODES, WireState } from "./wire_state.ts";

Deno.test("the availability summary changes only when an agent's probe state does, and names the first lease-only agent", () => {
  const w = new WireState();
  assert.deepEqual(w.probe("a", { available: true }), { available: true });
  assert.equal(w.probe("a", { available: true }), null, "unchanged");
  assert.deepEqual(
    w.probe("b", { available: false, reason: "no BTF" }),
    {
      available: true,
      reason: "1 of 2 agents run lease-only; b: no BTF",
      reasonPhrase: {
        id: "wire.leaseOnly",
        args: { count: 1, total: 2, node: "b", reason: "no BTF" },
      },
    },
  );
  assert.deepEqual(
    w.probe("a", { available: false, reason: "no libbpf" }),
    {
      available: false,
      reason: "2 of 2 agents run lease-only; a: no libbpf",
      reasonPhrase: {
        id: "wire.leaseOnly",
        args: { count: 2, total: 2, node: "a", reason: "no libbpf" },
      },
    },
  );
  assert.equal(w.probes().size, 2);
});

Deno.test("a node whose agent runs a probe pairs a beat with an exchange that comes later", () => {
  const w = new WireState();
  const t = Date.parse("2026-01-01T00:00:00Z");
  w.probe("n1", { available: true });
  assert.equal(w.beat("n1", t), null);
  const pairs = w.exchanges([{
    node: "n1",
    conn: "a->b",
    at: new Date(t + 2).toISOString(),
    latencyMs: 5,
    bytesSent: 700,
    bytesReceived: 500,
    srttUs: 100,
    retransmits: 0,
    resets: 0,
  }]);
  assert.deepEqual(pairs, [{
    node: "n1",
    renewTime: t,
    latencyMs: 5,
    confidence: "inferred",
  }]);
  assert.equal(w.summary("n1")?.lastLatencyMs, 5);
});

Deno.test("nodes whose Lease is not known yet are kept only a few at a time, and nodes that leave are forgotten", () => {
  const w = new WireState();
  w.probe("n1", { available: true });
  for (let i = 0; i < 1000; i++) {
    w.probe(`unknown-${i}`, { available: false, reason: "x" }, false);
  }
  assert.equal(w.probes().size, 1 + MAX_PENDING_NODES);
  assert.ok(w.probes().has("n1"), "a known node is never pushed out");
  w.nodeAdded("unknown-999");
  for (let i = 0; i < 100; i++) {
    w.probe(`later-${i}`, { available: true }, false);
  }
  assert.ok(w.probes().has("unknown-999"), "kept once its Lease came");
  assert.equal(w.probes().size, 2 + MAX_PENDING_NODES);
  // The lease-only ones were pushed out by newer ones.
  assert.deepEqual(w.forget("unknown-999"), { available: true });
  assert.equal(w.probes().size, 1 + MAX_PENDING_NODES);
  assert.equal(w.forget("nobody"), null);
});

Deno.test("a node that beats keeps the records of the minute before its last beat; a silent one keeps those of its silence", () => {
  const w = new WireState();
  const t = Date.parse("2026-01-01T00:00:00Z");
  w.probe("n1", { available: true });
  const record = (at: number) => ({
    node: "n1",
    conn: "a->b",
    at: new Date(at).toISOString(),
    latencyMs: 5,
    bytesSent: 700,
    bytesReceived: 500,
    srttUs: 100 + Math.floor((at - t) / 10_000),
    retransmits: 0,
    resets: 0,
  });
  // An hour of renewals every 10 s, each reported just after its beat.
  let at = t;
  for (let i = 0; i < 360; i++, at += 10_000) {
    w.beat("n1", at);
    w.exchanges([record(at + 2)]);
  }
  const last = at - 10_000;
  const kept = w.view("n1", last).records;
  assert.ok(kept.length <= 7, `${kept.length} records kept`);
  assert.ok(Date.parse(kept[0]!.at) >= last - 60_000);
  assert.equal(w.view("n1", last).baselineSrttUs, 100 + 356, "baseline RTT");
  // Silent for five minutes: every record since the last beat stays.
  for (let i = 0; i < 30; i++) w.exchanges([record(last + 10_000 * (i + 1))]);
  const silent = w.view("n1", last).records;
  assert.equal(
    silent.filter((x) => Date.parse(x.at) > last).length,
    31,
    "the silence's records",
  );
});
