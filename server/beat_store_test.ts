import assert from "node:assert/strict";
import { BeatStore, type StoredBeat, toBeat } from "./beat_store.ts";

const T0 = Date.parse("2026-03-01T10:00:00Z");

function beat(seconds: number, holder: string | null = "n1"): StoredBeat {
  return {
    renewTime: T0 + seconds * 1000 - 20,
    observedAt: T0 + seconds * 1000,
    intervalSeconds: seconds === 0 ? null : 10,
    holder,
    transition: false,
  };
}

Deno.test("store returns beats oldest first and keeps every field", () => {
  const store = new BeatStore();
  store.append("a", beat(0));
  store.append("a", {
    ...beat(10, "n2"),
    transition: true,
    wireLatencyMs: 4.5,
  });
  const got = store.query("a", { now: T0 + 20_000 });
  assert.equal(got.length, 2);
  assert.deepEqual(got[0], beat(0));
  assert.equal(got[1]!.holder, "n2");
  assert.equal(got[1]!.transition, true);
  assert.equal(got[1]!.wireLatencyMs, 4.5);
  assert.deepEqual(toBeat(got[0]!), {
    renewTime: "2026-03-01T09:59:59.980Z",
    observedAt: "2026-03-01T10:00:00.000Z",
    intervalSeconds: null,
    holder: "n1",
    transition: false,
  });
});

Deno.test("store drops beats older than the retention window", () => {
  const store = new BeatStore({ retentionMs: 60_000 });
  for (let s = 0; s <= 120; s += 10) store.append("a", beat(s));
  const got = store.query("a", { now: T0 + 120_000 });
  assert.deepEqual(got.map((b) => (b.observedAt - T0) / 1000), [
    60,
    70,
    80,
    90,
    100,
    110,
    120,
  ]);
  store.prune(T0 + 1_000_000);
  assert.equal(store.count("a"), 0);
});

Deno.test("store caps each heart and keeps the newest beats", () => {
  const store = new BeatStore({ maxBeatsPerHeart: 50 });
  for (let i = 0; i < 1000; i++) store.append("a", beat(i));
  assert.equal(store.count("a"), 50);
  const got = store.query("a", { now: T0 + 1000_000 });
  assert.equal((got[0]!.observedAt - T0) / 1000, 950);
  assert.equal((got.at(-1)!.observedAt - T0) / 1000, 999);
});

Deno.test("store range queries honour since and limit across the ring's wrap", () => {
  const store = new BeatStore({ maxBeatsPerHeart: 16 });
  for (let i = 0; i < 40; i++) store.append("a", beat(i));
  const now = T0 + 40_000;
  assert.deepEqual(
    store.query("a", { now, since: T0 + 35_000 }).map((b) =>
      (b.observedAt - T0) / 1000
    ),
    [35, 36, 37, 38, 39],
  );
  assert.deepEqual(
    store.query("a", { now, limit: 2 }).map((b) => (b.observedAt - T0) / 1000),
    [38, 39],
  );
  assert.deepEqual(store.query("missing", { now }), []);
});

Deno.test("store records the wire latency of the beat with a given renewTime", () => {
  const store = new BeatStore();
  for (let i = 0; i < 5; i++) store.append("a", beat(i * 10));
  assert.equal(store.setWireLatency("a", T0 + 20_000 - 20, 12.5), true);
  assert.equal(store.setWireLatency("a", T0 + 21_000, 1), false);
  const got = store.query("a", { now: T0 + 50_000 });
  assert.equal(got[2]!.wireLatencyMs, 12.5);
  assert.equal(got[1]!.wireLatencyMs, undefined);
});

Deno.test("store memory stays bounded with 5,000 nodes and 1,000 other leases over an hour", () => {
  const store = new BeatStore();
  // Nodes beat every 10 s, other leases every 2 s, for a little over an hour.
  for (let s = 0; s <= 3700; s += 2) {
    const b = beat(s);
    for (let l = 0; l < 1000; l++) store.append(`lease-${l}`, b);
    if (s % 10 === 0) {
      for (let n = 0; n < 5000; n++) store.append(`node-${n}`, b);
    }
  }
  assert.equal(store.count("node-0"), 361, "one hour of 10 s beats");
  assert.equal(store.count("lease-0"), 1801, "one hour of 2 s beats");
  const mb = store.byteSize() / 1e6;
  assert.ok(mb < 100, `store holds ${mb.toFixed(1)} MB`);
});

Deno.test("store rejects a cap below one", () => {
  assert.throws(() => new BeatStore({ maxBeatsPerHeart: 0 }), /at least 1/);
});

Deno.test("a beat's wire confidence shares the flags byte with its transition", () => {
  const store = new BeatStore();
  const t = Date.parse("2026-01-01T00:00:00Z");
  store.append("ns/a", {
    renewTime: t,
    observedAt: t + 5,
    intervalSeconds: null,
    holder: "h",
    transition: true,
  });
  assert.equal(store.setWireLatency("ns/a", t, 2.5, "exact"), true);
  const [beat] = store.query("ns/a", { now: t + 10 });
  assert.equal(beat!.transition, true);
  assert.equal(beat!.wireConfidence, "exact");
  assert.deepEqual(
    { ...toBeat(beat!) },
    {
      renewTime: "2026-01-01T00:00:00.000Z",
      observedAt: "2026-01-01T00:00:00.005Z",
      intervalSeconds: null,
      holder: "h",
      transition: true,
      wireLatencyMs: 2.5,
      wireConfidence: "exact",
    },
  );
});
