/**
 * Earthworm's HTTP/1.1 server: Node's `http` module (as Deno implements it)
 * hands each request to the Hono app as a web `Request` and writes the
 * `Response` back as the socket drains.
 *
 * Not `Deno.serve`, because a server must be able to let go of one
 * connection: a stream client that stopped reading is dropped by erroring
 * its response body, and `Deno.serve` can only notice that once the client
 * reads again, holding the socket and its buffers until then. Here an
 * errored body resets the connection at once. Request bodies are streamed
 * with backpressure, never buffered; a response that leaves part of the
 * request unread closes the connection instead of reading the rest. On
 * shutdown, event streams are ended cleanly (their last chunk is sent), other
 * answers get a grace period, and idle connections are closed.
 *
 * @module
 */

import {
  createServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import type { Socket } from "node:net";

/** What the app gets with each request (Hono's `c.env`). */
export interface ServerEnv {
  /** The peer's address, e.g. `10.0.0.7` or `::1`. */
  remoteAddr: string;
}

/** An app that answers requests (a Hono app). */
export interface FetchApp {
  fetch(request: Request, env: ServerEnv): Response | Promise<Response>;
}

/** A running server. */
export interface RunningServer {
  /** Base URL, e.g. `http://127.0.0.1:8080`. */
  url: string;
  port: number;
  /** Open connections. */
  connections(): number;
  /** Resolves once the server has shut down and every connection is closed. */
  finished: Promise<void>;
}

/** Settings of {@linkcode serveApp}. */
export interface ServeOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** Shuts the server down when aborted. */
  signal: AbortSignal;
  /** How long answers other than event streams may take to finish on shutdown. Default 5 s. */
  drainMs?: number;
}

/** Chunks of a request body held before the socket is paused. */
const REQUEST_HIGH_WATER = 64 * 1024;

interface Connection {
  socket: Socket;
  /** Answers being written on it. */
  active: number;
}

/** Serves `app` on `host:port` until `signal` aborts. */
export async function serveApp(
  app: FetchApp,
  opts: ServeOptions,
): Promise<RunningServer> {
  const connections = new Set<Connection>();
  const bySocket = new WeakMap<Socket, Connection>();
  /** Event streams being written: ended at once on shutdown. */
  const streams = new Set<() => void>();
  let closing = false;

  const server: Server = createServer((req, res) => {
    const conn = bySocket.get(req.socket);
    if (conn) conn.active++;
    res.once("close", () => {
      if (!conn) return;
      conn.active--;
      if (closing && conn.active === 0) conn.socket.end();
    });
    if (closing) res.setHeader("connection", "close");
    handle(app, req, res, streams).catch(() => res.destroy());
  });
  server.on("connection", (socket: Socket) => {
    const conn = { socket, active: 0 };
    connections.add(conn);
    bySocket.set(socket, conn);
    socket.once("close", () => connections.delete(conn));
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => reject(listenError(err, opts));
    server.once("error", onError);
    server.listen(opts.port, opts.host, () => {
      server.off("error", onError);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;

  const finished = new Promise<void>((resolve) => {
    const shutdown = () => {
      closing = true;
      server.close(() => resolve());
      for (const end of [...streams]) end();
      for (const c of connections) {
        if (c.active === 0) c.socket.destroy();
      }
      const timer = setTimeout(() => {
        for (const c of connections) c.socket.destroy();
      }, opts.drainMs ?? 5000);
      server.once("close", () => clearTimeout(timer));
    };
    if (opts.signal.aborted) shutdown();
    else opts.signal.addEventListener("abort", shutdown, { once: true });
  });

  const host = opts.host.includes(":") ? `[${opts.host}]` : opts.host;
  return {
    url: `http://${host}:${port}`,
    port,
    connections: () => connections.size,
    finished,
  };
}

function listenError(
  err: Error & { code?: string },
  opts: ServeOptions,
): Error {
  const where = `${opts.host}:${opts.port}`;
  if (err.code === "EADDRINUSE") {
    return new Error(
      `Cannot listen on ${where}: the address is in use: pick another with --port`,
    );
  }
  if (err.code === "EADDRNOTAVAIL" || err.code === "EACCES") {
    return new Error(
      `Cannot listen on ${where}: ${err.message}: check --host and --port`,
    );
  }
  if (err.code === "ENOTFOUND" || err.code === "EAI_AGAIN") {
    return new Error(
      `Cannot listen on ${where}: the host name does not resolve: check --host`,
    );
  }
  return err;
}

/** Answers one request with the app. */
async function handle(
  app: FetchApp,
  req: IncomingMessage,
  res: ServerResponse,
  streams: Set<() => void>,
): Promise<void> {
  const gone = new AbortController();
  res.once("close", () => {
    if (!res.writableFinished) gone.abort();
  });
  let response: Response;
  let hasBody = false;
  try {
    const request = toRequest(req, gone.signal);
    hasBody = request.body !== null;
    response = await app.fetch(request, {
      remoteAddr: req.socket.remoteAddress ?? "unknown",
    });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    response = Response.json({ error: `Internal error: ${message}` }, {
      status: err instanceof BadRequest ? 400 : 500,
    });
  }
  if (res.destroyed) {
    await response.body?.cancel().catch(() => {});
    return;
  }
  res.statusCode = response.status;
  for (const [name, value] of response.headers) {
    if (name === "set-cookie") continue;
    res.setHeader(name, value);
  }
  const cookies = response.headers.getSetCookie();
  if (cookies.length) res.setHeader("set-cookie", cookies);
  // The rest of an unread request body is not worth reading.
  if (hasBody && !req.complete) res.setHeader("connection", "close");
  if (!response.body || req.method === "HEAD") {
    await response.body?.cancel().catch(() => {});
    res.end();
    return;
  }
  await pump(response, res, streams);
}

/** A request that cannot be turned into a web Request. */
class BadRequest extends Error {
  override name = "BadRequest";
}

/** The web Request for `req`; its body streams from the socket with backpressure. */
function toRequest(req: IncomingMessage, signal: AbortSignal): Request {
  // Only the path is taken from the request line; the Host header stays a
  // header, so a malformed one cannot break URL parsing.
  const target = req.url ?? "/";
  const query = target.indexOf("?");
  const url = new URL("http://earthworm.invalid/");
  // Set, not parsed: a target such as `//other.example/x` stays a path.
  url.pathname = query < 0 ? target : target.slice(0, query);
  if (query >= 0) url.search = target.slice(query);
  const headers = new Headers();
  const raw = req.rawHeaders;
  try {
    for (let i = 0; i + 1 < raw.length; i += 2) {
      headers.append(raw[i]!, raw[i + 1]!);
    }
  } catch (err) {
    throw new BadRequest(
      `Bad request header: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  const method = req.method ?? "GET";
  const withBody = method !== "GET" && method !== "HEAD" &&
    (req.headers["content-length"] !== undefined &&
        req.headers["content-length"] !== "0" ||
      req.headers["transfer-encoding"] !== undefined);
  const init: RequestInit & { duplex?: "half" } = { method, headers, signal };
  if (withBody) {
    init.body = new ReadableStream<Uint8Array>({
      start(controller) {
        req.on("data", (chunk: Uint8Array) => {
          controller.enqueue(new Uint8Array(chunk));
          if ((controller.desiredSize ?? 0) <= 0) req.pause();
        });
        req.once("end", () => {
          try {
            controller.close();
          } catch { /* cancelled */ }
        });
        req.once("error", (err) => {
          try {
            controller.error(err);
          } catch { /* cancelled */ }
        });
      },
      pull() {
        req.resume();
      },
      cancel() {
        // Stop reading: the connection closes after the answer.
        req.pause();
      },
    }, {
      highWaterMark: REQUEST_HIGH_WATER,
      size: (chunk) => chunk.byteLength,
    });
    init.duplex = "half";
  }
  return new Request(url, init);
}

/**
 * Writes the body as the socket drains. An errored body resets the
 * connection at once, even while the client is not reading: a client must
 * not take a truncated answer for a whole one, and a stream client that was
 * dropped must not keep its socket and buffers.
 */
async function pump(
  response: Response,
  res: ServerResponse,
  streams: Set<() => void>,
): Promise<void> {
  const reader = response.body!.getReader();
  const failed = reader.closed.then(() => false, () => true);
  const gone = new Promise<void>((r) => res.once("close", r));
  // A client that leaves ends its stream at once, not at the next event.
  gone.then(() => {
    if (!res.writableFinished) reader.cancel().catch(() => {});
  });
  const isStream = /^text\/event-stream\b/.test(
    response.headers.get("content-type") ?? "",
  );
  // On shutdown an event stream ends cleanly, with its last chunk.
  const end = () => reader.cancel().catch(() => {});
  if (isStream) streams.add(end);
  try {
    while (!res.destroyed) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch {
        reset(res);
        return;
      }
      if (chunk.done) {
        res.end();
        return;
      }
      if (res.write(chunk.value)) continue;
      const outcome = await Promise.race([
        new Promise<"drained">((r) => res.once("drain", () => r("drained"))),
        failed.then((f) => f ? "failed" : "drained"),
        gone.then(() => "gone" as const),
      ]);
      if (outcome === "failed") {
        reset(res);
        return;
      }
    }
  } finally {
    streams.delete(end);
    if (res.destroyed) reader.cancel().catch(() => {});
  }
}

/** Drops the connection with a TCP reset, freeing its buffers at once. */
function reset(res: ServerResponse): void {
  const socket = res.socket as
    | (Socket & { resetAndDestroy?: () => void })
    | null;
  if (socket?.resetAndDestroy) socket.resetAndDestroy();
  else res.destroy();
}
