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

/** One heart (one Lease) as the API reports it. */
export interface Heart {
  /** `<namespace>/<name>`. */
  id: string;
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
  text: string;
}

/** The likely cause of an episode, with its evidence. */
export interface Diagnosis {
  cause: DiagnosisCause;
  /** When the episode began (the heart turned late, or Earthworm lost sight), RFC 3339. */
  since: string;
  /** One sentence for the card, e.g. "kubelet sent no renewal for 24 s". */
  summary: string;
  evidence: Evidence[];
}

/** A time a heart was late or expired (or the source was blind), and why. */
export interface Episode {
  /** The heart's id, or `source` for an episode of Earthworm's own blindness. */
  id: string;
  /** RFC 3339 start, and end (null while open). */
  start: string;
  end: string | null;
  /** The worst status reached: `late` or `expired` (`unknown` for the source). */
  worst: HeartStatus;
  cause: DiagnosisCause;
  /** When Earthworm concluded this cause, RFC 3339 (how long the diagnosis took). */
  causeSince: string;
  summary: string;
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
    /** How renewals are paired with exchanges across the agents, e.g. "exact on 3 of 4 nodes; …". */
    pairing?: string;
  };
  /** While Earthworm cannot see the API server: whether it is the API server itself (renewals unanswered on the nodes) or only Earthworm's view. */
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

/** `snapshot` SSE event data. */
export interface SnapshotEvent {
  generatedAt: string;
  source: SourceState;
  hearts: Heart[];
}

/** `beat` SSE event data. */
export interface BeatEvent {
  id: string;
  beat: Beat;
  heart: Heart;
}

/** `status` SSE event data: a heart changed status (or appeared / disappeared). */
export interface StatusEvent {
  id: string;
  from: HeartStatus | null;
  /** null when the heart was deleted. */
  to: HeartStatus | null;
  heart: Heart;
}

/** `source` SSE event data. */
export type SourceEvent = SourceState;

/** `wire` SSE event data. */
export interface WireEvent {
  exchanges: WireExchange[];
}

/** `diagnosis` SSE event data: a heart's (or the source's) diagnosis changed, or its episode ended. */
export interface DiagnosisEvent {
  /** A heart id, or `source`. */
  id: string;
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

/** Map of SSE event names to their data. */
export interface StreamEvents {
  snapshot: SnapshotEvent;
  beat: BeatEvent;
  status: StatusEvent;
  source: SourceEvent;
  wire: WireEvent;
  diagnosis: DiagnosisEvent;
  ping: PingEvent;
}

/** Name of an SSE event. */
export type StreamEventName = keyof StreamEvents;
