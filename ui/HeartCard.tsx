/**
 * One heart in the overview: its name, status, a few numbers and a small
 * live cardiogram. Clicking it opens the heart's detail view.
 *
 * @module
 */

import type { Heart } from "../core/api_types.ts";
import { Cardiogram } from "./Cardiogram.tsx";
import { formatMs, formatSeconds } from "./format.ts";
import { useTick } from "./hooks.ts";
import { t } from "./i18n.ts";
import { phraseText } from "./phrases.ts";
import { formatRoute } from "./route.ts";
import type { HeartStore } from "./state.ts";

/** Sweep of the overview's cardiograms, in server milliseconds. */
export const CARD_WINDOW_MS = 2 * 60_000;

/** Props of {@linkcode HeartCard}. */
export interface HeartCardProps {
  store: HeartStore;
  /** The heart as shown (its status `unknown` while the stream is lost). */
  heart: Heart;
  /** Why its status is not the server's current one, or null. */
  stale?: string | null;
}

/** How long a late or expired heart has been silent, ticking every second. */
export function SilentFor(
  { store, heart }: { store: HeartStore; heart: Heart },
) {
  useTick(1000);
  const now = store.clock.now();
  if (heart.lastObservedAt === null || now === null) return null;
  const seconds = Math.max(0, (now - Date.parse(heart.lastObservedAt)) / 1000);
  return (
    <b class="silent" data-silent-seconds={Math.floor(seconds)}>
      {t("card.silent", { duration: formatSeconds(seconds) })}
    </b>
  );
}

/** A card with one heart's live cardiogram. */
export function HeartCard({ store, heart, stale = null }: HeartCardProps) {
  const href = formatRoute({
    view: "heart",
    namespace: heart.namespace,
    name: heart.name,
    ...(heart.cluster !== undefined && { cluster: heart.cluster }),
  });
  const status = t(`status.${heart.status}`);
  const summary = heart.diagnosis
    ? phraseText(heart.diagnosis.summaryPhrase, heart.diagnosis.summary)
    : null;
  const wireDetail = heart.wire?.trouble
    ? t("card.wireDetail", {
      retransmits: heart.wire.retransmits,
      resets: heart.wire.resets,
      latency: formatMs(heart.wire.lastLatencyMs ?? 0),
    })
    : null;
  const silent = heart.status === "expired" || heart.status === "late";
  return (
    <a
      class={`card status-${heart.status}`}
      href={href}
      data-heart-id={heart.id}
      data-status={heart.status}
      data-beats={heart.beats}
      data-wire-trouble={heart.wire?.trouble ? "true" : undefined}
      data-cause={heart.diagnosis?.cause}
      data-stale={stale === null ? undefined : "true"}
      title={[
        `${heart.id} — ${status}`,
        stale === null ? "" : ` ${t("card.stale", { reason: stale })}`,
        wireDetail === null ? "" : ` — ${wireDetail}`,
        summary === null ? "" : ` — ${summary}`,
      ].join("")}
    >
      <div class="card-head">
        <span class="card-name">{heart.name}</span>
        {wireDetail !== null && (
          <span class="pill pill-wire" title={wireDetail}>
            {t("card.wire")}
          </span>
        )}
        <span class={`pill pill-${heart.status}`}>{status}</span>
      </div>
      <div class="card-sub">
        {heart.cluster !== undefined && (
          <span class="cluster" title={t("cluster.title")}>
            {heart.cluster}
          </span>
        )}
        <span class="kind">{t(`kind.${heart.kind}`)}</span>
        <span class="ns">{heart.namespace}</span>
        {heart.kind === "lease" && heart.holder !== null && (
          <span class="holder">
            ⚑ {t("card.holder", { holder: heart.holder })}
          </span>
        )}
      </div>
      {heart.diagnosis && (
        <div class={`card-cause cause-${heart.diagnosis.cause}`}>
          <span class="cause-label">
            {t(`cause.${heart.diagnosis.cause}`)}
          </span>{" "}
          {summary}
        </div>
      )}
      <Cardiogram
        store={store}
        heartId={heart.id}
        windowMs={CARD_WINDOW_MS}
        fps={8}
        spikePx={2.4}
        lineWidth={1.4}
        glowBlur={4}
        class="card-trace"
      />
      <div class="card-foot">
        {silent ? <SilentFor store={store} heart={heart} /> : (
          <span>
            {t("card.lastInterval", {
              interval: formatSeconds(heart.lastIntervalSeconds),
            })}
          </span>
        )}
        <span>
          {t("card.expected", {
            interval: formatSeconds(heart.expectedIntervalSeconds),
          })}
        </span>
        <span>{t("card.beats", { count: heart.beats })}</span>
      </div>
    </a>
  );
}
