/**
 * Wire types of Earthworm's HTTP API and SSE stream, shared by the server and
 * the UI so the two cannot drift apart. Plain data only: no runtime imports.
 *
 * @module
 */

/** Namespace whose Leases are kubelet node heartbeats (hearts of kind `node`). */
export const NODE_LEASE_NAMESPACE = "kube-node-lease";

/** Freshness of a heart, judged on Earthworm's own clock. */
export type HeartStatus = "healthy" | "late" | "expired" | "unknown";

/** What a heart is: a kubelet's node Lease or any other Lease. */
export type HeartKind = "node" | "lease";

/** Order of statuses from worst to best, for sorting. */
export const STATUS_SEVERITY: Readonly<Record<HeartStatus, number>> = {
  expired: 0,
  late: 1,
  unknown: 2,
  healthy: 3,
};

/**
 * Id of the heart of Lease `namespace/name`: `<namespace>/<name>`, or
 * `<cluster>/<namespace>/<name>` when Earthworm watches several clusters
 * (namespaces and names never hold a `/`, so the last two parts are always
 * the namespace and the name, whatever the cluster's name holds).
 */
export function heartId(
  namespace: string,
  name: string,
  cluster?: string,
): string {
  return cluster === undefined
    ? `${namespace}/${name}`
    : `${cluster}/${namespace}/${name}`;
}

/** One heart (one Lease) as the API reports it. */
export interface Heart {
  /** `<namespace>/<name>`, or `<cluster>/<namespace>/<name>` when several clusters are watched. */
  id: string;
  /** The cluster the heart is in: only when Earthworm watches several clusters. */
  cluster?: string;
  kind: HeartKind;
  namespace: string;
  name: string;
  /** `spec.holderIdentity`, or null when the Lease has none. */
  holder: string | null;
  status: HeartStatus;
  /** Last `spec.renewTime` seen (the holder's clock), RFC 3339. */
  lastRenewTime: string | null;
  /** When Earthworm observed the last beat (its own clock), RFC 3339. */
  lastObservedAt: string | null;
  leaseDurationSeconds: number | null;
  /** Interval the heart is expected to beat at (node: duration / 4; others: learned). */
  expectedIntervalSeconds: number | null;
  lastIntervalSeconds: number | null;
  /** `observedAt - renewTime` of the last beat: clock skew plus delivery delay. */
  skewSeconds: number | null;
  /** Number of beats seen since Earthworm started watching. */
  beats: number;
  /** Number of holder changes seen. */
  transitions: number;
  /** `spec.leaseTransitions` as written in the Lease. */
  leaseTransitions: number | null;
  /** Wire summary for node hearts when an agent on that node reports eBPF data. */
  wire?: WireSummary;
  /** Why the heart is late or expired, while it is (its open episode). */
  diagnosis?: Diagnosis;
}

/**
 * Who is to blame for a late or expired heart:
 * - `kubelet`: no renewal left the node (the holder is stalled, stopped or starved);
 * - `network`: renewals left but were retransmitted or reset, or the connection died;
 * - `apiserver`: a renewal left and was answered slowly, with an error, or not at all;
 * - `observer`: Earthworm's own view is stale: nothing is blamed;
 * - `holder`: a Lease's holder (a controller) stopped renewing (no wire data for it);
 * - `handover`: the Lease changed hands: a new leader took over after the silence;
 * - `unknown`: not enough evidence, and the evidence says why.
 */
export type DiagnosisCause =
  | "kubelet"
  | "network"
  | "apiserver"
  | "observer"
  | "holder"
  | "handover"
  | "unknown";

/** One fact behind a diagnosis, in plain words. */
export interface Evidence {
  /** When it was seen, RFC 3339. */
  at: string;
  /** The fact in English. */
  text: string;
  /** The same fact as data, for a client that words it in its own language. */
  phrase?: Phrase;
  /** The node whose agent saw it, when that is not the heart's own (the source's diagnosis). */
  node?: string;
}

/**
 * A sentence the server composed, as data: which sentence and its values,
 * so that a client can word it in the reader's language (the UI does, in
 * English and Spanish) instead of showing the English text beside it.
 * Durations are milliseconds (arguments named `…Ms`), times RFC 3339
 * (`…At`), counts plain numbers; null stands for nobody or none. Other
 * strings (names, connections, reasons reported by agents or the API
 * server) are data and stay as they are.
 */
export interface Phrase {
  id: PhraseId;
  args: Record<string, string | number | null>;
}

/** Every sentence a {@linkcode Phrase} can be. */
export type PhraseId =
  // Summaries of a heart's diagnosis.
  | "network.retransmitted"
  | "network.reset"
  | "network.rttJump"
  | "apiserver.waiting"
  | "apiserver.failed"
  | "apiserver.slow"
  | "apiserver.unwatched"
  | "observer.blind"
  | "observer.onlyEarthworm"
  | "kubelet.noRenewal"
  | "unknown.noWire"
  | "unknown.inferred"
  | "handover.moved"
  | "holder.silent"
  // Summaries of the source's diagnosis (Earthworm blind).
  | "source.waiting"
  | "source.failed"
  | "source.slow"
  // Evidence.
  | "evidence.retransmits"
  | "evidence.resets"
  | "evidence.closed"
  | "evidence.rttJump"
  | "evidence.pending"
  | "evidence.failed"
  | "evidence.slow"
  | "evidence.unwatched"
  | "evidence.lostSight"
  | "evidence.noAgent"
  | "evidence.probeDown"
  | "evidence.noRequest"
  | "evidence.noRequestIdle"
  | "evidence.inferred"
  | "evidence.inferredBecause"
  | "evidence.holderChanged"
  | "evidence.lastRenewed"
  | "evidence.lastRenewedUsual"
  | "evidence.lateAlready"
  | "evidence.answered"
  // The wire data's availability and pairing (SourceState.wire).
  | "wire.leaseOnly"
  | "wire.noAgent"
  | "wire.offCluster"
  | "wire.replay"
  | "wire.pairing"
  | "wire.pairingInferred"
  | "wire.pairingInferredMore";

/** The likely cause of an episode, with its evidence. */
export interface Diagnosis {
  cause: DiagnosisCause;
  /** When the episode began (the heart turned late, or Earthworm lost sight), RFC 3339. */
  since: string;
  /** One sentence for the card, e.g. "kubelet sent no renewal for 24 s". */
  summary: string;
  /** The summary as data (see {@linkcode Phrase}). */
  summaryPhrase?: Phrase;
  evidence: Evidence[];
}

/** A time a heart was late or expired (or the source was blind), and why. */
export interface Episode {
  /** The heart's id, or `source` for an episode of Earthworm's own blindness. */
  id: string;
  /** The cluster of the heart (or of the blind source): only when several clusters are watched. */
  cluster?: string;
  /** RFC 3339 start, and end (null while open). */
  start: string;
  end: string | null;
  /** The worst status reached: `late` or `expired` (`unknown` for the source). */
  worst: HeartStatus;
  cause: DiagnosisCause;
  /** When Earthworm concluded this cause, RFC 3339 (how long the diagnosis took). */
  causeSince: string;
  summary: string;
  /** The summary as data (see {@linkcode Phrase}). */
  summaryPhrase?: Phrase;
  evidence: Evidence[];
}

/** `GET /api/v1/hearts/{namespace}/{name}/episodes` */
export interface EpisodesResponse {
  episodes: Episode[];
}

/** One observed change of `spec.renewTime`. */
export interface Beat {
  renewTime: string;
  observedAt: string;
  /** Seconds since the previous beat on Earthworm's clock; null for the first one. */
  intervalSeconds: number | null;
  holder: string | null;
  /** True when the holder changed with this beat. */
  transition: boolean;
  /** Wire latency of the exchange that carried this beat, when paired (milliseconds). */
  wireLatencyMs?: number;
  /** How surely that exchange is this beat's own (see {@linkcode WireExchange.confidence}). */
  wireConfidence?: WireConfidence;
}

/** Where the leases come from and whether Earthworm can see it. */
export interface SourceState {
  /** `mock`, `replay`, `cluster`. */
  kind: "mock" | "replay" | "cluster";
  /** Human-readable name: cluster server URL, replay file, "simulated cluster". */
  name: string;
  /** False while the API server cannot be reached: hearts are then `unknown`. */
  connected: boolean;
  /** Why the source is disconnected, when it is. */
  reason?: string;
  /** RFC 3339 time of the last change of `connected`. */
  since: string;
  /**
   * Rate of Earthworm's clock against wall time: 1 for real clusters, N for
   * `mock --speed N`. The UI's sweeping time axis runs at this rate, anchored
   * at the server time of the last snapshot (`generatedAt`).
   */
  timeScale: number;
  /** Why eBPF wire data is unavailable, when it is. */
  wire?: {
    available: boolean;
    reason?: string;
    /** The reason as data (see {@linkcode Phrase}). */
    reasonPhrase?: Phrase;
    /** How renewals are paired with exchanges across the agents, e.g. "exact on 3 of 4 nodes; …". */
    pairing?: string;
    /** The pairing as data (see {@linkcode Phrase}). */
    pairingPhrase?: Phrase;
  };
  /** While Earthworm cannot see the API server: whether it is the API server itself (renewals unanswered on the nodes) or only Earthworm's view. */
  diagnosis?: Diagnosis;
  /**
   * Each cluster's own state, only when Earthworm watches several. The
   * fields above are then their aggregate: `connected` only while every
   * cluster is, `reason` naming the clusters that cannot be seen, and
   * `diagnosis` the first blind cluster's.
   */
  clusters?: ClusterState[];
}

/** One watched cluster and whether Earthworm can see its API server. */
export interface ClusterState {
  /** Its name: the kubeconfig context (made unique), shown with its hearts. */
  name: string;
  /** Its API server's URL. */
  server: string;
  /** False while its API server cannot be reached: its hearts, and only they, are then `unknown`. */
  connected: boolean;
  /** Why it cannot be seen, when it cannot. */
  reason?: string;
  /** RFC 3339 time of the last change of `connected`. */
  since: string;
  /** While it cannot be seen: the API server itself, or only Earthworm's view of it. */
  diagnosis?: Diagnosis;
}

/** `GET /api/v1/hearts` */
export interface HeartsResponse {
  generatedAt: string;
  source: SourceState;
  hearts: Heart[];
}

/** `GET /api/v1/hearts/{namespace}/{name}/beats` */
export interface BeatsResponse {
  heart: Heart;
  beats: Beat[];
}

/** Body of every error response. */
export interface ErrorResponse {
  error: string;
}

/** One request/response exchange on a kubelet's connection to the API server. */
export interface WireExchange {
  node: string;
  /** Connection id: `saddr:sport->daddr:dport`. */
  conn: string;
  /** When the request started, RFC 3339 with milliseconds. */
  at: string;
  /** Request-to-response time in milliseconds. */
  latencyMs: number;
  bytesSent: number;
  bytesReceived: number;
  /** Smoothed RTT in microseconds. */
  srttUs: number;
  retransmits: number;
  resets: number;
  /**
   * `exact`: one Lease request and its own response, identified in the
   * kubelet's HTTP/2 stream (Go TLS uprobes); `inferred`: a burst of
   * request bytes and the first answer bytes on the TCP connection. Absent
   * means inferred (older agents).
   */
  confidence?: WireConfidence;
  /** Exact exchanges: the Lease written, `namespace/name`. */
  lease?: string;
  /** Exact exchanges: the resourceVersion the request carried (the version it updated). */
  resourceVersion?: string;
  /** Exact exchanges: the HTTP status, when it could be decoded. */
  status?: number;
  /**
   * Not an exchange but news from the node's wire: `pending` (an exact
   * renewal sent and not answered yet; `latencyMs` is how long it has
   * waited), `retransmit`, `reset` or `closed` (the kubelet's API server
   * connection). Absent for an exchange.
   */
  signal?: WireSignal;
}

/** Kinds of {@linkcode WireExchange.signal}. */
export type WireSignal = "pending" | "retransmit" | "reset" | "closed";

/** How surely an exchange is the one that carried a beat. */
export type WireConfidence = "exact" | "inferred";

/** Per-node wire summary shown with a node heart. */
export interface WireSummary {
  lastExchangeAt: string | null;
  lastLatencyMs: number | null;
  srttUs: number | null;
  retransmits: number;
  resets: number;
  /** True when retransmits, resets or slow exchanges were seen recently. */
  trouble: boolean;
}

/** A snapshot of every heart, in full: what `GET /api/v1/hearts` answers and the UI holds. */
export interface SnapshotEvent {
  generatedAt: string;
  source: SourceState;
  hearts: Heart[];
}

/** A beat of one heart, in full (inside the server, and decoded in the UI). */
export interface BeatEvent {
  id: string;
  beat: Beat;
  heart: Heart;
}

/** A heart changed status (or appeared / disappeared), in full (inside the server). */
export interface StatusEvent {
  id: string;
  from: HeartStatus | null;
  /** null when the heart was deleted. */
  to: HeartStatus | null;
  heart: Heart;
}

/** The source's state. */
export type SourceEvent = SourceState;

/** Wire exchanges of a node's agent. */
export interface WireEvent {
  exchanges: WireExchange[];
}

/** A heart's (or the source's) diagnosis changed, or its episode ended. */
export interface DiagnosisEvent {
  /** A heart id, or `source`. */
  id: string;
  /** The cluster of the heart (or of the blind source): only when several clusters are watched. */
  cluster?: string;
  /** The current diagnosis, or null when the episode ended. */
  diagnosis: Diagnosis | null;
  episode: Episode;
}

/**
 * `ping` SSE event data: sent without an id whenever the stream has been idle
 * for {@linkcode STREAM_PING_MS}, so a client can tell a quiet stream from a
 * lost one (a frozen server or a cut connection raises no error).
 */
export interface PingEvent {
  /** The server's clock when it was sent, RFC 3339. */
  serverTime: string;
}

/** Longest a live stream stays silent: idle streams get a `ping` this often. */
export const STREAM_PING_MS = 2_000;

/**
 * The hub's events, by name: what happens inside the server (webhooks and
 * tests listen to them in full). The stream sends them compactly, in
 * batches: see {@linkcode StreamBatch}.
 */
export interface HubEvents {
  beat: BeatEvent;
  status: StatusEvent;
  source: SourceEvent;
  wire: WireEvent;
  diagnosis: DiagnosisEvent;
}

/** Name of a hub event. */
export type HubEventName = keyof HubEvents;

// ---------------------------------------------------------------------------
// The stream, protocol 2: `snapshot`, then `batch` messages, and `ping`.
// Encoders and decoders are in `stream_codec.ts`.

/** Version of the stream's protocol (`v` of a snapshot). */
export const STREAM_PROTOCOL = 2;

/** How long the server gathers events into one `batch` message. */
export const STREAM_BATCH_MS = 100;

/**
 * Statuses by their code in the stream: `0` healthy, `1` late, `2`
 * expired, `3` unknown.
 */
export const STATUS_CODES: readonly HeartStatus[] = [
  "healthy",
  "late",
  "expired",
  "unknown",
];

/**
 * A heart's key in the stream: the Lease name alone for a node heart
 * (namespace `kube-node-lease`: a name has no `/`), else its full id
 * `namespace/name`.
 */
export type HeartKey = string;

/** How a wire summary travels: `[lastExchangeAt (ms from t), lastLatencyMs, srttUs, retransmits, resets, trouble (0|1)]`. */
export type WireRow = [
  number | null,
  number | null,
  number | null,
  number,
  number,
  0 | 1,
];

/**
 * How a heart travels in a snapshot and in `h` entries. Times are
 * milliseconds relative to the message's `t`; absent trailing elements
 * mean none.
 *
 * `[key, status code, holder (0: the Lease's own name), lastObservedAt
 * (ms from t), lastRenewTime (ms before lastObservedAt, or before t when
 * never observed), leaseDurationSeconds, expectedIntervalSeconds,
 * lastIntervalSeconds, beats, transitions, leaseTransitions, wire (0:
 * none), diagnosis]`. `kind` follows from the key and `skewSeconds` from
 * the two times.
 */
export type HeartRow = [
  key: HeartKey,
  status: number,
  holder: string | null | 0,
  observed: number | null,
  renewLag: number | null,
  leaseDurationSeconds: number | null,
  expectedIntervalSeconds: number | null,
  lastIntervalSeconds: number | null,
  beats: number,
  transitions: number,
  leaseTransitions: number | null,
  wire?: WireRow | 0,
  diagnosis?: Diagnosis,
];

/**
 * One event of a batch, tagged by its first element; times in milliseconds
 * relative to the batch's `t`, trailing optional elements left out:
 *
 * - `["b", key, observedAt, renewLag, intervalSeconds, beats, wireLatencyMs?,
 *   "e"|"i" (exact, inferred)?, 1 (the holder changed)?]`: a beat (the
 *   heart's last times, interval and count follow from it; `renewLag` is
 *   how long before `observedAt` the holder stamped `renewTime`);
 * - `["s", key, status code]`: a heart changed status;
 * - `["h", HeartRow]`: a heart appeared, or changed beyond what beats say
 *   (holder, expected interval, wire trouble);
 * - `["x", key]`: a heart was deleted;
 * - `["d", DiagnosisEvent]`: a heart's or the source's (`id: "source"`)
 *   diagnosis changed, or its episode ended;
 * - `["src", SourceState]`: the source changed;
 * - `["w", node, conn, at, latencyMs, bytesSent, bytesReceived, srttUs,
 *   retransmits, resets, "e"|"i"|null, httpStatus|null,
 *   resourceVersion|null, lease (0: the node's own Lease)|null,
 *   signal|null]`: one wire exchange (or signal).
 */
export type BatchEntry =
  | [
    "b",
    HeartKey,
    number,
    number,
    number | null,
    number,
    (number | null)?,
    ("e" | "i" | null)?,
    1?,
  ]
  | ["s", HeartKey, number]
  | ["h", HeartRow]
  | ["x", HeartKey]
  | ["d", DiagnosisEvent]
  | ["src", SourceState]
  | ["w", string, string, number, number, ...unknown[]];

/** `batch` SSE event data: the events of about {@linkcode STREAM_BATCH_MS}, in order. */
export interface StreamBatch {
  /** Server time the entries' times are relative to, epoch milliseconds. */
  t: number;
  e: BatchEntry[];
}

/** `snapshot` SSE event data: every heart, compactly. */
export interface StreamSnapshot {
  /** {@linkcode STREAM_PROTOCOL}. */
  v: number;
  /** Server time of sending, RFC 3339: the UI's clock is set from it. */
  generatedAt: string;
  /** Server time the rows' times are relative to, epoch milliseconds. */
  t: number;
  source: SourceState;
  hearts: HeartRow[];
}

/** Map of SSE event names to their data. */
export interface StreamEvents {
  snapshot: StreamSnapshot;
  batch: StreamBatch;
  ping: PingEvent;
}

/** Name of an SSE event. */
export type StreamEventName = keyof StreamEvents;
