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
