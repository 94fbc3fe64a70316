/**
 * Feeds WireExchange batches from a running probe to a sink (the agent's
 * sender to the leader): batches flush when full or every interval, on an
 * injected clock, until the signal aborts or the probe closes.
 *
 * @module
 */

import type { WireExchange } from "../server/api_types.ts";
import { type Clock, systemClock } from "../server/clock.ts";
import { WireAggregator } from "./wire_aggregator.ts";
import type { RawWireEvent } from "./wire_event.ts";

/** What the feed reads: a {@link WireProbe} or anything shaped like it. */
export interface WireEventSource {
  readonly monoToWallOffsetMs: number;
  events(): AsyncIterable<RawWireEvent>;
}

/** Settings of {@link feedWireExchanges}. */
export interface WireFeedOptions {
  /** Node name written into every exchange. */
  node: string;
  /** Receives each non-empty batch; batches are delivered one at a time. */
  onBatch: (batch: WireExchange[]) => void | Promise<void>;
  /** Longest time an exchange waits in a partial batch; default 1000 ms. */
  flushIntervalMs?: number;
  /** Batch size that flushes at once; default 256. */
  maxBatch?: number;
  clock?: Clock;
  signal?: AbortSignal;
}

/**
 * Runs until the source ends or `signal` aborts, then flushes what is
 * pending and resolves. Errors thrown by `onBatch` reject the returned promise.
 */
export async function feedWireExchanges(
  source: WireEventSource,
  options: WireFeedOptions,
): Promise<void> {
  const clock = options.clock ?? systemClock;
  const interval = options.flushIntervalMs ?? 1000;
  const maxBatch = options.maxBatch ?? 256;
  if (!(interval > 0) || !(maxBatch > 0)) {
    throw new RangeError(
      `Wire feed needs flushIntervalMs > 0 and maxBatch > 0, got ${interval} and ${maxBatch}`,
    );
  }
  const aggregator = new WireAggregator({
    node: options.node,
    monoToWallOffsetMs: source.monoToWallOffsetMs,
  });
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  options.signal?.addEventListener("abort", onAbort, { once: true });
  if (options.signal?.aborted) stop.abort();
  let pending: WireExchange[] = [];
  let delivering: Promise<void> = Promise.resolve();
  const flush = () => {
    if (pending.length === 0) return delivering;
    const batch = pending;
    pending = [];
    delivering = delivering.then(() => options.onBatch(batch));
    return delivering;
  };
  const ticker = (async () => {
    while (!stop.signal.aborted) {
      try {
        await clock.sleep(interval, stop.signal);
      } catch {
        return;
      }
      await flush();
    }
  })();
  const stopped = new Promise<"stop">((resolve) => {
    if (stop.signal.aborted) resolve("stop");
    stop.signal.addEventListener("abort", () => resolve("stop"), {
      once: true,
    });
  });
  try {
    const it = source.events()[Symbol.asyncIterator]();
    while (!stop.signal.aborted) {
      const next = await Promise.race([it.next(), stopped]);
      if (next === "stop" || next.done) break;
      const x = aggregator.add(next.value);
      if (x) pending.push(x);
      if (pending.length >= maxBatch) await flush();
    }
  } finally {
    stop.abort();
    options.signal?.removeEventListener("abort", onAbort);
    await ticker;
    await flush();
  }
}
