/**
 * Injected clocks: every time-driven loop takes a {@linkcode Clock} so tests
 * advance time instead of sleeping.
 *
 * @module
 */

/** A source of time and timers. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Resolves after `ms`, or rejects with the signal's reason when aborted. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** The real clock. */
export const systemClock: Clock = {
  now: () => Date.now(),
  sleep(ms, signal) {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const onAbort = () => {
        clearTimeout(timer);
        reject(signal?.reason);
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      }, ms);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  },
};

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

/**
 * A clock that runs `speed` times faster than `base`, starting at `base`'s
 * current time: `mock --speed N` and replays run the whole pipeline on it.
 */
export function scaledClock(speed: number, base: Clock = systemClock): Clock {
  if (!(speed > 0)) {
    throw new RangeError(`Clock speed must be positive, got ${speed}`);
  }
  if (speed === 1) return base;
  const origin = base.now();
  return {
    now: () => origin + (base.now() - origin) * speed,
    sleep: (ms, signal) => base.sleep(ms / speed, signal),
  };
}

/** Sleeps `ms` on `clock`; resolves false instead of throwing when `signal` aborts. */
export async function sleepUnlessAborted(
  clock: Clock,
  ms: number,
  signal: AbortSignal,
): Promise<boolean> {
  try {
    await clock.sleep(ms, signal);
    return true;
  } catch {
    return false;
  }
}
