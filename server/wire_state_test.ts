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
