/**
 * Decoder of `struct wire_event` (bpf/heartbeat.h) and encoder of the
 * `struct wire_tuple` / `struct wire_owner` records user space writes into
 * the tuple map. Offsets mirror the C comments; the test checks them against
 * fixture bytes.
 *
 * @module
 */

import type { RawWireEvent, WireEventKind } from "../core/wire_types.ts";

/** sizeof(struct wire_event). */
export const WIRE_EVENT_SIZE = 136;
/** sizeof(struct wire_tuple). */
export const WIRE_TUPLE_SIZE = 36;
/** sizeof(struct wire_owner). */
export const WIRE_OWNER_SIZE = 32;

/** Byte offsets of the fields of struct wire_event. */
export const WIRE_EVENT_OFFSETS = {
  tsNs: 0,
  cookie: 8,
  startNs: 16,
  firstRxNs: 24,
  lastRxNs: 32,
  bytesSent: 40,
  bytesReceived: 48,
  laddr: 56,
  raddr: 72,
  pid: 88,
  srttUs: 92,
  totalRetrans: 96,
  retrans: 100,
  resets: 104,
  lport: 108,
  rport: 110,
  type: 112,
  origin: 113,
  oldState: 114,
  newState: 115,
  comm: 116,
} as const;

const KINDS: Record<number, WireEventKind> = {
  1: "track",
  2: "exchange",
  3: "retransmit",
  4: "reset",
  5: "state",
};

/** Linux TCP states (include/net/tcp_states.h), by number. */
export const TCP_STATES = [
  "",
  "ESTABLISHED",
  "SYN_SENT",
  "SYN_RECV",
  "FIN_WAIT1",
  "FIN_WAIT2",
  "TIME_WAIT",
  "CLOSE",
  "CLOSE_WAIT",
  "LAST_ACK",
  "LISTEN",
  "CLOSING",
  "NEW_SYN_RECV",
  "BOUND_INACTIVE",
] as const;

/** Formats a 16-byte address (IPv4-mapped shown as dotted IPv4). */
export function formatAddress(b: Uint8Array): string {
  const mapped = b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff &&
    b[11] === 0xff;
  if (mapped) return `${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) {
    groups.push(((b[i]! << 8) | b[i + 1]!).toString(16));
  }
  // Collapse the longest run of zero groups, as inet_ntop does.
  let best = -1, bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== "0") {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === "0") j++;
    if (j - i > bestLen && j - i > 1) [best, bestLen] = [i, j - i];
    i = j;
  }
  const text = best < 0
    ? groups.join(":")
    : `${groups.slice(0, best).join(":")}::${
      groups.slice(best + bestLen).join(":")
    }`;
  return `[${text}]`;
}

function cText(b: Uint8Array): string {
  const end = b.indexOf(0);
  return new TextDecoder().decode(end < 0 ? b : b.subarray(0, end));
}

/** Decodes one record; throws a RangeError when it is shorter than the struct. */
export function decodeWireEvent(bytes: Uint8Array): RawWireEvent {
  if (bytes.length < WIRE_EVENT_SIZE) {
    throw new RangeError(
      `Wire event record is ${bytes.length} bytes, expected ${WIRE_EVENT_SIZE}: rebuild bpf/heartbeat.bpf.o`,
    );
  }
  const o = WIRE_EVENT_OFFSETS;
  const v = new DataView(bytes.buffer, bytes.byteOffset, WIRE_EVENT_SIZE);
  const u64 = (off: number) => v.getBigUint64(off, true);
  const u32 = (off: number) => v.getUint32(off, true);
  const u16 = (off: number) => v.getUint16(off, true);
  const u8 = (off: number) => v.getUint8(off);
  const local = `${formatAddress(bytes.subarray(o.laddr, o.laddr + 16))}:${
    u16(o.lport)
  }`;
  const remote = `${formatAddress(bytes.subarray(o.raddr, o.raddr + 16))}:${
    u16(o.rport)
  }`;
  const kind = KINDS[u8(o.type)];
  if (kind === undefined) {
    throw new RangeError(
      `Wire event has unknown type ${u8(o.type)}: rebuild bpf/heartbeat.bpf.o`,
    );
  }
  const origin = u8(o.origin);
  const state = (n: number) => TCP_STATES[n] ?? String(n);
  return {
    kind,
    tsNs: u64(o.tsNs),
    cookie: u64(o.cookie),
    local,
    remote,
    conn: `${local}->${remote}`,
    pid: u32(o.pid),
    comm: cText(bytes.subarray(o.comm, o.comm + 16)),
    origin: origin === 1 ? "connect" : origin === 2 ? "adopted" : "unknown",
    srttUs: u32(o.srttUs),
    totalRetrans: u32(o.totalRetrans),
    resets: u32(o.resets),
    startNs: u64(o.startNs),
    firstRxNs: u64(o.firstRxNs),
    lastRxNs: u64(o.lastRxNs),
    bytesSent: Number(u64(o.bytesSent)),
    bytesReceived: Number(u64(o.bytesReceived)),
    retrans: u32(o.retrans),
    oldState: kind === "state" ? state(u8(o.oldState)) : "",
    newState: kind === "state" ? state(u8(o.newState)) : "",
    resetDirection: kind !== "reset"
      ? null
      : u8(o.newState) === 1
      ? "sent"
      : "received",
  };
}

/** A connection from the local side: 16-byte addresses, host-order ports. */
export interface WireTuple {
  laddr: Uint8Array;
  lport: number;
  raddr: Uint8Array;
  rport: number;
}

/** Encodes struct wire_tuple (the tuple map's key). */
export function encodeTuple(t: WireTuple): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(WIRE_TUPLE_SIZE);
  out.set(t.laddr.subarray(0, 16), 0);
  out.set(t.raddr.subarray(0, 16), 16);
  const v = new DataView(out.buffer);
  v.setUint16(32, t.lport, true);
  v.setUint16(34, t.rport, true);
  return out;
}

/** Encodes struct wire_owner for a connection not yet seen (cookie 0). */
export function encodeOwner(
  pid: number,
  comm: string,
): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(WIRE_OWNER_SIZE);
  new DataView(out.buffer).setUint32(8, pid, true);
  out.set(new TextEncoder().encode(comm).subarray(0, 15), 12);
  return out;
}
