/**
 * The wire trace of a node heart: Chart.js lines of each exchange's latency
 * and the connection's smoothed RTT, from `wire` events. When there is no
 * wire data, a note says why (from the source's `wire.reason`).
 *
 * @module
 */

import { useEffect, useRef } from "preact/hooks";
import type { Heart, SourceState, WireExchange } from "../core/api_types.ts";
import { Chart, COLORS, timeSeriesOptions } from "./charts.ts";
import { formatMs } from "./format.ts";
import { useLang } from "./hooks.ts";
import { t } from "./i18n.ts";
import { phraseText } from "./phrases.ts";

/** Props of {@linkcode WireChart}. */
export interface WireChartProps {
  heart: Heart;
  exchanges: readonly WireExchange[];
  source: SourceState | null;
  version: number;
}

type Point = { x: number; y: number };

/** Why a heart shows no wire trace. */
export function noWireReason(heart: Heart, source: SourceState | null): string {
  if (heart.kind !== "node") return t("wire.nodeOnly");
  if (source?.wire?.available === false) {
    const reason = source.wire.reason === undefined
      ? t("wire.notRunning")
      : phraseText(source.wire.reasonPhrase, source.wire.reason);
    return t("wire.none", { reason });
  }
  return t("wire.noneYet");
}

/** Latency and RTT of the node's exchanges with the API server. */
export function WireChart(
  { heart, exchanges, source, version }: WireChartProps,
) {
  const canvasRef = useRef<HTMLCanvasElement>(null);
  const chartRef = useRef<Chart<"line", Point[]> | null>(null);
  const hasData = exchanges.length > 0;
  const lang = useLang();

  useEffect(() => {
    const canvas = canvasRef.current;
    if (!hasData || canvas === null) return;
    const chart = new Chart<"line", Point[]>(canvas, {
      type: "line",
      data: {
        datasets: [
          {
            label: t("wire.exact"),
            data: [],
            borderColor: COLORS.ok,
            backgroundColor: COLORS.ok,
            borderWidth: 1.5,
            pointRadius: 1.5,
            tension: 0,
          },
          {
            label: t("wire.inferred"),
            data: [],
            borderColor: "#8a9a8f",
            backgroundColor: "#8a9a8f",
            borderWidth: 1,
            borderDash: [3, 3],
            pointRadius: 1.5,
            tension: 0,
          },
          {
            label: t("wire.rtt"),
            data: [],
            borderColor: "#4fc3ff",
            backgroundColor: "#4fc3ff",
            borderWidth: 1,
            pointRadius: 0,
            tension: 0,
          },
        ],
      },
      options: timeSeriesOptions(t("wire.axis"), formatMs),
    });
    chartRef.current = chart;
    return () => {
      chart.destroy();
      chartRef.current = null;
    };
  }, [heart.id, hasData, lang]);

  useEffect(() => {
    const chart = chartRef.current;
    if (chart === null) return;
    const [exact, inferred, rtt] = chart.data.datasets;
    if (!exact || !inferred || !rtt) return;
    exact.data.length = 0;
    inferred.data.length = 0;
    rtt.data.length = 0;
    for (const ex of exchanges) {
      const x = Date.parse(ex.at);
      (ex.confidence === "exact" ? exact : inferred).data.push({
        x,
        y: ex.latencyMs,
      });
      if (ex.srttUs > 0) rtt.data.push({ x, y: ex.srttUs / 1000 });
    }
    chart.update("none");
  }, [version, heart.id, hasData, lang]);

  if (!hasData) {
    return (
      <p class="note wire-note" data-wire="none">
        {noWireReason(heart, source)}
      </p>
    );
  }
  const last = exchanges[exchanges.length - 1]!;
  const exactCount = exchanges.filter((x) => x.confidence === "exact").length;
  return (
    <div data-wire="chart" data-exact={exactCount}>
      <div class="chart-box wire-chart">
        <canvas
          ref={canvasRef}
          role="img"
          aria-label={t("wire.label", { node: heart.name })}
        />
      </div>
      <p class="note">
        {t("wire.summary", {
          count: exchanges.length,
          exact: exactCount,
          latency: formatMs(last.latencyMs),
          conn: last.conn,
          rtt: formatMs(last.srttUs / 1000),
          retransmits: last.retransmits,
          resets: last.resets,
        })}
      </p>
      {source?.wire?.pairing && (
        <p class="note">
          {phraseText(source.wire.pairingPhrase, source.wire.pairing)}
        </p>
      )}
    </div>
  );
}
