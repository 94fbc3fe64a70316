/**
 * Keeps the store live from `GET /api/v1/stream`. The browser's EventSource
 * reconnects by itself and resumes with `Last-Event-ID`; when it gives up
 * (the server answered with an error, e.g. while a proxy restarts) a new one
 * is opened with backoff, and the server then starts with a fresh snapshot.
 *
 * A frozen server or a connection cut without a reset raises no error at
 * all, so a watchdog listens too: the server pings an idle stream every few
 * seconds, and a stream (or a reconnection) that stays silent for
 * {@linkcode STREAM_STALE_AFTER_MS} is closed and opened afresh. Meanwhile
 * the store shows every heart `unknown`.
 *
 * @module
 */

import type { StreamEventName, StreamEvents } from "../core/api_types.ts";
import { type HeartStore, STREAM_STALE_AFTER_MS } from "./state.ts";

/** How long the stream may be down before the UI says "offline" instead of "reconnecting". */
const OFFLINE_AFTER_MS = 8_000;
const MAX_BACKOFF_MS = 10_000;
/** How often the watchdog looks at the stream and the store's staleness. */
const WATCHDOG_MS = 1_000;

/** Options of {@linkcode connectStream}. */
export interface StreamOptions {
  url: string;
  store: HeartStore;
  signal: AbortSignal;
}

/** Connects the store to the event stream until `signal` aborts. */
export function connectStream({ url, store, signal }: StreamOptions): void {
  let source: EventSource | null = null;
  let downSince: number | null = null;
  let backoff = 1_000;
  let retryTimer: number | undefined;
  let offlineTimer: number | undefined;
  /** Local time the current EventSource was opened. */
  let openedAt = 0;

  const handlers: { [K in StreamEventName]: (data: StreamEvents[K]) => void } =
    {
      snapshot: (d) => store.applyStreamSnapshot(d),
      batch: (d) => store.applyBatch(d),
      ping: (d) => store.applyPing(d),
    };

  const down = () => {
    if (downSince === null) {
      downSince = Date.now();
      offlineTimer = setTimeout(
        () => store.setConnection("offline"),
        OFFLINE_AFTER_MS,
      );
    }
    if (store.connection !== "offline") store.setConnection("reconnecting");
  };

  const open = () => {
    if (signal.aborted) return;
    const es = new EventSource(url);
    source = es;
    openedAt = store.clock.local();
    es.onopen = () => {
      store.heard();
      downSince = null;
      backoff = 1_000;
      clearTimeout(offlineTimer);
      store.setConnection("live");
    };
    es.onerror = () => {
      down();
      if (es.readyState === EventSource.CLOSED) {
        // The browser gave up (an HTTP error or a wrong content type): retry ourselves.
        es.close();
        if (source === es) source = null;
        retryTimer = setTimeout(open, backoff);
        backoff = Math.min(MAX_BACKOFF_MS, backoff * 2);
      }
    };
    for (const name of Object.keys(handlers) as StreamEventName[]) {
      es.addEventListener(name, (event: MessageEvent<string>) => {
        store.heard();
        let data: unknown;
        try {
          data = JSON.parse(event.data);
        } catch {
          return;
        }
        (handlers[name] as (d: unknown) => void)(data);
      });
    }
  };

  const watchdog = setInterval(() => {
    const now = store.clock.local();
    store.tick(now);
    const quietSince = Math.max(store.heardAt ?? 0, openedAt);
    if (source !== null && now - quietSince >= STREAM_STALE_AFTER_MS) {
      // Open but silent (a frozen server, a dead connection), or a
      // reconnection that hangs as long: start over.
      source.close();
      source = null;
      down();
      open();
    }
  }, WATCHDOG_MS);

  signal.addEventListener("abort", () => {
    clearInterval(watchdog);
    clearTimeout(retryTimer);
    clearTimeout(offlineTimer);
    source?.close();
  }, { once: true });
  open();
}
