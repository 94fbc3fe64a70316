import assert from "node:assert/strict";
import { InputError } from "../core/errors.ts";
import { FakeClock } from "../core/fake_clock.ts";
import type { Lease } from "../core/lease_types.ts";
import { SimApiServer } from "./sim_api_server.ts";
import { recordWatch } from "./_test_watch.ts";
import {
  loadTimeline,
  loopPeriodMs,
  MAX_REPLAY_GAP_MS,
  replayTimeline,
  shortenSilences,
} from "./replay.ts";
import { formatTimeline, type Timeline } from "./timeline.ts";

const fixture = (name: string) =>
  new URL(`../tests/testdata/${name}`, import.meta.url).pathname;

/** A fresh simulated API server and a record of what its watch delivered. */
function record(clock: FakeClock) {
  const server = new SimApiServer({ clock });
  const watch = recordWatch(server, clock);
  return {
    server,
    stop: watch.stop,
    get events() {
      return watch.seen.map((s) => ({
        event: { type: s.type, object: s.lease },
        at: s.at,
      }));
    },
  };
}

function lease(
  name: string,
  renewTime: string,
  spec: Lease["spec"] = {},
): Lease {
  return {
    apiVersion: "coordination.k8s.io/v1",
    kind: "Lease",
    metadata: { name, namespace: "kube-node-lease", resourceVersion: "99" },
    spec: {
      holderIdentity: name,
      leaseDurationSeconds: 40,
      renewTime,
      ...spec,
    },
  };
}

/** Two nodes beating every 10 s for 20 s, node b 5 s out of phase. */
const TIMELINE: Timeline = {
  version: 1,
  source: "test",
  start: "2024-05-01T10:00:00.000Z",
  events: [
    { offsetMs: 0, type: "ADDED", lease: lease("a", "2024-05-01T10:00:00Z") },
    {
      offsetMs: 5000,
      type: "ADDED",
      lease: lease("b", "2024-05-01T10:00:05Z"),
    },
    {
      offsetMs: 10_000,
      type: "MODIFIED",
      lease: lease("a", "2024-05-01T10:00:10Z"),
    },
    {
      offsetMs: 15_000,
      type: "MODIFIED",
      lease: lease("b", "2024-05-01T10:00:15Z"),
    },
    {
      offsetMs: 20_000,
      type: "MODIFIED",
      lease: lease("a", "2024-05-01T10:00:20Z"),
    },
  ],
};

Deno.test("replay writes each event at its offset", async () => {
  const clock = new FakeClock();
  const t0 = clock.now();
  const sink = record(clock);
  const done = replayTimeline(TIMELINE, sink.server, {
    clock,
    speed: 1,
    signal: new AbortController().signal,
  });
  await clock.advance(0);
  assert.equal(sink.events.length, 1);
  await clock.advance(4999);
  assert.equal(sink.events.length, 1);
  await clock.advance(1);
  assert.equal(sink.events.length, 2);
  await clock.advance(15_000);
  await done;
  assert.deepEqual(
    sink.events.map((e) => e.at - t0),
    [0, 5000, 10_000, 15_000, 20_000],
  );
  assert.deepEqual(
    sink.events.map((e) => `${e.event.type} ${e.event.object.metadata.name}`),
    ["ADDED a", "ADDED b", "MODIFIED a", "MODIFIED b", "MODIFIED a"],
  );
  await sink.stop();
  assert.equal(clock.pending, 0);
});

Deno.test("replay rewrites renewTimes to the replay clock and the server numbers resourceVersions", async () => {
  const clock = new FakeClock(Date.parse("2026-01-01T00:00:00Z"));
  const sink = record(clock);
  const withAcquire: Timeline = {
    ...TIMELINE,
    events: [{
      offsetMs: 0,
      type: "ADDED",
      lease: lease("kcm", "2024-05-01T10:00:00.250000Z", {
        acquireTime: "2024-05-01T09:59:00.250000Z",
        leaseTransitions: 3,
      }),
    }, ...TIMELINE.events.slice(1)],
  };
  const done = replayTimeline(withAcquire, sink.server, {
    clock,
    speed: 1,
    signal: new AbortController().signal,
  });
  await clock.advance(20_000);
  await done;
  const specs = sink.events.map((e) => e.event.object.spec);
  assert.deepEqual(specs.map((s) => s?.renewTime), [
    "2026-01-01T00:00:00.000000Z",
    "2026-01-01T00:00:05.000000Z",
    "2026-01-01T00:00:10.000000Z",
    "2026-01-01T00:00:15.000000Z",
    "2026-01-01T00:00:20.000000Z",
  ]);
  assert.equal(specs[0]?.acquireTime, "2025-12-31T23:59:00.000000Z");
  assert.equal(specs[0]?.leaseTransitions, 3);
  assert.deepEqual(
    sink.events.map((e) => e.event.object.metadata.resourceVersion),
    ["1", "2", "3", "4", "5"],
  );
  // The timeline itself is left untouched.
  assert.equal(
    withAcquire.events[0]?.lease.spec?.renewTime,
    "2024-05-01T10:00:00.250000Z",
  );
});

Deno.test("replay at speed 4 delivers events four times sooner", async () => {
  const clock = new FakeClock();
  const t0 = clock.now();
  const sink = record(clock);
  const done = replayTimeline(TIMELINE, sink.server, {
    clock,
    speed: 4,
    signal: new AbortController().signal,
  });
  await clock.advance(5000);
  await done;
  assert.deepEqual(
    sink.events.map((e) => e.at - t0),
    [0, 1250, 2500, 3750, 5000],
  );
  const renew = sink.events.map((e) =>
    Date.parse(e.event.object.spec?.renewTime ?? "") - t0
  );
  assert.deepEqual(renew, [0, 1250, 2500, 3750, 5000]);
});

Deno.test("aborting stops the replay and resolves without leaving sleepers", async () => {
  const clock = new FakeClock();
  const sink = record(clock);
  const ac = new AbortController();
  const done = replayTimeline(TIMELINE, sink.server, {
    clock,
    speed: 1,
    signal: ac.signal,
  });
  await clock.advance(7000);
  assert.equal(sink.events.length, 2);
  ac.abort();
  await done;
  await sink.stop();
  assert.equal(clock.pending, 0);
  await clock.advance(60_000);
  assert.equal(sink.events.length, 2);
});

Deno.test("a replay aborted before it starts writes nothing", async () => {
  const ac = new AbortController();
  ac.abort();
  const clock = new FakeClock();
  const server = new SimApiServer({ clock });
  await replayTimeline(TIMELINE, server, {
    clock,
    speed: 1,
    signal: ac.signal,
  });
  assert.deepEqual(server.leases(), []);
  assert.equal(server.resourceVersion, "0");
});

Deno.test("a looped replay continues like live beats", async () => {
  const clock = new FakeClock();
  const t0 = clock.now();
  const sink = record(clock);
  const ac = new AbortController();
  // Lease a: spans 20 s, beats every 10 s; b: spans 10 s, every 10 s.
  assert.equal(loopPeriodMs(TIMELINE), 25_000);
  const done = replayTimeline(TIMELINE, sink.server, {
    clock,
    speed: 1,
    signal: ac.signal,
    loop: true,
  });
  await clock.advance(3 * 25_000 - 1);
  ac.abort();
  await done;
  assert.equal(sink.events.length, 15);
  const round2 = sink.events.slice(5, 10);
  assert.deepEqual(round2.map((e) => e.at - t0), [
    25_000,
    30_000,
    35_000,
    40_000,
    45_000,
  ]);
  // The Leases exist already, so the recorded ADDED events become MODIFIED.
  assert.deepEqual(
    sink.events.slice(5).map((e) => e.event.type),
    Array(10).fill("MODIFIED"),
  );
  const a = sink.events.filter((e) => e.event.object.metadata.name === "a");
  const renew = a.map((e) => Date.parse(e.event.object.spec?.renewTime ?? ""));
  const intervals = renew.slice(1).map((r, i) => r - (renew[i] ?? 0));
  // Across the seam a beats 5 s after its last one (its period is 25 s, its span 20 s).
  assert.deepEqual(intervals, [
    10_000,
    10_000,
    5000,
    10_000,
    10_000,
    5000,
    10_000,
    10_000,
  ]);
  const versions = sink.events.map((e) =>
    Number(e.event.object.metadata.resourceVersion)
  );
  assert.deepEqual(versions, Array.from({ length: 15 }, (_, i) => i + 1));
});

Deno.test("a looped handover keeps leaseTransitions growing", async () => {
  const kcm = (holder: string, transitions: number, renew: string) =>
    lease("kcm", renew, {
      holderIdentity: holder,
      leaseTransitions: transitions,
      leaseDurationSeconds: 15,
    });
  const handover: Timeline = {
    ...TIMELINE,
    events: [
      {
        offsetMs: 0,
        type: "ADDED",
        lease: kcm("cp-1", 4, "2024-05-01T10:00:00Z"),
      },
      {
        offsetMs: 2000,
        type: "MODIFIED",
        lease: kcm("cp-1", 4, "2024-05-01T10:00:02Z"),
      },
      {
        offsetMs: 4000,
        type: "MODIFIED",
        lease: kcm("cp-2", 5, "2024-05-01T10:00:04Z"),
      },
    ],
  };
  const clock = new FakeClock();
  const sink = record(clock);
  const ac = new AbortController();
  const done = replayTimeline(handover, sink.server, {
    clock,
    speed: 1,
    signal: ac.signal,
    loop: true,
  });
  await clock.advance(3 * loopPeriodMs(handover) - 1);
  ac.abort();
  await done;
  const seen = sink.events.map((e) =>
    `${e.event.object.spec?.holderIdentity}:${e.event.object.spec?.leaseTransitions}`
  );
  // Each round adds the recorded handover plus the one at the seam.
  assert.deepEqual(seen, [
    "cp-1:4",
    "cp-1:4",
    "cp-2:5",
    "cp-1:6",
    "cp-1:6",
    "cp-2:7",
    "cp-1:8",
    "cp-1:8",
    "cp-2:9",
  ]);
});

Deno.test("the loop period of a single snapshot is a quarter of the lease duration", () => {
  const snapshot: Timeline = {
    ...TIMELINE,
    events: [
      { offsetMs: 0, type: "ADDED", lease: lease("a", "2024-05-01T10:00:00Z") },
      {
        offsetMs: 3000,
        type: "ADDED",
        lease: lease("b", "2024-05-01T10:00:03Z"),
      },
      {
        offsetMs: 7000,
        type: "ADDED",
        lease: lease("c", "2024-05-01T10:00:07Z"),
      },
    ],
  };
  assert.equal(loopPeriodMs(snapshot), 10_000);
  const noDuration: Timeline = {
    ...snapshot,
    events: snapshot.events.map((e) => ({
      ...e,
      lease: { ...e.lease, spec: { renewTime: "2024-05-01T10:00:00Z" } },
    })),
  };
  assert.equal(loopPeriodMs(noDuration), 10_000);
  const longSpan: Timeline = {
    ...snapshot,
    events: [...snapshot.events, {
      offsetMs: 60_000,
      type: "MODIFIED",
      lease: lease("c", "2024-05-01T10:01:00Z"),
    }],
  };
  // Rounds never overlap: at least the last offset plus 1 ms.
  assert.equal(loopPeriodMs(longSpan), 60_001);
});

/** Lease a in 1970, b in 9999, a again in 9999 ten seconds later. */
const MILLENNIA: Timeline = {
  version: 1,
  source: "far",
  start: "1970-01-01T00:00:00.000Z",
  events: [
    {
      offsetMs: 0,
      type: "ADDED",
      lease: lease("a", "1970-01-01T00:00:00Z", {
        acquireTime: "9999-12-31T00:00:00Z",
      }),
    },
    {
      offsetMs: 253_402_300_780_000,
      type: "ADDED",
      lease: lease("b", "9999-12-31T23:59:40Z", {
        acquireTime: "1970-01-01T00:00:00Z",
      }),
    },
    {
      offsetMs: 253_402_300_790_000,
      type: "MODIFIED",
      lease: lease("a", "9999-12-31T23:59:50Z"),
    },
  ],
};

Deno.test("silences longer than the longest replayed gap are shortened to it, other gaps kept", () => {
  const s = shortenSilences(MILLENNIA);
  assert.equal(s.count, 1);
  assert.equal(s.longestMs, 253_402_300_780_000);
  assert.equal(s.longestBefore?.lease.metadata.name, "b");
  assert.deepEqual(s.timeline.events.map((e) => e.offsetMs), [
    0,
    MAX_REPLAY_GAP_MS,
    MAX_REPLAY_GAP_MS + 10_000,
  ]);
  const calm = shortenSilences(TIMELINE);
  assert.equal(calm.count, 0);
  assert.equal(calm.timeline, TIMELINE);
});

Deno.test("a looped replay of dates millennia apart keeps valid times round after round", async () => {
  const clock = new FakeClock(Date.parse("2026-01-01T00:00:00Z"));
  const sink = record(clock);
  const ac = new AbortController();
  const done = replayTimeline(MILLENNIA, sink.server, {
    clock,
    speed: 1,
    signal: ac.signal,
    loop: true,
  });
  for (let i = 0; i < 20; i++) await clock.advance(MAX_REPLAY_GAP_MS);
  ac.abort();
  await done;
  await sink.stop();
  assert.ok(sink.events.length >= 3 * 19, String(sink.events.length));
  for (const { event, at } of sink.events) {
    const spec = event.object.spec;
    assert.equal(Date.parse(spec?.renewTime ?? ""), at);
    const acquire = Date.parse(spec?.acquireTime ?? "1970-01-01T00:00:00Z");
    assert.ok(
      acquire >= 0 && acquire <= 253_402_300_799_999,
      String(spec?.acquireTime),
    );
  }
  assert.equal(clock.pending, 0);
});

Deno.test("replay refuses a speed that is not above zero", async () => {
  for (const speed of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
    await assert.rejects(
      replayTimeline(TIMELINE, new SimApiServer({ clock: new FakeClock() }), {
        clock: new FakeClock(),
        speed,
        signal: new AbortController().signal,
      }),
      RangeError,
    );
  }
});

Deno.test("loadTimeline reads both a timeline JSON and Lease YAML", async () => {
  const fromYaml = await loadTimeline(fixture("leases_multi_doc.yaml"));
  assert.equal(fromYaml.events.length, 9);
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/timeline.json`;
    await Deno.writeTextFile(path, formatTimeline(fromYaml));
    assert.deepEqual(await loadTimeline(path), fromYaml);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadTimeline rejects bad files with one-line input errors", async () => {
  for (
    const name of ["bad_syntax.yaml", "bad_alias_bomb.yaml", "missing.yaml"]
  ) {
    await assert.rejects(
      loadTimeline(fixture(name)),
      (err: unknown) =>
        err instanceof InputError && err.message.includes(name) &&
        !err.message.includes("\n"),
    );
  }
});

Deno.test("loadTimeline names the line and field of a bad event in a timeline", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/timeline.json`;
    const bad = {
      ...TIMELINE,
      events: [TIMELINE.events[0], { ...TIMELINE.events[1], type: "UPDATED" }],
    };
    await Deno.writeTextFile(path, JSON.stringify(bad, null, 2));
    await assert.rejects(
      loadTimeline(path),
      (err: unknown) =>
        err instanceof InputError &&
        err.message.startsWith(
          `Cannot read lease file "${path}": line 24, events[1].type: `,
        ) &&
        err.message.includes('got the string "UPDATED"'),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
