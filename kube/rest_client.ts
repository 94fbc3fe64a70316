/**
 * A small Kubernetes REST client on Deno's `fetch`: JSON requests, lists
 * in protobuf where the caller can read it, and watch streams (JSON lines,
 * or protobuf frames on a connection of their own) with clean cancellation. Where its
 * {@linkcode RestConfig} comes from (the in-cluster ServiceAccount, a plain
 * kubeconfig, or client-node for the rest) is `kubeconfig.ts`'s concern.
 *
 * @module
 */

import {
  PROTOBUF_MEDIA_TYPE,
  proxyConfigured,
  WatchHttpError,
  watchJsonLines,
} from "./watch_stream.ts";

/** Where and how to reach an API server. */
export interface RestConfig {
  /** Base URL, e.g. `https://127.0.0.1:6443`. */
  server: string;
  /** PEM certificates of the CAs to trust. */
  caCerts?: string[];
  /** PEM client certificate and key (mutual TLS). */
  cert?: string;
  key?: string;
  /** Headers to add to each request (Authorization); called per request. */
  authHeaders?: () => Promise<Record<string, string>>;
}

/** An API request that the server answered with a non-2xx status. */
export class KubeApiError extends Error {
  /** HTTP status. */
  readonly code: number;
  /** The Status object's `reason` (e.g. `Conflict`, `NotFound`), if any. */
  readonly reason: string | undefined;
  constructor(code: number, message: string, reason?: string) {
    super(message);
    this.name = "KubeApiError";
    this.code = code;
    this.reason = reason;
  }
}

/** Why a request to the API server failed, for a log line. */
export interface RequestFailure {
  /** `cannot trust the API server`, `cannot reach the API server`, or `request failed`. */
  summary: string;
  /** The reason, e.g. `invalid peer certificate: CaUsedAsEndEntity`. */
  detail: string;
  /** What to check, when known. */
  fix?: string;
}

/**
 * Says why a request failed. Deno's fetch reports every network failure as
 * `TypeError: fetch failed` and keeps the reason (refused connection, DNS,
 * TLS) in `cause`, wrapped in hyper's and rustls's words; this keeps the
 * reason: `invalid peer certificate: CaUsedAsEndEntity`,
 * `tcp connect error: Connection refused (os error 111)`.
 */
export function describeRequestFailure(err: unknown): RequestFailure {
  if (err instanceof KubeApiError) {
    return { summary: "request failed", detail: err.message };
  }
  const name = err instanceof Error || err instanceof DOMException
    ? err.name
    : "";
  let detail = err instanceof Error || err instanceof DOMException
    ? err.message
    : String(err);
  const cause = err instanceof Error ? err.cause : undefined;
  if (cause instanceof Error && cause.message) {
    detail = cause.message
      .replace(/^error sending request (?:for url|from) .*?\): /, "")
      .replace(/\bclient error \(\w+\): /g, "")
      .replace(/Other\(OtherError\((\w+)\)\)/g, "$1");
  }
  detail = detail.split("\n")[0] ?? "";
  if (/certificate|\btls\b|handshake|x509/i.test(detail)) {
    return {
      summary: "cannot trust the API server",
      detail,
      fix:
        "the CA Earthworm trusts (the kubeconfig's certificate-authority, or the ServiceAccount's ca.crt) must be the CA that signed the API server's certificate",
    };
  }
  if (err instanceof TypeError || name === "TimeoutError" || cause) {
    return {
      summary: "cannot reach the API server",
      detail,
      fix: "check the server address and that the API server is up",
    };
  }
  return { summary: "request failed", detail };
}

/** The KubeApiError of a non-2xx answer, with the Status object's message. */
function apiError(
  method: string,
  path: string,
  code: number,
  text: string,
): KubeApiError {
  let message = text.slice(0, 300);
  let reason: string | undefined;
  try {
    const status = JSON.parse(text) as { message?: string; reason?: string };
    message = status.message ?? message;
    reason = status.reason;
  } catch {
    // not a Status object: keep the raw text
  }
  return new KubeApiError(
    code,
    `${method} ${path}: HTTP ${code}: ${message}`,
    reason,
  );
}

/** What {@linkcode KubeRestClient.stream} does with a watch. */
export interface StreamOptions {
  /** Each JSON line of the answer, parsed. */
  onLine: (value: unknown) => void;
  /**
   * Each frame of a protobuf answer (bytes valid only during the call);
   * given, a stream on its own connection asks for protobuf first.
   */
  onFrame?: (frame: Uint8Array) => void;
  signal: AbortSignal;
  /** The stream fails when nothing arrives for this long. */
  idleMs: number;
  /** The server accepted the watch. */
  onOpen?: () => void;
  /** Read on a connection of its own, without `fetch`. */
  ownConnection?: boolean;
}

/** JSON over HTTPS to one API server. Close it when done. */
export class KubeRestClient implements Disposable {
  readonly #config: RestConfig;
  readonly #http: Deno.HttpClient;

  /** Opens a connection pool for `config`. */
  constructor(config: RestConfig) {
    this.#config = config;
    const tls: Deno.CreateHttpClientOptions & Partial<Deno.TlsCertifiedKeyPem> =
      {};
    if (config.caCerts) tls.caCerts = config.caCerts;
    if (config.cert && config.key) {
      tls.cert = config.cert;
      tls.key = config.key;
    }
    this.#http = Deno.createHttpClient(tls as Deno.CreateHttpClientOptions);
  }

  /** The API server's base URL. */
  get server(): string {
    return this.#config.server;
  }

  async #fetch(
    method: string,
    path: string,
    body: unknown,
    signal: AbortSignal | undefined,
    accept = "application/json",
  ): Promise<Response> {
    const headers: Record<string, string> = {
      Accept: accept,
      ...(await this.#config.authHeaders?.()),
    };
    const init: RequestInit & { client: Deno.HttpClient } = {
      method,
      headers,
      client: this.#http,
    };
    if (signal) init.signal = signal;
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const res = await fetch(this.#config.server + path, init);
    if (res.ok) return res;
    throw apiError(method, path, res.status, await res.text());
  }

  /** Sends a request and returns the parsed JSON body; throws KubeApiError on non-2xx. */
  async request<T = unknown>(
    method: "GET" | "POST" | "PUT" | "DELETE",
    path: string,
    body?: unknown,
    signal?: AbortSignal,
  ): Promise<T> {
    const res = await this.#fetch(method, path, body, signal);
    return await res.json() as T;
  }

  /**
   * GETs `path` accepting protobuf first: the answer's bytes when the server
   * sent protobuf, else its parsed JSON (not every resource has a protobuf
   * encoding). Throws KubeApiError on non-2xx.
   */
  async getProtobufOrJson(
    path: string,
    signal?: AbortSignal,
  ): Promise<{ protobuf: Uint8Array } | { json: unknown }> {
    const res = await this.#fetch(
      "GET",
      path,
      undefined,
      signal,
      `${PROTOBUF_MEDIA_TYPE}, application/json`,
    );
    if (
      (res.headers.get("content-type") ?? "").startsWith(PROTOBUF_MEDIA_TYPE)
    ) {
      return { protobuf: new Uint8Array(await res.arrayBuffer()) };
    }
    return { json: await res.json() };
  }

  /**
   * GETs a watch stream, calls `onOpen` once the server accepted it and
   * `onLine` with each parsed JSON line. Resolves
   * when the server ends the stream, rejects when it fails, when `onLine`
   * throws, or when nothing (not even a bookmark) arrives for `idleMs`.
   * With `ownConnection`, the stream gets a connection of its own, read
   * without `fetch` (`watch_stream.ts`): cheaper for a busy stream; ignored
   * when a proxy is configured. Such a stream with `onFrame` also accepts
   * protobuf, and a protobuf answer's frames go to `onFrame` (JSON lines
   * still go to `onLine`: the server picks).
   */
  async stream(path: string, opts: StreamOptions): Promise<void> {
    const { onLine, onFrame, signal, idleMs, onOpen } = opts;
    signal.throwIfAborted();
    const ctrl = new AbortController();
    const onAbort = () => ctrl.abort(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    // One timer that looks at the time of the last chunk when it fires,
    // instead of a timer re-armed for every chunk of a busy stream.
    let last = performance.now();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const check = () => {
      const quiet = performance.now() - last;
      if (quiet < idleMs) {
        timer = setTimeout(check, idleMs - quiet);
        return;
      }
      ctrl.abort(
        new DOMException(`Watch sent nothing for ${idleMs} ms`, "TimeoutError"),
      );
    };
    try {
      timer = setTimeout(check, idleMs);
      if (opts.ownConnection && !proxyConfigured()) {
        const c = this.#config;
        try {
          await watchJsonLines({
            server: c.server,
            path,
            headers: {
              Accept: onFrame
                ? `${PROTOBUF_MEDIA_TYPE}, application/json`
                : "application/json",
              ...(await c.authHeaders?.()),
            },
            ...(c.caCerts && { caCerts: c.caCerts }),
            ...(c.cert && c.key && { cert: c.cert, key: c.key }),
            signal: ctrl.signal,
            ...(onOpen && { onOpen }),
            ...(onFrame && { onFrame }),
            onLine,
            onData: () => last = performance.now(),
          });
        } catch (err) {
          if (err instanceof WatchHttpError) {
            throw apiError("GET", path, err.status, err.body);
          }
          throw err;
        }
        return;
      }
      const res = await this.#fetch("GET", path, undefined, ctrl.signal);
      onOpen?.();
      if (!res.body) return;
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      let buffered = "";
      try {
        while (true) {
          const { value, done } = await reader.read();
          if (done) break;
          last = performance.now();
          // Chunks are decoded whole (a character split between two
          // waits for the next) and cut at newlines: one line, one object.
          const text = buffered + decoder.decode(value, { stream: true });
          let start = 0;
          let nl: number;
          while ((nl = text.indexOf("\n", start)) >= 0) {
            if (nl > start) {
              const line = text.slice(start, nl);
              if (line.trim()) onLine(JSON.parse(line));
            }
            start = nl + 1;
          }
          buffered = start === 0 ? text : text.slice(start);
        }
      } finally {
        await reader.cancel().catch(() => {});
      }
    } catch (err) {
      throw ctrl.signal.aborted && ctrl.signal.reason !== undefined
        ? ctrl.signal.reason
        : err;
    } finally {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
    }
  }

  /** Closes the connection pool. */
  close(): void {
    this.#http.close();
  }

  /** Same as {@linkcode KubeRestClient.close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}
