import assert from "node:assert/strict";
import type { Lease } from "../core/lease_types.ts";
import { FakeClock } from "../core/fake_clock.ts";
import type { HubEvent } from "./hub_feed.ts";
import { HeartHub, WIRE_GRACE_MS } from "./heart_hub.ts";
import type { StatusEvent, WireExchange } from "../core/api_types.ts";

function nodeLease(name: string, renewMs: number, holder = name): Lease {
  return {
    metadata: { namespace: "kube-node-lease", name },
    spec: {
      holderIdentity: holder,
      leaseDurationSeconds: 40,
      renewTime: new Date(renewMs).toISOString(),
    },
  };
}

/** A node n1 exchange starting at `atMs`. */
function exchange(atMs: number, latencyMs: number): WireExchange {
  return {
    node: "n1",
    conn: "10.0.0.2:40000->10.0.0.1:6443",
    at: new Date(atMs).toISOString(),
    latencyMs,
    bytesSent: 600,
    bytesReceived: 500,
    srttUs: 250,
    retransmits: 0,
    resets: 0,
  };
}

/** Every event each test hub published on its feed. */
const recorded = new WeakMap<HeartHub, HubEvent[]>();

function setup() {
  const clock = new FakeClock();
  const hub = new HeartHub({ clock, source: { kind: "mock", name: "test" } });
  recorded.set(hub, hub.feed.record());
  hub.source(true, undefined, clock.now());
  return { clock, hub, t0: clock.now() };
}

function events(hub: HeartHub, name?: string) {
  return recorded.get(hub)!
    .filter((e) => !name || e.event === name)
    .map((e) => ({ event: e.event, data: JSON.stringify(e.data) }));
}

Deno.test("hub turns lease updates into beats and stream events", () => {
  const { clock, hub, t0 } = setup();
  hub.resync([nodeLease("n1", t0 - 2000)], t0);
  hub.event(
    { type: "MODIFIED", object: nodeLease("n1", t0 + 10_000) },
    t0 + 10_050,
  );
  hub.event(
    { type: "MODIFIED", object: nodeLease("n1", t0 + 20_000) },
    t0 + 20_040,
  );
  hub.event(
    { type: "MODIFIED", object: nodeLease("n1", t0 + 20_000) },
    t0 + 21_000,
  ); // no change: no beat
  const heart = hub.heart("kube-node-lease/n1", t0 + 21_000)!;
  assert.equal(heart.beats, 2);
  assert.equal(heart.status, "healthy");
  assert.equal(heart.expectedIntervalSeconds, 10);
  assert.equal(heart.lastIntervalSeconds, 9.99);
  assert.equal(heart.skewSeconds, 0.04);
  assert.equal(events(hub, "beat").length, 2);
  assert.deepEqual(
    hub.beats("kube-node-lease/n1")!.map((b) => b.intervalSeconds),
    [null, 9.99],
  );
  assert.equal(hub.beats("nope/x"), undefined);
  void clock;
});

Deno.test("hub sweeps a silent heart to late, then expired, then back to healthy", async () => {
  const { clock, hub, t0 } = setup();
  const controller = new AbortController();
  const sweeper = hub.runSweeper(controller.signal, 1000);
  hub.resync([nodeLease("n1", t0)], t0);
  hub.event({ type: "MODIFIED", object: nodeLease("n1", t0 + 1) }, t0);
  await clock.advance(21_000);
  assert.equal(hub.heart("kube-node-lease/n1")!.status, "late");
  await clock.advance(20_000);
  assert.equal(hub.heart("kube-node-lease/n1")!.status, "expired");
  hub.event(
    { type: "MODIFIED", object: nodeLease("n1", clock.now()) },
    clock.now(),
  );
  assert.equal(hub.heart("kube-node-lease/n1")!.status, "healthy");
  const transitions = events(hub, "status").map((e) =>
    JSON.parse(e.data) as StatusEvent
  ).map((s) => `${s.from}>${s.to}`);
  assert.deepEqual(transitions, [
    "null>unknown",
    "unknown>healthy",
    "healthy>late",
    "late>expired",
    "expired>healthy",
  ]);
  controller.abort();
  await sweeper;
});

Deno.test("hub shows unknown, never expired, while the source is down", () => {
  const { hub, t0 } = setup();
  hub.resync([nodeLease("n1", t0)], t0);
  hub.event({ type: "MODIFIED", object: nodeLease("n1", t0 + 1) }, t0);
  hub.source(false, "connection refused", t0 + 5000);
  assert.equal(hub.sourceState().connected, false);
  assert.equal(hub.sourceState().reason, "connection refused");
  hub.sweep(t0 + 120_000);
  assert.equal(hub.heart("kube-node-lease/n1")!.status, "unknown");
  // Back after two minutes: the heart is judged from the reconnection on.
  hub.source(true, undefined, t0 + 120_000);
  hub.resync([nodeLease("n1", t0 + 1)], t0 + 120_000);
  assert.equal(
    hub.heart("kube-node-lease/n1", t0 + 121_000)!.status,
    "healthy",
  );
  hub.sweep(t0 + 161_000);
  assert.equal(hub.heart("kube-node-lease/n1")!.status, "expired");
  assert.equal(
    events(hub, "source").length,
    3,
    "connected, lost, connected again",
  );
});

Deno.test("resync after a relist adds one beat per changed lease and deletes vanished ones", () => {
  const { hub, t0 } = setup();
  hub.resync([nodeLease("n1", t0), nodeLease("n2", t0)], t0);
  hub.resync([nodeLease("n1", t0 + 10_000), nodeLease("n3", t0)], t0 + 10_000);
  hub.resync([nodeLease("n1", t0 + 10_000), nodeLease("n3", t0)], t0 + 11_000);
  assert.deepEqual(hub.hearts().map((h) => h.id).sort(), [
    "kube-node-lease/n1",
    "kube-node-lease/n3",
  ]);
  assert.equal(
    hub.heart("kube-node-lease/n1")!.beats,
    1,
    "unchanged renewTime on the second relist is no beat",
  );
  const deleted = events(hub, "status").map((e) =>
    JSON.parse(e.data) as StatusEvent
  ).filter((s) => s.to === null);
  assert.deepEqual(deleted.map((s) => s.id), ["kube-node-lease/n2"]);
  hub.event({ type: "DELETED", object: nodeLease("n3", t0) }, t0 + 12_000);
  assert.equal(hub.size, 1);
  // A Lease created again under the same name is a new heart, with no
  // history of the one deleted.
  hub.event(
    { type: "ADDED", object: nodeLease("n3", t0 + 13_000) },
    t0 + 13_000,
  );
  hub.event(
    { type: "MODIFIED", object: nodeLease("n3", t0 + 23_000) },
    t0 + 23_000,
  );
  assert.equal(hub.size, 2);
  assert.equal(hub.heart("kube-node-lease/n3")!.beats, 1);
  assert.deepEqual(
    hub.beats("kube-node-lease/n3")!.map((b) => b.renewTime),
    [new Date(t0 + 23_000).toISOString()],
  );
});

Deno.test("hub counts transitions when the holder changes", () => {
  const { hub, t0 } = setup();
  const kcm = (holder: string, renew: number, transitions: number): Lease => ({
    metadata: { namespace: "kube-system", name: "kube-controller-manager" },
    spec: {
      holderIdentity: holder,
      leaseDurationSeconds: 15,
      renewTime: new Date(renew).toISOString(),
      leaseTransitions: transitions,
    },
  });
  hub.resync([kcm("a", t0, 0)], t0);
  hub.event({ type: "MODIFIED", object: kcm("a", t0 + 2000, 0) }, t0 + 2000);
  hub.event(
    { type: "MODIFIED", object: kcm("b", t0 + 20_000, 1) },
    t0 + 20_000,
  );
  const heart = hub.heart("kube-system/kube-controller-manager")!;
  assert.equal(heart.transitions, 1);
  assert.equal(heart.holder, "b");
  assert.equal(heart.kind, "lease");
  assert.deepEqual(hub.beats(heart.id)!.map((b) => b.transition), [
    false,
    true,
  ]);
  assert.equal(hub.counters.transitions, 1);
});

Deno.test("hub pairs a node beat with the wire exchange that carried it", () => {
  const { hub, t0 } = setup();
  hub.resync([nodeLease("n1", t0)], t0);
  // Exchange first, beat second.
  hub.wire([exchange(t0 + 10_003, 7.5)]);
  hub.event(
    { type: "MODIFIED", object: nodeLease("n1", t0 + 10_000) },
    t0 + 10_020,
  );
  // Beat first, exchange second.
  hub.event(
    { type: "MODIFIED", object: nodeLease("n1", t0 + 20_000) },
    t0 + 20_030,
  );
  hub.wire([exchange(t0 + 20_002, 9.25), exchange(t0 + 25_000, 3)]);
  assert.deepEqual(
    hub.beats("kube-node-lease/n1")!.map((b) => b.wireLatencyMs),
    [7.5, 9.25],
  );
  assert.equal(hub.counters.wirePaired, 2);
  const heart = hub.heart("kube-node-lease/n1")!;
  assert.equal(heart.wire?.srttUs, 250);
  assert.equal(heart.wire?.trouble, false);
  hub.wire([{ ...exchange(t0 + 26_000, 3), retransmits: 2 }]);
  assert.equal(hub.heart("kube-node-lease/n1")!.wire?.trouble, true);
  assert.equal(events(hub, "wire").length, 3);
});

Deno.test("a node beat waits briefly for its exchange so the live event carries the wire latency", async () => {
  const { clock, hub, t0 } = setup();
  hub.resync([nodeLease("n1", t0)], t0);
  hub.wire([exchange(t0 + 1000, 2)]); // the node has wire data
  const beats = () =>
    events(hub, "beat").map((e) =>
      JSON.parse(e.data) as { beat: { wireLatencyMs?: number } }
    );
  // The watch event comes first, the agent's report 10 ms later.
  hub.event(
    { type: "MODIFIED", object: nodeLease("n1", t0 + 10_000) },
    t0 + 10_020,
  );
  assert.equal(beats().length, 0, "held for its exchange");
  await clock.advance(10);
  hub.wire([exchange(t0 + 10_002, 6.5)]);
  assert.deepEqual(beats().map((b) => b.beat.wireLatencyMs), [6.5]);
  // No exchange comes: the beat goes out without it after the grace period.
  hub.event(
    { type: "MODIFIED", object: nodeLease("n1", t0 + 20_000) },
    clock.now(),
  );
  assert.equal(beats().length, 1);
  await clock.advance(WIRE_GRACE_MS - 1);
  assert.equal(beats().length, 1, "still held within the grace period");
  await clock.advance(1);
  assert.deepEqual(beats().map((b) => b.beat.wireLatencyMs), [6.5, undefined]);
  // A newer beat releases a held one at once, in order.
  hub.event(
    { type: "MODIFIED", object: nodeLease("n1", t0 + 30_000) },
    clock.now(),
  );
  hub.event(
    { type: "MODIFIED", object: nodeLease("n1", t0 + 40_000) },
    clock.now(),
  );
  assert.equal(beats().length, 3);
  await clock.advance(WIRE_GRACE_MS);
  assert.equal(beats().length, 4);
  assert.equal(hub.heart("kube-node-lease/n1")!.beats, 4);
});

Deno.test("with nobody taking events, a silence's finding is worked out when read, not every second", async () => {
  const clock = new FakeClock();
  // No listener: the stream's batcher stops taking events after its minute.
  const hub = new HeartHub({
    clock,
    batchClock: clock,
    source: { kind: "mock", name: "test" },
  });
  hub.source(true, undefined, clock.now());
  const controller = new AbortController();
  const sweeper = hub.runSweeper(controller.signal, 1000);
  const id = "default/ctl";
  const renew = () =>
    hub.event({
      type: "MODIFIED",
      object: {
        metadata: { namespace: "default", name: "ctl" },
        spec: {
          holderIdentity: "a",
          leaseDurationSeconds: 600,
          renewTime: new Date(clock.now()).toISOString(),
        },
      },
    }, clock.now());
  for (let i = 0; i < 8; i++) {
    renew();
    await clock.advance(10_000);
  }
  assert.equal(hub.feed.wanted(), false);
  const lastBeat = clock.now() - 10_000;
  // Late after twice its 10 s rhythm; then 30 sweeps with nothing new.
  await clock.advance(11_000);
  assert.equal(hub.heart(id)!.status, "late");
  const diagnoses = hub.counters.diagnoses;
  await clock.advance(30_000);
  assert.equal(hub.counters.diagnoses, diagnoses, "no finding per sweep");
  // A reader gets the silence as of now.
  const silent = Math.round((clock.now() - lastBeat) / 1000);
  assert.match(
    hub.heart(id)!.diagnosis!.summary,
    new RegExp(`has not renewed for ${silent} s$`),
  );
  assert.equal(hub.counters.diagnoses, diagnoses + 1);
  // The episode that ends with the next beat names the whole silence.
  await clock.advance(5_000);
  renew();
  await clock.advance(1_000);
  const [episode] = hub.episodes.list(id);
  assert.ok(episode!.end);
  assert.match(
    episode!.summary,
    new RegExp(`has not renewed for ${silent + 5} s$`),
  );
  controller.abort();
  await sweeper;
});

Deno.test("while events are taken, a silence's finding follows every sweep", async () => {
  const { clock, hub } = setup();
  const controller = new AbortController();
  const sweeper = hub.runSweeper(controller.signal, 1000);
  hub.resync([nodeLease("n1", clock.now())], clock.now());
  hub.event(
    { type: "MODIFIED", object: nodeLease("n1", clock.now() + 1) },
    clock.now(),
  );
  await clock.advance(21_000);
  const diagnoses = hub.counters.diagnoses;
  await clock.advance(10_000);
  assert.equal(hub.counters.diagnoses, diagnoses + 10);
  assert.match(
    events(hub, "diagnosis").at(-1)!.data,
    /no renewal for 31 s/,
  );
  controller.abort();
  await sweeper;
});
