/**
 * Starts Earthworm's HTTP server on `Deno.serve`.
 *
 * @module
 */

import type { Hono } from "hono";

/** A running server. */
export interface RunningServer {
  /** Base URL, e.g. `http://127.0.0.1:8080`. */
  url: string;
  port: number;
  /** Resolves once the server has shut down. */
  finished: Promise<void>;
}

/** Serves `app` on `host:port` (0 picks a free port) until `signal` aborts. */
export function serveApp(
  app: Hono,
  opts: { host: string; port: number; signal: AbortSignal },
): RunningServer {
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve({
      hostname: opts.host,
      port: opts.port,
      signal: opts.signal,
      onListen: () => {},
      onError: (err) => {
        const message = err instanceof Error ? err.message : String(err);
        return Response.json({ error: `Internal error: ${message}` }, {
          status: 500,
        });
      },
    }, app.fetch);
  } catch (err) {
    if (err instanceof Deno.errors.AddrInUse) {
      throw new Error(
        `Cannot listen on ${opts.host}:${opts.port}: the address is in use: pick another with --port`,
      );
    }
    if (
      err instanceof Deno.errors.AddrNotAvailable ||
      err instanceof Deno.errors.PermissionDenied
    ) {
      throw new Error(
        `Cannot listen on ${opts.host}:${opts.port}: ${err.message}: check --host and --port`,
      );
    }
    if (err instanceof Error && /failed to lookup address/.test(err.message)) {
      throw new Error(
        `Cannot listen on ${opts.host}:${opts.port}: the host name does not resolve: check --host`,
      );
    }
    throw err;
  }
  const host = opts.host.includes(":") ? `[${opts.host}]` : opts.host;
  return {
    url: `http://${host}:${server.addr.port}`,
    port: server.addr.port,
    finished: server.finished,
  };
}
