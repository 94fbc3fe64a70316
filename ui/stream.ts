/**
 * Keeps the store live from `GET /api/v1/stream`. The browser's EventSource
 * reconnects by itself and resumes with `Last-Event-ID`; when it gives up
 * (the server answered with an error, e.g. while a proxy restarts) a new one
 * is opened with backoff, and the server then starts with a fresh snapshot.
 *
 * @module
 */

import type { StreamEventName, StreamEvents } from "../core/api_types.ts";
import type { HeartStore } from "./state.ts";

/** How long the stream may be down before the UI says "offline" instead of "reconnecting". */
const OFFLINE_AFTER_MS = 8_000;
const MAX_BACKOFF_MS = 10_000;

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

  const handlers: { [K in StreamEventName]: (data: StreamEvents[K]) => void } =
    {
      snapshot: (d) => store.applySnapshot(d),
      beat: (d) => store.applyBeat(d),
      status: (d) => store.applyStatus(d),
      source: (d) => store.applySource(d),
      wire: (d) => store.applyWire(d),
      diagnosis: (d) => store.applyDiagnosis(d),
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
    es.onopen = () => {
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
        retryTimer = setTimeout(open, backoff);
        backoff = Math.min(MAX_BACKOFF_MS, backoff * 2);
      }
    };
    for (const name of Object.keys(handlers) as StreamEventName[]) {
      es.addEventListener(name, (event: MessageEvent<string>) => {
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

  signal.addEventListener("abort", () => {
    clearTimeout(retryTimer);
    clearTimeout(offlineTimer);
    source?.close();
  }, { once: true });
  open();
}
