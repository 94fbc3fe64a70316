/**
 * An in-memory election Lease for unit tests: each elector gets its own
 * view with its own last-read version, like one API client, so conflicts
 * happen as on a real API server. Never used outside tests.
 *
 * @module
 */

import {
  type LeaderElectionRecord,
  type LeaseLock,
  LockConflictError,
} from "./lease_lock.ts";

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
