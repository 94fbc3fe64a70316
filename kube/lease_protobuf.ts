/**
 * Leases in the API server's protobuf encoding
 * (`application/vnd.kubernetes.protobuf`), decoded straight into the JSON
 * shape of `core/lease_types.ts`. The leader's watch of every Lease receives
 * hundreds of events a second; as JSON each is a line of 700–900 bytes that
 * `JSON.parse` turns into some thirty objects, most of them the Lease's
 * `managedFields`. Here one pass over about 450 bytes reads the handful of
 * fields Earthworm uses and steps over the rest by their length.
 *
 * What is decoded (field numbers from `k8s.io/api/coordination/v1` and
 * `k8s.io/apimachinery/pkg/apis/meta/v1` `generated.proto`):
 *
 * - a watch stream frame: `WatchEvent { type = 1; object = 2 (RawExtension
 *   { raw = 1 }) }`, the raw object being `"k8s\0"` + `Unknown { typeMeta
 *   = 1 { apiVersion = 1; kind = 2 }; raw = 2 }`;
 * - `Lease { metadata = 1; spec = 2 }`, `ObjectMeta { name = 1; namespace
 *   = 3; uid = 5; resourceVersion = 6; creationTimestamp = 8 }`, `LeaseSpec
 *   { holderIdentity = 1; leaseDurationSeconds = 2; acquireTime = 3;
 *   renewTime = 4; leaseTransitions = 5 }`, `Time`/`MicroTime { seconds = 1;
 *   nanos = 2 }`;
 * - `LeaseList { metadata = 1 (ListMeta { resourceVersion = 2; continue = 3
 *   }); items = 2 }`;
 * - `Status { message = 3; reason = 4; code = 6 }` (a watch's ERROR event).
 *
 * Times are written as the JSON encoding writes them (RFC 3339 in UTC;
 * `MicroTime` with six fractional digits, `Time` whole seconds), so a renewal
 * read as protobuf compares equal to the same renewal read as JSON.
 *
 * @module
 */

import type { Lease } from "../core/lease_types.ts";
import type { RawWatchEvent } from "../core/lease_source.ts";

/** The bytes that start every protobuf-encoded object: `k8s\0`. */
const MAGIC = [0x6b, 0x38, 0x73, 0x00] as const;

const VARINT = 0;
const FIXED64 = 1;
const BYTES = 2;
const FIXED32 = 5;

/** The input was not the protobuf the decoder expected. */
export class ProtobufError extends Error {
  constructor(message: string) {
    super(`Unreadable protobuf from the API server: ${message}`);
    this.name = "ProtobufError";
  }
}

/** A cursor over one message's bytes: `[pos, end)` of `buf`. */
class Reader {
  buf: Uint8Array;
  pos: number;
  end: number;

  constructor(buf: Uint8Array, pos = 0, end = buf.length) {
    this.buf = buf;
    this.pos = pos;
    this.end = end;
  }

  /** Number of the field whose tag {@linkcode Reader.next} read. */
  field = 0;
  /** Its wire type. */
  wire = 0;

  /** Reads the next field's tag into `field` and `wire`; false at the end. */
  next(): boolean {
    if (this.pos >= this.end) return false;
    const tag = this.varint();
    this.field = Math.floor(tag / 8);
    this.wire = tag & 7;
    return true;
  }

  /** Whether the field read last is number `field` of wire type `wire`. */
  is(field: number, wire: number): boolean {
    return this.field === field && this.wire === wire;
  }

  /** An unsigned varint up to 2^53 (tags, lengths, int32/int64 values). */
  varint(): number {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new ProtobufError("a varint is cut off");
      const b = this.buf[this.pos++]!;
      value += (b & 0x7f) * scale;
      if (b < 0x80) return value;
      scale *= 128;
    }
    throw new ProtobufError("a varint is longer than ten bytes");
  }

  /** A signed int32 (negative ones are sent as ten-byte varints). */
  int32(): number {
    const v = this.varint();
    return v >= 2 ** 31 ? (v % 2 ** 32) - 2 ** 32 : v;
  }

  /**
   * Steps over a length-delimited field; returns where its bytes start
   * (they end at the new `pos`).
   */
  bytes(): number {
    const len = this.varint();
    const start = this.pos;
    if (len > this.end - start) throw new ProtobufError("a field is cut off");
    this.pos = start + len;
    return start;
  }

  /** A nested message's reader. */
  message(): Reader {
    const start = this.bytes();
    return new Reader(this.buf, start, this.pos);
  }

  /** The same, in `into` (a reader reused for messages read at once, such as times). */
  messageInto(into: Reader): Reader {
    const start = this.bytes();
    into.buf = this.buf;
    into.pos = start;
    into.end = this.pos;
    return into;
  }

  string(): string {
    const start = this.bytes();
    return text(this.buf, start, this.pos);
  }

  /**
   * A string that recurs across objects (a watch event's type, a kind, a
   * namespace): the same string each time, not a new one.
   */
  common(): string {
    const start = this.bytes();
    return interned(this.buf, start, this.pos);
  }

  /** Steps over the value of the field read last. */
  skip(): void {
    const wireType = this.wire;
    if (wireType === VARINT) this.varint();
    else if (wireType === BYTES) this.bytes();
    else if (wireType === FIXED64) this.pos += 8;
    else if (wireType === FIXED32) this.pos += 4;
    else throw new ProtobufError(`wire type ${wireType} is not supported`);
    if (this.pos > this.end) throw new ProtobufError("a field is cut off");
  }
}

const utf8 = new TextDecoder();

/**
 * Decodes UTF-8 text. Lease fields are short and ASCII: those are made with
 * one `String.fromCharCode` call, which costs less than a TextDecoder call
 * and gives a flat string (appending characters one by one would leave the
 * names and uids the hub keeps as chains of concatenations).
 */
function text(buf: Uint8Array, start: number, end: number): string {
  const n = end - start;
  if (n > MAX_CHARS) return utf8.decode(buf.subarray(start, end));
  const codes = charCodes(n);
  for (let i = 0; i < n; i++) {
    const b = buf[start + i]!;
    if (b >= 0x80) return utf8.decode(buf.subarray(start, end));
    codes[i] = b;
  }
  return String.fromCharCode.apply(null, codes);
}

/** Longest text made by {@linkcode text} itself, not by a TextDecoder. */
const MAX_CHARS = 256;
/**
 * An array of exactly `n` slots for each length: `fromCharCode.apply` over
 * a plain array passes its elements as they are, where over a typed array
 * (or a subarray view of the frame) it first copies them to the heap.
 */
const charArrays: number[][] = [];

function charCodes(n: number): number[] {
  return charArrays[n] ??= Array.from({ length: n }, () => 0);
}

/** Recurring strings by a hash of their bytes (see {@linkcode Reader.common}). */
const commonStrings: (string | undefined)[] = new Array(256);

/** `text(buf, start, end)`, the same string as last time for the same bytes. */
function interned(buf: Uint8Array, start: number, end: number): string {
  const n = end - start;
  if (n === 0) return "";
  if (n > 64) return text(buf, start, end);
  const slot = (n * 31 + buf[start]! * 7 + buf[end - 1]! +
    buf[start + (n >> 1)]! * 3) & 255;
  const known = commonStrings[slot];
  if (known !== undefined && known.length === n) {
    let same = true;
    for (let i = 0; i < n; i++) {
      if (known.charCodeAt(i) !== buf[start + i]) {
        same = false;
        break;
      }
    }
    if (same) return known;
  }
  const s = text(buf, start, end);
  commonStrings[slot] = s;
  return s;
}

/** The reader of a time being read (times hold no nested messages). */
const timeReader = new Reader(new Uint8Array(0));
let timeSeconds = 0;
let timeNanos = 0;

/** Reads a `Time`/`MicroTime` message into `timeSeconds` and `timeNanos`. */
function timestamp(r: Reader): void {
  const t = r.messageInto(timeReader);
  timeSeconds = 0;
  timeNanos = 0;
  while (t.next()) {
    if (t.is(1, VARINT)) timeSeconds = t.varint();
    else if (t.is(2, VARINT)) timeNanos = t.int32();
    else t.skip();
  }
}

/**
 * Recent seconds already written as text: renewals within a second share
 * theirs, and a Lease's creation time comes again with each of its updates.
 */
const secondsText = new Map<number, string>();
const SECONDS_TEXT_MAX = 16_384;

/** RFC 3339 without the fraction: `2006-01-02T15:04:05`. */
function isoSeconds(seconds: number): string {
  let text = secondsText.get(seconds);
  if (text === undefined) {
    if (secondsText.size >= SECONDS_TEXT_MAX) secondsText.clear();
    text = new Date(seconds * 1000).toISOString().slice(0, 19);
    secondsText.set(seconds, text);
  }
  return text;
}

/**
 * A `MicroTime` as JSON writes it: `2006-01-02T15:04:05.000000Z`, made as
 * one flat string (pieces joined with `+` would be a chain that every
 * reader, `Date.parse` first, copies flat again).
 */
function microTime(r: Reader): string {
  timestamp(r);
  const seconds = isoSeconds(timeSeconds);
  const codes = charCodes(seconds.length + 8);
  let i = 0;
  for (; i < seconds.length; i++) codes[i] = seconds.charCodeAt(i);
  codes[i++] = 0x2e; // "."
  let micros = Math.floor(timeNanos / 1000);
  for (let d = i + 5; d >= i; d--) {
    codes[d] = 0x30 + micros % 10;
    micros = Math.floor(micros / 10);
  }
  codes[i + 6] = 0x5a; // "Z"
  return String.fromCharCode.apply(null, codes);
}

/**
 * A `Time` as JSON writes it: `2006-01-02T15:04:05Z`; undefined for the zero
 * time (an empty message), which JSON writes as null.
 */
function time(r: Reader): string | undefined {
  timestamp(r);
  return timeSeconds === 0 && timeNanos === 0
    ? undefined
    : `${isoSeconds(timeSeconds)}Z`;
}

/**
 * Reads the metadata Earthworm uses. Protobuf writes empty strings that JSON
 * leaves out; they are left out here too, so both decode to the same Lease.
 */
function objectMeta(r: Reader, lease: Lease): void {
  const m = lease.metadata;
  while (r.next()) {
    switch (r.wire === BYTES ? r.field : 0) {
      case 1:
        m.name = r.string();
        break;
      case 3: {
        const ns = r.common();
        if (ns !== "") m.namespace = ns;
        break;
      }
      case 5: {
        const uid = r.string();
        if (uid !== "") m.uid = uid;
        break;
      }
      case 6: {
        const rv = r.string();
        if (rv !== "") m.resourceVersion = rv;
        break;
      }
      case 8: {
        const created = time(r);
        if (created !== undefined) m.creationTimestamp = created;
        break;
      }
      default:
        // managedFields, ownerReferences, labels, annotations...
        r.skip();
    }
  }
}

function leaseSpec(r: Reader): NonNullable<Lease["spec"]> {
  const spec: NonNullable<Lease["spec"]> = {
    holderIdentity: null,
    leaseDurationSeconds: null,
    acquireTime: null,
    renewTime: null,
    leaseTransitions: null,
  };
  while (r.next()) {
    if (r.is(1, BYTES)) spec.holderIdentity = r.string();
    else if (r.is(2, VARINT)) {
      spec.leaseDurationSeconds = r.int32();
    } else if (r.is(3, BYTES)) spec.acquireTime = microTime(r);
    else if (r.is(4, BYTES)) spec.renewTime = microTime(r);
    else if (r.is(5, VARINT)) spec.leaseTransitions = r.int32();
    else r.skip();
  }
  return spec;
}

/**
 * Readers reused for the messages of one Lease and its envelope: decoding
 * is synchronous and never nests a message in one of its own kind, so each
 * kind of message needs one reader, not one per object.
 */
const metaReader = new Reader(new Uint8Array(0));
const specReader = new Reader(new Uint8Array(0));
const frameReader = new Reader(new Uint8Array(0));
const extReader = new Reader(new Uint8Array(0));
const envelopeReader = new Reader(new Uint8Array(0));
const typeMetaReader = new Reader(new Uint8Array(0));
const bodyReader = new Reader(new Uint8Array(0));
const itemReader = new Reader(new Uint8Array(0));

/** Decodes a `Lease` message (without the `k8s\0` envelope). */
function lease(r: Reader, fallbackNamespace: string): Lease {
  const out: Lease = {
    metadata: { name: "", namespace: fallbackNamespace },
  };
  while (r.next()) {
    if (r.is(1, BYTES)) objectMeta(r.messageInto(metaReader), out);
    else if (r.is(2, BYTES)) out.spec = leaseSpec(r.messageInto(specReader));
    else r.skip();
  }
  return out;
}

/** A watch ERROR's `Status`: what `watch_loop.ts` reads of its JSON form. */
function status(
  r: Reader,
): { code?: number; reason?: string; message?: string } {
  const out: { code?: number; reason?: string; message?: string } = {};
  while (r.next()) {
    if (r.is(3, BYTES)) out.message = r.string();
    else if (r.is(4, BYTES)) out.reason = r.string();
    else if (r.is(6, VARINT)) out.code = r.int32();
    else r.skip();
  }
  return out;
}

/**
 * Opens the `k8s\0` + `Unknown` envelope of an object in `[start, end)`:
 * returns its kind, and leaves {@linkcode bodyReader} over its own bytes.
 */
function envelope(buf: Uint8Array, start: number, end: number): string {
  if (
    end - start < MAGIC.length || buf[start] !== MAGIC[0] ||
    buf[start + 1] !== MAGIC[1] || buf[start + 2] !== MAGIC[2] ||
    buf[start + 3] !== MAGIC[3]
  ) {
    throw new ProtobufError("an object does not start with k8s\\0");
  }
  const r = envelopeReader;
  r.buf = buf;
  r.pos = start + MAGIC.length;
  r.end = end;
  let kind = "";
  let body = false;
  let encoding = "";
  while (r.next()) {
    if (r.is(1, BYTES)) {
      const tm = r.messageInto(typeMetaReader);
      while (tm.next()) {
        if (tm.is(2, BYTES)) kind = tm.common();
        else tm.skip();
      }
    } else if (r.is(2, BYTES)) {
      r.messageInto(bodyReader);
      body = true;
    } else if (r.is(3, BYTES)) encoding = r.string();
    else r.skip();
  }
  if (encoding !== "") {
    throw new ProtobufError(`content encoding "${encoding}" is not supported`);
  }
  if (!body) {
    bodyReader.buf = buf;
    bodyReader.pos = end;
    bodyReader.end = end;
  }
  return kind;
}

/**
 * Decodes one frame of a protobuf watch stream (the bytes after its 4-byte
 * length) into the event `watch_loop.ts` reads: Leases in the shape of
 * `core/lease_types.ts`, an ERROR's `Status` as `{ code, reason, message }`.
 * Objects of other kinds come out as `{}`.
 */
export function decodeWatchEvent(
  frame: Uint8Array,
  fallbackNamespace = "",
): RawWatchEvent {
  const r = frameReader;
  r.buf = frame;
  r.pos = 0;
  r.end = frame.length;
  let type = "";
  let object: unknown;
  let isLease = false;
  while (r.next()) {
    if (r.is(1, BYTES)) type = r.common();
    else if (r.is(2, BYTES)) {
      const ext = r.messageInto(extReader);
      while (ext.next()) {
        if (!ext.is(1, BYTES)) {
          ext.skip();
          continue;
        }
        const start = ext.bytes();
        const kind = envelope(frame, start, ext.pos);
        isLease = kind === "Lease";
        if (isLease) object = lease(bodyReader, fallbackNamespace);
        else if (kind === "Status") object = status(bodyReader);
        else object = {};
      }
    } else r.skip();
  }
  if (type === "") throw new ProtobufError("a watch event has no type");
  if (object === undefined) {
    throw new ProtobufError(`a ${type} watch event has no object`);
  }
  return isLease ? { type, object, lease: true } : { type, object };
}

/** A page of Leases: what `rest_lease_source.ts` reads of a LeaseList. */
export interface LeasePage {
  items: Lease[];
  resourceVersion?: string;
  continue?: string;
}

/** Decodes a protobuf `LeaseList` answer (with its `k8s\0` envelope). */
export function decodeLeaseList(
  bytes: Uint8Array,
  fallbackNamespace = "",
): LeasePage {
  const kind = envelope(bytes, 0, bytes.length);
  const body = bodyReader;
  if (kind !== "LeaseList") {
    throw new ProtobufError(`expected a LeaseList, got "${kind}"`);
  }
  const page: LeasePage = { items: [] };
  while (body.next()) {
    if (body.is(1, BYTES)) {
      const meta = body.message();
      while (meta.next()) {
        if (meta.is(2, BYTES)) {
          page.resourceVersion = meta.string();
        } else if (meta.is(3, BYTES)) {
          const cont = meta.string();
          if (cont !== "") page.continue = cont;
        } else meta.skip();
      }
    } else if (body.is(2, BYTES)) {
      page.items.push(lease(body.messageInto(itemReader), fallbackNamespace));
    } else body.skip();
  }
  return page;
}

/** Decodes a protobuf `Lease` answer (with its `k8s\0` envelope). */
export function decodeLease(
  bytes: Uint8Array,
  fallbackNamespace = "",
): Lease {
  const kind = envelope(bytes, 0, bytes.length);
  if (kind !== "Lease") {
    throw new ProtobufError(`expected a Lease, got "${kind}"`);
  }
  return lease(bodyReader, fallbackNamespace);
}
