/**
 * The UI's model of the cluster: hearts by id, a short recent beat history
 * per heart for the cardiograms, wire exchanges per node, the source and the
 * connection state. The SSE stream's compact snapshots and batches (decoded
 * with `core/stream_codec.ts`) and responses of the REST API are applied
 * here; no I/O. The server's statuses are shown only while its
 * stream is heard from: after {@linkcode STREAM_STALE_AFTER_MS} without a
 * word, every heart reads `unknown`, with the reason.
 *
 * @module
 */

import {
  type Beat,
  type BeatEvent,
  type DiagnosisEvent,
  type Episode,
  type Heart,
  type HeartStatus,
  NODE_LEASE_NAMESPACE,
  type PingEvent,
  type SnapshotEvent,
  type SourceState,
  type StatusEvent,
  STREAM_PING_MS,
  type StreamBatch,
  type StreamSnapshot,
  type WireEvent,
  type WireExchange,
} from "../core/api_types.ts";
import {
  decodeBatch,
  decodeSnapshot,
  heartAfterBeat,
  wireSummaryAfter,
} from "../core/stream_codec.ts";
import { t } from "./i18n.ts";
import { ServerClock } from "./server_clock.ts";
import type { Outage, TraceBeat } from "./trace.ts";

/**
 * Called for each beat with the heart's status as the API gave it before
 * this beat (`late` or `expired` when the beat ended a silence).
 */
export type BeatListener = (event: BeatEvent, before: HeartStatus) => void;

/** State of the UI's connection to the stream. */
export type ConnectionState =
  | "connecting"
  | "live"
  | "reconnecting"
  | "offline";

/** One heart with the recent beats its cardiogram draws. */
export interface HeartEntry {
  heart: Heart;
  /** Recent beats, oldest first, bounded by time and count. */
  beats: TraceBeat[];
  /** Whether the recent history was fetched from the API since the last snapshot. */
  historyLoaded: boolean;
}

/** Limits of what the store keeps. */
export interface StoreLimits {
  /** Server milliseconds of beats kept per heart. */
  keepMs: number;
  /** Hard cap of beats kept per heart. */
  maxBeats: number;
  /** Wire exchanges kept per node. */
  maxExchanges: number;
}

/** Default limits: enough for the widest sweep. */
export const DEFAULT_LIMITS: StoreLimits = {
  keepMs: 6 * 60_000,
  maxBeats: 512,
  maxExchanges: 300,
};

/** Episodes kept per heart in the browser. */
const MAX_EPISODES = 20;
const MAX_OUTAGES = 32;

/** Opens or closes the last outage of `list` as `connected` says. */
function noteOutage(list: Outage[], connected: boolean, since: number): void {
  const open = list[list.length - 1];
  if (!connected && (open === undefined || open.to !== null)) {
    list.push({ from: since, to: null });
    if (list.length > MAX_OUTAGES) list.shift();
  } else if (connected && open !== undefined && open.to === null) {
    open.to = Math.max(open.from, since);
  }
}

/**
 * How long the UI trusts the server's statuses without hearing from its
 * stream: two and a half ping intervals. After that every heart reads
 * `unknown` until the stream speaks again.
 */
export const STREAM_STALE_AFTER_MS = 2.5 * STREAM_PING_MS;

/**
 * Why the server's statuses cannot be shown as current at local time `now`,
 * given when the stream last spoke (`heardAt`, local time; null before it
 * ever did): null while it was heard from within `staleAfterMs`.
 */
export function streamStaleReason(
  heardAt: number | null,
  now: number,
  staleAfterMs: number = STREAM_STALE_AFTER_MS,
): string | null {
  if (heardAt === null) return null;
  const silentMs = now - heardAt;
  if (silentMs < staleAfterMs) return null;
  return t("stream.lost", { seconds: Math.floor(silentMs / 1000) });
}

/**
 * A heart as shown while the stream is lost: its status `unknown` and no
 * diagnosis, since neither is known to be current.
 */
export function staleHeart(heart: Heart): Heart {
  const { diagnosis: _diagnosis, ...rest } = heart;
  return { ...rest, status: "unknown" };
}

/** Holds the hearts and tells subscribers when anything changed. */
export class HeartStore {
  /** Hearts by id. */
  readonly hearts: Map<string, HeartEntry> = new Map();
  /** Wire exchanges by node name, oldest first. */
  readonly wire: Map<string, WireExchange[]> = new Map();
  /** The server's clock as seen from here. */
  readonly clock: ServerClock;
  /** Where the hearts come from; null before the first snapshot. */
  source: SourceState | null = null;
  /** State of the stream connection. */
  connection: ConnectionState = "connecting";
  /** Incremented on every change. */
  version = 0;
  /** Number of snapshots applied. */
  snapshots = 0;
  /** Number of stream batches applied. */
  batches = 0;
  /** Recent periods when the source was disconnected, oldest first. */
  readonly outages: Outage[] = [];
  /** Recent episodes per heart id (and `source`), oldest first. */
  readonly episodes = new Map<string, Episode[]>();
  /** Local time the stream last spoke (an event, a ping, or opening); null before. */
  heardAt: number | null = null;
  #staleReason: string | null = null;
  #wireTrimmedAt = -Infinity;
  /** Outages of each cluster, when several are watched. */
  #clusterOutages = new Map<string, Outage[]>();
  #limits: StoreLimits;
  #listeners = new Set<() => void>();
  #beatListeners = new Set<BeatListener>();

  /** `clock` maps local time to server time; `limits` bound memory. */
  constructor(clock: ServerClock, limits: StoreLimits = DEFAULT_LIMITS) {
    this.clock = clock;
    this.#limits = limits;
  }

  /** Replaces the hearts with a snapshot; recent beats of hearts still present are kept. */
  applySnapshot(snapshot: SnapshotEvent): void {
    this.clock.reset(
      Date.parse(snapshot.generatedAt),
      snapshot.source.timeScale,
    );
    this.#noteSource(snapshot.source);
    const previous = new Map(this.hearts);
    this.hearts.clear();
    for (const heart of snapshot.hearts) {
      const old = previous.get(heart.id);
      const beats = old?.beats ?? [];
      this.hearts.set(heart.id, { heart, beats, historyLoaded: false });
      this.#trim(beats);
    }
    for (const node of [...this.wire.keys()]) {
      if (!this.hearts.has(`${NODE_LEASE_NAMESPACE}/${node}`)) {
        this.wire.delete(node);
      }
    }
    this.snapshots++;
    this.#changed();
  }

  /** Takes the stream's compact `snapshot`. */
  applyStreamSnapshot(snapshot: StreamSnapshot): void {
    this.applySnapshot(decodeSnapshot(snapshot));
  }

  /**
   * Takes one of the stream's `batch`es: every event in order, and one
   * change for subscribers.
   */
  applyBatch(batch: StreamBatch): void {
    for (const d of decodeBatch(batch)) {
      switch (d.type) {
        case "beat": {
          const entry = this.hearts.get(d.id);
          if (entry === undefined) break;
          const before = entry.heart.status;
          entry.heart = heartAfterBeat(entry.heart, d);
          this.#beat(
            { id: d.id, beat: { ...d.beat, holder: entry.heart.holder } },
            entry,
            before,
          );
          break;
        }
        case "status": {
          const entry = this.hearts.get(d.id);
          if (entry !== undefined) {
            entry.heart = { ...entry.heart, status: d.status };
          }
          break;
        }
        case "heart":
          this.#entry(d.heart);
          break;
        case "deleted":
          this.hearts.delete(d.id);
          break;
        case "diagnosis":
          this.#diagnosis(d.event);
          break;
        case "source":
          this.#noteSource(d.source);
          this.clock.setScale(d.source.timeScale);
          break;
        case "wire": {
          const entry = this.hearts.get(
            `${NODE_LEASE_NAMESPACE}/${d.exchange.node}`,
          );
          const wire = entry && wireSummaryAfter(entry.heart.wire, d.exchange);
          if (entry && wire) entry.heart = { ...entry.heart, wire };
          this.#exchange(d.exchange);
          break;
        }
      }
    }
    this.#trimWire();
    this.batches++;
    this.#changed();
  }

  /** Records a beat and the heart's new state. */
  applyBeat(event: BeatEvent): void {
    const before = this.hearts.get(event.heart.id)?.heart.status ?? "unknown";
    this.#beat(event, this.#entry(event.heart), before);
    this.#changed();
  }

  #beat(
    event: { id: string; beat: Beat },
    entry: HeartEntry,
    before: HeartStatus,
  ): void {
    const observed = Date.parse(event.beat.observedAt);
    this.clock.observe(observed);
    this.#insert(entry.beats, toTraceBeat(event.beat));
    if (this.#beatListeners.size === 0) return;
    const full: BeatEvent = { ...event, heart: entry.heart };
    for (const listener of this.#beatListeners) listener(full, before);
  }

  /** Records a status change; `to: null` removes the heart. */
  applyStatus(event: StatusEvent): void {
    if (event.to === null) {
      this.hearts.delete(event.heart.id);
    } else {
      this.#entry(event.heart);
    }
    this.#changed();
  }

  /** Records the source's state. */
  applySource(source: SourceState): void {
    this.#noteSource(source);
    this.clock.setScale(source.timeScale);
    this.#changed();
  }

  /** Records a heart's (or the source's) new diagnosis, or the end of its episode. */
  applyDiagnosis(event: DiagnosisEvent): void {
    this.#diagnosis(event);
    this.#changed();
  }

  #diagnosis(event: DiagnosisEvent): void {
    const list = this.episodes.get(event.id) ?? [];
    const i = list.findIndex((e) => e.start === event.episode.start);
    if (i >= 0) list[i] = event.episode;
    else list.push(event.episode);
    if (list.length > MAX_EPISODES) list.splice(0, list.length - MAX_EPISODES);
    this.episodes.set(event.id, list);
    const entry = this.hearts.get(event.id);
    if (entry !== undefined) {
      const heart = { ...entry.heart };
      if (event.diagnosis) heart.diagnosis = event.diagnosis;
      else delete heart.diagnosis;
      entry.heart = heart;
    }
  }

  /** Merges episodes fetched from the API (oldest first) for `id`. */
  mergeEpisodes(id: string, episodes: readonly Episode[]): void {
    const list = this.episodes.get(id) ?? [];
    for (const e of episodes) {
      if (!list.some((x) => x.start === e.start)) list.push(e);
    }
    list.sort((a, b) => Date.parse(a.start) - Date.parse(b.start));
    if (list.length > MAX_EPISODES) list.splice(0, list.length - MAX_EPISODES);
    this.episodes.set(id, list);
    this.#changed();
  }

  /**
   * Records wire exchanges by node (signals are not drawn); each node keeps
   * its last `maxExchanges`, none older than `keepMs`, and none of a node
   * that has no heart.
   */
  applyWire(event: WireEvent): void {
    for (const exchange of event.exchanges) this.#exchange(exchange);
    this.#trimWire();
    this.#changed();
  }

  #exchange(exchange: WireExchange): void {
    if (exchange.signal !== undefined) return;
    let list = this.wire.get(exchange.node);
    if (list === undefined) {
      if (!this.hearts.has(`${NODE_LEASE_NAMESPACE}/${exchange.node}`)) return;
      list = [];
      this.wire.set(exchange.node, list);
    }
    list.push(exchange);
    if (list.length > this.#limits.maxExchanges) {
      list.splice(0, list.length - this.#limits.maxExchanges);
    }
  }

  /**
   * Drops exchanges older than `keepMs` and nodes gone, at most once a
   * second of local time (it walks every node).
   */
  #trimWire(): void {
    const local = this.clock.local();
    if (local - this.#wireTrimmedAt < 1_000) return;
    this.#wireTrimmedAt = local;
    const now = this.clock.now();
    for (const [node, list] of this.wire) {
      if (!this.hearts.has(`${NODE_LEASE_NAMESPACE}/${node}`)) {
        this.wire.delete(node);
        continue;
      }
      if (now === null) continue;
      let drop = 0;
      while (
        drop < list.length &&
        Date.parse(list[drop]!.at) < now - this.#limits.keepMs
      ) drop++;
      if (drop === list.length) this.wire.delete(node);
      else if (drop > 0) list.splice(0, drop);
    }
  }

  /** Merges beats fetched from the API into a heart's recent history. */
  mergeHistory(id: string, beats: readonly Beat[]): void {
    const entry = this.hearts.get(id);
    if (entry === undefined) return;
    for (const beat of beats) this.#insert(entry.beats, toTraceBeat(beat));
    entry.historyLoaded = true;
    this.#changed();
  }

  /** Sets the connection state. */
  setConnection(state: ConnectionState): void {
    if (this.connection === state) return;
    this.connection = state;
    this.#changed();
  }

  /** Notes that the stream spoke (or opened) at local time `now`. */
  heard(now: number = this.clock.local()): void {
    this.heardAt = now;
    this.tick(now);
  }

  /** Takes a `ping`: the stream is alive, and the server's clock is at least there. */
  applyPing(ping: PingEvent): void {
    const serverTime = Date.parse(ping.serverTime);
    if (Number.isFinite(serverTime)) this.clock.observe(serverTime);
  }

  /**
   * Why the hearts' statuses are not current at local time `now` (the stream
   * has been silent too long), or null while they are.
   */
  staleReason(now: number = this.clock.local()): string | null {
    return streamStaleReason(this.heardAt, now);
  }

  /** The status `heart` is shown with: the server's, or `unknown` while the stream is lost. */
  statusOf(heart: Heart, now: number = this.clock.local()): HeartStatus {
    return this.staleReason(now) === null ? heart.status : "unknown";
  }

  /** `heart` as shown at local time `now`: while the stream is lost, `unknown` and without a diagnosis. */
  shown(heart: Heart, now: number = this.clock.local()): Heart {
    return this.staleReason(now) === null ? heart : staleHeart(heart);
  }

  /**
   * Re-checks the staleness at local time `now` and tells subscribers when it
   * changed (every second while stale, as its age moves on).
   */
  tick(now: number = this.clock.local()): void {
    const reason = this.staleReason(now);
    if (reason === this.#staleReason) return;
    this.#staleReason = reason;
    this.#changed();
  }

  /** Calls `listener` after every change; returns the unsubscribe function. */
  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Calls `listener` for every beat event; returns the unsubscribe function. */
  onBeat(listener: BeatListener): () => void {
    this.#beatListeners.add(listener);
    return () => this.#beatListeners.delete(listener);
  }

  /**
   * Periods when `heart`'s source was disconnected: its own cluster's when
   * several clusters are watched, else the source's.
   */
  outagesOf(heart: Heart): readonly Outage[] {
    if (heart.cluster === undefined) return this.outages;
    return this.#clusterOutages.get(heart.cluster) ?? [];
  }

  #noteSource(source: SourceState): void {
    this.source = source;
    noteOutage(this.outages, source.connected, Date.parse(source.since));
    for (const c of source.clusters ?? []) {
      let list = this.#clusterOutages.get(c.name);
      if (list === undefined) this.#clusterOutages.set(c.name, list = []);
      noteOutage(list, c.connected, Date.parse(c.since));
    }
  }

  #entry(heart: Heart): HeartEntry {
    let entry = this.hearts.get(heart.id);
    if (entry === undefined) {
      entry = { heart, beats: [], historyLoaded: false };
      this.hearts.set(heart.id, entry);
    } else {
      entry.heart = heart;
    }
    return entry;
  }

  #insert(beats: TraceBeat[], beat: TraceBeat): void {
    const last = beats[beats.length - 1];
    if (last === undefined || last.t < beat.t) {
      beats.push(beat);
    } else {
      let i = beats.length;
      while (i > 0 && beats[i - 1]!.t > beat.t) i--;
      if (beats[i - 1]?.t === beat.t) return;
      beats.splice(i, 0, beat);
    }
    this.#trim(beats);
  }

  #trim(beats: TraceBeat[]): void {
    const now = this.clock.now();
    let drop = Math.max(0, beats.length - this.#limits.maxBeats);
    if (now !== null) {
      while (
        drop < beats.length && beats[drop]!.t < now - this.#limits.keepMs
      ) drop++;
    }
    if (drop > 0) beats.splice(0, drop);
  }

  #changed(): void {
    this.version++;
    for (const listener of this.#listeners) listener();
  }
}

/** The trace's view of a beat. */
export function toTraceBeat(beat: Beat): TraceBeat {
  return {
    t: Date.parse(beat.observedAt),
    intervalMs: beat.intervalSeconds === null
      ? null
      : beat.intervalSeconds * 1000,
  };
}
