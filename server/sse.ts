/**
 * `GET /api/v1/stream`: Server-Sent Events from the hub's event log
 * (protocol 2: a compact `snapshot`, then `batch` messages of about 100 ms
 * of events each, see `stream_batcher.ts`). A new client gets a `snapshot`
 * (shared with the other clients starting at the same event, see
 * `snapshot_cache.ts`); a client that reconnects with
 * `Last-Event-ID` gets the events it missed when they are still held and
 * fit its queue, else a fresh snapshot. An idle stream gets a `ping` (no id)
 * every few seconds: browsers hide SSE comments, and the UI must tell a quiet
 * stream from a lost one.
 *
 * The body is pull-driven: the events a client has not been sent stay in
 * the log's shared ring (the client holds only its place there, bounded in
 * events and bytes) and are handed to the socket at most
 * {@linkcode CHUNK_BYTES} at a time as it drains, as the log's own shared
 * messages and the cached snapshot's chunks (never copied per client). So a
 * client holds nothing of its own but its place and what is being written.
 * A client that falls too far behind skips what it missed and gets a fresh
 * snapshot on the same connection when it next reads; one that falls as far
 * behind again before it read that snapshot is stalled, and is disconnected
 * at once (the stream errors, and the HTTP server resets the connection
 * without waiting for the client to read).
 *
 * @module
 */

import type { HeartHub } from "./heart_hub.ts";
import { type PingEvent, STREAM_PING_MS } from "../core/api_types.ts";
import { snapshotCache } from "./snapshot_cache.ts";

/** Stream settings. */
export interface StreamOptions {
  /** Interval of `ping` events when idle. Default {@linkcode STREAM_PING_MS}. */
  keepAliveMs: number;
  /** Reconnection delay suggested to clients (`retry:`). Default 2 s. */
  retryMs: number;
}

/** Default stream settings. */
export const DEFAULT_STREAM_OPTIONS: StreamOptions = {
  keepAliveMs: STREAM_PING_MS,
  retryMs: 2_000,
};

/** Most bytes of queued messages copied into one chunk for the socket. */
export const CHUNK_BYTES = 16 * 1024;

/** Headers of the stream's response. */
export const STREAM_HEADERS: Readonly<Record<string, string>> = {
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-cache, no-transform",
  "x-accel-buffering": "no",
};

const encoder = new TextEncoder();

/** A `ping` event: no id, so a client's `Last-Event-ID` stays its last real event's. */
function ping(serverMs: number): Uint8Array {
  const data: PingEvent = { serverTime: new Date(serverMs).toISOString() };
  return encoder.encode(`event: ping\ndata: ${JSON.stringify(data)}\n\n`);
}

/**
 * Parses a `Last-Event-ID` value; null when absent or not a non-negative
 * integer (a malformed id is treated as a new client, as browsers may send
 * ids of another server).
 */
export function parseLastEventId(
  value: string | null | undefined,
): number | null {
  if (!value || !/^\d{1,16}$/.test(value.trim())) return null;
  return Number(value.trim());
}

/** The answer to `HEAD /api/v1/stream`: the headers, and no subscription. */
export function streamHeadResponse(): Response {
  return new Response(null, { headers: STREAM_HEADERS });
}

/** Builds the streaming response for one client. */
export function streamResponse(
  hub: HeartHub,
  lastEventId: number | null,
  options: StreamOptions = DEFAULT_STREAM_OPTIONS,
): Response {
  // Events still gathering in a batch go out first, so the backlog or the
  // snapshot below accounts for every event so far.
  hub.batcher.flush();
  const sub = hub.events.subscribe({ resync: true });
  // Subscribing and reading the backlog or snapshot in the same turn means
  // nothing can fall between them.
  const head: Uint8Array[] = [encoder.encode(`retry: ${options.retryMs}\n\n`)];
  const missed = lastEventId === null ? null : hub.events.since(lastEventId);
  if (missed === null || !sub.preload(missed)) {
    const start = snapshotCache(hub).start(
      hub.clock.now(),
      (backlog) => sub.fits(backlog),
    );
    head.push(...start.chunks);
    sub.preload(start.backlog);
  }
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      sub.signal.addEventListener("abort", () => {
        if (sub.reason === "overflow") {
          head.length = 0;
          try {
            controller.error(
              new Error(
                "stream client fell too far behind and was disconnected",
              ),
            );
          } catch {
            // already closed
          }
        }
      }, { once: true });
    },
    async pull(controller) {
      const first = head.shift();
      if (first) {
        controller.enqueue(first);
        return;
      }
      const batch = await sub.take(options.keepAliveMs, CHUNK_BYTES);
      if (sub.closed) {
        try {
          controller.close();
        } catch {
          // errored on overflow already
        }
        return;
      }
      if (sub.lagged) {
        // It fell too far behind: what it missed was skipped; a fresh
        // snapshot on the same connection catches it up (no reconnection,
        // and no reload of the page).
        hub.batcher.flush();
        sub.resume();
        const start = snapshotCache(hub).start(
          hub.clock.now(),
          (backlog) => sub.fits(backlog),
        );
        sub.preload(start.backlog);
        for (const chunk of start.chunks) controller.enqueue(chunk);
        return;
      }
      if (batch.length === 0) controller.enqueue(ping(hub.clock.now()));
      // Shared by every client: a copy per client was hundreds of MB a
      // second of short-lived buffers at a thousand clients.
      for (const e of batch) controller.enqueue(e.frame);
    },
    cancel() {
      head.length = 0;
      sub.close();
    },
  }, { highWaterMark: 0 });
  return new Response(body, { headers: STREAM_HEADERS });
}
