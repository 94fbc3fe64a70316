import assert from "node:assert/strict";
import type { WireExchange } from "../core/api_types.ts";
import {
  diagnoseHeart,
  diagnoseSource,
  type HeartView,
  type NodeWireView,
} from "./diagnosis.ts";

const T = Date.parse("2026-01-01T00:00:00Z");
const at = (s: number) => new Date(T + s * 1000).toISOString();

const node: HeartView = {
  kind: "node",
  name: "n1",
  holder: "n1",
  holderAtStart: "n1",
  silentSince: T,
  recentIntervals: [10, 10, 10],
};

function x(s: number, over: Partial<WireExchange> = {}): WireExchange {
  return {
    node: "n1",
    conn: "10.0.0.5:40000->10.0.0.1:6443",
    at: at(s),
    latencyMs: 3,
    bytesSent: 600,
    bytesReceived: 400,
    srttUs: 200,
    retransmits: 0,
    resets: 0,
    confidence: "exact",
    lease: "kube-node-lease/n1",
    resourceVersion: "10",
    status: 200,
    ...over,
  };
}

function wire(
  records: WireExchange[],
  pairing: "exact" | "inferred" = "exact",
): NodeWireView {
  return {
    probe: { available: true, pairing },
    records,
    baselineSrttUs: 200,
  };
}

const NOW = T + 25_000;

/** A renewal sent at `s` that the kubelet reset after 10 s without an answer. */
function gaveUp(s: number): WireExchange {
  const r = x(s, { bytesReceived: 0, latencyMs: 10_000 });
  delete r.status;
  return r;
}

Deno.test("each kind of evidence points at its cause", () => {
  const table: [string, NodeWireView | null, string, RegExp][] = [
    [
      "no renewal left the node (exact pairing)",
      wire([x(-10)]),
      "kubelet",
      /kubelet sent no renewal for 25 s/,
    ],
    [
      "renewals retransmitted",
      wire([
        x(2, { signal: "retransmit", retransmits: 1, confidence: "inferred" }),
      ]),
      "network",
      /retransmitted 1 time since 00:00:02/,
    ],
    [
      "the connection was reset",
      wire([x(3, { signal: "reset", resets: 1, confidence: "inferred" })]),
      "network",
      /reset since/,
    ],
    [
      "the connection died after retransmits",
      wire([
        x(2, { signal: "retransmit", retransmits: 4, confidence: "inferred" }),
        x(3, { signal: "closed", confidence: "inferred" }),
      ]),
      "network",
      /retransmitted 4 times/,
    ],
    [
      "the RTT jumped",
      wire([x(4, { signal: "pending", srttUs: 250_000 })]),
      "network",
      /RTT jump/,
    ],
    [
      "a renewal is still waiting for its answer",
      wire([x(5, { signal: "pending", latencyMs: 1000 })]),
      "apiserver",
      /sent at 00:00:05 has waited 20 s for an answer/,
    ],
    [
      "a renewal answered 503",
      wire([x(5, { status: 503 })]),
      "apiserver",
      /answered the kubelet's renewal with HTTP 503/,
    ],
    [
      "a renewal answered slowly",
      wire([x(5, { latencyMs: 8000 })]),
      "apiserver",
      /took 8 s to answer/,
    ],
    [
      "a renewal accepted but never delivered by the watch",
      wire([x(5)]),
      "apiserver",
      /accepted the kubelet's renewal at 00:00:05 but its watch has not delivered it/,
    ],
    [
      "no wire data for the node",
      null,
      "unknown",
      /no wire data for this node/,
    ],
    [
      "inferred pairing cannot tell a stalled kubelet from an unanswered request",
      wire([], "inferred"),
      "unknown",
      /the wire cannot tell why/,
    ],
  ];
  for (const [what, view, cause, summary] of table) {
    const got = diagnoseHeart(node, view, NOW);
    assert.equal(got.cause, cause, what);
    assert.match(got.summary, summary, what);
    assert.ok(got.evidence.length > 0, `${what}: evidence`);
    assert.ok(
      got.evidence.every((e) => e.phrase !== undefined),
      `${what}: every piece of evidence as a phrase too`,
    );
  }
});

Deno.test("summaries and evidence come as phrases too: durations in milliseconds, times as RFC 3339, nobody as null", () => {
  const waiting = diagnoseHeart(
    node,
    wire([x(5, { signal: "pending", latencyMs: 1000 })]),
    NOW,
  );
  assert.deepEqual(waiting.summaryPhrase, {
    id: "apiserver.waiting",
    args: { sentAt: at(5), waitMs: 20_000 },
  });
  assert.deepEqual(waiting.evidence[0]!.phrase, {
    id: "evidence.pending",
    args: { lease: "kube-node-lease/n1", waitMs: 20_000 },
  });
  const retrans = diagnoseHeart(
    node,
    wire([
      x(2, { signal: "retransmit", retransmits: 4, confidence: "inferred" }),
    ]),
    NOW,
  );
  assert.deepEqual(retrans.summaryPhrase, {
    id: "network.retransmitted",
    args: { count: 4, sinceAt: at(2) },
  });
  const kubelet = diagnoseHeart(node, wire([x(-10)]), NOW);
  assert.deepEqual(kubelet.summaryPhrase, {
    id: "kubelet.noRenewal",
    args: { silentMs: 25_000 },
  });
  assert.equal(kubelet.evidence[0]!.phrase?.id, "evidence.noRequestIdle");
  const orphan = diagnoseHeart(
    { ...node, kind: "lease", holder: null, holderAtStart: "cp-1" },
    null,
    NOW,
  );
  assert.deepEqual(orphan.summaryPhrase, {
    id: "handover.moved",
    args: { from: "cp-1", to: null, silentMs: 25_000 },
  });
});

Deno.test("an accepted renewal counts as undelivered only while the heart still holds the version it updated", () => {
  // x() renews version "10": the heart holding "10" never saw that write.
  const undelivered = diagnoseHeart(
    { ...node, version: "10" },
    wire([x(5)]),
    NOW,
  );
  assert.equal(undelivered.cause, "apiserver");
  assert.match(undelivered.summary, /watch has not delivered it/);
  // The heart holds "11", the write that renewal made: its beat was seen,
  // though the two clocks put the exchange a moment after the beat.
  const delivered = diagnoseHeart(
    { ...node, version: "11" },
    wire([x(5)]),
    NOW,
  );
  assert.equal(delivered.cause, "kubelet");
  assert.match(delivered.summary, /kubelet sent no renewal/);
});

Deno.test("a pending renewal that was answered later is not still waiting", () => {
  const answered = wire([
    x(5, { signal: "pending", latencyMs: 1000 }),
    x(5, { latencyMs: 4 }),
  ]);
  assert.equal(
    diagnoseHeart(node, answered, T + 6000).cause,
    "kubelet",
    "answered fast, no beat yet only 1 s later: the beat may still come",
  );
});

Deno.test("a retried renewal carrying the same version still waits: the earlier one's end does not answer it", () => {
  // etcd frozen: the kubelet's renewal times out after 10 s and is reset;
  // its retry names the same version, and waits in turn.
  const records = wire([
    x(2, { signal: "pending", latencyMs: 1000 }),
    gaveUp(2),
    x(12, { signal: "pending", latencyMs: 1000 }),
  ]);
  const got = diagnoseHeart(node, records, T + 14_000);
  assert.equal(got.cause, "apiserver");
  assert.match(got.summary, /sent at 00:00:12 has waited 2 s/);
});

Deno.test("a renewal the kubelet gave up on without an answer blames the API server", () => {
  const records = wire([
    gaveUp(2),
  ]);
  const got = diagnoseHeart(node, records, T + 14_000);
  assert.equal(got.cause, "apiserver");
  assert.match(got.summary, /sent at 00:00:02 waited 10 s for an answer/);
  // While Earthworm was blind too, it is the evidence that names the API
  // server rather than Earthworm's view.
  const source = diagnoseSource(
    T + 1000,
    "the API server could not be reached",
    new Map([["n1", records]]),
    T + 14_000,
  );
  assert.equal(source.cause, "apiserver");
  // Retransmits on the connection say network first.
  const lost = wire([
    x(1, { signal: "retransmit", retransmits: 4, latencyMs: 0 }),
    gaveUp(2),
  ]);
  assert.equal(diagnoseHeart(node, lost, T + 14_000).cause, "network");
});

Deno.test("an observer that cannot see blames nobody", () => {
  const got = diagnoseHeart(
    node,
    wire([x(2, { signal: "retransmit", retransmits: 3 })]),
    NOW,
    "watch failed: connection refused",
  );
  assert.equal(got.cause, "observer");
  assert.match(got.evidence[0]!.text, /connection refused/);
});

Deno.test("a controller Lease: a handover, or a holder that stopped renewing", () => {
  const lease: HeartView = {
    ...node,
    kind: "lease",
    name: "kube-controller-manager",
    holder: "cp-1",
    holderAtStart: "cp-1",
    recentIntervals: [2, 2, 2, 5],
  };
  const stopped = diagnoseHeart(lease, null, T + 20_000);
  assert.equal(stopped.cause, "holder");
  assert.match(stopped.summary, /cp-1 has not renewed for 20 s/);
  assert.match(stopped.evidence[1]!.text, /last renewal came late already/);
  const handover = diagnoseHeart({ ...lease, holder: "cp-2" }, null, NOW);
  assert.equal(handover.cause, "handover");
  assert.match(handover.summary, /moved from cp-1 to cp-2/);
});

Deno.test("while Earthworm is blind, unanswered renewals on the nodes blame the API server, answered ones the observer", () => {
  const blind = T;
  const down = new Map([[
    "n1",
    wire([x(3, { signal: "pending", latencyMs: 1000 })]),
  ]]);
  const apiserver = diagnoseSource(blind, "liveness read timed out", down, NOW);
  assert.equal(apiserver.cause, "apiserver");
  assert.match(apiserver.summary, /answers no one: n1/);
  assert.deepEqual(apiserver.summaryPhrase, {
    id: "source.waiting",
    args: { node: "n1", sentAt: at(3), waitMs: 22_000 },
  });
  assert.equal(apiserver.evidence[1]!.node, "n1");
  assert.equal(apiserver.evidence[1]!.phrase?.id, "evidence.pending");
  const up = new Map([["n1", wire([x(3, { latencyMs: 4 })])]]);
  const observer = diagnoseSource(blind, "liveness read timed out", up, NOW);
  assert.equal(observer.cause, "observer");
  assert.match(observer.summary, /only Earthworm cannot see/);
  const nothing = diagnoseSource(blind, "cut", new Map(), NOW);
  assert.equal(nothing.cause, "observer");
  assert.match(nothing.summary, /nothing is blamed/);
});

Deno.test("a renewal sent in the seconds before Earthworm noticed its blindness still blames the API server; one answered then is no evidence", () => {
  const blind = T + 4000;
  /** A renewal the kubelet reset after 10 s without an answer. */
  const gaveUp = (sec: number) => {
    const r = x(sec, { latencyMs: 10_000, resets: 1 });
    delete r.status;
    return r;
  };
  // Sent 3 s before the blindness was noticed; the kubelet gave up after 10 s.
  const timedOut = new Map([[
    "n1",
    wire([gaveUp(1)]),
  ]]);
  const apiserver = diagnoseSource(
    blind,
    "liveness read timed out",
    timedOut,
    NOW,
  );
  assert.equal(apiserver.cause, "apiserver");
  assert.match(apiserver.summary, /took 10 s to answer/);
  const answeredBefore = new Map([["n1", wire([x(1, { latencyMs: 4 })])]]);
  const observer = diagnoseSource(
    blind,
    "liveness read timed out",
    answeredBefore,
    NOW,
  );
  assert.equal(observer.cause, "observer");
  assert.match(observer.summary, /nothing is blamed/);
  const longBefore = new Map([[
    "n1",
    wire([gaveUp(-11)]),
  ]]);
  assert.equal(
    diagnoseSource(blind, "liveness read timed out", longBefore, NOW).cause,
    "observer",
  );
});

Deno.test("a connection closed cleanly (a kubelet restarting) blames no network", () => {
  const got = diagnoseHeart(
    node,
    wire([x(3, { signal: "closed", confidence: "inferred" })]),
    NOW,
  );
  assert.equal(got.cause, "kubelet");
});
