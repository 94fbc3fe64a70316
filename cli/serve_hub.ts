/**
 * What `mock` and `watch` share: a hub with its status sweeper, the HTTP
 * app, the server, and shutdown on SIGINT, SIGTERM or SIGHUP.
 *
 * @module
 */

import { type AppOptions, createApp } from "../server/api.ts";
import type { Clock } from "../core/clock.ts";
import { HeartHub, type HeartHubOptions } from "../server/heart_hub.ts";
import { serveApp } from "../server/http_server.ts";
import { isLoopbackAddress } from "../server/http_guard.ts";
import { getLogger } from "../core/log.ts";
import { runWebhooks, type WebhookTarget } from "../server/webhooks.ts";
import { onShutdownSignal } from "./signals.ts";

const log = getLogger("earthworm");

/** Settings for {@linkcode serveHub}. */
export interface ServeHubOptions {
  clock: Clock;
  source: HeartHubOptions["source"];
  timeScale?: number;
  host: string;
  port: number;
  retentionMs?: number;
  /** One metric series per heart. */
  perHeartMetrics?: boolean;
  /** Alert receivers (none by default). */
  webhooks?: WebhookTarget[];
  /** Base URL of the UI for links in alerts (default the served URL). */
  externalUrl?: string;
  /** Fresh reads that confirm a silence before a heart is called expired. */
  confirm?: HeartHubOptions["confirm"];
  /** Called when such a read shows the view stale (wire it to the watch loop). */
  onStale?: HeartHubOptions["onStale"];
  /** The clusters, when several are watched (each with its own reads). */
  clusters?: HeartHubOptions["clusters"];
  app?: Omit<AppOptions, "hub">;
}

/** A hub served over HTTP. */
export interface ServedHub {
  hub: HeartHub;
  url: string;
  /** Aborted on a shutdown signal or when {@linkcode ServedHub.stop} is called. */
  signal: AbortSignal;
  stop(): void;
  /** Resolves when the server and sweeper have stopped. */
  finished: Promise<void>;
}

/** Creates the hub and starts serving it; stops on SIGINT, SIGTERM or SIGHUP. */
export async function serveHub(opts: ServeHubOptions): Promise<ServedHub> {
  const controller = new AbortController();
  const hub = new HeartHub({
    clock: opts.clock,
    source: opts.source,
    ...(opts.timeScale !== undefined && { timeScale: opts.timeScale }),
    ...(opts.retentionMs !== undefined &&
      { store: { retentionMs: opts.retentionMs } }),
    ...(opts.confirm && { confirm: opts.confirm }),
    ...(opts.onStale && { onStale: opts.onStale }),
    ...(opts.clusters && { clusters: opts.clusters }),
  });
  const app = createApp({
    loopbackOnly: isLoopbackAddress(opts.host),
    ...opts.app,
    hub,
    ...(opts.perHeartMetrics && { perHeartMetrics: true }),
  });
  const server = await serveApp(app, {
    host: opts.host,
    port: opts.port,
    signal: controller.signal,
  });
  const sweeper = hub.runSweeper(controller.signal);
  const webhooks = opts.webhooks?.length
    ? runWebhooks({
      targets: opts.webhooks,
      feed: hub.feed,
      clock: opts.clock,
      signal: controller.signal,
      externalUrl: opts.externalUrl ?? server.url,
    })
    : Promise.resolve();
  const removeSignals = onShutdownSignal((s) => {
    log.info("shutting down", { signal: s });
    controller.abort();
  });
  controller.signal.addEventListener("abort", () => {
    removeSignals();
    for (const confirmer of hub.confirmers) confirmer.reset();
    hub.events.closeAll();
  }, { once: true });
  log.info(`listening on ${server.url}/`, { source: opts.source.kind });
  return {
    hub,
    url: server.url,
    signal: controller.signal,
    stop: () => controller.abort(),
    finished: Promise.all([server.finished, sweeper, webhooks]).then(() => {}),
  };
}
