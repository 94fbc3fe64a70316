/**
 * Why is this heart late? Pure decisions over what Earthworm saw: the
 * heart's own beats and holder, what its node's agent saw on the kubelet's
 * connection to the API server (renewals sent and answered, pending ones,
 * retransmits, resets, a dead connection, RTT), and whether Earthworm's own
 * view is current. Each answer names a cause and the evidence, in plain
 * words, and says so when there is not enough evidence.
 *
 * - `observer`: Earthworm cannot see the API server: nothing is blamed.
 * - `network`: renewals left but were retransmitted or reset, the
 *   connection died, or its RTT jumped.
 * - `apiserver`: a renewal left and was answered slowly, with an error, not
 *   at all, or answered but never showed up in the watch.
 * - `kubelet`: the node's agent traces the kubelet's requests exactly and
 *   no renewal left the node.
 * - `handover` / `holder`: Leases without wire data (controllers): the
 *   Lease changed hands, or its holder stopped renewing.
 * - `unknown`: no wire data for the node, or wire data that cannot tell.
 *
 * @module
 */

import type {
  DiagnosisCause,
  Evidence,
  HeartKind,
  WireExchange,
} from "../core/api_types.ts";
import type { ProbeState } from "../core/wire_types.ts";

/** A renewal answered later than this is slow. */
export const SLOW_RENEWAL_MS = 1000;
/** A renewal waiting longer than this is unanswered. */
export const PENDING_MS = 1000;

/** What the decision needs to know of a heart. */
export interface HeartView {
  kind: HeartKind;
  name: string;
  holder: string | null;
  /** The holder when the episode began. */
  holderAtStart: string | null;
  /** Since when it has been silent (its last beat, or Earthworm's baseline), ms. */
  silentSince: number;
  /** Recent intervals between beats, seconds, newest last. */
  recentIntervals: readonly number[];
}

/** What the heart's node's agent saw on the wire. */
export interface NodeWireView {
  /** The agent's probe state; undefined when no agent reported for the node. */
  probe: ProbeState | undefined;
  /** Wire records (exchanges and signals) of the node, oldest first. */
  records: readonly WireExchange[];
  /** Median smoothed RTT before the silence, µs; null when unknown. */
  baselineSrttUs: number | null;
}

/** A cause with its summary and evidence. */
export interface Finding {
  cause: DiagnosisCause;
  summary: string;
  evidence: Evidence[];
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function seconds(ms: number): string {
  const s = ms / 1000;
  return s < 10 ? `${Math.round(s * 10) / 10} s` : `${Math.round(s)} s`;
}

function millis(ms: number): string {
  return ms < 10 ? `${Math.round(ms * 10) / 10} ms` : `${Math.round(ms)} ms`;
}

function clock(ms: number): string {
  return iso(ms).slice(11, 19);
}

const isRenewal = (x: WireExchange) =>
  x.confidence === "exact" &&
  (x.signal === undefined || x.signal === "pending");

/** The records of `view` that started at or after `from`. */
function since(view: NodeWireView, from: number): WireExchange[] {
  return view.records.filter((x) => Date.parse(x.at) >= from);
}

/** Evidence that the node's network is at fault, or null. */
function networkEvidence(
  records: readonly WireExchange[],
  baselineSrttUs: number | null,
): Finding | null {
  const evidence: Evidence[] = [];
  const retrans = records.reduce((n, x) => n + x.retransmits, 0);
  const resets = records.reduce((n, x) => n + x.resets, 0);
  const closed = records.filter((x) => x.signal === "closed");
  const firstRetrans = records.find((x) => x.retransmits > 0);
  if (firstRetrans) {
    evidence.push({
      at: firstRetrans.at,
      text: `${retrans} retransmit${
        retrans === 1 ? "" : "s"
      } on the kubelet's connection ${firstRetrans.conn}`,
    });
  }
  const firstReset = records.find((x) => x.resets > 0);
  if (firstReset) {
    evidence.push({
      at: firstReset.at,
      text: `${resets} reset${resets === 1 ? "" : "s"} of ${firstReset.conn}`,
    });
  }
  // A connection closing after retransmits or resets died; a clean close
  // alone (a kubelet restarting) blames nothing.
  if (evidence.length > 0) {
    for (const x of closed.slice(0, 2)) {
      evidence.push({ at: x.at, text: `connection ${x.conn} closed` });
    }
  }
  if (baselineSrttUs !== null && baselineSrttUs > 0) {
    const jump = records.find((x) =>
      x.srttUs > Math.max(4 * baselineSrttUs, baselineSrttUs + 100_000)
    );
    if (jump) {
      evidence.push({
        at: jump.at,
        text: `RTT jumped to ${millis(jump.srttUs / 1000)} from ${
          millis(baselineSrttUs / 1000)
        }`,
      });
    }
  }
  if (evidence.length === 0) return null;
  const what = retrans > 0
    ? `retransmitted ${retrans} time${retrans === 1 ? "" : "s"}`
    : resets > 0
    ? "reset"
    : "slowed by an RTT jump";
  return {
    cause: "network",
    summary: `the kubelet's requests were ${what} since ${
      clock(Date.parse(evidence[0]!.at))
    }`,
    evidence,
  };
}

/**
 * Evidence that the API server left a renewal unanswered, slow or failed;
 * with `watched`, also an accepted renewal the watch never delivered.
 */
function apiserverEvidence(
  records: readonly WireExchange[],
  now: number,
  watched = true,
): Finding | null {
  const renewals = records.filter(isRenewal);
  const pending = renewals.filter((x) => x.signal === "pending");
  const lastPending = pending.at(-1);
  // A renewal still waiting: the newest pending signal not followed by its answer.
  if (lastPending) {
    const sent = Date.parse(lastPending.at);
    const answered = renewals.some((x) =>
      x.signal === undefined &&
      x.resourceVersion === lastPending.resourceVersion
    );
    if (!answered && now - sent >= PENDING_MS) {
      return {
        cause: "apiserver",
        summary: `the kubelet's renewal sent at ${clock(sent)} has waited ${
          seconds(now - sent)
        } for an answer`,
        evidence: [{
          at: lastPending.at,
          text: `renewal of ${lastPending.lease} sent, no answer for ${
            seconds(now - sent)
          }`,
        }],
      };
    }
  }
  const failed = renewals.find((x) =>
    x.signal === undefined && x.status !== undefined &&
    (x.status >= 500 || x.status === 429)
  );
  if (failed) {
    return {
      cause: "apiserver",
      summary:
        `the API server answered the kubelet's renewal with HTTP ${failed.status}`,
      evidence: [{
        at: failed.at,
        text: `renewal answered HTTP ${failed.status} after ${
          millis(failed.latencyMs)
        }`,
      }],
    };
  }
  const slow = renewals.find((x) =>
    x.signal === undefined && x.latencyMs > SLOW_RENEWAL_MS
  );
  if (slow) {
    return {
      cause: "apiserver",
      summary: `the API server took ${
        seconds(slow.latencyMs)
      } to answer the kubelet's renewal`,
      evidence: [{
        at: slow.at,
        text: `renewal answered after ${seconds(slow.latencyMs)}`,
      }],
    };
  }
  if (!watched) return null;
  // Answered, yet no beat: the write is not in the watch Earthworm reads.
  const accepted = renewals.find((x) =>
    x.signal === undefined && x.status !== undefined && x.status < 300 &&
    now - Date.parse(x.at) > 2 * SLOW_RENEWAL_MS
  );
  if (accepted) {
    return {
      cause: "apiserver",
      summary: `the API server accepted the kubelet's renewal at ${
        clock(Date.parse(accepted.at))
      } but its watch has not delivered it`,
      evidence: [{
        at: accepted.at,
        text: `renewal answered HTTP ${accepted.status} in ${
          millis(accepted.latencyMs)
        }, no watch event since`,
      }],
    };
  }
  return null;
}

/**
 * Diagnoses a late or expired heart at `now`. `observerBlind` carries why
 * Earthworm cannot see, when it cannot.
 */
export function diagnoseHeart(
  heart: HeartView,
  wire: NodeWireView | null,
  now: number,
  observerBlind?: string,
): Finding {
  const silent = now - heart.silentSince;
  if (observerBlind !== undefined) {
    return {
      cause: "observer",
      summary: `Earthworm cannot see the API server: nothing is blamed`,
      evidence: [{ at: iso(now), text: observerBlind }],
    };
  }
  if (heart.kind !== "node") return leaseFinding(heart, silent, now);
  if (!wire?.probe?.available) {
    return {
      cause: "unknown",
      summary: `no renewal for ${seconds(silent)}; no wire data for this node`,
      evidence: [{
        at: iso(now),
        text: wire?.probe?.reason ??
          "no Earthworm agent reports wire data for this node",
      }],
    };
  }
  const window = since(wire, heart.silentSince);
  const network = networkEvidence(window, wire.baselineSrttUs);
  if (network) return network;
  const apiserver = apiserverEvidence(window, now);
  if (apiserver) return apiserver;
  if (wire.probe.pairing === "exact") {
    const other = window.filter((x) => x.signal === undefined).length;
    return {
      cause: "kubelet",
      summary: `kubelet sent no renewal for ${seconds(silent)}`,
      evidence: [{
        at: iso(heart.silentSince),
        text: `no Lease request left ${heart.name} since its last beat${
          other > 0
            ? ` (its connection carried ${other} other exchange${
              other === 1 ? "" : "s"
            })`
            : "; its connection is idle"
        }`,
      }],
    };
  }
  return {
    cause: "unknown",
    summary: `no renewal for ${seconds(silent)}; the wire cannot tell why`,
    evidence: [{
      at: iso(now),
      text: `renewals are inferred from TCP timing on ${heart.name}${
        wire.probe.pairingReason ? ` (${wire.probe.pairingReason})` : ""
      }: a stalled kubelet and an unanswered request look alike; exact pairing tells them apart (README, "Exact pairing")`,
    }],
  };
}

/** A Lease without wire data: a handover, or a holder that stopped renewing. */
function leaseFinding(heart: HeartView, silent: number, now: number): Finding {
  if (heart.holder !== heart.holderAtStart) {
    return {
      cause: "handover",
      summary: `leadership moved from ${heart.holderAtStart ?? "nobody"} to ${
        heart.holder ?? "nobody"
      } after ${seconds(silent)} without renewals`,
      evidence: [{
        at: iso(now),
        text: `holder changed from ${heart.holderAtStart ?? "none"} to ${
          heart.holder ?? "none"
        }`,
      }],
    };
  }
  const intervals = heart.recentIntervals;
  const sorted = [...intervals].sort((a, b) => a - b);
  const usual = sorted.length > 0 ? sorted[sorted.length >> 1]! : null;
  const last = intervals.at(-1);
  const evidence: Evidence[] = [{
    at: iso(heart.silentSince),
    text: `${heart.holder ?? "no holder"} last renewed ${seconds(silent)} ago${
      usual === null ? "" : `; it renewed every ${seconds(usual * 1000)}`
    }`,
  }];
  if (usual !== null && last !== undefined && last > 1.5 * usual) {
    evidence.push({
      at: iso(heart.silentSince),
      text: `its last renewal came late already (${
        seconds(last * 1000)
      } after the one before)`,
    });
  }
  return {
    cause: "holder",
    summary: `${heart.holder ?? "the holder"} has not renewed for ${
      seconds(silent)
    }`,
    evidence,
  };
}

/**
 * While Earthworm cannot see the API server: is it the API server itself
 * (renewals sent on the nodes wait for answers, or come back failed) or only
 * Earthworm's view (renewals are answered as usual)? Without wire evidence
 * it is the observer: nothing is blamed.
 */
export function diagnoseSource(
  blindSince: number,
  reason: string,
  nodes: ReadonlyMap<string, NodeWireView>,
  now: number,
): Finding {
  const answered: { node: string; x: WireExchange }[] = [];
  for (const [node, view] of nodes) {
    const window = since(view, blindSince).filter(isRenewal);
    const unanswered = apiserverEvidence(window, now, false);
    if (unanswered) {
      return {
        cause: "apiserver",
        summary:
          `the API server answers no one: ${node}: ${unanswered.summary}`,
        evidence: [
          { at: iso(blindSince), text: `Earthworm lost sight: ${reason}` },
          ...unanswered.evidence.map((e) => ({
            ...e,
            text: `${node}: ${e.text}`,
          })),
        ],
      };
    }
    for (const x of window) {
      if (x.signal === undefined && x.status !== undefined && x.status < 300) {
        answered.push({ node, x });
      }
    }
  }
  const evidence: Evidence[] = [{
    at: iso(blindSince),
    text: `Earthworm lost sight: ${reason}`,
  }];
  const first = answered[0];
  if (first) {
    evidence.push({
      at: first.x.at,
      text: `${first.node}'s renewal was answered in ${
        millis(first.x.latencyMs)
      } meanwhile`,
    });
  }
  return {
    cause: "observer",
    summary: first
      ? "only Earthworm cannot see the API server: the kubelets' renewals are answered"
      : "Earthworm cannot see the API server: nothing is blamed",
    evidence,
  };
}
