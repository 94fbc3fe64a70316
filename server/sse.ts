/**
 * `GET /api/v1/stream`: Server-Sent Events from the hub's event log. A new
 * client gets a `snapshot`; a client that reconnects with `Last-Event-ID`
 * gets the events it missed when they are still held, else a fresh snapshot.
 * An idle stream gets a `ping` (no id) every few seconds: browsers hide SSE
 * comments, and the UI must tell a quiet stream from a lost one.
 * The body is pull-driven, so nothing is buffered beyond the subscriber's
 * bounded queue; a client that lets that queue overflow is disconnected.
 *
 * @module
 */

import type { HeartHub } from "./heart_hub.ts";
import type { LoggedEvent } from "./event_log.ts";
import { type PingEvent, STREAM_PING_MS } from "../core/api_types.ts";

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

const encoder = new TextEncoder();

/** Formats one SSE message. */
export function formatEvent(id: number, event: string, data: string): string {
  return `id: ${id}\nevent: ${event}\ndata: ${data}\n\n`;
}

function formatLogged(e: LoggedEvent): string {
  return formatEvent(e.id, e.event, e.data);
}

/** A `ping` event: no id, so a client's `Last-Event-ID` stays its last real event's. */
function formatPing(serverMs: number): string {
  const ping: PingEvent = { serverTime: new Date(serverMs).toISOString() };
  return `event: ping\ndata: ${JSON.stringify(ping)}\n\n`;
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

/** Builds the streaming response for one client. */
export function streamResponse(
  hub: HeartHub,
  lastEventId: number | null,
  options: StreamOptions = DEFAULT_STREAM_OPTIONS,
): Response {
  const sub = hub.events.subscribe();
  // Subscribing and reading the backlog or snapshot in the same turn means
  // nothing can fall between them.
  const backlog = lastEventId === null ? null : hub.events.since(lastEventId);
  let first = `retry: ${options.retryMs}\n\n`;
  if (backlog === null) {
    first += formatEvent(
      hub.events.lastId,
      "snapshot",
      JSON.stringify(hub.snapshot()),
    );
  } else {
    first += backlog.map(formatLogged).join("");
  }
  let sentFirst = false;
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      sub.signal.addEventListener("abort", () => {
        if (sub.reason === "overflow") {
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
      });
    },
    async pull(controller) {
      if (!sentFirst) {
        sentFirst = true;
        controller.enqueue(encoder.encode(first));
        return;
      }
      const batch = await sub.take(options.keepAliveMs);
      if (sub.closed) {
        try {
          controller.close();
        } catch {
          // errored on overflow already
        }
        return;
      }
      controller.enqueue(
        encoder.encode(
          batch.length
            ? batch.map(formatLogged).join("")
            : formatPing(hub.clock.now()),
        ),
      );
    },
    cancel() {
      sub.close();
    },
  }, { highWaterMark: 0 });
  return new Response(body, {
    headers: {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache, no-transform",
      "x-accel-buffering": "no",
    },
  });
}
