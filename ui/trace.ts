/**
 * Pure cardiogram geometry: turns a heart's beat times into the points of a
 * sweeping monitor trace. Every beat becomes a P-QRS-T complex around its
 * `observedAt`; between beats the line is flat, coloured by how late the
 * next beat was (amber past twice the expected interval, red past the lease
 * duration), so lateness shows as a stretched, coloured gap and an expired
 * heart as a red flatline.
 *
 * The sweep works like a bedside monitor: x runs from 0 to the window length;
 * the cursor sits at `now mod window`; left of it is the current sweep, right
 * of it (after a short erase gap) the end of the previous one.
 *
 * @module
 */

import type { HeartStatus } from "../core/api_types.ts";

/** Colour class of a stretch of trace. */
export type Tone = "ok" | "late" | "expired" | "unknown";

/** One beat as the trace needs it: when it was observed and the interval before it. */
export interface TraceBeat {
  /** `observedAt` in server milliseconds. */
  t: number;
  /** Milliseconds since the previous beat, or null when none was seen before. */
  intervalMs: number | null;
}

/** What a trace is drawn from. */
export interface TraceInput {
  /** Beats in ascending time order. */
  beats: readonly TraceBeat[];
  /** Server time at the cursor, in milliseconds. */
  now: number;
  /** Length of one sweep in milliseconds. */
  windowMs: number;
  /** Time unit of the complex's shape: the QRS spans about one unit. */
  spikeMs: number;
  status: HeartStatus;
  expectedIntervalMs: number | null;
  leaseDurationMs: number | null;
  /**
   * Periods when Earthworm could not see the API server: a gap there is an
   * observer problem, drawn grey, never amber or red.
   */
  outages?: readonly Outage[];
}

/** A period when the source was disconnected, in server milliseconds; `to` null while ongoing. */
export interface Outage {
  from: number;
  to: number | null;
}

/** A computed sweep: points for the line, ascending in x (a NaN y breaks it), and the cursor. */
export interface Trace {
  xs: number[];
  ys: number[];
  /** Tone of the segment that starts at each point. */
  tones: Tone[];
  cursorX: number;
  cursorY: number;
  /** Number of beat peaks visible in the sweep. */
  spikes: number;
}

/** Shape of one beat: [offset in spike units, height]. Baseline is 0, the R peak 1. */
const COMPLEX: ReadonlyArray<readonly [number, number]> = [
  [-2.2, 0],
  [-1.8, 0.09],
  [-1.4, 0],
  [-0.5, 0],
  [-0.3, -0.16],
  [0, 1],
  [0.3, -0.36],
  [0.55, 0],
  [1.2, 0],
  [1.9, 0.2],
  [2.6, 0],
];
const BEFORE = 2.2;
const AFTER = 2.6;
/** The erase gap ahead of the cursor, as a fraction of the window. */
const GAP_FRACTION = 0.035;

interface Pt {
  t: number;
  y: number;
  tone: Tone;
}

/** Tone that a heart's status gives its line when nothing more specific is known. */
export function statusTone(status: HeartStatus): Tone {
  return status === "healthy" ? "ok" : status;
}

/** Computes the sweep trace of one heart at `input.now`. */
export function sweepTrace(input: TraceInput): Trace {
  const { now, windowMs } = input;
  const sweepStart = now - mod(now, windowMs);
  const cursorX = now - sweepStart;
  const gap = windowMs * GAP_FRACTION;
  const oldFrom = sweepStart - windowMs + cursorX + gap;

  const from = Math.min(oldFrom, sweepStart);
  const all = wave(input, from, now);
  const xs: number[] = [];
  const ys: number[] = [];
  const tones: Tone[] = [];
  let cursorY = 0;

  const current = clip(all, sweepStart, now);
  for (const p of current) {
    xs.push(p.t - sweepStart);
    ys.push(p.y);
    tones.push(p.tone);
  }
  const last = current[current.length - 1];
  if (last) cursorY = last.y;
  if (oldFrom < sweepStart) {
    // A point without a value breaks the line; x stays in order for Chart.js.
    xs.push(cursorX + gap / 2);
    ys.push(NaN);
    tones.push("unknown");
    for (const p of clip(all, oldFrom, sweepStart)) {
      xs.push(p.t - sweepStart + windowMs);
      ys.push(p.y);
      tones.push(p.tone);
    }
  }
  let spikes = 0;
  for (const b of input.beats) {
    const inCurrent = b.t >= sweepStart && b.t <= now;
    const inOld = b.t >= oldFrom && b.t < sweepStart;
    if (inCurrent || inOld) spikes++;
  }
  return { xs, ys, tones, cursorX, cursorY, spikes };
}

/** The whole waveform from `from` to `to`, with points possibly outside it. */
function wave(input: TraceInput, from: number, to: number): Pt[] {
  const { beats, spikeMs } = input;
  const reach = (BEFORE + AFTER) * spikeMs;
  let first = lowerBound(beats, from - reach);
  if (first > 0) first--;
  const pts: Pt[] = [];
  // Flat before the first complex considered.
  const head = beats[first];
  if (head === undefined || head.t - BEFORE * spikeMs > from) {
    const ref = head === undefined
      ? lastBefore(beats, from)
      : previousTime(beats, first);
    const end = head === undefined ? to : head.t - BEFORE * spikeMs;
    flat(pts, input, from, end, ref, head === undefined);
  }
  for (let i = first; i < beats.length; i++) {
    const beat = beats[i]!;
    if (beat.t - BEFORE * spikeMs > to) break;
    const prev = beats[i - 1];
    const next = beats[i + 1];
    const lo = prev === undefined ? -Infinity : (prev.t + beat.t) / 2;
    const hi = next === undefined ? Infinity : (beat.t + next.t) / 2;
    for (const [offset, y] of COMPLEX) {
      const t = beat.t + offset * spikeMs;
      if (t >= lo && t < hi) pts.push({ t, y, tone: "ok" });
    }
    const flatFrom = Math.min(beat.t + AFTER * spikeMs, hi);
    const isLast = next === undefined;
    const flatTo = isLast ? Math.max(to, flatFrom) : next.t - BEFORE * spikeMs;
    if (flatTo > flatFrom) flat(pts, input, flatFrom, flatTo, beat.t, isLast);
  }
  return pts;
}

/**
 * Emits the flat stretch [a, b) after the beat at `ref` (null: none seen),
 * with a point at each threshold where its tone changes. A trailing stretch
 * (after the last beat) ends in the tone the server's status gives.
 */
function flat(
  out: Pt[],
  input: TraceInput,
  a: number,
  b: number,
  ref: number | null,
  trailing: boolean,
): void {
  if (ref === null) {
    out.push({
      t: a,
      y: 0,
      tone: trailing ? statusTone(input.status) : "unknown",
    });
    return;
  }
  const status = input.status;
  if (trailing && (status === "unknown" || status === "healthy")) {
    out.push({ t: a, y: 0, tone: statusTone(status) });
    return;
  }
  const lateAfter = input.expectedIntervalMs === null
    ? Infinity
    : 2 * input.expectedIntervalMs;
  const duration = input.leaseDurationMs ?? Infinity;
  // The server's verdict on a trailing stretch wins over our estimate of its clock.
  const latest = trailing ? input.now - input.windowMs * 0.01 : Infinity;
  const outages = (input.outages ?? []).filter((o) =>
    o.to === null || o.to > ref
  );
  const blind = (t: number) =>
    outages.some((o) => t >= o.from && (o.to === null || t < o.to));
  // Lateness counts from the beat, or from the end of a later outage: no beat
  // could be seen while Earthworm was blind.
  const since = (t: number) => {
    let r = ref;
    for (const o of outages) {
      if (o.to !== null && o.to > r && o.to <= t) r = o.to;
    }
    return r;
  };
  const toneAt = (t: number): Tone => {
    if (blind(t)) return "unknown";
    const r = since(t);
    let expiredAt = Math.min(r + duration, latest);
    if (trailing && status === "late") expiredAt = Infinity;
    const lateAt = Math.min(r + lateAfter, latest, expiredAt);
    return t >= expiredAt ? "expired" : t >= lateAt ? "late" : "ok";
  };
  const changes = [latest];
  for (const r of [ref, ...outages.map((o) => o.to ?? Infinity)]) {
    changes.push(r + lateAfter, r + duration);
  }
  for (const o of outages) changes.push(o.from, o.to ?? Infinity);
  changes.sort((x, y) => x - y);
  out.push({ t: a, y: 0, tone: toneAt(a) });
  for (const t of changes) {
    if (t <= a || t >= b) continue;
    const last = out[out.length - 1]!;
    const tone = toneAt(t);
    if (last.t !== t && last.tone !== tone) out.push({ t, y: 0, tone });
  }
}

/** Points of `pts` within [from, to], with interpolated end points. */
function clip(pts: readonly Pt[], from: number, to: number): Pt[] {
  const out: Pt[] = [];
  if (to <= from || pts.length === 0) return out;
  const at = (t: number): Pt => {
    let i = lowerBound(pts, t);
    const p = pts[i];
    if (p !== undefined && p.t === t) return { ...p };
    i--;
    const before = pts[i];
    if (before === undefined) return { t, y: pts[0]!.y, tone: pts[0]!.tone };
    const after = pts[i + 1];
    if (after === undefined) return { t, y: before.y, tone: before.tone };
    const f = (t - before.t) / (after.t - before.t);
    return { t, y: before.y + (after.y - before.y) * f, tone: before.tone };
  };
  out.push(at(from));
  for (let i = lowerBound(pts, from); i < pts.length; i++) {
    const p = pts[i]!;
    if (p.t <= from) continue;
    if (p.t >= to) break;
    out.push(p);
  }
  out.push(at(to));
  return out;
}

function previousTime(beats: readonly TraceBeat[], i: number): number | null {
  const prev = beats[i - 1];
  if (prev !== undefined) return prev.t;
  const beat = beats[i];
  if (beat === undefined || beat.intervalMs === null) return null;
  return beat.t - beat.intervalMs;
}

function lastBefore(beats: readonly TraceBeat[], t: number): number | null {
  const i = lowerBound(beats, t) - 1;
  const beat = beats[i];
  return beat === undefined ? null : beat.t;
}

/** Index of the first element with `.t >= t`. */
function lowerBound(items: readonly { t: number }[], t: number): number {
  let lo = 0;
  let hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (items[mid]!.t < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function mod(a: number, n: number): number {
  return ((a % n) + n) % n;
}
