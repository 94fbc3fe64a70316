/**
 * Pairs the HTTP/2 frames a Go client sends and receives (as the Go TLS
 * probe reports them, already cut at frame boundaries) into Lease
 * exchanges: one per request whose body is a Lease, matched with the
 * response on the same stream of the same connection.
 *
 * - A request is a stream the client opens with HEADERS; one without a
 *   body (END_STREAM on HEADERS: a GET or a watch) is dropped at once, and
 *   one whose body does not start as a Lease (protobuf `k8s\0` + TypeMeta
 *   coordination.k8s.io/v1 Lease, or JSON with that kind and apiVersion)
 *   as soon as its first body bytes are in. No HPACK state is kept: the
 *   body names the Lease (namespace, name, the resourceVersion it updates),
 *   which also works on a connection opened before the probe, whose HPACK
 *   dynamic table is unknown. A PUT and a POST of a Lease both count.
 * - The answer is the response HEADERS on that stream: its `:status` is
 *   read from the first header field when it is a static-table entry
 *   (0x88 = 200 ...) or a literal (plain or Huffman digits); a reference
 *   into the dynamic table leaves it unknown (null).
 * - The exchange is reported when the response ends (END_STREAM), or when
 *   the stream is reset, refused by GOAWAY, or its connection closed.
 * - The probe copies a sent body only while it starts like a Lease; a
 *   request whose body came without bytes stays followed, undecided, until
 *   its response ends, and is then dropped.
 *
 * Pure: no I/O, no clock; times come from the records.
 *
 * @module
 */

/** A frame record as the probe reports it (bpf/gotls_event.ts). */
export interface H2Record {
  kind: "frame" | "payload" | "close";
  tsNs: bigint;
  pid: number;
  conn: string;
  dir: "write" | "read";
  type: number;
  flags: number;
  streamId: number;
  length: number;
  offset: number;
  data: Uint8Array;
}

/** One Lease request and its response, from the client's side. */
export interface LeaseExchange {
  pid: number;
  /** The tls.Conn address (hex): one connection. */
  conn: string;
  streamId: number;
  namespace: string;
  name: string;
  /** resourceVersion the request carried (the version it updates), if captured. */
  resourceVersion: string | null;
  encoding: "protobuf" | "json";
  /** CLOCK_MONOTONIC ns: entry of the Write that carried the request HEADERS. */
  startNs: bigint;
  /** Return of the Read that carried the response HEADERS; null if none came. */
  answerNs: bigint | null;
  /**
   * When the stream ended: the return of the Read that carried the
   * response's END_STREAM, or the record of its reset, refusal or
   * connection close; null while it is pending.
   */
  endNs: bigint | null;
  /** HTTP status, or null when unknown (no answer, or an HPACK dynamic reference). */
  status: number | null;
  /** How the stream ended; `pending` while it waits for its answer (reported once). */
  outcome: "answered" | "reset" | "refused" | "closed" | "pending";
  /** RST_STREAM or GOAWAY error code, for `reset` and `refused`. */
  errorCode: number | null;
  /** Frame bytes (9-byte headers included) sent and received on the stream. */
  requestBytes: number;
  responseBytes: number;
}

/** What a request body says about the Lease it writes. */
export interface LeaseMatch {
  namespace: string | null;
  name: string | null;
  resourceVersion: string | null;
  encoding: "protobuf" | "json";
}

/** Settings of {@link H2ExchangeTracker}. */
export interface H2ExchangeOptions {
  /** Only Leases in this namespace; null for every namespace. Default `kube-node-lease`. */
  namespace?: string | null;
  /** Streams followed per connection at most (the oldest go first). Default 256. */
  maxStreams?: number;
}

const DATA = 0x0, HEADERS = 0x1, RST_STREAM = 0x3, GOAWAY = 0x7;
const CONTINUATION = 0x9;
const END_STREAM = 0x1, PADDED = 0x8, PRIORITY = 0x20;
/** Body bytes enough to name the Lease (the probe captures 256). */
const BODY_PREFIX = 256;
const PROTOBUF_MAGIC = [0x6b, 0x38, 0x73, 0x00]; // "k8s\0"
const LEASE_GROUP = "coordination.k8s.io/";

interface Stream {
  id: number;
  startNs: bigint;
  requestBytes: number;
  body: Uint8Array;
  /** The body capture is contiguous so far and may still grow. */
  bodyOpen: boolean;
  /** Captured bytes of the current DATA frame still to come (straddling). */
  bodyGap: number;
  /** The request's END_STREAM was sent. */
  bodyEnded: boolean;
  lease: LeaseMatch | null;
  answerNs: bigint | null;
  status: number | null;
  statusBlock: Uint8Array;
  headersFlags: number;
  responseBytes: number;
  /** Reported once as waiting for its answer. */
  pendingReported?: boolean;
}

interface LastFrame {
  streamId: number;
  type: number;
  next: number;
}

interface Conn {
  streams: Map<number, Stream>;
  last: { write: LastFrame | null; read: LastFrame | null };
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** Follows HTTP/2 streams per connection and reports Lease exchanges. */
export class H2ExchangeTracker {
  #namespace: string | null;
  #maxStreams: number;
  #conns = new Map<string, Conn>();

  constructor(options: H2ExchangeOptions = {}) {
    this.#namespace = options.namespace === undefined
      ? "kube-node-lease"
      : options.namespace;
    this.#maxStreams = options.maxStreams ?? 256;
  }

  /** Streams followed now, over all connections. */
  get pendingStreams(): number {
    let n = 0;
    for (const c of this.#conns.values()) n += c.streams.size;
    return n;
  }

  /**
   * Lease requests sent whole at least `minWaitNs` before `nowNs` and not
   * answered yet (the API server or the network holds them), each reported
   * once, as exchanges with outcome `pending` and no end.
   */
  waiting(nowNs: bigint, minWaitNs: bigint): LeaseExchange[] {
    const out: LeaseExchange[] = [];
    for (const [key, c] of this.#conns) {
      const slash = key.indexOf("/");
      const pid = Number(key.slice(0, slash));
      const conn = key.slice(slash + 1);
      for (const s of c.streams.values()) {
        if (
          !s.lease || !s.bodyEnded || s.answerNs !== null ||
          s.pendingReported ||
          nowNs - s.startNs < minWaitNs
        ) continue;
        s.pendingReported = true;
        out.push({
          pid,
          conn,
          streamId: s.id,
          namespace: s.lease.namespace!,
          name: s.lease.name!,
          resourceVersion: s.lease.resourceVersion,
          encoding: s.lease.encoding,
          startNs: s.startNs,
          answerNs: null,
          endNs: null,
          status: null,
          outcome: "pending",
          errorCode: null,
          requestBytes: s.requestBytes,
          responseBytes: s.responseBytes,
        });
      }
    }
    return out;
  }

  /** Takes one record in time order; returns the exchanges it completes. */
  push(r: H2Record): LeaseExchange[] {
    const key = `${r.pid}/${r.conn}`;
    if (r.kind === "close") {
      const c = this.#conns.get(key);
      this.#conns.delete(key);
      if (!c) return [];
      return this.#finishAll(r, c, [...c.streams.values()], "closed", null);
    }
    let c = this.#conns.get(key);
    if (!c) {
      c = { streams: new Map(), last: { write: null, read: null } };
      this.#conns.set(key, c);
    }
    if (r.kind === "payload") return this.#payload(r, c);
    c.last[r.dir] = { streamId: r.streamId, type: r.type, next: r.data.length };
    return r.dir === "write" ? this.#sent(r, c) : this.#received(r, c);
  }

  #sent(r: H2Record, c: Conn): LeaseExchange[] {
    const bytes = 9 + r.length;
    let s = c.streams.get(r.streamId);
    switch (r.type) {
      case HEADERS:
        if (s) {
          s.requestBytes += bytes; // trailers
          return [];
        }
        if (r.flags & END_STREAM) return []; // no body: not a Lease write
        s = {
          id: r.streamId,
          startNs: r.tsNs,
          requestBytes: bytes,
          body: new Uint8Array(0),
          bodyOpen: true,
          bodyGap: 0,
          bodyEnded: false,
          lease: null,
          answerNs: null,
          status: null,
          statusBlock: new Uint8Array(0),
          headersFlags: 0,
          responseBytes: 0,
        };
        c.streams.set(r.streamId, s);
        this.#bound(c);
        return [];
      case CONTINUATION:
        if (s) s.requestBytes += bytes;
        return [];
      case DATA:
        if (!s) return [];
        s.requestBytes += bytes;
        if (r.flags & END_STREAM) s.bodyEnded = true;
        if (!s.bodyOpen || s.lease) return [];
        if (s.bodyGap > 0) s.bodyOpen = false; // the last frame's rest was lost
        else {
          s.body = concat(s.body, r.data);
          s.bodyGap = Math.min(r.length, BODY_PREFIX) - r.data.length;
        }
        return this.#decide(c, s);
      case RST_STREAM:
        if (!s) return [];
        return this.#finish(r, c, s, "reset", this.#u32(r.data, 0));
      default:
        return [];
    }
  }

  #received(r: H2Record, c: Conn): LeaseExchange[] {
    const s = c.streams.get(r.streamId);
    const bytes = 9 + r.length;
    switch (r.type) {
      case HEADERS:
        if (!s) return [];
        s.responseBytes += bytes;
        if (s.answerNs === null) {
          s.answerNs = r.tsNs;
          s.headersFlags = r.flags;
          s.statusBlock = r.data;
          s.status = decodeStatus(r.data, r.flags);
        }
        return r.flags & END_STREAM
          ? this.#finish(r, c, s, "answered", null)
          : [];
      case CONTINUATION:
      case DATA:
        if (!s) return [];
        s.responseBytes += bytes;
        return r.type === DATA && r.flags & END_STREAM
          ? this.#finish(r, c, s, "answered", null)
          : [];
      case RST_STREAM:
        if (!s) return [];
        return this.#finish(r, c, s, "reset", this.#u32(r.data, 0));
      case GOAWAY: {
        if (r.data.length < 8) return [];
        const last = this.#u32(r.data, 0)! & 0x7fffffff;
        const refused = [...c.streams.values()].filter((x) => x.id > last);
        return this.#finishAll(r, c, refused, "refused", this.#u32(r.data, 4));
      }
      default:
        return [];
    }
  }

  /** More captured payload of the direction's last frame. */
  #payload(r: H2Record, c: Conn): LeaseExchange[] {
    const last = c.last[r.dir];
    if (
      !last || last.streamId !== r.streamId || last.type !== r.type ||
      last.next !== r.offset
    ) {
      return []; // not contiguous with what was seen: leave it
    }
    last.next += r.data.length;
    const s = c.streams.get(r.streamId);
    if (!s) return [];
    if (r.dir === "write" && r.type === DATA && s.bodyOpen && !s.lease) {
      s.body = concat(s.body, r.data);
      s.bodyGap = Math.max(0, s.bodyGap - r.data.length);
      return this.#decide(c, s);
    }
    if (r.dir === "read" && r.type === HEADERS && s.status === null) {
      s.statusBlock = concat(s.statusBlock, r.data);
      s.status = decodeStatus(s.statusBlock, s.headersFlags);
    }
    return [];
  }

  /** Decides whether the stream writes a Lease once enough body is in. */
  #decide(c: Conn, s: Stream): LeaseExchange[] {
    if (s.lease) return [];
    const enough = s.body.length >= BODY_PREFIX || !s.bodyOpen ||
      (s.bodyEnded && s.bodyGap === 0);
    const match = matchLease(s.body);
    if (match && this.#wanted(match)) {
      s.lease = match;
      return [];
    }
    if (match === null && !enough && couldBeLease(s.body)) return [];
    if (match && !enough && match.namespace === null) return [];
    c.streams.delete(s.id); // not a Lease of interest
    return [];
  }

  #wanted(m: LeaseMatch): boolean {
    if (m.name === null || m.namespace === null) return false;
    return this.#namespace === null || m.namespace === this.#namespace;
  }

  #finish(
    r: H2Record,
    c: Conn,
    s: Stream,
    outcome: LeaseExchange["outcome"],
    errorCode: number | null,
  ): LeaseExchange[] {
    c.streams.delete(s.id);
    if (!s.lease) return [];
    return [{
      pid: r.pid,
      conn: r.conn,
      streamId: s.id,
      namespace: s.lease.namespace!,
      name: s.lease.name!,
      resourceVersion: s.lease.resourceVersion,
      encoding: s.lease.encoding,
      startNs: s.startNs,
      answerNs: s.answerNs,
      endNs: r.tsNs,
      status: s.status,
      outcome,
      errorCode,
      requestBytes: s.requestBytes,
      responseBytes: s.responseBytes,
    }];
  }

  #finishAll(
    r: H2Record,
    c: Conn,
    streams: Stream[],
    outcome: LeaseExchange["outcome"],
    errorCode: number | null,
  ): LeaseExchange[] {
    return streams.flatMap((s) => this.#finish(r, c, s, outcome, errorCode));
  }

  /** Forgets the oldest streams beyond the bound (answers the probe missed). */
  #bound(c: Conn): void {
    while (c.streams.size > this.#maxStreams) {
      const oldest = c.streams.keys().next().value!;
      c.streams.delete(oldest);
    }
  }

  #u32(b: Uint8Array, at: number): number | null {
    if (b.length < at + 4) return null;
    return new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(at);
  }
}

/** Whether a body prefix too short to decide could still turn out a Lease. */
function couldBeLease(body: Uint8Array): boolean {
  if (body.length === 0) return true;
  if (body[0] === 0x7b) return true; // "{": JSON, keys may come later
  return PROTOBUF_MAGIC.every((b, i) => i >= body.length || body[i] === b);
}

// ---------------------------------------------------------------------------
// Lease bodies

/** A protobuf field: number, wire type, and its bytes or varint value. */
interface PbField {
  num: number;
  wire: number;
  bytes: Uint8Array | null;
  complete: boolean;
}

function varint(b: Uint8Array, pos: number): [number, number] | null {
  let v = 0;
  for (let shift = 0; shift < 64; shift += 7) {
    const byte = b[pos++];
    if (byte === undefined) return null;
    v += (byte & 0x7f) * 2 ** shift;
    if ((byte & 0x80) === 0) return [v, pos];
  }
  return null;
}

/** The fields of a (possibly truncated) protobuf message, in order. */
function* pbFields(b: Uint8Array): Generator<PbField> {
  let pos = 0;
  while (pos < b.length) {
    const tag = varint(b, pos);
    if (!tag) return;
    pos = tag[1];
    const num = Math.floor(tag[0] / 8), wire = tag[0] % 8;
    if (wire === 0) {
      const v = varint(b, pos);
      if (!v) return;
      pos = v[1];
      yield { num, wire, bytes: null, complete: true };
    } else if (wire === 2) {
      const len = varint(b, pos);
      if (!len) return;
      pos = len[1];
      const end = pos + len[0];
      yield {
        num,
        wire,
        bytes: b.subarray(pos, Math.min(end, b.length)),
        complete: end <= b.length,
      };
      pos = end;
    } else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else return;
  }
}

function pbString(f: PbField): string | null {
  return f.complete && f.bytes ? new TextDecoder().decode(f.bytes) : null;
}

function matchProtobuf(body: Uint8Array): LeaseMatch | null {
  // runtime.Unknown: 1 typeMeta {1 apiVersion, 2 kind}, 2 raw (the object).
  let apiVersion: string | null = null, kind: string | null = null;
  let raw: Uint8Array | null = null;
  for (const f of pbFields(body.subarray(4))) {
    if (f.num === 1 && f.wire === 2 && f.bytes) {
      for (const t of pbFields(f.bytes)) {
        if (t.num === 1) apiVersion = pbString(t);
        if (t.num === 2) kind = pbString(t);
      }
    } else if (f.num === 2 && f.wire === 2 && f.bytes) {
      raw = f.bytes;
      break;
    }
  }
  if (kind !== "Lease" || !apiVersion?.startsWith(LEASE_GROUP)) return null;
  const match: LeaseMatch = {
    namespace: null,
    name: null,
    resourceVersion: null,
    encoding: "protobuf",
  };
  if (!raw) return match;
  for (const f of pbFields(raw)) {
    if (f.num !== 1 || f.wire !== 2 || !f.bytes) continue;
    // ObjectMeta: 1 name, 3 namespace, 6 resourceVersion.
    for (const m of pbFields(f.bytes)) {
      if (m.wire !== 2) continue;
      if (m.num === 1) match.name = pbString(m);
      if (m.num === 3) match.namespace = pbString(m);
      if (m.num === 6) match.resourceVersion = pbString(m);
    }
    break;
  }
  return match;
}

function jsonString(text: string, key: string, from = 0): string | null {
  const re = new RegExp(`"${key}"\\s*:\\s*"((?:[^"\\\\]|\\\\.)*)"`, "g");
  re.lastIndex = from;
  const m = re.exec(text);
  return m ? JSON.parse(`"${m[1]}"`) : null;
}

function matchJson(body: Uint8Array): LeaseMatch | null {
  const text = new TextDecoder().decode(body);
  if (jsonString(text, "kind") !== "Lease") return null;
  if (!jsonString(text, "apiVersion")?.startsWith(LEASE_GROUP)) return null;
  const meta = text.indexOf('"metadata"');
  if (meta < 0) {
    return {
      namespace: null,
      name: null,
      resourceVersion: null,
      encoding: "json",
    };
  }
  return {
    name: jsonString(text, "name", meta),
    namespace: jsonString(text, "namespace", meta),
    resourceVersion: jsonString(text, "resourceVersion", meta),
    encoding: "json",
  };
}

/**
 * Whether a request body (its first bytes) is a Lease, and which: the
 * kubelet's protobuf (`k8s\0` + runtime.Unknown) or JSON. Fields past the
 * captured bytes are null.
 */
export function matchLease(body: Uint8Array): LeaseMatch | null {
  if (PROTOBUF_MAGIC.every((b, i) => body[i] === b)) {
    return matchProtobuf(body);
  }
  if (body[0] === 0x7b) return matchJson(body);
  return null;
}

// ---------------------------------------------------------------------------
// :status

const STATIC_STATUS: Record<number, number> = {
  8: 200,
  9: 204,
  10: 206,
  11: 304,
  12: 400,
  13: 404,
  14: 500,
};

/** HPACK integer with an n-bit prefix at b[pos]; [value, next pos] or null. */
function hpackInt(
  b: Uint8Array,
  pos: number,
  n: number,
): [number, number] | null {
  const first = b[pos];
  if (first === undefined) return null;
  const max = (1 << n) - 1;
  let v = first & max;
  pos++;
  if (v < max) return [v, pos];
  for (let shift = 0; shift < 28; shift += 7) {
    const byte = b[pos++];
    if (byte === undefined) return null;
    v += (byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) return [v, pos];
  }
  return null;
}

/** Huffman codes (RFC 7541, Appendix B) of the digits: [bits, code]. */
const HUFFMAN_DIGITS: [number, number][] = [
  [5, 0x0],
  [5, 0x1],
  [5, 0x2],
  [6, 0x19],
  [6, 0x1a],
  [6, 0x1b],
  [6, 0x1c],
  [6, 0x1d],
  [6, 0x1e],
  [6, 0x1f],
];

/** Decodes a Huffman string of digits; null when it holds anything else. */
function huffmanDigits(b: Uint8Array): string | null {
  let bits = 0, nbits = 0, out = "";
  let i = 0;
  for (;;) {
    while (nbits < 6 && i < b.length) {
      bits = (bits << 8) | b[i++]!;
      nbits += 8;
    }
    if (nbits === 0) return out;
    const digit = HUFFMAN_DIGITS.findIndex(([n, code]) =>
      nbits >= n && ((bits >> (nbits - n)) & ((1 << n) - 1)) === code
    );
    if (digit < 0) {
      // Padding: fewer than 8 bits, all ones (a prefix of EOS).
      const pad = bits & ((1 << nbits) - 1);
      return i === b.length && nbits < 8 && pad === (1 << nbits) - 1
        ? out
        : null;
    }
    out += String(digit);
    nbits -= HUFFMAN_DIGITS[digit]![0];
    bits &= (1 << nbits) - 1;
  }
}

/**
 * The `:status` of a response HEADERS payload (its first bytes), from its
 * first header field; null when it is a dynamic-table reference or is cut.
 */
export function decodeStatus(
  payload: Uint8Array,
  flags: number,
): number | null {
  let pos = 0;
  if (flags & PADDED) pos += 1;
  if (flags & PRIORITY) pos += 5;
  for (;;) {
    const b = payload[pos];
    if (b === undefined) return null;
    if ((b & 0xe0) === 0x20) { // dynamic table size update: skip it
      const n = hpackInt(payload, pos, 5);
      if (!n) return null;
      pos = n[1];
      continue;
    }
    if (b & 0x80) { // indexed field
      const n = hpackInt(payload, pos, 7);
      return n ? STATIC_STATUS[n[0]] ?? null : null;
    }
    const prefix = (b & 0xc0) === 0x40 ? 6 : 4; // with or without indexing
    const name = hpackInt(payload, pos, prefix);
    if (!name || name[0] < 8 || name[0] > 14) return null; // not :status
    pos = name[1];
    const huffman = ((payload[pos] ?? 0) & 0x80) !== 0;
    const len = hpackInt(payload, pos, 7);
    if (!len || len[1] + len[0] > payload.length) return null;
    const raw = payload.subarray(len[1], len[1] + len[0]);
    const text = huffman ? huffmanDigits(raw) : new TextDecoder().decode(raw);
    return text !== null && /^[1-5]\d\d$/.test(text) ? Number(text) : null;
  }
}
