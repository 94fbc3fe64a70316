/**
 * The leader's bound on wire reports per node: a token bucket per
 * authenticated node, so one agent (a misconfigured `--wire-flush-ms`, a
 * loop) cannot take the leader's CPU from the others. A report past the
 * bucket is answered 429 with `Retry-After`, which the agent honours by
 * holding its exchanges until then and sending them in one batch.
 *
 * An agent at its defaults sends at most one batch a second (plus its probe
 * state every 30 s and when it changes), well inside the default bound.
 *
 * @module
 */

import { LruMap } from "../core/lru.ts";

/** Settings of {@linkcode WireRateLimiter}. */
export interface WireRateOptions {
  /** Reports a node may send per second, sustained. Default 2. */
  perSecond?: number;
  /** Reports a node may send at once after a quiet spell. Default 5. */
  burst?: number;
  /** Nodes whose buckets are kept, asked at each insertion. Default 1,024. */
  nodes?: () => number;
}

/** Default sustained reports per second per node. */
export const DEFAULT_WIRE_REPORTS_PER_SECOND = 2;
/** Default burst of reports per node. */
export const DEFAULT_WIRE_REPORT_BURST = 5;
/** Fewest buckets kept, whatever the cluster's size. */
const MIN_NODES = 64;

/** Per-node token buckets of wire reports. */
export class WireRateLimiter {
  readonly perSecond: number;
  readonly burst: number;
  #buckets: LruMap<string, { tokens: number; at: number }>;

  constructor(opts: WireRateOptions = {}) {
    this.perSecond = opts.perSecond ?? DEFAULT_WIRE_REPORTS_PER_SECOND;
    this.burst = opts.burst ?? DEFAULT_WIRE_REPORT_BURST;
    if (!(this.perSecond > 0) || !(this.burst >= 1)) {
      throw new RangeError(
        `Wire report rate needs perSecond > 0 and burst >= 1, got ${this.perSecond} and ${this.burst}`,
      );
    }
    const nodes = opts.nodes ?? (() => 1024);
    this.#buckets = new LruMap(() => Math.max(MIN_NODES, nodes()));
  }

  /**
   * Takes one report of `node` at `now` (ms): 0 when it is accepted, else
   * the milliseconds until the node may send again (nothing is taken).
   */
  take(node: string, now: number): number {
    const b = this.#buckets.get(node);
    if (!b) {
      this.#buckets.set(node, { tokens: this.burst - 1, at: now });
      return 0;
    }
    const elapsed = Math.max(0, now - b.at);
    b.tokens = Math.min(this.burst, b.tokens + elapsed * this.perSecond / 1000);
    b.at = now;
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.ceil((1 - b.tokens) * 1000 / this.perSecond);
  }
}
