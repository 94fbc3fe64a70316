/**
 * A small SSE reader for tests: parses `text/event-stream` from a fetch
 * response into messages, and (with {@linkcode readFullSse}) expands the
 * compact stream into its events in full, as a client keeping the hearts
 * sees them.
 *
 * @module
 */

import type { StreamBatch, StreamSnapshot } from "../core/api_types.ts";
import { StreamMirror } from "../core/stream_codec.ts";

/** One parsed SSE message. */
export interface SseMessage {
  id?: string;
  event: string;
  data: string;
}

/** Reads SSE messages (and `:` comments as event "comment") from `res`. */
export async function* readSse(res: Response): AsyncGenerator<SseMessage> {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let end: number;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const msg: SseMessage = { event: "message", data: "" };
        const data: string[] = [];
        let comment = false;
        for (const line of block.split("\n")) {
          if (line.startsWith(":")) comment = true;
          else if (line.startsWith("id: ")) msg.id = line.slice(4);
          else if (line.startsWith("event: ")) msg.event = line.slice(7);
          else if (line.startsWith("data: ")) data.push(line.slice(6));
        }
        if (comment && data.length === 0) {
          yield { event: "comment", data: block };
        } else if (data.length) yield { ...msg, data: data.join("\n") };
      }
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
}

/**
 * Expands a stream's messages into its events in full: a `snapshot` (its
 * data decoded into full hearts), then each `batch`'s events as `beat`,
 * `status` (`from: null` for a new heart, `to: null` for a deleted one),
 * `heart` (a heart changed beyond its status), `source`, `wire` and
 * `diagnosis` messages, each with the id of the batch that carried it;
 * `ping`s and comments pass as they are. A client that resumes with
 * `Last-Event-ID` passes the `mirror` of its previous connection.
 */
export async function* expandSse(
  messages: AsyncIterable<SseMessage>,
  mirror: StreamMirror = new StreamMirror(),
): AsyncGenerator<SseMessage> {
  for await (const m of messages) {
    if (m.event === "snapshot") {
      const snap = mirror.applySnapshot(JSON.parse(m.data) as StreamSnapshot);
      yield { ...m, data: JSON.stringify(snap) };
    } else if (m.event === "batch") {
      for (const e of mirror.applyBatch(JSON.parse(m.data) as StreamBatch)) {
        yield {
          ...(m.id !== undefined && { id: m.id }),
          event: e.event,
          data: JSON.stringify(e.data),
        };
      }
    } else yield m;
  }
}

/** {@linkcode readSse} expanded by {@linkcode expandSse}. */
export function readFullSse(
  res: Response,
  mirror?: StreamMirror,
): AsyncGenerator<SseMessage> {
  return expandSse(readSse(res), mirror);
}

/** Collects messages until `stop` returns true or `timeoutMs` passes. */
export function collectSse(
  res: Response,
  stop: (msgs: SseMessage[]) => boolean,
  timeoutMs = 10_000,
): Promise<SseMessage[]> {
  return collectFrom(readSse(res), stop, timeoutMs);
}

/** {@linkcode collectSse} of the stream's events in full (see {@linkcode expandSse}). */
export function collectFullSse(
  res: Response,
  stop: (msgs: SseMessage[]) => boolean,
  timeoutMs = 10_000,
): Promise<SseMessage[]> {
  return collectFrom(readFullSse(res), stop, timeoutMs);
}

async function collectFrom(
  it: AsyncGenerator<SseMessage>,
  stop: (msgs: SseMessage[]) => boolean,
  timeoutMs: number,
): Promise<SseMessage[]> {
  const msgs: SseMessage[] = [];
  const deadline = Date.now() + timeoutMs;
  try {
    while (!stop(msgs)) {
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(
          `SSE: condition not met in ${timeoutMs} ms after ${msgs.length} messages`,
        );
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      const next = await Promise.race([
        it.next(),
        new Promise<"timeout">((r) =>
          timer = setTimeout(() => r("timeout"), left)
        ),
      ]);
      clearTimeout(timer);
      if (next === "timeout") continue;
      if (next.done) {
        throw new Error(`SSE: stream ended after ${msgs.length} messages`);
      }
      msgs.push(next.value);
    }
    return msgs;
  } finally {
    await it.return(undefined);
  }
}
