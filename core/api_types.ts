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
}

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

/** Map of SSE event names to their data. */
export interface StreamEvents {
  snapshot: SnapshotEvent;
  beat: BeatEvent;
  status: StatusEvent;
  source: SourceEvent;
  wire: WireEvent;
}

/** Name of an SSE event. */
export type StreamEventName = keyof StreamEvents;
