/**
 * The heart hub: where every lease source (simulator, replay, real watcher)
 * delivers Lease events. It keeps the hearts, stores their beats, decides
 * statuses on Earthworm's clock and publishes `beat`, `status`, `source`,
 * `wire` and `diagnosis` events on its feed, which the stream's batcher
 * sends to clients in compact batches. Given a way to read one Lease fresh, it
 * calls a heart expired only after a read confirmed its silence, and reports
 * its own view stale when a read shows what the watch never delivered.
 *
 * A hub watches one cluster (it is then the watch loop's sink itself, and
 * its hearts' ids are `<namespace>/<name>`) or several: each cluster then
 * has its own sink ({@linkcode HeartHub.sink}), its own view of its API
 * server and its own confirmation reads, and its hearts' ids are
 * `<cluster>/<namespace>/<name>`. A cluster that cannot be seen turns only
 * its own hearts `unknown`.
 *
 * @module
 */

import {
  type Beat,
  type ClusterState,
  type Episode,
  type Heart,
  heartId,
  type HeartStatus,
  type Phrase,
  type SnapshotEvent,
  type SourceState,
  type WireExchange,
  type WireSummary,
} from "../core/api_types.ts";
import {
  type Lease,
  type LeaseEvent,
  type LeaseSink,
  NODE_LEASE_NAMESPACE,
} from "../core/lease_types.ts";
import { BeatStore, type BeatStoreOptions, toBeat } from "./beat_store.ts";
import { type Clock, sleepUnlessAborted, systemClock } from "../core/clock.ts";
import { isoTime } from "../core/iso_time.ts";
import { EventLog, type EventLogOptions } from "./event_log.ts";
import { HubFeed } from "./hub_feed.ts";
import { StreamBatcher } from "./stream_batcher.ts";
import {
  type ConfirmPolicy,
  ExpiryConfirmer,
  type ReadLease,
  type ReadResult,
} from "./expiry_confirmer.ts";
import {
  applyLease,
  DEFAULT_POLICY,
  expectedInterval,
  gateExpiry,
  type HeartState,
  heartStatus,
  judgeRead,
  known,
  lastBeat,
  newHeart,
  nextStatusChange,
  type ObservedBeat,
  silentSince,
  type StatusPolicy,
} from "./heart.ts";
import { getLogger } from "../core/log.ts";
import { WireState } from "./wire_state.ts";
import {
  diagnoseHeart,
  diagnoseSource,
  type Finding,
  handoverFinding,
  type NodeWireView,
} from "./diagnosis.ts";
import { EpisodeBook } from "./episodes.ts";
import {
  aggregateSource,
  apiServerOf,
  checkClusterNames,
  type ClusterEntry,
  clusterState,
  type HubCluster,
} from "./hub_clusters.ts";
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
  /** What the hub watches: its kind, and its name (a server URL, a file, or the clusters' names). */
  source: Pick<SourceState, "kind" | "name">;
  /**
   * The clusters, when the hub watches several (each fed through
   * {@linkcode HeartHub.sink}); `confirm` and `onStale` below are then
   * per cluster, given here. Absent: one cluster, fed through the hub.
   */
  clusters?: HubCluster[];
  /** Rate of the clock against wall time (mock `--speed`). Default 1. */
  timeScale?: number;
  store?: Partial<BeatStoreOptions>;
  events?: Partial<EventLogOptions>;
  /**
   * Clock of the stream's batch window: wall time (the default), whatever
   * the speed of `clock`.
   */
  batchClock?: Clock;
  /** Length of the stream's batch window. Default `STREAM_BATCH_MS`. */
  batchMs?: number;
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
/** Shortest time between two weighings of late evidence. */
const LATE_DIAGNOSIS_MS = 1000;

/** Hearts, their beats and the event stream. */
export class HeartHub implements LeaseSink, WireReportSink {
  readonly clock: Clock;
  readonly store: BeatStore;
  /** The hub's events in full, as they happen (webhooks, the batcher, tests). */
  readonly feed: HubFeed = new HubFeed();
  /** The stream's messages: `batch`es of the feed's events, compactly. */
  readonly events: EventLog;
  /** Gathers the feed's events into the stream's batches. */
  readonly batcher: StreamBatcher;
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
  /** The confirmation reads of each cluster that has a way to read a Lease. */
  readonly confirmers: readonly ExpiryConfirmer[];
  #hearts = new Map<string, HeartState>();
  /** Why hearts are late: open episodes and their history. */
  readonly episodes: EpisodeBook = new EpisodeBook();
  /** Holders of hearts when their open episode began (a handover shows against it). */
  #holderAtStart = new Map<string, string | null>();
  /** What the source is, beside its clusters' views. */
  #base: Pick<SourceState, "kind" | "name" | "timeScale" | "wire">;
  /** The clusters by name ("" for the one cluster of a single-cluster hub). */
  #clusters = new Map<string, ClusterEntry>();
  /** True when the hub watches several clusters (named, with qualified ids). */
  readonly #multi: boolean;
  /** When late wire evidence was last weighed, and whether more came since. */
  #lateDiagnosedAt = -Infinity;
  #lateDiagnosisDue = false;
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
    this.batcher = new StreamBatcher({
      log: this.events,
      now: () => this.clock.now(),
      timer: options.batchClock ?? systemClock,
      heartOf: (id) => this.heart(id),
      ...(options.batchMs !== undefined && { batchMs: options.batchMs }),
    });
    this.feed.listen(
      (e) => this.batcher.add(e),
      () => this.batcher.accepting(),
    );
    this.#base = {
      ...options.source,
      timeScale: options.timeScale ?? 1,
    };
    this.#multi = options.clusters !== undefined;
    const clusters: HubCluster[] = options.clusters ?? [{
      name: "",
      server: options.source.name,
      ...(options.confirm && { confirm: options.confirm }),
      ...(options.onStale && { onStale: options.onStale }),
    }];
    if (this.#multi) checkClusterNames(clusters.map((c) => c.name));
    const confirmers: ExpiryConfirmer[] = [];
    for (const c of clusters) {
      const entry: ClusterEntry = {
        name: this.#multi ? c.name : undefined,
        server: c.server,
        connected: false,
        reason: "not connected yet",
        since: options.clock.now(),
        diagnosis: undefined,
        episode: null,
        confirmer: c.confirm && new ExpiryConfirmer({
          clock: options.clock,
          read: c.confirm,
          ...(options.confirmPolicy && { policy: options.confirmPolicy }),
          onResult: (id, asked, result) =>
            this.#confirmed(entry, id, asked, result),
        }),
        onStale: c.onStale,
        hearts: new Map(),
        byLease: new Map(),
      };
      if (entry.confirmer) confirmers.push(entry.confirmer);
      this.#clusters.set(c.name, entry);
    }
    this.confirmers = confirmers;
  }

  /** The confirmation reads of a single-cluster hub (of its first cluster otherwise). */
  get confirmer(): ExpiryConfirmer | undefined {
    return this.confirmers[0];
  }

  /** Names of the clusters of a hub that watches several; empty for a single-cluster hub. */
  get clusterNames(): string[] {
    return this.#multi ? [...this.#clusters.keys()] : [];
  }

  /**
   * The sink of cluster `name`'s watch loop, on a hub that watches several
   * clusters. Throws a RangeError for a cluster the hub does not watch.
   */
  sink(name: string): LeaseSink {
    const entry = this.#multi ? this.#clusters.get(name) : undefined;
    if (!entry) {
      throw new RangeError(
        this.#multi
          ? `No cluster "${name}": the hub watches ${
            this.clusterNames.map((n) => `"${n}"`).join(", ")
          }`
          : "A single-cluster hub is the sink itself: feed it directly",
      );
    }
    return {
      event: (event, observedAt) => this.#event(entry, event, observedAt),
      resync: (leases, observedAt) => this.#resync(entry, leases, observedAt),
      source: (connected, reason, at) =>
        this.#sourceChange(entry, connected, reason, at),
    };
  }

  /** LeaseSink: one watch event (single-cluster hub). */
  event(event: LeaseEvent, observedAt: number): void {
    this.#event(this.#single(), event, observedAt);
  }

  /** LeaseSink: a full list; hearts missing from it are deleted (single-cluster hub). */
  resync(leases: Lease[], observedAt: number): void {
    this.#resync(this.#single(), leases, observedAt);
  }

  /** LeaseSink: the API server became reachable or unreachable (single-cluster hub). */
  source(connected: boolean, reason: string | undefined, at: number): void {
    this.#sourceChange(this.#single(), connected, reason, at);
  }

  #single(): ClusterEntry {
    if (this.#multi) {
      throw new Error(
        `This hub watches several clusters: feed each through hub.sink(name)`,
      );
    }
    return this.#clusters.get("")!;
  }

  #event(entry: ClusterEntry, event: LeaseEvent, observedAt: number): void {
    this.counters.leaseEvents++;
    if (event.type === "DELETED") {
      this.#delete(this.#idOf(entry, event.object), observedAt);
    } else this.#upsert(entry, event.object, observedAt);
  }

  #resync(entry: ClusterEntry, leases: Lease[], observedAt: number): void {
    this.counters.resyncs++;
    const seen = new Set<string>();
    for (const lease of leases) {
      seen.add(this.#idOf(entry, lease));
      this.#upsert(entry, lease, observedAt);
    }
    for (const id of [...entry.hearts.keys()]) {
      if (!seen.has(id)) this.#delete(id, observedAt);
    }
  }

  #sourceChange(
    entry: ClusterEntry,
    connected: boolean,
    reason: string | undefined,
    at: number,
  ): void {
    if (connected === entry.connected && reason === entry.reason) return;
    const wasConnected = entry.connected;
    entry.connected = connected;
    entry.since = at;
    entry.reason = connected ? undefined : reason;
    if (connected !== wasConnected) {
      // Reads under way belong to the old view; confirmations too.
      entry.confirmer?.reset();
      for (const heart of entry.hearts.values()) {
        heart.silenceConfirmed = false;
        // Silence is only counted from the moment Earthworm can see again.
        if (connected) heart.baselineAt = at;
      }
    }
    if (!connected && wasConnected) {
      entry.episode = { start: at, end: null };
    }
    if (connected && entry.episode?.end === null) {
      this.#diagnoseSource(entry, at);
      entry.episode.end = at;
      const closed = this.episodes.close(sourceKey(entry), at);
      entry.diagnosis = undefined;
      if (closed) {
        this.feed.publish("diagnosis", {
          id: SOURCE,
          ...(entry.name !== undefined && { cluster: entry.name }),
          diagnosis: null,
          episode: closed,
        });
      }
    }
    if (!connected) this.#diagnoseSource(entry, at, false);
    this.feed.publish("source", this.sourceState());
    // Every heart's status depends on its cluster's source: decide them all
    // again.
    for (const heart of entry.hearts.values()) heart.checkAt = -Infinity;
    this.#sweep([entry], at);
  }

  /**
   * Records why wire (eBPF) data is or is not available; `phrases` carry
   * the reason and the pairing as data for the UI's languages.
   */
  setWireAvailability(
    available: boolean,
    reason?: string,
    pairing?: string,
    phrases: { reasonPhrase?: Phrase; pairingPhrase?: Phrase } = {},
  ): void {
    this.#base = {
      ...this.#base,
      wire: {
        available,
        ...(reason !== undefined && { reason }),
        ...(reason !== undefined && phrases.reasonPhrase &&
          { reasonPhrase: phrases.reasonPhrase }),
        ...(pairing !== undefined && { pairing }),
        ...(pairing !== undefined && phrases.pairingPhrase &&
          { pairingPhrase: phrases.pairingPhrase }),
      },
    };
    this.feed.publish("source", this.sourceState());
  }

  /**
   * Re-decides at `now` the status of every heart whose status may have
   * changed by time alone since it was last decided, publishing changes.
   */
  sweep(now: number = this.clock.now()): void {
    this.#sweep([...this.#clusters.values()], now);
  }

  #sweep(entries: ClusterEntry[], now: number): void {
    // Hearts whose status changed were diagnosed then; the others with an
    // open episode are looked at after (not every heart asks the book).
    const changed = new Set<string>();
    for (const entry of entries) {
      for (const heart of entry.hearts.values()) {
        if (now >= heart.checkAt && this.#updateStatus(heart, now)) {
          changed.add(heart.id);
        }
      }
    }
    // Nobody takes events: a finding only time changes waits for a reader.
    const lazy = !this.feed.wanted();
    for (const id of this.episodes.openIds()) {
      const heart = this.#hearts.get(id);
      if (!heart || changed.has(id)) continue;
      const entry = this.#clusterOf(heart);
      if (!entries.includes(entry)) continue;
      if (
        lazy && heart.status !== "healthy" && this.#timeOnly(entry, heart)
      ) heart.diagnosisDue = true;
      else this.#diagnose(heart, now);
    }
    for (const entry of entries) this.#sweepSource(entry, now);
  }

  #sweepSource(entry: ClusterEntry, now: number): void {
    if (!entry.connected) this.#diagnoseSource(entry, now);
    else if (this.#lateDiagnosisDue) {
      this.#lateDiagnosisDue = false;
      this.#lateDiagnosedAt = now;
      this.#diagnoseSource(entry, now);
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

  /**
   * Takes a batch of wire exchanges from a node's agent. Agents report to
   * the hub of their own cluster: a hub of several clusters takes none.
   */
  wire(exchanges: WireExchange[]): void {
    if (exchanges.length === 0) return;
    const entry = this.#single();
    const late = entry.episode;
    const now = this.clock.now();
    if (late?.end != null && now - late.end < LATE_EVIDENCE_MS) {
      // Diagnosing reads every node's wire view: at most once a second
      // (the sweep takes what came in between), not once per report.
      if (now - this.#lateDiagnosedAt >= LATE_DIAGNOSIS_MS) {
        this.#lateDiagnosedAt = now;
        queueMicrotask(() => this.#diagnoseSource(entry, this.clock.now()));
      } else this.#lateDiagnosisDue = true;
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
    this.feed.publish("wire", { exchanges });
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
    this.#single();
    const known = this.#hearts.has(nodeHeartId(node));
    const changed = this.#wire.probe(node, probe, known);
    if (changed) {
      this.setWireAvailability(
        changed.available,
        changed.reason,
        changed.pairing,
        changed,
      );
    }
    this.wire(exchanges);
  }

  /** Probe state of each node that reported. */
  probes(): Map<string, ProbeState> {
    return this.#wire.probes();
  }

  /**
   * The source as the API reports it: a single-cluster hub's own, or the
   * aggregate of several clusters with each cluster's state.
   */
  sourceState(): SourceState {
    if (this.#multi) {
      return aggregateSource(this.#base, this.clusterStates());
    }
    const entry = this.#single();
    return {
      ...this.#base,
      connected: entry.connected,
      ...(entry.reason !== undefined && !entry.connected &&
        { reason: entry.reason }),
      since: new Date(entry.since).toISOString(),
      ...(entry.diagnosis !== undefined && { diagnosis: entry.diagnosis }),
    };
  }

  /** Each cluster's state, on a hub that watches several; empty otherwise. */
  clusterStates(): ClusterState[] {
    if (!this.#multi) return [];
    return [...this.#clusters.values()].map(clusterState);
  }

  /**
   * Episodes of Earthworm's blindness to cluster `cluster`'s API server (of
   * its one API server on a single-cluster hub; of every cluster, oldest
   * first, when `cluster` is undefined).
   */
  sourceEpisodes(cluster?: string): Episode[] {
    if (!this.#multi || cluster !== undefined) {
      const entry = this.#clusters.get(this.#multi ? cluster! : "");
      return entry ? this.episodes.list(sourceKey(entry)) : [];
    }
    return [...this.#clusters.values()]
      .flatMap((entry) => this.episodes.list(sourceKey(entry)))
      .sort((a, b) => Date.parse(a.start) - Date.parse(b.start));
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

  #idOf(entry: ClusterEntry, lease: Lease): string {
    return heartId(lease.metadata.namespace, lease.metadata.name, entry.name);
  }

  #clusterOf(heart: HeartState): ClusterEntry {
    return this.#clusters.get(heart.cluster ?? "")!;
  }

  #upsert(entry: ClusterEntry, lease: Lease, observedAt: number): void {
    // Found by namespace and name, so an update builds no id string.
    const { namespace, name } = lease.metadata;
    let byName = entry.byLease.get(namespace);
    let heart = byName?.get(name);
    if (!heart) {
      const id = this.#idOf(entry, lease);
      heart = newHeart(lease, observedAt, entry.name);
      this.#hearts.set(id, heart);
      entry.hearts.set(id, heart);
      if (!byName) entry.byLease.set(namespace, byName = new Map());
      byName.set(name, heart);
      if (heart.kind === "node") this.#wire.nodeAdded(heart.name);
      heart.status = this.#decide(heart, observedAt);
      this.feed.publish("status", {
        id,
        from: null,
        to: heart.status,
        heart: this.#toHeart(heart, observedAt),
      });
      return;
    }
    const id = heart.id;
    // A newer observation: a beat still waiting for its exchange goes first,
    // and a finding left for a reader is brought up to the end of the silence.
    this.#flushHeld(id);
    this.#refreshDiagnosis(heart, observedAt);
    const transitionsBefore = heart.transitions;
    const previousVersion = heart.resourceVersion;
    const beat = applyLease(heart, lease, observedAt, this.policy);
    if (heart.transitions !== transitionsBefore) this.counters.transitions++;
    if (!beat) {
      this.#updateStatus(heart, observedAt);
      return;
    }
    this.counters.beats++;
    const paired = heart.kind === "node"
      ? this.#wire.beat(heart.name, heart.lastRenewTime, previousVersion)
      : null;
    this.store.appendLast(id, heart, paired ?? undefined);
    if (paired) this.counters.wirePaired++;
    entry.confirmer?.forget(id);
    const from = heart.status;
    heart.status = this.#decide(heart, observedAt);
    // Nobody takes events: no beat to build, nor to hold (a timer per node
    // beat) for its exchange.
    if (!this.feed.wanted()) return;
    if (paired || heart.kind !== "node" || !this.#wire.summary(heart.name)) {
      this.#publishBeat(heart, lastBeat(heart), from, paired ?? undefined);
    } else this.#holdBeat(heart, lastBeat(heart), from);
  }

  /** Holds a node's beat for the exchange that carried it. */
  #holdBeat(heart: HeartState, observed: ObservedBeat, from: HeartStatus) {
    this.#hold(
      heart.id,
      observed.renewTime,
      (pair) => this.#publishBeat(heart, observed, from, pair),
    );
  }

  /** Publishes a beat (with the exchange that carried it, when known) and the status it changed. */
  #publishBeat(
    heart: HeartState,
    observed: ObservedBeat,
    from: HeartStatus,
    pair: WirePair | undefined,
  ): void {
    if (!this.feed.wanted()) return;
    const beat = toBeat(
      pair === undefined ? observed : {
        ...observed,
        wireLatencyMs: pair.latencyMs,
        wireConfidence: pair.confidence,
      },
    );
    const wireHeart = this.#toHeart(heart, observed.observedAt);
    this.feed.publish("beat", { id: heart.id, beat, heart: wireHeart });
    if (from !== heart.status) {
      this.feed.publish("status", {
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
    const entry = this.#clusterOf(heart);
    this.#refreshDiagnosis(heart, at);
    this.#closeEpisode(heart, at);
    this.episodes.delete(id);
    this.#hearts.delete(id);
    entry.hearts.delete(id);
    const byName = entry.byLease.get(heart.namespace);
    byName?.delete(heart.name);
    if (byName?.size === 0) entry.byLease.delete(heart.namespace);
    entry.confirmer?.forget(id);
    this.store.delete(id);
    if (heart.kind === "node") {
      const changed = this.#wire.forget(heart.name);
      if (changed) {
        this.setWireAvailability(
          changed.available,
          changed.reason,
          changed.pairing,
          changed,
        );
      }
    }
    this.feed.publish("status", {
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
    const entry = this.#clusterOf(heart);
    const connected = entry.connected;
    const decided = heartStatus(heart, now, connected, this.policy);
    const status = decided !== "expired" || !entry.confirmer
      ? decided
      : gateExpiry(
        decided,
        heart.status,
        heart.silenceConfirmed ? "confirmed" : entry.confirmer.request(
          heart.id,
          heart.namespace,
          heart.name,
          known(heart.lastRenewTime),
          now,
        ),
      );
    heart.checkAt = nextStatusChange(heart, status, connected, this.policy);
    return status;
  }

  /** Acts on a confirmation read of heart `id` of cluster `entry`. */
  #confirmed(
    entry: ClusterEntry,
    id: string,
    asked: number | null,
    result: ReadResult,
  ): void {
    const heart = this.#hearts.get(id);
    if (!heart || !entry.connected) return;
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
      entry.confirmer?.forget(id);
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
    entry.onStale?.(reason);
    this.#sourceChange(entry, false, reason, now);
  }

  /** Decides the heart's status at `now`; true when it changed (it was diagnosed then). */
  #updateStatus(heart: HeartState, now: number): boolean {
    const status = this.#decide(heart, now);
    if (status === heart.status) return false;
    const from = heart.status;
    heart.status = status;
    this.#diagnose(heart, now);
    if (!this.feed.wanted()) return true;
    this.feed.publish("status", {
      id: heart.id,
      from,
      to: status,
      heart: this.#toHeart(heart, now),
    });
    return true;
  }

  /**
   * Whether, until the heart beats or changes status, only time changes
   * its finding (the seconds it names): a Lease's holder, a node without
   * wire data, any heart while Earthworm is blind. A node whose agent runs
   * its probe is diagnosed from records that keep arriving.
   */
  #timeOnly(entry: ClusterEntry, heart: HeartState): boolean {
    return !entry.connected || heart.kind !== "node" ||
      !this.#wire.probeAvailable(heart.name);
  }

  /** Works out a finding the sweep left for its reader (see {@linkcode HeartState.diagnosisDue}). */
  #refreshDiagnosis(heart: HeartState, now: number): void {
    if (heart.diagnosisDue) this.#diagnose(heart, now, false);
  }

  /**
   * Opens, updates or closes the heart's episode for its status at `now`:
   * late or expired opens one (or re-diagnoses it), healthy closes it, and
   * while Earthworm is blind an open one says so (nothing is blamed).
   */
  #diagnose(heart: HeartState, now: number, announce = true): void {
    heart.diagnosisDue = false;
    const open = this.episodes.current(heart.id);
    const bad = heart.status === "late" || heart.status === "expired";
    if (!bad && !(open && heart.status === "unknown")) {
      if (!open) return;
      // A Lease that beats again under another holder was handed over.
      const before = this.#holderAtStart.get(heart.id) ?? heart.holder;
      if (heart.kind === "lease" && heart.holder !== before) {
        this.#publishEpisode(
          heart.id,
          now,
          open.worst,
          handoverFinding(
            before,
            heart.holder,
            now - Date.parse(open.start),
            now,
          ),
          heart.cluster,
        );
      }
      this.#closeEpisode(heart, now);
      return;
    }
    if (!open) this.#holderAtStart.set(heart.id, heart.holder);
    const entry = this.#clusterOf(heart);
    const blind = entry.connected
      ? undefined
      : entry.reason ?? `${apiServerOf(entry)} cannot be reached`;
    const finding = diagnoseHeart(
      {
        kind: heart.kind,
        name: heart.name,
        holder: heart.holder,
        holderAtStart: this.#holderAtStart.get(heart.id) ?? heart.holder,
        silentSince: silentSince(heart),
        recentIntervals: heart.recentIntervals,
        version: heart.resourceVersion,
      },
      heart.kind === "node" ? this.#nodeView(heart.name, heart) : null,
      now,
      blind,
      apiServerOf(entry),
    );
    this.#publishEpisode(
      heart.id,
      now,
      bad ? heart.status : "unknown",
      finding,
      heart.cluster,
      heart.id,
      announce,
    );
  }

  #nodeView(node: string, heart: HeartState): NodeWireView {
    return this.#wire.view(
      node,
      known(heart.lastObservedAt) ?? heart.baselineAt,
    );
  }

  /**
   * Records the finding of episode `key` (a heart's id, or a cluster's
   * {@linkcode sourceKey}), shown as `id` of `cluster`; true when it is new
   * or changed (and published, unless `announce` is false: a reader
   * refreshing it gets it with what it reads).
   */
  #publishEpisode(
    key: string,
    now: number,
    worst: HeartStatus,
    finding: Finding,
    cluster: string | undefined,
    id: string = key,
    announce = true,
  ): boolean {
    const e = this.episodes.record(
      key,
      now,
      worst,
      finding,
      this.clock.now(),
      { id, ...(cluster !== undefined && { cluster }) },
    );
    if (!e) return false;
    this.counters.diagnoses++;
    if (!announce || !this.feed.wanted()) return true;
    this.feed.publish("diagnosis", {
      id,
      ...(cluster !== undefined && { cluster }),
      diagnosis: {
        cause: e.cause,
        since: e.start,
        summary: e.summary,
        ...(e.summaryPhrase && { summaryPhrase: e.summaryPhrase }),
        evidence: e.evidence,
      },
      episode: e,
    });
    return true;
  }

  #closeEpisode(heart: HeartState, now: number): void {
    heart.diagnosisDue = false;
    this.#holderAtStart.delete(heart.id);
    const closed = this.episodes.close(heart.id, now);
    if (closed && this.feed.wanted()) {
      this.feed.publish("diagnosis", {
        id: heart.id,
        ...(heart.cluster !== undefined && { cluster: heart.cluster }),
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
  #diagnoseSource(entry: ClusterEntry, now: number, announce = true): void {
    const ep = entry.episode;
    if (!ep) return;
    const nodes = new Map<string, NodeWireView>();
    for (const node of this.#wire.nodes()) {
      nodes.set(node, this.#wire.view(node, ep.start));
    }
    const finding = diagnoseSource(
      ep.start,
      entry.reason ?? `${apiServerOf(entry)} could not be reached`,
      nodes,
      ep.end ?? now,
      apiServerOf(entry),
    );
    if (ep.end === null) {
      entry.diagnosis = {
        cause: finding.cause,
        since: new Date(ep.start).toISOString(),
        summary: finding.summary,
        summaryPhrase: finding.summaryPhrase,
        evidence: finding.evidence,
      };
      if (
        this.#publishEpisode(
          sourceKey(entry),
          ep.start,
          "unknown",
          finding,
          entry.name,
          SOURCE,
        ) && announce
      ) {
        // The banner reads the source's diagnosis.
        this.feed.publish("source", this.sourceState());
      }
      return;
    }
    // Closed: late evidence may still name the API server.
    const closed = this.episodes.reviseClosed(
      sourceKey(entry),
      finding,
      now,
      (e) => finding.cause !== e.cause && finding.cause === "apiserver",
    );
    if (closed) {
      this.feed.publish("diagnosis", {
        id: SOURCE,
        ...(entry.name !== undefined && { cluster: entry.name }),
        diagnosis: null,
        episode: closed,
      });
    }
  }

  #toHeart(h: HeartState, now: number): Heart {
    this.#refreshDiagnosis(h, now);
    const expected = expectedInterval(h);
    const heart: Heart = {
      id: h.id,
      ...(h.cluster !== undefined && { cluster: h.cluster }),
      kind: h.kind,
      namespace: h.namespace,
      name: h.name,
      holder: h.holder,
      status: h.status,
      lastRenewTime: iso(h.lastRenewTime),
      lastObservedAt: iso(h.lastObservedAt),
      leaseDurationSeconds: h.leaseDurationSeconds,
      expectedIntervalSeconds: expected === null ? null : round3(expected),
      lastIntervalSeconds: round3OrNull(h.lastIntervalSeconds),
      skewSeconds: round3OrNull(h.skewSeconds),
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
        ...(e.summaryPhrase && { summaryPhrase: e.summaryPhrase }),
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

/** Key of the episodes of Earthworm's blindness to `entry`'s API server. */
function sourceKey(entry: ClusterEntry): string {
  return entry.name === undefined ? SOURCE : `${SOURCE}\u0000${entry.name}`;
}

/** ISO time of `ms`; null when NaN (not known). */
function iso(ms: number): string | null {
  return Number.isNaN(ms) ? null : isoTime(ms);
}

function round3(n: number): number {
  return Math.round(n * 1000) / 1000;
}

/** `n` to the millisecond; null when NaN (not known). */
function round3OrNull(n: number): number | null {
  return Number.isNaN(n) ? null : round3(n);
}
