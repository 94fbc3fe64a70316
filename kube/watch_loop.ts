/**
 * The Lease watch loop: list all Leases (or those of the given namespaces),
 * hand the list to the sink as a resync, then watch from the list's
 * resourceVersion. It re-watches from the last resourceVersion seen
 * (bookmarks included) after a normal end, relists after `410 Gone` or when
 * the hub finds its view stale, and retries every other failure with capped
 * exponential backoff and jitter, reporting the API server unreachable
 * meanwhile. A liveness read beside the watch notices a silent API server
 * (frozen, partitioned) within seconds and ends the backoff as soon as it
 * answers again. It never gives up until its signal aborts.
 *
 * The decisions (classify, back off, relist or re-watch) are pure functions
 * in `watch_policy.ts`. The requests go through a {@linkcode LeaseSource}:
 * the REST one (`rest_lease_source.ts`) in the cluster, the client-node one
 * (`client_node_source.ts`) from a laptop, and the simulated API server of
 * `sim/` in mock mode and in unit tests, so every source runs this loop.
 */

import type { Lease, LeaseEvent, LeaseSink } from "../core/lease_types.ts";
import type { LeaseSource, RawWatchEvent } from "../core/lease_source.ts";
import { type Clock, sleepUnlessAborted, systemClock } from "../core/clock.ts";
import { getLogger } from "../core/log.ts";
import { toLease } from "./lease_api.ts";
import {
  type BackoffPolicy,
  classifyFailure,
  decideAfterListFailure,
  decideAfterWatch,
  DEFAULT_BACKOFF,
  DEFAULT_LIVENESS,
  judgePing,
  type LivenessPolicy,
  type PingOutcome,
  type RetryState,
  type WatchOutcome,
  watchTimeoutSeconds,
} from "./watch_policy.ts";

/** Counters that tests and `/metrics` read; the watcher updates them in place. */
export interface WatchStats {
  lists: number;
  watches: number;
  events: number;
  bookmarks: number;
  relistsAfterGone: number;
  failures: number;
  /** Liveness reads done, and those the API server did not answer. */
  pings: number;
  silentPings: number;
  /** Last resourceVersion seen per namespace ("" for all namespaces). */
  resourceVersions: Record<string, string>;
}

/** Fresh zeroed counters. */
export function newWatchStats(): WatchStats {
  return {
    lists: 0,
    watches: 0,
    events: 0,
    bookmarks: 0,
    relistsAfterGone: 0,
    failures: 0,
    pings: 0,
    silentPings: 0,
    resourceVersions: {},
  };
}

/** Options of {@linkcode runLeaseWatch}. */
export interface LeaseWatchOptions {
  source: LeaseSource;
  sink: LeaseSink;
  /** Namespaces to watch; all namespaces when absent or empty. */
  namespaces?: string[];
  signal: AbortSignal;
  clock?: Clock;
  backoff?: BackoffPolicy;
  /** Period and deadline of the liveness read beside the watch. */
  liveness?: LivenessPolicy;
  /** Lets the hub ask for a relist when it finds the view stale. */
  control?: WatchControl;
  random?: () => number;
  /** Minimum server-side watch timeout (seconds); the real one is up to twice this. */
  minWatchTimeoutSeconds?: number;
  stats?: WatchStats;
}

/** Thrown inside the loop when a watch stream carries an ERROR event. */
export class WatchStatusError extends Error {
  /** HTTP-like status code from the Status object (410 for Gone). */
  readonly code: number | undefined;
  constructor(code: number | undefined, message: string) {
    super(message);
    this.name = "WatchStatusError";
    this.code = code;
  }
}

const log = getLogger("lease-watcher");

interface Target {
  namespace: string | undefined;
  resourceVersion: string;
}

/**
 * Lets others ask a running watch loop to relist: the hub does when a fresh
 * read of a Lease shows what the watch never delivered, so Earthworm's view
 * is behind the API server. A request while no loop runs is dropped.
 */
export class WatchControl {
  #handler: ((reason: string) => void) | undefined;

  /** Asks the loop to report the source not current and relist; `reason` says why. */
  relist(reason: string): void {
    this.#handler?.(reason);
  }

  /** Called by {@linkcode runLeaseWatch}: routes requests to `handler` until the returned function is called. */
  attach(handler: (reason: string) => void): () => void {
    this.#handler = handler;
    return () => {
      if (this.#handler === handler) this.#handler = undefined;
    };
  }
}

/** Why the loop ended a list or watch itself. */
class StaleViewError extends Error {
  override name = "StaleViewError";
}

/**
 * Runs the list-and-watch loop until `signal` aborts; resolves then. Never
 * rejects for API failures: it reports them through `sink.source` and retries.
 *
 * Beside the watch, a liveness read runs every `liveness.periodMs`: when the
 * API server does not answer it in time the source is reported unreachable
 * at once and the watch in progress is ended (its stream may be open but
 * dead); when the read answers again, the loop stops waiting out its backoff
 * and resumes the watch from its last resourceVersion right away.
 */
export async function runLeaseWatch(opts: LeaseWatchOptions): Promise<void> {
  const { source, sink, signal } = opts;
  const clock = opts.clock ?? systemClock;
  const policy = opts.backoff ?? DEFAULT_BACKOFF;
  const liveness = opts.liveness ?? DEFAULT_LIVENESS;
  const random = opts.random ?? Math.random;
  const minTimeout = opts.minWatchTimeoutSeconds ?? 300;
  const stats = opts.stats ?? newWatchStats();
  const namespaces: (string | undefined)[] = opts.namespaces?.length
    ? [...new Set(opts.namespaces)]
    : [undefined];

  let connected: boolean | undefined;
  /** Why the API server counts as silent, while the liveness read fails. */
  let silent: string | undefined;
  /** The list or watch in progress; aborting it ends that request. */
  let attempt: { phase: "list" | "watch"; controller: AbortController } | null =
    null;
  let watching = false;
  let wakePending = false;
  let waker: AbortController | undefined;

  const setConnected = (up: boolean, reason: string | undefined) => {
    // Up only while the liveness read answers: an open watch alone proves little.
    if (up && silent !== undefined) return;
    if (connected === up) return;
    connected = up;
    sink.source(up, reason, clock.now());
    if (up) log.info("API server reachable");
    else {log.warn("cannot see the Leases: hearts are unknown until it can", {
        reason,
      });}
  };
  /** Ends a backoff pause early, or the next one when none is running. */
  const wake = () => {
    if (waker) waker.abort();
    else wakePending = true;
  };
  const pause = async (ms: number): Promise<boolean> => {
    if (ms > 0 && !wakePending) {
      waker = new AbortController();
      await sleepUnlessAborted(
        clock,
        ms,
        AbortSignal.any([signal, waker.signal]),
      );
      waker = undefined;
    }
    wakePending = false;
    return !signal.aborted;
  };
  const begin = (phase: "list" | "watch") => {
    wakePending = false;
    const controller = new AbortController();
    attempt = { phase, controller };
    return AbortSignal.any([signal, controller.signal]);
  };

  let targets: Target[] | undefined;
  const detach = opts.control?.attach((reason) => {
    log.warn("the Lease view is behind the API server: relisting", { reason });
    setConnected(false, reason);
    // A list in progress is fresh by definition: it reports the source
    // current when it completes.
    if (attempt?.phase === "watch") {
      attempt.controller.abort(new StaleViewError(reason));
    } else if (attempt === null) {
      targets = undefined;
      wake();
    }
  });
  const pinger = pingLoop(
    source,
    namespaces[0],
    clock,
    liveness,
    signal,
    stats,
    (verdict) => {
      if (verdict.silent) {
        const first = silent === undefined;
        silent = verdict.reason;
        setConnected(false, verdict.reason);
        if (first) {
          log.debug("liveness read failed", {
            reason: verdict.reason,
          });
        }
        // The stream may be open but dead: end it; the loop resumes from its
        // last resourceVersion once the server answers again.
        attempt?.controller.abort(
          new DOMException(verdict.reason, "TimeoutError"),
        );
      } else if (silent !== undefined) {
        silent = undefined;
        if (watching) setConnected(true, undefined);
        wake();
      }
    },
  );

  let retry: RetryState = { failures: 0, gones: 0 };
  try {
    while (!signal.aborted) {
      if (!targets) {
        const listSignal = begin("list");
        try {
          targets = await listAll(
            source,
            namespaces,
            listSignal,
            stats,
            (items) => {
              attempt = null;
              setConnected(true, undefined);
              sink.resync(items, clock.now());
            },
          );
          retry = { failures: 0, gones: retry.gones };
        } catch (err) {
          attempt = null;
          if (signal.aborted) break;
          stats.failures++;
          const d = decideAfterListFailure(
            listSignal.aborted ? listSignal.reason : err,
            retry,
            policy,
            random,
          );
          retry = d;
          setConnected(false, d.down);
          log.debug("list failed", { reason: d.down, retryInMs: d.delayMs });
          if (!await pause(d.delayMs)) break;
          continue;
        }
      }
      const startedAt = clock.now();
      const before = stats.events + stats.bookmarks;
      let opened = false;
      const onOpen = () => {
        opened = true;
        watching = true;
        setConnected(true, undefined);
      };
      const watchSignal = begin("watch");
      let error = await watchAll(
        source,
        targets,
        { sink, clock, signal: watchSignal, stats, onOpen },
        watchTimeoutSeconds(minTimeout, random),
      );
      attempt = null;
      watching = false;
      if (signal.aborted) break;
      // Ended by the liveness read or a relist request rather than by the server.
      if (watchSignal.aborted) error = watchSignal.reason;
      const outcome: WatchOutcome = {
        opened,
        durationMs: clock.now() - startedAt,
        events: stats.events + stats.bookmarks - before,
      };
      if (error instanceof StaleViewError) outcome.stale = error.message;
      else if (error !== undefined) outcome.error = error;
      const d = decideAfterWatch(outcome, retry, policy, random);
      retry = d;
      if (outcome.error !== undefined) {
        stats.failures++;
        const f = classifyFailure(outcome.error);
        if (f.gone) stats.relistsAfterGone++;
        log.debug("watch failed", { reason: f.reason, next: d.next });
      }
      if (d.down !== undefined) setConnected(false, d.down);
      if (d.next === "list") targets = undefined;
      if (!await pause(d.delayMs)) break;
    }
  } finally {
    detach?.();
    await pinger;
  }
}

/**
 * Runs the liveness read every `policy.periodMs` until `signal` aborts and
 * hands each verdict to `onVerdict`.
 */
async function pingLoop(
  source: LeaseSource,
  namespace: string | undefined,
  clock: Clock,
  policy: LivenessPolicy,
  signal: AbortSignal,
  stats: WatchStats,
  onVerdict: (verdict: ReturnType<typeof judgePing>) => void,
): Promise<void> {
  while (!signal.aborted) {
    const started = clock.now();
    const outcome = await pingOnce(source, namespace, clock, policy, signal);
    if (signal.aborted) break;
    stats.pings++;
    const verdict = judgePing(outcome, policy);
    if (verdict.silent) stats.silentPings++;
    onVerdict(verdict);
    const wait = Math.max(0, started + policy.periodMs - clock.now());
    if (!await sleepUnlessAborted(clock, wait, signal)) break;
  }
}

/** One liveness read with its deadline on `clock`. */
async function pingOnce(
  source: LeaseSource,
  namespace: string | undefined,
  clock: Clock,
  policy: LivenessPolicy,
  signal: AbortSignal,
): Promise<PingOutcome> {
  const controller = new AbortController();
  const onAbort = () => controller.abort(signal.reason);
  signal.addEventListener("abort", onAbort, { once: true });
  let timedOut = false;
  const deadline = clock.sleep(policy.timeoutMs, controller.signal).then(
    () => {
      timedOut = true;
      controller.abort(
        new DOMException("liveness read timed out", "TimeoutError"),
      );
    },
    () => {},
  );
  try {
    await source.ping(namespace, controller.signal);
    return { ok: true };
  } catch (error) {
    return timedOut
      ? { ok: false, timedOut: true }
      : { ok: false, timedOut: false, error };
  } finally {
    controller.abort();
    signal.removeEventListener("abort", onAbort);
    await deadline;
  }
}

/**
 * Lists every namespace, hands all the Leases to `deliver` and returns where
 * each watch starts. The Leases live in this function's frame only: while
 * the loop's own frame held the list, every Lease of it stayed alive for as
 * long as the watch ran (6,000 Lease objects, about 3 MB, at 5,000 nodes).
 */
async function listAll(
  source: LeaseSource,
  namespaces: (string | undefined)[],
  signal: AbortSignal,
  stats: WatchStats,
  deliver: (items: Lease[]) => void,
): Promise<Target[]> {
  const items: Lease[] = [];
  const targets: Target[] = [];
  for (const ns of namespaces) {
    const list = await source.list(ns, signal);
    items.push(...list.items);
    targets.push({ namespace: ns, resourceVersion: list.resourceVersion });
    stats.resourceVersions[ns ?? ""] = list.resourceVersion;
  }
  stats.lists++;
  deliver(items);
  return targets;
}

interface WatchContext {
  sink: LeaseSink;
  clock: Clock;
  signal: AbortSignal;
  stats: WatchStats;
  onOpen: () => void;
}

/**
 * Watches every target at once until one of them ends or fails; the others
 * are then cancelled. Targets keep their last resourceVersion for the next
 * round. Returns the failure, or undefined after a normal end.
 */
async function watchAll(
  source: LeaseSource,
  targets: Target[],
  ctx: WatchContext,
  timeoutSeconds: number,
): Promise<unknown> {
  const round = new AbortController();
  const onAbort = () => round.abort(ctx.signal.reason);
  ctx.signal.addEventListener("abort", onAbort, { once: true });
  try {
    const runs = targets.map((t) => {
      ctx.stats.watches++;
      return source.watch({
        namespace: t.namespace,
        resourceVersion: t.resourceVersion,
        timeoutSeconds,
        onOpen: ctx.onOpen,
        onEvent: (ev) => deliver(ev, t, ctx.sink, ctx.clock, ctx.stats),
        signal: round.signal,
      });
    });
    try {
      await Promise.race(runs);
      return undefined;
    } catch (error) {
      return error ?? new Error("watch failed without a reason");
    } finally {
      round.abort();
      await Promise.allSettled(runs);
    }
  } finally {
    ctx.signal.removeEventListener("abort", onAbort);
  }
}

function deliver(
  ev: RawWatchEvent,
  target: Target,
  sink: LeaseSink,
  clock: Clock,
  stats: WatchStats,
): void {
  const obj = ev.object as
    | { metadata?: { resourceVersion?: unknown } }
    | undefined;
  if (ev.type === "ERROR") {
    const status = (ev.object ?? {}) as { code?: unknown; message?: unknown };
    const code = typeof status.code === "number" ? status.code : undefined;
    throw new WatchStatusError(
      code,
      typeof status.message === "string"
        ? status.message
        : `watch error ${code ?? ""}`,
    );
  }
  const rv = obj?.metadata?.resourceVersion;
  if (ev.type === "BOOKMARK") {
    stats.bookmarks++;
  } else if (
    ev.type === "ADDED" || ev.type === "MODIFIED" || ev.type === "DELETED"
  ) {
    stats.events++;
    const event: LeaseEvent = {
      type: ev.type,
      object: ev.lease
        ? ev.object as Lease
        : toLease(ev.object, target.namespace),
    };
    sink.event(event, clock.now());
  } else {
    return;
  }
  if (typeof rv === "string" && rv !== "") {
    target.resourceVersion = rv;
    stats.resourceVersions[target.namespace ?? ""] = rv;
  }
}
