import assert from "node:assert/strict";
import type { WireExchange } from "../core/api_types.ts";
import { WirePairing } from "./wire_pairing.ts";

const T = Date.parse("2026-01-01T00:00:00.000Z");

function exchange(
  atMs: number,
  bytesSent: number,
  latencyMs: number,
): WireExchange {
  return {
    node: "n1",
    conn: "10.0.0.1:40000->10.0.0.9:6443",
    at: new Date(atMs).toISOString(),
    latencyMs,
    bytesSent,
    bytesReceived: bytesSent,
    srttUs: 100,
    retransmits: 0,
    resets: 0,
  };
}

Deno.test("a beat pairs with the first exchange that starts just after its renewTime", () => {
  const p = new WirePairing();
  assert.equal(p.addExchange(exchange(T + 2, 600, 4)), null);
  assert.equal(p.addExchange(exchange(T + 30, 600, 9)), null);
  assert.deepEqual(p.addBeat("n1", T), { renewTime: T, latencyMs: 4 });
});

Deno.test("a TLS alert just after the renewTime is not taken for the exchange that carried the beat", () => {
  const p = new WirePairing();
  p.addExchange(exchange(T, 600, 5)); // keeps the node known
  assert.equal(p.addBeat("n1", T - 10_000), null);
  assert.equal(p.addBeat("n1", T + 1000), null);
  // close_notify of the old connection, then the PUT on the new one.
  assert.equal(p.addExchange(exchange(T + 1001, 24, 0.2)), null);
  assert.equal(p.summary("n1")?.lastLatencyMs, 0.2, "still summarised");
  assert.deepEqual(p.addExchange(exchange(T + 1003, 700, 6)), {
    renewTime: T + 1000,
    latencyMs: 6,
  });
});

Deno.test("a tracked node's first beat pairs with an exchange reported after it", () => {
  const untracked = new WirePairing();
  assert.equal(untracked.addBeat("n1", T), null);
  assert.equal(
    untracked.addExchange(exchange(T + 3, 600, 4)),
    null,
    "without a probe reported, the first beat is not kept",
  );
  const p = new WirePairing();
  p.track("n1");
  assert.equal(p.addBeat("n1", T), null);
  assert.deepEqual(p.addExchange(exchange(T + 3, 600, 4)), {
    renewTime: T,
    latencyMs: 4,
  });
});
