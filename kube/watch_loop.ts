/**
 * The Lease watcher: list all Leases (or those of the given namespaces), hand
 * the list to the sink as a resync, then watch from the list's
 * resourceVersion. It re-watches from the last resourceVersion seen (bookmarks
 * included) after a normal end, relists after `410 Gone`, and retries every
 * other failure with capped exponential backoff and jitter, reporting the API
 * server unreachable meanwhile. It never gives up until its signal aborts.
 *
 * The decisions (classify, back off, relist or re-watch) are pure functions
 * in `watch_policy.ts`;
 * the requests go through a {@linkcode LeaseSource} (`agent/kube_client.ts`
 * has the `@kubernetes/client-node` one), so the loop runs on a fake source
 * and a fake clock in unit tests.
 *
 * @module
 */

import type { KubeConfig } from "@kubernetes/client-node";
import type { Lease, LeaseEvent, LeaseSink } from "../core/lease_types.ts";
import {
  KubeRestClient,
  type RestConfig,
  restConfigFromKubeConfig,
} from "./rest_client.ts";
import {
  type Clock,
  sleepUnlessAborted,
  systemClock,
} from "../core/clock.ts";
import { getLogger } from "../core/log.ts";
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

/** A page-complete list of Leases and the resourceVersion to watch from. */
export interface LeaseList {
  items: Lease[];
  resourceVersion: string;
}

/** One raw watch event as the API server sends it. */
export interface RawWatchEvent {
  type: string;
  object: unknown;
}

/** One watch request of a {@linkcode LeaseSource}. */
export interface WatchRequest {
  /** Namespace to watch; all namespaces when undefined. */
  namespace: string | undefined;
  resourceVersion: string;
  /** Server-side timeout after which the server ends the stream normally. */
  timeoutSeconds: number;
  /** Called once the server has accepted the watch. */
  onOpen: () => void;
  /** Called for each event; when it throws, the watch stops and rejects with that error. */
  onEvent: (event: RawWatchEvent) => void;
  /** Aborting stops the watch; it then settles promptly. */
  signal: AbortSignal;
}

/** Where the watcher reads Leases from: the real API server or a test double. */
export interface LeaseSource {
  /** Lists the Leases of `namespace`, or of all namespaces when undefined. */
  list(namespace: string | undefined, signal: AbortSignal): Promise<LeaseList>;
  /** Watches until the server ends the stream (resolves) or it fails (rejects). */
  watch(request: WatchRequest): Promise<void>;
}

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

function str(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (v instanceof Date) return v.toISOString().replace(".000Z", "Z");
  return undefined;
}

function num(v: unknown): number | undefined {
  return typeof v === "number" ? v : undefined;
}

/**
 * Converts a Lease from the API (raw JSON or a client-node model whose
 * timestamps may be `Date`s) into the plain JSON shape of `lease_types.ts`.
 * MicroTime fields stay the exact strings the server sent, so equal renewals
 * compare equal.
 */
export function toLease(obj: unknown, fallbackNamespace = ""): Lease {
  const o = (obj ?? {}) as Record<string, Record<string, unknown> | undefined>;
  const m = o.metadata ?? {};
  const lease: Lease = {
    metadata: {
      name: str(m.name) ?? "",
      namespace: str(m.namespace) ?? fallbackNamespace,
    },
  };
  const rv = str(m.resourceVersion);
  if (rv !== undefined) lease.metadata.resourceVersion = rv;
  const uid = str(m.uid);
  if (uid !== undefined) lease.metadata.uid = uid;
  const created = str(m.creationTimestamp);
  if (created !== undefined) lease.metadata.creationTimestamp = created;
  const s = o.spec;
  if (s) {
    lease.spec = {
      holderIdentity: str(s.holderIdentity) ?? null,
      leaseDurationSeconds: num(s.leaseDurationSeconds) ?? null,
      acquireTime: str(s.acquireTime) ?? null,
      renewTime: str(s.renewTime) ?? null,
      leaseTransitions: num(s.leaseTransitions) ?? null,
    };
  }
  return lease;
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

function leasesPath(namespace: string | undefined): string {
  return namespace
    ? `/apis/coordination.k8s.io/v1/namespaces/${
      encodeURIComponent(namespace)
    }/leases`
    : "/apis/coordination.k8s.io/v1/leases";
}

interface RawList {
  metadata?: { resourceVersion?: string; continue?: string };
  items?: unknown[];
}

/**
 * A {@linkcode LeaseSource} on the real API server: paginated lists (500 per
 * page) and watches with bookmarks. A watch that sends nothing for `idleMs`
 * (default 150 s; bookmarks arrive about once a minute) counts as failed.
 */
export function restLeaseSource(
  client: KubeRestClient,
  idleMs = 150_000,
): LeaseSource {
  return {
    async list(namespace, signal) {
      const items: Lease[] = [];
      let cont: string | undefined;
      let resourceVersion = "";
      do {
        const q = new URLSearchParams({ limit: "500" });
        if (cont) q.set("continue", cont);
        const page = await client.request<RawList>(
          "GET",
          `${leasesPath(namespace)}?${q}`,
          undefined,
          signal,
        );
        for (const item of page.items ?? []) {
          items.push(toLease(item, namespace));
        }
        resourceVersion = page.metadata?.resourceVersion ?? resourceVersion;
        cont = page.metadata?.continue || undefined;
      } while (cont);
      return { items, resourceVersion };
    },
    watch(req) {
      const q = new URLSearchParams({
        watch: "1",
        resourceVersion: req.resourceVersion,
        allowWatchBookmarks: "true",
        timeoutSeconds: String(req.timeoutSeconds),
      });
      return client.stream(
        `${leasesPath(req.namespace)}?${q}`,
        (v) => req.onEvent(v as RawWatchEvent),
        req.signal,
        idleMs,
        req.onOpen,
      );
    },
  };
}

/** Options of {@linkcode watchLeases}. */
export interface WatchLeasesOptions extends Omit<LeaseWatchOptions, "source"> {
  /** A loaded client-node KubeConfig (its current context is used)... */
  kubeConfig?: KubeConfig;
  /** ...or a ready REST configuration (e.g. `inClusterRestConfig()`). */
  rest?: RestConfig;
  /** Idle limit of one watch stream in milliseconds. */
  idleMs?: number;
}

/**
 * Lists and watches Leases on a real API server into `sink` until `signal`
 * aborts. Takes either a client-node KubeConfig or a RestConfig.
 */
export async function watchLeases(opts: WatchLeasesOptions): Promise<void> {
  const rest = opts.rest ??
    (opts.kubeConfig
      ? await restConfigFromKubeConfig(opts.kubeConfig)
      : undefined);
  if (!rest) {
    throw new TypeError("watchLeases needs either kubeConfig or rest");
  }
  using client = new KubeRestClient(rest);
  await runLeaseWatch({
    ...opts,
    source: restLeaseSource(client, opts.idleMs),
  });
}
