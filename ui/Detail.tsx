/**
 * One heart in detail: a large live cardiogram, interval statistics, the
 * beat history, holder transitions and the wire trace.
 *
 * @module
 */

import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import type { Beat } from "../core/api_types.ts";
import { fetchBeats, fetchEpisodes } from "./api.ts";
import { Cardiogram } from "./Cardiogram.tsx";
import { ago, formatMs, formatSeconds, timeOfDay } from "./format.ts";
import { IntervalChart } from "./IntervalChart.tsx";
import { CAUSE_LABELS, STATUS_LABELS } from "./HeartCard.tsx";
import type { HeartStore } from "./state.ts";
import { intervalStats, transitionsOf } from "./stats.ts";
import { WireChart } from "./WireChart.tsx";

/** Sweep of the detail view's cardiogram, in server milliseconds. */
export const DETAIL_WINDOW_MS = 3 * 60_000;
/** Most beats the detail view loads and keeps. */
const MAX_BEATS = 5_000;

/** Props of {@linkcode Detail}. */
export interface DetailProps {
  store: HeartStore;
  version: number;
  namespace: string;
  name: string;
}

/** The detail view of one heart. */
export function Detail({ store, version, namespace, name }: DetailProps) {
  const id = `${namespace}/${name}`;
  const beatsRef = useRef<Beat[]>([]);
  const [beatsVersion, setBeatsVersion] = useState(0);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);

  useEffect(() => {
    const abort = new AbortController();
    const beats: Beat[] = [];
    beatsRef.current = beats;
    setLoading(true);
    setError(null);
    const bump = () => setBeatsVersion((v) => v + 1);
    const append = (beat: Beat) => {
      const last = beats[beats.length - 1];
      if (
        last !== undefined &&
        Date.parse(last.observedAt) >= Date.parse(beat.observedAt)
      ) return;
      beats.push(beat);
      if (beats.length > MAX_BEATS) beats.splice(0, beats.length - MAX_BEATS);
    };
    // Live beats that arrive while the history loads are kept and merged after it.
    const early: Beat[] = [];
    let loaded = false;
    const off = store.onBeat((event) => {
      if (event.heart.id !== id) return;
      if (!loaded) early.push(event.beat);
      else {
        append(event.beat);
        bump();
      }
    });
    fetchEpisodes(namespace, name, abort.signal)
      .then((res) => store.mergeEpisodes(id, res.episodes))
      .catch(() => {}); // the beats request reports errors
    fetchBeats(namespace, name, { limit: MAX_BEATS }, abort.signal)
      .then((res) => {
        for (const beat of res.beats) append(beat);
        store.mergeHistory(id, res.beats.slice(-200));
      })
      .catch((err: unknown) => {
        if (!abort.signal.aborted) {
          setError(err instanceof Error ? err.message : String(err));
        }
      })
      .finally(() => {
        if (abort.signal.aborted) return;
        loaded = true;
        for (const beat of early) append(beat);
        setLoading(false);
        bump();
      });
    return () => {
      abort.abort();
      off();
    };
  }, [store, id, store.snapshots]);

  const entry = store.hearts.get(id);
  const beats = beatsRef.current;
  const stats = useMemo(() => intervalStats(beats), [beatsVersion, id]);
  const transitions = useMemo(() => transitionsOf(beats), [beatsVersion, id]);

  if (entry === undefined) {
    return (
      <section class="detail" data-detail={id}>
        <a class="back" href="#/">← all hearts</a>
        <p class="note">
          {store.snapshots === 0
            ? "Waiting for the first snapshot…"
            : `No heart "${id}": it was deleted or never existed.`}
        </p>
      </section>
    );
  }
  // While the stream is lost the server's status is not current: unknown.
  const heart = store.shown(entry.heart);
  const now = store.clock.now();
  const recent = beats.slice(-12).reverse();
  const exchanges = store.wire.get(heart.name) ?? [];
  const episodes = store.episodes.get(id) ?? [];

  return (
    <section
      class={`detail status-${heart.status}`}
      data-detail={id}
      data-status={heart.status}
    >
      <div class="detail-head">
        <a class="back" href="#/">← all hearts</a>
        <h2>
          <span class="ns">{heart.namespace} /</span> {heart.name}
        </h2>
        <span class={`pill pill-${heart.status}`}>
          {STATUS_LABELS[heart.status]}
        </span>
        <span class="kind">
          {heart.kind === "node" ? "node lease" : "lease"}
        </span>
        <span class="holder">holder {heart.holder ?? "none"}</span>
      </div>
      <div
        class="monitor"
        data-heart-id={heart.id}
        data-status={heart.status}
        data-beats={heart.beats}
      >
        <Cardiogram
          store={store}
          heartId={heart.id}
          windowMs={DETAIL_WINDOW_MS}
          fps={24}
          spikePx={3.4}
          lineWidth={2.2}
          glowBlur={8}
          class="detail-trace"
        />
        {heart.diagnosis && (
          <div
            class={`monitor-cause cause-${heart.diagnosis.cause}`}
            data-cause={heart.diagnosis.cause}
          >
            {STATUS_LABELS[heart.status]} since{" "}
            {timeOfDay(Date.parse(heart.diagnosis.since))}:{" "}
            {heart.diagnosis.summary}
          </div>
        )}
        <div class="monitor-side">
          <div class="big-number">
            <span class="label">last interval</span>
            <span class="value">
              {formatSeconds(heart.lastIntervalSeconds)}
            </span>
          </div>
          <div class="big-number">
            <span class="label">last beat</span>
            <span class="value small">{ago(heart.lastObservedAt, now)}</span>
          </div>
          <div class="big-number">
            <span class="label">skew + delay</span>
            <span class="value small">{formatSeconds(heart.skewSeconds)}</span>
          </div>
        </div>
      </div>

      <div class="stats" data-stats>
        <Stat label="beats" value={String(heart.beats)} />
        <Stat label="intervals" value={String(stats.intervals)} />
        <Stat label="min" value={formatSeconds(stats.min)} />
        <Stat label="median" value={formatSeconds(stats.median)} />
        <Stat label="p95" value={formatSeconds(stats.p95)} />
        <Stat label="max" value={formatSeconds(stats.max)} />
        <Stat
          label="expected"
          value={formatSeconds(heart.expectedIntervalSeconds)}
        />
        <Stat
          label="lease duration"
          value={formatSeconds(heart.leaseDurationSeconds)}
        />
        <Stat label="last skew" value={formatSeconds(heart.skewSeconds)} />
        <Stat label="transitions" value={String(heart.transitions)} />
      </div>
      {error !== null && <p class="error">{error}</p>}

      {heart.diagnosis && (
        <div class="panel why" data-why={heart.diagnosis.cause}>
          <h3>
            Why:{" "}
            <span class={`cause-label cause-${heart.diagnosis.cause}`}>
              {CAUSE_LABELS[heart.diagnosis.cause]}
            </span>
          </h3>
          <p>{heart.diagnosis.summary}</p>
          <ul class="evidence">
            {heart.diagnosis.evidence.map((e) => (
              <li key={e.at + e.text}>
                <time>{timeOfDay(Date.parse(e.at))}</time> {e.text}
              </li>
            ))}
          </ul>
        </div>
      )}

      <div class="detail-grid">
        <div class="panel">
          <h3>Beat history {loading && <span class="muted">loading…</span>}</h3>
          <IntervalChart
            heart={heart}
            beats={beats}
            version={beatsVersion + version}
            now={now}
            episodes={episodes}
          />
        </div>
        <div class="panel">
          <h3>Transitions</h3>
          {transitions.length === 0
            ? (
              <p class="note">
                No holder change seen{heart.holder
                  ? `: ${heart.holder} holds it`
                  : ""}.
              </p>
            )
            : (
              <ol class="transitions">
                {transitions.slice(0, 20).map((t) => (
                  <li key={t.at}>
                    <time>{timeOfDay(Date.parse(t.at))}</time> {t.from ?? "?"} →
                    {" "}
                    <b>{t.to ?? "none"}</b>
                  </li>
                ))}
              </ol>
            )}
          <h3>Episodes</h3>
          {episodes.length === 0
            ? <p class="note">Never late or expired while Earthworm watched.</p>
            : (
              <ol class="episodes" data-episodes={episodes.length}>
                {[...episodes].reverse().slice(0, 10).map((e) => (
                  <li key={e.start} data-cause={e.cause}>
                    <time>{timeOfDay(Date.parse(e.start))}</time>
                    {" – "}
                    {e.end === null
                      ? "now"
                      : <time>{timeOfDay(Date.parse(e.end))}</time>}{" "}
                    <span class={`pill pill-${e.worst}`}>{e.worst}</span>{" "}
                    <b class={`cause-label cause-${e.cause}`}>
                      {CAUSE_LABELS[e.cause]}
                    </b>: {e.summary}
                  </li>
                ))}
              </ol>
            )}
          <h3>Recent beats</h3>
          <table class="beats">
            <thead>
              <tr>
                <th>observed</th>
                <th>interval</th>
                <th>skew</th>
                <th>wire</th>
                <th>holder</th>
              </tr>
            </thead>
            <tbody>
              {recent.map((b) => (
                <tr key={b.observedAt} class={b.transition ? "transition" : ""}>
                  <td>{timeOfDay(Date.parse(b.observedAt))}</td>
                  <td>{formatSeconds(b.intervalSeconds)}</td>
                  <td>
                    {formatSeconds(
                      (Date.parse(b.observedAt) - Date.parse(b.renewTime)) /
                        1000,
                    )}
                  </td>
                  <td
                    data-confidence={b.wireConfidence}
                    title={b.wireConfidence === "exact"
                      ? "This renewal's own request and response on the wire"
                      : b.wireConfidence === "inferred"
                      ? "Inferred from TCP timing: the kubelet's TLS layer could not be traced"
                      : undefined}
                  >
                    {b.wireLatencyMs === undefined
                      ? "—"
                      : `${formatMs(b.wireLatencyMs)} ${
                        b.wireConfidence === "exact" ? "exact" : "inferred"
                      }`}
                  </td>
                  <td>{b.holder ?? "—"}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </div>

      <div class="panel">
        <h3>Wire trace</h3>
        <WireChart
          heart={heart}
          exchanges={exchanges}
          source={store.source}
          version={version}
        />
      </div>
    </section>
  );
}

function Stat({ label, value }: { label: string; value: string }) {
  return (
    <div class="stat">
      <span class="label">{label}</span>
      <span class="value">{value}</span>
    </div>
  );
}
