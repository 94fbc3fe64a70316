/**
 * Interval statistics of a heart's beat history for the detail view.
 *
 * @module
 */

import type { Beat } from "../core/api_types.ts";

/** Summary of the intervals between beats, in seconds. */
export interface IntervalStats {
  beats: number;
  intervals: number;
  min: number | null;
  median: number | null;
  p95: number | null;
  max: number | null;
}

/** Computes count, min, median, p95 and max of the beats' intervals. */
export function intervalStats(beats: readonly Beat[]): IntervalStats {
  const values = beats
    .map((b) => b.intervalSeconds)
    .filter((v): v is number => v !== null && Number.isFinite(v))
    .sort((a, b) => a - b);
  return {
    beats: beats.length,
    intervals: values.length,
    min: values[0] ?? null,
    median: quantile(values, 0.5),
    p95: quantile(values, 0.95),
    max: values[values.length - 1] ?? null,
  };
}

/** Quantile `q` of sorted `values` by linear interpolation; null when empty. */
export function quantile(values: readonly number[], q: number): number | null {
  if (values.length === 0) return null;
  const pos = (values.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  const a = values[lo]!;
  const b = values[hi]!;
  return a + (b - a) * (pos - lo);
}

/** A holder change: who took the heart over and when. */
export interface Transition {
  at: string;
  from: string | null;
  to: string | null;
}

/** Holder changes in `beats`, newest first. */
export function transitionsOf(beats: readonly Beat[]): Transition[] {
  const out: Transition[] = [];
  for (let i = 0; i < beats.length; i++) {
    const beat = beats[i]!;
    if (!beat.transition) continue;
    out.push({
      at: beat.observedAt,
      from: beats[i - 1]?.holder ?? null,
      to: beat.holder,
    });
  }
  return out.reverse();
}

/** A point of the beat-history chart; a null `y` breaks the line (a gap). */
export interface IntervalPoint {
  /** When the beat was observed, epoch ms. */
  x: number;
  /** Its interval in seconds, or null for a break. */
  y: number | null;
}

/**
 * The beat-history line: one point per beat with an interval, broken where
 * no beat came for longer than the late threshold (twice `expectedSeconds`,
 * or twice the median interval when the expected one is unknown) or where
 * the history has a beat without an interval (Earthworm was not watching).
 * A silence is drawn as a gap followed by the late beat's own point, never as
 * a ramp from the beat before it. `gaps` counts the breaks.
 */
export function intervalPoints(
  beats: readonly Beat[],
  expectedSeconds: number | null,
): { points: IntervalPoint[]; gaps: number } {
  const usual = expectedSeconds ?? intervalStats(beats).median;
  const thresholdMs = usual === null ? Infinity : 2 * usual * 1000;
  const points: IntervalPoint[] = [];
  let gaps = 0;
  let prevX: number | null = null;
  let broken = false;
  for (const beat of beats) {
    const x = Date.parse(beat.observedAt);
    if (
      beat.intervalSeconds === null || !Number.isFinite(beat.intervalSeconds)
    ) {
      broken = prevX !== null;
      prevX = x;
      continue;
    }
    if (prevX !== null && (broken || x - prevX > thresholdMs)) {
      const last = points[points.length - 1];
      if (last !== undefined && last.y !== null) {
        points.push({ x: (prevX + x) / 2, y: null });
        gaps++;
      }
    }
    broken = false;
    points.push({ x, y: beat.intervalSeconds });
    prevX = x;
  }
  return { points, gaps };
}
