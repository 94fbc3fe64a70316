/**
 * A heart's live sweeping cardiogram, drawn on a plain canvas
 * (`CardiogramChart`): created in an effect on the canvas ref, redrawn in
 * place from the store by the one animation loop every card shares
 * (`ticker.ts`), and let go in the effect's cleanup.
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

  useEffect(() => {
    const canvas = canvasRef.current;
    const wrap = wrapRef.current;
    if (canvas === null || wrap === null) return;
    const chart = new CardiogramChart(canvas, {
      windowMs,
      lineWidth,
      glowBlur,
      divisions: Math.max(4, Math.round(windowMs / 10_000)),
    });
    let spikes = -1;
    let draws = 0;
    const draw = () => {
      const entry = store.hearts.get(heartId);
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
      chart.draw(trace);
      draws++;
      wrap.dataset.draws = String(draws);
      if (trace.spikes !== spikes) {
        spikes = trace.spikes;
        wrap.dataset.spikes = String(spikes);
      }
    };
    draw();
    const stop = onFrame(fps, draw);
    return () => {
      stop();
      chart.destroy();
    };
  }, [store, heartId, windowMs, fps, spikePx, lineWidth, glowBlur]);

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
