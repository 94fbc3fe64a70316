/**
 * Bounded beat history. Each heart keeps its beats in a ring of typed arrays
 * (23 bytes a beat: transition and wire confidence share a flags byte) that grows by half again up to a hard cap, and drops
 * beats older than the retention window, so memory stays bounded with 5,000
 * node hearts and 1,000 other Leases. Append is O(1) amortised; range queries
 * binary-search the ring by observation time.
 *
 * @module
 */

import type { Beat, WireConfidence } from "../core/api_types.ts";

/** Limits of the store. */
export interface BeatStoreOptions {
  /** Beats older than this (by observation time) are dropped. Default one hour. */
  retentionMs: number;
  /** Hard cap of beats kept per heart. Default 4096. */
  maxBeatsPerHeart: number;
}

/** Default limits. */
export const DEFAULT_STORE_OPTIONS: BeatStoreOptions = {
  retentionMs: 60 * 60 * 1000,
  maxBeatsPerHeart: 4096,
};

const INITIAL_CAPACITY = 16;
const NO_VALUE = -1;

/** A beat as stored: times in epoch milliseconds. */
export interface StoredBeat {
  renewTime: number;
  observedAt: number;
  intervalSeconds: number | null;
  holder: string | null;
  transition: boolean;
  wireLatencyMs?: number;
  wireConfidence?: WireConfidence;
}

/** Bits of the per-beat flags byte. */
const TRANSITION = 1;
const EXACT_WIRE = 2;

/** The ring of one heart's beats. */
class BeatRing {
  /** renewTime − observedAt in ms (the holder's clock offset plus delay). */
  renewDelta!: Float32Array;
  observed!: Float64Array;
  interval!: Float32Array;
  wire!: Float32Array;
  holderIndex!: Uint16Array;
  transition!: Uint8Array;
  /** Holder names referenced by `holderIndex`; index 0 is "no holder". */
  holders: (string | null)[] = [null];
  head = 0; // index of the oldest beat
  size = 0;

  constructor(capacity: number) {
    this.#allocate(capacity);
  }

  /** Allocates empty arrays of `capacity` slots. */
  #allocate(capacity: number): void {
    this.renewDelta = new Float32Array(capacity);
    this.observed = new Float64Array(capacity);
    this.interval = new Float32Array(capacity);
    this.wire = new Float32Array(capacity);
    this.holderIndex = new Uint16Array(capacity);
    this.transition = new Uint8Array(capacity);
  }

  get capacity(): number {
    return this.observed.length;
  }

  slot(i: number): number {
    return (this.head + i) % this.capacity;
  }

  grow(capacity: number): void {
    const old = { ...this.#arrays() };
    const n = this.size;
    this.#allocate(capacity);
    const oldCap = old.observed.length;
    for (let i = 0; i < n; i++) {
      const from = (this.head + i) % oldCap;
      this.renewDelta[i] = old.renewDelta[from]!;
      this.observed[i] = old.observed[from]!;
      this.interval[i] = old.interval[from]!;
      this.wire[i] = old.wire[from]!;
      this.holderIndex[i] = old.holderIndex[from]!;
      this.transition[i] = old.transition[from]!;
    }
    this.head = 0;
  }

  #arrays() {
    return {
      renewDelta: this.renewDelta,
      observed: this.observed,
      interval: this.interval,
      wire: this.wire,
      holderIndex: this.holderIndex,
      transition: this.transition,
    };
  }

  holderId(holder: string | null): number {
    const last = this.holders.length - 1;
    if (this.holders[last] === holder) return last;
    const found = this.holders.indexOf(holder);
    if (found >= 0) return found;
    if (this.holders.length >= 0xffff) this.holders = [null]; // pathological churn: restart the table
    this.holders.push(holder);
    return this.holders.length - 1;
  }

  /** Index (0-based from oldest) of the first beat observed at or after `t`. */
  lowerBound(t: number): number {
    let lo = 0;
    let hi = this.size;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.observed[this.slot(mid)]! < t) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  read(i: number): StoredBeat {
    const s = this.slot(i);
    const interval = this.interval[s]!;
    const wire = this.wire[s]!;
    const beat: StoredBeat = {
      // Integral ms: the float32 delta is exact to well under 0.5 ms for offsets below 2 h.
      renewTime: Math.round(this.observed[s]! + this.renewDelta[s]!),
      observedAt: this.observed[s]!,
      intervalSeconds: interval === NO_VALUE ? null : interval,
      holder: this.holders[this.holderIndex[s]!] ?? null,
      transition: (this.transition[s]! & TRANSITION) !== 0,
    };
    if (wire !== NO_VALUE) {
      beat.wireLatencyMs = wire;
      beat.wireConfidence = (this.transition[s]! & EXACT_WIRE) !== 0
        ? "exact"
        : "inferred";
    }
    return beat;
  }
}

/** Bounded per-heart beat history. */
export class BeatStore {
  readonly options: BeatStoreOptions;
  #rings = new Map<string, BeatRing>();

  /** Creates a store with the given limits. */
  constructor(options: Partial<BeatStoreOptions> = {}) {
    this.options = { ...DEFAULT_STORE_OPTIONS, ...options };
    if (!(this.options.maxBeatsPerHeart >= 1)) {
      throw new RangeError(
        `Beat store cap must be at least 1, got ${this.options.maxBeatsPerHeart}`,
      );
    }
  }

  /** Appends a beat of heart `id`, dropping the oldest beats past the cap or window. */
  append(id: string, beat: StoredBeat): void {
    let ring = this.#rings.get(id);
    if (!ring) {
      ring = new BeatRing(
        Math.min(INITIAL_CAPACITY, this.options.maxBeatsPerHeart),
      );
      this.#rings.set(id, ring);
    }
    this.#expire(ring, beat.observedAt);
    if (ring.size === ring.capacity) {
      if (ring.capacity < this.options.maxBeatsPerHeart) {
        ring.grow(
          Math.min(
            Math.ceil(ring.capacity * 1.5),
            this.options.maxBeatsPerHeart,
          ),
        );
      } else {
        ring.head = (ring.head + 1) % ring.capacity;
        ring.size--;
      }
    }
    const s = ring.slot(ring.size);
    ring.renewDelta[s] = beat.renewTime - beat.observedAt;
    ring.observed[s] = beat.observedAt;
    ring.interval[s] = beat.intervalSeconds ?? NO_VALUE;
    ring.wire[s] = beat.wireLatencyMs ?? NO_VALUE;
    ring.holderIndex[s] = ring.holderId(beat.holder);
    ring.transition[s] = (beat.transition ? TRANSITION : 0) |
      (beat.wireConfidence === "exact" ? EXACT_WIRE : 0);
    ring.size++;
  }

  /**
   * Records the wire latency of the beat of `id` with `renewTime` (searching
   * the newest 64 beats); returns whether that beat was found.
   */
  setWireLatency(
    id: string,
    renewTime: number,
    latencyMs: number,
    confidence: WireConfidence = "inferred",
  ): boolean {
    const ring = this.#rings.get(id);
    if (!ring) return false;
    for (let i = ring.size - 1; i >= Math.max(0, ring.size - 64); i--) {
      const s = ring.slot(i);
      if (Math.abs(ring.observed[s]! + ring.renewDelta[s]! - renewTime) < 0.5) {
        ring.wire[s] = latencyMs;
        ring.transition[s] = (ring.transition[s]! & TRANSITION) |
          (confidence === "exact" ? EXACT_WIRE : 0);
        return true;
      }
    }
    return false;
  }

  /**
   * Beats of heart `id` observed at or after `since` (epoch ms) and still
   * within the retention window at `now`, oldest first, at most `limit` (the
   * newest ones when more match).
   */
  query(
    id: string,
    opts: { since?: number; limit?: number; now: number },
  ): StoredBeat[] {
    const ring = this.#rings.get(id);
    if (!ring) return [];
    const from = Math.max(
      opts.since ?? -Infinity,
      opts.now - this.options.retentionMs,
    );
    let start = ring.lowerBound(from);
    if (opts.limit !== undefined) {
      start = Math.max(start, ring.size - opts.limit);
    }
    const out: StoredBeat[] = [];
    for (let i = start; i < ring.size; i++) out.push(ring.read(i));
    return out;
  }

  /** Number of beats held for `id`. */
  count(id: string): number {
    return this.#rings.get(id)?.size ?? 0;
  }

  /** Forgets heart `id`. */
  delete(id: string): void {
    this.#rings.delete(id);
  }

  /** Drops beats older than the retention window at `now` from every heart. */
  prune(now: number): void {
    for (const ring of this.#rings.values()) this.#expire(ring, now);
  }

  /** Bytes held by the typed arrays of all rings (an estimate of the store's memory). */
  byteSize(): number {
    let bytes = 0;
    for (const ring of this.#rings.values()) {
      bytes += ring.capacity * 23 + ring.holders.length * 16;
    }
    return bytes;
  }

  #expire(ring: BeatRing, now: number): void {
    const cutoff = now - this.options.retentionMs;
    while (ring.size > 0 && ring.observed[ring.head]! < cutoff) {
      ring.head = (ring.head + 1) % ring.capacity;
      ring.size--;
    }
  }
}

/** Converts a stored beat to its wire form. */
export function toBeat(beat: StoredBeat): Beat {
  const out: Beat = {
    renewTime: new Date(beat.renewTime).toISOString(),
    observedAt: new Date(beat.observedAt).toISOString(),
    intervalSeconds: beat.intervalSeconds === null
      ? null
      : round3(beat.intervalSeconds),
    holder: beat.holder,
    transition: beat.transition,
  };
  if (beat.wireLatencyMs !== undefined) {
    out.wireLatencyMs = round3(beat.wireLatencyMs);
    out.wireConfidence = beat.wireConfidence ?? "inferred";
  }
  return out;
}

function round3(n: number): number {
  return Math.round(n * 1000) / 1000;
}
