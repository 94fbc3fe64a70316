/**
 * Charts of the UI: the Chart.js set-up of the detail view's charts (the
 * tree-shaken registrations), the monitor palette, and the sweeping
 * cardiogram, drawn on a plain canvas.
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

/** Options of a cardiogram chart. */
export interface CardiogramOptions {
  windowMs: number;
  lineWidth: number;
  /** Width of the phosphor glow around the line in CSS pixels (0: none). */
  glowBlur: number;
  /** Vertical grid divisions across the window. */
  divisions: number;
  /**
   * Called when the canvas got a new size, to draw a trace computed for it;
   * without it the last trace is drawn again.
   */
  onResize?: () => void;
}

/** Vertical range of a cardiogram: the complex's trough to above its peak. */
const Y_MIN = -0.55;
const Y_MAX = 1.2;
/** Horizontal grid lines: every this much from Y_MIN. */
const Y_STEP = 0.35;

/**
 * A sweeping cardiogram drawn straight onto one canvas with the 2D context:
 * a grid, the trace in segments coloured by tone (a NaN y breaks it) with a
 * cheap glow (the same path, wider and faint, underneath) and the cursor.
 * Hundreds of these redraw within a frame, where a Chart.js update each
 * did not. The canvas follows its box's size (and the device pixel ratio)
 * through a ResizeObserver, whose first report sizes it: nothing reads the
 * layout synchronously, so a screenful of new charts costs one layout, not
 * one each.
 */
export class CardiogramChart {
  readonly #canvas: HTMLCanvasElement;
  readonly #ctx: CanvasRenderingContext2D;
  readonly #options: CardiogramOptions;
  readonly #observer: ResizeObserver;
  #width = 0;
  #height = 0;
  #last: Trace | null = null;

  /** Draws on `canvas`; call {@linkcode destroy} when done. */
  constructor(canvas: HTMLCanvasElement, options: CardiogramOptions) {
    this.#canvas = canvas;
    this.#ctx = canvas.getContext("2d", { alpha: true })!;
    this.#options = options;
    this.#observer = new ResizeObserver((entries) => {
      const box = entries.at(-1)!.contentRect;
      if (!this.#resize(box.width, box.height)) return;
      if (this.#options.onResize) this.#options.onResize();
      else if (this.#last) this.draw(this.#last);
    });
    this.#observer.observe(canvas.parentElement ?? canvas);
  }

  /** Width of the plotting area in CSS pixels (0 until the first layout). */
  get width(): number {
    return this.#width;
  }

  /** Matches the canvas to its box's size; true when the size changed. */
  #resize(boxWidth: number, boxHeight: number): boolean {
    const width = Math.max(1, Math.round(boxWidth));
    const height = Math.max(1, Math.round(boxHeight));
    const ratio = globalThis.devicePixelRatio || 1;
    if (
      width === this.#width && height === this.#height &&
      this.#canvas.width === Math.round(width * ratio)
    ) return false;
    this.#width = width;
    this.#height = height;
    this.#canvas.width = Math.round(width * ratio);
    this.#canvas.height = Math.round(height * ratio);
    this.#canvas.style.width = `${width}px`;
    this.#canvas.style.height = `${height}px`;
    this.#ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    return true;
  }

  /**
   * Replaces the trace and redraws; false when the canvas has no size yet
   * (it is drawn once the layout gives it one).
   */
  draw(trace: Trace): boolean {
    this.#last = trace;
    if (this.#width === 0) return false;
    const ctx = this.#ctx;
    const w = this.#width;
    const h = this.#height;
    const { windowMs, lineWidth, glowBlur, divisions } = this.#options;
    const px = (x: number) => x / windowMs * w;
    const py = (y: number) => h - (y - Y_MIN) / (Y_MAX - Y_MIN) * h;
    ctx.clearRect(0, 0, w, h);
    // The grid.
    ctx.lineWidth = 1;
    ctx.strokeStyle = COLORS.grid;
    ctx.beginPath();
    for (let i = 0; i <= divisions; i++) {
      const x = Math.round(px(i * windowMs / divisions)) + 0.5;
      ctx.moveTo(x, 0);
      ctx.lineTo(x, h);
    }
    for (let y = Y_MIN; y <= Y_MAX + 1e-9; y += Y_STEP) {
      const yy = Math.round(py(y)) + 0.5;
      ctx.moveTo(0, yy);
      ctx.lineTo(w, yy);
    }
    ctx.stroke();
    // The trace: one path per run of points of the same tone.
    const { xs, ys, tones } = trace;
    ctx.lineJoin = "round";
    ctx.lineCap = "round";
    const passes = glowBlur > 0 ? 2 : 1;
    for (let pass = 0; pass < passes; pass++) {
      const glow = passes === 2 && pass === 0;
      ctx.lineWidth = glow ? lineWidth + glowBlur : lineWidth;
      ctx.globalAlpha = glow ? 0.18 : 1;
      let i = 0;
      while (i < xs.length - 1) {
        const tone = tones[i] ?? "ok";
        ctx.strokeStyle = TONE_COLORS[tone];
        ctx.beginPath();
        let open = false;
        for (; i < xs.length - 1 && (tones[i] ?? "ok") === tone; i++) {
          const y0 = ys[i]!;
          const y1 = ys[i + 1]!;
          if (Number.isNaN(y0) || Number.isNaN(y1)) {
            open = false;
            continue;
          }
          if (!open) {
            ctx.moveTo(px(xs[i]!), py(y0));
            open = true;
          }
          ctx.lineTo(px(xs[i + 1]!), py(y1));
        }
        ctx.stroke();
      }
    }
    ctx.globalAlpha = 1;
    // The cursor, in the tone of the trace where it ends.
    const breakAt = ys.findIndex((y) => Number.isNaN(y));
    const end = breakAt < 0 ? tones.length : breakAt;
    const tone = tones[end - 1] ?? "ok";
    ctx.fillStyle = tone === "ok" ? COLORS.cursor : TONE_COLORS[tone];
    ctx.beginPath();
    ctx.arc(
      px(trace.cursorX),
      py(trace.cursorY),
      lineWidth + 1.5,
      0,
      2 * Math.PI,
    );
    ctx.fill();
    return true;
  }

  /** Stops following the canvas's size. */
  destroy(): void {
    this.#observer.disconnect();
    this.#last = null;
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
