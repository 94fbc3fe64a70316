/**
 * A heart's live sweeping cardiogram, drawn on a plain canvas
 * (`CardiogramChart`): created in an effect on the canvas ref, drawn once
 * the layout gives the canvas its size, redrawn in place from the store by
 * the one animation loop every card shares (`ticker.ts`), and let go in the
 * effect's cleanup. The heart it draws may change without a new chart.
 *
 * @module
 */

import { useEffect, useRef } from "preact/hooks";
import { CardiogramChart } from "./charts.ts";
import { t } from "./i18n.ts";
import type { HeartStore } from "./state.ts";
import { sweepTrace } from "./trace.ts";
import { onFrame } from "./ticker.ts";

/** Props of {@linkcode Cardiogram}. */
export interface CardiogramProps {
  store: HeartStore;
  heartId: string;
  /** Length of one sweep in server milliseconds. */
  windowMs: number;
  /** Redraws per second. */
  fps: number;
  /** Width of one spike unit in pixels (the QRS is about one unit wide). */
  spikePx: number;
  lineWidth: number;
  glowBlur: number;
  class?: string;
}

/** Draws one heart as a green trace on a sweeping time axis. */
export function Cardiogram(props: CardiogramProps) {
  const wrapRef = useRef<HTMLDivElement>(null);
  const canvasRef = useRef<HTMLCanvasElement>(null);
  const { store, heartId, windowMs, fps, spikePx, lineWidth, glowBlur } = props;
  // The overview recycles its cards while scrolling: the chart stays, and
  // the heart it draws is read at each draw.
  const heartRef = useRef(heartId);
  heartRef.current = heartId;
  const drawRef = useRef<(() => void) | null>(null);

  useEffect(() => {
    const canvas = canvasRef.current;
    const wrap = wrapRef.current;
    if (canvas === null || wrap === null) return;
    let spikes = -1;
    let draws = 0;
    let total = 0;
    let drawn: string | null = null;
    const draw = () => {
      const id = heartRef.current;
      const entry = store.hearts.get(id);
      const now = store.clock.now();
      if (entry === undefined || now === null) return;
      const h = entry.heart;
      const trace = sweepTrace({
        beats: entry.beats,
        now,
        windowMs,
        spikeMs: windowMs * spikePx / Math.max(50, chart.width),
        status: store.statusOf(h),
        expectedIntervalMs: h.expectedIntervalSeconds === null
          ? null
          : h.expectedIntervalSeconds * 1000,
        leaseDurationMs: h.leaseDurationSeconds === null
          ? null
          : h.leaseDurationSeconds * 1000,
        outages: store.outagesOf(h),
      });
      if (!chart.draw(trace)) return;
      // `data-draws` counts per heart (`data-drawn` names it),
      // `data-draws-total` per canvas.
      if (drawn !== id) {
        drawn = id;
        draws = 0;
        wrap.dataset.drawn = id;
      }
      draws++;
      total++;
      wrap.dataset.draws = String(draws);
      wrap.dataset.drawsTotal = String(total);
      if (trace.spikes !== spikes) {
        spikes = trace.spikes;
        wrap.dataset.spikes = String(spikes);
      }
    };
    const chart = new CardiogramChart(canvas, {
      windowMs,
      lineWidth,
      glowBlur,
      divisions: Math.max(4, Math.round(windowMs / 10_000)),
      onResize: draw,
    });
    drawRef.current = draw;
    const stop = onFrame(fps, draw);
    return () => {
      drawRef.current = null;
      stop();
      chart.destroy();
    };
  }, [store, windowMs, fps, spikePx, lineWidth, glowBlur]);

  // Another heart in the same card: drawn at once, not at the next tick.
  useEffect(() => drawRef.current?.(), [heartId]);

  return (
    <div
      ref={wrapRef}
      class={`cardiogram ${props.class ?? ""}`}
      data-spikes="0"
    >
      <canvas
        ref={canvasRef}
        role="img"
        aria-label={t("cardiogram.label", { id: heartId })}
      />
    </div>
  );
}
