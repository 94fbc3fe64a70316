import assert from "node:assert/strict";
import type { Beat, Heart, SourceState } from "../core/api_types.ts";
import {
  HeartStore,
  staleHeart,
  STREAM_STALE_AFTER_MS,
  streamStaleReason,
} from "./state.ts";
import { ServerClock } from "./server_clock.ts";

const T0 = Date.parse("2025-01-01T00:00:00Z");

function heart(name: string, over: Partial<Heart> = {}): Heart {
  return {
    id: `kube-node-lease/${name}`,
    kind: "node",
    namespace: "kube-node-lease",
    name,
    holder: name,
    status: "healthy",
    lastRenewTime: null,
    lastObservedAt: null,
    leaseDurationSeconds: 40,
    expectedIntervalSeconds: 10,
    lastIntervalSeconds: null,
    skewSeconds: null,
    beats: 0,
    transitions: 0,
    leaseTransitions: 0,
    ...over,
  };
}

const SOURCE: SourceState = {
  kind: "mock",
  name: "simulated cluster",
  connected: true,
  since: new Date(T0).toISOString(),
  timeScale: 1,
};

function beat(atMs: number, intervalSeconds: number | null = 10): Beat {
  const iso = new Date(atMs).toISOString();
  return {
    renewTime: iso,
    observedAt: iso,
    intervalSeconds,
    holder: "n",
    transition: false,
  };
}

function store(limits = { keepMs: 60_000, maxBeats: 100, maxExchanges: 2 }) {
  const local = { now: 0 };
  const s = new HeartStore(new ServerClock(() => local.now), limits);
  s.applySnapshot({
    generatedAt: new Date(T0).toISOString(),
    source: SOURCE,
    hearts: [heart("a"), heart("b")],
  });
  return { s, local };
}

Deno.test("store applies a snapshot, beats and a deletion, notifying subscribers", () => {
  const { s } = store();
  let calls = 0;
  const off = s.subscribe(() => calls++);
  s.applyBeat({
    id: "1",
    beat: beat(T0 + 500),
    heart: heart("a", { beats: 1 }),
  });
  assert.equal(s.hearts.get("kube-node-lease/a")?.beats.length, 1);
  assert.equal(s.hearts.get("kube-node-lease/a")?.heart.beats, 1);
  s.applyStatus({ id: "2", from: "healthy", to: null, heart: heart("b") });
  assert.equal(s.hearts.has("kube-node-lease/b"), false);
  s.applyStatus({
    id: "3",
    from: null,
    to: "unknown",
    heart: heart("c", { status: "unknown" }),
  });
  assert.equal(s.hearts.get("kube-node-lease/c")?.heart.status, "unknown");
  off();
  s.applyBeat({ id: "4", beat: beat(T0 + 900), heart: heart("a") });
  assert.equal(calls, 3);
});

Deno.test("store keeps recent beats of hearts that survive a fresh snapshot", () => {
  const { s } = store();
  s.applyBeat({ id: "1", beat: beat(T0 + 500), heart: heart("a") });
  s.applySnapshot({
    generatedAt: new Date(T0 + 1_000).toISOString(),
    source: SOURCE,
    hearts: [heart("a"), heart("z")],
  });
  assert.deepEqual([...s.hearts.keys()], [
    "kube-node-lease/a",
    "kube-node-lease/z",
  ]);
  assert.equal(s.hearts.get("kube-node-lease/a")?.beats.length, 1);
  assert.equal(s.hearts.get("kube-node-lease/a")?.historyLoaded, false);
  assert.equal(s.snapshots, 2);
});

Deno.test("store merges fetched history in order without duplicates", () => {
  const { s } = store();
  s.applyBeat({ id: "1", beat: beat(T0 + 20_000), heart: heart("a") });
  s.mergeHistory("kube-node-lease/a", [
    beat(T0, null),
    beat(T0 + 10_000),
    beat(T0 + 20_000),
  ]);
  const entry = s.hearts.get("kube-node-lease/a")!;
  assert.deepEqual(entry.beats.map((b) => b.t - T0), [0, 10_000, 20_000]);
  assert.equal(entry.beats[0]!.intervalMs, null);
  assert.equal(entry.historyLoaded, true);
});

Deno.test("store drops beats older than its window and beyond its cap", () => {
  const { s, local } = store({ keepMs: 30_000, maxBeats: 3, maxExchanges: 2 });
  local.now = 100_000;
  s.mergeHistory("kube-node-lease/a", [
    beat(T0 + 40_000),
    beat(T0 + 75_000),
    beat(T0 + 80_000),
    beat(T0 + 85_000),
    beat(T0 + 90_000),
  ]);
  assert.deepEqual(
    s.hearts.get("kube-node-lease/a")!.beats.map((b) => b.t - T0),
    [
      80_000,
      85_000,
      90_000,
    ],
  );
});

Deno.test("store keeps a bounded list of wire exchanges per node", () => {
  const { s } = store();
  const ex = (latencyMs: number) => ({
    node: "a",
    conn: "10.0.0.2:4000->10.0.0.1:6443",
    at: new Date(T0).toISOString(),
    latencyMs,
    bytesSent: 100,
    bytesReceived: 200,
    srttUs: 300,
    retransmits: 0,
    resets: 0,
  });
  s.applyWire({ exchanges: [ex(1), ex(2), ex(3)] });
  assert.deepEqual(s.wire.get("a")?.map((e) => e.latencyMs), [2, 3]);
});

Deno.test("store follows the source's time scale", () => {
  const { s, local } = store();
  s.applySource({ ...SOURCE, connected: false, timeScale: 10 });
  assert.equal(s.source?.connected, false);
  local.now += 1_000;
  assert.equal(s.clock.now(), T0 + 10_000);
});

Deno.test("store remembers when the source was disconnected", () => {
  const { s } = store();
  const at = (ms: number) => new Date(T0 + ms).toISOString();
  s.applySource({
    ...SOURCE,
    connected: false,
    reason: "timeout",
    since: at(5_000),
  });
  s.applySource({
    ...SOURCE,
    connected: false,
    reason: "still",
    since: at(5_000),
  });
  assert.deepEqual(s.outages, [{ from: T0 + 5_000, to: null }]);
  s.applySource({ ...SOURCE, connected: true, since: at(9_000) });
  assert.deepEqual(s.outages, [{ from: T0 + 5_000, to: T0 + 9_000 }]);
});

Deno.test("with several clusters each heart's cardiogram shows only its own cluster's outages", () => {
  const { s } = store();
  const at = (ms: number) => new Date(T0 + ms).toISOString();
  const east = heart("n1", { id: "east/kube-node-lease/n1", cluster: "east" });
  const west = heart("n1", { id: "west/kube-node-lease/n1", cluster: "west" });
  const clusters = (westUp: boolean, since: number) => [
    { name: "east", server: "e", connected: true, since: at(0) },
    { name: "west", server: "w", connected: westUp, since: at(since) },
  ];
  s.applySource({
    ...SOURCE,
    connected: false,
    since: at(5_000),
    clusters: clusters(false, 5_000),
  });
  assert.deepEqual(s.outagesOf(west), [{ from: T0 + 5_000, to: null }]);
  assert.deepEqual(s.outagesOf(east), []);
  s.applySource({
    ...SOURCE,
    connected: true,
    since: at(9_000),
    clusters: clusters(true, 9_000),
  });
  assert.deepEqual(s.outagesOf(west), [{ from: T0 + 5_000, to: T0 + 9_000 }]);
  assert.deepEqual(s.outagesOf(east), []);
  // A single-cluster heart shows the source's outages.
  assert.deepEqual(s.outagesOf(heart("n2")), s.outages);
});

Deno.test("the stream is stale after two and a half ping intervals without a word, with its age as the reason", () => {
  assert.equal(STREAM_STALE_AFTER_MS, 5_000);
  assert.equal(streamStaleReason(null, 60_000), null, "never heard: no claim");
  assert.equal(streamStaleReason(1_000, 5_999), null);
  assert.equal(streamStaleReason(1_000, 6_000), "stream lost 5 s ago");
  assert.equal(streamStaleReason(1_000, 8_900), "stream lost 7 s ago");
});

Deno.test("while the stream is lost every heart reads unknown with the reason; when it speaks again the server's statuses return", () => {
  const { s, local } = store();
  s.applyStatus({
    id: "9",
    from: "healthy",
    to: "late",
    heart: heart("b", { status: "late" }),
  });
  s.heard(0);
  const shown = () =>
    [...s.hearts.values()].map((e) => `${e.heart.name} ${s.statusOf(e.heart)}`);
  local.now = 4_900;
  assert.deepEqual(shown(), ["a healthy", "b late"]);
  assert.equal(s.staleReason(), null);
  local.now = 7_200;
  assert.deepEqual(shown(), ["a unknown", "b unknown"]);
  assert.equal(s.staleReason(), "stream lost 7 s ago");
  // The model keeps the server's statuses; only what is shown changes.
  assert.equal(s.hearts.get("kube-node-lease/a")!.heart.status, "healthy");
  s.heard(7_300); // any message: an event or a ping
  assert.deepEqual(shown(), ["a healthy", "b late"]);
});

Deno.test("the store tells subscribers when the stream turns stale, each second while it stays so, and when it is back", () => {
  const { s } = store();
  s.heard(0);
  let calls = 0;
  s.subscribe(() => calls++);
  s.tick(1_000);
  s.tick(4_999);
  assert.equal(calls, 0);
  s.tick(5_000);
  assert.equal(calls, 1);
  s.tick(5_500);
  assert.equal(calls, 1, "same reason, no change");
  s.tick(6_000);
  assert.equal(calls, 2, "the age moved on");
  s.heard(6_100);
  assert.equal(calls, 3);
  assert.equal(s.staleReason(6_100), null);
});

Deno.test("a ping moves the UI's estimate of the server clock forward and changes no heart", () => {
  const { s, local } = store();
  local.now = 1_000;
  const before = s.version;
  s.applyPing({ serverTime: new Date(T0 + 5_000).toISOString() });
  assert.equal(s.clock.now(), T0 + 5_000);
  s.applyPing({ serverTime: "garbage" });
  assert.equal(s.clock.now(), T0 + 5_000);
  assert.equal(s.version, before);
});

Deno.test("a heart shown while the stream is lost is unknown and carries no diagnosis, the stored one unchanged", () => {
  const { s, local } = store();
  const late = heart("b", {
    status: "late",
    diagnosis: {
      cause: "kubelet",
      since: new Date(T0).toISOString(),
      summary: "kubelet sent no renewal for 24 s",
      evidence: [],
    },
  });
  s.applyStatus({ id: "9", from: "healthy", to: "late", heart: late });
  s.heard(0);
  local.now = 1_000;
  assert.equal(s.shown(late), late);
  local.now = 6_000;
  const shown = s.shown(late);
  assert.equal(shown.status, "unknown");
  assert.equal("diagnosis" in shown, false);
  assert.deepEqual(staleHeart(late), shown);
  assert.equal(late.status, "late");
  assert.equal(late.diagnosis?.cause, "kubelet");
});

Deno.test("store takes the stream's compact snapshot and batches: one change per batch, beats to listeners with their hearts", () => {
  const { s } = store();
  s.applyStreamSnapshot({
    v: 2,
    generatedAt: new Date(T0).toISOString(),
    t: T0,
    source: SOURCE,
    hearts: [
      ["a", 0, 0, -10_000, 40, 40, 10, 10, 3, 0, null],
      ["b", 0, 0, -10_000, 40, 40, 10, 10, 3, 0, null],
    ],
  });
  assert.equal(s.hearts.get("kube-node-lease/a")?.heart.beats, 3);
  let changes = 0;
  s.subscribe(() => changes++);
  const beats: [string, number, string][] = [];
  s.onBeat((e, before) => beats.push([e.heart.id, e.heart.beats, before]));
  s.applyBatch({
    t: T0 + 1000,
    e: [
      ["b", "a", 0, 40, 10, 4],
      ["s", "b", 1],
      ["b", "a", 500, 40, 0.5, 5, 3.5, "e"],
      ["x", "b"],
      ["w", "a", "c1", 490, 3.5, 600, 500, 250, 0, 0, "e", 200],
      ["w", "zz", "c1", 490, 3.5, 600, 500, 250, 0, 0],
    ],
  });
  assert.equal(changes, 1, "one change for the whole batch");
  assert.deepEqual(beats, [
    ["kube-node-lease/a", 4, "healthy"],
    ["kube-node-lease/a", 5, "healthy"],
  ]);
  const a = s.hearts.get("kube-node-lease/a")!;
  assert.equal(a.heart.lastObservedAt, new Date(T0 + 1500).toISOString());
  assert.equal(a.heart.lastRenewTime, new Date(T0 + 1460).toISOString());
  assert.equal(a.heart.lastIntervalSeconds, 0.5);
  assert.equal(a.heart.wire?.lastLatencyMs, 3.5);
  assert.equal(a.beats.length, 2);
  assert.equal(s.hearts.has("kube-node-lease/b"), false);
  assert.equal(s.wire.get("a")?.length, 1);
  assert.equal(
    s.wire.has("zz"),
    false,
    "no exchanges kept for a node without a heart",
  );
});

Deno.test("store keeps a node's exchanges no longer than keepMs", () => {
  const { s, local } = store({
    keepMs: 60_000,
    maxBeats: 100,
    maxExchanges: 50,
  });
  const x = (atMs: number) => ({
    node: "a",
    conn: "c",
    at: new Date(atMs).toISOString(),
    latencyMs: 1,
    bytesSent: 600,
    bytesReceived: 500,
    srttUs: 100,
    retransmits: 0,
    resets: 0,
  });
  s.applyWire({ exchanges: [x(T0), x(T0 + 10_000)] });
  assert.equal(s.wire.get("a")?.length, 2);
  local.now = 65_000; // server time T0 + 65 s
  s.applyWire({ exchanges: [x(T0 + 65_000)] });
  assert.deepEqual(
    s.wire.get("a")?.map((e) => Date.parse(e.at) - T0),
    [10_000, 65_000],
  );
  local.now = 200_000;
  s.applyWire({ exchanges: [] });
  assert.equal(s.wire.has("a"), false, "a node's exchanges all aged out");
});

Deno.test("from the compact stream the store keeps each heart's cluster and the phrases of diagnoses, episodes and the source", () => {
  const { s } = store();
  const at = (ms: number) => new Date(T0 + ms).toISOString();
  const source: SourceState = {
    ...SOURCE,
    kind: "cluster",
    connected: false,
    reason: 'cluster "west": watch failed',
    since: at(0),
    wire: {
      available: false,
      reason: "no agent reported",
      reasonPhrase: { id: "source.waiting", args: {} },
      pairing: "none",
      pairingPhrase: { id: "source.slow", args: {} },
    },
    clusters: [
      { name: "east", server: "e", connected: true, since: at(0) },
      { name: "west", server: "w", connected: false, since: at(0) },
    ],
  };
  s.applyStreamSnapshot({
    v: 2,
    generatedAt: at(0),
    t: T0,
    source,
    hearts: [
      ["east/kube-node-lease/n1", 0, 0, -10_000, 40, 40, 10, 10, 3, 0, null],
      ["west/kube-node-lease/n1", 3, 0, -10_000, 40, 40, 10, 10, 3, 0, null],
    ],
  });
  const east = s.hearts.get("east/kube-node-lease/n1")!.heart;
  assert.equal(east.cluster, "east");
  assert.equal(east.namespace, "kube-node-lease");
  assert.equal(east.name, "n1");
  assert.equal(s.hearts.get("west/kube-node-lease/n1")?.heart.cluster, "west");
  assert.deepEqual(s.source?.wire, source.wire);
  const diagnosis = {
    cause: "kubelet" as const,
    since: at(1_000),
    summary: "kubelet sent no renewal for 24 s",
    summaryPhrase: {
      id: "kubelet.noRenewal" as const,
      args: { silentMs: 24_000 },
    },
    evidence: [{
      at: at(1_000),
      text: "no renewal for 24 s",
      phrase: {
        id: "kubelet.noRenewal" as const,
        args: { silentMs: 24_000 },
      },
    }],
  };
  s.applyBatch({
    t: T0 + 1000,
    e: [
      ["b", "east/kube-node-lease/n1", 0, 40, 10, 4],
      ["s", "east/kube-node-lease/n1", 1],
      ["d", {
        id: "east/kube-node-lease/n1",
        cluster: "east",
        diagnosis,
        episode: {
          id: "east/kube-node-lease/n1",
          cluster: "east",
          start: at(1_000),
          end: null,
          worst: "late",
          cause: "kubelet",
          causeSince: at(1_000),
          summary: diagnosis.summary,
          summaryPhrase: diagnosis.summaryPhrase,
          evidence: diagnosis.evidence,
        },
      }],
    ],
  });
  const after = s.hearts.get("east/kube-node-lease/n1")!.heart;
  assert.equal(after.cluster, "east");
  assert.equal(after.beats, 4);
  assert.equal(after.status, "late");
  assert.deepEqual(after.diagnosis, diagnosis);
  const episode = s.episodes.get("east/kube-node-lease/n1")?.[0];
  assert.equal(episode?.cluster, "east");
  assert.deepEqual(episode?.summaryPhrase, diagnosis.summaryPhrase);
});
