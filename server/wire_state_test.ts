import assert from "node:assert/strict";
import { WireState } from "./wire_state.ts";

Deno.test("the availability summary changes only when an agent's probe state does, and names the first lease-only agent", () => {
  const w = new WireState();
  assert.deepEqual(w.probe("a", { available: true }), { available: true });
  assert.equal(w.probe("a", { available: true }), null, "unchanged");
  assert.deepEqual(
    w.probe("b", { available: false, reason: "no BTF" }),
    {
      available: true,
      reason: "1 of 2 agents run lease-only; b: no BTF",
    },
  );
  assert.deepEqual(
    w.probe("a", { available: false, reason: "no libbpf" }),
    {
      available: false,
      reason: "2 of 2 agents run lease-only; a: no libbpf",
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
