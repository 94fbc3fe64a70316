/**
 * The Lease watcher: list all Leases (or those of the given namespaces), hand
 * the list to the sink as a resync, then watch from the list's
 * resourceVersion. It re-watches from the last resourceVersion seen (bookmarks
 * included) after a normal end, relists after `410 Gone`, and retries every
 * other failure with capped exponential backoff and jitter, reporting the API
 * server unreachable meanwhile. It never gives up until its signal aborts.
 *
 * The decisions (classify, back off, relist or re-watch) are pure functions;
 * the requests go through a {@linkcode LeaseSource} (`agent/kube_client.ts`
 * has the `@kubernetes/client-node` one), so the loop runs on a fake source
 * and a fake clock in unit tests.
 *
 * @module
 */

import type { KubeConfig } from "@kubernetes/client-node";
import type { Lease, LeaseEvent, LeaseSink } from "./lease_types.ts";
import {
  KubeRestClient,
  type RestConfig,
  restConfigFromKubeConfig,
} from "./kube_client.ts";
import { type Clock, systemClock } from "../server/clock.ts";
import { getLogger } from "../server/log.ts";

/** Capped exponential backoff with jitter. */
export interface BackoffPolicy {
  /** First delay in milliseconds. */
  initialMs: number;
  /** Largest delay in milliseconds, jitter included. */
  maxMs: number;
  /** Growth per consecutive failure. */
  factor: number;
  /** Extra random fraction added to each delay (0.5 adds up to 50 %). */
  jitter: number;
}

/** client-go's reflector backoff: 800 ms doubling up to 30 s, full jitter. */
export const DEFAULT_BACKOFF: BackoffPolicy = {
  initialMs: 800,
  maxMs: 30_000,
  factor: 2,
  jitter: 1,
};

/** Delay before retry number `attempt` (0 for the first retry). */
export function backoffDelay(
  attempt: number,
  policy: BackoffPolicy,
  random: () => number,
): number {
  const base = Math.min(
    policy.maxMs,
    policy.initialMs * Math.pow(policy.factor, Math.max(0, attempt)),
  );
  const jittered = base * (1 + policy.jitter * random());
  return Math.min(policy.maxMs, Math.round(jittered));
}

/** What went wrong with a list or watch request. */
export interface Failure {
  /** The resourceVersion is too old (410 Gone / Expired): relist. */
  gone: boolean;
  /** The API server could not be reached or answered that it is unavailable. */
  unreachable: boolean;
  /** HTTP status when the server answered. */
  status?: number;
  /** Human-readable cause for logs and the `source` event. */
  reason: string;
}

const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "UND_ERR_SOCKET",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
  "UND_ERR_CLOSED",
]);

const NETWORK_ERROR_NAMES = new Set([
  "TimeoutError",
  "ConnectionRefused",
  "ConnectionReset",
  "ConnectionAborted",
  "NotConnected",
  "BrokenPipe",
  "TimedOut",
  "UnexpectedEof",
  "Http",
]);

function field(value: unknown, key: string): unknown {
  return typeof value === "object" && value !== null
    ? (value as Record<string, unknown>)[key]
    : undefined;
}

function statusOf(err: unknown): number | undefined {
  for (const key of ["code", "statusCode", "status"]) {
    const v = field(err, key);
    if (typeof v === "number" && v >= 100 && v < 600) return v;
  }
  return undefined;
}

function networkCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let depth = 0; depth < 4 && e !== undefined; depth++) {
    const code = field(e, "code");
    if (typeof code === "string" && NETWORK_CODES.has(code)) return code;
    e = field(e, "cause");
  }
  return undefined;
}

function messageOf(err: unknown): string {
  if (err instanceof Error) {
    const cause = field(err, "cause");
    const detail = cause instanceof Error ? `: ${cause.message}` : "";
    return `${err.message}${detail}`;
  }
  const message = field(err, "message");
  return typeof message === "string" ? message : String(err);
}

/** Classifies an error thrown by a list or watch request. */
export function classifyFailure(err: unknown): Failure {
  const status = statusOf(err);
  const message = messageOf(err);
  if (status === 410 || /too old resource version/i.test(message)) {
    return { gone: true, unreachable: false, status: 410, reason: message };
  }
  if (status !== undefined) {
    return {
      gone: false,
      unreachable: status === 503 || status === 502 || status === 504,
      status,
      reason: status === 401 || status === 403
        ? `HTTP ${status}: ${message}: Earthworm may not list or watch Leases: check its RBAC with kubectl auth can-i watch leases --all-namespaces`
        : `HTTP ${status}: ${message}`,
    };
  }
  const code = networkCode(err);
  const name = field(err, "name");
  // fetch reports every network failure as a TypeError; Deno's own I/O errors
  // carry names like ConnectionReset.
  const unreachable = code !== undefined || err instanceof TypeError ||
    (typeof name === "string" && NETWORK_ERROR_NAMES.has(name));
  return {
    gone: false,
    unreachable,
    reason: code ? `${code}: ${message}` : message,
  };
}

/** How a watch request ended. */
export interface WatchOutcome {
  /** Whether the server accepted the watch (answered 200). */
  opened: boolean;
  /** How long the watch lasted. */
  durationMs: number;
  /** Events and bookmarks it delivered. */
  events: number;
  /** Why it failed; absent when the server ended the stream normally. */
  error?: unknown;
}

/** What the watcher does next. */
export interface Decision extends RetryState {
  /** List again (with a resync) or watch again from the last resourceVersion. */
  next: "list" | "watch";
  /** Milliseconds to wait first. */
  delayMs: number;
  /** Set when the API server must be reported unreachable. */
  down?: string;
}

/** A watch that lasted less than this without delivering anything was not healthy. */
export const MIN_HEALTHY_WATCH_MS = 1_000;

/** Consecutive failures that shape the next delay. */
export interface RetryState {
  /** Failed or unhealthy requests since the last healthy watch or list. */
  failures: number;
  /** Relists forced by 410 since the last healthy watch. */
  gones: number;
}

/**
 * Decides what follows a watch. Like client-go's reflector, a watch that fails
 * because the API server is unreachable is resumed from the last
 * resourceVersion once it is back (the server replays what was missed); only
 * `410 Gone` forces a relist, at once the first time, with backoff when 410s
 * repeat without a healthy watch in between.
 */
export function decideAfterWatch(
  outcome: WatchOutcome,
  state: RetryState,
  policy: BackoffPolicy,
  random: () => number,
): Decision {
  const healthy = outcome.opened &&
    (outcome.events > 0 || outcome.durationMs >= MIN_HEALTHY_WATCH_MS);
  const failures = healthy ? 0 : state.failures;
  const gones = healthy ? 0 : state.gones;
  if (outcome.error === undefined) {
    if (healthy) return { next: "watch", delayMs: 0, failures: 0, gones: 0 };
    return {
      next: "watch",
      delayMs: backoffDelay(failures, policy, random),
      failures: failures + 1,
      gones,
    };
  }
  const f = classifyFailure(outcome.error);
  if (f.gone) {
    const delayMs = gones === 0 ? 0 : backoffDelay(gones - 1, policy, random);
    return { next: "list", delayMs, failures, gones: gones + 1 };
  }
  const decision: Decision = {
    next: "watch",
    delayMs: backoffDelay(failures, policy, random),
    failures: failures + 1,
    gones,
  };
  if (f.unreachable) decision.down = f.reason;
  return decision;
}

/** Decides what follows a failed list: list again after a backoff, source down. */
export function decideAfterListFailure(
  error: unknown,
  state: RetryState,
  policy: BackoffPolicy,
  random: () => number,
): Decision {
  const f = classifyFailure(error);
  return {
    next: "list",
    delayMs: backoffDelay(state.failures, policy, random),
    failures: state.failures + 1,
    gones: state.gones,
    down: f.reason,
  };
}

/**
 * Server-side watch timeout in seconds, spread between `minSeconds` and twice
 * that (client-go's reflector does the same) so watches do not all end together.
 */
export function watchTimeoutSeconds(
  minSeconds: number,
  random: () => number,
): number {
  return Math.floor(minSeconds * (1 + random()));
}

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
        if (!await sleep(clock, d.delayMs, signal)) break;
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
    if (d.delayMs > 0 && !await sleep(clock, d.delayMs, signal)) break;
  }
}

async function sleep(
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
