/**
 * The heart hub: where every lease source (simulator, replay, real watcher)
 * delivers Lease events. It keeps the hearts, stores their beats, decides
 * statuses on Earthworm's clock and publishes `beat`, `status`, `source` and
 * `wire` events to the stream's log. Given a way to read one Lease fresh, it
 * calls a heart expired only after a read confirmed its silence, and reports
 * its own view stale when a read shows what the watch never delivered.
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
  type ConfirmPolicy,
  ExpiryConfirmer,
  type ReadLease,
  type ReadResult,
} from "./expiry_confirmer.ts";
import {
  DEFAULT_POLICY,
  expectedInterval,
  gateExpiry,
  type HeartState,
  heartStatus,
  judgeRead,
  newHeart,
  nextStatusChange,
  type ObservedBeat,
  observeLease,
  type StatusPolicy,
} from "./heart.ts";
import { getLogger } from "../core/log.ts";
import { WireState } from "./wire_state.ts";
import {
  diagnoseHeart,
  diagnoseSource,
  type Finding,
  type NodeWireView,
} from "./diagnosis.ts";
import { EpisodeBook } from "./episodes.ts";
import type { Pair } from "../wire/wire_pairing.ts";

/** What a live beat event learns of the exchange that carried it. */
type WirePair = Pick<Pair, "latencyMs" | "confidence">;
import type { ProbeState, WireReportSink } from "../core/wire_types.ts";

/** Longest a node beat waits for the exchange that carried it. */
export const WIRE_GRACE_MS = 200;

const log = getLogger("hub");

/** Settings of a hub. */
export interface HeartHubOptions {
  clock: Clock;
  source: Pick<SourceState, "kind" | "name">;
  /** Rate of the clock against wall time (mock `--speed`). Default 1. */
  timeScale?: number;
  store?: Partial<BeatStoreOptions>;
  events?: Partial<EventLogOptions>;
  policy?: StatusPolicy;
  /**
   * Reads one Lease fresh (a quorum read). With it, a heart becomes
   * `expired` only once a read confirms its silence; without it (tests),
   * the silence alone decides.
   */
  confirm?: ReadLease;
  /** Bounds of the confirmation reads. */
  confirmPolicy?: Partial<ConfirmPolicy>;
  /**
   * Called when a fresh read shows a change the watch did not deliver: the
   * view is stale and must be rebuilt (the watch loop relists). The hub
   * reports the source not current meanwhile.
   */
  onStale?: (reason: string) => void;
}

/** Running totals exported as metrics. */
export interface HubCounters {
  beats: number;
  transitions: number;
  leaseEvents: number;
  resyncs: number;
  wireExchanges: number;
  wirePaired: number;
  /** Diagnoses published (episodes opened or changed). */
  diagnoses: number;
  /** Silences a fresh read confirmed. */
  confirmedSilences: number;
  /** Fresh reads that showed the view stale. */
  staleViews: number;
}

/** Id of the episodes of Earthworm's own blindness. */
export const SOURCE = "source";
/** How long after Earthworm sees again a late-answered renewal may still name the API server. */
const LATE_EVIDENCE_MS = 60_000;

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
    diagnoses: 0,
    confirmedSilences: 0,
    staleViews: 0,
  };
  /** The confirmation reads, when the hub has a way to read a Lease. */
  readonly confirmer: ExpiryConfirmer | undefined;
  readonly #onStale: ((reason: string) => void) | undefined;
  #hearts = new Map<string, HeartState>();
  /** Why hearts are late: open episodes and their history. */
  readonly episodes: EpisodeBook = new EpisodeBook();
  /** Holders of hearts when their open episode began (a handover shows against it). */
  #holderAtStart = new Map<string, string | null>();
  /** The last episode of Earthworm's own blindness, and until when late evidence may still change it. */
  #sourceEpisode: { start: number; end: number | null } | null = null;
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
    this.#onStale = options.onStale;
    this.confirmer = options.confirm && new ExpiryConfirmer({
      clock: options.clock,
      read: options.confirm,
      ...(options.confirmPolicy && { policy: options.confirmPolicy }),
      onResult: (id, asked, result) => this.#confirmed(id, asked, result),
    });
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
    if (connected !== wasConnected) {
      // Reads under way belong to the old view; confirmations too.
      this.confirmer?.reset();
      for (const heart of this.#hearts.values()) {
        heart.silenceConfirmed = false;
        // Silence is only counted from the moment Earthworm can see again.
        if (connected) heart.baselineAt = at;
      }
    }
    if (!connected && wasConnected) {
      this.#sourceEpisode = { start: at, end: null };
    }
    if (connected && this.#sourceEpisode?.end === null) {
      this.#diagnoseSource(at);
      this.#sourceEpisode.end = at;
      const closed = this.episodes.close(SOURCE, at);
      delete this.#source.diagnosis;
      if (closed) {
        this.events.publish("diagnosis", {
          id: SOURCE,
          diagnosis: null,
          episode: closed,
        });
      }
    }
    if (!connected) this.#diagnoseSource(at, false);
    this.events.publish("source", this.sourceState());
    // Every heart's status depends on the source: decide them all again.
    for (const heart of this.#hearts.values()) heart.checkAt = -Infinity;
    this.sweep(at);
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
      if (
        heart.status !== "healthy" || this.episodes.current(heart.id)
      ) this.#diagnose(heart, now);
    }
    if (!this.#source.connected) this.#diagnoseSource(now);
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
    const late = this.#sourceEpisode;
    if (late?.end != null && this.clock.now() - late.end < LATE_EVIDENCE_MS) {
      queueMicrotask(() => this.#diagnoseSource(this.clock.now()));
    }
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
   * its exchanges. The source's `wire` state summarises every node's probe;
   * it holds the nodes with a Lease, and a few whose Lease is not seen yet.
   */
  wireReport(
    node: string,
    probe: ProbeState,
    exchanges: WireExchange[],
  ): void {
    const known = this.#hearts.has(nodeHeartId(node));
    const changed = this.#wire.probe(node, probe, known);
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
      if (heart.kind === "node") this.#wire.nodeAdded(heart.name);
      heart.status = this.#decide(heart, observedAt);
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
      this.confirmer?.forget(id);
      const from = heart.status;
      heart.status = this.#decide(heart, observedAt);
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
    this.#closeEpisode(id, at);
    this.episodes.delete(id);
    this.#hearts.delete(id);
    this.confirmer?.forget(id);
    this.store.delete(id);
    if (heart.kind === "node") {
      const changed = this.#wire.forget(heart.name);
      if (changed) {
        this.setWireAvailability(
          changed.available,
          changed.reason,
          changed.pairing,
        );
      }
    }
    this.events.publish("status", {
      id,
      from: heart.status,
      to: null,
      heart: this.#toHeart(heart, at),
    });
  }

  /**
   * The heart's status at `now`. A heart past its lease duration is
   * `expired` only once a fresh read confirmed its silence: until then the
   * read is asked for and the heart stays as it was. Sets when to look at
   * the heart again ({@linkcode HeartState.checkAt}).
   */
  #decide(heart: HeartState, now: number): HeartStatus {
    const connected = this.#source.connected;
    const decided = heartStatus(heart, now, connected, this.policy);
    const status = decided !== "expired" || !this.confirmer
      ? decided
      : gateExpiry(
        decided,
        heart.status,
        heart.silenceConfirmed ? "confirmed" : this.confirmer.request(
          heart.id,
          heart.namespace,
          heart.name,
          heart.lastRenewTime,
          now,
        ),
      );
    heart.checkAt = nextStatusChange(heart, status, connected, this.policy);
    return status;
  }

  /** Acts on a confirmation read of heart `id`. */
  #confirmed(id: string, asked: number | null, result: ReadResult): void {
    const heart = this.#hearts.get(id);
    if (!heart || !this.#source.connected) return;
    const now = this.clock.now();
    if ("error" in result) {
      log.debug("cannot confirm the silence of a heart", {
        id,
        error: result.error instanceof Error
          ? result.error.message
          : String(result.error),
      });
      this.#updateStatus(heart, now);
      return;
    }
    const verdict = judgeRead(heart, asked, result.lease);
    if (verdict !== "behind" && verdict !== "gone") {
      this.confirmer?.forget(id);
      if (verdict === "confirmed") {
        heart.silenceConfirmed = true;
        this.counters.confirmedSilences++;
      }
      this.#updateStatus(heart, now);
      return;
    }
    this.counters.staleViews++;
    const reason = verdict === "gone"
      ? `Lease ${id} is gone from the API server, but the watch did not say so: rebuilding the view`
      : `Lease ${id} was renewed at ${result.lease?.spec?.renewTime} on the API server, but the watch did not deliver it: rebuilding the view`;
    log.warn("the watch is behind the API server", { id, verdict });
    this.#onStale?.(reason);
    this.source(false, reason, now);
  }

  #updateStatus(heart: HeartState, now: number): void {
    const status = this.#decide(heart, now);
    if (status === heart.status) return;
    const from = heart.status;
    heart.status = status;
    this.#diagnose(heart, now);
    this.events.publish("status", {
      id: heart.id,
      from,
      to: status,
      heart: this.#toHeart(heart, now),
    });
  }

  /**
   * Opens, updates or closes the heart's episode for its status at `now`:
   * late or expired opens one (or re-diagnoses it), healthy closes it, and
   * while Earthworm is blind an open one says so (nothing is blamed).
   */
  #diagnose(heart: HeartState, now: number): void {
    const open = this.episodes.current(heart.id);
    const bad = heart.status === "late" || heart.status === "expired";
    if (!bad && !(open && heart.status === "unknown")) {
      if (!open) return;
      // A Lease that beats again under another holder was handed over.
      const before = this.#holderAtStart.get(heart.id) ?? heart.holder;
      if (heart.kind === "lease" && heart.holder !== before) {
        this.#publishEpisode(heart.id, now, open.worst, {
          cause: "handover",
          summary: `leadership moved from ${before ?? "nobody"} to ${
            heart.holder ?? "nobody"
          } after ${
            Math.round((now - Date.parse(open.start)) / 1000)
          } s of silence`,
          evidence: [{
            at: new Date(now).toISOString(),
            text: `holder changed from ${before ?? "none"} to ${
              heart.holder ?? "none"
            }`,
          }],
        });
      }
      this.#closeEpisode(heart.id, now);
      return;
    }
    if (!open) this.#holderAtStart.set(heart.id, heart.holder);
    const blind = this.#source.connected
      ? undefined
      : this.#source.reason ?? "the API server cannot be reached";
    const finding = diagnoseHeart(
      {
        kind: heart.kind,
        name: heart.name,
        holder: heart.holder,
        holderAtStart: this.#holderAtStart.get(heart.id) ?? heart.holder,
        silentSince: Math.max(
          heart.lastObservedAt ?? heart.baselineAt,
          heart.baselineAt,
        ),
        recentIntervals: heart.recentIntervals,
      },
      heart.kind === "node" ? this.#nodeView(heart.name, heart) : null,
      now,
      blind,
    );
    this.#publishEpisode(
      heart.id,
      now,
      bad ? heart.status : "unknown",
      finding,
    );
  }

  #nodeView(node: string, heart: HeartState): NodeWireView {
    return this.#wire.view(
      node,
      heart.lastObservedAt ?? heart.baselineAt,
    );
  }

  /** Records the episode's finding; true when it is new or changed (and published). */
  #publishEpisode(
    id: string,
    now: number,
    worst: HeartStatus,
    finding: Finding,
  ): boolean {
    const e = this.episodes.record(id, now, worst, finding, this.clock.now());
    if (!e) return false;
    this.counters.diagnoses++;
    this.events.publish("diagnosis", {
      id,
      diagnosis: {
        cause: e.cause,
        since: e.start,
        summary: e.summary,
        evidence: e.evidence,
      },
      episode: e,
    });
    return true;
  }

  #closeEpisode(id: string, now: number): void {
    this.#holderAtStart.delete(id);
    const closed = this.episodes.close(id, now);
    if (closed) {
      this.events.publish("diagnosis", {
        id,
        diagnosis: null,
        episode: closed,
      });
    }
  }

  /**
   * Diagnoses Earthworm's own blindness: the API server itself when renewals
   * wait for answers on the nodes, else only Earthworm's view. Evidence that
   * arrives just after Earthworm sees again (a renewal answered late) still
   * counts for the episode that just ended.
   */
  #diagnoseSource(now: number, announce = true): void {
    const ep = this.#sourceEpisode;
    if (!ep) return;
    const nodes = new Map<string, NodeWireView>();
    for (const node of this.#wire.nodes()) {
      nodes.set(node, this.#wire.view(node, ep.start));
    }
    const finding = diagnoseSource(
      ep.start,
      this.#source.reason ?? "the API server could not be reached",
      nodes,
      ep.end ?? now,
    );
    if (ep.end === null) {
      this.#source.diagnosis = {
        cause: finding.cause,
        since: new Date(ep.start).toISOString(),
        summary: finding.summary,
        evidence: finding.evidence,
      };
      if (
        this.#publishEpisode(SOURCE, ep.start, "unknown", finding) && announce
      ) {
        // The banner reads the source's diagnosis.
        this.events.publish("source", this.sourceState());
      }
      return;
    }
    // Closed: late evidence may still name the API server.
    const closed = this.episodes.list(SOURCE).at(-1);
    if (
      closed && closed.end !== null && finding.cause !== closed.cause &&
      finding.cause === "apiserver"
    ) {
      this.episodes.closed[closed.cause]--;
      this.episodes.closed[finding.cause]++;
      closed.cause = finding.cause;
      closed.causeSince = new Date(now).toISOString();
      closed.summary = finding.summary;
      closed.evidence = finding.evidence;
      this.events.publish("diagnosis", {
        id: SOURCE,
        diagnosis: null,
        episode: closed,
      });
    }
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
    const e = this.episodes.current(h.id);
    if (e) {
      heart.diagnosis = {
        cause: e.cause,
        since: e.start,
        summary: e.summary,
        evidence: e.evidence,
      };
    }
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
