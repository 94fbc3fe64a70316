/**
 * An in-memory election Lease for unit tests: each elector gets its own
 * view with its own last-read version, like one API client, so conflicts
 * happen as on a real API server; watches see every change, and the store
 * counts requests the way an API server's audit log would. Never used
 * outside tests.
 *
 * @module
 */

import {
  type LeaderElectionRecord,
  type LeaseLock,
  LockConflictError,
  type LockWatcher,
  type ObservedLock,
} from "./lease_lock.ts";

/** Options of one lock view. */
export interface MemoryLockOptions {
  /** Offer a watch (true); without it the elector polls as client-go does. */
  watch?: boolean;
}

/** One shared in-memory Lease; each elector gets its own {@linkcode MemoryLeaseStore.lock}. */
export class MemoryLeaseStore {
  record: LeaderElectionRecord | null = null;
  version = 0;
  /** Number of writes (creates and updates). */
  writes = 0;
  /** Number of reads (gets). */
  reads = 0;
  /** Number of watches opened. */
  watches = 0;
  /** When true, new watches fail (as when RBAC denies them). */
  refuseWatches = false;
  #failWith: Error | null = null;
  #watchers = new Set<
    { watcher: LockWatcher; fail: (err: Error) => void }
  >();

  /** When set, every call fails with this error and open watches break (an outage). */
  get failWith(): Error | null {
    return this.#failWith;
  }
  set failWith(err: Error | null) {
    this.#failWith = err;
    if (err) this.breakWatches(err);
  }

  /** Ends every open watch with `err`, as a restarting API server does. */
  breakWatches(err = new Error("watch closed")): void {
    for (const w of [...this.#watchers]) w.fail(err);
  }

  /** The Lease as a read returns it. */
  observed(): ObservedLock | null {
    if (!this.record) return null;
    const record = { ...this.record };
    return { record, raw: `${this.version}:${JSON.stringify(record)}` };
  }

  /** Tells every watcher of the current state, as a watch event would, soon. */
  #notify(): void {
    const current = this.observed();
    queueMicrotask(() => {
      for (const w of this.#watchers) w.watcher.change(current);
    });
  }

  /** A lock view with its own last-read version, like one API client. */
  lock(name = "test/lease", options: MemoryLockOptions = {}): LeaseLock {
    let readVersion = -1;
    const fail = () => {
      if (this.#failWith) throw this.#failWith;
    };
    const lock: LeaseLock = {
      get: () => {
        this.reads++;
        fail();
        readVersion = this.version;
        return Promise.resolve(this.observed());
      },
      create: (record) => {
        fail();
        if (this.record) throw new LockConflictError(`${name} already exists`);
        this.record = { ...record };
        this.version++;
        this.writes++;
        readVersion = this.version;
        this.#notify();
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
        this.#notify();
        return Promise.resolve();
      },
      describe: () => name,
    };
    if (options.watch ?? true) {
      lock.watch = (watcher, signal) =>
        new Promise<void>((resolve, reject) => {
          this.watches++;
          if (this.#failWith) return reject(this.#failWith);
          if (this.refuseWatches) {
            return reject(new Error(`watch of ${name} refused`));
          }
          const entry = {
            watcher,
            fail: (err: Error) => {
              this.#watchers.delete(entry);
              signal.removeEventListener("abort", end);
              reject(err);
            },
          };
          const end = () => {
            this.#watchers.delete(entry);
            resolve();
          };
          if (signal.aborted) return resolve();
          signal.addEventListener("abort", end, { once: true });
          this.#watchers.add(entry);
          watcher.open(this.observed());
        });
    }
    return lock;
  }
}
