import assert from "node:assert/strict";
import { FakeClock } from "../core/fake_clock.ts";
import {
  type LeaderElectionConfig,
  LeaderElector,
  takeoverDelay,
  validateElectionConfig,
} from "./leader_election.ts";
import type { LeaderElectionRecord } from "./lease_lock.ts";
import {
  MemoryLeaseStore,
  type MemoryLockOptions,
} from "./_memory_lease_lock.ts";
import { microTime } from "../core/lease_types.ts";
import { configureLogger } from "../core/log.ts";

configureLogger({ level: "error" });

const T = {
  leaseDurationMs: 15_000,
  renewDeadlineMs: 10_000,
  retryPeriodMs: 2_000,
};

Deno.test("election config: invalid timings and identities are rejected with specific errors", () => {
  const lock = new MemoryLeaseStore().lock();
  const cases: [Partial<LeaderElectionConfig>, RegExp][] = [
    [
      { leaseDurationMs: 10_000 },
      /lease duration \(10000 ms\) must be greater than renew deadline \(10000 ms\)/,
    ],
    [
      { renewDeadlineMs: 2_400 },
      /renew deadline \(2400 ms\) must be greater than retry period × 1.2 \(2400 ms\)/,
    ],
    [{ retryPeriodMs: 0 }, /retry period 0 ms: it must be greater than zero/],
    [
      { leaseDurationMs: -1 },
      /lease duration -1 ms: it must be greater than zero/,
    ],
    [{ identity: "  " }, /identity: it is empty/],
  ];
  for (const [override, message] of cases) {
    assert.throws(
      () => new LeaderElector({ lock, identity: "a", ...override }),
      message,
    );
  }
});

Deno.test("election config: client-go's defaults are 15 s, 10 s and 2 s", () => {
  assert.deepEqual(validateElectionConfig({ identity: "a" }), T);
});

function rec(over: Partial<LeaderElectionRecord>): LeaderElectionRecord {
  return {
    holderIdentity: "other",
    leaseDurationSeconds: 15,
    acquireTime: "2025-01-01T00:00:00.000000Z",
    renewTime: "2025-01-01T00:00:00.000000Z",
    leaseTransitions: 3,
    ...over,
  };
}

interface AttemptCase {
  name: string;
  /** Lease before the first attempt; null when absent. */
  initial: LeaderElectionRecord | null;
  /** Milliseconds the clock moves between a first observing attempt and the judged one. */
  waitMs: number;
  /** Whether the Lease is rewritten (a renewal by its holder) during the wait. */
  renewedMeanwhile?: boolean;
  acquired: boolean;
  transitions?: number;
}

const attemptCases: AttemptCase[] = [
  {
    name: "a missing lease is created",
    initial: null,
    waitMs: 0,
    acquired: true,
    transitions: 0,
  },
  {
    name: "a lease held by another and just observed is left alone",
    initial: rec({}),
    waitMs: 0,
    acquired: false,
  },
  {
    name: "a lease unchanged for less than its duration is left alone",
    initial: rec({}),
    waitMs: 14_999,
    acquired: false,
  },
  {
    name: "a lease unchanged for its whole duration is taken over",
    initial: rec({}),
    waitMs: 15_001,
    acquired: true,
    transitions: 4,
  },
  {
    name: "a lease renewed meanwhile is left alone even after a long wait",
    initial: rec({}),
    waitMs: 20_000,
    renewedMeanwhile: true,
    acquired: false,
  },
  {
    name: "a released lease is taken at once",
    initial: rec({ holderIdentity: "" }),
    waitMs: 0,
    acquired: true,
    transitions: 4,
  },
  {
    name: "our own lease is renewed keeping its acquire time",
    initial: rec({ holderIdentity: "me" }),
    waitMs: 0,
    acquired: true,
    transitions: 3,
  },
  {
    name:
      "a renewTime far in the future does not delay takeover (local observation only)",
    initial: rec({ renewTime: "2999-01-01T00:00:00.000000Z" }),
    waitMs: 15_001,
    acquired: true,
    transitions: 4,
  },
  {
    name:
      "a renewTime far in the past does not allow takeover (local observation only)",
    initial: rec({ renewTime: "1999-01-01T00:00:00.000000Z" }),
    waitMs: 1_000,
    acquired: false,
  },
];

for (const c of attemptCases) {
  Deno.test(`tryAcquireOrRenew: ${c.name}`, async () => {
    const clock = new FakeClock();
    const store = new MemoryLeaseStore();
    store.record = c.initial;
    const elector = new LeaderElector({
      lock: store.lock(),
      identity: "me",
      clock,
      ...T,
      address: "http://10.0.0.1:8080",
    });
    const signal = new AbortController().signal;
    if (c.initial && c.initial.holderIdentity === "other") {
      assert.equal(await elector.tryAcquireOrRenew(signal, 1000), false);
    }
    await clock.advance(c.waitMs);
    if (c.renewedMeanwhile && store.record) {
      store.record = { ...store.record, renewTime: microTime(clock.now()) };
      store.version++;
      await clock.advance(1);
      assert.equal(await elector.tryAcquireOrRenew(signal, 1000), false);
    }
    assert.equal(await elector.tryAcquireOrRenew(signal, 1000), c.acquired);
    assert.equal(elector.isLeader(), c.acquired);
    if (c.acquired) {
      assert.equal(store.record?.holderIdentity, "me");
      assert.equal(store.record?.holderAddress, "http://10.0.0.1:8080");
      assert.equal(store.record?.leaseTransitions, c.transitions);
      assert.equal(store.record?.renewTime, microTime(clock.now()));
      if (c.initial?.holderIdentity === "me") {
        assert.equal(store.record?.acquireTime, c.initial.acquireTime);
      }
    } else {
      assert.equal(store.record?.holderIdentity, "other");
    }
    assert.equal(clock.pending, 0);
  });
}

interface Candidate {
  id: string;
  elector: LeaderElector;
  stop: AbortController;
  run: Promise<void>;
  leading: boolean;
  events: string[];
}

function candidates(
  store: MemoryLeaseStore,
  clock: FakeClock,
  ids: string[],
  release = true,
  startSeed = 1,
  lockOptions: MemoryLockOptions = {},
): Candidate[] {
  let seed = startSeed;
  const random = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
  return ids.map((id) => {
    const c = {
      id,
      stop: new AbortController(),
      leading: false,
      events: [] as string[],
    } as Candidate;
    c.elector = new LeaderElector({
      lock: store.lock(`lease ${id}`, lockOptions),
      identity: id,
      clock,
      random,
      releaseOnCancel: release,
      ...T,
      callbacks: {
        onStartedLeading: () => {
          c.leading = true;
          c.events.push(`start@${clock.now()}`);
        },
        onStoppedLeading: () => {
          c.leading = false;
          c.events.push(`stop@${clock.now()}`);
        },
        onNewLeader: (leader) => c.events.push(`leader=${leader}`),
      },
    });
    c.run = c.elector.run(c.stop.signal);
    return c;
  });
}

async function advanceChecking(
  clock: FakeClock,
  all: Candidate[],
  ms: number,
  step = 100,
): Promise<void> {
  for (let t = 0; t < ms; t += step) {
    await clock.advance(step);
    const leaders = all.filter((c) => c.leading).map((c) => c.id);
    assert.ok(
      leaders.length <= 1,
      `two leaders at ${clock.now()}: ${leaders.join(", ")}`,
    );
  }
}

async function stopAll(clock: FakeClock, all: Candidate[]): Promise<void> {
  for (const c of all) c.stop.abort();
  await clock.advance(0);
  await Promise.all(all.map((c) => c.run));
}

Deno.test("three candidates elect exactly one leader and the others learn who it is", async () => {
  const clock = new FakeClock();
  const store = new MemoryLeaseStore();
  const all = candidates(store, clock, ["a", "b", "c"]);
  await advanceChecking(clock, all, 30_000);
  const leaders = all.filter((c) => c.leading);
  assert.equal(leaders.length, 1);
  const leader = leaders[0]!.id;
  for (const c of all) {
    assert.ok(c.events.includes(`leader=${leader}`), c.events.join(" "));
  }
  await stopAll(clock, all);
});

for (
  const [seed, watch] of [
    [1, true],
    [7, true],
    [42, true],
    [1234, true],
    [99991, true],
    [1, false],
    [42, false],
  ] as const
) {
  Deno.test(
    `an abruptly stopped leader is replaced once its lease expires, and not before (seed ${seed}, ${
      watch ? "watching" : "polling"
    })`,
    async () => {
      const clock = new FakeClock();
      const store = new MemoryLeaseStore();
      const all = candidates(store, clock, ["a", "b", "c"], false, seed, {
        watch,
      });
      await advanceChecking(clock, all, 5_000);
      const leader = all.find((c) => c.leading)!;
      leader.stop.abort();
      await leader.run;
      const stoppedAt = clock.now();
      assert.equal(
        store.record?.holderIdentity,
        leader.id,
        "an abrupt stop must not release",
      );
      const rest = all.filter((c) => c !== leader);
      let newLeaderAt = 0;
      for (let t = 0; t < 30_000 && !newLeaderAt; t += 50) {
        await advanceChecking(clock, all, 50, 50);
        if (rest.some((c) => c.leading)) newLeaderAt = clock.now();
      }
      const failover = newLeaderAt - stoppedAt;
      assert.ok(
        failover >= T.leaseDurationMs - T.retryPeriodMs,
        `failover after ${failover} ms is too early`,
      );
      assert.ok(
        failover <= T.leaseDurationMs + T.retryPeriodMs,
        `failover after ${failover} ms is too late`,
      );
      await stopAll(clock, rest);
    },
  );

  Deno.test(
    `a gracefully stopped leader releases and a follower takes over within two retry periods (seed ${seed}, ${
      watch ? "watching" : "polling"
    })`,
    async () => {
      const clock = new FakeClock();
      const store = new MemoryLeaseStore();
      const all = candidates(store, clock, ["a", "b", "c"], true, seed, {
        watch,
      });
      await advanceChecking(clock, all, 5_000);
      const leader = all.find((c) => c.leading)!;
      leader.stop.abort();
      await clock.advance(0);
      await leader.run;
      assert.equal(
        store.record?.holderIdentity,
        "",
        "a graceful stop releases the lease",
      );
      assert.ok(leader.events.at(-1)?.startsWith("stop@"));
      const stoppedAt = clock.now();
      const rest = all.filter((c) => c !== leader);
      let newLeaderAt = 0;
      for (let t = 0; t < 10_000 && !newLeaderAt; t += 50) {
        await advanceChecking(clock, all, 50, 50);
        if (rest.some((c) => c.leading)) newLeaderAt = clock.now();
      }
      assert.ok(
        newLeaderAt > 0 && newLeaderAt - stoppedAt <= 2 * T.retryPeriodMs,
        `took ${newLeaderAt - stoppedAt} ms`,
      );
      await stopAll(clock, rest);
    },
  );
}

Deno.test("a leader that cannot renew steps down within the renew deadline, before anyone may take over", async () => {
  const clock = new FakeClock();
  const store = new MemoryLeaseStore();
  const all = candidates(store, clock, ["a"]);
  await clock.advance(1_000);
  assert.ok(all[0]!.leading);
  store.failWith = new Error("API server unreachable");
  const failedAt = clock.now();
  for (let t = 0; t < 20_000 && all[0]!.leading; t += 100) {
    await clock.advance(100);
  }
  assert.equal(all[0]!.leading, false);
  const steppedDownAfter = clock.now() - failedAt;
  assert.ok(
    steppedDownAfter <= T.renewDeadlineMs + T.retryPeriodMs,
    `stepped down after ${steppedDownAfter} ms`,
  );
  assert.ok(steppedDownAfter < T.leaseDurationMs);
  await all[0]!.run;
  assert.equal(all[0]!.events.filter((e) => e.startsWith("stop@")).length, 1);
});

for (const takenOver of [false, true]) {
  Deno.test(`release after a renewal whose answer was lost ${takenOver ? "leaves a new holder alone" : "still clears the lease"}`, async () => {
    const clock = new FakeClock();
    const store = new MemoryLeaseStore();
    const [me] = candidates(store, clock, ["me"]);
    await clock.advance(1_000);
    assert.ok(me!.leading);
    // The server applied a write this candidate never saw the answer to.
    store.record = {
      ...store.record!,
      holderIdentity: takenOver ? "other" : "me",
      renewTime: microTime(clock.now()),
    };
    store.version++;
    me!.stop.abort();
    await clock.advance(0);
    await me!.run;
    assert.equal(store.record?.holderIdentity, takenOver ? "other" : "");
  });
}

Deno.test("takeover delays stay within the spread, and only the first one or two followers of any number try at once", () => {
  for (const u of [0, 1e-9, 0.001, 0.5, 0.999, 1]) {
    const d = takeoverDelay(u, 1_000);
    assert.ok(d >= 0 && d <= 1_000, `delay ${d} for draw ${u}`);
  }
  assert.equal(takeoverDelay(1, 1_000), 1_000);
  let seed = 12345;
  const random = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
  // Followers see the winner's write about 50 ms after the first attempt.
  for (const n of [3, 50, 500, 5_000]) {
    let worst = 0;
    for (let round = 0; round < 20; round++) {
      const delays = Array.from(
        { length: n },
        () => takeoverDelay(random(), 1_000),
      );
      const first = Math.min(...delays);
      worst = Math.max(worst, delays.filter((d) => d < first + 50).length);
    }
    assert.ok(worst <= 5, `${worst} of ${n} followers tried at once`);
  }
});

Deno.test("followers watch instead of reading: in steady state only the leader's renewals reach the lock", async () => {
  const clock = new FakeClock();
  const store = new MemoryLeaseStore();
  const ids = Array.from({ length: 50 }, (_, i) => `agent-${i}`);
  const all = candidates(store, clock, ids);
  await advanceChecking(clock, all, 10_000, 500);
  assert.equal(all.filter((c) => c.leading).length, 1);
  const before = { ...store };
  await advanceChecking(clock, all, 60_000, 500);
  assert.equal(store.reads - before.reads, 0, "followers read the Lease");
  assert.equal(store.watches - before.watches, 0, "watches were reopened");
  // One optimistic update per retry period and nothing else.
  assert.equal(store.writes - before.writes, 60_000 / T.retryPeriodMs);
  await stopAll(clock, all);
});

Deno.test("without a watch, followers read the Lease every retry period as client-go does", async () => {
  const clock = new FakeClock();
  const store = new MemoryLeaseStore();
  const all = candidates(store, clock, ["a", "b", "c"], true, 1, {
    watch: false,
  });
  await advanceChecking(clock, all, 10_000, 500);
  const reads = store.reads;
  await advanceChecking(clock, all, 60_000, 500);
  const perFollowerPerSecond = (store.reads - reads) / 2 / 60;
  assert.ok(
    perFollowerPerSecond >= 0.5 && perFollowerPerSecond <= 0.7,
    `${perFollowerPerSecond} reads/s per follower`,
  );
  await stopAll(clock, all);
});

Deno.test("when the leader vanishes, only a few of 200 watching followers try to take over", async () => {
  const clock = new FakeClock();
  const store = new MemoryLeaseStore();
  const ids = Array.from({ length: 200 }, (_, i) => `agent-${i}`);
  const all = candidates(store, clock, ids, false, 7);
  await advanceChecking(clock, all, 10_000, 500);
  const leader = all.find((c) => c.leading)!;
  leader.stop.abort();
  await leader.run;
  const stoppedAt = clock.now();
  const reads = store.reads;
  const rest = all.filter((c) => c !== leader);
  let newLeaderAt = 0;
  for (let t = 0; t < 30_000 && !newLeaderAt; t += 50) {
    await advanceChecking(clock, all, 50, 50);
    if (rest.some((c) => c.leading)) newLeaderAt = clock.now();
  }
  const failover = newLeaderAt - stoppedAt;
  assert.ok(
    failover >= T.leaseDurationMs - T.retryPeriodMs &&
      failover <= T.leaseDurationMs + T.retryPeriodMs,
    `failover after ${failover} ms`,
  );
  await advanceChecking(clock, all, 5_000, 500);
  assert.ok(
    store.reads - reads <= 5,
    `${store.reads - reads} followers read the Lease to take it over`,
  );
  const winner = rest.find((c) => c.leading)!;
  for (const c of rest) {
    assert.ok(
      c.events.includes(`leader=${winner.id}`),
      `${c.id} did not learn the new leader`,
    );
  }
  await stopAll(clock, rest);
});

Deno.test("followers learn a new leader the moment it acquires, not at their next read", async () => {
  const clock = new FakeClock();
  const store = new MemoryLeaseStore();
  const all = candidates(store, clock, ["a", "b", "c"], true, 3);
  const learned = new Map<string, number>();
  await advanceChecking(clock, all, 5_000);
  const first = all.find((c) => c.leading)!;
  first.stop.abort();
  await clock.advance(0);
  await first.run;
  for (let t = 0; t < 5_000; t += 10) {
    await clock.advance(10);
    for (const c of all) {
      const newLeader = c.events.findLast((e) => e.startsWith("leader="));
      if (c !== first && newLeader && newLeader !== `leader=${first.id}`) {
        if (newLeader !== "leader=" && !learned.has(c.id)) {
          learned.set(c.id, clock.now());
        }
      }
    }
  }
  const winner = all.find((c) => c.leading)!;
  const startedAt = Number(winner.events.find((e) => e.startsWith("start@"))!
    .slice(6));
  for (const c of all.filter((c) => c !== first && c !== winner)) {
    assert.ok(
      learned.get(c.id)! - startedAt <= 10,
      `${c.id} learned of ${winner.id} ${
        learned.get(c.id)! - startedAt
      } ms late`,
    );
  }
  await stopAll(clock, all.filter((c) => c !== first));
});

Deno.test("a follower whose watch is refused reads every retry period and still takes over in time", async () => {
  const clock = new FakeClock();
  const store = new MemoryLeaseStore();
  store.refuseWatches = true;
  const all = candidates(store, clock, ["a", "b"], false, 5);
  await advanceChecking(clock, all, 5_000);
  const leader = all.find((c) => c.leading)!;
  const reads = store.reads;
  await advanceChecking(clock, all, 20_000);
  assert.ok(store.reads - reads >= 8, `${store.reads - reads} reads in 20 s`);
  leader.stop.abort();
  await leader.run;
  const stoppedAt = clock.now();
  const other = all.find((c) => c !== leader)!;
  while (!other.leading && clock.now() - stoppedAt < 30_000) {
    await advanceChecking(clock, all, 50, 50);
  }
  const failover = clock.now() - stoppedAt;
  assert.ok(
    failover >= T.leaseDurationMs - T.retryPeriodMs &&
      failover <= T.leaseDurationMs + T.retryPeriodMs,
    `failover after ${failover} ms`,
  );
  await stopAll(clock, [other]);
});

Deno.test("a broken watch is replaced after a backoff, and the follower reads the Lease only meanwhile", async () => {
  const clock = new FakeClock();
  const store = new MemoryLeaseStore();
  const all = candidates(store, clock, ["a", "b", "c"], true, 11);
  await advanceChecking(clock, all, 10_000, 500);
  const watches = store.watches;
  let reads = store.reads;
  store.breakWatches(new Error("API server restarted"));
  await advanceChecking(clock, all, T.leaseDurationMs, 500);
  assert.equal(store.watches - watches, 2, "each follower watches again");
  assert.ok(store.reads - reads <= 4, `${store.reads - reads} reads`);
  reads = store.reads;
  await advanceChecking(clock, all, 30_000, 500);
  assert.equal(store.reads - reads, 0);
  await stopAll(clock, all);
});
