/**
 * Decoder of `struct gotls_record` (bpf/gotls.h): one HTTP/2 frame header,
 * or more of its payload, seen by the Go TLS uprobes. Offsets mirror the C
 * comments; the test checks them against fixture bytes.
 *
 * @module
 */

/** Bytes of a record before its data (GOTLS_RECORD_HEADER). */
export const GOTLS_RECORD_HEADER = 48;
/** Most data bytes a record carries (GOTLS_CAPTURE_MAX). */
export const GOTLS_CAPTURE_MAX = 256;

/** Byte offsets of the fields of struct gotls_record. */
export const GOTLS_RECORD_OFFSETS = {
  tsNs: 0,
  conn: 8,
  pid: 16,
  seq: 20,
  streamId: 24,
  length: 28,
  offset: 32,
  dataLen: 36,
  kind: 38,
  dir: 39,
  type: 40,
  flags: 41,
  data: 48,
} as const;

/** Indexes of the probe's per-CPU `stats` array (enum gotls_stat). */
export const GOTLS_STATS = [
  "calls",
  "frames",
  "records",
  "synced",
  "desync",
  "overflow",
  "readMiss",
  "unsynced",
] as const;

/** Counters of the probe's work, summed over CPUs. */
export type GoTlsStats = Record<(typeof GOTLS_STATS)[number], number>;

/** What a record reports (enum gotls_kind). */
export type GoTlsKind = "frame" | "payload" | "close";

/** One decoded record. */
export interface GoTlsRecord {
  kind: GoTlsKind;
  /** CLOCK_MONOTONIC ns: a sent frame's Write entry, a received frame's Read return. */
  tsNs: bigint;
  /** Process (tgid). */
  pid: number;
  /** Address of the tls.Conn, hex. */
  conn: string;
  /** `write` (sent by the traced process) or `read` (received). */
  dir: "write" | "read";
  /** Calls seen on this connection and direction when this was reported. */
  seq: number;
  /** Frame type, flags, stream (reserved bit cleared) and payload length. */
  type: number;
  flags: number;
  streamId: number;
  length: number;
  /** Offset of `data` in the frame's payload. */
  offset: number;
  /** The captured payload bytes. */
  data: Uint8Array;
}

const KINDS: Record<number, GoTlsKind> = {
  1: "frame",
  2: "payload",
  3: "close",
};

/** Decodes one record; throws a RangeError when it is malformed. */
export function decodeGoTlsRecord(bytes: Uint8Array): GoTlsRecord {
  if (bytes.length < GOTLS_RECORD_HEADER) {
    throw new RangeError(
      `Go TLS record is ${bytes.length} bytes, expected at least ${GOTLS_RECORD_HEADER}: rebuild bpf/gotls.bpf.o`,
    );
  }
  const o = GOTLS_RECORD_OFFSETS;
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const kind = KINDS[v.getUint8(o.kind)];
  if (kind === undefined) {
    throw new RangeError(
      `Go TLS record has unknown kind ${
        v.getUint8(o.kind)
      }: rebuild bpf/gotls.bpf.o`,
    );
  }
  const dataLen = v.getUint16(o.dataLen, true);
  if (
    dataLen > GOTLS_CAPTURE_MAX || o.data + dataLen > bytes.length
  ) {
    throw new RangeError(
      `Go TLS record claims ${dataLen} data bytes but has ${
        bytes.length - o.data
      }`,
    );
  }
  return {
    kind,
    tsNs: v.getBigUint64(o.tsNs, true),
    pid: v.getUint32(o.pid, true),
    conn: v.getBigUint64(o.conn, true).toString(16),
    dir: v.getUint8(o.dir) === 1 ? "read" : "write",
    seq: v.getUint32(o.seq, true),
    type: v.getUint8(o.type),
    flags: v.getUint8(o.flags),
    streamId: v.getUint32(o.streamId, true) & 0x7fffffff,
    length: v.getUint32(o.length, true),
    offset: v.getUint32(o.offset, true),
    data: bytes.slice(o.data, o.data + dataLen),
  };
}
