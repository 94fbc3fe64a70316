import assert from "node:assert/strict";
import type { Lease } from "../core/lease_types.ts";
import { FakeClock } from "../core/fake_clock.ts";
import type {
  Heart,
  StreamBatch,
  StreamSnapshot,
  WireExchange,
} from "../core/api_types.ts";
import { StreamMirror } from "../core/stream_codec.ts";
import { HeartHub } from "./heart_hub.ts";
import { STREAM_IDLE_MS } from "./stream_batcher.ts";
import { snapshotCache } from "./snapshot_cache.ts";

function lease(
  namespace: string,
  name: string,
  renewMs: number,
  holder = name,
): Lease {
  return {
    metadata: { namespace, name },
    spec: {
      holderIdentity: holder,
      leaseDurationSeconds: 40,
      renewTime: new Date(renewMs).toISOString(),
    },
  };
}

function exchange(node: string, atMs: number, retransmits = 0): WireExchange {
  return {
    node,
    conn: "10.0.0.2:40000->10.0.0.1:6443",
    at: new Date(atMs).toISOString(),
    latencyMs: 4.25,
    bytesSent: 600,
    bytesReceived: 500,
    srttUs: 250,
    retransmits,
    resets: 0,
    confidence: "exact",
    lease: `kube-node-lease/${node}`,
    status: 200,
  };
}

function setup() {
  const clock = new FakeClock();
  const timer = new FakeClock();
  const hub = new HeartHub({
    clock,
    batchClock: timer,
    source: { kind: "mock", name: "test" },
  });
  hub.source(true, undefined, clock.now());
  return { clock, timer, hub, t0: clock.now() };
}

/** A client: the snapshot, then every batch, through the event log. */
function client(hub: HeartHub) {
  hub.batcher.flush();
  const sub = hub.events.subscribe();
  const start = snapshotCache(hub).start(hub.clock.now(), () => true);
  sub.preload(start.backlog);
  const text = new TextDecoder().decode(
    new Uint8Array(start.chunks.flatMap((c) => [...c])),
  );
  const snapshot = JSON.parse(
    text.slice(text.indexOf("data: ") + 6).trim(),
  ) as StreamSnapshot;
  const mirror = new StreamMirror();
  mirror.applySnapshot(snapshot);
  const batches: StreamBatch[] = [];
  return {
    mirror,
    batches,
    snapshot,
    /** Takes every batch published so far. */
    async read() {
      hub.batcher.flush();
      for (const e of await sub.take(0)) {
        assert.equal(e.event, "batch");
        const batch = JSON.parse(e.data) as StreamBatch;
        batches.push(batch);
        mirror.applyBatch(batch);
      }
    },
    close: () => sub.close(),
  };
}

Deno.test("a client keeping hearts from the compact snapshot and batches has them exactly as the server does", async () => {
  const { clock, hub, t0 } = setup();
  hub.resync([
    lease("kube-node-lease", "n1", t0 - 2000),
    lease("kube-node-lease", "n2", t0 - 1000),
    lease("kube-system", "kube-scheduler", t0 - 500, "sched-a"),
  ], t0);
  hub.wire([exchange("n1", t0 - 1990)]);
  const c = client(hub);
  assert.deepEqual([...c.mirror.hearts.values()], hub.hearts());
  // Beats, one with its exchange; a leader handing over; a new node; wire
  // trouble; a node that goes silent until late and expired; a deletion.
  for (let i = 1; i <= 3; i++) {
    await clock.advance(10_000);
    const at = t0 + i * 10_000;
    hub.wire([exchange("n1", at + 1, i === 3 ? 2 : 0)]);
    hub.event(
      {
        type: "MODIFIED",
        object: lease("kube-node-lease", "n1", at, "n1"),
      },
      at + 20,
    );
    hub.event(
      {
        type: "MODIFIED",
        object: lease(
          "kube-system",
          "kube-scheduler",
          at,
          i === 2 ? "sched-b" : i === 3 ? "sched-b" : "sched-a",
        ),
      },
      at + 30,
    );
    await c.read();
    assert.deepEqual(
      [...c.mirror.hearts.values()],
      hub.hearts(),
      `after round ${i}`,
    );
  }
  hub.event(
    { type: "ADDED", object: lease("kube-node-lease", "n3", clock.now()) },
    clock.now(),
  );
  await clock.advance(60_000);
  hub.sweep(clock.now());
  hub.event(
    {
      type: "DELETED",
      object: lease("kube-node-lease", "n2", t0 - 1000),
    },
    clock.now(),
  );
  await c.read();
  assert.deepEqual([...c.mirror.hearts.values()], hub.hearts());
  assert.ok(
    [...c.mirror.hearts.values()].some((h) => h.status !== "healthy"),
    "some heart went late or expired",
  );
  assert.ok(!c.mirror.hearts.has("kube-node-lease/n2"), "n2 was deleted");
  c.close();
});

Deno.test("a beat travels as a key, two times and a few numbers", async () => {
  const { clock, hub, t0 } = setup();
  hub.resync([lease("kube-node-lease", "node-0001", t0)], t0);
  const c = client(hub);
  await clock.advance(10_000);
  hub.event(
    {
      type: "MODIFIED",
      object: lease("kube-node-lease", "node-0001", t0 + 10_000),
    },
    t0 + 10_040,
  );
  await c.read();
  await clock.advance(10_000);
  hub.event(
    {
      type: "MODIFIED",
      object: lease("kube-node-lease", "node-0001", t0 + 20_000),
    },
    t0 + 20_040,
  );
  await c.read();
  const batch = c.batches.at(-1);
  // Observed 40 ms after the batch's time, renewed 40 ms before that,
  // 10 s after the last, the heart's second beat.
  assert.deepEqual(batch!.e, [["b", "node-0001", 40, 40, 10, 2]]);
  assert.ok(JSON.stringify(batch!.e[0]).length < 40);
  c.close();
});

Deno.test("events within a window go out as one batch, on the window's clock, and only while someone listens", async () => {
  const { clock, timer, hub, t0 } = setup();
  const names = Array.from({ length: 50 }, (_, i) => `n${i}`);
  hub.resync(names.map((n) => lease("kube-node-lease", n, t0)), t0);
  // Nobody listens: events wait, without a timer.
  const before = hub.events.lastId;
  await clock.advance(10_000);
  for (const n of names) {
    hub.event(
      { type: "MODIFIED", object: lease("kube-node-lease", n, t0 + 10_000) },
      t0 + 10_010,
    );
  }
  await timer.advance(1_000);
  assert.equal(hub.events.lastId, before, "nothing published to nobody");
  assert.equal(timer.pending, 0);
  // A client subscribes (flushing what waited), then beats come within a window.
  const c = client(hub);
  await clock.advance(10_000);
  for (const n of names) {
    hub.event(
      { type: "MODIFIED", object: lease("kube-node-lease", n, t0 + 20_000) },
      t0 + 20_010,
    );
  }
  const id = hub.events.lastId;
  await timer.advance(50);
  assert.equal(hub.events.lastId, id, "the window is still open");
  await timer.advance(50);
  assert.equal(hub.events.lastId, id + 1, "one batch for the window");
  await c.read();
  assert.equal(c.batches.length, 1);
  assert.equal(c.batches[0]!.e.length, names.length);
  c.close();
});

Deno.test("a minute after the last client left, events are not encoded; the next client starts from a snapshot and stays exact", async () => {
  const { clock, timer, hub, t0 } = setup();
  const names = ["n1", "n2", "n3"];
  hub.resync(names.map((n) => lease("kube-node-lease", n, t0)), t0);
  const first = client(hub);
  const beat = (n: string, at: number, holder = n) =>
    hub.event(
      { type: "MODIFIED", object: lease("kube-node-lease", n, at, holder) },
      at + 10,
    );
  await clock.advance(10_000);
  for (const n of names) beat(n, t0 + 10_000);
  await first.read();
  const resumeFrom = hub.events.lastId;
  first.close();
  // Within the minute a client could still resume from its last id.
  await timer.advance(STREAM_IDLE_MS - 1);
  await clock.advance(10_000);
  beat("n1", t0 + 20_000);
  hub.batcher.flush();
  assert.equal(hub.events.since(resumeFrom)?.length, 1, "still resumable");
  assert.ok(hub.feed.wanted());
  // Then the batcher stops: nothing is encoded, and nothing is resumable.
  await timer.advance(1);
  assert.equal(hub.feed.wanted(), false);
  assert.equal(hub.batcher.remembered, 0, "no shapes kept while paused");
  const entries = hub.batcher.entries;
  const lastId = hub.events.lastId;
  await clock.advance(10_000);
  beat("n1", t0 + 30_000, "other-holder");
  beat("n2", t0 + 30_000);
  hub.event(
    { type: "DELETED", object: lease("kube-node-lease", "n3", t0) },
    t0 + 30_000,
  );
  hub.event(
    { type: "ADDED", object: lease("kube-node-lease", "n4", t0 + 30_000) },
    t0 + 30_000,
  );
  assert.equal(hub.batcher.entries, entries, "nothing encoded");
  assert.equal(hub.batcher.pending, 0);
  assert.equal(hub.events.since(resumeFrom), null, "resuming needs a snapshot");
  assert.equal(hub.events.lastId, lastId, "no batch published");
  // The next client's snapshot has what happened meanwhile; it stays exact.
  const second = client(hub);
  assert.deepEqual([...second.mirror.hearts.values()], hub.hearts());
  await clock.advance(10_000);
  beat("n1", t0 + 40_000, "other-holder");
  beat("n2", t0 + 40_000, "new-holder");
  beat("n4", t0 + 40_000);
  await second.read();
  assert.equal(second.batches.length, 1);
  assert.deepEqual([...second.mirror.hearts.values()], hub.hearts());
  second.close();
});

Deno.test("the snapshot of 5,000 node hearts with wire data is under 500 KB", () => {
  const { hub, t0 } = setup();
  const names = Array.from(
    { length: 5000 },
    (_, i) => `worker-${String(i).padStart(5, "0")}.example.internal`,
  );
  hub.resync(
    names.map((n, i) => lease("kube-node-lease", n, t0 - (i % 10_000))),
    t0,
  );
  hub.resync(
    names.map((n, i) => lease("kube-node-lease", n, t0 + 10_000 - (i % 997))),
    t0 + 10_020,
  );
  hub.wire(names.map((n, i) => exchange(n, t0 + 10_000 - (i % 997))));
  const start = snapshotCache(hub).start(t0 + 10_050, () => true);
  const bytes = start.chunks.reduce((n, c) => n + c.byteLength, 0);
  assert.ok(bytes < 500_000, `snapshot ${bytes} bytes`);
  const full = JSON.stringify(hub.snapshot(t0 + 10_050)).length;
  assert.ok(bytes * 3 < full, `compact ${bytes} B vs full ${full} B`);
});

Deno.test("with several clusters the compact stream carries each heart's cluster and the clusters' diagnoses", async () => {
  const clock = new FakeClock();
  const hub = new HeartHub({
    clock,
    batchClock: new FakeClock(),
    source: { kind: "cluster", name: "east, west" },
    clusters: [
      { name: "east", server: "https://east.example:6443" },
      { name: "west", server: "https://west.example:6443" },
    ],
  });
  const t0 = clock.now();
  for (const name of ["east", "west"]) {
    hub.sink(name).source(true, undefined, t0);
    hub.sink(name).resync([
      lease("kube-node-lease", "n1", t0 - 1000),
      lease("kube-system", "kube-scheduler", t0 - 500, "sched-a"),
    ], t0);
  }
  const byId = (hearts: Iterable<Heart>) =>
    [...hearts].sort((a, b) => a.id < b.id ? -1 : 1);
  const c = client(hub);
  assert.deepEqual(byId(c.mirror.hearts.values()), byId(hub.hearts()));
  assert.deepEqual(
    byId(c.mirror.hearts.values()).map((h) => [h.id, h.cluster]),
    [
      ["east/kube-node-lease/n1", "east"],
      ["east/kube-system/kube-scheduler", "east"],
      ["west/kube-node-lease/n1", "west"],
      ["west/kube-system/kube-scheduler", "west"],
    ],
  );
  assert.deepEqual(
    c.snapshot.source.clusters?.map((x) => x.name),
    ["east", "west"],
  );
  await clock.advance(10_000);
  hub.sink("east").event({
    type: "MODIFIED",
    object: lease("kube-node-lease", "n1", t0 + 10_000),
  }, t0 + 10_020);
  hub.sink("west").source(false, "watch failed: refused", t0 + 10_030);
  await clock.advance(60_000);
  hub.sweep(clock.now());
  await c.read();
  assert.deepEqual(byId(c.mirror.hearts.values()), byId(hub.hearts()));
  const west = c.mirror.hearts.get("west/kube-node-lease/n1")!;
  assert.equal(west.cluster, "west");
  assert.equal(west.status, "unknown");
  assert.equal(c.mirror.source?.clusters?.[1]?.connected, false);
  const entries = c.batches.flatMap((b) => b.e);
  const diagnoses = entries.filter((e) => e[0] === "d");
  assert.ok(diagnoses.length > 0, "the blind cluster's diagnosis is sent");
  for (const [, d] of diagnoses as ["d", { cluster?: string }][]) {
    assert.ok(d.cluster === "east" || d.cluster === "west");
  }
  c.close();
});
