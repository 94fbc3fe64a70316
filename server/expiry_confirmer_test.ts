import assert from "node:assert/strict";
import type { Lease } from "../core/lease_types.ts";
import { FakeClock } from "../core/fake_clock.ts";
import { configureLogger } from "../core/log.ts";
import type { StatusEvent } from "../core/api_types.ts";
import { SimApiServer } from "../sim/sim_api_server.ts";
import { HeartHub } from "./heart_hub.ts";

configureLogger({ level: "error" });

/** A controller's election Lease: 15 s duration, renewed every 2 s. */
function electionLease(name: string, renewMs: number): Lease {
  return {
    metadata: { namespace: "kube-system", name },
    spec: {
      holderIdentity: `${name}-1`,
      leaseDurationSeconds: 15,
      renewTime: new Date(renewMs).toISOString(),
    },
  };
}

/**
 * A hub whose confirmation reads go to a simulated API server; the test
 * decides what of the server's state the hub's watch delivers.
 */
function setup(opts: { concurrency?: number } = {}) {
  const clock = new FakeClock();
  const api = new SimApiServer({ clock });
  const reads: string[] = [];
  const stale: string[] = [];
  const hub = new HeartHub({
    clock,
    source: { kind: "mock", name: "test" },
    confirm: (namespace, name, signal) => {
      reads.push(`${namespace}/${name}`);
      return api.read(namespace, name, signal);
    },
    confirmPolicy: {
      ...(opts.concurrency !== undefined &&
        { concurrency: opts.concurrency }),
    },
    onStale: (reason) => stale.push(reason),
  });
  const feed = hub.feed.record();
  hub.source(true, undefined, clock.now());
  const stop = new AbortController();
  const sweeper = hub.runSweeper(stop.signal, 1000);
  /** Writes `lease` on the server and delivers it to the hub, as a current watch would. */
  const renew = (lease: Lease) => {
    const stored = api.write(lease);
    hub.event({ type: "MODIFIED", object: stored }, clock.now());
    return stored;
  };
  return {
    clock,
    api,
    hub,
    reads,
    stale,
    t0: clock.now(),
    renew,
    statuses: (id: string) =>
      feed
        .filter((e) => e.event === "status")
        .map((e) => e.data as StatusEvent)
        .filter((s) => s.id === id)
        .map((s) => s.to),
    async close() {
      stop.abort();
      await sweeper;
      api.thaw();
      hub.confirmer?.reset();
      await clock.advance(0);
    },
  };
}

const ID = "kube-system/kcm";

Deno.test("a silent heart stays late while its Lease is read fresh, expires once the read confirms the silence, and is read once per silence", async () => {
  const t = setup();
  const first = t.api.write(electionLease("kcm", t.t0));
  t.hub.resync([first], t.t0);
  t.renew(electionLease("kcm", t.t0 + 2000));
  await t.clock.advance(2000);
  // The API server hangs: the read at the deadline gets no answer yet.
  t.api.freeze();
  await t.clock.advance(15_000);
  assert.deepEqual(t.reads, [ID]);
  assert.equal(t.hub.heart(ID)!.status, "late");
  await t.clock.advance(2_000);
  assert.equal(t.hub.heart(ID)!.status, "late", "no answer, no verdict");
  assert.deepEqual(t.reads, [ID], "no second read while one is under way");
  t.api.thaw();
  await t.clock.advance(0);
  assert.equal(t.hub.heart(ID)!.status, "expired");
  await t.clock.advance(60_000);
  assert.deepEqual(t.reads, [ID], "a confirmed silence is not read again");
  assert.equal(t.hub.counters.confirmedSilences, 1);

  // It comes back, then falls silent again: a new silence, a new read.
  t.renew(electionLease("kcm", t.clock.now()));
  assert.equal(t.hub.heart(ID)!.status, "healthy");
  await t.clock.advance(17_000);
  assert.deepEqual(t.reads, [ID, ID]);
  assert.equal(t.hub.heart(ID)!.status, "expired");
  // (Its learned interval now spans the long silence: no late before expired.)
  assert.deepEqual(t.statuses(ID), [
    "unknown",
    "healthy",
    "late",
    "expired",
    "healthy",
    "expired",
  ]);
  await t.close();
});

Deno.test("a read that fails or gets no answer in time shows the heart unknown, never expired, and is retried after a doubling backoff", async () => {
  const t = setup();
  const until = (seconds: number) =>
    t.clock.advance(t.t0 + seconds * 1000 - t.clock.now());
  t.hub.resync([t.api.write(electionLease("kcm", t.t0))], t.t0);
  t.renew(electionLease("kcm", t.t0 + 100)); // observed at 0 s
  t.api.setDown("etcd is unavailable");
  await until(16); // past the 15 s duration at the sweep of 16 s: read, fails
  assert.equal(t.reads.length, 1);
  assert.equal(t.hub.heart(ID)!.status, "unknown");
  // Retries 2 s, 4 s, 8 s after each failure.
  await until(17.9);
  assert.equal(t.reads.length, 1);
  await until(18);
  assert.equal(t.reads.length, 2);
  await until(22);
  assert.equal(t.reads.length, 3);
  await until(30);
  assert.equal(t.reads.length, 4);
  assert.equal(t.hub.heart(ID)!.status, "unknown");
  // The server answers again but too slowly: the 5 s deadline fails the
  // read of 46 s at 51 s; the next one, at 83 s, is answered.
  t.api.setDown(null);
  t.api.freeze();
  await until(46);
  assert.equal(t.reads.length, 5);
  assert.equal(t.hub.confirmer!.counters.failures, 4);
  await until(51);
  assert.equal(t.hub.confirmer!.counters.failures, 5);
  assert.equal(t.hub.heart(ID)!.status, "unknown");
  t.api.thaw();
  await until(82);
  assert.equal(t.reads.length, 5);
  await until(83);
  assert.equal(t.reads.length, 6);
  assert.equal(t.hub.heart(ID)!.status, "expired");
  assert.deepEqual(t.statuses(ID), [
    "unknown",
    "healthy",
    "late",
    "unknown",
    "expired",
  ]);
  await t.close();
});

Deno.test("a read that finds a renewal the watch never delivered marks the view stale and asks for a relist; one the watch delivers within the grace is no alarm", async () => {
  const t = setup();
  t.hub.resync([
    t.api.write(electionLease("kcm", t.t0)),
    t.api.write(electionLease("sched", t.t0)),
  ], t.t0);
  t.renew(electionLease("kcm", t.t0 + 2000));
  t.renew(electionLease("sched", t.t0 + 2000));
  // Both renew on the server; the watch delivers sched's renewal late, and
  // kcm's never.
  await t.clock.advance(10_000);
  t.api.write(electionLease("kcm", t.t0 + 12_000));
  const sched = t.api.write(electionLease("sched", t.t0 + 12_000));
  await t.clock.advance(7_000);
  assert.deepEqual(t.reads.sort(), [ID, "kube-system/sched"]);
  t.hub.event({ type: "MODIFIED", object: sched }, t.clock.now());
  assert.deepEqual(t.stale, [], "the grace is not over yet");
  assert.equal(t.hub.heart(ID)!.status, "late");
  await t.clock.advance(2_000);
  assert.equal(t.stale.length, 1);
  assert.match(
    t.stale[0]!,
    /^Lease kube-system\/kcm was renewed at .* on the API server, but the watch did not deliver it/,
  );
  assert.equal(t.hub.sourceState().connected, false);
  assert.equal(t.hub.sourceState().reason, t.stale[0]);
  assert.equal(t.hub.heart(ID)!.status, "unknown");
  assert.equal(t.hub.heart("kube-system/sched")!.status, "unknown");
  assert.equal(t.hub.counters.staleViews, 1);
  assert.ok(!t.statuses(ID).includes("expired"));
  await t.close();
});

Deno.test("a Lease deleted on the API server but still in the view marks the view stale", async () => {
  const t = setup();
  t.hub.resync([t.api.write(electionLease("kcm", t.t0))], t.t0);
  t.renew(electionLease("kcm", t.t0 + 2000));
  t.api.delete("kube-system", "kcm");
  await t.clock.advance(2000 + 16_000 + 2_000);
  assert.equal(t.stale.length, 1);
  assert.match(
    t.stale[0]!,
    /^Lease kube-system\/kcm is gone from the API server/,
  );
  assert.equal(t.hub.heart(ID)!.status, "unknown");
  await t.close();
});

Deno.test("5,000 hearts at their deadline at once: at most 4 reads in flight, each heart read once", async () => {
  const t = setup({ concurrency: 4 });
  const names = Array.from({ length: 5000 }, (_, i) => `ctrl-${i}`);
  t.hub.resync(
    names.map((n) => t.api.write(electionLease(n, t.t0))),
    t.t0,
  );
  for (const n of names) t.renew(electionLease(n, t.t0 + 2000));
  t.api.freeze();
  await t.clock.advance(2000 + 16_000);
  assert.equal(t.hub.confirmer!.active, 4);
  assert.equal(t.hub.confirmer!.queued, 4996);
  assert.equal(t.reads.length, 4);
  t.api.thaw();
  let peak = 0;
  for (let i = 0; i < 400 && t.hub.statusCounts().expired < 5000; i++) {
    await t.clock.advance(0);
    peak = Math.max(peak, t.hub.confirmer!.active);
  }
  assert.equal(t.hub.statusCounts().expired, 5000);
  assert.ok(peak <= 4, `${peak} reads in flight`);
  await t.clock.advance(120_000);
  assert.equal(t.reads.length, 5000, "each heart read once");
  assert.equal(new Set(t.reads).size, 5000);
  await t.close();
});

Deno.test("losing sight of the API server drops the reads in flight: their answers change nothing", async () => {
  const t = setup();
  t.hub.resync([t.api.write(electionLease("kcm", t.t0))], t.t0);
  t.renew(electionLease("kcm", t.t0 + 2000));
  t.api.freeze();
  await t.clock.advance(2000 + 16_000);
  assert.equal(t.hub.confirmer!.active, 1);
  t.hub.source(false, "cannot see", t.clock.now());
  await t.clock.advance(0);
  assert.equal(t.hub.confirmer!.active, 0);
  t.api.thaw();
  await t.clock.advance(1_000);
  assert.equal(t.hub.heart(ID)!.status, "unknown");
  // Back: silence counts from the reconnection, and is confirmed afresh.
  t.hub.source(true, undefined, t.clock.now());
  await t.clock.advance(14_000);
  assert.equal(t.hub.heart(ID)!.status, "late");
  assert.equal(t.reads.length, 1);
  await t.clock.advance(2_000);
  assert.equal(t.reads.length, 2);
  assert.equal(t.hub.heart(ID)!.status, "expired");
  await t.close();
});
