/**
 * One heart in the overview: its name, status, a few numbers and a small
 * live cardiogram. Clicking it opens the heart's detail view.
 *
 * @module
 */

import type { DiagnosisCause, Heart } from "../core/api_types.ts";
import { Cardiogram } from "./Cardiogram.tsx";
import { formatSeconds } from "./format.ts";
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

/** Labels of statuses as shown on cards. */
export const STATUS_LABELS: Readonly<Record<Heart["status"], string>> = {
  healthy: "healthy",
  late: "late",
  expired: "expired",
  unknown: "unknown",
};

/** Plain words for each cause of a late or expired heart. */
export const CAUSE_LABELS: Readonly<Record<DiagnosisCause, string>> = {
  kubelet: "kubelet",
  network: "network",
  apiserver: "API server",
  observer: "Earthworm's view",
  holder: "holder",
  handover: "handover",
  unknown: "cause unknown",
};

/** A card with one heart's live cardiogram. */
export function HeartCard({ store, heart, stale = null }: HeartCardProps) {
  const href = formatRoute({
    view: "heart",
    namespace: heart.namespace,
    name: heart.name,
  });
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
      title={`${heart.id} — ${heart.status}${
        stale === null ? "" : ` (${stale})`
      }${heart.wire?.trouble ? " — wire trouble" : ""}${
        heart.diagnosis ? ` — ${heart.diagnosis.summary}` : ""
      }`}
    >
      <div class="card-head">
        <span class="card-name">{heart.name}</span>
        {heart.wire?.trouble && (
          <span
            class="pill pill-wire"
            title={`Wire trouble: ${heart.wire.retransmits} retransmits, ${heart.wire.resets} resets, last exchange ${
              formatSeconds((heart.wire.lastLatencyMs ?? 0) / 1000)
            }`}
          >
            wire
          </span>
        )}
        <span class={`pill pill-${heart.status}`}>
          {STATUS_LABELS[heart.status]}
        </span>
      </div>
      <div class="card-sub">
        <span class="kind">{heart.kind}</span>
        <span class="ns">{heart.namespace}</span>
        {heart.kind === "lease" && heart.holder !== null && (
          <span class="holder" title="holder">⚑ {heart.holder}</span>
        )}
      </div>
      {heart.diagnosis && (
        <div class={`card-cause cause-${heart.diagnosis.cause}`}>
          <span class="cause-label">
            {CAUSE_LABELS[heart.diagnosis.cause]}
          </span>{" "}
          {heart.diagnosis.summary}
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
        <span title="last interval">
          <b>{formatSeconds(heart.lastIntervalSeconds)}</b> last
        </span>
        <span title="expected interval">
          exp {formatSeconds(heart.expectedIntervalSeconds)}
        </span>
        <span title="beats seen">{heart.beats} beats</span>
      </div>
    </a>
  );
}
