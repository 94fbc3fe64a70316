/**
 * The stream's event log: every event gets an increasing id and is
 * serialised once; the last events are kept so a client reconnecting with
 * `Last-Event-ID` gets what it missed. Each subscriber has a bounded queue: a
 * client that falls too far behind is dropped (it will reconnect and resume),
 * so slow clients cannot grow server memory without bound.
 *
 * @module
 */

import type { StreamEventName, StreamEvents } from "../core/api_types.ts";
import { AsyncQueue } from "../core/async_queue.ts";

/** One serialised event. */
export interface LoggedEvent {
  id: number;
  event: StreamEventName;
  /** JSON text of the event's data. */
  data: string;
}

/** Limits of the log. */
export interface EventLogOptions {
  /** Events kept for resumption. Default 20,000. */
  capacity: number;
  /** Events a subscriber may have queued before it is dropped. Default 5,000. */
  maxQueue: number;
  /**
   * Id of the first event. Defaults to the start time in microseconds, so a
   * restarted server or a new leader never reuses the ids of an older log:
   * a client resuming with an id of another log gets a fresh snapshot.
   */
  firstId: number;
}

/** A subscriber's view of the log. */
export class Subscription {
  #queue: AsyncQueue<LoggedEvent>;
  #closed = false;
  /** Why the subscription ended, when it did. */
  reason: "closed" | "overflow" | null = null;
  #ended = new AbortController();
  /** Aborted when the subscription ends. */
  readonly signal: AbortSignal = this.#ended.signal;

  constructor(
    maxQueue: number,
    private readonly onClose: (s: Subscription) => void,
  ) {
    this.#queue = new AsyncQueue(maxQueue);
  }

  /** Queues an event; drops the subscriber when its queue is full. */
  push(event: LoggedEvent): void {
    if (this.#closed) return;
    if (!this.#queue.push(event)) this.close("overflow");
  }

  /** Number of queued events. */
  get queued(): number {
    return this.#queue.size;
  }

  /** True once closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Takes all queued events, waiting until there is one, the timeout passes or it closes. */
  async take(timeoutMs: number): Promise<LoggedEvent[]> {
    await this.#queue.wait(timeoutMs);
    return this.#queue.takeAll();
  }

  /** Ends the subscription. */
  close(reason: "closed" | "overflow" = "closed"): void {
    if (this.#closed) return;
    this.#closed = true;
    this.reason = reason;
    this.#queue.clear();
    this.#queue.close();
    this.onClose(this);
    this.#ended.abort(reason);
  }
}

/** The event log with fan-out to subscribers. */
export class EventLog {
  readonly options: EventLogOptions;
  #ring: (LoggedEvent | undefined)[];
  #start = 0; // ring index of the oldest event
  #size = 0;
  #nextId: number;
  #subscribers = new Set<Subscription>();
  /** Subscribers dropped for falling behind. */
  dropped = 0;

  /** Creates a log with the given limits. */
  constructor(options: Partial<EventLogOptions> = {}) {
    this.options = {
      capacity: 20_000,
      maxQueue: 5_000,
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

  /** Number of connected subscribers. */
  get subscribers(): number {
    return this.#subscribers.size;
  }

  /** Appends an event and hands it to every subscriber. */
  publish<K extends StreamEventName>(
    event: K,
    data: StreamEvents[K],
  ): LoggedEvent {
    const logged: LoggedEvent = {
      id: this.#nextId++,
      event,
      data: JSON.stringify(data),
    };
    const cap = this.options.capacity;
    this.#ring[(this.#start + this.#size) % cap] = logged;
    if (this.#size < cap) this.#size++;
    else this.#start = (this.#start + 1) % cap;
    for (const sub of this.#subscribers) sub.push(logged);
    return logged;
  }

  /**
   * Events after `lastId`, or null when some of them are no longer held (the
   * client then needs a fresh snapshot).
   */
  since(lastId: number): LoggedEvent[] | null {
    if (lastId > this.lastId) return null; // an id from another server's log
    const oldest = this.#ring[this.#start]?.id ?? this.#nextId;
    if (lastId < oldest - 1) return null;
    const out: LoggedEvent[] = [];
    const skip = lastId - oldest + 1;
    for (let i = Math.max(0, skip); i < this.#size; i++) {
      out.push(this.#ring[(this.#start + i) % this.options.capacity]!);
    }
    return out;
  }

  /** Registers a subscriber that receives every event published from now on. */
  subscribe(): Subscription {
    const sub = new Subscription(this.options.maxQueue, (s) => {
      if (this.#subscribers.delete(s) && s.reason === "overflow") {
        this.dropped++;
      }
    });
    this.#subscribers.add(sub);
    return sub;
  }

  /** Ends every subscription (on shutdown). */
  closeAll(): void {
    for (const sub of [...this.#subscribers]) sub.close();
  }
}
