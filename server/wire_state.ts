/**
 * The leader's view of the wire: which agents run their eBPF probe (and why
 * the others do not), and the pairing of node beats with the exchanges that
 * carried them. The hub asks it for pairs and for the availability summary
 * it shows in `source.wire`; it publishes nothing itself.
 *
 * It holds the cluster's nodes only: a node leaves with its Lease, and a
 * node whose Lease is not known yet (an agent that reports before the
 * leader has listed the Leases) waits among at most
 * {@linkcode MAX_PENDING_NODES} others, the least recently heard of leaving
 * first.
 *
 * @module
 */

import type { Phrase, WireExchange, WireSummary } from "../core/api_types.ts";
import { type NodeWireView, phrase } from "./diagnosis.ts";
import type { ProbeState } from "../core/wire_types.ts";
import { type Pair, WirePairing } from "../wire/wire_pairing.ts";
import { LruMap } from "../core/lru.ts";

/** Most nodes kept before their Lease is known. */
export const MAX_PENDING_NODES = 64;

/** Whether wire data is available across the agents, and why not. */
export interface WireAvailability {
  available: boolean;
  reason?: string;
  /** The reason as data, for the UI's languages. */
  reasonPhrase?: Phrase;
  /** How renewals are paired across the agents that run a probe. */
  pairing?: string;
  /** The pairing as data, for the UI's languages. */
  pairingPhrase?: Phrase;
}

/** A node beat paired with its exchange. */
export interface NodePair extends Pair {
  node: string;
}

/** Agents' probe states and beat–exchange pairing. */
export class WireState {
  #pairing = new WirePairing();
  /** Nodes with a Lease. */
  #probes = new Map<string, ProbeState>();
  /** Recent exchanges and signals per node, for diagnosis. */
  #records = new Map<string, WireExchange[]>();
  /** Nodes whose Lease is not known yet. */
  #pending = new LruMap<string, ProbeState>(
    MAX_PENDING_NODES,
    (node) => this.#forgetWire(node),
  );

  /**
   * Records `node`'s probe state (`known`: whether the node's Lease is);
   * returns the new summary over all agents when this changed it, else null.
   */
  probe(
    node: string,
    state: ProbeState,
    known = true,
  ): WireAvailability | null {
    const before = this.#probes.get(node) ?? this.#pending.get(node);
    if (known) {
      this.#pending.delete(node);
      this.#probes.set(node, { ...state });
    } else this.#pending.set(node, { ...state });
    if (state.available) {
      this.#pairing.track(node, state.pairing === "exact");
    }
    if (
      before?.available === state.available &&
      before?.reason === state.reason &&
      before?.pairing === state.pairing &&
      before?.pairingReason === state.pairingReason
    ) return null;
    return this.#summary();
  }

  /** `node`'s Lease appeared: a state it reported before is kept for good. */
  nodeAdded(node: string): void {
    const pending = this.#pending.get(node);
    if (!pending) return;
    this.#pending.delete(node);
    this.#probes.set(node, pending);
  }

  /**
   * Forgets `node` (its Lease is gone). Returns the new summary when this
   * changed it, else null.
   */
  forget(node: string): WireAvailability | null {
    this.#forgetWire(node);
    const had = this.#probes.delete(node) || this.#pending.delete(node);
    return had ? this.#summary() : null;
  }

  #forgetWire(node: string): void {
    this.#pairing.forget(node);
    this.#records.delete(node);
  }

  #summary(): WireAvailability {
    const all = [...this.#probes.entries(), ...this.#pending.entries()];
    const down = all.filter(([, p]) => !p.available);
    const summary: WireAvailability = { available: down.length < all.length };
    if (down.length > 0) {
      const [first, p] = down[0]!;
      summary.reason =
        `${down.length} of ${all.length} agents run lease-only; ${first}: ${
          p.reason ?? "unknown reason"
        }`;
      summary.reasonPhrase = phrase("wire.leaseOnly", {
        count: down.length,
        total: all.length,
        node: first,
        reason: p.reason ?? null,
      });
    } else if (all.length === 0) {
      summary.reason = "no agent has reported wire data yet";
      summary.reasonPhrase = phrase("wire.noAgent");
    }
    const running = all.filter(([, p]) => p.available && p.pairing);
    const inferred = running.filter(([, p]) => p.pairing === "inferred");
    if (running.length > 0) {
      const exact = running.length - inferred.length;
      summary.pairing =
        `renewals identified exactly on ${exact} of ${running.length} nodes` +
        (inferred.length > 0
          ? `; inferred from TCP timing on ${inferred[0]![0]}${
            inferred.length > 1 ? ` and ${inferred.length - 1} more` : ""
          }: ${inferred[0]![1].pairingReason ?? "unknown reason"}`
          : "");
      const counts = { exact, count: running.length };
      summary.pairingPhrase = inferred.length === 0
        ? phrase("wire.pairing", counts)
        : phrase(
          inferred.length > 1
            ? "wire.pairingInferredMore"
            : "wire.pairingInferred",
          {
            ...counts,
            node: inferred[0]![0],
            more: inferred.length - 1,
            reason: inferred[0]![1].pairingReason ?? null,
          },
        );
    }
    return summary;
  }

  /** Records exchanges; returns the beats they carried that were already known. */
  exchanges(exchanges: WireExchange[]): NodePair[] {
    const pairs: NodePair[] = [];
    for (const ex of exchanges) {
      this.#remember(ex);
      const pair = this.#pairing.addExchange(ex);
      if (pair) pairs.push({ ...pair, node: ex.node });
    }
    return pairs;
  }

  /**
   * Records a node beat whose Lease had `previousVersion` before it; returns
   * its exchange's pair when it already came.
   */
  beat(
    node: string,
    renewTime: number,
    previousVersion: string | null = null,
  ): Pair | null {
    // Before a beat, only the last minute's records can still be evidence
    // or set the RTT baseline of a silence that starts now: at 5,000 nodes,
    // ten minutes of every node's records were over 100 MB.
    const list = this.#records.get(node);
    if (list !== undefined) {
      dropBefore(list, renewTime - RECORDS_BEFORE_BEAT_MS);
    }
    return this.#pairing.addBeat(node, renewTime, previousVersion);
  }

  /** The wire summary of `node`, once it reported an exchange. */
  summary(node: string): WireSummary | undefined {
    return this.#pairing.summary(node);
  }

  /** Probe state of each node that reported. */
  probes(): Map<string, ProbeState> {
    return new Map([...this.#probes, ...this.#pending.entries()]);
  }

  /** Whether `node`'s agent runs its probe (its wire data can explain a silence). */
  probeAvailable(node: string): boolean {
    return this.#probes.get(node)?.available === true;
  }

  /**
   * What the node's agent saw, for diagnosis: its probe state, its recent
   * records, and the median RTT of those before `baselineUntil`.
   */
  view(node: string, baselineUntil: number): NodeWireView {
    const records = this.#records.get(node) ?? [];
    const rtts = records.filter((x) =>
      x.srttUs > 0 && Date.parse(x.at) < baselineUntil
    ).map((x) => x.srttUs).sort((a, b) => a - b);
    return {
      probe: this.#probes.get(node),
      records,
      baselineSrttUs: rtts.length > 0 ? rtts[rtts.length >> 1]! : null,
    };
  }

  /** Nodes whose agents reported. */
  nodes(): string[] {
    return [...this.#probes.keys()];
  }

  #remember(ex: WireExchange): void {
    let list = this.#records.get(ex.node);
    if (!list) {
      list = [];
      this.#records.set(ex.node, list);
    }
    list.push(ex);
    if (list.length > RECORDS_PER_NODE) list.shift();
    dropBefore(list, Date.parse(ex.at) - RECORDS_KEPT_MS);
  }
}

/** Drops the records of `list` (oldest first) that started before `cutoff`. */
function dropBefore(list: WireExchange[], cutoff: number): void {
  let n = 0;
  while (n < list.length && Date.parse(list[n]!.at) < cutoff) n++;
  if (n > 0) list.splice(0, n);
}

/**
 * Records kept per node for diagnosis: at most this many, this recent (a
 * silent node's, since its silence began: a lease duration is 40 s)...
 */
const RECORDS_PER_NODE = 256;
const RECORDS_KEPT_MS = 10 * 60 * 1000;
/** ...and of a node that beats, those of the minute before its last beat. */
const RECORDS_BEFORE_BEAT_MS = 60_000;
