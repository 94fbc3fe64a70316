/**
 * Fresh reads that confirm a heart's silence before the hub calls it
 * expired. A watch can fall behind the API server without failing (a stuck
 * stream, a lagging cache), and silence seen through it is then Earthworm's,
 * not the heart's. So when a heart reaches its lease duration without a
 * beat, its one Lease is read fresh (a quorum read) and the hub judges the
 * answer.
 *
 * Reads stay bounded at any cluster size: only hearts at their deadline are
 * read, once per silence (a confirmed heart is not read again until it
 * beats), at most `concurrency` at a time, each within `timeoutMs`; a failed
 * read is retried after a backoff that doubles per failure. Everything in
 * flight is dropped when the hub loses or regains sight of the API server.
 *
 * @module
 */

import type { Clock } from "../core/clock.ts";
import { sleepUnlessAborted } from "../core/clock.ts";
import type { Lease } from "../core/lease_types.ts";
import { parseTime } from "./heart.ts";

/** Reads the Lease `namespace/name` fresh; null when it does not exist. */
export type ReadLease = (
  namespace: string,
  name: string,
  signal: AbortSignal,
) => Promise<Lease | null>;

/** Bounds of the confirmation reads. */
export interface ConfirmPolicy {
  /** Reads in flight at once. */
  concurrency: number;
  /** Longest one read may take. */
  timeoutMs: number;
  /** Wait before a heart is read again after a failed read; doubles per failure. */
  retryMs: number;
  /** Longest wait between reads of a heart whose reads keep failing. */
  maxRetryMs: number;
  /**
   * How long the watch may take to deliver a change that a read saw before
   * the view counts as stale (a renewal can land just as its heart is read).
   */
  graceMs: number;
}

/** Defaults: 4 reads at a time, 5 s each, retries from 2 s up to a minute. */
export const DEFAULT_CONFIRM_POLICY: ConfirmPolicy = {
  concurrency: 4,
  timeoutMs: 5_000,
  retryMs: 2_000,
  maxRetryMs: 60_000,
  graceMs: 2_000,
};

/** What a read found: the Lease (null when gone), or why it failed. */
export type ReadResult = { lease: Lease | null } | { error: unknown };

/** Settings of an {@linkcode ExpiryConfirmer}. */
export interface ExpiryConfirmerOptions {
  clock: Clock;
  read: ReadLease;
  policy?: Partial<ConfirmPolicy>;
  /**
   * Called with each read's result, `asked` being the heart's renewTime when
   * it was asked. A result that differs from `asked` comes after the grace.
   */
  onResult: (id: string, asked: number | null, result: ReadResult) => void;
}

interface Entry {
  namespace: string;
  name: string;
  asked: number | null;
  state: "queued" | "reading" | "answered" | "waiting";
  failures: number;
  retryAt: number;
}

/** Counters for metrics and tests. */
export interface ConfirmCounters {
  /** Reads sent. */
  reads: number;
  /** Reads that failed or timed out. */
  failures: number;
}

/** Schedules the confirmation reads of silent hearts. */
export class ExpiryConfirmer {
  readonly policy: ConfirmPolicy;
  readonly counters: ConfirmCounters = { reads: 0, failures: 0 };
  readonly #clock: Clock;
  readonly #read: ReadLease;
  readonly #onResult: ExpiryConfirmerOptions["onResult"];
  #entries = new Map<string, Entry>();
  #queue: string[] = [];
  #active = 0;
  #epoch = new AbortController();

  /** A confirmer with nothing to read yet. */
  constructor(opts: ExpiryConfirmerOptions) {
    this.#clock = opts.clock;
    this.#read = opts.read;
    this.#onResult = opts.onResult;
    this.policy = { ...DEFAULT_CONFIRM_POLICY, ...opts.policy };
  }

  /** Reads in flight now. */
  get active(): number {
    return this.#active;
  }

  /** Hearts waiting for a free read slot. */
  get queued(): number {
    return this.#queue.length;
  }

  /**
   * Asks for the silence of heart `id` (renewTime `asked`) to be confirmed;
   * reads it unless a read is under way, answered or waiting out its retry.
   * Returns `failed` while its last read failed, else `pending`.
   */
  request(
    id: string,
    namespace: string,
    name: string,
    asked: number | null,
    now: number,
  ): "pending" | "failed" {
    let entry = this.#entries.get(id);
    if (entry === undefined || entry.asked !== asked) {
      entry = {
        namespace,
        name,
        asked,
        state: "queued",
        failures: 0,
        retryAt: 0,
      };
      this.#entries.set(id, entry);
      this.#enqueue(id);
    } else if (entry.state === "waiting" && now >= entry.retryAt) {
      entry.state = "queued";
      this.#enqueue(id);
    }
    return entry.failures > 0 ? "failed" : "pending";
  }

  /** Drops what is known or under way for heart `id` (it beat, was confirmed or deleted). */
  forget(id: string): void {
    this.#entries.delete(id);
  }

  /** Drops everything and ends the reads in flight: the view is being rebuilt. */
  reset(): void {
    this.#epoch.abort();
    this.#epoch = new AbortController();
    this.#entries.clear();
    this.#queue = [];
  }

  /** Ends the reads in flight; the confirmer stays usable. */
  [Symbol.dispose](): void {
    this.reset();
  }

  #enqueue(id: string): void {
    this.#queue.push(id);
    this.#pump();
  }

  #pump(): void {
    while (this.#active < this.policy.concurrency && this.#queue.length > 0) {
      const id = this.#queue.shift()!;
      const entry = this.#entries.get(id);
      if (entry?.state !== "queued") continue;
      entry.state = "reading";
      this.#active++;
      this.#readOne(id, entry, this.#epoch.signal).finally(() => {
        this.#active--;
        this.#pump();
      });
    }
  }

  async #readOne(id: string, entry: Entry, epoch: AbortSignal): Promise<void> {
    this.counters.reads++;
    const result = await this.#readWithDeadline(entry, epoch);
    if (epoch.aborted || this.#entries.get(id) !== entry) return;
    if ("error" in result) {
      this.counters.failures++;
      entry.failures++;
      entry.state = "waiting";
      entry.retryAt = this.#clock.now() +
        Math.min(
          this.policy.maxRetryMs,
          this.policy.retryMs * 2 ** (entry.failures - 1),
        );
      this.#onResult(id, entry.asked, result);
      return;
    }
    entry.state = "answered";
    const unchanged = result.lease !== null &&
      parseTime(result.lease.spec?.renewTime) === entry.asked;
    if (!unchanged) {
      // Give the watch a moment to deliver what the read saw.
      this.#active--;
      this.#pump();
      const waited = await sleepUnlessAborted(
        this.#clock,
        this.policy.graceMs,
        epoch,
      );
      this.#active++;
      if (!waited || this.#entries.get(id) !== entry) return;
    }
    this.#onResult(id, entry.asked, result);
  }

  async #readWithDeadline(
    entry: Entry,
    epoch: AbortSignal,
  ): Promise<ReadResult> {
    const controller = new AbortController();
    const onEpoch = () => controller.abort(epoch.reason);
    epoch.addEventListener("abort", onEpoch, { once: true });
    const deadline = this.#clock.sleep(
      this.policy.timeoutMs,
      controller.signal,
    ).then(() => {
      controller.abort(
        new DOMException(
          `no answer within ${this.policy.timeoutMs / 1000} s`,
          "TimeoutError",
        ),
      );
    }, () => {});
    try {
      return {
        lease: await this.#read(entry.namespace, entry.name, controller.signal),
      };
    } catch (error) {
      return {
        error: controller.signal.aborted ? controller.signal.reason : error,
      };
    } finally {
      controller.abort();
      epoch.removeEventListener("abort", onEpoch);
      await deadline;
    }
  }
}
