/**
 * The browser tab: a title that carries the heart (♥) and the worst status,
 * and a favicon heart in that status's colour, so a tab in the background
 * still tells whether anything expired.
 *
 * @module
 */

import type { HeartStatus } from "../core/api_types.ts";
import { t } from "./i18n.ts";

/** Statuses from worst to best. */
const WORST_FIRST: readonly HeartStatus[] = [
  "expired",
  "late",
  "unknown",
  "healthy",
];

/** The worst status with at least one heart, or null when there are none. */
export function worstStatus(
  counts: Readonly<Record<HeartStatus, number>>,
): HeartStatus | null {
  return WORST_FIRST.find((s) => counts[s] > 0) ?? null;
}

/**
 * The page title: `♥ 2 expired · Earthworm` on the overview, and the
 * heart's name and status first in its detail view,
 * `♥ node-05 expired · 2 expired · Earthworm`.
 */
export function pageTitle(
  counts: Readonly<Record<HeartStatus, number>>,
  detail: { name: string; status: HeartStatus } | null,
): string {
  const worst = worstStatus(counts);
  const overall = worst === null
    ? t("title.noHearts")
    : worst === "healthy"
    ? t("title.allHealthy")
    : t("title.worst", {
      count: counts[worst],
      status: t(`count.${worst}`, { count: counts[worst] }),
    });
  const parts = detail === null
    ? [`♥ ${overall}`]
    : [`♥ ${detail.name} ${t(`status.${detail.status}`)}`, overall];
  return [...parts, t("app.name")].join(" · ");
}

/** Colour of the favicon's heart for each status (the UI's palette). */
export const FAVICON_COLORS: Readonly<Record<HeartStatus, string>> = {
  healthy: "#39ff7a",
  late: "#ffb020",
  expired: "#ff3b3b",
  unknown: "#7d8a86",
};

/** The favicon, an SVG heart in the colour of `status`, as a data URL. */
export function faviconHref(status: HeartStatus | null): string {
  const color = FAVICON_COLORS[status ?? "unknown"];
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">` +
    `<rect width="32" height="32" rx="6" fill="#020604"/>` +
    `<path d="M16 27 C6 20 3 15 3 10.5 A6.5 6.5 0 0 1 16 8 A6.5 6.5 0 0 1 29 10.5 C29 15 26 20 16 27Z" fill="${color}"/>` +
    `</svg>`;
  return `data:image/svg+xml,${encodeURIComponent(svg)}`;
}
