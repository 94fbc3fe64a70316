/**
 * A map that keeps at most a given number of entries and, when full, lets
 * the least recently used one go first: the token verdicts of a cluster's
 * agents, the failure budgets of the clients that send garbage.
 *
 * @module
 */

/** A bounded map with least-recently-used eviction. */
export class LruMap<K, V> {
  // A Map iterates in insertion order: re-inserting on use keeps the least
  // recently used entry first.
  #map = new Map<K, V>();
  readonly #capacity: () => number;

  readonly #onEvict: ((key: K, value: V) => void) | undefined;

  /**
   * Holds at most `capacity` entries (at least one); a function is asked
   * again at each insertion, so the bound can follow the cluster's size.
   * `onEvict` hears of each entry let go for room.
   */
  constructor(
    capacity: number | (() => number),
    onEvict?: (key: K, value: V) => void,
  ) {
    this.#capacity = typeof capacity === "number" ? () => capacity : capacity;
    this.#onEvict = onEvict;
  }

  /** Entries held. */
  get size(): number {
    return this.#map.size;
  }

  /** The value of `key`, which becomes the most recently used; undefined when absent. */
  get(key: K): V | undefined {
    const value = this.#map.get(key);
    if (value === undefined) return undefined;
    this.#map.delete(key);
    this.#map.set(key, value);
    return value;
  }

  /** Sets `key` as the most recently used entry, evicting the least recently used ones past the capacity. */
  set(key: K, value: V): void {
    this.#map.delete(key);
    this.#map.set(key, value);
    const capacity = Math.max(1, Math.floor(this.#capacity()));
    for (const [oldest, evicted] of this.#map) {
      if (this.#map.size <= capacity) break;
      this.#map.delete(oldest);
      this.#onEvict?.(oldest, evicted);
    }
  }

  /** Removes `key`; true when it was there. */
  delete(key: K): boolean {
    return this.#map.delete(key);
  }

  /** The entries, least recently used first. */
  entries(): IterableIterator<[K, V]> {
    return this.#map.entries();
  }
}
