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
  const every = (s: number, interval: number): StoredBeat => ({
    ...beat(s),
    intervalSeconds: s === 0 ? null : interval,
  });
  for (let s = 0; s <= 3700; s += 2) {
    const b = every(s, 2);
    for (let l = 0; l < 1000; l++) store.append(`lease-${l}`, b);
    if (s % 10 === 0) {
      const n10 = every(s, 10);
      for (let n = 0; n < 5000; n++) store.append(`node-${n}`, n10);
    }
  }
  assert.equal(store.count("node-0"), 361, "one hour of 10 s beats");
  assert.equal(store.count("lease-0"), 1801, "one hour of 2 s beats");
  const mb = store.byteSize() / 1e6;
  assert.ok(mb < 30, `store holds ${mb.toFixed(1)} MB`);
  const [oldest] = store.query("lease-7", { now: T0 + 3_700_000 });
  assert.equal(oldest!.intervalSeconds, 2);
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

/** The store's contract in the plainest form: arrays, for differential tests. */
class ReferenceStore {
  readonly beats = new Map<string, StoredBeat[]>();
  constructor(readonly retentionMs: number, readonly cap: number) {}
  append(id: string, b: StoredBeat): void {
    const list = this.beats.get(id) ?? [];
    this.beats.set(id, list);
    const cutoff = b.observedAt - this.retentionMs;
    while (list.length > 0 && list[0]!.observedAt < cutoff) list.shift();
    if (list.length >= this.cap) list.shift();
    // Wire latencies are kept as 32-bit floats.
    const kept = { ...b };
    if (b.wireLatencyMs !== undefined) {
      kept.wireLatencyMs = Math.fround(b.wireLatencyMs);
    }
    list.push(kept);
  }
  query(id: string, now: number, since = -Infinity, limit?: number) {
    const from = Math.max(since, now - this.retentionMs);
    const got = (this.beats.get(id) ?? []).filter((b) => b.observedAt >= from);
    return limit !== undefined
      ? got.slice(Math.max(0, got.length - limit))
      : got;
  }
}

Deno.test("store answers like a plain list through gaps, far-off clocks, odd intervals, holder churn, wire latencies and reused blocks", () => {
  let seed = 99;
  const random = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
  const store = new BeatStore({ retentionMs: 600_000, maxBeatsPerHeart: 300 });
  const ref = new ReferenceStore(600_000, 300);
  const ids = ["a", "b", "c", "d"];
  const last = new Map<string, number>();
  let now = T0;
  for (let step = 0; step < 20_000; step++) {
    const id = ids[Math.floor(random() * ids.length)]!;
    const r = random();
    // Mostly steady beats; sometimes long silences, skewed clocks, many holders.
    now += r < 0.01
      ? 70_000 + Math.floor(random() * 900_000)
      : Math.floor(random() * 3_000);
    const prev = last.get(id);
    const interval = prev === undefined
      ? null
      : r < 0.02
      ? 12.345
      : (now - prev) / 1000;
    const skew = r < 0.03
      ? Math.floor((random() - 0.5) * 7_200_000)
      : -Math.floor(random() * 200);
    const holder = r < 0.05
      ? `h-${Math.floor(random() * 400)}`
      : r < 0.06
      ? null
      : "steady";
    const b: StoredBeat = {
      renewTime: now + skew,
      observedAt: now,
      intervalSeconds: interval,
      holder,
      transition: r < 0.05,
    };
    if (r > 0.7) {
      b.wireLatencyMs = Math.round(random() * 5000) / 1000;
      b.wireConfidence = r > 0.85 ? "exact" : "inferred";
    }
    store.append(id, b);
    ref.append(id, b);
    last.set(id, now);
    if (step % 97 === 0) {
      // A late wire report for a recent beat.
      const list = ref.beats.get(id)!;
      const target =
        list[Math.max(0, list.length - 1 - Math.floor(random() * 10))]!;
      assert.equal(
        store.setWireLatency(id, target.renewTime, 7.25, "exact"),
        true,
      );
      target.wireLatencyMs = 7.25;
      target.wireConfidence = "exact";
    }
    if (step % 501 === 0) {
      const q = ids[step % ids.length]!;
      const since = now - Math.floor(random() * 700_000);
      const limit = random() < 0.5 ? undefined : 1 + Math.floor(random() * 50);
      assert.deepEqual(
        store.query(q, { now, since, ...(limit !== undefined && { limit }) }),
        ref.query(q, now, since, limit),
        `query of ${q} at step ${step}`,
      );
    }
    if (step % 4_000 === 3_999) {
      const gone = ids[Math.floor(random() * ids.length)]!;
      store.delete(gone);
      ref.beats.delete(gone);
      last.delete(gone);
    }
  }
  for (const id of ids) {
    assert.deepEqual(store.query(id, { now }), ref.query(id, now), id);
    assert.equal(store.count(id), ref.query(id, -Infinity).length);
  }
});

Deno.test("store gives blocks back: hearts that come and go do not grow it", () => {
  const store = new BeatStore({ retentionMs: 60_000 });
  const fill = (prefix: string, from: number) => {
    for (let s = 0; s < 600; s++) {
      for (let h = 0; h < 100; h++) {
        store.append(`${prefix}-${h}`, {
          renewTime: T0 + (from + s) * 1000,
          observedAt: T0 + (from + s) * 1000,
          intervalSeconds: s === 0 ? null : 1,
          holder: "x",
          transition: false,
        });
      }
    }
  };
  fill("first", 0);
  const size = store.byteSize();
  for (let h = 0; h < 100; h++) store.delete(`first-${h}`);
  fill("second", 600);
  store.prune(T0 + 1_200_000);
  assert.ok(store.byteSize() <= size * 1.05, `${store.byteSize()} > ${size}`);
});
