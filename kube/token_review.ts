/**
 * Authenticates agents to the leader: each agent sends a projected
 * ServiceAccount token with the Earthworm audience, and the leader asks the
 * API server (TokenReview) who it belongs to. Only Earthworm's own
 * ServiceAccount is accepted. Verdicts are cached briefly by token digest so
 * a report a second does not cost a review a second.
 *
 * @module
 */

import type { Clock } from "../core/clock.ts";
import { systemClock } from "../core/clock.ts";
import type { Authenticator, AuthVerdict } from "../core/wire_types.ts";
import type { KubeRestClient } from "./rest_client.ts";

/** Audience of the tokens agents present. */
export const WIRE_AUDIENCE = "earthworm";

interface TokenReviewStatus {
  authenticated?: boolean;
  user?: { username?: string };
  audiences?: string[];
  error?: string;
}

/** Settings of {@linkcode tokenReviewAuthenticator}. */
export interface TokenReviewOptions {
  /** Usernames allowed, e.g. `system:serviceaccount:earthworm:earthworm`. */
  allowedUsers: string[];
  audience?: string;
  /** How long a verdict is cached. Default 60 s. */
  cacheMs?: number;
  clock?: Clock;
}

async function digest(token: string): Promise<string> {
  const hash = await crypto.subtle.digest(
    "SHA-256",
    new TextEncoder().encode(token),
  );
  return Array.from(
    new Uint8Array(hash),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
}

/** Builds an authenticator backed by the API server's TokenReview. */
export function tokenReviewAuthenticator(
  client: KubeRestClient,
  opts: TokenReviewOptions,
): Authenticator {
  const audience = opts.audience ?? WIRE_AUDIENCE;
  const cacheMs = opts.cacheMs ?? 60_000;
  const clock = opts.clock ?? systemClock;
  const cache = new Map<string, { verdict: AuthVerdict; until: number }>();
  return async (token) => {
    const key = await digest(token);
    const now = clock.now();
    const hit = cache.get(key);
    if (hit && hit.until > now) return hit.verdict;
    let verdict: AuthVerdict;
    try {
      const review = await client.request<{ status?: TokenReviewStatus }>(
        "POST",
        "/apis/authentication.k8s.io/v1/tokenreviews",
        {
          apiVersion: "authentication.k8s.io/v1",
          kind: "TokenReview",
          spec: { token, audiences: [audience] },
        },
      );
      verdict = judge(review.status ?? {}, audience, opts.allowedUsers);
    } catch (err) {
      // Not cached: the API server may be back in a moment.
      return {
        ok: false,
        status: 401,
        error: `Cannot review the token: ${
          err instanceof Error ? err.message : String(err)
        }: retry later`,
      };
    }
    if (cache.size > 1000) cache.clear();
    cache.set(key, { verdict, until: now + cacheMs });
    return verdict;
  };
}

/** Decides a TokenReview status. */
export function judge(
  status: TokenReviewStatus,
  audience: string,
  allowedUsers: string[],
): AuthVerdict {
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
