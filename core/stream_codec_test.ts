import assert from "node:assert/strict";
import type {
  BatchEntry,
  Heart,
  StreamBatch,
  WireExchange,
} from "./api_types.ts";
import {
  decodeBatch,
  decodeHeart,
  encodeExchange,
  encodeHeart,
  heartIdOf,
  heartKey,
} from "./stream_codec.ts";

const base = Date.parse("2026-03-01T12:00:00.000Z");

function heart(over: Partial<Heart> = {}): Heart {
  return {
    id: "kube-node-lease/worker-1",
    kind: "node",
    namespace: "kube-node-lease",
    name: "worker-1",
    holder: "worker-1",
    status: "late",
    lastRenewTime: "2026-03-01T11:59:58.250Z",
    lastObservedAt: "2026-03-01T11:59:58.290Z",
    leaseDurationSeconds: 40,
    expectedIntervalSeconds: 10,
    lastIntervalSeconds: 10.004,
    skewSeconds: 0.04,
    beats: 17,
    transitions: 0,
    leaseTransitions: null,
    ...over,
  };
}

Deno.test("a heart survives its row: node and lease, with and without wire and diagnosis", () => {
  const cases: Heart[] = [
    heart(),
    heart({
      wire: {
        lastExchangeAt: "2026-03-01T11:59:58.251Z",
        lastLatencyMs: 3.5,
        srttUs: 240,
        retransmits: 2,
        resets: 0,
        trouble: true,
      },
    }),
    heart({
      diagnosis: {
        cause: "kubelet",
        since: "2026-03-01T11:59:00.000Z",
        summary: "renewals stopped at the kubelet",
        evidence: [{
          at: "2026-03-01T11:59:30.000Z",
          text: "no exchange for 30 s",
        }],
      },
    }),
    heart({
      id: "kube-system/kube-scheduler",
      kind: "lease",
      namespace: "kube-system",
      name: "kube-scheduler",
      holder: "cp-1_5f3e",
      status: "healthy",
      expectedIntervalSeconds: 2,
      lastIntervalSeconds: null,
      leaseTransitions: 3,
      transitions: 1,
    }),
    heart({
      status: "unknown",
      holder: null,
      lastRenewTime: null,
      lastObservedAt: null,
      skewSeconds: null,
      lastIntervalSeconds: null,
      beats: 0,
    }),
  ];
  for (const h of cases) {
    const row = encodeHeart(h, base);
    assert.deepEqual(decodeHeart(JSON.parse(JSON.stringify(row)), base), h);
  }
  // A node heart held by its own name says neither its namespace nor its holder.
  assert.deepEqual(encodeHeart(heart(), base).slice(0, 5), [
    "worker-1",
    1,
    0,
    -1710,
    40,
  ]);
});

Deno.test("keys: a node Lease's name alone, other Leases by namespace/name", () => {
  assert.equal(heartKey("kube-node-lease/n1"), "n1");
  assert.equal(heartIdOf("n1"), "kube-node-lease/n1");
  assert.equal(
    heartKey("kube-system/kube-scheduler"),
    "kube-system/kube-scheduler",
  );
  assert.equal(
    heartIdOf("kube-system/kube-scheduler"),
    "kube-system/kube-scheduler",
  );
});

Deno.test("exchanges and signals survive their rows; unknown entries are skipped", () => {
  const exact: WireExchange = {
    node: "worker-1",
    conn: "10.0.0.2:40000->10.0.0.1:6443",
    at: "2026-03-01T12:00:00.120Z",
    latencyMs: 4.25,
    bytesSent: 612,
    bytesReceived: 498,
    srttUs: 250,
    retransmits: 0,
    resets: 0,
    confidence: "exact",
    lease: "kube-node-lease/worker-1",
    resourceVersion: "9876",
    status: 200,
  };
  const inferred: WireExchange = {
    ...exact,
    confidence: "inferred",
    lease: "kube-system/other",
  };
  delete inferred.resourceVersion;
  delete inferred.status;
  const signal: WireExchange = {
    node: "worker-1",
    conn: exact.conn,
    at: "2026-03-01T12:00:01.000Z",
    latencyMs: 900,
    bytesSent: 0,
    bytesReceived: 0,
    srttUs: 0,
    retransmits: 1,
    resets: 0,
    signal: "retransmit",
  };
  const batch: StreamBatch = {
    t: base,
    e: [
      encodeExchange(exact, base),
      ["zz", 1] as unknown as BatchEntry,
      encodeExchange(inferred, base),
      encodeExchange(signal, base),
    ],
  };
  const decoded = decodeBatch(JSON.parse(JSON.stringify(batch)));
  assert.deepEqual(
    decoded.map((d) => d.type === "wire" ? d.exchange : d),
    [exact, inferred, signal],
  );
});
