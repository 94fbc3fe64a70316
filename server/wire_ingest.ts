/**
 * `POST /api/v1/wire`: agents hand their wire exchanges (and whether their
 * eBPF probe runs, and why not) to the leader. Requests are authenticated by
 * a bearer token (a projected ServiceAccount token checked by TokenReview in
 * the cluster), size-limited and validated field by field; a bad batch gets a
 * 4xx and never disturbs the leader.
 *
 * @module
 */

import type { WireExchange } from "../core/api_types.ts";
import type { WireReport } from "../core/wire_types.ts";

const SIGNALS = new Set(["pending", "retransmit", "reset", "closed"]);

/** Largest accepted body. */
export const MAX_WIRE_BODY_BYTES = 1 << 20;
/** Most exchanges in one report. */
export const MAX_WIRE_EXCHANGES = 2000;

const NODE_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/** A report that cannot be accepted; `status` is the HTTP status to answer. */
export class WireReportError extends Error {
  override name = "WireReportError";
  constructor(readonly status: 400 | 413, message: string) {
    super(message);
  }
}

function num(v: unknown, path: string, min = 0): number {
  if (typeof v !== "number" || !Number.isFinite(v) || v < min) {
    throw new WireReportError(
      400,
      `${path} must be a number of at least ${min}, got ${JSON.stringify(v)}`,
    );
  }
  return v;
}

function str(v: unknown, path: string, max = 512): string {
  if (typeof v !== "string" || v.length === 0 || v.length > max) {
    throw new WireReportError(
      400,
      `${path} must be a non-empty string of at most ${max} characters`,
    );
  }
  return v;
}

/** Validates a parsed report body; throws {@linkcode WireReportError}. */
export function parseWireReport(body: unknown): WireReport {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new WireReportError(
      400,
      "Body must be a JSON object with node, probe and exchanges",
    );
  }
  const b = body as Record<string, unknown>;
  const node = str(b.node, "node", 253);
  if (!NODE_NAME.test(node)) {
    throw new WireReportError(
      400,
      `node "${node}" is not a Kubernetes node name`,
    );
  }
  const p = b.probe as Record<string, unknown> | undefined;
  if (typeof p !== "object" || p === null || typeof p.available !== "boolean") {
    throw new WireReportError(
      400,
      "probe must be an object with a boolean available",
    );
  }
  const probe: WireReport["probe"] = { available: p.available };
  if (p.reason !== undefined) {
    probe.reason = str(p.reason, "probe.reason", 1024);
  }
  if (p.pairing !== undefined) {
    if (p.pairing !== "exact" && p.pairing !== "inferred") {
      throw new WireReportError(
        400,
        'probe.pairing must be "exact" or "inferred"',
      );
    }
    probe.pairing = p.pairing;
  }
  if (p.pairingReason !== undefined) {
    probe.pairingReason = str(p.pairingReason, "probe.pairingReason", 1024);
  }
  if (!Array.isArray(b.exchanges)) {
    throw new WireReportError(400, "exchanges must be an array");
  }
  if (b.exchanges.length > MAX_WIRE_EXCHANGES) {
    throw new WireReportError(
      413,
      `exchanges holds ${b.exchanges.length} items: send at most ${MAX_WIRE_EXCHANGES}`,
    );
  }
  const exchanges = b.exchanges.map((raw, i): WireExchange => {
    const path = `exchanges[${i}]`;
    if (typeof raw !== "object" || raw === null) {
      throw new WireReportError(400, `${path} must be an object`);
    }
    const e = raw as Record<string, unknown>;
    if (e.node !== node) {
      throw new WireReportError(
        400,
        `${path}.node must be "${node}" like the report`,
      );
    }
    const at = str(e.at, `${path}.at`, 64);
    if (Number.isNaN(Date.parse(at))) {
      throw new WireReportError(400, `${path}.at must be an RFC 3339 time`);
    }
    const x: WireExchange = {
      node,
      conn: str(e.conn, `${path}.conn`, 128),
      at,
      latencyMs: num(e.latencyMs, `${path}.latencyMs`),
      bytesSent: num(e.bytesSent, `${path}.bytesSent`),
      bytesReceived: num(e.bytesReceived, `${path}.bytesReceived`),
      srttUs: num(e.srttUs, `${path}.srttUs`),
      retransmits: num(e.retransmits, `${path}.retransmits`),
      resets: num(e.resets, `${path}.resets`),
    };
    if (e.confidence !== undefined) {
      if (e.confidence !== "exact" && e.confidence !== "inferred") {
        throw new WireReportError(
          400,
          `${path}.confidence must be "exact" or "inferred"`,
        );
      }
      x.confidence = e.confidence;
    }
    if (e.lease !== undefined) x.lease = str(e.lease, `${path}.lease`, 320);
    if (e.signal !== undefined) {
      if (!SIGNALS.has(e.signal as string)) {
        throw new WireReportError(
          400,
          `${path}.signal must be one of ${[...SIGNALS].join(", ")}`,
        );
      }
      x.signal = e.signal as WireExchange["signal"] & string;
    }
    if (e.resourceVersion !== undefined) {
      x.resourceVersion = str(e.resourceVersion, `${path}.resourceVersion`, 64);
    }
    if (e.status !== undefined) {
      const status = num(e.status, `${path}.status`);
      if (!Number.isInteger(status) || status < 100 || status > 599) {
        throw new WireReportError(
          400,
          `${path}.status must be an HTTP status code`,
        );
      }
      x.status = status;
    }
    return x;
  });
  return { node, probe, exchanges };
}

/** Reads at most {@linkcode MAX_WIRE_BODY_BYTES} of a request body as JSON. */
export async function readWireBody(req: Request): Promise<unknown> {
  const declared = Number(req.headers.get("content-length") ?? "0");
  if (declared > MAX_WIRE_BODY_BYTES) {
    throw new WireReportError(
      413,
      `Body of ${declared} bytes is too large: send at most ${MAX_WIRE_BODY_BYTES}`,
    );
  }
  if (!/^application\/json\b/.test(req.headers.get("content-type") ?? "")) {
    throw new WireReportError(400, 'Content-Type must be "application/json"');
  }
  const reader = req.body?.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  while (reader) {
    const { value, done } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > MAX_WIRE_BODY_BYTES) {
      await reader.cancel();
      throw new WireReportError(
        413,
        `Body is larger than ${MAX_WIRE_BODY_BYTES} bytes: send smaller batches`,
      );
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(size);
  let off = 0;
  for (const c of chunks) {
    bytes.set(c, off);
    off += c.length;
  }
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch (err) {
    throw new WireReportError(
      400,
      `Body is not valid JSON: ${
        err instanceof Error ? err.message : String(err)
      }`,
    );
  }
}

/** Extracts the bearer token of a request, or null. */
export function bearerToken(req: Request): string | null {
  const m = /^Bearer\s+(\S+)$/i.exec(req.headers.get("authorization") ?? "");
  return m?.[1] ?? null;
}
