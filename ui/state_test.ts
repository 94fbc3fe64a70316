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
