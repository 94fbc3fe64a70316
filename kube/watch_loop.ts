/**
 * The Lease watch loop: list all Leases (or those of the given namespaces),
 * hand the list to the sink as a resync, then watch from the list's
 * resourceVersion. It re-watches from the last resourceVersion seen
 * (bookmarks included) after a normal end, relists after `410 Gone`, and
 * retries every other failure with capped exponential backoff and jitter,
 * reporting the API server unreachable meanwhile. It never gives up until
 * its signal aborts.
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
 * Runs the list-and-watch loop until `signal` aborts; resolves then. Never
 * rejects for API failures: it reports them through `sink.source` and retries.
 */
export async function runLeaseWatch(opts: LeaseWatchOptions): Promise<void> {
  const { source, sink, signal } = opts;
  const clock = opts.clock ?? systemClock;
  const policy = opts.backoff ?? DEFAULT_BACKOFF;
  const random = opts.random ?? Math.random;
  const minTimeout = opts.minWatchTimeoutSeconds ?? 300;
  const stats = opts.stats ?? newWatchStats();
  const namespaces: (string | undefined)[] = opts.namespaces?.length
    ? [...new Set(opts.namespaces)]
    : [undefined];

  let connected: boolean | undefined;
  const setConnected = (up: boolean, reason: string | undefined) => {
    if (connected === up) return;
    connected = up;
    sink.source(up, reason, clock.now());
    if (up) log.info("API server reachable");
    else {log.warn("cannot see the Leases: hearts are unknown until it can", {
        reason,
      });}
  };

  let retry: RetryState = { failures: 0, gones: 0 };
  let targets: Target[] | undefined;
  while (!signal.aborted) {
    if (!targets) {
      try {
        const listed = await listAll(source, namespaces, signal, stats);
        setConnected(true, undefined);
        sink.resync(listed.items, clock.now());
        targets = listed.targets;
        retry = { failures: 0, gones: retry.gones };
      } catch (err) {
        if (signal.aborted) break;
        stats.failures++;
        const d = decideAfterListFailure(err, retry, policy, random);
        retry = d;
        setConnected(false, d.down);
        log.debug("list failed", { reason: d.down, retryInMs: d.delayMs });
        if (!await sleepUnlessAborted(clock, d.delayMs, signal)) break;
        continue;
      }
    }
    const startedAt = clock.now();
    const before = stats.events + stats.bookmarks;
    let opened = false;
    const onOpen = () => {
      opened = true;
      setConnected(true, undefined);
    };
    const error = await watchAll(
      source,
      targets,
      { sink, clock, signal, stats, onOpen },
      watchTimeoutSeconds(minTimeout, random),
    );
    if (signal.aborted) break;
    const outcome: WatchOutcome = {
      opened,
      durationMs: clock.now() - startedAt,
      events: stats.events + stats.bookmarks - before,
    };
    if (error !== undefined) outcome.error = error;
    const d = decideAfterWatch(outcome, retry, policy, random);
    retry = d;
    if (error !== undefined) {
      stats.failures++;
      const f = classifyFailure(error);
      if (f.gone) stats.relistsAfterGone++;
      log.debug("watch failed", { reason: f.reason, next: d.next });
    }
    if (d.down !== undefined) setConnected(false, d.down);
    if (d.next === "list") targets = undefined;
    if (d.delayMs > 0 && !await sleepUnlessAborted(clock, d.delayMs, signal)) {
      break;
    }
  }
}

async function listAll(
  source: LeaseSource,
  namespaces: (string | undefined)[],
  signal: AbortSignal,
  stats: WatchStats,
): Promise<{ items: Lease[]; targets: Target[] }> {
  const items: Lease[] = [];
  const targets: Target[] = [];
  for (const ns of namespaces) {
    const list = await source.list(ns, signal);
    items.push(...list.items);
    targets.push({ namespace: ns, resourceVersion: list.resourceVersion });
    stats.resourceVersions[ns ?? ""] = list.resourceVersion;
  }
  stats.lists++;
  return { items, targets };
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
      object: toLease(ev.object, target.namespace),
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
