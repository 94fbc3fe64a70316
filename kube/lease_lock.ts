/**
 * The election lock: what an election Lease says
 * ({@linkcode LeaderElectionRecord}), the small get/create/update interface
 * the elector needs ({@linkcode LeaseLock}), an in-memory implementation for
 * unit tests ({@linkcode MemoryLeaseStore}) and one that talks to a real API
 * server through the light `kube_client.ts` client ({@linkcode RestLeaseLock}).
 *
 * @module
 */

import type { KubeRestClient } from "./rest_client.ts";
import { KubeApiError } from "./rest_client.ts";

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

/** Formats a time as a Kubernetes MicroTime (six fractional digits). */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

// ---------------------------------------------------------------------------
// In-memory lock for unit tests

/** One shared in-memory Lease; each elector gets its own {@linkcode MemoryLeaseStore.lock}. */
export class MemoryLeaseStore {
  record: LeaderElectionRecord | null = null;
  version = 0;
  /** When set, every call fails with this error (simulates an outage). */
  failWith: Error | null = null;
  /** Number of writes (creates and updates). */
  writes = 0;

  /** A lock view with its own last-read version, like one API client. */
  lock(name = "test/lease"): LeaseLock {
    let readVersion = -1;
    const fail = () => {
      if (this.failWith) throw this.failWith;
    };
    return {
      get: () => {
        fail();
        readVersion = this.version;
        if (!this.record) return Promise.resolve(null);
        const record = { ...this.record };
        return Promise.resolve({
          record,
          raw: `${this.version}:${JSON.stringify(record)}`,
        });
      },
      create: (record) => {
        fail();
        if (this.record) throw new LockConflictError(`${name} already exists`);
        this.record = { ...record };
        this.version++;
        this.writes++;
        readVersion = this.version;
        return Promise.resolve();
      },
      update: (record) => {
        fail();
        if (!this.record || readVersion !== this.version) {
          throw new LockConflictError(`${name} changed since it was read`);
        }
        this.record = { ...record };
        this.version++;
        this.writes++;
        readVersion = this.version;
        return Promise.resolve();
      },
      describe: () => name,
    };
  }
}

// ---------------------------------------------------------------------------
// Lease lock on a real API server

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

  #path(name?: string): string {
    const base = `/apis/coordination.k8s.io/v1/namespaces/${
      encodeURIComponent(this.#namespace)
    }/leases`;
    return name ? `${base}/${encodeURIComponent(name)}` : base;
  }

  /** Reads the Lease; null when it does not exist. */
  async get(signal?: AbortSignal): Promise<ObservedLock | null> {
    try {
      const lease = await this.#client.request<LeaseObject>(
        "GET",
        this.#path(this.#name),
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
    this.#last = await this.#write("POST", this.#path(), lease, signal);
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
      this.#path(this.#name),
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
