/**
 * The election lock: what an election Lease says
 * ({@linkcode LeaderElectionRecord}), the small get/create/update interface
 * the elector needs ({@linkcode LeaseLock}), and the lock on a real API
 * server through the small REST client ({@linkcode RestLeaseLock}). Unit
 * tests use the in-memory lock of `_memory_lease_lock.ts`.
 *
 * @module
 */

import type { KubeRestClient } from "./rest_client.ts";
import { KubeApiError } from "./rest_client.ts";
import { leasePath, leasesPath } from "./lease_api.ts";

/** Annotation on the election Lease that holds the leader's base URL. */
export const LEADER_ADDRESS_ANNOTATION = "earthworm.dev/leader-address";

/** What an election Lease says. Times are RFC 3339 with microseconds. */
export interface LeaderElectionRecord {
  /** "" when nobody holds the Lease (after a release). */
  holderIdentity: string;
  leaseDurationSeconds: number;
  acquireTime: string;
  renewTime: string;
  leaseTransitions: number;
  /** Where the holder serves Earthworm's API, e.g. `http://10.0.0.7:8080`. */
  holderAddress?: string;
}

/** The lock as read: the record plus an opaque form used to detect changes. */
export interface ObservedLock {
  record: LeaderElectionRecord;
  /** Changes whenever the Lease changes (compared byte for byte). */
  raw: string;
}

/** Thrown by {@linkcode LeaseLock} writes that lost an optimistic-concurrency race. */
export class LockConflictError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "LockConflictError";
  }
}

/** Get, create and update of the election Lease (client-go's resourcelock.Interface). */
export interface LeaseLock {
  /** Reads the Lease; null when it does not exist. */
  get(signal?: AbortSignal): Promise<ObservedLock | null>;
  /** Creates the Lease; throws LockConflictError when it already exists. */
  create(record: LeaderElectionRecord, signal?: AbortSignal): Promise<void>;
  /** Updates the Lease read last; throws LockConflictError when it changed since. */
  update(record: LeaderElectionRecord, signal?: AbortSignal): Promise<void>;
  /** `namespace/name`, for logs. */
  describe(): string;
}

interface LeaseObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace: string;
    resourceVersion?: string;
    annotations?: Record<string, string>;
    [k: string]: unknown;
  };
  spec?: {
    holderIdentity?: string | null;
    leaseDurationSeconds?: number | null;
    acquireTime?: string | null;
    renewTime?: string | null;
    leaseTransitions?: number | null;
    [k: string]: unknown;
  };
}

function recordOf(lease: LeaseObject): LeaderElectionRecord {
  const s = lease.spec ?? {};
  const record: LeaderElectionRecord = {
    holderIdentity: s.holderIdentity ?? "",
    leaseDurationSeconds: s.leaseDurationSeconds ?? 0,
    acquireTime: s.acquireTime ?? "",
    renewTime: s.renewTime ?? "",
    leaseTransitions: s.leaseTransitions ?? 0,
  };
  const address = lease.metadata.annotations?.[LEADER_ADDRESS_ANNOTATION];
  if (address) record.holderAddress = address;
  return record;
}

function applyRecord(lease: LeaseObject, r: LeaderElectionRecord): LeaseObject {
  const annotations = { ...lease.metadata.annotations };
  if (r.holderAddress) annotations[LEADER_ADDRESS_ANNOTATION] = r.holderAddress;
  else delete annotations[LEADER_ADDRESS_ANNOTATION];
  return {
    ...lease,
    apiVersion: "coordination.k8s.io/v1",
    kind: "Lease",
    metadata: { ...lease.metadata, annotations },
    spec: {
      ...lease.spec,
      holderIdentity: r.holderIdentity || null,
      leaseDurationSeconds: r.leaseDurationSeconds,
      acquireTime: r.acquireTime,
      renewTime: r.renewTime,
      leaseTransitions: r.leaseTransitions,
    },
  };
}

/** The election Lease `namespace/name` on a real API server. */
export class RestLeaseLock implements LeaseLock {
  readonly #client: KubeRestClient;
  readonly #namespace: string;
  readonly #name: string;
  #last: LeaseObject | null = null;

  /** Uses `client` for the Lease `namespace/name`. */
  constructor(client: KubeRestClient, namespace: string, name: string) {
    this.#client = client;
    this.#namespace = namespace;
    this.#name = name;
  }

  /** Reads the Lease; null when it does not exist. */
  async get(signal?: AbortSignal): Promise<ObservedLock | null> {
    try {
      const lease = await this.#client.request<LeaseObject>(
        "GET",
        leasePath(this.#namespace, this.#name),
        undefined,
        signal,
      );
      this.#last = lease;
      return {
        record: recordOf(lease),
        raw: JSON.stringify([lease.spec, lease.metadata.annotations]),
      };
    } catch (err) {
      if (err instanceof KubeApiError && err.code === 404) {
        this.#last = null;
        return null;
      }
      throw err;
    }
  }

  /** Creates the Lease with `record`. */
  async create(
    record: LeaderElectionRecord,
    signal?: AbortSignal,
  ): Promise<void> {
    const lease = applyRecord(
      { metadata: { name: this.#name, namespace: this.#namespace } },
      record,
    );
    this.#last = await this.#write(
      "POST",
      leasesPath(this.#namespace),
      lease,
      signal,
    );
  }

  /** Replaces the Lease read last (optimistic concurrency on resourceVersion). */
  async update(
    record: LeaderElectionRecord,
    signal?: AbortSignal,
  ): Promise<void> {
    if (!this.#last) {
      throw new LockConflictError(
        `Lease ${this.describe()} must be read before it is updated`,
      );
    }
    const lease = applyRecord(this.#last, record);
    this.#last = await this.#write(
      "PUT",
      leasePath(this.#namespace, this.#name),
      lease,
      signal,
    );
  }

  async #write(
    method: "POST" | "PUT",
    path: string,
    lease: LeaseObject,
    signal?: AbortSignal,
  ): Promise<LeaseObject> {
    try {
      return await this.#client.request<LeaseObject>(
        method,
        path,
        lease,
        signal,
      );
    } catch (err) {
      if (err instanceof KubeApiError && err.code === 409) {
        throw new LockConflictError(err.message, { cause: err });
      }
      throw err;
    }
  }

  /** `namespace/name`. */
  describe(): string {
    return `${this.#namespace}/${this.#name}`;
  }
}
