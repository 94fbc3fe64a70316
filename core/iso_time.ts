/**
 * RFC 3339 timestamps for the hot path: the same text as
 * `new Date(ms).toISOString()`, several times faster, because the date part
 * is computed once per day and the time of day from integers. Every beat
 * carries four of these on its way to the stream.
 *
 * @module
 */

const DAY_MS = 86_400_000;
/** 10000-01-01T00:00:00Z: from here on toISOString writes six-digit years. */
const YEAR_10000_MS = 253_402_300_800_000;
const TWO = Array.from({ length: 100 }, (_, i) => String(i).padStart(2, "0"));
const THREE = Array.from(
  { length: 1000 },
  (_, i) => String(i).padStart(3, "0"),
);

let cachedDay = NaN;
let cachedPrefix = "";

/** `new Date(ms).toISOString()`, e.g. `2026-03-01T10:00:00.000Z`; throws RangeError on an invalid time. */
export function isoTime(ms: number): string {
  const t = Math.trunc(ms);
  if (!(t >= 0 && t < YEAR_10000_MS)) return new Date(ms).toISOString();
  const day = Math.floor(t / DAY_MS);
  if (day !== cachedDay) {
    cachedPrefix = new Date(day * DAY_MS).toISOString().slice(0, 11);
    cachedDay = day;
  }
  let rest = t - day * DAY_MS;
  const milli = rest % 1000;
  rest = (rest - milli) / 1000;
  const second = rest % 60;
  rest = (rest - second) / 60;
  const minute = rest % 60;
  const hour = (rest - minute) / 60;
  return `${cachedPrefix}${TWO[hour]}:${TWO[minute]}:${TWO[second]}.${
    THREE[milli]
  }Z`;
}
