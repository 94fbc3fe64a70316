/**
 * A heart's beat history as a Chart.js line of intervals over time, with the
 * expected interval, the late threshold and the lease duration as guides. A
 * silence is a gap in the line followed by the late beat's point, not a ramp.
 *
 * @module
 */

import { useEffect, useRef, useState } from "preact/hooks";
import type { Beat, Episode, Heart } from "../core/api_types.ts";
import { Chart, COLORS, timeSeriesOptions } from "./charts.ts";
import { useLang } from "./hooks.ts";
import { t } from "./i18n.ts";
import { intervalPoints } from "./stats.ts";

/** Props of {@linkcode IntervalChart}. */
export interface IntervalChartProps {
  heart: Heart;
  /** The heart's beats, oldest first; the array grows in place. */
  beats: readonly Beat[];
  /** Changes whenever `beats` or `heart` changed. */
  version: number;
  /** Server time now (epoch ms), to show the gap since the last beat; null if unknown. */
  now: number | null;
  /** The heart's episodes (late or expired, with their cause), drawn as shaded spans. */
  episodes?: readonly Episode[];
}

type Point = { x: number; y: number | null };

/** Intervals between beats over the retained history. */
export function IntervalChart(
  { heart, beats, version, now, episodes = [] }: IntervalChartProps,
) {
  const canvasRef = useRef<HTMLCanvasElement>(null);
  const chartRef = useRef<Chart<"line", Point[]> | null>(null);
  const heartRef = useRef(heart);
  heartRef.current = heart;
  const episodesRef = useRef(episodes);
  episodesRef.current = episodes;
  const nowRef = useRef(now);
  nowRef.current = now;
  const lang = useLang();
  const boxRef = useRef<HTMLDivElement>(null);
  const [gapNote, setGapNote] = useState(0);

  useEffect(() => {
    const canvas = canvasRef.current;
    if (canvas === null) return;
    const guide = (color: string, label: string) => ({
      label,
      data: [] as Point[],
      borderColor: color,
      borderWidth: 1,
      borderDash: [4, 4],
      pointRadius: 0,
    });
    const chart = new Chart<"line", Point[]>(canvas, {
      type: "line",
      data: {
        datasets: [
          {
            label: t("history.interval"),
            data: [],
            borderColor: COLORS.ok,
            backgroundColor: COLORS.ok,
            borderWidth: 1.5,
            pointRadius: 2,
            pointHoverRadius: 4,
            tension: 0,
            segment: {
              borderColor: (ctx) =>
                toneOf(ctx.p1.parsed.y ?? undefined, heartRef.current) ??
                  COLORS.ok,
            },
            pointBackgroundColor: (ctx) => {
              const y = (ctx.raw as Point | undefined)?.y;
              return y === undefined || y === null
                ? COLORS.ok
                : toneOf(y, heartRef.current) ?? COLORS.ok;
            },
          },
          {
            label: t("history.sinceLast"),
            data: [],
            borderColor: COLORS.text,
            borderWidth: 1,
            borderDash: [2, 3],
            pointRadius: [0, 4],
            pointStyle: "rectRot",
            pointBackgroundColor: (ctx) => {
              const y = (ctx.raw as Point | undefined)?.y;
              return y === undefined || y === null
                ? COLORS.ok
                : toneOf(y, heartRef.current) ?? COLORS.ok;
            },
          },
          guide(COLORS.ok, t("history.expected")),
          guide(COLORS.late, t("history.lateAfter")),
          guide(COLORS.expired, t("history.leaseDuration")),
        ],
      },
      options: timeSeriesOptions(
        t("history.axis"),
        (y) => `${(y ?? 0).toFixed(2)} s`,
      ),
      plugins: [{
        id: "episodes",
        // Each episode as a shaded span with its cause, under the line.
        beforeDatasetsDraw(c) {
          const { ctx, chartArea: area, scales } = c;
          const x = scales["x"];
          if (!x) return;
          ctx.save();
          ctx.font = "10px sans-serif";
          for (const e of episodesRef.current) {
            const from = x.getPixelForValue(Date.parse(e.start));
            const to = x.getPixelForValue(
              e.end === null ? nowRef.current ?? Date.now() : Date.parse(e.end),
            );
            const left = Math.max(area.left, from);
            const right = Math.min(area.right, to);
            if (right <= left) continue;
            ctx.fillStyle = e.worst === "expired"
              ? "rgba(255, 82, 82, 0.14)"
              : "rgba(255, 193, 7, 0.14)";
            ctx.fillRect(left, area.top, right - left, area.bottom - area.top);
            ctx.fillStyle = COLORS.text;
            ctx.fillText(t(`cause.${e.cause}`), left + 3, area.top + 11);
          }
          ctx.restore();
        },
      }],
    });
    chartRef.current = chart;
    return () => {
      chart.destroy();
      chartRef.current = null;
    };
  }, [heart.id, lang]);

  useEffect(() => {
    const chart = chartRef.current;
    if (chart === null) return;
    const [line, pending, expected, late, duration] = chart.data.datasets;
    if (!line || !pending || !expected || !late || !duration) return;
    // Rebuilt in place: a few thousand points once a second.
    const { points, gaps } = intervalPoints(
      beats,
      heart.expectedIntervalSeconds,
    );
    const data = line.data;
    data.length = 0;
    for (const p of points) data.push(p);
    if (boxRef.current) boxRef.current.dataset.gaps = String(gaps);
    // The gap since the last beat, growing until the next one arrives.
    const lastBeat = beats[beats.length - 1];
    pending.data = [];
    if (lastBeat !== undefined && now !== null) {
      const at = Date.parse(lastBeat.observedAt);
      if (now > at) {
        pending.data = [{ x: at, y: 0 }, { x: now, y: (now - at) / 1000 }];
      }
    }
    const xs = [...data.map((p) => p.x), ...pending.data.map((p) => p.x)];
    setGapNote(gaps);
    let xMin = Math.min(...xs);
    let xMax = Math.max(...xs);
    if (xs.length === 0) xMin = xMax = now ?? Date.now();
    if (xMax - xMin < 60_000) xMin = xMax - 60_000;
    const span = (y: number | null): { x: number; y: number }[] =>
      y === null ? [] : [{ x: xMin, y }, { x: xMax, y }];
    const exp = heart.expectedIntervalSeconds;
    expected.data = span(exp);
    late.data = span(exp === null ? null : 2 * exp);
    duration.data = span(heart.leaseDurationSeconds);
    const x = chart.options.scales?.["x"];
    if (x) {
      x.min = xMin;
      x.max = xMax;
    }
    chart.update("none");
  }, [version, heart.id, lang, now !== null && Math.floor(now / 1000)]);

  return (
    <>
      <div class="chart-box interval-chart" ref={boxRef} data-gaps="0">
        <canvas
          ref={canvasRef}
          role="img"
          aria-label={t("history.label", { id: heart.id })}
        />
      </div>
      {gapNote > 0 && (
        <p class="note">{t("history.gaps", { count: gapNote })}</p>
      )}
    </>
  );
}

function toneOf(
  intervalSeconds: number | undefined,
  heart: Heart,
): string | undefined {
  if (intervalSeconds === undefined) return undefined;
  if (
    heart.leaseDurationSeconds !== null &&
    intervalSeconds > heart.leaseDurationSeconds
  ) {
    return COLORS.expired;
  }
  const exp = heart.expectedIntervalSeconds;
  if (exp !== null && intervalSeconds > 2 * exp) return COLORS.late;
  return COLORS.ok;
}
