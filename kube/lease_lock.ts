/**
 * The election lock: what an election Lease says
 * ({@linkcode LeaderElectionRecord}), the small get/create/update/watch
 * interface the elector needs ({@linkcode LeaseLock}), and the lock on a real
 * API server through the small REST client ({@linkcode RestLeaseLock}). Unit
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

/** What {@linkcode LeaseLock.watch} reports; null stands for no Lease. */
export interface LockWatcher {
  /** The watch is open and the Lease is `current`. */
  open(current: ObservedLock | null): void;
  /** The Lease changed to `current` (null: deleted). */
  change(current: ObservedLock | null): void;
}

/**
 * Get, create and update of the election Lease (client-go's
 * resourcelock.Interface), and a watch of it, with which followers learn of
 * every change as it happens instead of reading the Lease every retry period.
 */
export interface LeaseLock {
  /** Reads the Lease; null when it does not exist. */
  get(signal?: AbortSignal): Promise<ObservedLock | null>;
  /** Creates the Lease; throws LockConflictError when it already exists. */
  create(record: LeaderElectionRecord, signal?: AbortSignal): Promise<void>;
  /** Updates the Lease read or written last; throws LockConflictError when it changed since. */
  update(record: LeaderElectionRecord, signal?: AbortSignal): Promise<void>;
  /**
   * Watches the Lease until `signal` aborts (resolves) or the watch fails
   * (rejects): `open` once with its current state, then `change` at every
   * change. Optional: without it, followers read the Lease every retry
   * period as in client-go.
   */
  watch?(watcher: LockWatcher, signal: AbortSignal): Promise<void>;
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

function observe(lease: LeaseObject): ObservedLock {
  return {
    record: recordOf(lease),
    raw: JSON.stringify([lease.spec, lease.metadata.annotations]),
  };
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

/** Settings of a {@linkcode RestLeaseLock}'s watch. */
export interface RestLeaseLockOptions {
  /**
   * Server-side timeout of one watch request, in seconds, drawn anew for
   * each request (default 3 to 6 hours). Every agent holds one watch, so
   * this sets how often each asks again: at 5,000 agents, one request every
   * 3.2 s on average in all.
   */
  watchTimeoutSeconds?: () => number;
  /** A watch that sends nothing (not even a bookmark) for this long failed (150 s). */
  watchIdleMs?: number;
}

/** Default timeout of one watch request: 3 to 6 hours. */
export function defaultWatchTimeoutSeconds(): number {
  return Math.round(3 * 3600 * (1 + Math.random()));
}

/** The election Lease `namespace/name` on a real API server. */
export class RestLeaseLock implements LeaseLock {
  readonly #client: KubeRestClient;
  readonly #namespace: string;
  readonly #name: string;
  readonly #watchTimeout: () => number;
  readonly #watchIdleMs: number;
  #last: LeaseObject | null = null;

  /** Uses `client` for the Lease `namespace/name`. */
  constructor(
    client: KubeRestClient,
    namespace: string,
    name: string,
    options: RestLeaseLockOptions = {},
  ) {
    this.#client = client;
    this.#namespace = namespace;
    this.#name = name;
    this.#watchTimeout = options.watchTimeoutSeconds ??
      defaultWatchTimeoutSeconds;
    this.#watchIdleMs = options.watchIdleMs ?? 150_000;
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
      return observe(lease);
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

  /**
   * Lists the Lease by name, then watches it from the list's
   * resourceVersion with bookmarks; when the server ends a watch at its
   * timeout, watches again from the last resourceVersion seen. Rejects on
   * any failure (a `410 Gone` included: the caller lists again).
   */
  async watch(watcher: LockWatcher, signal: AbortSignal): Promise<void> {
    // A name selector: RBAC that names the Lease allows this list and watch.
    const fieldSelector = `metadata.name=${this.#name}`;
    const path = leasesPath(this.#namespace);
    const list = await this.#client.request<{
      metadata?: { resourceVersion?: string };
      items?: LeaseObject[];
    }>(
      "GET",
      `${path}?${new URLSearchParams({ fieldSelector })}`,
      undefined,
      signal,
    );
    let resourceVersion = list.metadata?.resourceVersion ?? "";
    const item = list.items?.find((i) => i.metadata?.name === this.#name);
    watcher.open(item ? observe(item) : null);
    while (!signal.aborted) {
      const q = new URLSearchParams({
        watch: "1",
        fieldSelector,
        resourceVersion,
        allowWatchBookmarks: "true",
        timeoutSeconds: String(this.#watchTimeout()),
      });
      await this.#client.stream(`${path}?${q}`, {
        onLine: (value) => {
          const ev = value as { type?: string; object?: unknown };
          if (ev.type === "ERROR") {
            const status = (ev.object ?? {}) as {
              code?: number;
              message?: string;
              reason?: string;
            };
            throw new KubeApiError(
              status.code ?? 500,
              `watch of ${this.describe()}: ${status.message ?? "error event"}`,
              status.reason,
            );
          }
          const lease = ev.object as LeaseObject | undefined;
          const rv = lease?.metadata?.resourceVersion;
          if (rv) resourceVersion = rv;
          if (!lease || lease.metadata?.name !== this.#name) return;
          if (ev.type === "ADDED" || ev.type === "MODIFIED") {
            watcher.change(observe(lease));
          } else if (ev.type === "DELETED") watcher.change(null);
        },
        signal,
        idleMs: this.#watchIdleMs,
      });
    }
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
