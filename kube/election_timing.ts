/**
 * The election's timings, as pure functions: client-go's invariants
 * (checked up front), the jitter of polling candidates, and the takeover
 * delay of watching followers.
 *
 * @module
 */

/** The settings {@linkcode validateElectionConfig} checks; durations in milliseconds. */
export interface ElectionSettings {
  identity: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
}

/** client-go's JitterFactor, used in the timing invariant renewDeadline > retryPeriod × 1.2. */
export const JITTER_FACTOR = 1.2;

/** Candidates poll every retryPeriod × (1 − rand × POLL_JITTER). */
export const POLL_JITTER = 0.2;

/**
 * Steepness of the takeover delay's distribution: with k = 10, the first
 * followers of up to e^10 (about 22,000) try alone.
 */
export const TAKEOVER_STEEPNESS = 10;

/**
 * How long a watching follower waits, once the Lease expired or was
 * released, before it tries to take it: `spreadMs × max(0, 1 + ln(u) / k)`
 * for a uniform draw `u`. The delays of n followers then crowd towards
 * `spreadMs`, exponentially thinner towards zero, so the earliest one comes
 * about `spreadMs × ln(n) / k` before the end, and only about
 * `e^(k × d / spreadMs) − 1` others fall within the `d` milliseconds it
 * takes them to see the winner's write: one or two, whether n is 3 or
 * 5,000 (the suppression timers of scalable reliable multicast).
 */
export function takeoverDelay(
  u: number,
  spreadMs: number,
  k = TAKEOVER_STEEPNESS,
): number {
  if (!(u > 0)) return 0;
  return spreadMs * Math.max(0, 1 + Math.log(Math.min(u, 1)) / k);
}

/** Default timings: client-go's. */
export const DEFAULT_TIMINGS = {
  leaseDurationMs: 15_000,
  renewDeadlineMs: 10_000,
  retryPeriodMs: 2_000,
} as const;

/** Checks the timing invariants and identity up front; throws a specific error. */
export function validateElectionConfig(c: ElectionSettings): {
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
} {
  const leaseDurationMs = c.leaseDurationMs ?? DEFAULT_TIMINGS.leaseDurationMs;
  const renewDeadlineMs = c.renewDeadlineMs ?? DEFAULT_TIMINGS.renewDeadlineMs;
  const retryPeriodMs = c.retryPeriodMs ?? DEFAULT_TIMINGS.retryPeriodMs;
  for (
    const [name, v] of [
      ["lease duration", leaseDurationMs],
      ["renew deadline", renewDeadlineMs],
      ["retry period", retryPeriodMs],
    ] as const
  ) {
    if (!Number.isFinite(v) || v <= 0) {
      throw new RangeError(
        `Invalid leader election ${name} ${v} ms: it must be greater than zero`,
      );
    }
  }
  if (leaseDurationMs <= renewDeadlineMs) {
    throw new RangeError(
      `Invalid leader election timing: lease duration (${leaseDurationMs} ms) must be greater than renew deadline (${renewDeadlineMs} ms)`,
    );
  }
  if (renewDeadlineMs <= JITTER_FACTOR * retryPeriodMs) {
    throw new RangeError(
      `Invalid leader election timing: renew deadline (${renewDeadlineMs} ms) must be greater than retry period × ${JITTER_FACTOR} (${
        JITTER_FACTOR * retryPeriodMs
      } ms)`,
    );
  }
  if (c.identity.trim() === "") {
    throw new TypeError(
      "Invalid leader election identity: it is empty; set the pod name",
    );
  }
  return { leaseDurationMs, renewDeadlineMs, retryPeriodMs };
}
