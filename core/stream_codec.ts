/**
 * The stream's compact encoding (protocol 2, see `api_types.ts`): hearts as
 * rows of numbers, beats as a key, two times and a few numbers, wire
 * exchanges as rows, times relative to the message's `t`. The server encodes
 * with it and the UI decodes with it, so the two cannot drift apart. Pure
 * functions, no imports but the types.
 *
 * @module
 */

import {
  type BatchEntry,
  type Beat,
  type BeatEvent,
  type DiagnosisEvent,
  type Heart,
  type HeartKey,
  type HeartRow,
  type HeartStatus,
  NODE_LEASE_NAMESPACE,
  type SnapshotEvent,
  type SourceState,
  STATUS_CODES,
  type StatusEvent,
  STREAM_PROTOCOL,
  type StreamBatch,
  type StreamSnapshot,
  type WireEvent,
  type WireExchange,
  type WireRow,
  type WireSummary,
} from "./api_types.ts";

const NODE_PREFIX = `${NODE_LEASE_NAMESPACE}/`;

/**
 * A heart's key in the stream: a node Lease's name alone (single cluster),
 * else the id (`<cluster>/<namespace>/<name>` when several clusters are
 * watched, so the key carries the cluster).
 */
export function heartKey(id: string): HeartKey {
  return id.startsWith(NODE_PREFIX) &&
      !id.includes("/", NODE_PREFIX.length)
    ? id.slice(NODE_PREFIX.length)
    : id;
}

/** The heart id a key stands for. */
export function heartIdOf(key: HeartKey): string {
  return key.includes("/") ? key : NODE_PREFIX + key;
}

/** Code of a status in the stream. */
export function statusCode(status: HeartStatus): number {
  return STATUS_CODES.indexOf(status);
}

/** Status of a code in the stream (`unknown` for a code this UI does not know). */
export function statusOf(code: number): HeartStatus {
  return STATUS_CODES[code] ?? "unknown";
}

function ms(iso: string | null): number | null {
  return iso === null ? null : Date.parse(iso);
}

function isoOf(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

function rel(at: number | null, base: number): number | null {
  return at === null ? null : Math.round(at - base);
}

/** Encodes a heart as a row, its times relative to `base` (epoch ms). */
export function encodeHeart(heart: Heart, base: number): HeartRow {
  const observed = ms(heart.lastObservedAt);
  const renew = ms(heart.lastRenewTime);
  const row: HeartRow = [
    heartKey(heart.id),
    statusCode(heart.status),
    heart.holder !== null && heart.holder === heart.name ? 0 : heart.holder,
    rel(observed, base),
    renew === null ? null : Math.round((observed ?? base) - renew),
    heart.leaseDurationSeconds,
    heart.expectedIntervalSeconds,
    heart.lastIntervalSeconds,
    heart.beats,
    heart.transitions,
    heart.leaseTransitions,
  ];
  if (heart.wire || heart.diagnosis) {
    row.push(heart.wire ? encodeWireSummary(heart.wire, base) : 0);
  }
  if (heart.diagnosis) row.push(heart.diagnosis);
  return row;
}

function encodeWireSummary(w: WireSummary, base: number): WireRow {
  return [
    rel(ms(w.lastExchangeAt), base),
    w.lastLatencyMs,
    w.srttUs,
    w.retransmits,
    w.resets,
    w.trouble ? 1 : 0,
  ];
}

/** Decodes a heart row whose times are relative to `base`. */
export function decodeHeart(row: HeartRow, base: number): Heart {
  const [key, code, holder, observedRel, renewLag] = row;
  const id = heartIdOf(key);
  // Namespaces and names never hold a "/": the last two parts are they,
  // and whatever comes before is the cluster (several clusters watched).
  const slash = id.lastIndexOf("/");
  const nsSlash = id.lastIndexOf("/", slash - 1);
  const namespace = id.slice(nsSlash + 1, slash);
  const name = id.slice(slash + 1);
  const observed = observedRel === null ? null : base + observedRel;
  const renew = renewLag === null ? null : (observed ?? base) - renewLag;
  const heart: Heart = {
    id,
    ...(nsSlash >= 0 && { cluster: id.slice(0, nsSlash) }),
    kind: namespace === NODE_LEASE_NAMESPACE ? "node" : "lease",
    namespace,
    name,
    holder: holder === 0 ? name : holder,
    status: statusOf(code),
    lastRenewTime: isoOf(renew),
    lastObservedAt: isoOf(observed),
    leaseDurationSeconds: row[5],
    expectedIntervalSeconds: row[6],
    lastIntervalSeconds: row[7],
    skewSeconds: observed === null || renewLag === null
      ? null
      : renewLag / 1000,
    beats: row[8],
    transitions: row[9],
    leaseTransitions: row[10],
  };
  const wire = row[11];
  if (wire) {
    heart.wire = {
      lastExchangeAt: isoOf(wire[0] === null ? null : base + wire[0]),
      lastLatencyMs: wire[1],
      srttUs: wire[2],
      retransmits: wire[3],
      resets: wire[4],
      trouble: wire[5] === 1,
    };
  }
  if (row[12]) heart.diagnosis = row[12];
  return heart;
}

/** Encodes a snapshot; `t` is the time the rows are relative to. */
export function encodeSnapshot(
  snapshot: SnapshotEvent,
  t: number,
): StreamSnapshot {
  return {
    v: STREAM_PROTOCOL,
    generatedAt: snapshot.generatedAt,
    t,
    source: snapshot.source,
    hearts: snapshot.hearts.map((h) => encodeHeart(h, t)),
  };
}

/** Decodes a snapshot into full hearts. */
export function decodeSnapshot(snapshot: StreamSnapshot): SnapshotEvent {
  return {
    generatedAt: snapshot.generatedAt,
    source: snapshot.source,
    hearts: snapshot.hearts.map((row) => decodeHeart(row, snapshot.t)),
  };
}

/** Encodes a beat of heart `id`, its times relative to `base`. */
export function encodeBeat(
  id: string,
  beat: Beat,
  beats: number,
  base: number,
): BatchEntry {
  const observed = Date.parse(beat.observedAt);
  const entry: BatchEntry = [
    "b",
    heartKey(id),
    Math.round(observed - base),
    Math.round(observed - Date.parse(beat.renewTime)),
    beat.intervalSeconds,
    beats,
  ];
  const latency = beat.wireLatencyMs ?? null;
  if (latency !== null || beat.transition) {
    entry.push(
      latency,
      latency === null ? null : beat.wireConfidence === "exact" ? "e" : "i",
    );
  }
  if (beat.transition) entry.push(1);
  return entry;
}

/** Encodes one wire exchange (or signal), its time relative to `base`. */
export function encodeExchange(x: WireExchange, base: number): BatchEntry {
  const row: unknown[] = [
    "w",
    x.node,
    x.conn,
    Math.round(Date.parse(x.at) - base),
    x.latencyMs,
    x.bytesSent,
    x.bytesReceived,
    x.srttUs,
    x.retransmits,
    x.resets,
    x.confidence === undefined ? null : x.confidence === "exact" ? "e" : "i",
    x.status ?? null,
    x.resourceVersion ?? null,
    x.lease === undefined
      ? null
      : x.lease === NODE_PREFIX + x.node
      ? 0
      : x.lease,
    x.signal ?? null,
  ];
  while (row.length > 10 && row.at(-1) === null) row.pop();
  return row as BatchEntry;
}

function decodeExchange(row: readonly unknown[], base: number): WireExchange {
  const node = row[1] as string;
  const x: WireExchange = {
    node,
    conn: row[2] as string,
    at: new Date(base + (row[3] as number)).toISOString(),
    latencyMs: row[4] as number,
    bytesSent: row[5] as number,
    bytesReceived: row[6] as number,
    srttUs: row[7] as number,
    retransmits: row[8] as number,
    resets: row[9] as number,
  };
  const conf = row[10];
  if (conf === "e") x.confidence = "exact";
  else if (conf === "i") x.confidence = "inferred";
  if (typeof row[11] === "number") x.status = row[11];
  if (typeof row[12] === "string") x.resourceVersion = row[12];
  if (row[13] === 0) x.lease = NODE_PREFIX + node;
  else if (typeof row[13] === "string") x.lease = row[13];
  if (typeof row[14] === "string") {
    x.signal = row[14] as NonNullable<WireExchange["signal"]>;
  }
  return x;
}

/** A decoded beat entry: the beat and the heart's count after it. */
export interface DecodedBeat {
  type: "beat";
  id: string;
  /** The beat; its holder is null (the heart's current holder is the beat's). */
  beat: Beat;
  /** The heart's beat count after this beat. */
  beats: number;
  /** Milliseconds between `observedAt` and `renewTime`. */
  renewLagMs: number;
}

/** One decoded entry of a batch. */
export type DecodedEntry =
  | DecodedBeat
  | { type: "status"; id: string; status: HeartStatus }
  | { type: "heart"; heart: Heart }
  | { type: "deleted"; id: string }
  | { type: "diagnosis"; event: DiagnosisEvent }
  | { type: "source"; source: SourceState }
  | { type: "wire"; exchange: WireExchange };

/** Decodes one entry of a batch whose base time is `base`; null for a tag this code does not know. */
export function decodeEntry(e: BatchEntry, base: number): DecodedEntry | null {
  switch (e[0]) {
    case "b": {
      const observed = base + e[2];
      const latency = e[6];
      const beat: Beat = {
        renewTime: new Date(observed - e[3]).toISOString(),
        observedAt: new Date(observed).toISOString(),
        intervalSeconds: e[4],
        holder: null,
        transition: e[8] === 1,
      };
      if (typeof latency === "number") {
        beat.wireLatencyMs = latency;
        beat.wireConfidence = e[7] === "e" ? "exact" : "inferred";
      }
      return {
        type: "beat",
        id: heartIdOf(e[1]),
        beat,
        beats: e[5],
        renewLagMs: e[3],
      };
    }
    case "s":
      return { type: "status", id: heartIdOf(e[1]), status: statusOf(e[2]) };
    case "h":
      return { type: "heart", heart: decodeHeart(e[1], base) };
    case "x":
      return { type: "deleted", id: heartIdOf(e[1]) };
    case "d":
      return { type: "diagnosis", event: e[1] };
    case "src":
      return { type: "source", source: e[1] };
    case "w":
      return { type: "wire", exchange: decodeExchange(e, base) };
    default:
      return null;
  }
}

/** Decodes every entry of a batch, in order (unknown tags are skipped). */
export function decodeBatch(batch: StreamBatch): DecodedEntry[] {
  const out: DecodedEntry[] = [];
  for (const e of batch.e) {
    const d = decodeEntry(e, batch.t);
    if (d !== null) out.push(d);
  }
  return out;
}

/** `heart` after the decoded beat `d`: its last times, interval and count. */
export function heartAfterBeat(heart: Heart, d: DecodedBeat): Heart {
  return {
    ...heart,
    lastRenewTime: d.beat.renewTime,
    lastObservedAt: d.beat.observedAt,
    lastIntervalSeconds: d.beat.intervalSeconds,
    skewSeconds: d.renewLagMs / 1000,
    beats: d.beats,
  };
}

/**
 * A node's wire summary after exchange `x`, as the server keeps it: the
 * last exchange's time and latency, the last RTT, retransmits and resets
 * added up. Trouble is the server's call: it comes in an `h` entry.
 */
export function wireSummaryAfter(
  summary: WireSummary | undefined,
  x: WireExchange,
): WireSummary | undefined {
  if (x.signal === "pending") return summary;
  const s: WireSummary = summary ? { ...summary } : {
    lastExchangeAt: null,
    lastLatencyMs: null,
    srttUs: null,
    retransmits: 0,
    resets: 0,
    trouble: false,
  };
  if (x.srttUs > 0) s.srttUs = x.srttUs;
  if (x.signal === undefined) {
    s.lastExchangeAt = x.at;
    s.lastLatencyMs = x.latencyMs;
    s.retransmits += x.retransmits;
    s.resets += x.resets;
  }
  return s;
}

/** An event of the stream in full, as a {@linkcode StreamMirror} rebuilds it. */
export type MirroredEvent =
  | { event: "beat"; data: BeatEvent }
  | { event: "status"; data: StatusEvent }
  | { event: "heart"; data: Heart }
  | { event: "source"; data: SourceState }
  | { event: "wire"; data: WireEvent }
  | { event: "diagnosis"; data: DiagnosisEvent };

/**
 * A client's copy of the hearts, kept from the compact stream: it applies
 * snapshots and batches and gives back the events in full (a beat with its
 * heart, a status change with its heart). For tests and tools; the UI
 * keeps its own store with the same decoders.
 */
export class StreamMirror {
  readonly hearts: Map<string, Heart> = new Map();
  source: SourceState | null = null;

  /** Replaces the hearts with a snapshot's; returns it decoded. */
  applySnapshot(snapshot: StreamSnapshot): SnapshotEvent {
    const decoded = decodeSnapshot(snapshot);
    this.hearts.clear();
    for (const h of decoded.hearts) this.hearts.set(h.id, h);
    this.source = decoded.source;
    return decoded;
  }

  /** Applies a batch; returns its events in full, in order. */
  applyBatch(batch: StreamBatch): MirroredEvent[] {
    const out: MirroredEvent[] = [];
    for (const d of decodeBatch(batch)) {
      switch (d.type) {
        case "beat": {
          const before = this.hearts.get(d.id);
          if (before === undefined) break;
          const heart = heartAfterBeat(before, d);
          this.hearts.set(d.id, heart);
          out.push({
            event: "beat",
            data: {
              id: d.id,
              beat: { ...d.beat, holder: heart.holder },
              heart,
            },
          });
          break;
        }
        case "status": {
          const before = this.hearts.get(d.id);
          if (before === undefined) break;
          const heart = { ...before, status: d.status };
          this.hearts.set(d.id, heart);
          out.push({
            event: "status",
            data: {
              id: d.id,
              from: before.status,
              to: d.status,
              heart,
            },
          });
          break;
        }
        case "heart": {
          const before = this.hearts.get(d.heart.id);
          this.hearts.set(d.heart.id, d.heart);
          if (before === undefined || before.status !== d.heart.status) {
            out.push({
              event: "status",
              data: {
                id: d.heart.id,
                from: before?.status ?? null,
                to: d.heart.status,
                heart: d.heart,
              },
            });
          } else out.push({ event: "heart", data: d.heart });
          break;
        }
        case "deleted": {
          const before = this.hearts.get(d.id);
          if (before === undefined) break;
          this.hearts.delete(d.id);
          out.push({
            event: "status",
            data: {
              id: d.id,
              from: before.status,
              to: null,
              heart: before,
            },
          });
          break;
        }
        case "diagnosis": {
          const h = this.hearts.get(d.event.id);
          if (h !== undefined) {
            const heart = { ...h };
            if (d.event.diagnosis) heart.diagnosis = d.event.diagnosis;
            else delete heart.diagnosis;
            this.hearts.set(h.id, heart);
          }
          out.push({ event: "diagnosis", data: d.event });
          break;
        }
        case "source":
          this.source = d.source;
          out.push({ event: "source", data: d.source });
          break;
        case "wire": {
          const id = NODE_PREFIX + d.exchange.node;
          const h = this.hearts.get(id);
          if (h !== undefined) {
            const wire = wireSummaryAfter(h.wire, d.exchange);
            if (wire !== undefined) this.hearts.set(id, { ...h, wire });
          }
          const last = out.at(-1);
          if (last?.event === "wire") last.data.exchanges.push(d.exchange);
          else out.push({ event: "wire", data: { exchanges: [d.exchange] } });
          break;
        }
      }
    }
    return out;
  }
}
