/**
 * Feeds WireExchange batches from a running probe to a sink (the agent's
 * sender to the leader), on an injected clock, until the signal aborts or the
 * probe closes. Deliveries are rate-limited, not delayed: a budget of one
 * delivery per flush interval, saved up to {@link BURST}, lets an exchange go
 * at once when the budget allows (a lease renewal's exchange, so it reaches
 * the leader about when the Lease's watch event does); the exchanges of a
 * busier connection wait for the budget and go together, at most one flush
 * interval later. A full batch goes at once.
 *
 * @module
 */

import type { WireExchange } from "../core/api_types.ts";
import { type Clock, systemClock } from "../core/clock.ts";

/**
 * Deliveries the budget saves up: with 1, traffic whose period is close to
 * the flush interval (a kubelet renewing every second, flushed every second)
 * would lock onto a delay after one extra exchange (a reconnect's
 * close_notify) and keep it.
 */
export const BURST = 2;

/** What the feed reads: a node's probe, or anything that yields exchanges. */
export interface WireEventSource {
  /** Exchanges as the probe finds them; ends when the probe closes. One consumer. */
  exchanges(): AsyncIterable<WireExchange>;
}

/** Settings of {@link feedWireExchanges}. */
export interface WireFeedOptions {
  /** Receives each non-empty batch; batches are delivered one at a time. */
  onBatch: (batch: WireExchange[]) => void | Promise<void>;
  /** Shortest time between two deliveries of partial batches, so the longest an exchange waits; default 1000 ms. */
  flushIntervalMs?: number;
  /** Batch size that flushes at once; default 256. */
  maxBatch?: number;
  clock?: Clock;
  signal?: AbortSignal;
}

/**
 * Runs until the source ends or `signal` aborts, then flushes what is
 * pending and resolves. The first error thrown by `onBatch` ends the feed and
 * rejects the returned promise.
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
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  options.signal?.addEventListener("abort", onAbort, { once: true });
  if (options.signal?.aborted) stop.abort();
  let pending: WireExchange[] = [];
  let delivering: Promise<void> = Promise.resolve();
  let failure = null as { error: unknown } | null; // set by deliveries
  let budget = BURST;
  let budgetAt = clock.now();
  const refill = () => {
    const now = clock.now();
    budget = Math.min(BURST, budget + (now - budgetAt) / interval);
    budgetAt = now;
  };
  let timer: Promise<void> | null = null;
  const flush = (): Promise<void> => {
    if (pending.length === 0 || failure) return delivering;
    const batch = pending;
    pending = [];
    refill();
    budget = Math.max(0, budget - 1);
    delivering = delivering.then(async () => {
      if (failure) return;
      try {
        await options.onBatch(batch);
      } catch (error) {
        failure = { error };
        stop.abort();
      }
    });
    return delivering;
  };
  /** Delivers now when the budget allows, else as soon as it does. */
  const schedule = (): void => {
    if (timer) return;
    refill();
    const wait = (1 - budget) * interval;
    if (wait <= 0) {
      flush();
      return;
    }
    timer = (async () => {
      try {
        await clock.sleep(wait, stop.signal);
      } catch {
        return;
      } finally {
        timer = null;
      }
      flush();
    })();
  };
  const stopped = new Promise<"stop">((resolve) => {
    if (stop.signal.aborted) resolve("stop");
    stop.signal.addEventListener("abort", () => resolve("stop"), {
      once: true,
    });
  });
  try {
    const it = source.exchanges()[Symbol.asyncIterator]();
    while (!stop.signal.aborted) {
      const next = await Promise.race([it.next(), stopped]);
      if (next === "stop" || next.done) break;
      pending.push(next.value);
      if (pending.length >= maxBatch) await flush();
      else schedule();
    }
  } finally {
    stop.abort();
    options.signal?.removeEventListener("abort", onAbort);
    await timer;
    await flush();
  }
  if (failure) throw failure.error;
}
