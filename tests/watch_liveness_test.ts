/**
 * The watch loop on the simulated API server, with a fake clock: a frozen
 * server is noticed by the liveness read and the watch resumes the moment it
 * answers again; a relist request from the hub is acted on at once.
 */
import assert from "node:assert/strict";
import { FakeClock } from "../core/fake_clock.ts";
import { configureLogger } from "../core/log.ts";
import type { Lease, LeaseEvent, LeaseSink } from "../core/lease_types.ts";
import {
  newWatchStats,
  runLeaseWatch,
  WatchControl,
} from "../kube/watch_loop.ts";
import { SimApiServer } from "../sim/sim_api_server.ts";

configureLogger({ level: "error" });

const P = { initialMs: 1000, maxMs: 30_000, factor: 2, jitter: 0.5 };

function lease(name: string, renew: string): Lease {
  return {
    metadata: { name, namespace: "kube-node-lease" },
    spec: { holderIdentity: name, leaseDurationSeconds: 40, renewTime: renew },
  };
}

/** Records what reaches the sink, with the fake clock's time. */
class TimedSink implements LeaseSink {
  log: { at: number; what: string }[] = [];
  constructor(private clock: FakeClock) {}
  event(e: LeaseEvent) {
    this.log.push({
      at: this.clock.now(),
      what: `${e.type} ${e.object.metadata.name} ${e.object.spec?.renewTime}`,
    });
  }
  resync(leases: Lease[]) {
    this.log.push({
      at: this.clock.now(),
      what: `resync ${leases.map((l) => l.metadata.name).join(",")}`,
    });
  }
  source(up: boolean, reason: string | undefined) {
    this.log.push({ at: this.clock.now(), what: up ? "up" : `down ${reason}` });
  }
  /** Time of the first entry after `since` that `what` matches. */
  when(what: RegExp, since: number): number | undefined {
    return this.log.find((e) => e.at >= since && what.test(e.what))?.at;
  }
}

async function advanceUntil(
  clock: FakeClock,
  done: () => boolean,
  limitMs: number,
): Promise<void> {
  const end = clock.now() + limitMs;
  while (!done() && clock.now() < end) await clock.advance(100);
}

Deno.test("a frozen API server is reported unreachable within the liveness period and deadline, and the watch resumes from its last resourceVersion as soon as it answers again", async () => {
  const clock = new FakeClock();
  const server = new SimApiServer({ clock });
  const stop = new AbortController();
  const sink = new TimedSink(clock);
  const stats = newWatchStats();
  server.write(lease("n1", "t0"));
  const run = runLeaseWatch({
    source: server,
    sink,
    signal: stop.signal,
    clock,
    // The longest backoff the reflector's policy allows, every time.
    backoff: { initialMs: 800, maxMs: 30_000, factor: 2, jitter: 1 },
    random: () => 1,
    liveness: { periodMs: 1_000, timeoutMs: 3_000 },
    stats,
  });
  await advanceUntil(clock, () => sink.when(/^up$/, 0) !== undefined, 5_000);
  server.write(lease("n1", "t1"));
  await clock.advance(500);

  const frozenAt = clock.now();
  server.freeze();
  await advanceUntil(
    clock,
    () => sink.when(/^down/, frozenAt) !== undefined,
    10_000,
  );
  const downAt = sink.when(/^down/, frozenAt);
  assert.ok(downAt !== undefined, "the frozen server was noticed");
  assert.ok(
    downAt - frozenAt <= 4_000,
    `noticed after ${downAt - frozenAt} ms`,
  );
  assert.match(
    sink.log.find((e) => e.at === downAt)!.what,
    /did not answer a Lease read within 3 s/,
  );
  // Frozen for 30 s: the watch retries back off towards 30 s meanwhile.
  await clock.advance(30_000 - (clock.now() - frozenAt));
  const thawedAt = clock.now();
  server.thaw();
  server.write(lease("n1", "t2"));
  await advanceUntil(
    clock,
    () => sink.when(/^up$/, thawedAt) !== undefined,
    40_000,
  );
  const upAt = sink.when(/^up$/, thawedAt);
  assert.ok(
    upAt !== undefined && upAt - thawedAt <= 1_000,
    `up after ${upAt! - thawedAt} ms`,
  );
  server.write(lease("n1", "t3"));
  await clock.advance(100);
  stop.abort();
  await run;
  assert.deepEqual(
    sink.log.map((e) => e.what).filter((w) => !w.startsWith("down")),
    [
      "up",
      "resync n1",
      "MODIFIED n1 t1",
      "up",
      "MODIFIED n1 t2",
      "MODIFIED n1 t3",
    ],
    "resumed from its resourceVersion: no relist, nothing twice, nothing lost",
  );
  assert.equal(stats.lists, 1);
  assert.ok(stats.silentPings >= 7, `${stats.silentPings} silent reads`);
  assert.equal(clock.pending, 0);
});

Deno.test("a relist request ends the watch, reports the source not current and relists at once; repeated requests back off", async () => {
  const clock = new FakeClock();
  const server = new SimApiServer({ clock });
  const stop = new AbortController();
  const sink = new TimedSink(clock);
  const control = new WatchControl();
  const stats = newWatchStats();
  server.write(lease("n1", "t0"));
  const run = runLeaseWatch({
    source: server,
    sink,
    signal: stop.signal,
    clock,
    backoff: P,
    random: () => 0,
    control,
    stats,
  });
  await clock.advance(100);
  control.relist("Lease n1 is newer on the API server");
  await clock.advance(0);
  control.relist("Lease n1 is newer on the API server");
  await clock.advance(500);
  assert.equal(stats.lists, 2, "the second request waits out a backoff");
  await clock.advance(600);
  stop.abort();
  await run;
  control.relist("nobody listens: dropped");
  assert.deepEqual(sink.log.map((e) => `${e.at - sink.log[0]!.at} ${e.what}`), [
    "0 up",
    "0 resync n1",
    "100 down Lease n1 is newer on the API server",
    "100 up",
    "100 resync n1",
    "100 down Lease n1 is newer on the API server",
    "1100 up",
    "1100 resync n1",
  ]);
  assert.equal(stats.lists, 3);
});
