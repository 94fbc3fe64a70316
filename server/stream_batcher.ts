/**
 * Turns the hub's events into the stream's `batch` messages: each event is
 * encoded compactly (see `core/stream_codec.ts`) as it happens, and the
 * events of about {@linkcode STREAM_BATCH_MS} of wall time go out as one
 * message of the event log. So a client at 5,000 nodes and 10 times the
 * real rate gets about ten messages a second, not ten thousand, and the
 * log's bounds (events and bytes a client may be behind) count batches.
 *
 * A beat carries only what a beat changes (times, interval, count, wire
 * latency); when the rest of a heart changed too (holder, expected
 * interval, lease duration, wire trouble), the whole heart goes before it
 * as an `h` entry. A status change is its code alone, on the same terms.
 *
 * The window runs on `timer` (the wall clock, whatever the speed of the
 * hub's own clock) and only while the log has subscribers: with none, the
 * events wait, and are flushed when one subscribes (the stream flushes
 * before it snapshots or resumes) or when {@linkcode BatcherOptions.maxEntries}
 * are pending.
 *
 * When nobody has listened for {@linkcode BatcherOptions.idleMs}, the
 * batcher stops taking events at all (see {@linkcode StreamBatcher.accepting}):
 * a leader nobody watches then spends nothing on the stream, and the next
 * client starts from a snapshot.
 *
 * @module
 */

import {
  type BatchEntry,
  type Heart,
  NODE_LEASE_NAMESPACE,
  STREAM_BATCH_MS,
} from "../core/api_types.ts";
import type { Clock } from "../core/clock.ts";
import {
  encodeBeat,
  encodeExchange,
  encodeHeart,
  heartKey,
  statusCode,
} from "../core/stream_codec.ts";
import type { EventLog } from "./event_log.ts";
import type { HubEvent } from "./hub_feed.ts";

/** Settings of a {@linkcode StreamBatcher}. */
export interface BatcherOptions {
  /** Where batches are published. */
  log: EventLog;
  /** The hub's clock: a batch's times are relative to its time at the first event. */
  now: () => number;
  /** Clock of the batch window (wall time). */
  timer: Clock;
  /** Length of the window. Default {@linkcode STREAM_BATCH_MS}. */
  batchMs?: number;
  /** Entries after which a batch goes out at once. Default 2,000. */
  maxEntries?: number;
  /**
   * How long after the last client left events are still encoded, so a
   * client that reconnects resumes where it was. Default
   * {@linkcode STREAM_IDLE_MS}.
   */
  idleMs?: number;
  /**
   * The heart `id` as it is now: after a node's exchanges, its heart goes
   * out in full when they changed what the client cannot work out from
   * them (wire trouble).
   */
  heartOf?: (id: string) => Heart | undefined;
}

/** Default of {@linkcode BatcherOptions.idleMs}: one minute of wall time. */
export const STREAM_IDLE_MS = 60_000;

/** What of a heart a beat or a status code does not say. */
type Shape = (string | number | boolean | null)[];

function shapeOf(h: Heart): Shape {
  return [
    h.holder,
    h.leaseDurationSeconds,
    h.expectedIntervalSeconds,
    h.transitions,
    h.leaseTransitions,
    h.wire?.trouble ?? null,
    h.wire?.retransmits ?? null,
    h.wire?.resets ?? null,
  ];
}

function sameShape(a: Shape | undefined, b: Shape): boolean {
  if (a === undefined) return false;
  for (let i = 0; i < b.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Gathers encoded events and publishes them as batches. */
export class StreamBatcher {
  readonly #log: EventLog;
  readonly #now: () => number;
  readonly #timer: Clock;
  readonly #batchMs: number;
  readonly #maxEntries: number;
  readonly #heartOf: ((id: string) => Heart | undefined) | undefined;
  readonly #idleMs: number;
  /** When the last client left (or the batcher began, with none). */
  #quietSince: number;
  /** Not taking events: nobody has listened for `idleMs`. */
  #paused = false;
  #parts: string[] = [];
  #base = 0;
  #window: AbortController | null = null;
  /** Shape of each heart as last sent in full. */
  #sent = new Map<string, Shape>();
  /** Batches published. */
  batches = 0;
  /** Entries published. */
  entries = 0;

  constructor(options: BatcherOptions) {
    this.#log = options.log;
    this.#now = options.now;
    this.#timer = options.timer;
    this.#batchMs = options.batchMs ?? STREAM_BATCH_MS;
    this.#maxEntries = options.maxEntries ?? 2_000;
    this.#heartOf = options.heartOf;
    this.#idleMs = options.idleMs ?? STREAM_IDLE_MS;
    this.#quietSince = this.#timer.now();
    this.#log.onSubscribers = (n) => {
      if (n === 0) {
        this.#quietSince = this.#timer.now();
        this.flush();
      } else if (this.#paused) this.#resume();
    };
  }

  /**
   * Whether the batcher takes the hub's events now: while someone listens,
   * and for {@linkcode BatcherOptions.idleMs} after the last client left.
   * When that time has run out it flushes what it holds, tells the log
   * that events will be missing ({@linkcode EventLog.discontinue}) and says
   * false until a client subscribes again.
   */
  accepting(): boolean {
    if (this.#paused) return false;
    if (
      this.#log.subscribers > 0 ||
      this.#timer.now() - this.#quietSince < this.#idleMs
    ) return true;
    this.flush();
    this.#log.discontinue();
    this.#paused = true;
    // The next client starts from a snapshot: what each heart last sent
    // in full is not needed, and at 5,000 hearts it is 1.4 MB.
    this.#sent.clear();
    return false;
  }

  /**
   * Takes events again. The client that subscribed starts from a snapshot
   * of the hearts as they are; with no shape remembered, each heart's
   * first event after it sends the whole heart again, once.
   */
  #resume(): void {
    this.#paused = false;
  }

  /** Hearts whose shape, as last sent in full, is remembered. */
  get remembered(): number {
    return this.#sent.size;
  }

  /** Number of entries waiting for the next batch. */
  get pending(): number {
    return this.#parts.length;
  }

  /** Encodes one hub event into the pending batch. */
  add(e: HubEvent): void {
    if (this.#parts.length === 0) this.#base = Math.round(this.#now());
    const base = this.#base;
    switch (e.event) {
      case "beat": {
        const { id, beat, heart } = e.data;
        this.#heartIfChanged(heart, base);
        this.#push(encodeBeat(id, beat, heart.beats, base));
        break;
      }
      case "status": {
        const { id, from, to, heart } = e.data;
        if (to === null) {
          this.#sent.delete(id);
          this.#push(["x", heartKey(id)]);
        } else if (from === null) {
          this.#sendHeart(heart, base);
        } else if (!this.#heartIfChanged(heart, base)) {
          this.#push(["s", heartKey(id), statusCode(to)]);
        }
        break;
      }
      case "diagnosis":
        this.#push(["d", e.data]);
        break;
      case "source":
        this.#push(["src", e.data]);
        break;
      case "wire": {
        const nodes = new Set<string>();
        for (const x of e.data.exchanges) {
          this.#push(encodeExchange(x, base));
          nodes.add(x.node);
        }
        if (this.#heartOf === undefined) break;
        for (const node of nodes) {
          const heart = this.#heartOf(`${NODE_LEASE_NAMESPACE}/${node}`);
          if (heart !== undefined) this.#heartIfChanged(heart, base);
        }
        break;
      }
    }
    if (this.#parts.length >= this.#maxEntries) this.flush();
    else this.#arm();
  }

  /** Publishes the pending entries as one batch now. */
  flush(): void {
    this.#window?.abort();
    this.#window = null;
    if (this.#parts.length === 0) return;
    const json = `{"t":${this.#base},"e":[${this.#parts.join(",")}]}`;
    this.entries += this.#parts.length;
    this.#parts = [];
    this.batches++;
    this.#log.publishJson("batch", json);
  }

  /** Stops the window's timer (the pending entries are flushed). */
  close(): void {
    this.flush();
  }

  /** Sends the whole heart when what a beat does not say changed; true if it did. */
  #heartIfChanged(heart: Heart, base: number): boolean {
    if (sameShape(this.#sent.get(heart.id), shapeOf(heart))) return false;
    this.#sendHeart(heart, base);
    return true;
  }

  #sendHeart(heart: Heart, base: number): void {
    this.#sent.set(heart.id, shapeOf(heart));
    this.#push(["h", encodeHeart(heart, base)]);
  }

  #push(entry: BatchEntry): void {
    this.#parts.push(JSON.stringify(entry));
  }

  #arm(): void {
    if (this.#window !== null || this.#log.subscribers === 0) return;
    const window = new AbortController();
    this.#window = window;
    this.#timer.sleep(this.#batchMs, window.signal).then(
      () => {
        if (this.#window === window) this.flush();
      },
      () => {}, // flushed or closed meanwhile
    );
  }
}
