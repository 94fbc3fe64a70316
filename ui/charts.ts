/**
 * Chart.js set-up shared by the UI: the tree-shaken registrations, the
 * monitor palette and the sweeping cardiogram chart.
 *
 * @module
 */

import {
  Chart,
  type ChartConfiguration,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  type Plugin,
  PointElement,
  Tooltip,
} from "chart.js";
import { timeOfDay } from "./format.ts";
import type { Tone, Trace } from "./trace.ts";

Chart.register(
  LineController,
  LineElement,
  PointElement,
  LinearScale,
  Legend,
  Tooltip,
);

export { Chart };

/** Colours of the monitor. */
export const COLORS = {
  ok: "#39ff7a",
  late: "#ffb020",
  expired: "#ff3b3b",
  unknown: "#7d8a86",
  grid: "rgba(57, 255, 122, 0.07)",
  gridStrong: "rgba(57, 255, 122, 0.14)",
  text: "#8fbfa0",
  cursor: "#d9ffe6",
} as const;

/** Line colour of each tone. */
export const TONE_COLORS: Readonly<Record<Tone, string>> = {
  ok: COLORS.ok,
  late: COLORS.late,
  expired: COLORS.expired,
  unknown: COLORS.unknown,
};

/** A phosphor glow under the datasets, like a CRT monitor. */
const glow: Plugin<"line"> = {
  id: "earthwormGlow",
  beforeDatasetsDraw(chart) {
    const ctx = chart.ctx;
    ctx.save();
    ctx.shadowBlur =
      (chart.options.plugins as { earthwormGlow?: { blur?: number } })
        .earthwormGlow?.blur ?? 0;
    ctx.shadowColor = "rgba(57, 255, 122, 0.55)";
  },
  afterDatasetsDraw(chart) {
    chart.ctx.restore();
  },
};

/** Options of a cardiogram chart. */
export interface CardiogramOptions {
  windowMs: number;
  lineWidth: number;
  glowBlur: number;
  /** Vertical grid divisions across the window. */
  divisions: number;
}

/** A sweeping cardiogram drawn by Chart.js on one canvas, updated in place. */
export class CardiogramChart {
  readonly #chart: Chart<"line", { x: number; y: number }[]>;
  readonly #line: { x: number; y: number }[] = [];
  readonly #cursor: { x: number; y: number }[] = [{ x: 0, y: 0 }];
  #tones: Tone[] = [];
  #cursorTone: Tone = "ok";

  /** Creates the chart on `canvas`; call {@linkcode destroy} when done. */
  constructor(canvas: HTMLCanvasElement, options: CardiogramOptions) {
    const tones = () => this.#tones;
    const step = options.windowMs / options.divisions;
    const config: ChartConfiguration<"line", { x: number; y: number }[]> = {
      type: "line",
      data: {
        datasets: [
          {
            data: this.#line,
            borderWidth: options.lineWidth,
            borderColor: COLORS.ok,
            borderJoinStyle: "round",
            pointRadius: 0,
            tension: 0,
            spanGaps: false,
            segment: {
              borderColor: (ctx) =>
                TONE_COLORS[tones()[ctx.p0DataIndex] ?? "ok"],
            },
          },
          {
            data: this.#cursor,
            showLine: false,
            pointRadius: options.lineWidth + 1.5,
            pointBorderWidth: 0,
            pointBackgroundColor: () =>
              this.#cursorTone === "ok"
                ? COLORS.cursor
                : TONE_COLORS[this.#cursorTone],
          },
        ],
      },
      options: {
        parsing: false,
        normalized: true,
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        events: [],
        layout: { padding: 0 },
        plugins: {
          legend: { display: false },
          tooltip: { enabled: false },
          ...{ earthwormGlow: { blur: options.glowBlur } },
        },
        scales: {
          x: {
            type: "linear",
            min: 0,
            max: options.windowMs,
            display: true,
            border: { display: false },
            ticks: { display: false, stepSize: step },
            grid: { color: COLORS.grid, drawTicks: false },
          },
          y: {
            type: "linear",
            min: -0.55,
            max: 1.2,
            display: true,
            border: { display: false },
            ticks: { display: false, stepSize: 0.35 },
            grid: { color: COLORS.grid, drawTicks: false },
          },
        },
      },
      plugins: [glow],
    };
    this.#chart = new Chart(canvas, config);
  }

  /** Width of the plotting area in CSS pixels. */
  get width(): number {
    return this.#chart.chartArea?.width ?? this.#chart.width;
  }

  /** Replaces the trace and redraws without animation. */
  draw(trace: Trace): void {
    this.#line.length = 0;
    for (let i = 0; i < trace.xs.length; i++) {
      this.#line.push({ x: trace.xs[i]!, y: trace.ys[i]! });
    }
    this.#tones = trace.tones;
    const breakAt = trace.ys.findIndex((y) => Number.isNaN(y));
    const end = breakAt < 0 ? trace.tones.length : breakAt;
    this.#cursorTone = trace.tones[end - 1] ?? "ok";
    this.#cursor[0] = { x: trace.cursorX, y: trace.cursorY };
    this.#chart.update("none");
  }

  /** Frees the chart and its canvas listeners. */
  destroy(): void {
    this.#chart.destroy();
  }
}

/**
 * Options of a line chart over wall time (x in epoch ms) with a titled,
 * zero-based y axis: the detail view's interval and wire charts.
 */
export function timeSeriesOptions(
  yTitle: string,
  formatY: (y: number | null) => string,
): ChartConfiguration<"line">["options"] {
  return {
    parsing: false,
    animation: false,
    responsive: true,
    maintainAspectRatio: false,
    interaction: { mode: "nearest", intersect: false, axis: "x" },
    plugins: {
      legend: {
        labels: { color: COLORS.text, boxWidth: 12, boxHeight: 2 },
      },
      tooltip: {
        callbacks: {
          title: (items) => items[0] ? timeOfDay(items[0].parsed.x ?? 0) : "",
          label: (item) => `${item.dataset.label}: ${formatY(item.parsed.y)}`,
        },
      },
    },
    scales: {
      x: {
        type: "linear",
        ticks: {
          color: COLORS.text,
          maxTicksLimit: 8,
          callback: (v) => timeOfDay(Number(v)),
        },
        grid: { color: COLORS.grid },
      },
      y: {
        type: "linear",
        min: 0,
        title: { display: true, text: yTitle, color: COLORS.text },
        ticks: { color: COLORS.text },
        grid: { color: COLORS.grid },
      },
    },
  };
}
