import assert from "node:assert/strict";
import type {
  BatchEntry,
  DiagnosisEvent,
  Heart,
  SnapshotEvent,
  SourceState,
  StreamBatch,
  WireExchange,
} from "./api_types.ts";
import {
  decodeBatch,
  decodeHeart,
  decodeSnapshot,
  encodeBeat,
  encodeExchange,
  encodeHeart,
  encodeSnapshot,
  heartIdOf,
  heartKey,
  statusCode,
  StreamMirror,
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
      diagnosis: {
        cause: "kubelet",
        since: "2026-03-01T11:59:00.000Z",
        summary: "kubelet sent no renewal for 24 s",
        summaryPhrase: { id: "kubelet.noRenewal", args: { silentMs: 24000 } },
        evidence: [{
          at: "2026-03-01T11:59:30.000Z",
          text: "no exchange for 30 s",
          phrase: { id: "kubelet.noRenewal", args: { silentMs: 30000 } },
        }],
      },
    }),
    heart({
      id: "east/kube-node-lease/worker-1",
      cluster: "east",
    }),
    heart({
      id: "kube-node-lease/kube-node-lease/worker-1",
      cluster: "kube-node-lease",
    }),
    heart({
      id: "prod/eu/kube-system/kube-scheduler",
      cluster: "prod/eu",
      kind: "lease",
      namespace: "kube-system",
      name: "kube-scheduler",
      holder: "cp-1_5f3e",
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
  // Several clusters: the key is the whole id, cluster included.
  for (
    const id of [
      "east/kube-node-lease/n1",
      "kube-node-lease/kube-node-lease/n1",
      "west/kube-system/kube-scheduler",
    ]
  ) {
    assert.equal(heartKey(id), id);
    assert.equal(heartIdOf(heartKey(id)), id);
  }
});

Deno.test("clusters and phrases survive a snapshot and a batch", () => {
  const source: SourceState = {
    kind: "cluster",
    name: "2 clusters",
    connected: false,
    reason: "cannot see west",
    since: "2026-03-01T11:59:00.000Z",
    timeScale: 1,
    wire: {
      available: false,
      reason: "no agent reported",
      reasonPhrase: { id: "source.waiting", args: {} },
      pairing: "exact on 0 of 0 nodes",
      pairingPhrase: { id: "source.slow", args: { n: 0 } },
    },
    diagnosis: {
      cause: "observer",
      since: "2026-03-01T11:59:00.000Z",
      summary: "only Earthworm is blind",
      summaryPhrase: { id: "observer.onlyEarthworm", args: {} },
      evidence: [],
    },
    clusters: [
      {
        name: "east",
        server: "https://east:6443",
        connected: true,
        since: "2026-03-01T11:00:00.000Z",
      },
      {
        name: "west",
        server: "https://west:6443",
        connected: false,
        reason: "connection refused",
        since: "2026-03-01T11:59:00.000Z",
      },
    ],
  };
  const east = heart({ id: "east/kube-node-lease/worker-1", cluster: "east" });
  const west = heart({ id: "west/kube-node-lease/worker-1", cluster: "west" });
  const snapshot: SnapshotEvent = {
    generatedAt: "2026-03-01T12:00:00.000Z",
    source,
    hearts: [east, west],
  };
  const wire = JSON.parse(JSON.stringify(encodeSnapshot(snapshot, base)));
  assert.deepEqual(decodeSnapshot(wire), snapshot);

  const diagnosis: DiagnosisEvent = {
    id: west.id,
    cluster: "west",
    diagnosis: {
      cause: "kubelet",
      since: "2026-03-01T11:59:00.000Z",
      summary: "kubelet sent no renewal for 24 s",
      summaryPhrase: { id: "kubelet.noRenewal", args: { silentMs: 24000 } },
      evidence: [],
    },
    episode: {
      id: west.id,
      cluster: "west",
      start: "2026-03-01T11:59:00.000Z",
      end: null,
      worst: "late",
      cause: "kubelet",
      causeSince: "2026-03-01T11:59:20.000Z",
      summary: "kubelet sent no renewal for 24 s",
      summaryPhrase: { id: "kubelet.noRenewal", args: { silentMs: 24000 } },
      evidence: [],
    },
  };
  const mirror = new StreamMirror();
  mirror.applySnapshot(wire);
  const batch: StreamBatch = {
    t: base,
    e: [
      encodeBeat(
        east.id,
        {
          renewTime: "2026-03-01T12:00:00.050Z",
          observedAt: "2026-03-01T12:00:00.100Z",
          intervalSeconds: 10,
          holder: "worker-1",
          transition: false,
        },
        18,
        base,
      ),
      ["s", heartKey(west.id), statusCode("expired")],
      ["d", diagnosis],
      ["src", source],
    ],
  };
  const events = mirror.applyBatch(JSON.parse(JSON.stringify(batch)));
  assert.deepEqual(events.map((e) => e.event), [
    "beat",
    "status",
    "diagnosis",
    "source",
  ]);
  assert.equal(mirror.hearts.get(east.id)?.cluster, "east");
  assert.equal(mirror.hearts.get(east.id)?.beats, 18);
  const w = mirror.hearts.get(west.id)!;
  assert.equal(w.cluster, "west");
  assert.equal(w.status, "expired");
  assert.deepEqual(w.diagnosis, diagnosis.diagnosis);
  assert.deepEqual(events[2]?.data, diagnosis);
  assert.deepEqual(mirror.source, source);
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
