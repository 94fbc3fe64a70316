/**
 * Number and time formatting for the UI, in the current language's number
 * format (`9.8 s` in English, `9,8 s` in Spanish).
 *
 * @module
 */

import { formatNumber, t } from "./i18n.ts";

function fixed(n: number, digits: number): string {
  return formatNumber(n, undefined, digits);
}

/** Seconds as a short duration: `9.8 s`, `2 m 05 s`, `1 h 02 m`; `—` for null. */
export function formatSeconds(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) {
    return "—";
  }
  const abs = Math.abs(seconds);
  const sign = seconds < 0 ? "-" : "";
  if (abs < 1) return `${sign}${Math.round(abs * 1000)} ms`;
  if (abs < 100) return `${sign}${fixed(abs, 1)} s`;
  const total = Math.round(abs);
  if (total < 3600) {
    return `${sign}${Math.floor(total / 60)} m ${
      String(total % 60).padStart(2, "0")
    } s`;
  }
  const minutes = Math.floor(total / 60);
  return `${sign}${Math.floor(minutes / 60)} h ${
    String(minutes % 60).padStart(2, "0")
  } m`;
}

/** Milliseconds with a sensible precision: `0.42 ms`, `12.3 ms`, `840 ms`. */
export function formatMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "—";
  if (ms < 1) return `${fixed(ms, 2)} ms`;
  if (ms < 100) return `${fixed(ms, 1)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return formatSeconds(ms / 1000);
}

/** Epoch milliseconds as a local time of day, `HH:MM:SS`. */
export function timeOfDay(ms: number): string {
  const d = new Date(ms);
  return [d.getHours(), d.getMinutes(), d.getSeconds()]
    .map((n) => String(n).padStart(2, "0"))
    .join(":");
}

/** How long ago `iso` was at server time `now`, e.g. `12.0 s ago`; `never` for null. */
export function ago(iso: string | null, now: number | null): string {
  if (iso === null) return t("time.never");
  if (now === null) return iso;
  const seconds = Math.max(0, (now - Date.parse(iso)) / 1000);
  return t("time.ago", { duration: formatSeconds(seconds) });
}
