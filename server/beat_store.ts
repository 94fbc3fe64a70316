/**
 * Bounded beat history. Beats live in blocks of 64, six bytes a beat: the
 * time since the heart's previous beat and the holder's clock offset
 * (`renewTime − observedAt`), in milliseconds as 16-bit integers, a flags
 * byte and the holder's index in the heart's table of holders. A beat's
 * interval is the time since the previous beat, so it costs nothing more.
 * Wire latencies, when a node reports them, take four bytes more in blocks
 * of their own. The rare value that does not fit (a gap over 65 s, a clock
 * more than 32 s off, an interval other than the gap) goes to a small map.
 *
 * All hearts share one pool of blocks, carved from slabs of 512 blocks
 * (about 200 KiB): a heart takes a block when it needs one and gives it
 * back when its oldest beats pass the retention window, so the history
 * grows and shrinks without copying and without scattering small
 * allocations over the process's heap. With 5,000 nodes beating every 10 s
 * and 1,000 other Leases every 2 s, an hour is 3.6 million beats: about
 * 23 MB.
 *
 * @module
 */

import type { Beat, WireConfidence } from "../core/api_types.ts";
import { isoTime } from "../core/iso_time.ts";

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

/**
 * A heart's last beat as the hub keeps it on the heart itself (NaN for an
 * interval it does not know): {@linkcode BeatStore.appendLast} reads it
 * there, so storing a beat builds no object.
 */
export interface LastBeat {
  lastRenewTime: number;
  lastObservedAt: number;
  lastIntervalSeconds: number;
  holder: string | null;
  lastBeatTransition: boolean;
}

/** Beats per block. */
const BLOCK = 64;
const BLOCK_SHIFT = 6;
/** Blocks per slab. */
const SLAB_BLOCKS = 512;
const SLAB_SHIFT = 9;
/** Bytes a beat takes in a slab: gap (2), offset (2), flags (1), holder (1). */
const BEAT_BYTES = 6;
const WIRE_BYTES = 4;

/** Bits of a beat's flags byte. */
const TRANSITION = 1;
const EXACT_WIRE = 2;
const NO_INTERVAL = 4;
const HAS_WIRE = 8;
/** Some field of the beat is in its heart's exception map. */
const EXCEPTION = 16;

const MAX_GAP = 0xffff;
const MIN_OFFSET = -0x8000;
const MAX_OFFSET = 0x7fff;
/** Holder indices 0 (no holder) to 254; 255 means "in the exception map". */
const HOLDER_IN_MAP = 255;

/** The values of one beat that did not fit its slots. */
interface Exception {
  gap?: number;
  offset?: number;
  interval?: number;
  holder?: string | null;
}

/** One slab: the slots of 512 blocks of beats, and each block's first observation time. */
class Slab {
  readonly gap: Uint16Array;
  readonly offset: Int16Array;
  readonly flags: Uint8Array;
  readonly holder: Uint8Array;
  readonly base: Float64Array;
  constructor() {
    const n = SLAB_BLOCKS * BLOCK;
    const buf = new ArrayBuffer(SLAB_BLOCKS * 8 + n * BEAT_BYTES);
    this.base = new Float64Array(buf, 0, SLAB_BLOCKS);
    this.gap = new Uint16Array(buf, SLAB_BLOCKS * 8, n);
    this.offset = new Int16Array(buf, SLAB_BLOCKS * 8 + n * 2, n);
    this.flags = new Uint8Array(buf, SLAB_BLOCKS * 8 + n * 4, n);
    this.holder = new Uint8Array(buf, SLAB_BLOCKS * 8 + n * 5, n);
  }
}

/** A pool of fixed-size blocks carved from slabs that are never freed. */
class BlockPool<S> {
  readonly slabs: S[] = [];
  readonly #free: number[] = [];
  #used = 0;
  constructor(readonly newSlab: () => S) {}

  alloc(): number {
    if (this.#free.length === 0) {
      const first = this.slabs.length * SLAB_BLOCKS;
      this.slabs.push(this.newSlab());
      for (let id = first + SLAB_BLOCKS - 1; id >= first; id--) {
        this.#free.push(id);
      }
    }
    this.#used++;
    return this.#free.pop()!;
  }

  release(id: number): void {
    this.#used--;
    this.#free.push(id);
  }

  /** Blocks handed out. */
  get used(): number {
    return this.#used;
  }
}

/** The beats of one heart: a queue of blocks, oldest first. */
class Ring {
  blocks: number[] = [];
  /** Wire blocks parallel to `blocks` (-1: none), once a latency was set. */
  wire: number[] | null = null;
  /** Index of the oldest beat in `blocks[0]`. */
  head = 0;
  size = 0;
  /** Observation time of the oldest beat held. */
  headObserved = 0;
  /** Observation time of the newest beat ever appended (NaN before one). */
  lastObserved = NaN;
  /** Holder names referenced by the holder slots; index 0 is "no holder". */
  holders: (string | null)[] = [null];
  exceptions: Map<number, Exception> | null = null;
}

/** Bounded per-heart beat history. */
export class BeatStore {
  readonly options: BeatStoreOptions;
  #rings = new Map<string, Ring>();
  #beats = new BlockPool(() => new Slab());
  #wires = new BlockPool(() => new Float32Array(SLAB_BLOCKS * BLOCK));

  /** Creates a store with the given limits. */
  constructor(options: Partial<BeatStoreOptions> = {}) {
    this.options = { ...DEFAULT_STORE_OPTIONS, ...options };
    if (!(this.options.maxBeatsPerHeart >= 1)) {
      throw new RangeError(
        `Beat store cap must be at least 1, got ${this.options.maxBeatsPerHeart}`,
      );
    }
  }

  /**
   * Appends a beat of heart `id`, dropping the oldest beats past the cap or
   * window. Times are kept to the millisecond. An interval that is the time
   * since the heart's previous beat (as the hub's always is) is not stored
   * at all; another one costs an exception entry.
   */
  append(id: string, beat: StoredBeat): void {
    this.appendLast(
      id,
      {
        lastRenewTime: beat.renewTime,
        lastObservedAt: beat.observedAt,
        lastIntervalSeconds: beat.intervalSeconds ?? NaN,
        holder: beat.holder,
        lastBeatTransition: beat.transition,
      },
      beat.wireLatencyMs === undefined ? undefined : {
        latencyMs: beat.wireLatencyMs,
        confidence: beat.wireConfidence ?? "inferred",
      },
    );
  }

  /**
   * {@linkcode BeatStore.append} of the beat `heart` holds as its last, with
   * the exchange that carried it when known.
   */
  appendLast(
    id: string,
    beat: LastBeat,
    wire?: { latencyMs: number; confidence: WireConfidence },
  ): void {
    let ring = this.#rings.get(id);
    if (!ring) {
      ring = new Ring();
      this.#rings.set(id, ring);
    }
    const observed = Math.round(beat.lastObservedAt);
    this.#expire(ring, observed);
    if (ring.size >= this.options.maxBeatsPerHeart) this.#dropHead(ring);
    const pos = ring.head + ring.size;
    if (pos >> BLOCK_SHIFT >= ring.blocks.length) {
      const block = this.#beats.alloc();
      ring.blocks.push(block);
      ring.wire?.push(-1);
      this.#slab(block).base[block & (SLAB_BLOCKS - 1)] = observed;
    }
    const block = ring.blocks[pos >> BLOCK_SHIFT]!;
    const slab = this.#slab(block);
    const i = this.#index(block, pos);
    const key = block * BLOCK + (pos & (BLOCK - 1));
    let exception: Exception | undefined;

    const gap = Number.isNaN(ring.lastObserved)
      ? 0
      : observed - ring.lastObserved;
    if (gap >= 0 && gap < MAX_GAP) slab.gap[i] = gap;
    else {
      slab.gap[i] = MAX_GAP;
      (exception ??= {}).gap = gap;
    }
    const offset = Math.round(beat.lastRenewTime) - observed;
    if (offset > MIN_OFFSET && offset <= MAX_OFFSET) slab.offset[i] = offset;
    else {
      slab.offset[i] = MIN_OFFSET;
      (exception ??= {}).offset = offset;
    }
    const interval = beat.lastIntervalSeconds;
    let flags = beat.lastBeatTransition ? TRANSITION : 0;
    if (Number.isNaN(interval)) flags |= NO_INTERVAL;
    else if (
      Number.isNaN(ring.lastObserved) || Math.abs(interval * 1000 - gap) > 1
    ) (exception ??= {}).interval = interval;
    const holder = this.#holderIndex(ring, beat.holder);
    slab.holder[i] = holder;
    if (holder === HOLDER_IN_MAP) (exception ??= {}).holder = beat.holder;
    if (exception) {
      flags |= EXCEPTION;
      (ring.exceptions ??= new Map()).set(key, exception);
    }
    slab.flags[i] = flags;
    if (wire !== undefined) {
      this.#setWire(ring, pos, wire.latencyMs, wire.confidence);
    }
    if (ring.size === 0) ring.headObserved = observed;
    ring.lastObserved = observed;
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
    if (!ring || ring.size === 0) return false;
    const from = Math.max(0, ring.size - 64);
    const found: number[] = [];
    this.#walk(ring, from, (p, observed) => {
      if (Math.abs(observed + this.#offset(ring, p) - renewTime) < 0.5) {
        found.push(p);
      }
    });
    const p = found.at(-1);
    if (p === undefined) return false;
    this.#setWire(ring, ring.head + p, latencyMs, confidence);
    return true;
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
    const out: StoredBeat[] = [];
    this.#walk(ring, 0, (p, observed) => {
      if (observed >= from) out.push(this.#read(ring, p, observed));
    });
    return opts.limit !== undefined && out.length > opts.limit
      ? out.slice(out.length - opts.limit)
      : out;
  }

  /** Number of beats held for `id`. */
  count(id: string): number {
    return this.#rings.get(id)?.size ?? 0;
  }

  /** Forgets heart `id`. */
  delete(id: string): void {
    const ring = this.#rings.get(id);
    if (!ring) return;
    for (const block of ring.blocks) this.#beats.release(block);
    for (const w of ring.wire ?? []) if (w >= 0) this.#wires.release(w);
    this.#rings.delete(id);
  }

  /** Drops beats older than the retention window at `now` from every heart. */
  prune(now: number): void {
    for (const ring of this.#rings.values()) this.#expire(ring, now);
  }

  /**
   * Bytes the history holds: the slabs (used and free blocks alike, as the
   * pool keeps its peak size), each heart's tables and exceptions.
   */
  byteSize(): number {
    let bytes = this.#beats.slabs.length *
        SLAB_BLOCKS * (8 + BLOCK * BEAT_BYTES) +
      this.#wires.slabs.length * SLAB_BLOCKS * BLOCK * WIRE_BYTES;
    for (const ring of this.#rings.values()) {
      bytes += 64 + ring.blocks.length * 8 + ring.holders.length * 16 +
        (ring.exceptions?.size ?? 0) * 64;
    }
    return bytes;
  }

  #slab(block: number): Slab {
    return this.#beats.slabs[block >> SLAB_SHIFT]!;
  }

  /** Index in its slab's arrays of position `pos` (counted from the start of `blocks[0]`). */
  #index(block: number, pos: number): number {
    return ((block & (SLAB_BLOCKS - 1)) << BLOCK_SHIFT) + (pos & (BLOCK - 1));
  }

  /** Calls `fn` with each beat from the `from`-th oldest on and its observation time. */
  #walk(
    ring: Ring,
    from: number,
    fn: (p: number, observed: number) => void,
  ): void {
    if (from >= ring.size) return;
    let observed = ring.headObserved;
    // Observation times are kept as gaps: add them up from the oldest
    // beat, or from the first beat of the block `from` is in.
    let p = 0;
    const startPos = ring.head + from;
    if (startPos >> BLOCK_SHIFT > 0) {
      const bi = startPos >> BLOCK_SHIFT;
      const block = ring.blocks[bi]!;
      observed = this.#slab(block).base[block & (SLAB_BLOCKS - 1)]!;
      p = (bi << BLOCK_SHIFT) - ring.head;
    }
    for (; p < ring.size; p++) {
      if (p > 0 && (ring.head + p) & (BLOCK - 1)) {
        observed += this.#gap(ring, p);
      } else if (p > 0) {
        const block = ring.blocks[(ring.head + p) >> BLOCK_SHIFT]!;
        observed = this.#slab(block).base[block & (SLAB_BLOCKS - 1)]!;
      }
      if (p >= from) fn(p, observed);
    }
  }

  #slot(ring: Ring, p: number): { slab: Slab; i: number; key: number } {
    const pos = ring.head + p;
    const block = ring.blocks[pos >> BLOCK_SHIFT]!;
    return {
      slab: this.#slab(block),
      i: this.#index(block, pos),
      key: block * BLOCK + (pos & (BLOCK - 1)),
    };
  }

  #gap(ring: Ring, p: number): number {
    const { slab, i, key } = this.#slot(ring, p);
    const gap = slab.gap[i]!;
    return gap === MAX_GAP ? ring.exceptions?.get(key)?.gap ?? gap : gap;
  }

  #offset(ring: Ring, p: number): number {
    const { slab, i, key } = this.#slot(ring, p);
    const offset = slab.offset[i]!;
    return offset === MIN_OFFSET
      ? ring.exceptions?.get(key)?.offset ?? offset
      : offset;
  }

  #read(ring: Ring, p: number, observed: number): StoredBeat {
    const { slab, i, key } = this.#slot(ring, p);
    const flags = slab.flags[i]!;
    const exception = flags & EXCEPTION ? ring.exceptions?.get(key) : undefined;
    const gap = slab.gap[i] === MAX_GAP
      ? exception?.gap ?? MAX_GAP
      : slab.gap[i]!;
    const offset = slab.offset[i] === MIN_OFFSET
      ? exception?.offset ?? MIN_OFFSET
      : slab.offset[i]!;
    const holderIndex = slab.holder[i]!;
    const beat: StoredBeat = {
      renewTime: observed + offset,
      observedAt: observed,
      intervalSeconds: flags & NO_INTERVAL
        ? null
        : exception?.interval ?? gap / 1000,
      holder: holderIndex === HOLDER_IN_MAP
        ? exception?.holder ?? null
        : ring.holders[holderIndex] ?? null,
      transition: (flags & TRANSITION) !== 0,
    };
    if (flags & HAS_WIRE && ring.wire) {
      const pos = ring.head + p;
      const w = ring.wire[pos >> BLOCK_SHIFT]!;
      beat.wireLatencyMs = this.#wires.slabs[w >> SLAB_SHIFT]![
        this.#index(w, pos)
      ]!;
      beat.wireConfidence = flags & EXACT_WIRE ? "exact" : "inferred";
    }
    return beat;
  }

  #setWire(
    ring: Ring,
    pos: number,
    latencyMs: number,
    confidence: WireConfidence | undefined,
  ): void {
    ring.wire ??= ring.blocks.map(() => -1);
    const bi = pos >> BLOCK_SHIFT;
    if (ring.wire[bi]! < 0) ring.wire[bi] = this.#wires.alloc();
    const w = ring.wire[bi]!;
    this.#wires.slabs[w >> SLAB_SHIFT]![this.#index(w, pos)] = latencyMs;
    const block = ring.blocks[bi]!;
    const slab = this.#slab(block);
    const i = this.#index(block, pos);
    slab.flags[i] = (slab.flags[i]! & ~EXACT_WIRE) | HAS_WIRE |
      (confidence === "exact" ? EXACT_WIRE : 0);
  }

  /** The holder's index in the ring's table, compacting a full table first. */
  #holderIndex(ring: Ring, holder: string | null): number {
    const table = ring.holders;
    const last = table.length - 1;
    if (table[last] === holder) return last;
    const found = table.indexOf(holder);
    if (found >= 0) return found;
    if (table.length >= HOLDER_IN_MAP) this.#compactHolders(ring);
    if (ring.holders.length >= HOLDER_IN_MAP) return HOLDER_IN_MAP;
    ring.holders.push(holder);
    return ring.holders.length - 1;
  }

  /** Keeps only the holders that beats still held refer to (many holders came and went). */
  #compactHolders(ring: Ring): void {
    const used = new Map<number, number>([[0, 0]]);
    const next: (string | null)[] = [null];
    for (let p = 0; p < ring.size; p++) {
      const { slab, i } = this.#slot(ring, p);
      const old = slab.holder[i]!;
      if (old === HOLDER_IN_MAP) continue;
      let now = used.get(old);
      if (now === undefined) {
        now = next.length;
        next.push(ring.holders[old] ?? null);
        used.set(old, now);
      }
      slab.holder[i] = now;
    }
    ring.holders = next;
  }

  #dropHead(ring: Ring): void {
    const { key, slab, i } = this.#slot(ring, 0);
    if (slab.flags[i]! & EXCEPTION) ring.exceptions?.delete(key);
    if (ring.size > 1) {
      ring.headObserved = ring.head + 1 < BLOCK
        ? ring.headObserved + this.#gap(ring, 1)
        : this.#slab(ring.blocks[1]!)
          .base[ring.blocks[1]! & (SLAB_BLOCKS - 1)]!;
    }
    ring.size--;
    ring.head++;
    if (ring.head === BLOCK || ring.size === 0) {
      // The oldest block is spent (or the ring empty): give it back.
      if (ring.head === BLOCK || ring.blocks.length > 0) {
        this.#beats.release(ring.blocks.shift()!);
        const w = ring.wire?.shift();
        if (w !== undefined && w >= 0) this.#wires.release(w);
      }
      ring.head = 0;
    }
  }

  #expire(ring: Ring, now: number): void {
    const cutoff = now - this.options.retentionMs;
    while (ring.size > 0 && ring.headObserved < cutoff) this.#dropHead(ring);
  }
}

/** Converts a stored beat to its wire form. */
export function toBeat(beat: StoredBeat): Beat {
  const out: Beat = {
    renewTime: isoTime(beat.renewTime),
    observedAt: isoTime(beat.observedAt),
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
