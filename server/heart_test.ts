import assert from "node:assert/strict";
import type { Lease } from "../core/lease_types.ts";
import type { HeartStatus } from "../core/api_types.ts";
import {
  type Confirmation,
  expectedInterval,
  gateExpiry,
  heartKind,
  heartStatus,
  judgeRead,
  known,
  median,
  newHeart,
  nextStatusChange,
  observeLease,
  parseTime,
  silentSince,
} from "./heart.ts";

const T0 = Date.parse("2026-03-01T10:00:00Z");

function lease(
  namespace: string,
  name: string,
  spec: NonNullable<Lease["spec"]>,
): Lease {
  return { metadata: { namespace, name }, spec };
}

function at(seconds: number): string {
  return new Date(T0 + seconds * 1000).toISOString();
}

Deno.test("heart kind is node only in kube-node-lease", () => {
  assert.equal(heartKind("kube-node-lease"), "node");
  assert.equal(heartKind("kube-system"), "lease");
});

Deno.test("parseTime reads MicroTime and rejects junk", () => {
  assert.equal(parseTime("2026-03-01T10:00:00.123456Z"), T0 + 123);
  assert.equal(parseTime("not a time"), null);
  assert.equal(parseTime(undefined), null);
});

Deno.test("first sighting is a baseline, not a beat", () => {
  const h = newHeart(
    lease("kube-node-lease", "n1", {
      renewTime: at(-3),
      leaseDurationSeconds: 40,
    }),
    T0,
  );
  assert.equal(h.beats, 0);
  assert.ok(Number.isNaN(h.lastObservedAt), "no beat observed yet");
  assert.equal(known(h.lastObservedAt), null);
  assert.equal(h.status, "unknown");
  assert.equal(h.id, "kube-node-lease/n1");
});

Deno.test("a changed renewTime is a beat with the interval on Earthworm's clock", () => {
  const h = newHeart(
    lease("kube-node-lease", "n1", {
      holderIdentity: "n1",
      renewTime: at(0),
      leaseDurationSeconds: 40,
    }),
    T0,
  );
  assert.equal(
    observeLease(
      h,
      lease("kube-node-lease", "n1", {
        holderIdentity: "n1",
        renewTime: at(0),
      }),
      T0 + 5000,
    ),
    null,
  );
  const first = observeLease(
    h,
    lease("kube-node-lease", "n1", { holderIdentity: "n1", renewTime: at(10) }),
    T0 + 10_200,
  );
  assert.deepEqual(first, {
    renewTime: T0 + 10_000,
    observedAt: T0 + 10_200,
    intervalSeconds: null,
    holder: "n1",
    transition: false,
  });
  // The holder's clock is 3 s off: intervals still come from observation times.
  const second = observeLease(
    h,
    lease("kube-node-lease", "n1", { holderIdentity: "n1", renewTime: at(23) }),
    T0 + 20_300,
  );
  assert.equal(second?.intervalSeconds, 10.1);
  assert.equal(h.beats, 2);
  assert.ok(Math.abs(h.skewSeconds! - -2.7) < 1e-9);
});

Deno.test("a holder change or leaseTransitions change is a transition", () => {
  const h = newHeart(
    lease("kube-system", "kcm", {
      holderIdentity: "a",
      renewTime: at(0),
      leaseTransitions: 3,
    }),
    T0,
  );
  const b = observeLease(
    h,
    lease("kube-system", "kcm", {
      holderIdentity: "b",
      renewTime: at(20),
      leaseTransitions: 4,
    }),
    T0 + 20_000,
  );
  assert.equal(b?.transition, true);
  assert.equal(h.transitions, 1);
  const same = observeLease(
    h,
    lease("kube-system", "kcm", {
      holderIdentity: "b",
      renewTime: at(22),
      leaseTransitions: 5,
    }),
    T0 + 22_000,
  );
  assert.equal(
    same?.transition,
    true,
    "leaseTransitions moved although the holder name is the same",
  );
  assert.equal(h.transitions, 2);
});

Deno.test("expected interval: a quarter of the duration for nodes, the median for other leases", () => {
  const node = newHeart(
    lease("kube-node-lease", "n1", { leaseDurationSeconds: 40 }),
    T0,
  );
  assert.equal(expectedInterval(node), 10);
  const other = newHeart(
    lease("kube-system", "kcm", {
      holderIdentity: "a",
      leaseDurationSeconds: 15,
      renewTime: at(0),
    }),
    T0,
  );
  assert.equal(
    expectedInterval(other),
    3.75,
    "falls back to a quarter of the duration before learning",
  );
  let t = 0;
  for (const step of [2, 2, 3, 2, 9]) {
    t += step;
    observeLease(
      other,
      lease("kube-system", "kcm", { holderIdentity: "a", renewTime: at(t) }),
      T0 + t * 1000,
    );
  }
  assert.equal(
    expectedInterval(other),
    2.5,
    "median of the intervals 2, 3, 2, 9 after the first beat",
  );
  assert.equal(median([5, 1, 3]), 3);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(median([]), null);
  // Short windows sort in a reused scratch, long ones natively: the same
  // answer either way, and the input is left as it was.
  for (const n of [1, 2, 15, 16, 63, 64, 65, 200]) {
    const values = Array.from({ length: n }, (_, i) => (i * 37) % 101 / 4);
    const copy = [...values];
    const sorted = [...values].sort((a, b) => a - b);
    const mid = n >> 1;
    const want = n % 2 ? sorted[mid] : (sorted[mid - 1]! + sorted[mid]!) / 2;
    assert.equal(median(values), want, `median of ${n} values`);
    assert.deepEqual(values, copy);
  }
});

Deno.test("status table: healthy, late, expired and unknown on Earthworm's clock", () => {
  const cases: {
    name: string;
    elapsed: number;
    beats: boolean;
    connected: boolean;
    want: HeartStatus;
  }[] = [
    {
      name: "just beat",
      elapsed: 1,
      beats: true,
      connected: true,
      want: "healthy",
    },
    {
      name: "within twice the interval",
      elapsed: 19.9,
      beats: true,
      connected: true,
      want: "healthy",
    },
    {
      name: "past twice the interval",
      elapsed: 20.1,
      beats: true,
      connected: true,
      want: "late",
    },
    {
      name: "at the lease duration",
      elapsed: 40,
      beats: true,
      connected: true,
      want: "late",
    },
    {
      name: "past the lease duration",
      elapsed: 40.1,
      beats: true,
      connected: true,
      want: "expired",
    },
    {
      name: "API server unreachable",
      elapsed: 100,
      beats: true,
      connected: false,
      want: "unknown",
    },
    {
      name: "no beat yet",
      elapsed: 5,
      beats: false,
      connected: true,
      want: "unknown",
    },
    {
      name: "no beat for a whole duration since first seen",
      elapsed: 41,
      beats: false,
      connected: true,
      want: "expired",
    },
  ];
  for (const c of cases) {
    const h = newHeart(
      lease("kube-node-lease", "n1", {
        renewTime: at(-1),
        leaseDurationSeconds: 40,
      }),
      T0,
    );
    if (c.beats) {
      observeLease(h, lease("kube-node-lease", "n1", { renewTime: at(0) }), T0);
    }
    assert.equal(
      heartStatus(h, T0 + c.elapsed * 1000, c.connected),
      c.want,
      c.name,
    );
  }
});

Deno.test("silence is counted from the baseline after an observer outage", () => {
  const h = newHeart(
    lease("kube-node-lease", "n1", {
      renewTime: at(-1),
      leaseDurationSeconds: 40,
    }),
    T0,
  );
  observeLease(h, lease("kube-node-lease", "n1", { renewTime: at(0) }), T0);
  h.baselineAt = T0 + 60_000; // Earthworm saw the API server again at +60 s
  assert.equal(heartStatus(h, T0 + 61_000, true), "healthy");
  assert.equal(heartStatus(h, T0 + 101_000, true), "expired");
});

Deno.test("nextStatusChange is the first moment heartStatus answers otherwise without a new observation", () => {
  const cases: [string, Lease, number[]][] = [
    [
      "a node",
      lease("kube-node-lease", "n1", {
        holderIdentity: "n1",
        leaseDurationSeconds: 40,
      }),
      [10, 20.3],
    ],
    [
      "a controller",
      lease("kube-system", "kcm", {
        holderIdentity: "a",
        leaseDurationSeconds: 15,
      }),
      [2, 4, 6.1, 8],
    ],
    ["a heart without duration", lease("x", "y", { holderIdentity: "a" }), [
      5,
      10,
    ]],
    [
      "a heart never seen beating",
      lease("kube-node-lease", "n2", {
        holderIdentity: "n2",
        leaseDurationSeconds: 40,
      }),
      [],
    ],
  ];
  for (const [what, first, beats] of cases) {
    const h = newHeart(
      { ...first, spec: { ...first.spec, renewTime: at(0) } },
      T0,
    );
    for (const s of beats) {
      observeLease(
        h,
        { ...first, spec: { ...first.spec, renewTime: at(s) } },
        T0 + s * 1000,
      );
    }
    const start = T0 + (beats.at(-1) ?? 0) * 1000;
    let status = heartStatus(h, start, true);
    let next = nextStatusChange(h, status, true);
    // Step through a minute: the status changes exactly when predicted.
    for (let t = start; t < start + 60_000; t += 7) {
      const now = heartStatus(h, t, true);
      if (now !== status) {
        assert.ok(
          t >= next && t - next <= 7,
          `${what}: ${status} → ${now} at ${t - T0} ms, predicted ${next - T0}`,
        );
        status = now;
        next = nextStatusChange(h, status, true);
      } else {
        assert.ok(
          t <= next,
          `${what}: still ${status} at ${t - T0} ms, past ${next - T0}`,
        );
      }
    }
    assert.equal(nextStatusChange(h, status, false), Infinity);
  }
});

Deno.test("expiry waits for its confirmation: expired once confirmed, as it was while pending, unknown when the read failed", () => {
  const cases: [HeartStatus, HeartStatus, Confirmation, HeartStatus][] = [
    ["expired", "late", "confirmed", "expired"],
    ["expired", "late", "pending", "late"],
    ["expired", "healthy", "pending", "healthy"],
    ["expired", "unknown", "pending", "unknown"],
    ["expired", "expired", "pending", "late"],
    ["expired", "late", "failed", "unknown"],
    ["late", "healthy", "failed", "late"],
    ["healthy", "late", "pending", "healthy"],
    ["unknown", "late", "confirmed", "unknown"],
  ];
  for (const [decided, previous, confirmation, shown] of cases) {
    assert.equal(
      gateExpiry(decided, previous, confirmation),
      shown,
      `${decided} after ${previous}, ${confirmation}`,
    );
  }
});

Deno.test("a fresh read confirms an unchanged Lease, finds the view behind or the Lease gone, and is moot after a beat", () => {
  const spec = { holderIdentity: "a", leaseDurationSeconds: 15 };
  const h = newHeart(
    lease("kube-system", "kcm", { ...spec, renewTime: at(0) }),
    T0,
  );
  const asked = h.lastRenewTime;
  const read = (renew: number) =>
    lease("kube-system", "kcm", { ...spec, renewTime: at(renew) });
  assert.equal(judgeRead(h, asked, read(0)), "confirmed");
  assert.equal(judgeRead(h, asked, read(2)), "behind");
  assert.equal(judgeRead(h, asked, null), "gone");
  observeLease(h, read(2), T0 + 2000);
  assert.equal(judgeRead(h, asked, read(2)), "moot");
  assert.equal(judgeRead(h, asked, null), "moot");
});

Deno.test("a beat clears the confirmation of the silence before it", () => {
  const spec = { holderIdentity: "a", leaseDurationSeconds: 15 };
  const h = newHeart(
    lease("kube-system", "kcm", { ...spec, renewTime: at(0) }),
    T0,
  );
  h.silenceConfirmed = true;
  observeLease(
    h,
    lease("kube-system", "kcm", { ...spec, renewTime: at(0) }),
    T0 + 1000,
  );
  assert.equal(h.silenceConfirmed, true, "no beat, same silence");
  observeLease(
    h,
    lease("kube-system", "kcm", { ...spec, renewTime: at(5) }),
    T0 + 5000,
  );
  assert.equal(h.silenceConfirmed, false);
});

Deno.test("a heart's times and intervals are always numbers (NaN when not known), never null", () => {
  const fields = [
    "lastRenewTime",
    "lastObservedAt",
    "lastIntervalSeconds",
    "skewSeconds",
    "intervalMedian",
  ] as const;
  const numbers = (h: ReturnType<typeof newHeart>) =>
    fields.every((f) => typeof h[f] === "number");
  const h = newHeart(lease("kube-system", "ctrl", {}), T0);
  assert.ok(numbers(h), "a new heart without renewTime");
  assert.ok(Number.isNaN(h.lastRenewTime));
  assert.equal(silentSince(h), T0, "silent since it was first seen");
  observeLease(
    h,
    lease("kube-system", "ctrl", { renewTime: at(1) }),
    T0 + 1_000,
  );
  assert.ok(numbers(h), "after one beat");
  assert.equal(known(h.lastIntervalSeconds), null, "one beat has no interval");
  assert.equal(silentSince(h), T0 + 1_000, "silent since its beat");
  observeLease(
    h,
    lease("kube-system", "ctrl", { renewTime: at(3) }),
    T0 + 3_000,
  );
  assert.equal(h.lastIntervalSeconds, 2);
  assert.equal(h.intervalMedian, 2);
  assert.equal(expectedInterval(h), 2);
  h.baselineAt = T0 + 5_000;
  assert.equal(
    silentSince(h),
    T0 + 5_000,
    "a later baseline (sight regained) counts",
  );
});
