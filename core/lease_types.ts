/**
 * The slice of a `coordination.k8s.io/v1` Lease that Earthworm reads, in its
 * JSON wire form, and the watch events that carry it. The simulator, the
 * replayer and the real cluster watcher all produce these, so every source
 * enters the same pipeline.
 *
 * @module
 */

/** A Lease as the API server serialises it (times are RFC 3339 strings). */
export interface Lease {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace: string;
    resourceVersion?: string;
    uid?: string;
    creationTimestamp?: string;
  };
  spec?: {
    holderIdentity?: string | null;
    leaseDurationSeconds?: number | null;
    acquireTime?: string | null;
    renewTime?: string | null;
    leaseTransitions?: number | null;
  };
}

/** Type of a Kubernetes watch event that carries a Lease. */
export type LeaseEventType = "ADDED" | "MODIFIED" | "DELETED";

/** One watch event for a Lease. */
export interface LeaseEvent {
  type: LeaseEventType;
  object: Lease;
}

/**
 * Where lease sources deliver what they see. Times are milliseconds on
 * Earthworm's clock (the moment the event was observed).
 */
export interface LeaseSink {
  /** A watch event arrived. */
  event(event: LeaseEvent, observedAt: number): void;
  /**
   * A full list arrived (initial list or relist after `410 Gone`): leases not
   * in it are gone; leases in it are reconciled without duplicating beats.
   */
  resync(leases: Lease[], observedAt: number): void;
  /** The source became reachable or unreachable. */
  source(connected: boolean, reason: string | undefined, at: number): void;
}

/** Namespace whose Leases are kubelet node heartbeats (defined with the API types, which the UI shares). */
export { NODE_LEASE_NAMESPACE } from "./api_types.ts";

/** Formats epoch milliseconds as a Kubernetes MicroTime (six fractional digits). */
export function microTime(ms: number): string {
  return `${new Date(Math.floor(ms)).toISOString().slice(0, 23)}000Z`;
}
