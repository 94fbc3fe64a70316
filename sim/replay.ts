/**
 * Plays a beat timeline into a {@linkcode SimApiServer}, on an injected
 * clock. Earthworm reads that server through its list/watch loop, so a
 * recording enters the same pipeline as a live cluster.
 *
 * Replay rules:
 * - Each event is written at `start + offsetMs / speed` on the replay clock,
 *   where `start` is the clock's time when the replay began. Times are
 *   computed from `start`, so late wake-ups do not accumulate drift.
 * - Times are rewritten so a replay looks like live beats: `renewTime`
 *   becomes the write time (RFC 3339 with microseconds), and `acquireTime`
 *   keeps its distance to `renewTime` (divided by `speed`), though never
 *   before 1970.
 *   `creationTimestamp`, holders and durations stay as recorded. The server
 *   numbers resourceVersions and decides ADDED or MODIFIED by whether the
 *   Lease exists; a recorded DELETED deletes it.
 * - With `loop`, the timeline starts again every {@linkcode loopPeriodMs}
 *   (divided by `speed`), and `leaseTransitions` grows by the number of
 *   handovers per round (including one at the seam when a round ends with a
 *   different holder than it starts with), so it never goes backwards.
 * - A silence longer than {@linkcode MAX_REPLAY_GAP_MS} between two
 *   consecutive events is played as that long, with one warning: a
 *   recording may hold a Lease last renewed years before the others (or dates
 *   millennia apart), and waiting that out would leave the replay silent and
 *   overflow the timers. A node's Lease (40 s) has long expired by then,
 *   so the replay shows the same thing sooner.
 * - Aborting the signal ends the replay: the promise resolves. Without
 *   `loop` it resolves after the last event; the server stays up, so hearts
 *   then age as they would in a silent cluster.
 *
 * @module
 */

import type { Clock } from "../core/clock.ts";
import { getLogger } from "../core/log.ts";
import type { Lease } from "../core/lease_types.ts";
import { microTime } from "../core/lease_types.ts";
import type { SimApiServer } from "./sim_api_server.ts";
import { parseLeaseDocuments, readLeaseText } from "./lease_file.ts";
import { leasesFromDocuments, parseRfc3339 } from "./lease_validation.ts";
import {
  buildTimeline,
  isTimelineDocument,
  type Timeline,
  type TimelineEvent,
  timelineFromDocument,
} from "./timeline.ts";

/** How to play a timeline. */
export interface ReplayOptions {
  /** The replay clock (a FakeClock in tests). */
  clock: Clock;
  /** Playback speed: 2 plays twice as fast. Must be greater than 0. */
  speed: number;
  /** Stops the replay. */
  signal: AbortSignal;
  /** Start again after the last event, forever. */
  loop?: boolean;
}

const log = getLogger("replay");

/**
 * Longest silence replayed between two consecutive events, in timeline
 * milliseconds (5 minutes): longer ones are shortened to it.
 */
export const MAX_REPLAY_GAP_MS = 5 * 60_000;

/** What {@linkcode shortenSilences} changed. */
export interface ShortenedSilences {
  /** The timeline with every gap at most `maxGapMs`. */
  timeline: Timeline;
  /** Gaps that were shortened. */
  count: number;
  /** The longest gap before shortening, in milliseconds. */
  longestMs: number;
  /** The event after the longest gap. */
  longestBefore?: TimelineEvent;
}

/**
 * Returns `timeline` with each gap between consecutive events longer than
 * `maxGapMs` shortened to `maxGapMs` (the events keep their order and every
 * other gap), and what was shortened.
 */
export function shortenSilences(
  timeline: Timeline,
  maxGapMs: number = MAX_REPLAY_GAP_MS,
): ShortenedSilences {
  let count = 0;
  let longestMs = 0;
  let longestBefore: TimelineEvent | undefined;
  let shift = 0;
  let previous: number | undefined;
  const events = timeline.events.map((event) => {
    const gap = previous === undefined ? 0 : event.offsetMs - previous;
    previous = event.offsetMs;
    if (gap > maxGapMs) {
      count++;
      shift += gap - maxGapMs;
      if (gap > longestMs) {
        longestMs = gap;
        longestBefore = event;
      }
    }
    return shift === 0 ? event : { ...event, offsetMs: event.offsetMs - shift };
  });
  return {
    timeline: count === 0 ? timeline : { ...timeline, events },
    count,
    longestMs,
    ...(longestBefore && { longestBefore }),
  };
}

/** Describes a long duration for a log line: `2932896 days`, `7 hours`. */
function formatLongDuration(ms: number): string {
  const minutes = Math.floor(ms / 60_000);
  if (minutes < 120) return `${minutes} minutes`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} hours`;
  return `${Math.floor(hours / 24)} days`;
}

/** Interval assumed for a Lease with one beat and no duration (10 s, the kubelet's). */
const FALLBACK_INTERVAL_MS = 10_000;

/**
 * Length of one round of a looped replay, in timeline milliseconds: the
 * median over Leases of (first-to-last span + typical interval), and at
 * least the last offset + 1 ms. A Lease's typical interval is the median of
 * its intervals, else `leaseDurationSeconds / 4`, else 10 s. So each Lease's
 * beat across the seam arrives about one interval after its last one.
 */
export function loopPeriodMs(timeline: Timeline): number {
  const offsets = new Map<string, { times: number[]; duration: number }>();
  for (const e of timeline.events) {
    const id = `${e.lease.metadata.namespace}/${e.lease.metadata.name}`;
    const entry = offsets.get(id) ?? { times: [], duration: 0 };
    entry.times.push(e.offsetMs);
    entry.duration = e.lease.spec?.leaseDurationSeconds ?? entry.duration;
    offsets.set(id, entry);
  }
  const rounds = [...offsets.values()].map(({ times, duration }) => {
    const intervals = times.slice(1).map((t, i) => t - (times[i] ?? t))
      .filter((d) => d > 0);
    const interval = intervals.length > 0
      ? median(intervals)
      : duration > 0
      ? duration * 250
      : FALLBACK_INTERVAL_MS;
    return (times.at(-1) ?? 0) - (times[0] ?? 0) + interval;
  });
  const last = timeline.events.at(-1)?.offsetMs ?? 0;
  return Math.max(last + 1, rounds.length > 0 ? median(rounds) : 0);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? sorted[mid] ?? 0
    : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

/** Per-Lease growth of leaseTransitions per round of a looped replay. */
function transitionBumps(timeline: Timeline): Map<string, number> {
  const firstLast = new Map<string, { first: Lease; last: Lease }>();
  for (const e of timeline.events) {
    const id = `${e.lease.metadata.namespace}/${e.lease.metadata.name}`;
    const entry = firstLast.get(id);
    if (entry) entry.last = e.lease;
    else firstLast.set(id, { first: e.lease, last: e.lease });
  }
  const bumps = new Map<string, number>();
  for (const [id, { first, last }] of firstLast) {
    const within = (last.spec?.leaseTransitions ?? 0) -
      (first.spec?.leaseTransitions ?? 0);
    const seam = first.spec?.holderIdentity !== last.spec?.holderIdentity
      ? 1
      : 0;
    bumps.set(id, Math.max(0, within) + seam);
  }
  return bumps;
}

/**
 * Plays `timeline` into `server` on `opts.clock` (see the module doc).
 * Resolves after the last event, or when `opts.signal` is aborted.
 */
export async function replayTimeline(
  recorded: Timeline,
  server: SimApiServer,
  opts: ReplayOptions,
): Promise<void> {
  const { clock, speed, signal } = opts;
  if (!(speed > 0) || !Number.isFinite(speed)) {
    throw new RangeError(
      `Replay speed must be a number greater than 0, got ${speed}`,
    );
  }
  if (signal.aborted) return;
  const start = clock.now();
  if (recorded.events.length === 0) return;
  const shortened = shortenSilences(recorded);
  const timeline = shortened.timeline;
  if (shortened.count > 0) {
    const next = shortened.longestBefore?.lease.metadata;
    log.warn(
      `the recording is silent for ${
        formatLongDuration(shortened.longestMs)
      } before Lease "${next?.namespace}/${next?.name}"${
        shortened.count > 1
          ? ` (and ${shortened.count - 1} more gaps over ${
            formatLongDuration(MAX_REPLAY_GAP_MS)
          })`
          : ""
      }: replaying each such silence as ${
        formatLongDuration(MAX_REPLAY_GAP_MS)
      }`,
      { source: recorded.source },
    );
  }

  const period = loopPeriodMs(timeline);
  const bumps = opts.loop ? transitionBumps(timeline) : new Map();
  for (let round = 0;; round++) {
    const roundStart = start + (round * period) / speed;
    for (const event of timeline.events) {
      const due = roundStart + event.offsetMs / speed;
      const wait = due - clock.now();
      if (wait > 0) {
        try {
          await clock.sleep(wait, signal);
        } catch (err) {
          if (signal.aborted) return;
          throw err;
        }
      }
      if (signal.aborted) return;
      const { namespace, name } = event.lease.metadata;
      if (event.type === "DELETED") {
        server.delete(namespace, name);
        continue;
      }
      server.write(retime(event.lease, due, speed, {
        transitionBump: round * (bumps.get(`${namespace}/${name}`) ?? 0),
      }));
    }
    if (!opts.loop) return;
  }
}

/** 9999-12-31T23:59:59.999Z. */
const LATEST_WRITABLE_MS = 253_402_300_799_999;

function retime(
  recorded: Lease,
  due: number,
  speed: number,
  extra: { transitionBump: number },
): Lease {
  const lease: Lease = { ...recorded, metadata: { ...recorded.metadata } };
  const spec = recorded.spec;
  if (!spec) return lease;
  lease.spec = { ...spec };
  const renew = parseRfc3339(spec.renewTime ?? "");
  if (renew !== undefined) lease.spec.renewTime = microTime(due);
  const acquire = parseRfc3339(spec.acquireTime ?? "");
  if (acquire !== undefined && renew !== undefined) {
    // Clamped to times RFC 3339 can write, for recordings whose acquireTime
    // lies millennia from their renewTime.
    const at = due - (renew - acquire) / speed;
    lease.spec.acquireTime = microTime(
      Math.min(Math.max(at, 0), LATEST_WRITABLE_MS),
    );
  }
  if (extra.transitionBump > 0) {
    lease.spec.leaseTransitions = (spec.leaseTransitions ?? 0) +
      extra.transitionBump;
  }
  return lease;
}

/**
 * Loads a timeline from `path`: either a timeline JSON written by
 * `earthworm parse-leases`, or any Lease YAML/JSON that parse-leases accepts
 * (converted on the fly; skipped snapshots are logged as warnings). Bad
 * input throws an InputError with a one-line message.
 */
export async function loadTimeline(path: string): Promise<Timeline> {
  const text = await readLeaseText(path);
  const name = path === "-" ? "standard input" : path;
  // A timeline is JSON: JSON.parse reads it about ten times faster than
  // js-yaml. Errors are reported from the js-yaml parse below, with lines.
  const fast = parseJson(text);
  if (isTimelineDocument(fast)) {
    try {
      return timelineFromDocument({
        file: name,
        documents: [fast],
        lines: new WeakMap(),
      });
    } catch {
      // fall through
    }
  }
  const parsed = parseLeaseDocuments(text, name);
  if (
    parsed.documents.length === 1 && isTimelineDocument(parsed.documents[0])
  ) {
    return timelineFromDocument(parsed);
  }
  const built = buildTimeline(leasesFromDocuments(parsed), name);
  for (const warning of built.warnings) log.warn(warning);
  return built.timeline;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
