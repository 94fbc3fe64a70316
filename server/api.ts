/**
 * The HTTP surface of Earthworm as a Hono app: the JSON API, the SSE stream,
 * health and metrics endpoints, and the embedded UI. A follower agent sets
 * `forward` so API calls are handed to the current leader.
 *
 * @module
 */

import { proxy } from "hono/proxy";
import { Hono } from "hono";
import type { Context } from "hono";
import {
  type BeatsResponse,
  type EpisodesResponse,
  type ErrorResponse,
  heartId,
  type HeartKind,
  type HeartsResponse,
} from "../core/api_types.ts";
import { ASSETS } from "./assets.ts";
import type { HeartHub } from "./heart_hub.ts";
import { hubMetrics, type MetricSamples, renderMetrics } from "./metrics.ts";
import type { Authenticator, AuthVerdict } from "../core/wire_types.ts";
import {
  bearerToken,
  MAX_WIRE_BODY_BYTES,
  parseWireReport,
  readWireBody,
  WireReportError,
} from "./wire_ingest.ts";
import {
  DEFAULT_STREAM_OPTIONS,
  parseLastEventId,
  streamHeadResponse,
  type StreamOptions,
  streamResponse,
} from "./sse.ts";
import { isLoopbackHost, SECURITY_HEADERS } from "./http_guard.ts";
import type { ServerEnv } from "./http_server.ts";
import { parseRfc3339 } from "./rfc3339.ts";
import { WireRateLimiter, type WireRateOptions } from "./wire_rate.ts";

/** The app: Hono with the server's per-request facts (the peer's address). */
export type App = Hono<{ Bindings: Partial<ServerEnv> }>;

/** What the app serves. */
export interface AppOptions {
  /**
   * The local hub, or a getter for it (an agent gets a new hub each time it
   * becomes the leader); absent on a follower that only forwards.
   */
  hub?: HeartHub | (() => HeartHub | undefined);
  /** Base URL of the leader when API calls must be handed over; null to serve locally. */
  forward?: () => string | null;
  /** Null when ready, else the reason (shown by /readyz). */
  ready?: () => string | null;
  /** Extra metric families (leader election, wire probe). */
  metrics?: () => MetricSamples;
  /** One metric series per heart (`--per-heart-metrics`). */
  perHeartMetrics?: boolean;
  stream?: Partial<StreamOptions>;
  /** Extra routes mounted before the API (not forwarded to the leader). */
  extend?: (app: App) => void;
  /**
   * Accept agents' wire reports on `POST /api/v1/wire`, checking tokens with
   * this; a follower checks them too before forwarding.
   */
  authenticateAgent?: Authenticator;
  /**
   * Bound on each node's wire reports (default 2 a second, 5 at once);
   * excess reports are answered 429 with `Retry-After`.
   */
  wireRate?: WireRateOptions;
  /**
   * True when the server listens on loopback only: requests must then name
   * a loopback or `localhost` Host (no DNS rebinding).
   */
  loopbackOnly?: boolean;
}

const MAX_LIMIT = 100_000;

type AppContext = Context<{ Bindings: Partial<ServerEnv> }>;

function fail(
  c: AppContext,
  status: 400 | 401 | 403 | 404 | 405 | 413 | 429 | 502 | 503,
  error: string,
): Response {
  return c.json({ error } satisfies ErrorResponse, status);
}

/**
 * The id of heart `namespace/name` of the `cluster` query parameter, or a
 * 400 answer when the parameter does not fit the hub: a hub of several
 * clusters needs it (its hearts' ids are `<cluster>/<namespace>/<name>`),
 * a single-cluster hub takes none.
 */
function heartIdOf(
  c: AppContext,
  hub: HeartHub,
  namespace: string,
  name: string,
): string | Response {
  const cluster = c.req.query("cluster");
  const names = hub.clusterNames;
  if (names.length === 0) {
    if (cluster === undefined) return heartId(namespace, name);
    return fail(
      c,
      400,
      `Parameter "cluster" is given, but Earthworm watches one cluster: leave it out`,
    );
  }
  if (cluster === undefined || !names.includes(cluster)) {
    return fail(
      c,
      400,
      `Parameter "cluster" must name one of the clusters watched (${
        names.map((n) => `"${n}"`).join(", ")
      }), got ${cluster === undefined ? "none" : `"${cluster}"`}`,
    );
  }
  return heartId(namespace, name, cluster);
}

/** The paths served and the methods each takes (others get 405). */
const ROUTES: readonly [path: string, methods: string][] = [
  ["/healthz", "GET, HEAD"],
  ["/readyz", "GET, HEAD"],
  ["/metrics", "GET, HEAD"],
  ["/api/v1/hearts", "GET, HEAD"],
  ["/api/v1/hearts/:namespace/:name", "GET, HEAD"],
  ["/api/v1/hearts/:namespace/:name/beats", "GET, HEAD"],
  ["/api/v1/hearts/:namespace/:name/episodes", "GET, HEAD"],
  ["/api/v1/source/episodes", "GET, HEAD"],
  ["/api/v1/stream", "GET, HEAD"],
  ["/api/v1/wire", "POST"],
];

/** Builds the app. */
export function createApp(opts: AppOptions): App {
  const app: App = new Hono();
  const stream = { ...DEFAULT_STREAM_OPTIONS, ...opts.stream };
  const getHub = typeof opts.hub === "function"
    ? opts.hub
    : () => opts.hub as HeartHub | undefined;
  const wireRate = new WireRateLimiter({
    nodes: () => 2 * (getHub()?.size ?? 0),
    ...opts.wireRate,
  });
  const wireCounts = { accepted: 0, throttled: 0, refused: 0 };

  app.use("*", async (c, next) => {
    const host = c.req.header("host") ?? new URL(c.req.url).host;
    if (opts.loopbackOnly && !isLoopbackHost(host)) {
      c.res = fail(
        c,
        403,
        `Host "${host}" is not served: Earthworm listens on loopback only; open it as http://127.0.0.1:PORT/ or http://localhost:PORT/`,
      );
    } else {
      await next();
    }
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) {
      c.res.headers.set(name, value);
    }
  });

  app.get("/healthz", (c) => c.text("ok\n"));
  app.get("/readyz", (c) => {
    const reason = opts.ready?.() ?? null;
    return reason === null
      ? c.text("ok\n")
      : c.text(`not ready: ${reason}\n`, 503);
  });
  app.get("/metrics", (c) => {
    const hub = getHub();
    const families = [
      ...(hub
        ? hubMetrics(hub, { perHeart: opts.perHeartMetrics === true })
        : []),
      ...(opts.authenticateAgent
        ? [{
          name: "earthworm_wire_reports_total",
          help:
            "Wire reports agents posted to this server: accepted, throttled (429: past the per-node rate, or too many tokens under review) or refused (any other 4xx/5xx).",
          type: "counter" as const,
          samples: Object.entries(wireCounts).map(([result, value]) => ({
            labels: { result },
            value,
          })),
        }]
        : []),
      ...(opts.metrics?.() ?? []),
    ];
    return c.body(renderMetrics(families), 200, {
      "content-type": "text/plain; version=0.0.4; charset=utf-8",
    });
  });

  opts.extend?.(app);

  app.use("/api/*", async (c, next) => {
    const leader = opts.forward?.() ?? null;
    if (leader === null) {
      if (!getHub()) {
        return fail(
          c,
          503,
          "No leader is known yet: wait a few seconds and retry",
        );
      }
      return await next();
    }
    if (
      c.req.method === "POST" && c.req.path === "/api/v1/wire" &&
      opts.authenticateAgent
    ) {
      // Refused here, an unauthenticated report costs the leader nothing.
      const agent = await authenticate(c, opts.authenticateAgent);
      if (agent instanceof Response) return agent;
    }
    return await forward(c, leader);
  });

  app.get("/api/v1/hearts", (c) => {
    const hub = getHub()!;
    const kind = c.req.query("kind");
    if (kind !== undefined && kind !== "node" && kind !== "lease") {
      return fail(
        c,
        400,
        `Parameter "kind" must be "node" or "lease", got "${kind}"`,
      );
    }
    const namespace = c.req.query("namespace");
    const cluster = c.req.query("cluster");
    const now = hub.clock.now();
    let hearts = hub.hearts(now);
    if (kind) hearts = hearts.filter((h) => h.kind === (kind as HeartKind));
    if (namespace) hearts = hearts.filter((h) => h.namespace === namespace);
    if (cluster) hearts = hearts.filter((h) => h.cluster === cluster);
    const body: HeartsResponse = {
      generatedAt: new Date(now).toISOString(),
      source: hub.sourceState(),
      hearts,
    };
    return c.json(body);
  });

  app.get("/api/v1/hearts/:namespace/:name/episodes", (c) => {
    const hub = getHub()!;
    const { namespace, name } = c.req.param();
    const id = heartIdOf(c, hub, namespace, name);
    if (id instanceof Response) return id;
    if (!hub.heart(id)) {
      return fail(
        c,
        404,
        `No heart "${id}": list the hearts with GET /api/v1/hearts`,
      );
    }
    return c.json(
      { episodes: hub.episodes.list(id) } satisfies EpisodesResponse,
    );
  });

  app.get("/api/v1/source/episodes", (c) => {
    const hub = getHub()!;
    const cluster = c.req.query("cluster");
    const names = hub.clusterNames;
    if (cluster !== undefined && !names.includes(cluster)) {
      return fail(
        c,
        400,
        names.length === 0
          ? `Parameter "cluster" is given, but Earthworm watches one cluster: leave it out`
          : `Parameter "cluster" must name one of the clusters watched (${
            names.map((n) => `"${n}"`).join(", ")
          }), got "${cluster}"`,
      );
    }
    return c.json(
      { episodes: hub.sourceEpisodes(cluster) } satisfies EpisodesResponse,
    );
  });

  app.get("/api/v1/hearts/:namespace/:name/beats", (c) => {
    const hub = getHub()!;
    const { namespace, name } = c.req.param();
    const sinceRaw = c.req.query("since");
    const limitRaw = c.req.query("limit");
    let since: number | undefined;
    if (sinceRaw !== undefined) {
      since = parseRfc3339(sinceRaw) ?? undefined;
      if (since === undefined) {
        return fail(
          c,
          400,
          `Parameter "since" must be an RFC 3339 time such as 2026-01-01T00:00:00Z, got "${sinceRaw}"`,
        );
      }
    }
    let limit: number | undefined;
    if (limitRaw !== undefined) {
      limit = Number(limitRaw);
      if (!/^\d+$/.test(limitRaw) || limit < 1 || limit > MAX_LIMIT) {
        return fail(
          c,
          400,
          `Parameter "limit" must be a whole number from 1 to ${MAX_LIMIT}, got "${limitRaw}"`,
        );
      }
    }
    const id = heartIdOf(c, hub, namespace, name);
    if (id instanceof Response) return id;
    const heart = hub.heart(id);
    const beats = hub.beats(id, {
      ...(since !== undefined && { since }),
      ...(limit !== undefined && { limit }),
    });
    if (!heart || !beats) {
      return fail(
        c,
        404,
        `No heart "${id}": list the hearts with GET /api/v1/hearts`,
      );
    }
    return c.json({ heart, beats } satisfies BeatsResponse);
  });

  app.get("/api/v1/hearts/:namespace/:name", (c) => {
    const hub = getHub()!;
    const { namespace, name } = c.req.param();
    const id = heartIdOf(c, hub, namespace, name);
    if (id instanceof Response) return id;
    const heart = hub.heart(id);
    if (!heart) {
      return fail(
        c,
        404,
        `No heart "${id}": list the hearts with GET /api/v1/hearts`,
      );
    }
    return c.json(heart);
  });

  app.get("/api/v1/stream", (c) => {
    // Hono answers HEAD with the GET route: without this, each HEAD would
    // leave a subscription nobody reads.
    if (c.req.method === "HEAD") return streamHeadResponse();
    const id = parseLastEventId(
      c.req.header("last-event-id") ?? c.req.query("lastEventId"),
    );
    return streamResponse(getHub()!, id, stream);
  });

  app.post("/api/v1/wire", async (c) => {
    if (!opts.authenticateAgent) {
      return fail(
        c,
        404,
        "This server takes no wire reports: only an in-cluster leader does",
      );
    }
    const agent = await authenticate(c, opts.authenticateAgent);
    if (agent instanceof Response) {
      if (agent.status === 429) wireCounts.throttled++;
      else wireCounts.refused++;
      return agent;
    }
    const hub = getHub()!;
    const waitMs = wireRate.take(agent.node, hub.clock.now());
    if (waitMs > 0) {
      wireCounts.throttled++;
      // Read, not parsed: the connection stays usable for the next report.
      await drainBody(c.req.raw);
      const seconds = Math.ceil(waitMs / 1000);
      const res = fail(
        c,
        429,
        `Node "${agent.node}" sent more than ${wireRate.perSecond} wire reports a second: hold its exchanges and send them in one batch after ${seconds} s`,
      );
      res.headers.set("retry-after", String(seconds));
      return res;
    }
    try {
      const report = parseWireReport(await readWireBody(c.req.raw));
      if (report.node !== agent.node) {
        wireCounts.refused++;
        return fail(
          c,
          403,
          `The token was issued for node "${agent.node}", not "${report.node}": each agent reports only its own node`,
        );
      }
      hub.wireReport(report.node, report.probe, report.exchanges);
      wireCounts.accepted++;
      return c.body(null, 204);
    } catch (err) {
      if (err instanceof WireReportError) {
        wireCounts.refused++;
        return fail(c, err.status, err.message);
      }
      throw err;
    }
  });

  for (const [path, allow] of ROUTES) {
    app.all(path, (c) => methodNotAllowed(c, allow));
  }

  app.all(
    "/api/*",
    (c) =>
      fail(
        c,
        404,
        `No API route "${c.req.method} ${c.req.path}": see GET /api/v1/hearts`,
      ),
  );

  app.get("*", (c) => {
    const path = c.req.path === "/index.html" ? "/" : c.req.path;
    const asset = ASSETS.get(path) ??
      (path.startsWith("/heart/") ? ASSETS.get("/") : undefined);
    if (!asset) return c.text(`Not found: ${c.req.path}\n`, 404);
    if (c.req.header("if-none-match") === asset.etag) return c.body(null, 304);
    return c.body(asset.body, 200, {
      "content-type": asset.contentType,
      etag: asset.etag,
    });
  });
  app.all("*", (c) => methodNotAllowed(c, "GET, HEAD"));

  return app;
}

function methodNotAllowed(c: AppContext, allow: string): Response {
  const res = fail(
    c,
    405,
    `Method ${c.req.method} is not allowed on ${c.req.path}: use ${allow}`,
  );
  res.headers.set("allow", allow);
  return res;
}

/**
 * Checks an agent's bearer token; the agent's verdict, or the answer that
 * refuses it. Failures are counted against the peer's address.
 */
async function authenticate(
  c: AppContext,
  authenticator: Authenticator,
): Promise<Extract<AuthVerdict, { ok: true }> | Response> {
  const token = bearerToken(c.req.raw);
  if (!token) {
    return fail(
      c,
      401,
      "Missing bearer token: agents send their projected ServiceAccount token",
    );
  }
  const verdict = await authenticator(token, c.env?.remoteAddr);
  if (verdict.ok) return verdict;
  const res = fail(c, verdict.status, verdict.error);
  if (verdict.retryAfterSeconds !== undefined) {
    res.headers.set("retry-after", String(verdict.retryAfterSeconds));
  }
  return res;
}

/**
 * Hands the request to the leader and streams its answer back (SSE
 * included) with Hono's proxy helper, which drops hop-by-hop headers both
 * ways. The request body is streamed too, and cut at the leader's own limit
 * of {@linkcode MAX_WIRE_BODY_BYTES}: a larger one is answered 413 here.
 */
async function forward(c: AppContext, leader: string): Promise<Response> {
  const url = new URL(c.req.path + (new URL(c.req.url).search), leader);
  const declared = Number(c.req.header("content-length") ?? "0");
  if (declared > MAX_WIRE_BODY_BYTES) {
    return fail(
      c,
      413,
      `Body of ${declared} bytes is too large: send at most ${MAX_WIRE_BODY_BYTES}`,
    );
  }
  let tooLarge = false;
  const raw = c.req.raw;
  const body = raw.body?.pipeThrough(
    capped(MAX_WIRE_BODY_BYTES, () => tooLarge = true),
  );
  try {
    const res = await proxy(url, {
      raw,
      ...(body && { body, duplex: "half" }),
      headers: { ...c.req.header(), host: undefined },
      // No request signal: when the client goes away, the server cancels the
      // body we hand back, and that cancels the upstream response (SSE
      // included).
      signal: null,
      redirect: "manual",
    });
    res.headers.set("x-earthworm-served-by", leader);
    return res;
  } catch (err) {
    if (tooLarge) {
      return fail(
        c,
        413,
        `Body is larger than ${MAX_WIRE_BODY_BYTES} bytes: send smaller batches`,
      );
    }
    const message = err instanceof Error ? err.message : String(err);
    return fail(
      c,
      502,
      `Cannot reach the leader at ${leader}: ${message}: retry; a new leader is elected within seconds`,
    );
  }
}

/**
 * Reads a refused report's body to its end (up to the size limit), so the
 * connection can carry the agent's next report instead of being closed.
 */
async function drainBody(req: Request): Promise<void> {
  const reader = req.body?.getReader();
  let size = 0;
  while (reader) {
    const { value, done } = await reader.read();
    if (done) return;
    size += value.length;
    if (size > MAX_WIRE_BODY_BYTES) {
      await reader.cancel();
      return;
    }
  }
}

/** Passes at most `limit` bytes; past that it errors (and calls `onExceeded`). */
function capped(
  limit: number,
  onExceeded: () => void,
): TransformStream<Uint8Array, Uint8Array> {
  let seen = 0;
  return new TransformStream({
    transform(chunk, controller) {
      seen += chunk.byteLength;
      if (seen > limit) {
        onExceeded();
        controller.error(new Error(`request body exceeds ${limit} bytes`));
        return;
      }
      controller.enqueue(chunk);
    },
  });
}
