/**
 * A small SSE reader for tests: parses `text/event-stream` from a fetch
 * response into messages.
 *
 * @module
 */

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

/** Collects messages until `stop` returns true or `timeoutMs` passes. */
export async function collectSse(
  res: Response,
  stop: (msgs: SseMessage[]) => boolean,
  timeoutMs = 10_000,
): Promise<SseMessage[]> {
  const msgs: SseMessage[] = [];
  const it = readSse(res);
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
