/**
 * Leader election on a `coordination.k8s.io/v1` Lease with client-go's
 * semantics: validated timings (15 s lease, 10 s renew deadline, 2 s retry by
 * default), separate acquire, renew and release, and expiry judged only on
 * the local time at which a change of the Lease was observed (never on the
 * timestamps written in it), so clock skew between nodes does not matter.
 *
 * The leader records its address in the Lease's
 * `earthworm.dev/leader-address` annotation so followers can forward to it.
 *
 * The lock is a small interface (`lease_lock.ts`): an in-memory store backs
 * unit tests, a REST lock talks to a real API server.
 *
 * @module
 */

import { type Clock, sleepUnlessAborted, systemClock } from "../core/clock.ts";
import { getLogger } from "../core/log.ts";
import { describeRequestFailure, KubeApiError } from "./rest_client.ts";
import {
  type LeaderElectionRecord,
  type LeaseLock,
  LockConflictError,
} from "./lease_lock.ts";
import { microTime } from "../core/lease_types.ts";

/** client-go's JitterFactor, used in the timing invariant renewDeadline > retryPeriod × 1.2. */
export const JITTER_FACTOR = 1.2;

/** Candidates poll every retryPeriod × (1 − rand × POLL_JITTER). */
export const POLL_JITTER = 0.2;

/** Callbacks of a {@linkcode LeaderElector}. */
export interface LeaderCallbacks {
  /** This elector became the leader; `signal` aborts when it stops leading. */
  onStartedLeading?(signal: AbortSignal): void;
  /** This elector stopped leading (lost the Lease or shut down); runs in a finally. */
  onStoppedLeading?(): void;
  /** The observed leader changed ("" when nobody holds the Lease). */
  onNewLeader?(identity: string, address: string | undefined): void;
}

/** Settings of a {@linkcode LeaderElector}; durations in milliseconds. */
export interface LeaderElectionConfig {
  lock: LeaseLock;
  /** This candidate's unique name (the pod name). */
  identity: string;
  /** Where this candidate serves the API; recorded while it leads. */
  address?: string;
  /** How long followers wait after the last observed change before taking over (15 s). */
  leaseDurationMs?: number;
  /** How long the leader keeps retrying a failed renewal before stepping down (10 s). */
  renewDeadlineMs?: number;
  /** Interval between attempts (2 s). */
  retryPeriodMs?: number;
  /** Release the Lease when the run's signal aborts (true). */
  releaseOnCancel?: boolean;
  callbacks?: LeaderCallbacks;
  clock?: Clock;
  random?: () => number;
}

/** Default timings: client-go's. */
export const DEFAULT_TIMINGS = {
  leaseDurationMs: 15_000,
  renewDeadlineMs: 10_000,
  retryPeriodMs: 2_000,
} as const;

/** Checks the timing invariants and identity up front; throws a specific error. */
export function validateElectionConfig(c: LeaderElectionConfig): {
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

const log = getLogger("leader-election");

/** One candidate in a leader election. Call {@linkcode LeaderElector.run} once. */
export class LeaderElector {
  readonly #cfg: LeaderElectionConfig;
  readonly #lock: LeaseLock;
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #leaseMs: number;
  readonly #renewMs: number;
  readonly #retryMs: number;
  #observed: LeaderElectionRecord | null = null;
  #observedRaw = "";
  #observedAt = 0;
  #reportedLeader: string | undefined;
  #deniedReported = false;
  /** The failure last reported at warn level, until an attempt succeeds. */
  #failureReported: string | undefined;

  /** Validates `config`; throws RangeError or TypeError on bad settings. */
  constructor(config: LeaderElectionConfig) {
    const t = validateElectionConfig(config);
    this.#cfg = config;
    this.#lock = config.lock;
    this.#clock = config.clock ?? systemClock;
    this.#random = config.random ?? Math.random;
    this.#leaseMs = t.leaseDurationMs;
    this.#renewMs = t.renewDeadlineMs;
    this.#retryMs = t.retryPeriodMs;
  }

  /** Whether this candidate holds the Lease as last observed. */
  isLeader(): boolean {
    return this.#observed?.holderIdentity === this.#cfg.identity;
  }

  /** The leader as last observed, if any. */
  leader(): { identity: string; address: string | undefined } | undefined {
    const r = this.#observed;
    if (!r || r.holderIdentity === "") return undefined;
    return { identity: r.holderIdentity, address: r.holderAddress };
  }

  /**
   * Campaigns until elected, leads until the Lease is lost or `signal`
   * aborts, then returns (releasing the Lease on abort unless
   * `releaseOnCancel` is false). Run it again to campaign again.
   */
  async run(signal: AbortSignal): Promise<void> {
    if (!await this.#acquire(signal)) return;
    const leading = new AbortController();
    const onAbort = () => leading.abort();
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      log.info("started leading", {
        lock: this.#lock.describe(),
        identity: this.#cfg.identity,
      });
      this.#cfg.callbacks?.onStartedLeading?.(leading.signal);
      await this.#renew(leading.signal);
    } finally {
      signal.removeEventListener("abort", onAbort);
      leading.abort();
      try {
        if (signal.aborted && (this.#cfg.releaseOnCancel ?? true)) {
          await this.#release();
        }
      } finally {
        log.info("stopped leading", { identity: this.#cfg.identity });
        this.#cfg.callbacks?.onStoppedLeading?.();
      }
    }
  }

  /** Tries every jittered retry period until this candidate holds the Lease. */
  async #acquire(signal: AbortSignal): Promise<boolean> {
    while (!signal.aborted) {
      const ok = await this.tryAcquireOrRenew(signal, this.#renewMs);
      this.#reportTransition();
      if (ok) return true;
      // client-go waits retryPeriod × (1 + rand × 1.2); jittering downwards
      // instead keeps candidates spread out while bounding the time between
      // a holder's last renewal and its observation by one retry period, so
      // takeover comes within leaseDuration + retryPeriod of the last renewal.
      let wait = this.#retryMs * (1 - this.#random() * POLL_JITTER);
      // Wake right when the observed Lease would expire instead of up to a
      // period later: same rule, faster takeover.
      const r = this.#observed;
      if (r && r.holderIdentity !== "") {
        const expiresIn = this.#observedAt + this.#leaseMs - this.#clock.now();
        if (expiresIn >= 0) wait = Math.min(wait, expiresIn + 1);
      }
      if (!await sleepUnlessAborted(this.#clock, wait, signal)) return false;
    }
    return false;
  }

  /** Renews every retry period; returns when a renewal misses its deadline or `signal` aborts. */
  async #renew(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const deadline = this.#clock.now() + this.#renewMs;
      let renewed = false;
      while (!signal.aborted) {
        const left = deadline - this.#clock.now();
        if (left <= 0) break;
        renewed = await this.tryAcquireOrRenew(signal, left);
        if (renewed || signal.aborted) break;
        const pause = Math.min(this.#retryMs, deadline - this.#clock.now());
        if (
          pause <= 0 || !await sleepUnlessAborted(this.#clock, pause, signal)
        ) break;
      }
      this.#reportTransition();
      if (signal.aborted) return;
      if (!renewed) {
        log.warn("failed to renew the lease within the renew deadline", {
          lock: this.#lock.describe(),
          deadlineMs: this.#renewMs,
        });
        return;
      }
      if (!await sleepUnlessAborted(this.#clock, this.#retryMs, signal)) return;
    }
  }

  /** Gives the Lease up (holder cleared, 1 s duration) if this candidate holds it. */
  async #release(): Promise<void> {
    if (!this.isLeader() || !this.#observed) return;
    const now = this.#clock.now();
    const record: LeaderElectionRecord = {
      holderIdentity: "",
      leaseDurationSeconds: 1,
      acquireTime: microTime(now),
      renewTime: microTime(now),
      leaseTransitions: this.#observed.leaseTransitions,
    };
    try {
      await withTimeout(this.#clock, this.#renewMs, undefined, async (s) => {
        try {
          await this.#lock.update(record, s);
        } catch (err) {
          // A renewal aborted in flight may still have been written, leaving
          // our copy stale: re-read, and release only if we still hold it.
          if (!(err instanceof LockConflictError)) throw err;
          const current = await this.#lock.get(s);
          if (current?.record.holderIdentity !== this.#cfg.identity) return;
          await this.#lock.update(record, s);
        }
      });
      this.#setObserved(record, "");
      log.info("released the lease", { lock: this.#lock.describe() });
    } catch (err) {
      log.warn("failed to release the lease", { error: String(err) });
    }
  }

  /**
   * One attempt (client-go's tryAcquireOrRenew): read the Lease, note when it
   * last changed by the local clock, and take or renew it when it is ours,
   * free, or unchanged for a whole lease duration.
   */
  async tryAcquireOrRenew(
    signal: AbortSignal,
    timeoutMs: number,
  ): Promise<boolean> {
    const now = this.#clock.now();
    const record: LeaderElectionRecord = {
      holderIdentity: this.#cfg.identity,
      leaseDurationSeconds: Math.ceil(this.#leaseMs / 1000),
      acquireTime: microTime(now),
      renewTime: microTime(now),
      leaseTransitions: 0,
    };
    if (this.#cfg.address) record.holderAddress = this.#cfg.address;
    try {
      const ok = await withTimeout(
        this.#clock,
        timeoutMs,
        signal,
        async (s) => {
          const old = await this.#lock.get(s);
          if (!old) {
            await this.#lock.create(record, s);
            this.#setObserved(record, "", now);
            return true;
          }
          if (old.raw !== this.#observedRaw) {
            this.#setObserved(old.record, old.raw, this.#clock.now());
          }
          const heldByOther = old.record.holderIdentity !== "" &&
            old.record.holderIdentity !== this.#cfg.identity;
          if (heldByOther && this.#observedAt + this.#leaseMs > now) {
            return false;
          }
          if (old.record.holderIdentity === this.#cfg.identity) {
            record.acquireTime = old.record.acquireTime;
            record.leaseTransitions = old.record.leaseTransitions;
          } else {
            record.leaseTransitions = old.record.leaseTransitions + 1;
          }
          await this.#lock.update(record, s);
          this.#setObserved(record, "", now);
          return true;
        },
      );
      if (this.#failureReported !== undefined) {
        this.#failureReported = undefined;
        log.info("the election Lease can be read again", {
          lock: this.#lock.describe(),
        });
      }
      return ok;
    } catch (err) {
      if (!signal.aborted) this.#reportFailure(err);
      return false;
    }
  }

  /**
   * Logs a failed attempt: at warn level the first time and whenever the
   * cause changes (retries come every retry period), else at debug level. A
   * lost race for the Lease is part of the election and stays at debug.
   */
  #reportFailure(err: unknown): void {
    const denied = err instanceof KubeApiError &&
      (err.code === 401 || err.code === 403);
    const fields = {
      lock: this.#lock.describe(),
      error: err instanceof Error ? err.message : String(err),
    };
    if (denied) {
      // A denial will not pass by itself: say so once, loudly.
      if (!this.#deniedReported) {
        this.#deniedReported = true;
        log.warn(
          "not allowed to take part in the election: check the RBAC of the election Lease",
          fields,
        );
      } else log.debug("lease attempt failed", fields);
      return;
    }
    if (err instanceof LockConflictError) {
      log.debug("lease attempt lost a race", fields);
      return;
    }
    const failure = describeRequestFailure(err);
    const key = `${failure.summary}: ${failure.detail}`;
    if (key === this.#failureReported) {
      log.debug("lease attempt failed", fields);
      return;
    }
    this.#failureReported = key;
    log.warn(
      `${key}${failure.fix ? `: ${failure.fix}` : ""}`,
      { lock: this.#lock.describe() },
    );
  }

  #setObserved(record: LeaderElectionRecord, raw: string, at?: number): void {
    this.#observed = record;
    this.#observedRaw = raw;
    if (at !== undefined) this.#observedAt = at;
  }

  #reportTransition(): void {
    // Nothing is known before the Lease was read (or created) once.
    if (!this.#observed) return;
    const holder = this.#observed.holderIdentity;
    if (holder === this.#reportedLeader) return;
    this.#reportedLeader = holder;
    this.#cfg.callbacks?.onNewLeader?.(holder, this.#observed.holderAddress);
  }
}

/** Runs `fn` with a signal that aborts after `ms` on `clock` or when `outer` aborts. */
async function withTimeout<T>(
  clock: Clock,
  ms: number,
  outer: AbortSignal | undefined,
  fn: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const ctrl = new AbortController();
  const done = new AbortController();
  const onOuter = () => ctrl.abort(outer?.reason);
  outer?.addEventListener("abort", onOuter, { once: true });
  if (outer?.aborted) ctrl.abort(outer.reason);
  clock.sleep(ms, done.signal).then(
    () =>
      ctrl.abort(new DOMException("Lease request timed out", "TimeoutError")),
    () => {},
  );
  try {
    return await fn(ctrl.signal);
  } finally {
    done.abort();
    outer?.removeEventListener("abort", onOuter);
  }
}
