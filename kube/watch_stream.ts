/**
 * A watch stream on a connection of its own: HTTP/1.1 over `Deno.connectTls`
 * (or plain TCP), the response read into one reusable buffer and cut into
 * JSON lines, or into length-prefixed frames when the server answers in
 * protobuf (`application/vnd.kubernetes.protobuf;stream=watch`: each event a
 * 4-byte big-endian length and that many bytes). The leader's watch of every Lease receives hundreds of events
 * a second, one HTTP chunk each; through `fetch`, every chunk costs a trip
 * through the body's ReadableStream, about as much CPU as everything the hub
 * does with the event. Here one read takes whatever has arrived, often
 * several events at once.
 *
 * Only the GET of a watch: no proxies (the caller uses `fetch` when one is
 * configured), no compression asked for, no redirects.
 *
 * @module
 */

/** Where to connect and what to send. */
export interface WatchStreamRequest {
  /** Base URL of the API server (`https://host:port[/prefix]`). */
  server: string;
  /** Path and query, appended to the server's. */
  path: string;
  headers: Record<string, string>;
  caCerts?: string[];
  cert?: string;
  key?: string;
  signal: AbortSignal;
  /** The server answered 2xx: the stream is open. */
  onOpen?: () => void;
  /** Each JSON line, parsed. When it throws, the stream ends with that error. */
  onLine: (value: unknown) => void;
  /**
   * Each frame of a protobuf answer, when the request accepts protobuf. The
   * bytes are only valid during the call. When it throws, the stream ends
   * with that error.
   */
  onFrame?: (frame: Uint8Array) => void;
  /** Bytes arrived (for idle limits). */
  onData?: () => void;
}

/** The server answered the watch with a non-2xx status. */
export class WatchHttpError extends Error {
  /** HTTP status. */
  readonly status: number;
  /** The body, as text (at most 64 KiB). */
  readonly body: string;
  constructor(status: number, body: string) {
    super(`HTTP ${status}`);
    this.name = "WatchHttpError";
    this.status = status;
    this.body = body;
  }
}

const CR = 13;
const LF = 10;
const MAX_HEAD = 64 * 1024;
const MAX_ERROR_BODY = 64 * 1024;
/** Largest protobuf watch frame accepted (the API server's own limit is 16 MiB). */
const MAX_FRAME = 16 * 1024 * 1024;
/** Media type of Kubernetes' protobuf encoding (a watch adds `;stream=watch`). */
export const PROTOBUF_MEDIA_TYPE = "application/vnd.kubernetes.protobuf";

/**
 * Environment variables that send requests through a proxy, which `fetch`
 * honours and this client does not.
 */
export function proxyConfigured(): boolean {
  for (
    const name of [
      "HTTPS_PROXY",
      "https_proxy",
      "HTTP_PROXY",
      "http_proxy",
      "ALL_PROXY",
      "all_proxy",
    ]
  ) {
    if (Deno.env.get(name)) return true;
  }
  return false;
}

/**
 * GETs `path` and hands each JSON line of the response to `onLine` (each
 * frame to `onFrame` when the server answers in protobuf); resolves
 * when the server ends the response, rejects on a non-2xx answer
 * ({@linkcode WatchHttpError}), a broken connection, a bad line, or with the
 * signal's reason when it aborts.
 */
export async function watchJsonLines(req: WatchStreamRequest): Promise<void> {
  req.signal.throwIfAborted();
  const url = new URL(req.server);
  const tls = url.protocol === "https:";
  const port = Number(url.port) || (tls ? 443 : 80);
  const hostname = url.hostname.replace(/^\[(.*)\]$/, "$1");
  const conn: Deno.Conn = tls
    ? await Deno.connectTls({
      hostname,
      port,
      ...(req.caCerts && { caCerts: req.caCerts }),
      ...(req.cert && req.key && { cert: req.cert, key: req.key }),
    } as Deno.ConnectTlsOptions)
    : await Deno.connect({ hostname, port });
  const close = () => {
    try {
      conn.close();
    } catch {
      // already closed
    }
  };
  req.signal.addEventListener("abort", close, { once: true });
  try {
    const prefix = url.pathname.replace(/\/$/, "");
    const head = [
      `GET ${prefix}${req.path} HTTP/1.1`,
      `Host: ${url.host}`,
      ...Object.entries(req.headers).map(([k, v]) => `${k}: ${v}`),
      "",
      "",
    ].join("\r\n");
    await writeAll(conn, new TextEncoder().encode(head));
    await readResponse(conn, req);
  } catch (err) {
    throw req.signal.aborted ? req.signal.reason : err;
  } finally {
    req.signal.removeEventListener("abort", close);
    close();
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let off = 0; off < bytes.length;) {
    off += await conn.write(bytes.subarray(off));
  }
}

/** Body framing of the response. */
type Framing =
  | { kind: "chunked" }
  | { kind: "length"; left: number }
  | { kind: "close" };

async function readResponse(
  conn: Deno.Conn,
  req: WatchStreamRequest,
): Promise<void> {
  const buf = new Uint8Array(256 * 1024);
  let filled = 0;
  // The status line and headers.
  let headEnd = -1;
  while (headEnd < 0) {
    const n = await conn.read(buf.subarray(filled));
    if (n === null) {
      throw new Error("The API server closed the connection before answering");
    }
    filled += n;
    headEnd = indexOfHeadEnd(buf, filled);
    if (headEnd < 0 && filled >= MAX_HEAD) {
      throw new Error("The API server's response headers are too long");
    }
  }
  const headText = new TextDecoder().decode(buf.subarray(0, headEnd));
  const [statusLine = "", ...headerLines] = headText.split("\r\n");
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1]);
  if (!status) {
    throw new Error(`Not an HTTP/1.1 response: "${statusLine.slice(0, 80)}"`);
  }
  const headers = new Map<string, string>();
  for (const line of headerLines) {
    const colon = line.indexOf(":");
    if (colon > 0) {
      headers.set(
        line.slice(0, colon).trim().toLowerCase(),
        line.slice(colon + 1).trim(),
      );
    }
  }
  const framing: Framing =
    /\bchunked\b/i.test(headers.get("transfer-encoding") ?? "")
      ? { kind: "chunked" }
      : headers.has("content-length")
      ? { kind: "length", left: Number(headers.get("content-length")) }
      : { kind: "close" };

  const body = new BodyReader(framing);
  const ok = status >= 200 && status < 300;
  let errorText = "";
  const decoder = new TextDecoder();
  let pending = "";
  const frames = ok &&
      (headers.get("content-type") ?? "").startsWith(PROTOBUF_MEDIA_TYPE)
    ? new FrameReader(req.onFrame)
    : undefined;
  const take = (data: Uint8Array) => {
    if (!ok) {
      if (errorText.length < MAX_ERROR_BODY) {
        errorText += decoder.decode(data, { stream: true });
      }
      return;
    }
    if (frames) {
      frames.feed(data);
      return;
    }
    const text = pending + decoder.decode(data, { stream: true });
    let start = 0;
    let nl: number;
    while ((nl = text.indexOf("\n", start)) >= 0) {
      if (nl > start) {
        const line = text.slice(start, nl);
        if (line.trim()) req.onLine(JSON.parse(line));
      }
      start = nl + 1;
    }
    pending = start === 0 ? text : text.slice(start);
  };
  if (ok) req.onOpen?.();
  let done = body.feed(buf.subarray(headEnd + 4, filled), take);
  while (!done) {
    const n = await conn.read(buf);
    if (n === null) {
      if (framing.kind !== "close") {
        throw new Error("The API server closed the watch in the middle of it");
      }
      break;
    }
    req.onData?.();
    done = body.feed(buf.subarray(0, n), take);
  }
  if (!ok) throw new WatchHttpError(status, errorText);
}

function indexOfHeadEnd(buf: Uint8Array, filled: number): number {
  for (let i = 3; i < filled; i++) {
    if (
      buf[i] === LF && buf[i - 1] === CR && buf[i - 2] === LF &&
      buf[i - 3] === CR
    ) return i - 3;
  }
  return -1;
}

/** Cuts a protobuf watch body into its length-prefixed frames. */
class FrameReader {
  readonly #onFrame: (frame: Uint8Array) => void;
  /** Bytes of an incomplete frame carried over to the next read. */
  #carry = new Uint8Array(0);
  #carried = 0;

  constructor(onFrame: ((frame: Uint8Array) => void) | undefined) {
    if (!onFrame) {
      throw new Error(
        "The API server answered the watch in protobuf, which this request did not accept",
      );
    }
    this.#onFrame = onFrame;
  }

  feed(data: Uint8Array): void {
    if (this.#carried > 0) {
      // First complete the frame begun in an earlier read: its length...
      if (this.#carried < 4) data = this.#fill(data, 4);
      if (this.#carried < 4) return;
      // ...then its bytes.
      const total = 4 + frameLength(this.#carry, 0);
      data = this.#fill(data, total);
      if (this.#carried < total) return;
      this.#carried = 0;
      this.#onFrame(this.#carry.subarray(4, total));
    }
    let i = 0;
    while (data.length - i >= 4) {
      const len = frameLength(data, i);
      if (data.length - i - 4 < len) break;
      this.#onFrame(data.subarray(i + 4, i + 4 + len));
      i += 4 + len;
    }
    if (i < data.length) this.#append(data.subarray(i));
  }

  /** Carries bytes of `data` until `size` are carried; returns the rest. */
  #fill(data: Uint8Array, size: number): Uint8Array {
    const n = Math.min(size - this.#carried, data.length);
    this.#append(data.subarray(0, n));
    return data.subarray(n);
  }

  #append(bytes: Uint8Array): void {
    const size = this.#carried + bytes.length;
    if (size > this.#carry.length) {
      const grown = new Uint8Array(
        Math.max(size, 2 * this.#carry.length, 4096),
      );
      grown.set(this.#carry.subarray(0, this.#carried));
      this.#carry = grown;
    }
    this.#carry.set(bytes, this.#carried);
    this.#carried = size;
  }
}

/** The big-endian length at `at`; rejects frames beyond {@linkcode MAX_FRAME}. */
function frameLength(buf: Uint8Array, at: number): number {
  const len = ((buf[at]! << 24) >>> 0) + (buf[at + 1]! << 16) +
    (buf[at + 2]! << 8) + buf[at + 3]!;
  if (len > MAX_FRAME) {
    throw new Error(
      `A protobuf watch frame of ${len} bytes is over the ${MAX_FRAME}-byte limit`,
    );
  }
  return len;
}

/** Undoes the body's framing; hands the payload's bytes to `take`. */
class BodyReader {
  readonly #framing: Framing;
  /** Chunked: bytes left in the current chunk, or -1 while reading a size line. */
  #left = -1;
  /** Chunked: the size line read so far. */
  #sizeLine = "";
  /** Chunked: CR LF bytes still to skip after a chunk's data. */
  #skip = 0;
  #finished = false;

  constructor(framing: Framing) {
    this.#framing = framing;
  }

  /** Feeds received bytes; returns true once the body is complete. */
  feed(bytes: Uint8Array, take: (data: Uint8Array) => void): boolean {
    const f = this.#framing;
    if (f.kind === "close") {
      if (bytes.length > 0) take(bytes);
      return false;
    }
    if (f.kind === "length") {
      const n = Math.min(f.left, bytes.length);
      if (n > 0) take(bytes.subarray(0, n));
      f.left -= n;
      return f.left <= 0;
    }
    let i = 0;
    while (i < bytes.length && !this.#finished) {
      if (this.#skip > 0) {
        const n = Math.min(this.#skip, bytes.length - i);
        this.#skip -= n;
        i += n;
        continue;
      }
      if (this.#left < 0) {
        const lf = bytes.indexOf(LF, i);
        const end = lf < 0 ? bytes.length : lf;
        for (let j = i; j < end; j++) {
          this.#sizeLine += String.fromCharCode(bytes[j]!);
        }
        if (this.#sizeLine.length > 1024) {
          throw new Error("A chunk size line of the watch is too long");
        }
        if (lf < 0) return false;
        i = lf + 1;
        const size = parseInt(this.#sizeLine.split(";")[0]!.trim(), 16);
        this.#sizeLine = "";
        if (!Number.isFinite(size) || size < 0) {
          throw new Error("The watch's chunked encoding is malformed");
        }
        // The last chunk: trailers and the final CR LF are not read.
        if (size === 0) this.#finished = true;
        else this.#left = size;
        continue;
      }
      const n = Math.min(this.#left, bytes.length - i);
      take(bytes.subarray(i, i + n));
      i += n;
      this.#left -= n;
      if (this.#left === 0) {
        this.#left = -1;
        this.#skip = 2;
      }
    }
    return this.#finished;
  }
}
