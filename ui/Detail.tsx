/**
 * One heart in detail: a large live cardiogram, interval statistics, the
 * beat history, holder transitions and the wire trace.
 *
 * @module
 */

import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { type Beat, heartId } from "../core/api_types.ts";
import { fetchBeats, fetchEpisodes, LoadError } from "./api.ts";
import { Cardiogram } from "./Cardiogram.tsx";
import { ago, formatMs, formatSeconds, timeOfDay } from "./format.ts";
import { IntervalChart } from "./IntervalChart.tsx";
import { t } from "./i18n.ts";
import { evidenceText, phraseText } from "./phrases.ts";
import type { HeartStore } from "./state.ts";
import { intervalStats, transitionsOf } from "./stats.ts";
import { TimeRuler, TraceLegend } from "./TraceLegend.tsx";
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
  /** Its cluster, when several are watched. */
  cluster?: string | undefined;
}

/** The detail view of one heart. */
export function Detail(
  { store, version, namespace, name, cluster }: DetailProps,
) {
  const id = heartId(namespace, name, cluster);
  const beatsRef = useRef<Beat[]>([]);
  const [beatsVersion, setBeatsVersion] = useState(0);
  // The failed request's HTTP status, or 0 when the server was unreachable.
  const [error, setError] = useState<number | null>(null);
  const titleRef = useRef<HTMLHeadingElement>(null);
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
    fetchEpisodes(namespace, name, cluster, abort.signal)
      .then((res) => store.mergeEpisodes(id, res.episodes))
      .catch(() => {}); // the beats request reports errors
    fetchBeats(namespace, name, { limit: MAX_BEATS, cluster }, abort.signal)
      .then((res) => {
        for (const beat of res.beats) append(beat);
        store.mergeHistory(id, res.beats.slice(-200));
      })
      .catch((err: unknown) => {
        if (!abort.signal.aborted) {
          setError(err instanceof LoadError ? err.status : 0);
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

  // Keyboard focus starts at the heart's name, not at the top of the page.
  const hasEntry = store.hearts.has(id);
  useEffect(() => {
    if (hasEntry) titleRef.current?.focus({ preventScroll: true });
  }, [id, hasEntry]);

  const entry = store.hearts.get(id);
  const beats = beatsRef.current;
  const stats = useMemo(() => intervalStats(beats), [beatsVersion, id]);
  const transitions = useMemo(() => transitionsOf(beats), [beatsVersion, id]);

  if (entry === undefined) {
    return (
      <section class="detail" data-detail={id}>
        <BackLink />
        <p class="note">
          {store.snapshots === 0
            ? t("detail.waiting")
            : t("detail.missing", { id })}
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
  const status = t(`status.${heart.status}`);
  const silent = heart.status === "late" || heart.status === "expired";

  return (
    <section
      class={`detail status-${heart.status}`}
      data-detail={id}
      data-status={heart.status}
    >
      <div class="detail-head">
        <BackLink />
        <h2 ref={titleRef} tabIndex={-1}>
          {heart.cluster !== undefined && (
            <span class="cluster" title={t("cluster.title")}>
              {heart.cluster}
            </span>
          )}
          <span class="ns">{heart.namespace} /</span> {heart.name}
        </h2>
        <span class={`pill pill-${heart.status}`}>{status}</span>
        <span class="kind">{t(`kind.${heart.kind}`)}</span>
        <span class="holder">
          {heart.holder === null
            ? t("detail.noHolder")
            : t("detail.holder", { holder: heart.holder })}
        </span>
      </div>
      <div
        class="monitor"
        data-heart-id={heart.id}
        data-status={heart.status}
        data-beats={heart.beats}
      >
        <div class="monitor-trace">
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
          <TimeRuler windowMs={DETAIL_WINDOW_MS} labelEveryMs={60_000} />
        </div>
        {heart.diagnosis && (
          <div
            class={`monitor-cause cause-${heart.diagnosis.cause}`}
            data-cause={heart.diagnosis.cause}
          >
            {t("detail.since", {
              status,
              time: timeOfDay(Date.parse(heart.diagnosis.since)),
              summary: phraseText(
                heart.diagnosis.summaryPhrase,
                heart.diagnosis.summary,
              ),
            })}
          </div>
        )}
        <div class="monitor-side">
          <div class="big-number">
            <span class="label">{t("detail.lastInterval")}</span>
            <span class="value">
              {formatSeconds(heart.lastIntervalSeconds)}
            </span>
          </div>
          <div class="big-number">
            <span class="label">
              {silent ? t("detail.silentFor") : t("detail.lastBeat")}
            </span>
            <span class="value small" data-last-beat>
              {silent && heart.lastObservedAt !== null && now !== null
                ? formatSeconds((now - Date.parse(heart.lastObservedAt)) / 1000)
                : ago(heart.lastObservedAt, now)}
            </span>
          </div>
          <div class="big-number">
            <span class="label">{t("detail.lag")}</span>
            <span class="value small">{formatSeconds(heart.skewSeconds)}</span>
          </div>
        </div>
      </div>
      <TraceLegend windowMs={DETAIL_WINDOW_MS} />

      <div class="stats" data-stats>
        <Stat label={t("stat.beats")} value={String(heart.beats)} />
        <Stat label={t("stat.intervals")} value={String(stats.intervals)} />
        <Stat label={t("stat.min")} value={formatSeconds(stats.min)} />
        <Stat label={t("stat.median")} value={formatSeconds(stats.median)} />
        <Stat label={t("stat.p95")} value={formatSeconds(stats.p95)} />
        <Stat label={t("stat.max")} value={formatSeconds(stats.max)} />
        <Stat
          label={t("stat.expected")}
          value={formatSeconds(heart.expectedIntervalSeconds)}
        />
        <Stat
          label={t("stat.leaseDuration")}
          value={formatSeconds(heart.leaseDurationSeconds)}
        />
        <Stat
          label={t("detail.lag")}
          value={formatSeconds(heart.skewSeconds)}
        />
        <Stat label={t("stat.transitions")} value={String(heart.transitions)} />
      </div>
      <p class="note lag-note">{t("detail.lagNote")}</p>
      {error !== null && (
        <p class="error">
          {t("detail.beatsFailed", {
            id,
            reason: error === 0
              ? t("detail.unreachable")
              : t("detail.httpStatus", { status: error }),
          })}
        </p>
      )}

      {heart.diagnosis && (
        <div class="panel why" data-why={heart.diagnosis.cause}>
          <h3>
            {t("why.title")}{" "}
            <span class={`cause-label cause-${heart.diagnosis.cause}`}>
              {t(`cause.${heart.diagnosis.cause}`)}
            </span>
          </h3>
          <p>
            {phraseText(
              heart.diagnosis.summaryPhrase,
              heart.diagnosis.summary,
            )}
          </p>
          <ul class="evidence">
            {heart.diagnosis.evidence.map((e) => (
              <li key={e.at + e.text}>
                <time>{timeOfDay(Date.parse(e.at))}</time> {evidenceText(e)}
              </li>
            ))}
          </ul>
        </div>
      )}

      <div class="detail-grid">
        <div class="panel">
          <h3>
            {t("history.title")}{" "}
            {loading && <span class="muted">{t("history.loading")}</span>}
          </h3>
          <IntervalChart
            heart={heart}
            beats={beats}
            version={beatsVersion + version}
            now={now}
            episodes={episodes}
          />
        </div>
        <div class="panel">
          <h3>{t("transitions.title")}</h3>
          {transitions.length === 0
            ? (
              <p class="note">
                {heart.holder
                  ? t("transitions.noneHeld", { holder: heart.holder })
                  : t("transitions.none")}
              </p>
            )
            : (
              <ol class="transitions">
                {transitions.slice(0, 20).map((tr) => (
                  <li key={tr.at}>
                    <time>{timeOfDay(Date.parse(tr.at))}</time>{" "}
                    {tr.from ?? t("transitions.unknownHolder")} →{" "}
                    <b>{tr.to ?? t("null.none")}</b>
                  </li>
                ))}
              </ol>
            )}
          <h3>{t("episodes.title")}</h3>
          {episodes.length === 0
            ? <p class="note">{t("episodes.none")}</p>
            : (
              <ol class="episodes" data-episodes={episodes.length}>
                {[...episodes].reverse().slice(0, 10).map((e) => (
                  <li key={e.start} data-cause={e.cause}>
                    <time>{timeOfDay(Date.parse(e.start))}</time>
                    {" – "}
                    {e.end === null
                      ? t("episodes.now")
                      : <time>{timeOfDay(Date.parse(e.end))}</time>}{" "}
                    <span class={`pill pill-${e.worst}`}>
                      {t(`status.${e.worst}`)}
                    </span>{" "}
                    <b class={`cause-label cause-${e.cause}`}>
                      {t(`cause.${e.cause}`)}
                    </b>: {phraseText(e.summaryPhrase, e.summary)}
                  </li>
                ))}
              </ol>
            )}
          <h3>{t("recent.title")}</h3>
          <table class="beats">
            <thead>
              <tr>
                <th>{t("recent.observed")}</th>
                <th>{t("recent.interval")}</th>
                <th>{t("detail.lag")}</th>
                <th>{t("recent.wire")}</th>
                <th>{t("recent.holder")}</th>
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
                      ? t("recent.exactTitle")
                      : b.wireConfidence === "inferred"
                      ? t("recent.inferredTitle")
                      : undefined}
                  >
                    {b.wireLatencyMs === undefined
                      ? "—"
                      : `${formatMs(b.wireLatencyMs)} ${
                        b.wireConfidence === "exact"
                          ? t("recent.exact")
                          : t("recent.inferred")
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
        <h3>{t("wire.title")}</h3>
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

/** The way back to the overview; Escape does the same. */
function BackLink() {
  return (
    <a class="back" href="#/">
      {t("detail.back")} <kbd>{t("detail.backHint")}</kbd>
    </a>
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
