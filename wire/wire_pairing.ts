/**
 * Pairs each node-lease beat with the wire exchange that carried it.
 *
 * Exact: where the agent traces the kubelet's Go TLS layer, an exchange is
 * one Lease request with its own response and carries the Lease's name and
 * the resourceVersion the request updated. The beat that request produced
 * is the one whose Lease came right after that version, so a beat pairs
 * with the exchange whose version is the heart's previous one: no clocks
 * involved. While a node sends exact exchanges, its inferred ones never pair.
 *
 * Inferred: the kubelet stamps `renewTime` on its own clock just before it
 * sends the update, and the agent on the same node times the exchange on
 * that same clock, so the pairing needs no cross-node clock agreement: the
 * carrying exchange is the first one, large enough to carry a Lease, that
 * starts at or just after the renewTime. The probe never reports TLS
 * handshake legs (bpf/heartbeat.bpf.c), so a new connection's handshake,
 * which runs between the stamp and the PUT, cannot pass for the carrier.
 *
 * Trouble needs evidence: retransmits, resets, a failed exact request, or a
 * slow exchange that is a renewal (exact, or large enough to carry one);
 * never a small control frame that happened to wait for the next answer.
 *
 * @module
 */

import type {
  WireConfidence,
  WireExchange,
  WireSummary,
} from "../core/api_types.ts";

/** How far after a beat's renewTime its exchange may start. */
const PAIR_WINDOW_MS = 2000;
/** Slack for exchanges stamped slightly before renewTime (clock granularity). */
const PAIR_SLACK_MS = 50;
/**
 * Fewest bytes a request carrying a Lease update can have: an update is
 * headers plus the Lease. Smaller exchanges on the kubelet's connection
 * (TLS 1.3 alerts such as close_notify, which are encrypted as application
 * data, HTTP/2 PINGs and window updates) never carry a beat, though they may
 * start just after its renewTime.
 */
export const MIN_CARRIER_BYTES = 128;
/**
 * Unpaired exchanges and beats kept per node. Paired ones are dropped at
 * once: with 5,000 nodes, keeping the last 64 of each was tens of MB.
 */
const KEEP = 16;
/** Renewals slower than this count as trouble. */
const SLOW_MS = 1000;
/** Retransmits and resets within this window count as trouble. */
const TROUBLE_WINDOW_MS = 5 * 60 * 1000;
/** A node that sent an exact exchange this recently pairs only exactly. */
const EXACT_MODE_MS = 60_000;

interface Tally {
  retransmits: number;
  resets: number;
}

/** What pairing needs of an exchange (not the whole record). */
interface Carrier {
  at: number;
  latencyMs: number;
  confidence: WireConfidence;
  resourceVersion: string | undefined;
}

/** A beat waiting for its exchange. */
interface WaitingBeat {
  renewTime: number;
  previousVersion: string | null;
}

interface NodeWire {
  /** Renewal exchanges not paired yet, oldest first (at most {@linkcode KEEP}). */
  exchanges: Carrier[];
  /** Beats not paired yet, oldest first (at most {@linkcode KEEP}). */
  beats: WaitingBeat[];
  summary: WireSummary;
  lastTroubleAt: number;
  lastExactAt: number;
  /** Retransmits and resets the exchanges carried, and those the signals reported. */
  counted: { exchanges: Tally; signals: Tally };
  /** The node's agent says it identifies renewals exactly. */
  exactMode: boolean;
}

/** A beat and exchange found to belong together. */
export interface Pair {
  renewTime: number;
  latencyMs: number;
  confidence: WireConfidence;
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
        lastExactAt: -Infinity,
        counted: {
          exchanges: { retransmits: 0, resets: 0 },
          signals: { retransmits: 0, resets: 0 },
        },
        exactMode: false,
      };
      this.#nodes.set(name, n);
    }
    return n;
  }

  /**
   * Starts keeping `node`'s beats: its agent runs a probe, so an exchange
   * may come after the beat it carried (the first one after the agent starts).
   */
  track(node: string, exact = false): void {
    const n = this.#node(node);
    // An agent that traces its kubelet exactly: its TCP-level exchanges
    // never pair, from the first beat on.
    n.exactMode = exact;
  }

  /** Records an exchange; returns the beat it carried when that beat is already known. */
  addExchange(ex: WireExchange): Pair | null {
    // A renewal still waiting carries nothing to pair or summarise yet.
    if (ex.signal === "pending") return null;
    const n = this.#node(ex.node);
    const at = Date.parse(ex.at);
    const exact = ex.confidence === "exact";
    const s = n.summary;
    if (ex.srttUs > 0) s.srttUs = ex.srttUs;
    if (ex.signal === undefined) {
      s.lastExchangeAt = ex.at;
      s.lastLatencyMs = ex.latencyMs;
    }
    // A probe's signals count every retransmit and reset on the kubelet's
    // connection, its exchanges those within them (a simulated node sends
    // exchanges only): the summary shows the larger count, so the trouble a
    // signal marks always has its count beside it.
    const tally = ex.signal === undefined
      ? n.counted.exchanges
      : n.counted.signals;
    tally.retransmits += ex.retransmits;
    tally.resets += ex.resets;
    s.retransmits = Math.max(
      n.counted.exchanges.retransmits,
      n.counted.signals.retransmits,
    );
    s.resets = Math.max(n.counted.exchanges.resets, n.counted.signals.resets);
    const renewal = ex.signal === undefined &&
      (exact || ex.bytesSent >= MIN_CARRIER_BYTES);
    const failed = exact &&
      (ex.status === undefined ? ex.bytesReceived === 0 : ex.status >= 500);
    if (
      ex.retransmits > 0 || ex.resets > 0 || failed ||
      (renewal && ex.latencyMs > SLOW_MS)
    ) {
      n.lastTroubleAt = at;
    }
    s.trouble = at - n.lastTroubleAt <= TROUBLE_WINDOW_MS;
    // Retransmits, resets and closed connections: news, not exchanges.
    if (ex.signal !== undefined) return null;
    if (exact) n.lastExactAt = Math.max(n.lastExactAt, at);
    else if (n.exactMode || at - n.lastExactAt <= EXACT_MODE_MS) return null;
    if (!renewal) return null;
    const carrier: Carrier = {
      at,
      latencyMs: ex.latencyMs,
      confidence: ex.confidence ?? "inferred",
      resourceVersion: ex.resourceVersion,
    };
    const i = n.beats.findIndex((beat) => belongs(carrier, beat));
    if (i < 0) {
      push(n.exchanges, carrier);
      return null;
    }
    const [beat] = n.beats.splice(i, 1);
    return pair(beat!.renewTime, carrier);
  }

  /**
   * Records a node beat, whose Lease before it had `previousVersion`;
   * returns its pair when its exchange is already known.
   */
  addBeat(
    node: string,
    renewTime: number,
    previousVersion: string | null = null,
  ): Pair | null {
    const n = this.#nodes.get(node);
    if (!n) return null; // no agent reports wire data for this node
    const beat: WaitingBeat = { renewTime, previousVersion };
    let best = -1;
    for (let i = 0; i < n.exchanges.length; i++) {
      const e = n.exchanges[i]!;
      if (!belongs(e, beat)) continue;
      if (best < 0 || e.at < n.exchanges[best]!.at) best = i;
    }
    if (best < 0) {
      push(n.beats, beat);
      return null;
    }
    const [carrier] = n.exchanges.splice(best, 1);
    return pair(renewTime, carrier!);
  }

  /** Exchanges and beats of `node` waiting for their other half. */
  waiting(node: string): { exchanges: number; beats: number } {
    const n = this.#nodes.get(node);
    return { exchanges: n?.exchanges.length ?? 0, beats: n?.beats.length ?? 0 };
  }

  /** Wire summary of `node`, or undefined when no agent reported for it. */
  summary(node: string): WireSummary | undefined {
    const n = this.#nodes.get(node);
    return n && { ...n.summary };
  }

  /** Forgets `node` (it left the cluster). */
  forget(node: string): void {
    this.#nodes.delete(node);
  }
}

function carries(exchangeAt: number, renewTime: number): boolean {
  return exchangeAt >= renewTime - PAIR_SLACK_MS &&
    exchangeAt <= renewTime + PAIR_WINDOW_MS;
}

/**
 * Whether exchange `e` carried `beat`: an exact exchange by the version it
 * updated (by time when either version is unknown), an inferred one by time.
 */
function belongs(e: Carrier, beat: WaitingBeat): boolean {
  if (
    e.confidence === "exact" && e.resourceVersion !== undefined &&
    beat.previousVersion !== null
  ) {
    return e.resourceVersion === beat.previousVersion;
  }
  return carries(e.at, beat.renewTime);
}

function pair(renewTime: number, carrier: Carrier): Pair {
  return {
    renewTime,
    latencyMs: carrier.latencyMs,
    confidence: carrier.confidence,
  };
}

function push<T>(list: T[], item: T): void {
  list.push(item);
  if (list.length > KEEP) list.shift();
}
