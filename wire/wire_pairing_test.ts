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
  assert.deepEqual(p.addBeat("n1", T), {
    renewTime: T,
    latencyMs: 4,
    confidence: "inferred",
  });
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
    confidence: "inferred",
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
    confidence: "inferred",
  });
});

function exact(
  atMs: number,
  resourceVersion: string | undefined,
  latencyMs: number,
  extra: Partial<WireExchange> = {},
): WireExchange {
  return {
    ...exchange(atMs, 600, latencyMs),
    confidence: "exact",
    lease: "kube-node-lease/n1",
    ...(resourceVersion !== undefined && { resourceVersion }),
    status: 200,
    ...extra,
  };
}

Deno.test("an exact exchange pairs with the beat whose previous version it updated, whatever the clocks say", () => {
  const p = new WirePairing();
  p.track("n1");
  // Two renewals close together; the exchanges arrive out of order.
  assert.equal(p.addBeat("n1", T, "100"), null);
  assert.equal(p.addBeat("n1", T + 300, "101"), null);
  assert.deepEqual(p.addExchange(exact(T + 301, "101", 3)), {
    renewTime: T + 300,
    latencyMs: 3,
    confidence: "exact",
  });
  assert.deepEqual(p.addExchange(exact(T + 1, "100", 4)), {
    renewTime: T,
    latencyMs: 4,
    confidence: "exact",
  });
  // And the other way round: the exchange first.
  assert.equal(p.addExchange(exact(T + 10_001, "102", 5)), null);
  assert.deepEqual(p.addBeat("n1", T + 10_000, "102"), {
    renewTime: T + 10_000,
    latencyMs: 5,
    confidence: "exact",
  });
});

Deno.test("while a node sends exact exchanges its inferred ones never pair, and control frames are never trouble", () => {
  const p = new WirePairing();
  p.track("n1");
  p.addExchange(exact(T - 5000, "99", 2));
  p.addBeat("n1", T, "100");
  // An inferred exchange right after the renewTime: would have paired.
  assert.equal(p.addExchange(exchange(T + 2, 700, 4)), null);
  // A WINDOW_UPDATE that waited 9 s for the next answer is not trouble.
  p.addExchange(exchange(T + 3, 35, 9000));
  assert.equal(p.summary("n1")?.trouble, false);
  // A slow renewal is.
  p.addExchange(exact(T + 20, "100", 1500));
  assert.equal(p.summary("n1")?.trouble, true);
});

Deno.test("a failed exact renewal (5xx or no answer) marks trouble", () => {
  const errored = new WirePairing();
  errored.addExchange(exact(T, "1", 3, { status: 503 }));
  assert.equal(errored.summary("n1")?.trouble, true);
  const unanswered = new WirePairing();
  const x = exact(T, "1", 0, { bytesReceived: 0 });
  delete x.status;
  unanswered.addExchange(x);
  assert.equal(unanswered.summary("n1")?.trouble, true);
});

Deno.test("trouble from a retransmit or reset signal shows its count in the summary, counted once", () => {
  const p = new WirePairing();
  p.track("n1", true);
  const signal = (atMs: number, kind: "retransmit" | "reset", n: number) => ({
    ...exchange(atMs, 0, 0),
    bytesReceived: 0,
    retransmits: kind === "retransmit" ? n : 0,
    resets: kind === "reset" ? n : 0,
    signal: kind,
  } satisfies WireExchange);
  p.addExchange(exact(T, "1", 3));
  // A tail loss probe on a watch-data record: no exchange carries it.
  p.addExchange(signal(T + 100, "retransmit", 1));
  assert.deepEqual(
    [p.summary("n1")?.trouble, p.summary("n1")?.retransmits],
    [true, 1],
  );
  // An inferred exchange that carried the same retransmit adds nothing.
  p.addExchange({ ...exchange(T + 90, 700, 4), retransmits: 1 });
  p.addExchange(signal(T + 200, "reset", 2));
  assert.deepEqual(
    [p.summary("n1")?.retransmits, p.summary("n1")?.resets],
    [1, 2],
  );
});

Deno.test("a simulated node's exchanges count their own retransmits", () => {
  const p = new WirePairing();
  p.addExchange({ ...exchange(T, 700, 4), retransmits: 2 });
  p.addExchange({ ...exchange(T + 10_000, 700, 4), retransmits: 1 });
  assert.equal(p.summary("n1")?.retransmits, 3);
  assert.equal(p.summary("n1")?.trouble, true);
});

Deno.test("paired beats and exchanges are let go at once; unpaired ones wait, at most 16 of each", () => {
  const p = new WirePairing();
  p.track("n1");
  for (let i = 0; i < 100; i++) {
    const at = T + i * 10_000;
    if (i % 2 === 0) {
      assert.equal(p.addBeat("n1", at), null);
      assert.ok(p.addExchange(exchange(at + 3, 600, 4)));
    } else {
      assert.equal(p.addExchange(exchange(at + 3, 600, 4)), null);
      assert.ok(p.addBeat("n1", at));
    }
  }
  assert.deepEqual(p.waiting("n1"), { exchanges: 0, beats: 0 });
  for (let i = 0; i < 40; i++) {
    p.addExchange(exchange(T + 2_000_000 + i * 10_000, 600, 4));
    p.addBeat("n1", T + 3_000_000 + i * 10_000);
  }
  assert.deepEqual(p.waiting("n1"), { exchanges: 16, beats: 16 });
  // The newest still pair.
  assert.ok(p.addBeat("n1", T + 2_000_000 + 39 * 10_000));
});
