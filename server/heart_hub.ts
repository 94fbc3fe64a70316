/**
 * The heart hub: where every lease source (simulator, replay, real watcher)
 * delivers Lease events. It keeps the hearts, stores their beats, decides
 * statuses on Earthworm's clock and publishes `beat`, `status`, `source` and
 * `wire` events to the stream's log.
 *
 * @module
 */

import type {
  Beat,
  Heart,
  HeartStatus,
  SnapshotEvent,
  SourceState,
  WireExchange,
  WireSummary,
} from "../core/api_types.ts";
import {
  type Lease,
  type LeaseEvent,
  type LeaseSink,
  NODE_LEASE_NAMESPACE,
} from "../core/lease_types.ts";
import { BeatStore, type BeatStoreOptions, toBeat } from "./beat_store.ts";
import { type Clock, sleepUnlessAborted } from "../core/clock.ts";
import { isoTime } from "../core/iso_time.ts";
import { EventLog, type EventLogOptions } from "./event_log.ts";
import {
  DEFAULT_POLICY,
  expectedInterval,
  type HeartState,
  heartStatus,
  newHeart,
  nextStatusChange,
  type ObservedBeat,
  observeLease,
  type StatusPolicy,
} from "./heart.ts";
import { WireState } from "./wire_state.ts";
import type { Pair } from "../wire/wire_pairing.ts";

/** What a live beat event learns of the exchange that carried it. */
type WirePair = Pick<Pair, "latencyMs" | "confidence">;
import type { ProbeState, WireReportSink } from "../core/wire_types.ts";

/** Longest a node beat waits for the exchange that carried it. */
export const WIRE_GRACE_MS = 50;

/** Settings of a hub. */
export interface HeartHubOptions {
  clock: Clock;
  source: Pick<SourceState, "kind" | "name">;
  /** Rate of the clock against wall time (mock `--speed`). Default 1. */
  timeScale?: number;
  store?: Partial<BeatStoreOptions>;
  events?: Partial<EventLogOptions>;
  policy?: StatusPolicy;
}

/** Running totals exported as metrics. */
export interface HubCounters {
  beats: number;
  transitions: number;
  leaseEvents: number;
  resyncs: number;
  wireExchanges: number;
  wirePaired: number;
}

/** Hearts, their beats and the event stream. */
export class HeartHub implements LeaseSink, WireReportSink {
  readonly clock: Clock;
  readonly store: BeatStore;
  readonly events: EventLog;
  readonly policy: StatusPolicy;
  readonly counters: HubCounters = {
    beats: 0,
    transitions: 0,
    leaseEvents: 0,
    resyncs: 0,
    wireExchanges: 0,
    wirePaired: 0,
  };
  #hearts = new Map<string, HeartState>();
  #source: SourceState;
  #wire = new WireState();
  /**
   * Node beats whose carrying exchange has not arrived yet, held for at most
   * {@linkcode WIRE_GRACE_MS} so the live `beat` event can carry its wire
   * latency (the agent reports the exchange within milliseconds of the
   * answer, usually just after the API server's watch event).
   */
  #held = new Map<
    string,
    { renewTime: number; publish: (pair?: WirePair) => void }
  >();

  /** Creates an empty hub; the source starts disconnected until it reports. */
  constructor(options: HeartHubOptions) {
    this.clock = options.clock;
    this.policy = options.policy ?? DEFAULT_POLICY;
    this.store = new BeatStore(options.store);
    this.events = new EventLog({
      firstId: options.clock.now() * 1000,
      ...options.events,
    });
    this.#source = {
      ...options.source,
      connected: false,
      reason: "not connected yet",
      since: new Date(options.clock.now()).toISOString(),
      timeScale: options.timeScale ?? 1,
    };
  }

  /** LeaseSink: one watch event. */
  event(event: LeaseEvent, observedAt: number): void {
    this.counters.leaseEvents++;
    if (event.type === "DELETED") this.#delete(idOf(event.object), observedAt);
    else this.#upsert(event.object, observedAt);
  }

  /** LeaseSink: a full list; hearts missing from it are deleted. */
  resync(leases: Lease[], observedAt: number): void {
    this.counters.resyncs++;
    const seen = new Set<string>();
    for (const lease of leases) {
      seen.add(idOf(lease));
      this.#upsert(lease, observedAt);
    }
    for (const id of [...this.#hearts.keys()]) {
      if (!seen.has(id)) this.#delete(id, observedAt);
    }
  }

  /** LeaseSink: the API server became reachable or unreachable. */
  source(connected: boolean, reason: string | undefined, at: number): void {
    if (
      connected === this.#source.connected && reason === this.#source.reason
    ) return;
    const wasConnected = this.#source.connected;
    this.#source = {
      ...this.#source,
      connected,
      since: new Date(at).toISOString(),
    };
    if (reason === undefined || connected) delete this.#source.reason;
    else this.#source.reason = reason;
    if (connected && !wasConnected) {
      // Silence is only counted from the moment Earthworm can see again.
      for (const heart of this.#hearts.values()) heart.baselineAt = at;
    }
    this.events.publish("source", this.sourceState());
    // Every heart's status depends on the source: decide them all again.
    for (const heart of this.#hearts.values()) this.#updateStatus(heart, at);
  }

  /** Records why wire (eBPF) data is or is not available. */
  setWireAvailability(
    available: boolean,
    reason?: string,
    pairing?: string,
  ): void {
    this.#source = {
      ...this.#source,
      wire: {
        available,
        ...(reason !== undefined && { reason }),
        ...(pairing !== undefined && { pairing }),
      },
    };
    this.events.publish("source", this.sourceState());
  }

  /**
   * Re-decides at `now` the status of every heart whose status may have
   * changed by time alone since it was last decided, publishing changes.
   */
  sweep(now: number = this.clock.now()): void {
    for (const heart of this.#hearts.values()) {
      if (now >= heart.checkAt) this.#updateStatus(heart, now);
    }
  }

  /** Sweeps statuses every `intervalMs` until `signal` aborts; prunes old beats each minute. */
  async runSweeper(signal: AbortSignal, intervalMs = 1000): Promise<void> {
    let lastPrune = this.clock.now();
    while (await sleepUnlessAborted(this.clock, intervalMs, signal)) {
      const now = this.clock.now();
      this.sweep(now);
      if (now - lastPrune >= 60_000) {
        this.store.prune(now);
        lastPrune = now;
      }
    }
  }

  /** Takes a batch of wire exchanges from a node's agent. */
  wire(exchanges: WireExchange[]): void {
    if (exchanges.length === 0) return;
    this.counters.wireExchanges += exchanges.length;
    for (const pair of this.#wire.exchanges(exchanges)) {
      const id = nodeHeartId(pair.node);
      if (
        this.store.setWireLatency(
          id,
          pair.renewTime,
          pair.latencyMs,
          pair.confidence,
        )
      ) {
        this.counters.wirePaired++;
        const held = this.#held.get(id);
        if (held?.renewTime === pair.renewTime) {
          this.#held.delete(id);
          held.publish(pair);
        }
      }
    }
    this.events.publish("wire", { exchanges });
  }

  /**
   * Takes an agent's report: whether its eBPF probe runs (and why not), and
   * its exchanges. The source's `wire` state summarises every node's probe.
   */
  wireReport(
    node: string,
    probe: ProbeState,
    exchanges: WireExchange[],
  ): void {
    const changed = this.#wire.probe(node, probe);
    if (changed) {
      this.setWireAvailability(
        changed.available,
        changed.reason,
        changed.pairing,
      );
    }
    this.wire(exchanges);
  }

  /** Probe state of each node that reported. */
  probes(): Map<string, ProbeState> {
    return this.#wire.probes();
  }

  /** The source as the API reports it. */
  sourceState(): SourceState {
    return { ...this.#source };
  }

  /** Number of hearts. */
  get size(): number {
    return this.#hearts.size;
  }

  /** All hearts at `now`. */
  hearts(now: number = this.clock.now()): Heart[] {
    return [...this.#hearts.values()].map((h) => this.#toHeart(h, now));
  }

  /** One heart, or undefined. */
  heart(id: string, now: number = this.clock.now()): Heart | undefined {
    const state = this.#hearts.get(id);
    return state && this.#toHeart(state, now);
  }

  /** Beats of heart `id` (oldest first), or undefined for an unknown heart. */
  beats(
    id: string,
    opts: { since?: number; limit?: number } = {},
  ): Beat[] | undefined {
    if (!this.#hearts.has(id)) return undefined;
    return this.store.query(id, { ...opts, now: this.clock.now() }).map(toBeat);
  }

  /** Hearts per status. */
  statusCounts(): Record<HeartStatus, number> {
    const counts: Record<HeartStatus, number> = {
      healthy: 0,
      late: 0,
      expired: 0,
      unknown: 0,
    };
    for (const h of this.#hearts.values()) counts[h.status]++;
    return counts;
  }

  /** The `snapshot` event for a new stream client. */
  snapshot(now: number = this.clock.now()): SnapshotEvent {
    return {
      generatedAt: new Date(now).toISOString(),
      source: this.sourceState(),
      hearts: this.hearts(now),
    };
  }

  #upsert(lease: Lease, observedAt: number): void {
    const id = idOf(lease);
    let heart = this.#hearts.get(id);
    if (!heart) {
      heart = newHeart(lease, observedAt);
      this.#hearts.set(id, heart);
      this.#decide(heart, observedAt);
      this.events.publish("status", {
        id,
        from: null,
        to: heart.status,
        heart: this.#toHeart(heart, observedAt),
      });
      return;
    }
    // A newer observation: a beat still waiting for its exchange goes first.
    this.#flushHeld(id);
    const transitionsBefore = heart.transitions;
    const previousVersion = heart.resourceVersion;
    const observed = observeLease(heart, lease, observedAt, this.policy);
    if (heart.transitions !== transitionsBefore) this.counters.transitions++;
    if (observed) {
      this.counters.beats++;
      const paired = heart.kind === "node"
        ? this.#wire.beat(heart.name, observed.renewTime, previousVersion)
        : null;
      this.store.append(
        id,
        paired
          ? {
            ...observed,
            wireLatencyMs: paired.latencyMs,
            wireConfidence: paired.confidence,
          }
          : observed,
      );
      if (paired) this.counters.wirePaired++;
      const from = heart.status;
      this.#decide(heart, observedAt);
      if (paired || heart.kind !== "node" || !this.#wire.summary(heart.name)) {
        this.#publishBeat(heart, observed, from, paired ?? undefined);
      } else {
        this.#hold(
          id,
          observed.renewTime,
          (pair) => this.#publishBeat(heart, observed, from, pair),
        );
      }
    } else {
      this.#updateStatus(heart, observedAt);
    }
  }

  /** Publishes a beat (with the exchange that carried it, when known) and the status it changed. */
  #publishBeat(
    heart: HeartState,
    observed: ObservedBeat,
    from: HeartStatus,
    pair: WirePair | undefined,
  ): void {
    const beat = toBeat(
      pair === undefined ? observed : {
        ...observed,
        wireLatencyMs: pair.latencyMs,
        wireConfidence: pair.confidence,
      },
    );
    const wireHeart = this.#toHeart(heart, observed.observedAt);
    this.events.publish("beat", { id: heart.id, beat, heart: wireHeart });
    if (from !== heart.status) {
      this.events.publish("status", {
        id: heart.id,
        from,
        to: heart.status,
        heart: wireHeart,
      });
    }
  }

  #hold(
    id: string,
    renewTime: number,
    publish: (pair?: WirePair) => void,
  ): void {
    const entry = { renewTime, publish };
    this.#held.set(id, entry);
    this.clock.sleep(WIRE_GRACE_MS).then(() => {
      if (this.#held.get(id) !== entry) return;
      this.#held.delete(id);
      publish();
    });
  }

  /** Publishes a held beat of `id` without waiting any longer. */
  #flushHeld(id: string): void {
    const held = this.#held.get(id);
    if (!held) return;
    this.#held.delete(id);
    held.publish();
  }

  #delete(id: string, at: number): void {
    this.#flushHeld(id);
    const heart = this.#hearts.get(id);
    if (!heart) return;
    this.#hearts.delete(id);
    this.store.delete(id);
    this.events.publish("status", {
      id,
      from: heart.status,
      to: null,
      heart: this.#toHeart(heart, at),
    });
  }

  /** Decides the heart's status at `now`, and when to look at it again. */
  #decide(heart: HeartState, now: number): void {
    const connected = this.#source.connected;
    heart.status = heartStatus(heart, now, connected, this.policy);
    heart.checkAt = nextStatusChange(
      heart,
      heart.status,
      connected,
      this.policy,
    );
  }

  #updateStatus(heart: HeartState, now: number): void {
    const from = heart.status;
    this.#decide(heart, now);
    if (from === heart.status) return;
    const status = heart.status;
    this.events.publish("status", {
      id: heart.id,
      from,
      to: status,
      heart: this.#toHeart(heart, now),
    });
  }

  #toHeart(h: HeartState, _now: number): Heart {
    const expected = expectedInterval(h);
    const heart: Heart = {
      id: h.id,
      kind: h.kind,
      namespace: h.namespace,
      name: h.name,
      holder: h.holder,
      status: h.status,
      lastRenewTime: iso(h.lastRenewTime),
      lastObservedAt: iso(h.lastObservedAt),
      leaseDurationSeconds: h.leaseDurationSeconds,
      expectedIntervalSeconds: expected === null ? null : round3(expected),
      lastIntervalSeconds: h.lastIntervalSeconds === null
        ? null
        : round3(h.lastIntervalSeconds),
      skewSeconds: h.skewSeconds === null ? null : round3(h.skewSeconds),
      beats: h.beats,
      transitions: h.transitions,
      leaseTransitions: h.leaseTransitions,
    };
    const wire: WireSummary | undefined = h.kind === "node"
      ? this.#wire.summary(h.name)
      : undefined;
    if (wire) heart.wire = wire;
    return heart;
  }
}

/** Id of the heart of node `node`'s Lease. */
export function nodeHeartId(node: string): string {
  return `${NODE_LEASE_NAMESPACE}/${node}`;
}

function idOf(lease: Lease): string {
  return `${lease.metadata.namespace}/${lease.metadata.name}`;
}

function iso(ms: number | null): string | null {
  return ms === null ? null : isoTime(ms);
}

function round3(n: number): number {
  return Math.round(n * 1000) / 1000;
}
