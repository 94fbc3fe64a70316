/**
 * The UI's messages in English: the catalogue's reference language. Every
 * key here must have a Spanish wording in `messages_es.ts` (the compiler
 * checks the keys, `i18n_test.ts` the wordings). `{name}` is filled from the
 * message's arguments; a plural message has one form per plural category of
 * `Intl.PluralRules`, picked by the argument `count`.
 *
 * @module
 */

import type { PhraseId } from "../core/api_types.ts";

/** A message: plain text, or its forms by plural category (`other` always). */
export type Message =
  | string
  | Readonly<Partial<Record<Intl.LDMLPluralRule, string>> & { other: string }>;

/** The UI's own words, by key. */
export const UI_EN = {
  "app.name": "Earthworm",
  "app.tagline": "lease heartbeats",

  "status.healthy": "healthy",
  "status.late": "late",
  "status.expired": "expired",
  "status.unknown": "unknown",

  "count.healthy": { one: "healthy", other: "healthy" },
  "count.late": { one: "late", other: "late" },
  "count.expired": { one: "expired", other: "expired" },
  "count.unknown": { one: "unknown", other: "unknown" },

  "cause.kubelet": "kubelet",
  "cause.network": "network",
  "cause.apiserver": "API server",
  "cause.observer": "Earthworm's view",
  "cause.holder": "holder",
  "cause.handover": "handover",
  "cause.unknown": "cause unknown",

  "kind.node": "node",
  "kind.lease": "leader lease",

  "source.mock": "simulation",
  "source.replay": "replay",
  "source.cluster": "cluster",
  "source.simulated": "simulated cluster",
  "source.speed": "{speed} times real speed",

  "header.counts": "Hearts by status",
  "header.count": {
    one: "{count} heart {status}; show only these",
    other: "{count} hearts {status}; show only these",
  },
  "header.language": "Language",
  "conn.connecting": "connecting…",
  "conn.live": "live",
  "conn.reconnecting": "reconnecting…",
  "conn.offline": "offline — retrying",
  "beep.on": "♪ beep on",
  "beep.off": "♪ beep off",
  "beep.title": "Beep on every beat",

  "title.allHealthy": "all healthy",
  "title.noHearts": "no hearts yet",
  "title.worst": "{count} {status}",

  "banner.streamLost":
    "No word from Earthworm's server: {reason} — statuses unknown until it is back",
  "banner.apiDown": "API server unreachable — hearts unknown",
  "banner.clusterApiDown":
    "A cluster's API server is unreachable — that cluster's hearts unknown",
  "cluster.title": "cluster",
  "overview.cluster": "Cluster",
  "overview.allClusters": "all clusters",
  "stream.lost": "stream lost {seconds} s ago",

  "overview.search": "Search name, namespace or holder",
  "overview.searchLabel": "Search hearts",
  "overview.namespace": "Namespace",
  "overview.kind": "Kind",
  "overview.status": "Status",
  "overview.allNamespaces": "all namespaces",
  "overview.allKinds": "all kinds",
  "overview.nodeLeases": "node leases",
  "overview.otherLeases": "leader leases",
  "overview.anyStatus": "any status",
  "overview.hearts": { one: "{count} heart", other: "{count} hearts" },
  "overview.heartsOf": {
    one: "{shown} of {count} heart",
    other: "{shown} of {count} hearts",
  },
  "overview.noHearts": "No hearts yet: waiting for the first snapshot.",
  "overview.noMatch": "No heart matches this filter.",

  "legend.sweep":
    "Sweep: {sweep} left to right, a grid line every {grid}; the bright dot is now.",
  "legend.right": "Right of it: the previous sweep.",
  "legend.colours": "Colours:",
  "legend.ok": "on time",
  "legend.late": "late (over twice the expected interval)",
  "legend.expired": "expired (over the lease duration)",
  "legend.unknown": "unknown (Earthworm cannot tell)",

  "card.wire": "network trouble",
  "card.wireDetail":
    "Network trouble: {retransmits} retransmits, {resets} resets, last exchange {latency}",
  "card.holder": "holder {holder}",
  "card.lastInterval": "interval {interval}",
  "card.expected": "expected {interval}",
  "card.beats": { one: "{count} beat", other: "{count} beats" },
  "card.silent": "silent for {duration}",
  "card.stale": "({reason})",

  "cardiogram.label": "Cardiogram of {id}",

  "detail.back": "← all hearts",
  "detail.backHint": "Escape",
  "detail.waiting": "Waiting for the first snapshot…",
  "detail.missing": 'No heart "{id}": it was deleted or never existed.',
  "detail.holder": "holder {holder}",
  "detail.noHolder": "no holder",
  "detail.since": "{status} since {time}: {summary}",
  "detail.lastInterval": "last interval",
  "detail.lastBeat": "last beat",
  "detail.silentFor": "silent for",
  "detail.lag": "renewal lag",
  "detail.lagNote":
    "Renewal lag: how long after the Lease's renewTime Earthworm saw the beat, that is the renewing clock's skew plus the delivery delay.",
  "detail.beatsFailed": 'Cannot load the beats of "{id}": {reason}',
  "detail.httpStatus": "the server answered HTTP {status}; reload the page",
  "detail.unreachable": "the server is unreachable; reload the page",

  "stat.beats": "beats",
  "stat.intervals": "intervals",
  "stat.min": "min",
  "stat.median": "median",
  "stat.p95": "p95",
  "stat.max": "max",
  "stat.expected": "expected",
  "stat.leaseDuration": "lease duration",
  "stat.transitions": "transitions",

  "why.title": "Why:",
  "history.title": "Beat history",
  "history.loading": "loading…",
  "history.label": "Beat intervals of {id}",
  "history.interval": "interval",
  "history.sinceLast": "since last beat",
  "history.expected": "expected",
  "history.lateAfter": "late after",
  "history.leaseDuration": "lease duration",
  "history.axis": "interval (s)",
  "history.gaps": {
    one: "{count} gap without beats is left blank.",
    other: "{count} gaps without beats are left blank.",
  },

  "transitions.title": "Transitions",
  "transitions.none": "No holder change seen.",
  "transitions.noneHeld": "No holder change seen: {holder} holds it.",
  "transitions.unknownHolder": "?",

  "episodes.title": "Episodes",
  "episodes.none": "Never late or expired while Earthworm watched.",
  "episodes.now": "now",

  "recent.title": "Recent beats",
  "recent.observed": "observed",
  "recent.interval": "interval",
  "recent.wire": "wire",
  "recent.holder": "holder",
  "recent.exact": "exact",
  "recent.inferred": "inferred",
  "recent.exactTitle": "This renewal's own request and response on the wire",
  "recent.inferredTitle":
    "Inferred from TCP timing: the kubelet's TLS layer could not be traced",

  "wire.title": "Wire trace",
  "wire.label": "Wire latency of {node}",
  "wire.exact": "renewal latency (exact)",
  "wire.inferred": "exchange latency (inferred)",
  "wire.rtt": "smoothed RTT",
  "wire.axis": "ms",
  "wire.nodeOnly":
    "Wire data is recorded for node leases only: the eBPF probe watches kubelets.",
  "wire.none": "No wire data: {reason}.",
  "wire.notRunning": "the eBPF probe is not running",
  "wire.noneYet": "No wire exchanges reported for this node yet.",
  "wire.summary": {
    one:
      "{count} exchange ({exact} renewals identified exactly) · last {latency} on {conn} · RTT {rtt} · {retransmits} retransmits · {resets} resets",
    other:
      "{count} exchanges ({exact} renewals identified exactly) · last {latency} on {conn} · RTT {rtt} · {retransmits} retransmits · {resets} resets",
  },

  "time.never": "never",
  "time.ago": "{duration} ago",

  "null.nobody": "nobody",
  "null.none": "none",
  "null.holder": "the holder",
  "null.reason": "unknown reason",
} as const satisfies Readonly<Record<string, Message>>;

/** The server's sentences (see `Phrase` in the API types), by phrase id. */
export const PHRASES_EN: Readonly<Record<PhraseId, Message>> = {
  "network.retransmitted": {
    one:
      "the kubelet's requests were retransmitted {count} time since {sinceAt}",
    other:
      "the kubelet's requests were retransmitted {count} times since {sinceAt}",
  },
  "network.reset": "the kubelet's requests were reset since {sinceAt}",
  "network.rttJump":
    "the kubelet's requests were slowed by an RTT jump since {sinceAt}",
  "apiserver.waiting":
    "the kubelet's renewal sent at {sentAt} has waited {waitMs} for an answer",
  "apiserver.failed":
    "the API server answered the kubelet's renewal with HTTP {status}",
  "apiserver.slow":
    "the API server took {latencyMs} to answer the kubelet's renewal",
  "apiserver.unwatched":
    "the API server accepted the kubelet's renewal at {acceptedAt} but its watch has not delivered it",
  "observer.blind": "Earthworm cannot see the API server: nothing is blamed",
  "observer.onlyEarthworm":
    "only Earthworm cannot see the API server: the kubelets' renewals are answered",
  "kubelet.noRenewal": "kubelet sent no renewal for {silentMs}",
  "unknown.noWire": "no renewal for {silentMs}; no wire data for this node",
  "unknown.inferred": "no renewal for {silentMs}; the wire cannot tell why",
  "handover.moved":
    "leadership moved from {from} to {to} after {silentMs} without renewals",
  "holder.silent": "{holder} has not renewed for {silentMs}",
  "source.waiting":
    "the API server answers no one: {node}: the kubelet's renewal sent at {sentAt} has waited {waitMs} for an answer",
  "source.failed":
    "the API server answers no one: {node}: the API server answered the kubelet's renewal with HTTP {status}",
  "source.slow":
    "the API server answers no one: {node}: the API server took {latencyMs} to answer the kubelet's renewal",
  "evidence.retransmits": {
    one: "{count} retransmit on the kubelet's connection {conn}",
    other: "{count} retransmits on the kubelet's connection {conn}",
  },
  "evidence.resets": {
    one: "{count} reset of {conn}",
    other: "{count} resets of {conn}",
  },
  "evidence.closed": "connection {conn} closed",
  "evidence.rttJump": "RTT jumped to {rttMs} from {baselineMs}",
  "evidence.pending": "renewal of {lease} sent, no answer for {waitMs}",
  "evidence.failed": "renewal answered HTTP {status} after {latencyMs}",
  "evidence.slow": "renewal answered after {latencyMs}",
  "evidence.unwatched":
    "renewal answered HTTP {status} in {latencyMs}, no watch event since",
  "evidence.lostSight": "Earthworm lost sight: {reason}",
  "evidence.noAgent": "no Earthworm agent reports wire data for this node",
  "evidence.probeDown": "the node's eBPF probe is down: {reason}",
  "evidence.noRequest": {
    one:
      "no Lease request left {node} since its last beat ({count} other request did)",
    other:
      "no Lease request left {node} since its last beat ({count} other requests did)",
  },
  "evidence.noRequestIdle":
    "no Lease request left {node} since its last beat; its connection is idle",
  "evidence.inferred":
    'renewals are inferred from TCP timing on {node}: a stalled kubelet and an unanswered request look alike; exact pairing tells them apart (README, "Exact pairing")',
  "evidence.inferredBecause":
    'renewals are inferred from TCP timing on {node} ({reason}): a stalled kubelet and an unanswered request look alike; exact pairing tells them apart (README, "Exact pairing")',
  "evidence.holderChanged": "holder changed from {from} to {to}",
  "evidence.lastRenewed": "{holder} last renewed {silentMs} ago",
  "evidence.lastRenewedUsual":
    "{holder} last renewed {silentMs} ago; it renewed every {usualMs}",
  "evidence.lateAlready":
    "its last renewal came late already ({lastMs} after the one before)",
  "evidence.answered": "{node}'s renewal was answered in {latencyMs} meanwhile",
  "wire.leaseOnly":
    "{count} of {total} agents run lease-only; {node}: {reason}",
  "wire.noAgent": "no agent has reported wire data yet",
  "wire.offCluster":
    "earthworm watch runs off-cluster: wire data comes from in-cluster agents",
  "wire.replay": "a replay of recorded Leases has no wire data",
  "wire.pairing": "renewals identified exactly on {exact} of {count} nodes",
  "wire.pairingInferred":
    "renewals identified exactly on {exact} of {count} nodes; inferred from TCP timing on {node}: {reason}",
  "wire.pairingInferredMore":
    "renewals identified exactly on {exact} of {count} nodes; inferred from TCP timing on {node} and {more} more: {reason}",
};

/** A key of the UI's own words. */
export type UiKey = keyof typeof UI_EN;

/** A key of the catalogue: the UI's words, and the server's phrases under `phrase.`. */
export type MessageKey = UiKey | `phrase.${PhraseId}`;

/** Every message keyed for the catalogue. */
export function keyed(
  ui: Readonly<Record<UiKey, Message>>,
  phrases: Readonly<Record<PhraseId, Message>>,
): Readonly<Record<MessageKey, Message>> {
  const out: Record<string, Message> = { ...ui };
  for (const [id, message] of Object.entries(phrases)) {
    out[`phrase.${id}`] = message;
  }
  return out as Record<MessageKey, Message>;
}

/** The English catalogue. */
export const MESSAGES_EN: Readonly<Record<MessageKey, Message>> = keyed(
  UI_EN,
  PHRASES_EN,
);
