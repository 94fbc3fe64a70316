import assert from "node:assert/strict";
import { InputError } from "../core/errors.ts";
import { parseLeaseDocuments, readLeaseFile } from "./lease_file.ts";
import { leasesFromDocuments } from "./lease_validation.ts";
import {
  buildTimeline,
  formatTimeline,
  type Timeline,
  timelineFromDocument,
  timelineStats,
} from "./timeline.ts";

const fixture = (name: string) =>
  new URL(`../tests/testdata/${name}`, import.meta.url).pathname;

function snapshots(text: string) {
  return leasesFromDocuments(parseLeaseDocuments(text, "f.yaml"));
}

function seed(...rows: [string, string, string?][]): string {
  return "items:\n" +
    rows.map(([name, renew, holder]) =>
      `- metadata: {name: ${name}, namespace: kube-system}\n  spec: {holderIdentity: ${
        holder ?? name
      }, leaseDurationSeconds: 15${renew ? `, renewTime: "${renew}"` : ""}}\n`
    ).join("");
}

const ids = (t: Timeline) =>
  t.events.map((e) => `${e.type} ${e.lease.metadata.name} +${e.offsetMs}`);

Deno.test("one kubectl List becomes an ADDED event per Lease at its renewTime", async () => {
  const { timeline, warnings } = buildTimeline(
    await readLeaseFile(fixture("leases_kubectl_list.yaml")),
    "leases.yaml",
  );
  assert.deepEqual(warnings, []);
  assert.equal(timeline.version, 1);
  assert.equal(timeline.source, "leases.yaml");
  assert.equal(timeline.start, "2024-05-01T10:00:01.998Z");
  assert.deepEqual(ids(timeline), [
    "ADDED apiserver-ksc3xvdfmt2r4hx5lqjz7y2vca +0",
    "ADDED cp-1 +106",
    "ADDED worker-2 +2089",
    "ADDED worker-1 +3613",
    "ADDED kube-scheduler +4103",
    "ADDED kube-controller-manager +4534",
  ]);
  assert.deepEqual(
    timeline.events.map((e) => e.lease.metadata.resourceVersion),
    ["1", "2", "3", "4", "5", "6"],
  );
  // The recorded renewTime is kept exactly, microseconds included.
  assert.equal(
    timeline.events[1]?.lease.spec?.renewTime,
    "2024-05-01T10:00:02.104733Z",
  );
});

Deno.test("seed snapshots become beats: repeats dropped, gaps and handovers kept", async () => {
  const { timeline, warnings } = buildTimeline(
    await readLeaseFile(fixture("leases_seed.yaml")),
    "seed.yaml",
  );
  const of = (name: string) =>
    timeline.events.filter((e) => e.lease.metadata.name === name);
  const worker1 = of("worker-1");
  assert.deepEqual(worker1.map((e) => e.type), [
    "ADDED",
    "MODIFIED",
    "MODIFIED",
    "MODIFIED",
    "MODIFIED",
    "MODIFIED",
  ]);
  assert.deepEqual(
    worker1.map((e) => e.offsetMs),
    [0, 10_000, 20_000, 30_000, 40_000, 50_000],
  );
  // worker-2 stops renewing after 24 s and is back at 54 s: a 30 s gap.
  const worker2 = of("worker-2").map((e) => e.lease.spec?.renewTime);
  assert.deepEqual(worker2, [
    "2024-05-01T10:00:04.900000Z",
    "2024-05-01T10:00:14.900000Z",
    "2024-05-01T10:00:24.900000Z",
    "2024-05-01T10:00:54.900000Z",
  ]);
  const kcm = of("kube-controller-manager");
  assert.equal(kcm.length, 12);
  const holders = [...new Set(kcm.map((e) => e.lease.spec?.holderIdentity))];
  assert.deepEqual(holders, [
    "cp-1_7a1f0c52-4e2b-4d8e-9a51-0f3c2d7b9e11",
    "cp-2_9e0b3c71-2f4a-4d58-b6e1-7a3c5d0f9b28",
  ]);
  assert.equal(kcm[6]?.lease.spec?.leaseTransitions, 2);
  assert.equal(of("my-operator-lock").length, 0);
  assert.equal(warnings.length, 1);
  assert.match(
    warnings[0] ?? "",
    /^Skipped 1 snapshot of Lease "operators\/my-operator-lock" without spec\.renewTime \(first at line \d+, items\[36\]\) in "seed\.yaml"/,
  );
  assert.deepEqual(timelineStats(timeline), {
    leases: 3,
    events: 22,
    transitions: 1,
    spanMs: 55_282,
  });
  const offsets = timeline.events.map((e) => e.offsetMs);
  assert.deepEqual(offsets, [...offsets].sort((a, b) => a - b));
});

Deno.test("several documents merge into one timeline with the scheduler handover", async () => {
  const { timeline } = buildTimeline(
    await readLeaseFile(fixture("leases_multi_doc.yaml")),
    "multi.yaml",
  );
  assert.equal(timeline.events.length, 9);
  const scheduler = timeline.events.filter((e) =>
    e.lease.metadata.name === "kube-scheduler"
  );
  assert.deepEqual(
    scheduler.map((e) => e.lease.spec?.holderIdentity?.slice(0, 4)),
    ["cp-1", "cp-1", "cp-2"],
  );
  assert.equal(timelineStats(timeline).transitions, 1);
});

Deno.test("snapshots out of order are sorted and identical renewTimes produce no event", () => {
  const { timeline } = buildTimeline(
    snapshots(seed(
      ["a", "2024-05-01T10:00:20Z"],
      ["a", "2024-05-01T10:00:00Z"],
      ["b", "2024-05-01T10:00:05Z"],
      ["a", "2024-05-01T10:00:20Z", "someone-else"],
      ["a", "2024-05-01T10:00:10Z"],
      ["b", "2024-05-01T10:00:05.000Z"],
    )),
    "f.yaml",
  );
  assert.deepEqual(ids(timeline), [
    "ADDED a +0",
    "ADDED b +5000",
    "MODIFIED a +10000",
    "MODIFIED a +20000",
  ]);
  // Of two snapshots with the same renewTime, the first in the file wins.
  assert.equal(timeline.events[3]?.lease.spec?.holderIdentity, "a");
});

Deno.test("Leases renewed at the same instant keep the order of the file", () => {
  const { timeline } = buildTimeline(
    snapshots(seed(
      ["z", "2024-05-01T10:00:00Z"],
      ["m", "2024-05-01T10:00:00Z"],
      ["a", "2024-05-01T10:00:00Z"],
    )),
    "f.yaml",
  );
  assert.deepEqual(ids(timeline), ["ADDED z +0", "ADDED m +0", "ADDED a +0"]);
});

Deno.test("a file where no Lease has a renewTime is an error naming a Lease", async () => {
  const snaps = await readLeaseFile(fixture("bad_no_renewtime.yaml"));
  assert.throws(
    () => buildTimeline(snaps, "none.yaml"),
    (err: unknown) =>
      err instanceof InputError &&
      err.message.startsWith('Cannot read lease file "none.yaml": ') &&
      err.message.includes("no Lease has spec.renewTime") &&
      err.message.includes('"operators/my-operator-lock" at line 4, items[0]'),
  );
});

Deno.test("a written timeline reads back as the same timeline", async () => {
  const { timeline } = buildTimeline(
    await readLeaseFile(fixture("leases_seed.yaml")),
    "seed.yaml",
  );
  const text = formatTimeline(timeline);
  assert.deepEqual(JSON.parse(text), timeline);
  // One event per line, so diffs of recordings stay readable.
  assert.equal(text.split("\n").length, timeline.events.length + 8);
  const again = timelineFromDocument(parseLeaseDocuments(text, "t.json"));
  assert.deepEqual(again, timeline);
});

Deno.test("a hand-written timeline is sorted by offset and may hold deletions", () => {
  const lease = (name: string) => ({
    metadata: { name, namespace: "x" },
    spec: { renewTime: "2024-05-01T10:00:00Z" },
  });
  const text = JSON.stringify({
    version: 1,
    source: "by hand",
    start: "2024-05-01T10:00:00Z",
    events: [
      { offsetMs: 500, type: "DELETED", lease: lease("a") },
      { offsetMs: 0, type: "ADDED", lease: lease("a") },
    ],
  });
  const t = timelineFromDocument(parseLeaseDocuments(text, "t.json"));
  assert.deepEqual(ids(t), ["ADDED a +0", "DELETED a +500"]);
  assert.equal(t.start, "2024-05-01T10:00:00.000Z");
});

Deno.test("bad timelines name the field path of the problem", () => {
  const good = {
    offsetMs: 0,
    type: "ADDED",
    lease: { metadata: { name: "a", namespace: "x" } },
  };
  const doc = (over: Record<string, unknown>, ev?: Record<string, unknown>) =>
    JSON.stringify({
      version: 1,
      source: "s",
      start: "2024-05-01T10:00:00Z",
      events: [good, { ...good, ...ev }],
      ...over,
    });
  const cases: [string, string][] = [
    [
      doc({ version: 2 }),
      "version: expected timeline version 1, got the number 2",
    ],
    [
      doc({ start: "soon" }),
      'start: expected an RFC 3339 time, got the string "soon"',
    ],
    [doc({ events: {} }), "events: expected a list of events"],
    [doc({ events: [] }), "the timeline has no events"],
    [doc({}, { offsetMs: -1 }), "events[1].offsetMs: expected milliseconds"],
    [
      doc({}, { offsetMs: "5" }),
      'events[1].offsetMs: expected milliseconds after start (a number of at least 0), got the string "5"',
    ],
    [
      doc({}, { type: "BOOKMARK" }),
      'events[1].type: expected "ADDED", "MODIFIED" or "DELETED", got the string "BOOKMARK"',
    ],
    [doc({}, { lease: null }), "events[1].lease: the event has no lease"],
    [
      doc({}, { lease: { metadata: { name: "a" } } }),
      "events[1].lease.metadata.namespace",
    ],
    [
      doc({ events: [3] }),
      "events[0]: expected an event {offsetMs, type, lease}, got the number 3",
    ],
  ];
  for (const [text, part] of cases) {
    assert.throws(
      () => timelineFromDocument(parseLeaseDocuments(text, "t.json")),
      (err: unknown) =>
        err instanceof InputError && err.message.includes(part) &&
        err.message.includes('"t.json"'),
      part,
    );
  }
});
