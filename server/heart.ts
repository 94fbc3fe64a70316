/**
 * The heart model: pure functions that turn successive observations of a
 * Lease into beats and transitions, and decide a heart's status on
 * Earthworm's own clock (never on the timestamps written in the Lease), the
 * way the node lifecycle controller judges kubelet Leases. A heart is only
 * called expired once a fresh read of its Lease confirms the silence
 * ({@linkcode judgeRead}, {@linkcode gateExpiry}).
 *
 * @module
 */

import {
  heartId,
  type HeartKind,
  type HeartStatus,
} from "../core/api_types.ts";
import { type Lease, NODE_LEASE_NAMESPACE } from "../core/lease_types.ts";

/** Tunables of the status decision. */
export interface StatusPolicy {
  /** A heart is `late` after this many expected intervals without a beat. */
  lateFactor: number;
  /** Extra seconds allowed on top of the expected interval before `late`. */
  toleranceSeconds: number;
  /** How many recent intervals a non-node heart learns its interval from. */
  learnWindow: number;
}

/** Defaults: late after more than 2 × the expected interval. */
export const DEFAULT_POLICY: StatusPolicy = {
  lateFactor: 2,
  toleranceSeconds: 1,
  learnWindow: 16,
};

/** Mutable state of one heart, owned by the hub. Times are epoch milliseconds. */
export interface HeartState {
  id: string;
  /** Its cluster, when the hub watches several. */
  cluster?: string;
  kind: HeartKind;
  namespace: string;
  name: string;
  holder: string | null;
  leaseDurationSeconds: number | null;
  leaseTransitions: number | null;
  /** The Lease's resourceVersion as last observed (an exact wire exchange names the version it updated). */
  resourceVersion: string | null;
  /*
   * The numbers below are NaN, not null, when unknown: a field that only
   * ever holds numbers keeps one mutable number box that each beat
   * overwrites, where a field that may hold null gets a new heap number at
   * every beat, which outlives the young generation (five a beat, 600
   * beats a second at 5,000 nodes). {@linkcode known} turns NaN into null.
   */
  /** Last `spec.renewTime` (holder's clock), ms; NaN when the Lease has none. */
  lastRenewTime: number;
  /** When the last beat was observed; NaN before the first beat. */
  lastObservedAt: number;
  /**
   * When Earthworm started watching this heart: its first sighting, or the
   * moment the API server became visible again after an outage. Silence is
   * only counted from here, so an observer outage never ages a heart.
   */
  baselineAt: number;
  /** Seconds between the last two beats; NaN before the second. */
  lastIntervalSeconds: number;
  /** `observedAt − renewTime` of the last beat, seconds; NaN before the first. */
  skewSeconds: number;
  /** Recent intervals in seconds, newest last, at most `learnWindow`. */
  recentIntervals: number[];
  /**
   * Median of `recentIntervals` (NaN when empty; always NaN for node
   * Leases), kept as they change.
   */
  intervalMedian: number;
  beats: number;
  transitions: number;
  status: HeartStatus;
  /**
   * When the status may change next by time alone (epoch ms; see
   * {@linkcode nextStatusChange}): the hub's sweep passes the heart over
   * until then.
   */
  checkAt: number;
  /**
   * A fresh read found the Lease unchanged since the last beat, so the
   * silence is the heart's, not a stale view's. Cleared by every beat and
   * whenever Earthworm (re)gains sight of the API server.
   */
  silenceConfirmed: boolean;
  /**
   * The open episode's finding is older than the last sweep: with nobody
   * taking events, a finding that only time changes (its "for N s") is
   * worked out again when it is read, not every second (the hub's
   * bookkeeping).
   */
  diagnosisDue: boolean;
  /** The last beat came with a change of holder (see {@linkcode applyLease}). */
  lastBeatTransition: boolean;
}

/** A beat decided by {@linkcode observeLease}. */
export interface ObservedBeat {
  renewTime: number;
  observedAt: number;
  intervalSeconds: number | null;
  holder: string | null;
  transition: boolean;
}

/** `value`, or null when it is NaN (a {@linkcode HeartState} number not known yet). */
export function known(value: number): number | null {
  return Number.isNaN(value) ? null : value;
}

/**
 * When a heart's current silence began: its last beat, or when Earthworm
 * started watching it (or regained sight of the API server), if later.
 */
export function silentSince(heart: HeartState): number {
  // NaN (no beat yet) compares false.
  return heart.lastObservedAt > heart.baselineAt
    ? heart.lastObservedAt
    : heart.baselineAt;
}

/** Returns the heart kind of a Lease in `namespace`. */
export function heartKind(namespace: string): HeartKind {
  return namespace === NODE_LEASE_NAMESPACE ? "node" : "lease";
}

/** Parses an RFC 3339 (micro)time; null when absent or invalid. */
export function parseTime(value: string | null | undefined): number | null {
  if (!value) return null;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? null : ms;
}

/**
 * Creates the state of a heart first seen at `observedAt`: no beat yet.
 * `cluster` names its cluster when the hub watches several.
 */
export function newHeart(
  lease: Lease,
  observedAt: number,
  cluster?: string,
): HeartState {
  const { namespace, name } = lease.metadata;
  const spec = lease.spec ?? {};
  return {
    id: heartId(namespace, name, cluster),
    ...(cluster !== undefined && { cluster }),
    kind: heartKind(namespace),
    namespace,
    name,
    holder: spec.holderIdentity || null,
    leaseDurationSeconds: spec.leaseDurationSeconds ?? null,
    leaseTransitions: spec.leaseTransitions ?? null,
    resourceVersion: lease.metadata.resourceVersion ?? null,
    lastRenewTime: parseTime(spec.renewTime) ?? NaN,
    lastObservedAt: NaN,
    baselineAt: observedAt,
    lastIntervalSeconds: NaN,
    skewSeconds: NaN,
    recentIntervals: [],
    intervalMedian: NaN,
    beats: 0,
    transitions: 0,
    status: "unknown",
    checkAt: -Infinity,
    silenceConfirmed: false,
    diagnosisDue: false,
    lastBeatTransition: false,
  };
}

/**
 * Applies a new observation of the heart's Lease. A changed `renewTime` is a
 * beat; a changed holder (or `leaseTransitions`) marks it a transition.
 * Mutates `heart` and returns the beat, or null when nothing beat.
 */
export function observeLease(
  heart: HeartState,
  lease: Lease,
  observedAt: number,
  policy: StatusPolicy = DEFAULT_POLICY,
): ObservedBeat | null {
  return applyLease(heart, lease, observedAt, policy) ? lastBeat(heart) : null;
}

/**
 * The last beat of `heart`, as {@linkcode applyLease} left it (meaningful
 * once it has beaten).
 */
export function lastBeat(heart: HeartState): ObservedBeat {
  return {
    renewTime: heart.lastRenewTime,
    observedAt: heart.lastObservedAt,
    intervalSeconds: known(heart.lastIntervalSeconds),
    holder: heart.holder,
    transition: heart.lastBeatTransition,
  };
}

/**
 * {@linkcode observeLease} without building the beat: returns whether the
 * heart beat; the beat is then the heart's `last…` fields and
 * `lastBeatTransition` ({@linkcode lastBeat}). The hub's path for every
 * Lease update: it allocates nothing, so the young generation fills no
 * faster than the watch itself makes it.
 */
export function applyLease(
  heart: HeartState,
  lease: Lease,
  observedAt: number,
  policy: StatusPolicy = DEFAULT_POLICY,
): boolean {
  const spec = lease.spec ?? {};
  const holder = spec.holderIdentity || null;
  const transitions = spec.leaseTransitions ?? null;
  // NaN, not null, for none: a number that is never null stays unboxed.
  const renewTime = spec.renewTime ? Date.parse(spec.renewTime) : NaN;
  const holderChanged = holder !== heart.holder ||
    (transitions !== null && heart.leaseTransitions !== null &&
      transitions !== heart.leaseTransitions);
  heart.leaseDurationSeconds = spec.leaseDurationSeconds ??
    heart.leaseDurationSeconds;
  heart.resourceVersion = lease.metadata.resourceVersion ??
    heart.resourceVersion;

  const beat = !Number.isNaN(renewTime) && renewTime !== heart.lastRenewTime;
  if (holderChanged) heart.transitions++;
  // The same holder keeps the string the heart has: each update's copy
  // would otherwise outlive the young generation.
  if (holder !== heart.holder) heart.holder = holder;
  heart.leaseTransitions = transitions ?? heart.leaseTransitions;
  if (!beat) return false;

  // NaN before the second beat.
  const interval = (observedAt - heart.lastObservedAt) / 1000;
  heart.lastRenewTime = renewTime;
  heart.lastObservedAt = observedAt;
  heart.silenceConfirmed = false;
  heart.lastIntervalSeconds = interval;
  heart.skewSeconds = (observedAt - renewTime) / 1000;
  heart.lastBeatTransition = holderChanged;
  heart.beats++;
  // A holder change restarts the rhythm: the old holder's cadence says
  // nothing about the new one's, and the gap of a handover is not an interval.
  if (holderChanged) heart.recentIntervals = [];
  else if (!Number.isNaN(interval)) {
    heart.recentIntervals.push(interval);
    if (heart.recentIntervals.length > policy.learnWindow) {
      heart.recentIntervals.shift();
    }
  }
  // Worked out once a beat, not at every status decision (a node Lease's
  // expected interval is its lease's quarter, whatever the intervals).
  heart.intervalMedian = heart.kind === "node"
    ? NaN
    : medianOrNaN(heart.recentIntervals);
  return true;
}

/** Where {@linkcode median} sorts a short copy: reused, so a beat allocates nothing. */
const medianScratch = new Float64Array(64);

/** Median of `values` (not mutated); null when empty. */
export function median(values: readonly number[]): number | null {
  return known(medianOrNaN(values));
}

/** {@linkcode median}, NaN when empty. */
function medianOrNaN(values: readonly number[]): number {
  const n = values.length;
  if (n === 0) return NaN;
  // A typed array sorts numerically, natively: no comparator calls. A
  // learning window (a few dozen values) goes to the scratch instead.
  const sorted = n <= medianScratch.length
    ? insertionSorted(values)
    : Float64Array.from(values).sort();
  const mid = n >> 1;
  return n % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** `values` sorted into the first `values.length` slots of the scratch. */
function insertionSorted(values: readonly number[]): Float64Array {
  const sorted = medianScratch;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    let j = i;
    while (j > 0 && sorted[j - 1]! > v) {
      sorted[j] = sorted[j - 1]!;
      j--;
    }
    sorted[j] = v;
  }
  return sorted;
}

/**
 * The interval a heart is expected to beat at, in seconds: a quarter of the
 * lease duration for node Leases (the kubelet's renew interval), otherwise
 * the median of recent intervals, falling back to a quarter of the duration.
 */
export function expectedInterval(heart: HeartState): number | null {
  const quarter = heart.leaseDurationSeconds
    ? heart.leaseDurationSeconds / 4
    : null;
  if (heart.kind === "node") return quarter;
  return Number.isNaN(heart.intervalMedian) ? quarter : heart.intervalMedian;
}

/**
 * Decides a heart's status at `now`. `sourceConnected` false means Earthworm
 * cannot see the API server: an observer problem is never shown as dead
 * hearts, so everything is `unknown`.
 */
export function heartStatus(
  heart: HeartState,
  now: number,
  sourceConnected: boolean,
  policy: StatusPolicy = DEFAULT_POLICY,
): HeartStatus {
  if (!sourceConnected) return "unknown";
  const elapsed = (now - silentSince(heart)) / 1000;
  const duration = heart.leaseDurationSeconds;
  if (duration !== null && duration > 0 && elapsed > duration) return "expired";
  const expected = expectedInterval(heart);
  if (
    expected !== null &&
    elapsed >
      Math.max(policy.lateFactor * expected, expected + policy.toleranceSeconds)
  ) {
    return "late";
  }
  return Number.isNaN(heart.lastObservedAt) ? "unknown" : "healthy";
}

/**
 * When {@linkcode heartStatus} may next answer other than `status` without
 * a new observation: when a healthy (or not yet seen) heart would turn late
 * or expired, a late one expired; Infinity when waiting changes nothing (an
 * expired heart, or Earthworm blind). A time already past means "now".
 */
export function nextStatusChange(
  heart: HeartState,
  status: HeartStatus,
  sourceConnected: boolean,
  policy: StatusPolicy = DEFAULT_POLICY,
): number {
  if (!sourceConnected || status === "expired") return Infinity;
  const since = silentSince(heart);
  const duration = heart.leaseDurationSeconds;
  const expiry = duration !== null && duration > 0
    ? since + duration * 1000
    : Infinity;
  if (status === "late") return expiry;
  const expected = expectedInterval(heart);
  const late = expected === null ? Infinity : since +
    Math.max(policy.lateFactor * expected, expected + policy.toleranceSeconds) *
      1000;
  return Math.min(late, expiry);
}

/** Where the confirmation of a heart's silence stands. */
export type Confirmation = "confirmed" | "pending" | "failed";

/**
 * The status to show for a heart whose silence passed its lease duration:
 * `expired` only once a fresh read confirmed the silence; while the read is
 * under way the heart stays as it was (`late`, normally); when the read
 * fails Earthworm cannot tell, so `unknown`. Other statuses pass unchanged.
 */
export function gateExpiry(
  decided: HeartStatus,
  previous: HeartStatus,
  confirmation: Confirmation,
): HeartStatus {
  if (decided !== "expired" || confirmation === "confirmed") return decided;
  if (confirmation === "failed") return "unknown";
  return previous === "expired" ? "late" : previous;
}

/**
 * What a fresh read of a silent heart's Lease says, the read having been
 * asked while the heart's last renewTime was `asked`:
 * `confirmed` (the Lease is unchanged: the silence is real), `behind` (it
 * changed, and the watch has not delivered that), `gone` (deleted, and the
 * watch has not said so), or `moot` (the heart beat since it was asked).
 */
export function judgeRead(
  heart: HeartState,
  asked: number | null,
  read: Lease | null,
): "confirmed" | "behind" | "gone" | "moot" {
  if (known(heart.lastRenewTime) !== asked) return "moot";
  if (read === null) return "gone";
  return parseTime(read.spec?.renewTime) === asked ? "confirmed" : "behind";
}
