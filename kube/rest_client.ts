/**
 * A small Kubernetes REST client on Deno's `fetch`: JSON requests and
 * line-delimited watch streams with clean cancellation. Where its
 * {@linkcode RestConfig} comes from (the in-cluster ServiceAccount, a plain
 * kubeconfig, or client-node for the rest) is `kubeconfig.ts`'s concern.
 *
 * @module
 */

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
  ): Promise<Response> {
    const headers: Record<string, string> = {
      Accept: "application/json",
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
    const text = await res.text();
    let message = text.slice(0, 300);
    let reason: string | undefined;
    try {
      const status = JSON.parse(text) as { message?: string; reason?: string };
      message = status.message ?? message;
      reason = status.reason;
    } catch {
      // not a Status object: keep the raw text
    }
    throw new KubeApiError(
      res.status,
      `${method} ${path}: HTTP ${res.status}: ${message}`,
      reason,
    );
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
   * GETs a watch stream, calls `onOpen` once the server accepted it and
   * `onLine` with each parsed JSON line. Resolves
   * when the server ends the stream, rejects when it fails, when `onLine`
   * throws, or when nothing (not even a bookmark) arrives for `idleMs`.
   */
  async stream(
    path: string,
    onLine: (value: unknown) => void,
    signal: AbortSignal,
    idleMs: number,
    onOpen?: () => void,
  ): Promise<void> {
    signal.throwIfAborted();
    const ctrl = new AbortController();
    const onAbort = () => ctrl.abort(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        ctrl.abort(
          new DOMException(
            `Watch sent nothing for ${idleMs} ms`,
            "TimeoutError",
          ),
        );
      }, idleMs);
    };
    try {
      arm();
      const res = await this.#fetch("GET", path, undefined, ctrl.signal);
      onOpen?.();
      if (!res.body) return;
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffered = "";
      try {
        while (true) {
          const { value, done } = await reader.read();
          if (done) break;
          arm();
          buffered += value;
          let nl: number;
          while ((nl = buffered.indexOf("\n")) >= 0) {
            const line = buffered.slice(0, nl).trim();
            buffered = buffered.slice(nl + 1);
            if (line) onLine(JSON.parse(line));
          }
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
