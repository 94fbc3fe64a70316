/**
 * Episodes: the times a heart was late or expired, or Earthworm was blind,
 * each with its diagnosis as it stood at the end (and live while open).
 * Bounded per heart by count and age, and in all by count: at 5,000 nodes
 * in trouble (a loaded kwok let every node go late every few minutes) the
 * per-heart bounds alone held 130,000 episodes after 37 minutes while the
 * leader's RSS climbed past 260 MiB; the oldest closed episodes of any heart
 * give way first.
 *
 * A closed episode is kept as its JSON: about 530 bytes for a late node's
 * with its evidence, where its objects (times as text, the finding's
 * phrases and evidence) took about 900, and one string for the collector
 * to pass over instead of a dozen objects. A heap snapshot of a leader
 * whose book was full (kwok's late renewals) put it at 7.8 MiB.
 *
 * @module
 */

import type {
  DiagnosisCause,
  Episode,
  HeartStatus,
} from "../core/api_types.ts";
import type { Finding } from "./diagnosis.ts";

/** Limits of an {@linkcode EpisodeBook}. */
export interface EpisodeBookOptions {
  /** Episodes kept per heart. Default 50. */
  maxPerHeart: number;
  /** Closed episodes older than this are dropped. Default one hour. */
  retentionMs: number;
  /**
   * Episodes kept in all, oldest closed ones dropped first. Default 10,000
   * (about 8 MB); open episodes are never dropped.
   */
  maxTotal: number;
}

const WORSE: Record<HeartStatus, number> = {
  expired: 3,
  late: 2,
  unknown: 1,
  healthy: 0,
};

/** Every cause, for counters that start at zero. */
export const CAUSES: readonly DiagnosisCause[] = [
  "kubelet",
  "network",
  "apiserver",
  "observer",
  "holder",
  "handover",
  "unknown",
];

/** An episode as the book keeps it. */
class Kept {
  /** The open episode; null once it closed. */
  open: Episode | null;
  /** The closed episode as JSON; empty while open. */
  json = "";
  /** When it began and ended (NaN while open), epoch ms. */
  readonly startMs: number;
  endMs = NaN;
  constructor(open: Episode, startMs: number) {
    this.open = open;
    this.startMs = startMs;
  }

  /** The episode (a closed one parsed again: a copy). */
  episode(): Episode {
    return this.open ?? JSON.parse(this.json) as Episode;
  }

  /** Keeps `e`, which has ended at `at`, as JSON. */
  closeAs(e: Episode, at: number): void {
    this.json = JSON.stringify(e);
    this.endMs = at;
    this.open = null;
  }
}

/** Open and past episodes per heart. */
export class EpisodeBook {
  readonly options: EpisodeBookOptions;
  /** Episodes closed, by their final cause. */
  readonly closed: Record<DiagnosisCause, number>;
  #episodes = new Map<string, Kept[]>();
  #open = new Map<string, Kept>();
  /** Episodes in `#episodes`. */
  #total = 0;
  /** Every episode kept, in the order it opened, from `#head` on. */
  #order: [id: string, episode: Kept][] = [];
  #head = 0;

  /** An empty book. */
  constructor(options: Partial<EpisodeBookOptions> = {}) {
    this.options = {
      maxPerHeart: 50,
      retentionMs: 3_600_000,
      maxTotal: 10_000,
      ...options,
    };
    this.closed = Object.fromEntries(CAUSES.map((c) => [c, 0])) as Record<
      DiagnosisCause,
      number
    >;
  }

  /** The open episode of `id`, if any. */
  current(id: string): Episode | undefined {
    return this.#open.get(id)?.open ?? undefined;
  }

  /** Open episodes, by their current cause. */
  openByCause(): Record<DiagnosisCause, number> {
    const out = Object.fromEntries(CAUSES.map((c) => [c, 0])) as Record<
      DiagnosisCause,
      number
    >;
    for (const k of this.#open.values()) out[k.open!.cause]++;
    return out;
  }

  /**
   * Opens an episode of `id` at `at` with `finding`, or updates the open
   * one; returns it when it is new or its finding or worst status changed,
   * else null. A new episode is labelled with `label` when given (the id
   * the API shows and its cluster), else with `id`.
   */
  record(
    id: string,
    at: number,
    worst: HeartStatus,
    finding: Finding,
    now: number = at,
    label?: { id: string; cluster?: string },
  ): Episode | null {
    const open = this.#open.get(id)?.open;
    if (!open) {
      const e: Episode = {
        id: label?.id ?? id,
        ...(label?.cluster !== undefined && { cluster: label.cluster }),
        start: new Date(at).toISOString(),
        end: null,
        worst,
        cause: finding.cause,
        causeSince: new Date(at).toISOString(),
        summary: finding.summary,
        summaryPhrase: finding.summaryPhrase,
        evidence: finding.evidence,
      };
      const kept = new Kept(e, at);
      this.#open.set(id, kept);
      this.#push(id, kept, at);
      return e;
    }
    const worse = WORSE[worst] > WORSE[open.worst];
    if (
      !worse && open.cause === finding.cause &&
      open.summary === finding.summary
    ) return null;
    if (worse) open.worst = worst;
    if (open.cause !== finding.cause) {
      open.causeSince = new Date(now).toISOString();
    }
    open.cause = finding.cause;
    open.summary = finding.summary;
    open.summaryPhrase = finding.summaryPhrase;
    open.evidence = finding.evidence;
    return open;
  }

  /** Closes the open episode of `id` at `at`; returns it, or null when none was open. */
  close(id: string, at: number): Episode | null {
    const kept = this.#open.get(id);
    if (!kept) return null;
    this.#open.delete(id);
    const open = kept.open!;
    open.end = new Date(at).toISOString();
    this.closed[open.cause]++;
    kept.closeAs(open, at);
    return open;
  }

  /**
   * Gives the last episode of `id`, when it is closed and `revise` says
   * its finding should now be `finding` (evidence that came after its
   * end), that finding from `now` on; returns the revised episode, or
   * null when there was none or it stays as it was.
   */
  reviseClosed(
    id: string,
    finding: Finding,
    now: number,
    revise: (closed: Episode) => boolean,
  ): Episode | null {
    const kept = this.#episodes.get(id)?.at(-1);
    if (!kept || kept.open !== null) return null;
    const closed = kept.episode();
    if (!revise(closed)) return null;
    this.closed[closed.cause]--;
    this.closed[finding.cause]++;
    closed.cause = finding.cause;
    closed.causeSince = new Date(now).toISOString();
    closed.summary = finding.summary;
    closed.summaryPhrase = finding.summaryPhrase;
    closed.evidence = finding.evidence;
    kept.closeAs(closed, kept.endMs);
    return closed;
  }

  /** Episodes of `id`, oldest first (closed ones as copies). */
  list(id: string): Episode[] {
    return (this.#episodes.get(id) ?? []).map((k) => k.episode());
  }

  /** Episodes kept, open and closed, of every heart. */
  get size(): number {
    return this.#total;
  }

  /** Forgets a deleted heart (its open episode is closed first by the caller). */
  delete(id: string): void {
    this.#total -= this.#episodes.get(id)?.length ?? 0;
    this.#episodes.delete(id);
    this.#open.delete(id);
  }

  #push(id: string, e: Kept, now: number): void {
    let list = this.#episodes.get(id);
    if (!list) {
      list = [];
      this.#episodes.set(id, list);
    }
    list.push(e);
    this.#total++;
    this.#order.push([id, e]);
    const cutoff = now - this.options.retentionMs;
    while (
      list.length > this.options.maxPerHeart ||
      (list.length > 1 && list[0]!.endMs < cutoff)
    ) {
      list.shift();
      this.#total--;
    }
    this.#trim();
  }

  /**
   * Drops the oldest closed episodes of any heart until at most `maxTotal`
   * are kept. A heart's episodes leave its list from the front, in the order
   * they opened, which is their order in `#order`: an entry whose episode is
   * not first in its heart's list any more was dropped otherwise and is
   * skipped; an open one goes to the back of the line.
   */
  #trim(): void {
    let tries = this.#order.length - this.#head;
    while (this.#head < this.#order.length && tries-- > 0) {
      const [id, e] = this.#order[this.#head]!;
      const list = this.#episodes.get(id);
      if (list?.[0] !== e) {
        this.#head++;
        continue;
      }
      if (this.#total <= this.options.maxTotal) break;
      this.#head++;
      if (e.open !== null) {
        this.#order.push([id, e]);
        continue;
      }
      list.shift();
      this.#total--;
    }
    // Entries of episodes dropped behind a kept one wait in the line: when
    // they outnumber the kept ones, the line is made again from the lists.
    if (this.#order.length - this.#head > 2 * this.#total + 1024) {
      this.#order = [...this.#episodes].flatMap(([id, list]) =>
        list.map((e): [string, Kept] => [id, e])
      ).sort((a, b) => a[1].startMs - b[1].startMs);
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > this.#order.length) {
      this.#order = this.#order.slice(this.#head);
      this.#head = 0;
    }
  }
}
