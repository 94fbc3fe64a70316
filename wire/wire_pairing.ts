/**
 * Pairs each node-lease beat with the wire exchange that carried it. The
 * kubelet stamps `renewTime` on its own clock just before it sends the
 * update, and the agent on the same node times the exchange on that same
 * clock, so the pairing needs no cross-node clock agreement: the carrying
 * exchange is the first one that starts at or just after the renewTime.
 * The probe never reports TLS handshake legs (bpf/heartbeat.bpf.c), so a new
 * connection's handshake, which runs between the stamp and the PUT, cannot
 * pass for the carrier.
 *
 * @module
 */

import type { WireExchange, WireSummary } from "../core/api_types.ts";

/** How far after a beat's renewTime its exchange may start. */
const PAIR_WINDOW_MS = 2000;
/** Slack for exchanges stamped slightly before renewTime (clock granularity). */
const PAIR_SLACK_MS = 50;
/**
 * Fewest bytes a request carrying a Lease update can have: an update is
 * headers plus the Lease JSON. Smaller exchanges on the kubelet's connection
 * (TLS 1.3 alerts such as close_notify, which are encrypted as application
 * data, HTTP/2 PINGs and window updates) never
 * carry a beat, though they may start just after its renewTime.
 */
const MIN_CARRIER_BYTES = 128;
const KEEP = 64;
/** Exchanges slower than this count as trouble. */
const SLOW_MS = 1000;
/** Retransmits and resets within this window count as trouble. */
const TROUBLE_WINDOW_MS = 5 * 60 * 1000;

interface NodeWire {
  exchanges: { at: number; ex: WireExchange; paired: boolean }[];
  beats: { renewTime: number; paired: boolean }[];
  summary: WireSummary;
  lastTroubleAt: number;
}

/** A beat and exchange found to belong together. */
export interface Pair {
  renewTime: number;
  latencyMs: number;
}

/** Per-node pairing state and wire summaries. */
export class WirePairing {
  #nodes = new Map<string, NodeWire>();

  #node(name: string): NodeWire {
    let n = this.#nodes.get(name);
    if (!n) {
      n = {
        exchanges: [],
        beats: [],
        summary: {
          lastExchangeAt: null,
          lastLatencyMs: null,
          srttUs: null,
          retransmits: 0,
          resets: 0,
          trouble: false,
        },
        lastTroubleAt: -Infinity,
      };
      this.#nodes.set(name, n);
    }
    return n;
  }

  /**
   * Starts keeping `node`'s beats: its agent runs a probe, so an exchange
   * may come after the beat it carried (the first one after the agent starts).
   */
  track(node: string): void {
    this.#node(node);
  }

  /** Records an exchange; returns the beat it carried when that beat is already known. */
  addExchange(ex: WireExchange): Pair | null {
    const n = this.#node(ex.node);
    const at = Date.parse(ex.at);
    const s = n.summary;
    s.lastExchangeAt = ex.at;
    s.lastLatencyMs = ex.latencyMs;
    s.srttUs = ex.srttUs;
    s.retransmits += ex.retransmits;
    s.resets += ex.resets;
    if (ex.retransmits > 0 || ex.resets > 0 || ex.latencyMs > SLOW_MS) {
      n.lastTroubleAt = at;
    }
    s.trouble = at - n.lastTroubleAt <= TROUBLE_WINDOW_MS;
    if (ex.bytesSent < MIN_CARRIER_BYTES) return null;
    const entry = { at, ex, paired: false };
    push(n.exchanges, entry);
    for (const beat of n.beats) {
      if (!beat.paired && carries(at, beat.renewTime)) {
        beat.paired = entry.paired = true;
        return { renewTime: beat.renewTime, latencyMs: ex.latencyMs };
      }
    }
    return null;
  }

  /** Records a node beat; returns its pair when its exchange is already known. */
  addBeat(node: string, renewTime: number): Pair | null {
    const n = this.#nodes.get(node);
    if (!n) return null; // no agent reports wire data for this node
    const beat = { renewTime, paired: false };
    push(n.beats, beat);
    let best: (typeof n.exchanges)[number] | undefined;
    for (const e of n.exchanges) {
      if (!e.paired && carries(e.at, renewTime) && (!best || e.at < best.at)) {
        best = e;
      }
    }
    if (!best) return null;
    best.paired = beat.paired = true;
    return { renewTime, latencyMs: best.ex.latencyMs };
  }

  /** Wire summary of `node`, or undefined when no agent reported for it. */
  summary(node: string): WireSummary | undefined {
    const n = this.#nodes.get(node);
    return n && { ...n.summary };
  }
}

function carries(exchangeAt: number, renewTime: number): boolean {
  return exchangeAt >= renewTime - PAIR_SLACK_MS &&
    exchangeAt <= renewTime + PAIR_WINDOW_MS;
}

function push<T>(list: T[], item: T): void {
  list.push(item);
  if (list.length > KEEP) list.shift();
}
