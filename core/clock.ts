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
