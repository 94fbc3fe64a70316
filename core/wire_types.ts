/**
 * The shapes that cross from a node to the leader: a kernel wire event as
 * the probe decodes it, an agent's probe state, its wire report, and how the
 * leader authenticates the agent that sends one. The eBPF loader produces
 * them, the wire side aggregates and sends them, the server checks and
 * pairs them.
 *
 * @module
 */

import type { WireExchange } from "./api_types.ts";

/** Kind of a wire event (enum wire_event_type). */
export type WireEventKind =
  | "track"
  | "exchange"
  | "retransmit"
  | "reset"
  | "state";

/** One decoded kernel event. Times are CLOCK_MONOTONIC nanoseconds. */
export interface RawWireEvent {
  kind: WireEventKind;
  tsNs: bigint;
  cookie: bigint;
  /** Local address and port, remote address and port (IPv4 shown dotted). */
  local: string;
  remote: string;
  /** `local->remote`, the WireExchange `conn` id. */
  conn: string;
  pid: number;
  comm: string;
  origin: "connect" | "adopted" | "unknown";
  srttUs: number;
  totalRetrans: number;
  resets: number;
  /** Exchange fields (zero for other kinds). */
  startNs: bigint;
  firstRxNs: bigint;
  lastRxNs: bigint;
  bytesSent: number;
  bytesReceived: number;
  retrans: number;
  /** State events: TCP states before and after. */
  oldState: string;
  newState: string;
  /** Reset events: who sent it. */
  resetDirection: "sent" | "received" | null;
}

/** Whether an agent's eBPF probe runs, and why not. */
export interface ProbeState {
  available: boolean;
  reason?: string;
  /** How the node's renewals are identified: exactly (Go TLS uprobes) or inferred from TCP timing. */
  pairing?: "exact" | "inferred";
  /** Why not exact. */
  pairingReason?: string;
}

/** What an agent sends. */
export interface WireReport {
  node: string;
  probe: ProbeState;
  exchanges: WireExchange[];
}

/**
 * Verdict of an authenticator: an agent is a user and the node its token
 * was issued for; a refusal carries the HTTP status to answer (429 with the
 * seconds to wait, 503 when the API server could not be asked).
 */
export type AuthVerdict = { ok: true; user: string; node: string } | {
  ok: false;
  status: 401 | 403 | 429 | 503;
  error: string;
  retryAfterSeconds?: number;
};

/**
 * Checks a bearer token; `client` (the peer's address) is whom failures are
 * counted against.
 */
export type Authenticator = (
  token: string,
  client?: string,
) => Promise<AuthVerdict>;

/** Where an agent's report goes in process: the leader's own hub. */
export interface WireReportSink {
  /** Takes a node's probe state and a batch of its exchanges. */
  wireReport(node: string, probe: ProbeState, exchanges: WireExchange[]): void;
}
