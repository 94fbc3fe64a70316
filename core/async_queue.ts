/**
 * One bounded queue that a producer pushes into and one consumer awaits:
 * the kernel events of the probe, a stream subscriber's events, a test's
 * pushed events. Pushing never blocks: a full queue refuses the item and the
 * producer decides (count a drop, close the subscriber).
 *
 * @module
 */

/** A bounded first-in first-out queue with an awaiting consumer. */
export class AsyncQueue<T> implements AsyncIterable<T> {
  readonly #limit: number;
  #items: T[] = [];
  #head = 0;
  #closed = false;
  #wake: (() => void) | null = null;

  /** A queue that holds at most `limit` items (unbounded by default). */
  constructor(limit = Infinity) {
    this.#limit = limit;
  }

  /** Items queued. */
  get size(): number {
    return this.#items.length - this.#head;
  }

  /** True once {@linkcode AsyncQueue.close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Queues `item`; false when the queue is full or closed. */
  push(item: T): boolean {
    if (this.#closed || this.size >= this.#limit) return false;
    this.#items.push(item);
    this.#wake?.();
    return true;
  }

  /** Takes the oldest item, or undefined when empty. */
  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const item = this.#items[this.#head]!;
    this.#items[this.#head++] = undefined as T;
    // Compact once the taken prefix dominates, so shifting stays O(1).
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }

  /** Takes every queued item, oldest first. */
  takeAll(): T[] {
    const out = this.#head === 0 ? this.#items : this.#items.slice(this.#head);
    this.#items = [];
    this.#head = 0;
    return out;
  }

  /** Drops every queued item. */
  clear(): void {
    this.#items = [];
    this.#head = 0;
  }

  /**
   * Resolves once an item is queued or the queue closes, or after
   * `timeoutMs` when given; at once when either is already true.
   */
  wait(timeoutMs?: number): Promise<void> {
    if (this.size > 0 || this.#closed) return Promise.resolve();
    return new Promise<void>((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const done = () => {
        clearTimeout(timer);
        if (this.#wake === done) this.#wake = null;
        resolve();
      };
      if (timeoutMs !== undefined) timer = setTimeout(done, timeoutMs);
      // One consumer: a newer waiter replaces an older one, which resolves.
      this.#wake?.();
      this.#wake = done;
    });
  }

  /** Ends the queue: the consumer gets what is queued, then the iteration ends. */
  close(): void {
    this.#closed = true;
    this.#wake?.();
  }

  /** Yields items as they come until the queue is closed and drained. */
  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    while (true) {
      if (this.size > 0) {
        yield this.shift()!;
        continue;
      }
      if (this.#closed) return;
      await this.wait();
    }
  }
}
