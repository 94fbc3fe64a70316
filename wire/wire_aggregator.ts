/**
 * Turns raw wire events into {@link WireExchange} records, the shape the
 * leader pairs with lease beats. Pure: no I/O, no clock; the caller passes
 * the monotonic-to-wall offset the probe measured.
 *
 * @module
 */

import type { WireExchange } from "../core/api_types.ts";
import type { RawWireEvent } from "../core/wire_types.ts";

/** Settings of a {@link WireAggregator}. */
export interface WireAggregatorOptions {
  /** Node name written into every exchange. */
  node: string;
  /** Add to monotonic milliseconds to get wall-clock milliseconds. */
  monoToWallOffsetMs: number;
  /** Connections remembered at most (oldest forgotten first); default 1024. */
  maxConnections?: number;
}

/** Converts a CLOCK_MONOTONIC nanosecond stamp to an RFC 3339 time. */
export function monoToIso(ns: bigint, offsetMs: number): string {
  return new Date(Number(ns) / 1e6 + offsetMs).toISOString();
}

function ms(ns: bigint): number {
  return Math.round(Number(ns) / 1e3) / 1e3; // microsecond precision
}

/** Per-connection state the kernel does not carry in an exchange event. */
interface ConnMemory {
  resetsReported: number;
}

/** Builds WireExchange records from a stream of raw events. */
export class WireAggregator {
  #node: string;
  #offsetMs: number;
  #max: number;
  #conns = new Map<bigint, ConnMemory>();

  constructor(options: WireAggregatorOptions) {
    this.#node = options.node;
    this.#offsetMs = options.monoToWallOffsetMs;
    this.#max = options.maxConnections ?? 1024;
  }

  /** Connections currently remembered. */
  get connections(): number {
    return this.#conns.size;
  }

  /**
   * Feeds one event; returns the exchange of an `exchange` event, else null.
   * The kernel reports an exchange at the first segment of its answer, so its
   * latency runs to that segment and `bytesReceived` counts that segment (the
   * whole of a small answer). An exchange that got no answer (the connection
   * closed or reset first) has `bytesReceived` 0 and its latency runs until it
   * was given up. TLS handshake legs never come as exchanges.
   */
  add(ev: RawWireEvent): WireExchange | null {
    let mem = this.#conns.get(ev.cookie);
    if (!mem) {
      mem = { resetsReported: 0 };
      this.#conns.set(ev.cookie, mem);
      if (this.#conns.size > this.#max) {
        const oldest = this.#conns.keys().next().value;
        if (oldest !== undefined) this.#conns.delete(oldest);
      }
    }
    if (ev.kind === "state" && ev.newState === "CLOSE") {
      this.#conns.delete(ev.cookie);
    }
    if (ev.kind !== "exchange") return null;
    const end = ev.firstRxNs > 0n ? ev.firstRxNs : ev.tsNs;
    const resets = Math.max(0, ev.resets - mem.resetsReported);
    mem.resetsReported = ev.resets;
    return {
      node: this.#node,
      conn: ev.conn,
      at: monoToIso(ev.startNs, this.#offsetMs),
      latencyMs: ms(end > ev.startNs ? end - ev.startNs : 0n),
      bytesSent: ev.bytesSent,
      bytesReceived: ev.bytesReceived,
      srttUs: ev.srttUs,
      retransmits: ev.retrans,
      resets,
    };
  }

  /** Feeds many events; returns the exchanges they complete, in order. */
  addAll(events: Iterable<RawWireEvent>): WireExchange[] {
    const out: WireExchange[] = [];
    for (const ev of events) {
      const x = this.add(ev);
      if (x) out.push(x);
    }
    return out;
  }
}

/** The exchanges that a stream of kernel events completes, in order. */
export async function* aggregate(
  events: AsyncIterable<RawWireEvent>,
  aggregator: WireAggregator,
): AsyncIterable<WireExchange> {
  for await (const ev of events) {
    const x = aggregator.add(ev);
    if (x) yield x;
  }
}
