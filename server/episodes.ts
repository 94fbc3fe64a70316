/**
 * Episodes: the times a heart was late or expired, or Earthworm was blind,
 * each with its diagnosis as it stood at the end (and live while open).
 * Bounded per heart by count and age, and in all by count: at 5,000 nodes
 * in trouble (a loaded kwok let every node go late every few minutes) the
 * per-heart bounds alone held 130,000 episodes after 37 minutes while the
 * leader's RSS climbed past 260 MiB; the oldest closed episodes of any heart
 * give way first.
 *
 * A closed episode is kept as its JSON, split in two: the JSON with every
 * run of digits taken out (its skeleton, which episodes of the same kind
 * share: a late node's reads the same for every node and every silence)
 * and the digits themselves (times, seconds, node numbers). A late node's
 * episode with its evidence takes about 410 bytes of heap in all, where
 * its JSON kept whole took 810 (and its objects more): at the 10,000 bound
 * 3.9 MiB instead of 7.7, and one short string for the collector to pass
 * over instead of a dozen objects.
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
   * (about 4 MB); open episodes are never dropped.
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

/** Runs of digits: what tells apart the JSON of episodes of one kind. */
const DIGITS = /\d+/g;
/**
 * Stands for a run of digits in a skeleton. `JSON.stringify` writes this
 * character escaped, so no JSON holds it as it is.
 */
const HOLE = "\u0001";
/** Distinct skeletons shared; past this many a skeleton is kept unshared. */
const MAX_SKELETONS = 1024;

/** The skeletons of closed episodes, one copy of each. */
class Skeletons {
  #shared = new Map<string, string>();

  /** The shared copy of `skeleton`. */
  share(skeleton: string): string {
    const shared = this.#shared.get(skeleton);
    if (shared !== undefined) return shared;
    if (this.#shared.size < MAX_SKELETONS) {
      this.#shared.set(skeleton, skeleton);
    }
    return skeleton;
  }
}

/** An episode as the book keeps it. */
class Kept {
  /** The open episode; null once it closed. */
  open: Episode | null;
  /** A closed episode's JSON without its digits; empty while open. */
  skeleton = "";
  /** The digits taken out of `skeleton`'s holes, in order, comma-separated. */
  digits = "";
  /** When it began and ended (NaN while open), epoch ms. */
  readonly startMs: number;
  endMs = NaN;
  /** Its key in the book: the heart's id, or a source's. */
  readonly key: string;
  constructor(key: string, open: Episode, startMs: number) {
    this.key = key;
    this.open = open;
    this.startMs = startMs;
  }

  /** The episode (a closed one built again from its JSON: a copy). */
  episode(): Episode {
    if (this.open) return this.open;
    const parts = this.skeleton.split(HOLE);
    const digits = this.digits.split(",");
    let json = parts[0]!;
    for (let i = 1; i < parts.length; i++) json += digits[i - 1]! + parts[i]!;
    return JSON.parse(json) as Episode;
  }

  /** Keeps `e`, which has ended at `at`, as its skeleton and digits. */
  closeAs(e: Episode, at: number, skeletons: Skeletons): void {
    const json = JSON.stringify(e);
    this.skeleton = skeletons.share(json.split(DIGITS).join(HOLE));
    this.digits = (json.match(DIGITS) ?? []).join(",");
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
  #skeletons = new Skeletons();
  #open = new Map<string, Kept>();
  /** Episodes in `#episodes`. */
  #total = 0;
  /** Every episode kept, in the order it opened, from `#head` on. */
  #order: Kept[] = [];
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

  /** Keys of the open episodes (a live view: closing one while iterating is safe). */
  openIds(): IterableIterator<string> {
    return this.#open.keys();
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
      const kept = new Kept(id, e, at);
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
    kept.closeAs(open, at, this.#skeletons);
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
    kept.closeAs(closed, kept.endMs, this.#skeletons);
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
    this.#order.push(e);
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
      const e = this.#order[this.#head]!;
      const list = this.#episodes.get(e.key);
      if (list?.[0] !== e) {
        this.#head++;
        continue;
      }
      if (this.#total <= this.options.maxTotal) break;
      this.#head++;
      if (e.open !== null) {
        this.#order.push(e);
        continue;
      }
      list.shift();
      this.#total--;
    }
    // Entries of episodes dropped behind a kept one wait in the line: when
    // they outnumber the kept ones, the line is made again from the lists.
    if (this.#order.length - this.#head > 2 * this.#total + 1024) {
      this.#order = [...this.#episodes.values()].flat()
        .sort((a, b) => a.startMs - b.startMs);
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > this.#order.length) {
      this.#order = this.#order.slice(this.#head);
      this.#head = 0;
    }
  }
}
