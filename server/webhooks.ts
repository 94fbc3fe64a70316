/**
 * Alert webhooks: when a heart turns expired, recovers, or its diagnosis
 * changes, Earthworm posts a notification to each `--alert-webhook` URL, in
 * Alertmanager's webhook format (so receivers built for Alertmanager take
 * it as is), or as plain JSON events to each `--alert-webhook-json` URL.
 * Notifications come from the hub's feed of events, wait in a bounded queue
 * per URL (the oldest goes first when it is full), and are
 * retried with capped backoff: a slow or dead receiver never blocks the
 * pipeline and never grows memory.
 *
 * @module
 */

import type { DiagnosisEvent, Heart, StatusEvent } from "../core/api_types.ts";
import { type Clock, sleepUnlessAborted } from "../core/clock.ts";
import { getLogger } from "../core/log.ts";
import type { HubEvent, HubFeed } from "./hub_feed.ts";

const log = getLogger("webhook");

/** What happened to a heart. */
export interface Notification {
  kind: "expired" | "recovered" | "diagnosis";
  /** When, RFC 3339. */
  at: string;
  heart: Pick<
    Heart,
    "id" | "kind" | "namespace" | "name" | "holder" | "status" | "cluster"
  >;
  /** The diagnosis, when there is one (null when it ended). */
  diagnosis?: DiagnosisEvent["diagnosis"];
}

/** One receiver. */
export interface WebhookTarget {
  url: string;
  format: "alertmanager" | "json";
}

/** Settings of {@linkcode runWebhooks}. */
export interface WebhookOptions {
  targets: WebhookTarget[];
  /** The hub's events (`HeartHub.feed`). */
  feed: HubFeed;
  clock: Clock;
  signal: AbortSignal;
  /** Notifications waiting per receiver at most. Default 1,000. */
  queueLimit?: number;
  /** Retry delays: first, and the cap. Default 1 s up to 60 s. */
  retryMs?: { initial: number; max: number };
  /** Timeout of one POST. Default 5 s. */
  timeoutMs?: number;
  /** Base URL of the UI, for links. */
  externalUrl?: string;
}

/** Counters, for tests and /metrics. */
export interface WebhookStats {
  sent: number;
  failed: number;
  dropped: number;
}

/** The notifications a hub event makes (none for most). */
export function notificationsOf(e: HubEvent, at: string): Notification[] {
  if (e.event === "status") {
    const s: StatusEvent = e.data;
    if (s.to === "expired") {
      return [{ kind: "expired", at, heart: pick(s.heart) }];
    }
    if (s.to === "healthy" && (s.from === "expired" || s.from === "late")) {
      return [{ kind: "recovered", at, heart: pick(s.heart) }];
    }
    return [];
  }
  if (e.event === "diagnosis") {
    const d: DiagnosisEvent = e.data;
    if (d.id === "source" || d.diagnosis === null) return [];
    const [namespace = "", name = ""] = splitId(d.id);
    return [{
      kind: "diagnosis",
      at,
      heart: {
        id: d.id,
        ...(d.cluster !== undefined && { cluster: d.cluster }),
        kind: namespace === "kube-node-lease" ? "node" : "lease",
        namespace,
        name,
        holder: null,
        status: d.episode.worst,
      },
      diagnosis: d.diagnosis,
    }];
  }
  return [];
}

/** Namespace and name of a heart id (`[<cluster>/]<namespace>/<name>`). */
function splitId(id: string): [string, string] {
  const parts = id.split("/");
  return [parts.at(-2) ?? "", parts.at(-1) ?? ""];
}

function pick(h: Heart): Notification["heart"] {
  return {
    id: h.id,
    ...(h.cluster !== undefined && { cluster: h.cluster }),
    kind: h.kind,
    namespace: h.namespace,
    name: h.name,
    holder: h.holder,
    status: h.status,
  };
}

/** The body Alertmanager would post to a webhook receiver for `n`. */
export function alertmanagerBody(
  n: Notification,
  externalUrl: string,
): Record<string, unknown> {
  const resolved = n.kind === "recovered";
  const labels = {
    alertname: "EarthwormHeartbeatLost",
    heart: n.heart.id,
    ...(n.heart.cluster !== undefined && { cluster: n.heart.cluster }),
    namespace: n.heart.namespace,
    name: n.heart.name,
    kind: n.heart.kind,
    severity: n.heart.kind === "node" ? "critical" : "warning",
  };
  const annotations: Record<string, string> = {
    summary: resolved
      ? `${n.heart.id} beats again`
      : n.diagnosis
      ? `${n.heart.id} is ${n.heart.status}: ${n.diagnosis.summary}`
      : `${n.heart.id} expired: no renewal for longer than its lease`,
  };
  if (n.diagnosis) {
    annotations.cause = n.diagnosis.cause;
    annotations.description = n.diagnosis.evidence.map((e) => e.text).join(
      "; ",
    );
  }
  const alert = {
    status: resolved ? "resolved" : "firing",
    labels,
    annotations,
    startsAt: n.diagnosis?.since ?? n.at,
    endsAt: resolved ? n.at : "0001-01-01T00:00:00Z",
    generatorURL: `${externalUrl}/#/heart/${n.heart.id}`,
    fingerprint: fingerprint(n.heart.id),
  };
  return {
    version: "4",
    groupKey: `{}:{heart="${n.heart.id}"}`,
    truncatedAlerts: 0,
    status: alert.status,
    receiver: "earthworm",
    groupLabels: { heart: n.heart.id },
    commonLabels: labels,
    commonAnnotations: annotations,
    externalURL: externalUrl,
    alerts: [alert],
  };
}

function fingerprint(id: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) {
    h ^= id.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0).toString(16).padStart(16, "0");
}

/**
 * Follows the hub's feed and delivers notifications to every target until
 * `signal` aborts; returns its counters when it stops.
 */
export async function runWebhooks(opts: WebhookOptions): Promise<WebhookStats> {
  const stats: WebhookStats = { sent: 0, failed: 0, dropped: 0 };
  const limit = opts.queueLimit ?? 1000;
  const queues = opts.targets.map(() => [] as Notification[]);
  const wakes: (() => void)[] = opts.targets.map(() => () => {});
  const enqueue = (n: Notification) => {
    queues.forEach((q, i) => {
      q.push(n);
      if (q.length > limit) {
        q.shift();
        stats.dropped++;
      }
      wakes[i]!();
    });
  };
  const senders = opts.targets.map((t, i) =>
    deliver(t, queues[i]!, (w) => wakes[i] = w, opts, stats)
  );
  // Listening costs the hub a call per event; the queues bound the rest.
  const stop = opts.feed.listen((e) => {
    const ns = notificationsOf(e, new Date(opts.clock.now()).toISOString());
    for (const n of ns) enqueue(n);
  });
  if (!opts.signal.aborted) {
    await new Promise<void>((resolve) =>
      opts.signal.addEventListener("abort", () => resolve(), { once: true })
    );
  }
  stop();
  for (const w of wakes) w();
  await Promise.all(senders);
  return stats;
}

async function deliver(
  target: WebhookTarget,
  queue: Notification[],
  setWake: (wake: () => void) => void,
  opts: WebhookOptions,
  stats: WebhookStats,
): Promise<void> {
  const retry = opts.retryMs ?? { initial: 1000, max: 60_000 };
  let delay = retry.initial;
  let failing = false;
  while (!opts.signal.aborted) {
    const next = queue[0];
    if (!next) {
      await new Promise<void>((resolve) => setWake(resolve));
      continue;
    }
    const body = target.format === "alertmanager"
      ? alertmanagerBody(next, opts.externalUrl ?? "")
      : next;
    let ok = false;
    let permanent = false;
    try {
      const res = await fetch(target.url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
        signal: AbortSignal.any([
          opts.signal,
          AbortSignal.timeout(opts.timeoutMs ?? 5000),
        ]),
      });
      await res.body?.cancel();
      ok = res.ok;
      // A receiver that refuses the notification will refuse it again.
      permanent = res.status >= 400 && res.status < 500 && res.status !== 429;
      if (!ok && !failing) {
        log.warn("webhook refused a notification", {
          url: target.url,
          status: res.status,
        });
      }
    } catch (err) {
      if (opts.signal.aborted) return;
      if (!failing) {
        log.warn("cannot reach a webhook: retrying with backoff", {
          url: target.url,
          error: err instanceof Error ? err.message : String(err),
        });
      }
    }
    if (ok || permanent) {
      queue.shift();
      if (ok) stats.sent++;
      else stats.failed++;
      if (failing && ok) {
        log.info("webhook reachable again", { url: target.url });
      }
      failing = false;
      delay = retry.initial;
      continue;
    }
    failing = true;
    stats.failed++;
    if (!await sleepUnlessAborted(opts.clock, delay, opts.signal)) return;
    delay = Math.min(retry.max, delay * 2);
  }
}
