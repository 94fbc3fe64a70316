/**
 * Authenticates agents to the leader: each agent sends the projected
 * ServiceAccount token of its pod, with the Earthworm audience, and the
 * leader asks the API server (TokenReview) who it belongs to. Only
 * Earthworm's own ServiceAccount is accepted, and only for the node the
 * token was issued for: the node name the API server puts in the review
 * (Kubernetes 1.30+), or else the node of the pod the token is bound to.
 *
 * Verdicts are cached by token digest in a bounded LRU sized for the
 * cluster, for one to two minutes (spread at random, never past the token's
 * expiry), so a token is reviewed about once a minute and a half, not once
 * per report, and garbage cannot push a valid agent out; concurrent reviews
 * of one token are merged; a client whose tokens keep failing is refused
 * without a review until its budget refills; when many unknown tokens arrive at once (every agent meeting a
 * new leader), a few dozen are reviewed at a time and the rest are asked to
 * come back in a few seconds.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import type { Clock } from "../core/clock.ts";
import { systemClock } from "../core/clock.ts";
import { LruMap } from "../core/lru.ts";
import type { Authenticator, AuthVerdict } from "../core/wire_types.ts";
import { KubeApiError, type KubeRestClient } from "./rest_client.ts";

/** Audience of the tokens agents present. */
export const WIRE_AUDIENCE = "earthworm";

/** The review's extra key naming the node a projected token was issued on. */
export const NODE_NAME_EXTRA = "authentication.kubernetes.io/node-name";
/** The review's extra keys naming the pod a projected token is bound to. */
export const POD_NAME_EXTRA = "authentication.kubernetes.io/pod-name";
const POD_UID_EXTRA = "authentication.kubernetes.io/pod-uid";

interface TokenReviewStatus {
  authenticated?: boolean;
  user?: { username?: string; extra?: Record<string, string[]> };
  audiences?: string[];
  error?: string;
}

/** What the authenticator needs of the API client. */
export type ReviewClient = Pick<KubeRestClient, "request">;

/** Settings of {@linkcode tokenReviewAuthenticator}. */
export interface TokenReviewOptions {
  /** Usernames allowed, e.g. `system:serviceaccount:earthworm:earthworm`. */
  allowedUsers: string[];
  audience?: string;
  /**
   * Longest time a verdict is cached. Each is kept for a random time
   * between half of this and all of it, so verdicts issued together (all
   * agents meeting a new leader) are not reviewed again together, and never
   * past the token's own expiry. Default 120 s, as kube-apiserver's webhook
   * token cache.
   */
  cacheMs?: number;
  /** A number in [0, 1) that spreads the verdicts' lifetimes. Default Math.random. */
  random?: () => number;
  /**
   * Verdicts kept, asked at each insertion: about two per node (an agent's
   * token and its successor during rotation). Default 1,024.
   */
  cacheEntries?: () => number;
  /** Failed reviews a client may cause at once. Default 5. */
  failureBurst?: number;
  /** One more failed review per client is allowed after this. Default 10 s. */
  failureRefillMs?: number;
  clock?: Clock;
  /**
   * Tokens under review at once. Past that, a token not yet known is
   * answered 429 with a `Retry-After` of 1-5 s (at random) instead of
   * waiting: when every agent meets a new leader at once, they are let in a
   * few dozen at a time instead of holding thousands of requests (and their
   * memory) open. Default 64.
   */
  maxPendingReviews?: number;
  /** Hears of each TokenReview sent (not of verdicts answered from the cache). */
  onReview?: (verdict: AuthVerdict) => void;
}

/** Fewest verdicts kept, whatever the cluster's size. */
const MIN_CACHE_ENTRIES = 64;
/** Clients whose failure budgets are remembered. */
const MAX_CLIENTS = 4096;

/** The key a token's verdict is cached under (synchronous: one per report). */
function digest(token: string): string {
  return createHash("sha256").update(token).digest("base64");
}

/**
 * The expiry (ms since the epoch) a JWT states, unverified: it only ever
 * shortens how long a verdict the API server gave is kept. Null when the
 * token is not a JWT with a numeric `exp`.
 */
export function tokenExpiry(token: string): number | null {
  const payload = token.split(".")[1];
  if (!payload) return null;
  try {
    const claims = JSON.parse(
      Buffer.from(payload, "base64url").toString("utf8"),
    ) as { exp?: unknown };
    return typeof claims.exp === "number" && Number.isFinite(claims.exp)
      ? claims.exp * 1000
      : null;
  } catch {
    return null;
  }
}

/**
 * Per-client budgets of failed reviews: a token bucket of `burst` failures
 * that refills one every `refillMs`.
 */
class FailureBudgets {
  #buckets = new LruMap<string, { tokens: number; at: number }>(MAX_CLIENTS);
  constructor(
    private readonly burst: number,
    private readonly refillMs: number,
  ) {}

  #bucket(client: string, now: number) {
    const b = this.#buckets.get(client) ?? { tokens: this.burst, at: now };
    const refilled = Math.floor((now - b.at) / this.refillMs);
    if (refilled > 0) {
      b.tokens = Math.min(this.burst, b.tokens + refilled);
      b.at = b.tokens === this.burst ? now : b.at + refilled * this.refillMs;
    }
    return b;
  }

  /** Milliseconds until `client` may cause another review; 0 when it may now. */
  wait(client: string, now: number): number {
    const b = this.#bucket(client, now);
    return b.tokens > 0 ? 0 : b.at + this.refillMs - now;
  }

  /** Counts a failed review against `client`. */
  fail(client: string, now: number): void {
    const b = this.#bucket(client, now);
    b.tokens = Math.max(0, b.tokens - 1);
    this.#buckets.set(client, b);
  }
}

/** Builds an authenticator backed by the API server's TokenReview. */
export function tokenReviewAuthenticator(
  client: ReviewClient,
  opts: TokenReviewOptions,
): Authenticator {
  const audience = opts.audience ?? WIRE_AUDIENCE;
  const cacheMs = opts.cacheMs ?? 120_000;
  const random = opts.random ?? Math.random;
  const maxPending = opts.maxPendingReviews ?? 64;
  const clock = opts.clock ?? systemClock;
  const entries = opts.cacheEntries ?? (() => 1024);
  const cache = new LruMap<string, { verdict: AuthVerdict; until: number }>(
    () => Math.max(MIN_CACHE_ENTRIES, entries()),
  );
  const inflight = new Map<string, Promise<AuthVerdict>>();
  const budgets = new FailureBudgets(
    opts.failureBurst ?? 5,
    opts.failureRefillMs ?? 10_000,
  );

  const review = async (token: string): Promise<AuthVerdict> => {
    let status: TokenReviewStatus;
    try {
      const answer = await client.request<{ status?: TokenReviewStatus }>(
        "POST",
        "/apis/authentication.k8s.io/v1/tokenreviews",
        {
          apiVersion: "authentication.k8s.io/v1",
          kind: "TokenReview",
          spec: { token, audiences: [audience] },
        },
      );
      status = answer.status ?? {};
    } catch (err) {
      return unreachable("review the token", err);
    }
    const user = judge(status, audience, opts.allowedUsers);
    if (!user.ok) return user;
    return await nodeOf(client, user.user, status.user?.extra ?? {});
  };

  return async (token, from = "unknown") => {
    const key = digest(token);
    const hit = cache.get(key);
    if (hit && hit.until > clock.now()) return hit.verdict;
    if (hit) cache.delete(key);
    const waitMs = budgets.wait(from, clock.now());
    if (waitMs > 0) {
      const seconds = Math.ceil(waitMs / 1000);
      return {
        ok: false,
        status: 429,
        error:
          `Too many rejected tokens from ${from}: retry in ${seconds} s with the agent's projected token`,
        retryAfterSeconds: seconds,
      };
    }
    let pending = inflight.get(key);
    // A token whose verdict just expired is known: it is reviewed again
    // at once (those reviews are spread over the cache time anyway).
    if (!pending && !hit && inflight.size >= maxPending) {
      const seconds = 1 + Math.floor(random() * 5);
      return {
        ok: false,
        status: 429,
        error:
          `${inflight.size} agents' tokens are being reviewed: retry in ${seconds} s`,
        retryAfterSeconds: seconds,
      };
    }
    if (!pending) {
      pending = review(token).finally(() => inflight.delete(key));
      inflight.set(key, pending);
      pending.then((verdict) => {
        opts.onReview?.(verdict);
        if (verdict.ok) {
          const now = clock.now();
          const until = Math.min(
            now + cacheMs * (0.5 + random() / 2),
            tokenExpiry(token) ?? Infinity,
          );
          cache.set(key, { verdict, until });
        }
      });
    }
    const verdict = await pending;
    // An API server that cannot be asked is nobody's fault.
    if (!verdict.ok && verdict.status !== 503) budgets.fail(from, clock.now());
    return verdict;
  };
}

/** Decides a TokenReview status: who the token's user is, if allowed. */
export function judge(
  status: TokenReviewStatus,
  audience: string,
  allowedUsers: string[],
): { ok: true; user: string } | Extract<AuthVerdict, { ok: false }> {
  if (!status.authenticated) {
    return {
      ok: false,
      status: 401,
      error: `Token rejected by TokenReview${
        status.error ? `: ${status.error}` : ""
      }: send a projected token with audience "${audience}"`,
    };
  }
  if (status.audiences && !status.audiences.includes(audience)) {
    return {
      ok: false,
      status: 401,
      error: `Token is not for audience "${audience}"`,
    };
  }
  const user = status.user?.username ?? "";
  if (!allowedUsers.includes(user)) {
    return {
      ok: false,
      status: 403,
      error: `Token of "${user}" is not an Earthworm agent's`,
    };
  }
  return { ok: true, user };
}

/**
 * The node a reviewed token was issued for: the review's node name, or the
 * node of the pod the token is bound to (read from the API server, which
 * needs `get pods` in the ServiceAccount's namespace).
 */
async function nodeOf(
  client: ReviewClient,
  user: string,
  extra: Record<string, string[]>,
): Promise<AuthVerdict> {
  const node = extra[NODE_NAME_EXTRA]?.[0];
  if (node) return { ok: true, user, node };
  const podName = extra[POD_NAME_EXTRA]?.[0];
  const podUid = extra[POD_UID_EXTRA]?.[0];
  const namespace = /^system:serviceaccount:([^:]+):/.exec(user)?.[1];
  if (!podName || !namespace) {
    return {
      ok: false,
      status: 403,
      error:
        `Token of "${user}" names no pod or node: agents present their pod's projected ServiceAccount token`,
    };
  }
  const where = `"${namespace}/${podName}"`;
  let pod: { metadata?: { uid?: string }; spec?: { nodeName?: string } };
  try {
    pod = await client.request(
      "GET",
      `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${
        encodeURIComponent(podName)
      }`,
    );
  } catch (err) {
    if (err instanceof KubeApiError && err.code === 404) pod = {};
    else return unreachable(`read the token's pod ${where}`, err);
  }
  if (!pod.metadata || (podUid && pod.metadata.uid !== podUid)) {
    return {
      ok: false,
      status: 403,
      error:
        `Pod ${where} the token was issued for no longer exists: its agent must use its new pod's token`,
    };
  }
  const nodeName = pod.spec?.nodeName;
  if (!nodeName) {
    return {
      ok: false,
      status: 403,
      error: `Pod ${where} is not scheduled on a node yet: retry once it runs`,
    };
  }
  return { ok: true, user, node: nodeName };
}

function unreachable(what: string, err: unknown): AuthVerdict {
  return {
    ok: false,
    status: 503,
    error: `Cannot ${what}: ${
      err instanceof Error ? err.message : String(err)
    }: retry later`,
  };
}
