/**
 * A simulated API server for Leases: the simulator and the replay write
 * Lease objects into it, and Earthworm reads it through the same list/watch
 * loop as a real cluster (it is a {@linkcode LeaseSource}). Like the real
 * one it numbers every write with a resourceVersion, keeps a bounded window
 * of watch events so a watch can resume from a resourceVersion (older ones
 * get `410 Gone`), ends watches after their server-side timeout, and, while
 * it is down, refuses lists and watches and breaks the watches in progress,
 * so the loop's outage, resume and relist paths all run in mock mode. It can
 * also be frozen, as a SIGSTOP or a partition leaves a real one: requests
 * hang until it thaws or their caller gives up, and watches stay open but
 * silent.
 *
 * @module
 */

import type { Clock } from "../core/clock.ts";
import type { Lease, LeaseEventType } from "../core/lease_types.ts";
import type {
  LeaseList,
  LeaseSource,
  RawWatchEvent,
  WatchRequest,
} from "../core/lease_source.ts";

/** Settings of a {@linkcode SimApiServer}. */
export interface SimApiServerOptions {
  /** Times watch timeouts. */
  clock: Clock;
  /** Watch events kept for resumption; a watch from an older version gets 410. Default 20,000. */
  historyLimit?: number;
}

interface Logged {
  rv: number;
  type: LeaseEventType;
  object: Lease;
}

interface Watcher {
  namespace: string | undefined;
  deliver(event: RawWatchEvent): void;
  fail(error: Error): void;
}

/** The error of a request while the simulated API server is down. */
export class SimOutageError extends Error {
  override name = "SimOutageError";
  /** A network error code, as a refused connection has. */
  readonly code = "ECONNREFUSED";
}

/** The error of a write to a frozen simulated API server (its writer timed out). */
export class SimFrozenError extends Error {
  override name = "SimFrozenError";
  /** A network error code, as a request without an answer ends with. */
  readonly code = "ETIMEDOUT";
}

/** An in-memory API server holding Leases. */
export class SimApiServer implements LeaseSource {
  readonly #clock: Clock;
  readonly #historyLimit: number;
  readonly #objects = new Map<string, Lease>();
  #history: Logged[] = [];
  #rv = 0;
  #down: string | null = null;
  #frozen: PromiseWithResolvers<void> | null = null;
  readonly #watchers = new Set<Watcher>();

  /** An empty, reachable server. */
  constructor(opts: SimApiServerOptions) {
    this.#clock = opts.clock;
    this.#historyLimit = opts.historyLimit ?? 20_000;
  }

  /** The last resourceVersion written. */
  get resourceVersion(): string {
    return String(this.#rv);
  }

  /** Whether lists, watches and writes succeed now. */
  get reachable(): boolean {
    return this.#down === null;
  }

  /** Whether it is frozen: requests wait for {@linkcode SimApiServer.thaw}. */
  get frozen(): boolean {
    return this.#frozen !== null;
  }

  /** Watches open now. */
  get watchers(): number {
    return this.#watchers.size;
  }

  /** The stored Lease `namespace/name` (do not modify it). */
  get(namespace: string, name: string): Lease | undefined {
    return this.#objects.get(`${namespace}/${name}`);
  }

  /** Every stored Lease (do not modify them). */
  leases(): Lease[] {
    return [...this.#objects.values()];
  }

  /**
   * Stores `lease` (ADDED when new, else MODIFIED) with the next
   * resourceVersion and tells the watches; returns the stored object. Like a
   * write to a real API server, it throws while the server is down.
   */
  write(lease: Lease): Lease {
    this.#refuseWhenDown();
    this.#refuseWhenFrozen();
    const id = `${lease.metadata.namespace}/${lease.metadata.name}`;
    const type: LeaseEventType = this.#objects.has(id) ? "MODIFIED" : "ADDED";
    const stored: Lease = {
      ...lease,
      metadata: { ...lease.metadata, resourceVersion: String(++this.#rv) },
    };
    this.#objects.set(id, stored);
    this.#publish(type, stored);
    return stored;
  }

  /** Deletes the Lease `namespace/name`; false when there was none. Throws while down. */
  delete(namespace: string, name: string): boolean {
    this.#refuseWhenDown();
    this.#refuseWhenFrozen();
    const id = `${namespace}/${name}`;
    const old = this.#objects.get(id);
    if (!old) return false;
    this.#objects.delete(id);
    this.#publish("DELETED", {
      ...old,
      metadata: { ...old.metadata, resourceVersion: String(++this.#rv) },
    });
    return true;
  }

  /**
   * Takes the server down with `reason` (lists, watches and writes fail, and
   * the watches in progress break), or brings it back with null.
   */
  setDown(reason: string | null): void {
    this.#down = reason;
    if (reason === null) return;
    const error = new SimOutageError(reason);
    for (const w of [...this.#watchers]) w.fail(error);
  }

  /**
   * Freezes the server, as SIGSTOP freezes a real one: lists, watches,
   * liveness and fresh reads wait until {@linkcode SimApiServer.thaw} (or
   * until their signal aborts), writes fail as timed out, and the watches in
   * progress stay open without a word.
   */
  freeze(): void {
    this.#frozen ??= Promise.withResolvers<void>();
  }

  /** Thaws a frozen server: the requests that waited are answered. */
  thaw(): void {
    this.#frozen?.resolve();
    this.#frozen = null;
  }

  /** LeaseSource: the Leases of `namespace` (all when undefined) and the version to watch from. */
  async list(
    namespace: string | undefined,
    signal: AbortSignal,
  ): Promise<LeaseList> {
    await this.#answering(signal);
    const items: Lease[] = [];
    for (const lease of this.#objects.values()) {
      if (namespace === undefined || lease.metadata.namespace === namespace) {
        items.push(copy(lease));
      }
    }
    return { items, resourceVersion: String(this.#rv) };
  }

  /** LeaseSource: answers at once while reachable; waits while frozen. */
  async ping(
    _namespace: string | undefined,
    signal: AbortSignal,
  ): Promise<void> {
    await this.#answering(signal);
  }

  /** LeaseSource: the stored Lease `namespace/name`, or null. */
  async read(
    namespace: string,
    name: string,
    signal: AbortSignal,
  ): Promise<Lease | null> {
    await this.#answering(signal);
    const lease = this.#objects.get(`${namespace}/${name}`);
    return lease ? copy(lease) : null;
  }

  /**
   * LeaseSource: replays the events after `request.resourceVersion` (or sends
   * a 410 ERROR event when they are no longer kept), then delivers each new
   * one as it is written, until the timeout (resolves), the signal (resolves)
   * or an outage (rejects).
   */
  watch(request: WatchRequest): Promise<void> {
    if (request.signal.aborted) return Promise.resolve();
    if (this.#frozen !== null) {
      return this.#answering(request.signal).then(
        () => this.watch(request),
        (err) => request.signal.aborted ? undefined : Promise.reject(err),
      );
    }
    if (this.#down !== null) {
      return Promise.reject(new SimOutageError(this.#down));
    }
    return new Promise<void>((resolve, reject) => {
      const ended = new AbortController();
      const finish = (error?: Error) => {
        if (ended.signal.aborted) return;
        ended.abort();
        this.#watchers.delete(watcher);
        request.signal.removeEventListener("abort", onAbort);
        if (error) reject(error);
        else resolve();
      };
      const onAbort = () => finish();
      const watcher: Watcher = {
        namespace: request.namespace,
        deliver: (event) => {
          try {
            request.onEvent(event);
          } catch (err) {
            finish(err instanceof Error ? err : new Error(String(err)));
          }
        },
        fail: finish,
      };
      request.signal.addEventListener("abort", onAbort, { once: true });
      request.onOpen();
      const from = Number(request.resourceVersion);
      const oldest = this.#history[0]?.rv ?? this.#rv + 1;
      if (!Number.isInteger(from) || from < oldest - 1) {
        watcher.deliver({
          type: "ERROR",
          object: {
            kind: "Status",
            status: "Failure",
            reason: "Expired",
            code: 410,
            message:
              `too old resource version: ${request.resourceVersion} (${oldest})`,
          },
        });
        finish();
        return;
      }
      for (const e of this.#history) {
        if (ended.signal.aborted) return;
        if (e.rv <= from || !matches(watcher, e.object)) continue;
        watcher.deliver({ type: e.type, object: e.object });
      }
      if (ended.signal.aborted) return;
      this.#watchers.add(watcher);
      this.#clock.sleep(request.timeoutSeconds * 1000, ended.signal).then(
        // A frozen server ends nothing, not even a watch that timed out.
        () =>
          this.#frozen ? this.#frozen.promise.then(() => finish()) : finish(),
        () => {},
      );
    });
  }

  #refuseWhenDown(): void {
    if (this.#down !== null) throw new SimOutageError(this.#down);
  }

  #refuseWhenFrozen(): void {
    if (this.#frozen !== null) {
      throw new SimFrozenError("simulated API server is frozen: no answer");
    }
  }

  /**
   * Resolves when the server would answer a request: at once, or after a
   * thaw; rejects when it is down or when `signal` aborts first.
   */
  async #answering(signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    while (this.#frozen !== null) {
      const thawed = this.#frozen.promise;
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => reject(signal.reason);
        signal.addEventListener("abort", onAbort, { once: true });
        thawed.then(() => {
          signal.removeEventListener("abort", onAbort);
          resolve();
        });
      });
    }
    if (this.#down !== null) throw new SimOutageError(this.#down);
  }

  #publish(type: LeaseEventType, object: Lease): void {
    this.#history.push({ rv: this.#rv, type, object });
    if (this.#history.length > this.#historyLimit * 1.25) {
      this.#history = this.#history.slice(-this.#historyLimit);
    }
    for (const w of [...this.#watchers]) {
      if (matches(w, object)) w.deliver({ type, object });
    }
  }
}

function matches(w: Watcher, lease: Lease): boolean {
  return w.namespace === undefined || w.namespace === lease.metadata.namespace;
}

function copy(lease: Lease): Lease {
  const out: Lease = { ...lease, metadata: { ...lease.metadata } };
  if (lease.spec) out.spec = { ...lease.spec };
  return out;
}
