/**
 * A clock for tests: time moves only when the test advances it, waking the
 * sleepers due on the way in order.
 *
 * @module
 */

import type { Clock } from "./clock.ts";

interface Sleeper {
  at: number;
  resolve: () => void;
}

/** A clock for tests: time moves only when {@linkcode FakeClock.advance} is called. */
export class FakeClock implements Clock {
  #now: number;
  #sleepers: Sleeper[] = [];

  /** Starts at `start` milliseconds since the epoch. */
  constructor(start = Date.parse("2026-01-01T00:00:00Z")) {
    this.#now = start;
  }

  /** Current fake time. */
  now(): number {
    return this.#now;
  }

  /** Resolves once the clock has been advanced by `ms`. */
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const sleeper: Sleeper = { at: this.#now + ms, resolve };
      this.#sleepers.push(sleeper);
      signal?.addEventListener("abort", () => {
        this.#sleepers = this.#sleepers.filter((s) => s !== sleeper);
        reject(signal.reason);
      }, { once: true });
    });
  }

  /** Number of pending sleeps. */
  get pending(): number {
    return this.#sleepers.length;
  }

  /**
   * Moves time forward by `ms` at once, as a process that stalled sees it:
   * every sleeper due meanwhile wakes at the new time.
   */
  async jump(ms: number): Promise<void> {
    this.#now += ms;
    await this.advance(0);
  }

  /**
   * Moves time forward by `ms`, waking sleepers in order and letting each
   * woken task run before time moves on.
   */
  async advance(ms: number): Promise<void> {
    const end = this.#now + ms;
    while (true) {
      await flush();
      this.#sleepers.sort((a, b) => a.at - b.at);
      const next = this.#sleepers[0];
      if (!next || next.at > end) break;
      this.#sleepers.shift();
      this.#now = Math.max(this.#now, next.at);
      next.resolve();
    }
    this.#now = end;
    await flush();
  }
}

async function flush(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
  await new Promise((r) => setTimeout(r, 0));
}
