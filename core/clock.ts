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

/**
 * Longest delay of one `setTimeout` (about 24.8 days): a longer one fires
 * after 1 ms instead, with a TimeoutOverflowWarning.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** The real clock. Sleeps longer than {@linkcode MAX_TIMER_MS} wait in steps. */
export const systemClock: Clock = {
  now: () => Date.now(),
  sleep(ms, signal) {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const until = Date.now() + ms;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const onAbort = () => {
        clearTimeout(timer);
        reject(signal?.reason);
      };
      const arm = (left: number) => {
        timer = setTimeout(() => {
          const rest = until - Date.now();
          if (left > MAX_TIMER_MS && rest > 0) return arm(rest);
          signal?.removeEventListener("abort", onAbort);
          resolve();
        }, Math.min(left, MAX_TIMER_MS));
      };
      arm(ms);
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
