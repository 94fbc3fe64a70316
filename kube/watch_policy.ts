/**
 * The Lease watcher's decisions, as pure functions: how to classify a failed
 * request, how long to back off (capped exponential with jitter), whether
 * to re-watch, relist after `410 Gone`, or report the API server down, and
 * what a liveness read says. The loop in `watch_loop.ts` only acts on them.
 *
 * @module
 */

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

/**
 * The liveness read beside the watch: a watch stream can stay open and
 * silent while the API server is frozen or cut off, so a cheap read every
 * `periodMs` that must answer within `timeoutMs` tells when Earthworm cannot
 * see. A silent server is noticed within `periodMs + timeoutMs`.
 */
export interface LivenessPolicy {
  /** Time from the start of one liveness read to the start of the next. */
  periodMs: number;
  /** Longest a liveness read may take before the API server counts as silent. */
  timeoutMs: number;
}

/** A read a second with a 3 s deadline: a silent API server is noticed within 4 s. */
export const DEFAULT_LIVENESS: LivenessPolicy = {
  periodMs: 1_000,
  timeoutMs: 3_000,
};

/** How one liveness read ended. */
export type PingOutcome =
  | { ok: true }
  | { ok: false; timedOut: true }
  | { ok: false; timedOut: false; error: unknown };

/**
 * What a liveness read says: `silent` with the reason when the API server
 * did not answer in time or could not be reached; otherwise it answered.
 * An answer that is an error (403, 429, 500) still proves the server is
 * there: the watch reports what is wrong with it.
 */
export function judgePing(
  outcome: PingOutcome,
  policy: LivenessPolicy,
): { silent: false } | { silent: true; reason: string } {
  if (outcome.ok) return { silent: false };
  if (outcome.timedOut) {
    return {
      silent: true,
      reason: `the API server did not answer a Lease read within ${
        policy.timeoutMs / 1000
      } s`,
    };
  }
  const f = classifyFailure(outcome.error);
  return f.unreachable ? { silent: true, reason: f.reason } : { silent: false };
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
  /**
   * Set when the watch was ended because Earthworm's view was found behind
   * the API server (a fresh read saw what the watch never delivered): relist.
   */
  stale?: string;
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
 * `410 Gone` or a view found stale forces a relist, at once the first time,
 * with backoff when they repeat without a healthy watch in between.
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
  if (outcome.stale !== undefined) {
    // Like 410: relist at once, with backoff when it repeats.
    const delayMs = gones === 0 ? 0 : backoffDelay(gones - 1, policy, random);
    return {
      next: "list",
      delayMs,
      failures,
      gones: gones + 1,
      down: outcome.stale,
    };
  }
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
