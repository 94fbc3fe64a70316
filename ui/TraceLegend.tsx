/**
 * The cardiograms' legend and time scale, in words: how long one sweep
 * lasts and how far apart the grid lines are, what lies right of the cursor,
 * and what each colour means.
 *
 * @module
 */

import { formatNumber, t } from "./i18n.ts";

/** Grid spacing of a cardiogram sweeping `windowMs`, as `Cardiogram` draws it. */
export function gridStepMs(windowMs: number): number {
  return windowMs / Math.max(4, Math.round(windowMs / 10_000));
}

/** Props of {@linkcode TraceLegend}. */
export interface TraceLegendProps {
  /** Length of one sweep in milliseconds. */
  windowMs: number;
  class?: string;
}

/** An offset in a sweep: `0 s`, `30 s`, `2 min`. */
export function sweepDuration(ms: number): string {
  return ms > 0 && ms % 60_000 === 0
    ? `${formatNumber(ms / 60_000)} min`
    : `${formatNumber(Math.round(ms / 100) / 10)} s`;
}

/** The legend of the cardiograms above or below it. */
export function TraceLegend({ windowMs, class: cls }: TraceLegendProps) {
  return (
    <div
      class={`legend ${cls ?? ""}`}
      data-legend
      data-sweep-ms={windowMs}
    >
      <span>
        {t("legend.sweep", {
          sweep: sweepDuration(windowMs),
          grid: sweepDuration(gridStepMs(windowMs)),
        })}
      </span>{" "}
      <span>{t("legend.right")}</span>{" "}
      <span class="legend-colours">
        {t("legend.colours")} <i class="swatch swatch-ok" /> {t("legend.ok")}
        {" "}
        <i class="swatch swatch-late" /> {t("legend.late")}{" "}
        <i class="swatch swatch-expired" /> {t("legend.expired")}{" "}
        <i class="swatch swatch-unknown" /> {t("legend.unknown")}
      </span>
    </div>
  );
}

/**
 * A time ruler under a cardiogram: the sweep's offsets at each grid line
 * that falls on a whole `labelEveryMs`, positioned as the grid is.
 */
export function TimeRuler(
  { windowMs, labelEveryMs }: { windowMs: number; labelEveryMs: number },
) {
  const marks: number[] = [];
  for (let at = 0; at <= windowMs + 1; at += labelEveryMs) marks.push(at);
  return (
    <div class="ruler" aria-hidden="true" data-ruler>
      {marks.map((at) => (
        <span
          key={at}
          style={`left:${(at / windowMs) * 100}%`}
          class={at === 0 ? "first" : at >= windowMs ? "last" : ""}
        >
          {sweepDuration(at)}
        </span>
      ))}
    </div>
  );
}
