/**
 * The beat timeline: the JSON that `earthworm parse-leases` writes and
 * `earthworm mock --replay` plays.
 *
 * Version 1 looks like this (one event per line when written):
 *
 * ```json
 * {
 *   "version": 1,
 *   "source": "leases.yaml",
 *   "start": "2024-05-01T10:00:00.123Z",
 *   "events": [
 *     {"offsetMs":0,"type":"ADDED","lease":{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{...},"spec":{...}}},
 *     {"offsetMs":10012,"type":"MODIFIED","lease":{...}}
 *   ]
 * }
 * ```
 *
 * - `start` is the earliest `renewTime` of the recording (RFC 3339, UTC);
 *   `offsetMs` is each event's `renewTime` minus `start`, in whole
 *   milliseconds. Events are ordered by `offsetMs`; ties keep the order in
 *   which the Leases first appear in the file.
 * - Each distinct `renewTime` of a Lease is one event at that time: the first
 *   is `ADDED`, the later ones `MODIFIED`. Snapshots with the same
 *   `renewTime` (compared to the millisecond) add nothing; the first one
 *   wins. Snapshots may be in any order in the file.
 * - The Lease is copied as recorded (holder, duration, `leaseTransitions`,
 *   `acquireTime`), so holder changes stay visible as transitions, except
 *   `metadata.resourceVersion`, which is replaced by a synthetic one
 *   increasing by 1 from "1" across the whole timeline, as a watch would.
 * - A snapshot without `spec.renewTime` has no beat: it is skipped with a
 *   warning naming the Lease. Only a file in which no Lease has a
 *   `renewTime` is an error.
 * - `DELETED` events are valid in a timeline (written by hand or by later
 *   recorders); Lease listings cannot show deletions, so parse-leases never
 *   writes them.
 *
 * @module
 */

import type { Lease, LeaseEventType } from "../core/lease_types.ts";
import {
  at,
  describeValue,
  documentWhere,
  fail,
  fileError,
  type LeaseSnapshot,
  type ParsedFile,
  parseRfc3339,
  validateLease,
  type Where,
} from "./lease_validation.ts";

/** The timeline format version this module writes and reads. */
export const TIMELINE_VERSION = 1;

/** One Lease watch event at `offsetMs` after the timeline's start. */
export interface TimelineEvent {
  /** Milliseconds after `start` (the event's renewTime in a recording). */
  offsetMs: number;
  /** Watch event type. */
  type: LeaseEventType;
  /** The Lease as the watch would deliver it. */
  lease: Lease;
}

/** A recorded sequence of Lease events, ready to replay. */
export interface Timeline {
  /** Format version, {@linkcode TIMELINE_VERSION}. */
  version: 1;
  /** What it was built from (the input file name). */
  source: string;
  /** RFC 3339 time of offset 0. */
  start: string;
  /** Events ordered by `offsetMs`. */
  events: TimelineEvent[];
}

/** A built timeline and the warnings about skipped snapshots. */
export interface BuiltTimeline {
  /** The timeline. */
  timeline: Timeline;
  /** One line per Lease whose snapshots were skipped. */
  warnings: string[];
}

/** Counts describing a timeline. */
export interface TimelineStats {
  /** Distinct Leases. */
  leases: number;
  /** Events. */
  events: number;
  /** Changes of holder or of leaseTransitions after a Lease's first event. */
  transitions: number;
  /** Offset of the last event. */
  spanMs: number;
}

const EVENT_TYPES: readonly LeaseEventType[] = ["ADDED", "MODIFIED", "DELETED"];

function leaseId(lease: Lease): string {
  return `${lease.metadata.namespace}/${lease.metadata.name}`;
}

/**
 * Builds the timeline of `snapshots` read from `source` (see the module doc
 * for the rules). Throws an InputError when no snapshot has a renewTime.
 */
export function buildTimeline(
  snapshots: LeaseSnapshot[],
  source: string,
): BuiltTimeline {
  const byLease = new Map<string, LeaseSnapshot[]>();
  const skipped = new Map<string, { count: number; place: string }>();
  for (const snap of snapshots) {
    const id = leaseId(snap.lease);
    if (!byLease.has(id)) byLease.set(id, []);
    if (!snap.lease.spec?.renewTime) {
      const s = skipped.get(id) ?? { count: 0, place: snap.place };
      s.count++;
      skipped.set(id, s);
      continue;
    }
    byLease.get(id)?.push(snap);
  }

  const beats: { at: number; order: number; lease: Lease }[] = [];
  let order = 0;
  for (const snaps of byLease.values()) {
    const timed = snaps
      .map((s) => ({ s, at: parseRfc3339(s.lease.spec?.renewTime ?? "") }))
      .filter((x): x is { s: LeaseSnapshot; at: number } => x.at !== undefined)
      .sort((a, b) => a.at - b.at || a.s.index - b.s.index);
    let last: number | undefined;
    for (const { s, at } of timed) {
      if (at === last) continue;
      last = at;
      beats.push({ at, order: order++, lease: s.lease });
    }
  }
  if (beats.length === 0) {
    const ids = [...skipped.keys()];
    const first = skipped.get(ids[0] ?? "");
    throw fileError(
      source,
      "",
      `no Lease has spec.renewTime, so there is no beat to replay (${ids.length} Lease${
        ids.length === 1 ? "" : "s"
      } without it, such as "${ids[0]}" at ${first?.place || "the top"}): ` +
        "record Leases that are being renewed",
    );
  }
  beats.sort((a, b) => a.at - b.at || a.order - b.order);

  const start = beats[0]?.at ?? 0;
  const seen = new Set<string>();
  const events = beats.map((b, i): TimelineEvent => {
    const id = leaseId(b.lease);
    const type: LeaseEventType = seen.has(id) ? "MODIFIED" : "ADDED";
    seen.add(id);
    const lease: Lease = {
      ...b.lease,
      metadata: { ...b.lease.metadata, resourceVersion: String(i + 1) },
    };
    if (b.lease.spec) lease.spec = { ...b.lease.spec };
    return { offsetMs: b.at - start, type, lease };
  });

  const warnings = [...skipped.entries()].map(([id, s]) =>
    `Skipped ${s.count} snapshot${s.count === 1 ? "" : "s"} of Lease "${id}" ` +
    `without spec.renewTime (first at ${
      s.place || "the top"
    }) in "${source}": ` +
    `a Lease without renewTime has no beat`
  );
  return {
    timeline: {
      version: TIMELINE_VERSION,
      source,
      start: new Date(start).toISOString(),
      events,
    },
    warnings,
  };
}

/** Whether a loaded document looks like a timeline rather than Leases. */
export function isTimelineDocument(
  doc: unknown,
): doc is Record<string, unknown> {
  return doc !== null && typeof doc === "object" && !Array.isArray(doc) &&
    "version" in doc && "events" in doc;
}

/**
 * Validates a parsed timeline file (one document) and returns the timeline
 * with its events sorted by offset (stable). Errors name the field path,
 * such as `events[3].offsetMs`.
 */
export function timelineFromDocument(parsed: ParsedFile): Timeline {
  const top = documentWhere(parsed, 0);
  if (parsed.documents.length !== 1) {
    fail(
      top,
      `a timeline is one JSON document, found ${parsed.documents.length}: pass the file "earthworm parse-leases" wrote`,
    );
  }
  const doc = parsed.documents[0];
  if (!isTimelineDocument(doc)) {
    fail(top, "expected a timeline {version, source, start, events}");
  }
  if (doc.version !== TIMELINE_VERSION) {
    fail(
      at(top, "version", doc.version),
      `expected timeline version ${TIMELINE_VERSION}, got ${
        describeValue(doc.version)
      }: re-create it with "earthworm parse-leases"`,
    );
  }
  const source = typeof doc.source === "string" ? doc.source : parsed.file;
  const startWhere = at(top, "start", doc.start);
  const start = typeof doc.start === "string"
    ? parseRfc3339(doc.start)
    : undefined;
  if (start === undefined) {
    fail(
      startWhere,
      `expected an RFC 3339 time, got ${describeValue(doc.start)}`,
    );
  }
  const eventsWhere = at(top, "events", doc.events);
  if (!Array.isArray(doc.events)) {
    fail(
      eventsWhere,
      `expected a list of events, got ${describeValue(doc.events)}`,
    );
  }
  if (doc.events.length === 0) {
    fail(
      eventsWhere,
      "the timeline has no events: re-create it from a recording with beats",
    );
  }
  const events = doc.events.map((value, i) =>
    validateEvent(value, at(eventsWhere, i, value))
  );
  events.sort((a, b) => a.offsetMs - b.offsetMs);
  return {
    version: TIMELINE_VERSION,
    source,
    start: new Date(start).toISOString(),
    events,
  };
}

function validateEvent(value: unknown, where: Where): TimelineEvent {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    fail(
      where,
      `expected an event {offsetMs, type, lease}, got ${describeValue(value)}`,
    );
  }
  const ev = value as Record<string, unknown>;
  const offset = ev.offsetMs;
  if (typeof offset !== "number" || !Number.isFinite(offset) || offset < 0) {
    fail(
      at(where, "offsetMs", offset),
      `expected milliseconds after start (a number of at least 0), got ${
        describeValue(offset)
      }`,
    );
  }
  const type = ev.type;
  if (!EVENT_TYPES.includes(type as LeaseEventType)) {
    fail(
      at(where, "type", type),
      `expected "ADDED", "MODIFIED" or "DELETED", got ${describeValue(type)}`,
    );
  }
  if (ev.lease === undefined || ev.lease === null) {
    fail(
      at(where, "lease", ev.lease),
      "the event has no lease: add the Lease object",
    );
  }
  return {
    offsetMs: offset,
    type: type as LeaseEventType,
    lease: validateLease(ev.lease, at(where, "lease", ev.lease)),
  };
}

/** Writes `timeline` as JSON text with one event per line. */
export function formatTimeline(timeline: Timeline): string {
  const head = [
    `  "version": ${JSON.stringify(timeline.version)}`,
    `  "source": ${JSON.stringify(timeline.source)}`,
    `  "start": ${JSON.stringify(timeline.start)}`,
  ];
  const events = timeline.events.map((e) =>
    `    ${
      JSON.stringify({ offsetMs: e.offsetMs, type: e.type, lease: e.lease })
    }`
  );
  return `{\n${head.join(",\n")},\n  "events": [\n${
    events.join(",\n")
  }\n  ]\n}\n`;
}

/** Counts the Leases, events and holder transitions of `timeline`. */
export function timelineStats(timeline: Timeline): TimelineStats {
  const last = new Map<string, Lease["spec"]>();
  let transitions = 0;
  for (const e of timeline.events) {
    const id = leaseId(e.lease);
    const spec = e.lease.spec;
    if (last.has(id)) {
      const prev = last.get(id);
      if (
        prev?.holderIdentity !== spec?.holderIdentity ||
        (prev?.leaseTransitions ?? 0) !== (spec?.leaseTransitions ?? 0)
      ) transitions++;
    }
    last.set(id, spec);
  }
  return {
    leases: last.size,
    events: timeline.events.length,
    transitions,
    spanMs: timeline.events.at(-1)?.offsetMs ?? 0,
  };
}
