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
 * Followers do not read the Lease every retry period as client-go's
 * candidates do: they watch it (one long request each) and try to take it
 * only when it expires or is released, each after a random delay drawn so
 * that however many followers there are, only about one or two try at once
 * (see {@linkcode takeoverDelay}). Whenever the watch is down they read the
 * Lease every retry period instead. The leader renews with one update, read
 * only when that update fails (client-go's optimistic renewal). So a cluster
 * of any size costs the API server one renewal per retry period, plus one
 * request per follower every few hours when its watch times out.
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
  type ObservedLock,
} from "./lease_lock.ts";
import { microTime } from "../core/lease_types.ts";
import {
  POLL_JITTER,
  takeoverDelay,
  validateElectionConfig,
} from "./election_timing.ts";

export {
  DEFAULT_TIMINGS,
  JITTER_FACTOR,
  POLL_JITTER,
  TAKEOVER_STEEPNESS,
  takeoverDelay,
  validateElectionConfig,
} from "./election_timing.ts";

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
  /** The follower's draw for its takeover delay, renewed at each change. */
  #draw = 1;
  /** Whether the follower's watch of the Lease is open. */
  #watchOpen = false;
  /** Wakes the follower's wait when the Lease or the watch changes. */
  #wake: (() => void) | undefined;
  #watchDeniedReported = false;
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

  /**
   * Tries until this candidate holds the Lease: once at once, then whenever
   * the watched Lease has expired or was released (after its takeover
   * delay), or every jittered retry period while the watch is down.
   */
  async #acquire(signal: AbortSignal): Promise<boolean> {
    const following = new AbortController();
    const stop = () => following.abort();
    signal.addEventListener("abort", stop, { once: true });
    const watching = this.#lock.watch ? this.#follow(following.signal) : null;
    try {
      while (!signal.aborted) {
        const ok = await this.tryAcquireOrRenew(signal, this.#renewMs);
        this.#reportTransition();
        if (ok) return true;
        if (!await this.#awaitChance(signal)) return false;
      }
      return false;
    } finally {
      signal.removeEventListener("abort", stop);
      following.abort();
      // The watch ends at its abort; a request that ignores its abort must
      // not keep a new leader from leading, so wait one retry period at most.
      if (watching) {
        const waited = new AbortController();
        await Promise.race([
          watching,
          this.#clock.sleep(this.#retryMs, waited.signal).catch(() => {}),
        ]);
        waited.abort();
      }
    }
  }

  /** Waits until the next attempt is due; false when `signal` aborted. */
  async #awaitChance(signal: AbortSignal): Promise<boolean> {
    while (!signal.aborted) {
      const woken = new AbortController();
      this.#wake = () => woken.abort();
      const wait = this.#watchOpen ? this.#untilTakeover() : this.#untilPoll();
      const due = await sleepUnlessAborted(
        this.#clock,
        wait,
        AbortSignal.any([signal, woken.signal]),
      );
      this.#wake = undefined;
      if (due) return true;
      // Woken: the Lease or the watch changed; decide again.
    }
    return false;
  }

  /** Watching: the time until this follower's takeover attempt is due. */
  #untilTakeover(): number {
    const r = this.#observed;
    if (r?.holderIdentity === this.#cfg.identity) return 0;
    const delay = takeoverDelay(this.#draw, this.#retryMs / 2);
    const free = !r || r.holderIdentity === "";
    // One millisecond past expiry: the attempt then sees it expired.
    const from = this.#observedAt + (free ? 0 : this.#leaseMs + 1);
    return Math.max(0, from + delay - this.#clock.now());
  }

  /**
   * Not watching: client-go waits retryPeriod × (1 + rand × 1.2); jittering
   * downwards instead keeps candidates spread out while bounding the time
   * between a holder's last renewal and its observation by one retry
   * period, so takeover comes within leaseDuration + retryPeriod of the last
   * renewal.
   */
  #untilPoll(): number {
    let wait = this.#retryMs * (1 - this.#random() * POLL_JITTER);
    // Wake right when the observed Lease would expire instead of up to a
    // period later: same rule, faster takeover.
    const r = this.#observed;
    if (r && r.holderIdentity !== "") {
      const expiresIn = this.#observedAt + this.#leaseMs - this.#clock.now();
      if (expiresIn >= 0) wait = Math.min(wait, expiresIn + 1);
    }
    return wait;
  }

  /**
   * Keeps a watch of the Lease open until `signal` aborts, noting every
   * change at the local time it arrives. After a failure it watches again
   * after a jittered backoff (retry period doubling up to the lease
   * duration); meanwhile the follower polls.
   */
  async #follow(signal: AbortSignal): Promise<void> {
    let failures = 0;
    while (!signal.aborted) {
      try {
        await this.#lock.watch!({
          open: (current) => {
            this.#watchOpen = true;
            failures = 0;
            this.#watched(current);
            this.#wake?.();
          },
          change: (current) => this.#watched(current),
        }, signal);
      } catch (err) {
        if (signal.aborted) break;
        failures++;
        this.#reportWatchFailure(err);
      } finally {
        this.#watchOpen = false;
        this.#wake?.();
      }
      const cap = Math.min(this.#retryMs * 2 ** failures, this.#leaseMs);
      const pause = cap * (0.5 + this.#random() / 2);
      if (!await sleepUnlessAborted(this.#clock, pause, signal)) break;
    }
  }

  /** A watched state of the Lease: noted if it changed, and the wait decided again. */
  #watched(current: ObservedLock | null): void {
    // A candidate that holds the Lease trusts its own writes: a watch event
    // still in flight from before its acquisition must not demote it (one
    // that stepped down and still thinks it holds it tries at once, and
    // that attempt reads the Lease).
    if (this.isLeader()) return;
    const raw = current?.raw ?? "<absent>";
    if (raw === this.#observedRaw) return;
    const record = current?.record ?? {
      holderIdentity: "",
      leaseDurationSeconds: 0,
      acquireTime: "",
      renewTime: "",
      leaseTransitions: 0,
    };
    this.#setObserved(record, raw, this.#clock.now());
    this.#draw = this.#random();
    this.#reportTransition();
    this.#wake?.();
  }

  /** Logs a failed watch: a denial once at warn level, the rest at debug. */
  #reportWatchFailure(err: unknown): void {
    const fields = {
      lock: this.#lock.describe(),
      error: err instanceof Error ? err.message : String(err),
    };
    if (
      err instanceof KubeApiError && (err.code === 401 || err.code === 403) &&
      !this.#watchDeniedReported
    ) {
      this.#watchDeniedReported = true;
      log.warn(
        "cannot watch the election Lease, so this follower reads it every retry period: allow list and watch of it in the RBAC of the election Lease",
        fields,
      );
    } else log.debug("election Lease watch failed", fields);
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
   * free, or unchanged for a whole lease duration. A leader whose lease is
   * still valid first renews without reading, on the version it wrote last,
   * and reads only when that fails.
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
          if (await this.#renewOptimistically(record, now, s)) return true;
          const old = await this.#lock.get(s);
          s.throwIfAborted();
          if (!old) {
            await this.#lock.create(record, s);
            s.throwIfAborted(); // timed out meanwhile: the attempt failed
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
          s.throwIfAborted();
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

  /** The leader's renewal without a read; false when it must read (and try again). */
  async #renewOptimistically(
    fresh: LeaderElectionRecord,
    now: number,
    signal: AbortSignal,
  ): Promise<boolean> {
    const held = this.#observed;
    if (
      !this.isLeader() || !held || this.#observedAt + this.#leaseMs <= now
    ) return false;
    const record = {
      ...fresh,
      acquireTime: held.acquireTime,
      leaseTransitions: held.leaseTransitions,
    };
    try {
      await this.#lock.update(record, signal);
    } catch (err) {
      if (signal.aborted) throw err;
      log.debug("optimistic renewal failed: reading the lease", {
        lock: this.#lock.describe(),
        error: err instanceof Error ? err.message : String(err),
      });
      return false;
    }
    signal.throwIfAborted();
    this.#setObserved(record, "", now);
    return true;
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
    // Settled by the abort itself, not only by `fn` honouring it: a request
    // that hangs past its abort must not hold the leader past its deadline.
    return await new Promise<T>((resolve, reject) => {
      const onAbort = () => reject(ctrl.signal.reason);
      if (ctrl.signal.aborted) onAbort();
      else ctrl.signal.addEventListener("abort", onAbort, { once: true });
      fn(ctrl.signal).then(resolve, reject).finally(() =>
        ctrl.signal.removeEventListener("abort", onAbort)
      );
    });
  } finally {
    done.abort();
    outer?.removeEventListener("abort", onOuter);
  }
}
