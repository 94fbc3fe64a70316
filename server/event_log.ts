/**
 * The stream's event log: every event gets an increasing id and is
 * serialised once, into the bytes of its SSE message, which every client's
 * stream shares; the last events are kept in a ring so a client
 * reconnecting with `Last-Event-ID` gets what it missed.
 *
 * A subscriber holds no queue of its own, only its place in the ring: what
 * it has not taken yet is the ring's events after that place. How far
 * behind it may fall is bounded in events and in bytes; a subscriber that
 * falls further is dropped (it will reconnect and resume, or get a
 * snapshot). So a slow or stalled client costs a few numbers, and nothing
 * is left behind when it goes.
 *
 * Sizes are counted in the bytes of the serialised messages, so whatever a
 * message holds (a `batch` of compact events, see `stream_batcher.ts`),
 * the ring and the subscribers are bounded by what they would send.
 *
 * @module
 */

import type { StreamEventName, StreamEvents } from "../core/api_types.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** One serialised event. */
export class LoggedEvent {
  /** Bytes of every message of the log up to and including this one. */
  end = 0;

  constructor(
    readonly id: number,
    readonly event: StreamEventName,
    /** The whole SSE message (`id:`, `event:`, `data:` lines), shared by every client. */
    readonly frame: Uint8Array,
  ) {}

  /** JSON text of the event's data, read back from the message (for tests and tools). */
  get data(): string {
    const text = decoder.decode(this.frame);
    const start = text.indexOf("\ndata: ") + 7;
    return text.slice(start, text.length - 2);
  }
}

/** Serialises one event into the SSE message every client is sent. */
export function serialiseEvent(
  id: number,
  event: StreamEventName,
  data: unknown,
): LoggedEvent {
  return serialiseJson(id, event, JSON.stringify(data));
}

/** Wraps an event's JSON text (one line) into its SSE message. */
export function serialiseJson(
  id: number,
  event: StreamEventName,
  json: string,
): LoggedEvent {
  // JSON text has no raw line breaks, so the data fits on one `data:` line.
  return new LoggedEvent(
    id,
    event,
    encoder.encode(`id: ${id}\nevent: ${event}\ndata: ${json}\n\n`),
  );
}

/** Sum of the messages' sizes in bytes. */
export function byteSize(events: readonly LoggedEvent[]): number {
  let n = 0;
  for (const e of events) n += e.frame.byteLength;
  return n;
}

/** Limits of the log. */
export interface EventLogOptions {
  /** Events kept for resumption. Default 20,000. */
  capacity: number;
  /**
   * Bytes of messages kept for resumption. Default 8 MiB: twice what one
   * subscriber may fall behind, minutes of batches at 5,000 nodes (about
   * 50 KB/s with hearts late and diagnosed). A client asking for more gets a
   * fresh snapshot (about 570 KB at 5,000 hearts).
   */
  capacityBytes: number;
  /** Events a subscriber may have queued before it is dropped. Default 5,000. */
  maxQueue: number;
  /** Bytes a subscriber may have queued before it is dropped. Default 4 MiB. */
  maxQueueBytes: number;
  /**
   * Id of the first event. Defaults to the start time in microseconds, so a
   * restarted server or a new leader never reuses the ids of an older log:
   * a client resuming with an id of another log gets a fresh snapshot.
   */
  firstId: number;
}

/** What a subscription needs of its log. */
interface Ring {
  readonly lastId: number;
  /** Bytes of every message published so far. */
  readonly totalBytes: number;
  /** Id of the oldest event held. */
  readonly oldestId: number;
  /** The held event `id`. */
  at(id: number): LoggedEvent;
}

/** A subscriber's place in the log. */
export class Subscription {
  /** Id of the last event taken (or skipped, when joining). */
  #cursor: number;
  /** `end` of that event: bytes of the log up to it. */
  #cursorEnd: number;
  #wake: (() => void) | null = null;
  #closed = false;
  #lagged = false;
  /**
   * Whether falling too far behind skips to a fresh snapshot (see
   * {@linkcode lagged}) rather than ending the subscription. Once only: a
   * subscriber that falls behind again before it took its snapshot is
   * dropped.
   */
  resync = false;
  /** Times it fell behind and was owed a snapshot. */
  lags = 0;
  /** Called when it falls behind and is owed a snapshot. */
  onLag: ((s: Subscription) => void) | null = null;
  /** Why the subscription ended, when it did. */
  reason: "closed" | "overflow" | null = null;
  #ended = new AbortController();
  /** Aborted when the subscription ends. */
  readonly signal: AbortSignal = this.#ended.signal;

  constructor(
    private readonly ring: Ring,
    private readonly limits: Pick<
      EventLogOptions,
      "maxQueue" | "maxQueueBytes"
    >,
    private readonly onClose: (s: Subscription) => void,
  ) {
    this.#cursor = ring.lastId;
    this.#cursorEnd = ring.totalBytes;
  }

  /** Number of events published and not taken yet (none once closed). */
  get queued(): number {
    return this.#closed ? 0 : this.ring.lastId - this.#cursor;
  }

  /** Bytes of the messages published and not taken yet (none once closed). */
  get queuedBytes(): number {
    return this.#closed ? 0 : this.ring.totalBytes - this.#cursorEnd;
  }

  /** True once closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Whether `events` (missed ones) would fit within the subscriber's limits. */
  fits(events: readonly LoggedEvent[]): boolean {
    return this.queued + events.length <= this.limits.maxQueue &&
      this.queuedBytes + byteSize(events) <= this.limits.maxQueueBytes;
  }

  /**
   * Queues events the client missed: a resumption, or what followed a
   * cached snapshot; they must be the newest events of the log, as
   * `EventLog.since` gives them. False, queueing nothing, when they would
   * not fit.
   */
  preload(events: readonly LoggedEvent[]): boolean {
    if (events.length === 0) return true;
    const first = events[0]!;
    if (
      this.queued !== 0 || events.at(-1)!.id !== this.ring.lastId ||
      !this.fits(events)
    ) return false;
    this.#cursor = first.id - 1;
    this.#cursorEnd = first.end - first.frame.byteLength;
    return true;
  }

  /**
   * Called by the log after each event: drops the subscriber once it is too
   * far behind, else wakes it if it waits.
   */
  published(): void {
    if (this.#closed) return;
    if (
      this.queued > this.limits.maxQueue ||
      this.queuedBytes > this.limits.maxQueueBytes ||
      this.#cursor < this.ring.oldestId - 1
    ) {
      if (!this.resync || this.#lagged) {
        // Not one that resyncs, or it did not even take the resync it was
        // owed: it is stalled, not slow.
        this.close("overflow");
        return;
      }
      // Skip what it is behind on: it is owed a fresh snapshot instead.
      this.#lagged = true;
      this.lags++;
      this.#cursor = this.ring.lastId;
      this.#cursorEnd = this.ring.totalBytes;
      this.onLag?.(this);
    }
    this.#wake?.();
  }

  /**
   * True when the subscriber fell too far behind and its missed events were
   * skipped: it must be sent a fresh snapshot, then {@linkcode resume}.
   */
  get lagged(): boolean {
    return this.#lagged;
  }

  /**
   * Ends a lag: the subscriber continues after the newest event (the
   * caller sends it a snapshot and may {@linkcode preload} what followed).
   */
  resume(): void {
    this.#lagged = false;
    this.#cursor = this.ring.lastId;
    this.#cursorEnd = this.ring.totalBytes;
  }

  /**
   * Takes the events not taken yet, oldest first, waiting until there is
   * one, the timeout passes or it closes: all of them, or as many as reach
   * `maxBytes` (at least one; the last may pass it).
   */
  async take(timeoutMs: number, maxBytes = Infinity): Promise<LoggedEvent[]> {
    if (!this.#closed && !this.#lagged && this.queued === 0) {
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          if (this.#wake === done) this.#wake = null;
          resolve();
        };
        const timer = setTimeout(done, timeoutMs);
        // One taker: a newer one replaces an older one, which resolves.
        this.#wake?.();
        this.#wake = done;
      });
    }
    const out: LoggedEvent[] = [];
    if (this.#closed || this.#lagged) return out;
    let bytes = 0;
    while (this.#cursor < this.ring.lastId && bytes < maxBytes) {
      const next = this.ring.at(this.#cursor + 1);
      out.push(next);
      bytes += next.frame.byteLength;
      this.#cursor = next.id;
      this.#cursorEnd = next.end;
    }
    return out;
  }

  /** Ends the subscription. */
  close(reason: "closed" | "overflow" = "closed"): void {
    if (this.#closed) return;
    this.#closed = true;
    this.reason = reason;
    this.onClose(this);
    this.#wake?.();
    this.#ended.abort(reason);
  }
}

/** The event log with fan-out to subscribers. */
export class EventLog implements Ring {
  readonly options: EventLogOptions;
  #ring: (LoggedEvent | undefined)[];
  #start = 0; // ring index of the oldest event
  #size = 0;
  #heldBytes = 0;
  #totalBytes = 0;
  #nextId: number;
  #subscribers = new Set<Subscription>();
  /** Subscribers dropped for falling behind. */
  dropped = 0;
  /** Times a subscriber fell behind and was sent a fresh snapshot instead. */
  lagged = 0;

  /** Creates a log with the given limits. */
  constructor(options: Partial<EventLogOptions> = {}) {
    this.options = {
      capacity: 20_000,
      capacityBytes: 8 << 20,
      maxQueue: 5_000,
      maxQueueBytes: 4 << 20,
      firstId: Date.now() * 1000,
      ...options,
    };
    this.#ring = new Array(this.options.capacity);
    this.#nextId = this.options.firstId;
  }

  /** Id of the newest event (`firstId - 1` before the first). */
  get lastId(): number {
    return this.#nextId - 1;
  }

  /** Id of the oldest event held (`lastId + 1` when none is). */
  get oldestId(): number {
    return this.#ring[this.#start]?.id ?? this.#nextId;
  }

  /** Bytes of every message published so far. */
  get totalBytes(): number {
    return this.#totalBytes;
  }

  /** Number of connected subscribers. */
  get subscribers(): number {
    return this.#subscribers.size;
  }

  /** Bytes of the messages held for resumption. */
  get heldBytes(): number {
    return this.#heldBytes;
  }

  /** Bytes published and not yet taken, summed over the subscribers. */
  get queuedBytes(): number {
    let n = 0;
    for (const sub of this.#subscribers) n += sub.queuedBytes;
    return n;
  }

  /** The held event `id` (the caller knows it is held). */
  at(id: number): LoggedEvent {
    return this.#ring[
      (this.#start + id - this.oldestId) % this.options.capacity
    ]!;
  }

  /** Appends an event and tells every subscriber. */
  publish<K extends StreamEventName>(
    event: K,
    data: StreamEvents[K],
  ): LoggedEvent {
    return this.publishJson(event, JSON.stringify(data));
  }

  /** Appends an event given as its JSON text (one line) and tells every subscriber. */
  publishJson(event: StreamEventName, json: string): LoggedEvent {
    const logged = serialiseJson(this.#nextId++, event, json);
    this.#totalBytes += logged.frame.byteLength;
    logged.end = this.#totalBytes;
    const cap = this.options.capacity;
    if (this.#size === cap) this.#dropOldest();
    this.#ring[(this.#start + this.#size) % cap] = logged;
    this.#size++;
    this.#heldBytes += logged.frame.byteLength;
    while (this.#size > 1 && this.#heldBytes > this.options.capacityBytes) {
      this.#dropOldest();
    }
    for (const sub of this.#subscribers) sub.published();
    return logged;
  }

  #dropOldest(): void {
    const oldest = this.#ring[this.#start]!;
    this.#ring[this.#start] = undefined;
    this.#start = (this.#start + 1) % this.options.capacity;
    this.#size--;
    this.#heldBytes -= oldest.frame.byteLength;
  }

  /**
   * Events after `lastId`, or null when some of them are no longer held (the
   * client then needs a fresh snapshot).
   */
  since(lastId: number): LoggedEvent[] | null {
    if (lastId > this.lastId) return null; // an id from another server's log
    if (lastId < this.oldestId - 1) return null;
    const out: LoggedEvent[] = [];
    for (let id = lastId + 1; id <= this.lastId; id++) out.push(this.at(id));
    return out;
  }

  /**
   * Registers a subscriber that receives every event published from now on;
   * with `resync`, one that falls behind is owed a snapshot rather than
   * dropped (see {@linkcode Subscription.lagged}).
   */
  subscribe(options: { resync?: boolean } = {}): Subscription {
    const sub = new Subscription(this, this.options, (s) => {
      if (!this.#subscribers.delete(s)) return;
      if (s.reason === "overflow") this.dropped++;
      this.onSubscribers?.(this.#subscribers.size);
    });
    sub.resync = options.resync ?? false;
    sub.onLag = () => this.lagged++;
    this.#subscribers.add(sub);
    this.onSubscribers?.(this.#subscribers.size);
    return sub;
  }

  /**
   * Forgets every held event and skips an id: events are about to be left
   * out (the batcher stops encoding when nobody has listened for a while),
   * so a client resuming from before now, and a cached snapshot, must start
   * from a fresh snapshot instead.
   */
  discontinue(): void {
    while (this.#size > 0) this.#dropOldest();
    this.#nextId++;
  }

  /** Called whenever the number of subscribers changes (the batcher stops its timer at 0). */
  onSubscribers: ((count: number) => void) | null = null;

  /** Ends every subscription (on shutdown). */
  closeAll(): void {
    for (const sub of [...this.#subscribers]) sub.close();
  }
}
