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
  Phrase,
  PhraseId,
  WireExchange,
} from "../core/api_types.ts";
import type { ProbeState } from "../core/wire_types.ts";

/** A renewal answered later than this is slow. */
export const SLOW_RENEWAL_MS = 1000;
/** A renewal waiting longer than this is unanswered. */
export const PENDING_MS = 1000;

/**
 * Earthworm notices that it cannot see the API server about 4 s after the
 * API server stopped answering (kube/watch_policy.ts' liveness read: one a
 * second, 3 s to answer), later on a starved machine. A renewal sent up to
 * this long before the blindness was noticed and left unanswered, or
 * answered late, still blames the API server.
 */
export const BLIND_LOOKBACK_MS = 10_000;

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
  /**
   * The Lease's resourceVersion as last observed. An exact renewal names the
   * version it updated: while the heart still holds that version, the
   * renewal's write has not reached Earthworm's watch.
   */
  version?: string | null;
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
  /** The summary as data, for clients that word it in another language. */
  summaryPhrase: Phrase;
  evidence: Evidence[];
}

/** A sentence as data (see {@linkcode Phrase}). */
export function phrase(id: PhraseId, args: Phrase["args"] = {}): Phrase {
  return { id, args };
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
      phrase: phrase("evidence.retransmits", {
        count: retrans,
        conn: firstRetrans.conn,
      }),
    });
  }
  const firstReset = records.find((x) => x.resets > 0);
  if (firstReset) {
    evidence.push({
      at: firstReset.at,
      text: `${resets} reset${resets === 1 ? "" : "s"} of ${firstReset.conn}`,
      phrase: phrase("evidence.resets", {
        count: resets,
        conn: firstReset.conn,
      }),
    });
  }
  // A connection closing after retransmits or resets died; a clean close
  // alone (a kubelet restarting) blames nothing.
  if (evidence.length > 0) {
    for (const x of closed.slice(0, 2)) {
      evidence.push({
        at: x.at,
        text: `connection ${x.conn} closed`,
        phrase: phrase("evidence.closed", { conn: x.conn }),
      });
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
        phrase: phrase("evidence.rttJump", {
          rttMs: jump.srttUs / 1000,
          baselineMs: baselineSrttUs / 1000,
        }),
      });
    }
  }
  if (evidence.length === 0) return null;
  const what = retrans > 0
    ? `retransmitted ${retrans} time${retrans === 1 ? "" : "s"}`
    : resets > 0
    ? "reset"
    : "slowed by an RTT jump";
  const sinceAt = evidence[0]!.at;
  return {
    cause: "network",
    summary: `the kubelet's requests were ${what} since ${
      clock(Date.parse(sinceAt))
    }`,
    summaryPhrase: retrans > 0
      ? phrase("network.retransmitted", { count: retrans, sinceAt })
      : phrase(resets > 0 ? "network.reset" : "network.rttJump", { sinceAt }),
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
  version: string | null = null,
): Finding | null {
  const renewals = records.filter(isRenewal);
  // A renewal left unanswered: still waiting (its pending signal not
  // followed by the record of how it ended: the same request, by start and
  // connection), or given up without a byte of answer (the kubelet's
  // client timed out and reset the stream, or the connection closed).
  const ended = (p: WireExchange) =>
    renewals.some((x) =>
      x.signal === undefined && x.at === p.at && x.conn === p.conn
    );
  const waiting = renewals.filter((x) =>
    x.signal === "pending" && now - Date.parse(x.at) >= PENDING_MS &&
    !ended(x)
  ).at(-1);
  const abandoned = renewals.filter((x) =>
    x.signal === undefined && x.status === undefined &&
    x.bytesReceived === 0
  ).at(-1);
  const unanswered = waiting ?? abandoned;
  if (unanswered) {
    const sent = Date.parse(unanswered.at);
    const still = unanswered === waiting;
    const waitMs = still
      ? now - sent
      : Math.max(unanswered.latencyMs, PENDING_MS);
    return {
      cause: "apiserver",
      summary: `the kubelet's renewal sent at ${clock(sent)} ${
        still ? "has waited" : "waited"
      } ${seconds(waitMs)} for an answer`,
      summaryPhrase: phrase("apiserver.waiting", {
        sentAt: unanswered.at,
        waitMs,
      }),
      evidence: [{
        at: unanswered.at,
        text: `renewal of ${unanswered.lease} sent, no answer for ${
          seconds(waitMs)
        }`,
        phrase: phrase("evidence.pending", {
          lease: unanswered.lease ?? null,
          waitMs,
        }),
      }],
    };
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
      summaryPhrase: phrase("apiserver.failed", { status: failed.status! }),
      evidence: [{
        at: failed.at,
        text: `renewal answered HTTP ${failed.status} after ${
          millis(failed.latencyMs)
        }`,
        phrase: phrase("evidence.failed", {
          status: failed.status!,
          latencyMs: failed.latencyMs,
        }),
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
      summaryPhrase: phrase("apiserver.slow", { latencyMs: slow.latencyMs }),
      evidence: [{
        at: slow.at,
        text: `renewal answered after ${seconds(slow.latencyMs)}`,
        phrase: phrase("evidence.slow", { latencyMs: slow.latencyMs }),
      }],
    };
  }
  if (!watched) return null;
  // Answered, yet no beat: the write is not in the watch Earthworm reads.
  // A renewal of an older version than the heart holds was delivered (its
  // beat may have been observed a moment before the exchange's start, as two
  // clocks read it).
  const accepted = renewals.find((x) =>
    x.signal === undefined && x.status !== undefined && x.status < 300 &&
    now - Date.parse(x.at) > 2 * SLOW_RENEWAL_MS &&
    (version === null || x.resourceVersion === undefined ||
      x.resourceVersion === version)
  );
  if (accepted) {
    return {
      cause: "apiserver",
      summary: `the API server accepted the kubelet's renewal at ${
        clock(Date.parse(accepted.at))
      } but its watch has not delivered it`,
      summaryPhrase: phrase("apiserver.unwatched", { acceptedAt: accepted.at }),
      evidence: [{
        at: accepted.at,
        text: `renewal answered HTTP ${accepted.status} in ${
          millis(accepted.latencyMs)
        }, no watch event since`,
        phrase: phrase("evidence.unwatched", {
          status: accepted.status!,
          latencyMs: accepted.latencyMs,
        }),
      }],
    };
  }
  return null;
}

/**
 * Diagnoses a late or expired heart at `now`. `observerBlind` carries why
 * Earthworm cannot see, when it cannot; `apiServer` names the API server in
 * what is said (the cluster's, when several are watched).
 */
export function diagnoseHeart(
  heart: HeartView,
  wire: NodeWireView | null,
  now: number,
  observerBlind?: string,
  apiServer = "the API server",
): Finding {
  const silent = now - heart.silentSince;
  if (observerBlind !== undefined) {
    return {
      cause: "observer",
      summary: `Earthworm cannot see ${apiServer}: nothing is blamed`,
      summaryPhrase: phrase("observer.blind"),
      evidence: [{
        at: iso(now),
        text: observerBlind,
        phrase: phrase("evidence.lostSight", { reason: observerBlind }),
      }],
    };
  }
  if (heart.kind !== "node") return leaseFinding(heart, silent, now);
  if (!wire?.probe?.available) {
    const reason = wire?.probe?.reason;
    return {
      cause: "unknown",
      summary: `no renewal for ${seconds(silent)}; no wire data for this node`,
      summaryPhrase: phrase("unknown.noWire", { silentMs: silent }),
      evidence: [{
        at: iso(now),
        text: reason ?? "no Earthworm agent reports wire data for this node",
        phrase: reason === undefined
          ? phrase("evidence.noAgent")
          : phrase("evidence.probeDown", { reason }),
      }],
    };
  }
  const window = since(wire, heart.silentSince);
  const network = networkEvidence(window, wire.baselineSrttUs);
  if (network) return network;
  const apiserver = apiserverEvidence(
    window,
    now,
    true,
    heart.version ?? null,
  );
  if (apiserver) return apiserver;
  if (wire.probe.pairing === "exact") {
    const other = window.filter((x) => x.signal === undefined).length;
    return {
      cause: "kubelet",
      summary: `kubelet sent no renewal for ${seconds(silent)}`,
      summaryPhrase: phrase("kubelet.noRenewal", { silentMs: silent }),
      evidence: [{
        at: iso(heart.silentSince),
        text: `no Lease request left ${heart.name} since its last beat${
          other > 0
            ? ` (its connection carried ${other} other exchange${
              other === 1 ? "" : "s"
            })`
            : "; its connection is idle"
        }`,
        phrase: other > 0
          ? phrase("evidence.noRequest", { node: heart.name, count: other })
          : phrase("evidence.noRequestIdle", { node: heart.name }),
      }],
    };
  }
  const pairingReason = wire.probe.pairingReason;
  return {
    cause: "unknown",
    summary: `no renewal for ${seconds(silent)}; the wire cannot tell why`,
    summaryPhrase: phrase("unknown.inferred", { silentMs: silent }),
    evidence: [{
      at: iso(now),
      text: `renewals are inferred from TCP timing on ${heart.name}${
        pairingReason ? ` (${pairingReason})` : ""
      }: a stalled kubelet and an unanswered request look alike; exact pairing tells them apart (README, "Exact pairing")`,
      phrase: pairingReason
        ? phrase("evidence.inferredBecause", {
          node: heart.name,
          reason: pairingReason,
        })
        : phrase("evidence.inferred", { node: heart.name }),
    }],
  };
}

/** A Lease without wire data: a handover, or a holder that stopped renewing. */
function leaseFinding(heart: HeartView, silent: number, now: number): Finding {
  if (heart.holder !== heart.holderAtStart) {
    return handoverFinding(heart.holderAtStart, heart.holder, silent, now);
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
    phrase: usual === null
      ? phrase("evidence.lastRenewed", {
        holder: heart.holder,
        silentMs: silent,
      })
      : phrase("evidence.lastRenewedUsual", {
        holder: heart.holder,
        silentMs: silent,
        usualMs: usual * 1000,
      }),
  }];
  if (usual !== null && last !== undefined && last > 1.5 * usual) {
    evidence.push({
      at: iso(heart.silentSince),
      text: `its last renewal came late already (${
        seconds(last * 1000)
      } after the one before)`,
      phrase: phrase("evidence.lateAlready", { lastMs: last * 1000 }),
    });
  }
  return {
    cause: "holder",
    summary: `${heart.holder ?? "the holder"} has not renewed for ${
      seconds(silent)
    }`,
    summaryPhrase: phrase("holder.silent", {
      holder: heart.holder,
      silentMs: silent,
    }),
    evidence,
  };
}

/**
 * A Lease taken over by `to` from `from` after `silentMs` without renewals,
 * noticed at `now`.
 */
export function handoverFinding(
  from: string | null,
  to: string | null,
  silentMs: number,
  now: number,
): Finding {
  return {
    cause: "handover",
    summary: `leadership moved from ${from ?? "nobody"} to ${
      to ?? "nobody"
    } after ${seconds(silentMs)} without renewals`,
    summaryPhrase: phrase("handover.moved", { from, to, silentMs }),
    evidence: [{
      at: iso(now),
      text: `holder changed from ${from ?? "none"} to ${to ?? "none"}`,
      phrase: phrase("evidence.holderChanged", { from, to }),
    }],
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
  apiServer = "the API server",
): Finding {
  const answered: { node: string; x: WireExchange }[] = [];
  for (const [node, view] of nodes) {
    const window = since(view, blindSince - BLIND_LOOKBACK_MS).filter(
      isRenewal,
    );
    const unanswered = apiserverEvidence(window, now, false);
    if (unanswered) {
      const { id, args } = unanswered.summaryPhrase;
      return {
        cause: "apiserver",
        summary: `${apiServer} answers no one: ${node}: ${unanswered.summary}`,
        summaryPhrase: phrase(SOURCE_PHRASES[id] ?? "source.waiting", {
          ...args,
          node,
        }),
        evidence: [
          lostSight(blindSince, reason),
          ...unanswered.evidence.map((e) => ({
            ...e,
            text: `${node}: ${e.text}`,
            node,
          })),
        ],
      };
    }
    for (const x of window) {
      if (
        x.signal === undefined && x.status !== undefined && x.status < 300 &&
        Date.parse(x.at) >= blindSince
      ) {
        answered.push({ node, x });
      }
    }
  }
  const evidence: Evidence[] = [lostSight(blindSince, reason)];
  const first = answered[0];
  if (first) {
    evidence.push({
      at: first.x.at,
      text: `${first.node}'s renewal was answered in ${
        millis(first.x.latencyMs)
      } meanwhile`,
      phrase: phrase("evidence.answered", {
        node: first.node,
        latencyMs: first.x.latencyMs,
      }),
    });
  }
  return {
    cause: "observer",
    summary: first
      ? `only Earthworm cannot see ${apiServer}: the kubelets' renewals are answered`
      : `Earthworm cannot see ${apiServer}: nothing is blamed`,
    summaryPhrase: phrase(first ? "observer.onlyEarthworm" : "observer.blind"),
    evidence,
  };
}

/** The source's summaries for what a node's wire says of the API server. */
const SOURCE_PHRASES: Partial<Record<PhraseId, PhraseId>> = {
  "apiserver.waiting": "source.waiting",
  "apiserver.failed": "source.failed",
  "apiserver.slow": "source.slow",
};

function lostSight(at: number, reason: string): Evidence {
  return {
    at: iso(at),
    text: `Earthworm lost sight: ${reason}`,
    phrase: phrase("evidence.lostSight", { reason }),
  };
}
