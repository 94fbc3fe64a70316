/**
 * What the watch loop reads Leases from: a list and a watch, as the API
 * server offers them, a cheap liveness read beside the watch, and a fresh
 * read of one Lease. The real API server (REST or client-node), the
 * simulated cluster and the replay of a recording all implement it, so they
 * all run through the same loop.
 *
 * @module
 */

import type { Lease } from "./lease_types.ts";

/** A page-complete list of Leases and the resourceVersion to watch from. */
export interface LeaseList {
  items: Lease[];
  resourceVersion: string;
}

/** One raw watch event as the API server sends it. */
export interface RawWatchEvent {
  type: string;
  object: unknown;
  /**
   * The object is a Lease in the shape of `lease_types.ts` already (decoded
   * from protobuf), not JSON to convert.
   */
  lease?: boolean;
}

/** One watch request of a {@linkcode LeaseSource}. */
export interface WatchRequest {
  /** Namespace to watch; all namespaces when undefined. */
  namespace: string | undefined;
  resourceVersion: string;
  /** Server-side timeout after which the server ends the stream normally. */
  timeoutSeconds: number;
  /** Called once the server has accepted the watch. */
  onOpen: () => void;
  /** Called for each event; when it throws, the watch stops and rejects with that error. */
  onEvent: (event: RawWatchEvent) => void;
  /** Aborting stops the watch; it then settles promptly. */
  signal: AbortSignal;
}

/** Where the watcher reads Leases from: the real API server or a test double. */
export interface LeaseSource {
  /** Lists the Leases of `namespace`, or of all namespaces when undefined. */
  list(namespace: string | undefined, signal: AbortSignal): Promise<LeaseList>;
  /** Watches until the server ends the stream (resolves) or it fails (rejects). */
  watch(request: WatchRequest): Promise<void>;
  /**
   * A cheap read that proves the API server answers now: resolves once it
   * answered, rejects when the request failed. It must stay cheap with
   * thousands of Leases and be served from the API server's watch cache, so
   * it keeps answering while etcd is down. The caller sets its deadline
   * through `signal`.
   */
  ping(namespace: string | undefined, signal: AbortSignal): Promise<void>;
  /**
   * Reads the Lease `namespace/name` fresh (a quorum read, never from a
   * cache); null when it does not exist. Rejects when the read fails.
   */
  read(
    namespace: string,
    name: string,
    signal: AbortSignal,
  ): Promise<Lease | null>;
}
