/**
 * `GET /metrics`: the hub's state in the Prometheus text exposition format.
 *
 * @module
 */

import type { HeartHub } from "./heart_hub.ts";
import { snapshotCache } from "./snapshot_cache.ts";
import type { HeartKind, HeartStatus } from "../core/api_types.ts";

/** Extra gauges a command contributes (e.g. leader election state). */
export type MetricSamples = {
  name: string;
  help: string;
  type: "gauge" | "counter";
  samples: Sample[];
}[];

/** One sample: labels and value. */
export interface Sample {
  labels?: Record<string, string>;
  value: number;
}

/** Escapes a label value. */
export function escapeLabel(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(
    /"/g,
    '\\"',
  );
}

function line(name: string, s: Sample): string {
  const labels = s.labels && Object.keys(s.labels).length
    ? `{${
      Object.entries(s.labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(
        ",",
      )
    }}`
    : "";
  const value = Number.isFinite(s.value)
    ? String(s.value)
    : s.value > 0
    ? "+Inf"
    : "NaN";
  return `${name}${labels} ${value}`;
}

/** Renders metric families as Prometheus text. */
export function renderMetrics(families: MetricSamples): string {
  const out: string[] = [];
  for (const f of families) {
    out.push(`# HELP ${f.name} ${f.help}`, `# TYPE ${f.name} ${f.type}`);
    for (const s of f.samples) out.push(line(f.name, s));
  }
  return out.join("\n") + "\n";
}

/** A family with one unlabelled sample. */
function scalar(
  name: string,
  help: string,
  type: "gauge" | "counter",
  value: number,
): MetricSamples[number] {
  return { name, help, type, samples: [{ value }] };
}

/** Settings of {@linkcode hubMetrics}. */
export interface HubMetricsOptions {
  /** When, on the hub's clock (default now). */
  now?: number;
  /**
   * One series per heart too (`--per-heart-metrics`): seconds since each
   * heart's beat, every non-node Lease's holder changes, each node's RTT and
   * retransmits. Off by default, so /metrics stays a few kilobytes at
   * thousands of nodes, as kube-state-metrics keeps per-object series behind
   * an allow-list.
   */
  perHeart?: boolean;
}

/**
 * The hub's metric families. By default the series are aggregated (by kind
 * and status, the longest silence, the largest RTT), and per-heart series
 * exist only where something happened: a non-node Lease that changed hands,
 * a node whose connection retransmitted. With `perHeart`, every heart has
 * its series.
 */
export function hubMetrics(
  hub: HeartHub,
  opts: HubMetricsOptions = {},
): MetricSamples {
  const now = opts.now ?? hub.clock.now();
  const perHeart = opts.perHeart ?? false;
  const hearts = hub.hearts(now);
  // With several clusters, the heart and source series carry a cluster
  // label; with one, they stay as they always were.
  const clusters: (string | undefined)[] = hub.clusterNames.length > 0
    ? hub.clusterNames
    : [undefined];
  const clusterLabel = (cluster: string | undefined) =>
    cluster === undefined ? {} : { cluster };
  const key = (...parts: (string | undefined)[]) =>
    JSON.stringify(parts.map((p) => p ?? null));
  const byKindStatus = new Map<string, number>();
  const longestSilence = new Map<string, number>();
  for (const cluster of clusters) {
    for (const kind of ["node", "lease"] as HeartKind[]) {
      longestSilence.set(key(cluster, kind), 0);
      for (
        const status of [
          "healthy",
          "late",
          "expired",
          "unknown",
        ] as HeartStatus[]
      ) {
        byKindStatus.set(key(cluster, kind, status), 0);
      }
    }
  }
  const sinceBeat: Sample[] = [];
  const leaseTransitions: Sample[] = [];
  const srtt: Sample[] = [];
  let srttMax = 0;
  const retrans: Sample[] = [];
  for (const h of hearts) {
    const cl = clusterLabel(h.cluster);
    const ks = key(h.cluster, h.kind, h.status);
    byKindStatus.set(ks, (byKindStatus.get(ks) ?? 0) + 1);
    if (h.lastObservedAt) {
      const silent = (now - Date.parse(h.lastObservedAt)) / 1000;
      const k = key(h.cluster, h.kind);
      if (silent > (longestSilence.get(k) ?? 0)) longestSilence.set(k, silent);
      if (perHeart) {
        sinceBeat.push({
          labels: {
            ...cl,
            namespace: h.namespace,
            name: h.name,
            kind: h.kind,
          },
          value: silent,
        });
      }
    }
    // Holder changes of leader-election and other non-node Leases: what a
    // handover-flapping alert counts. Node Leases change holder only when a
    // node is recreated, and would add one series per node. By default a
    // Lease's series starts at its first handover, so a thousand quiet
    // Leases add nothing.
    if (h.kind === "lease" && (perHeart || h.transitions > 0)) {
      leaseTransitions.push({
        labels: { ...cl, namespace: h.namespace, name: h.name },
        value: h.transitions,
      });
    }
    if (h.wire) {
      if (h.wire.srttUs !== null) {
        srttMax = Math.max(srttMax, h.wire.srttUs / 1e6);
        if (perHeart) {
          srtt.push({ labels: { node: h.name }, value: h.wire.srttUs / 1e6 });
        }
      }
      // Likewise a node's retransmit series starts at its first retransmit.
      if (perHeart || h.wire.retransmits > 0) {
        retrans.push({ labels: { node: h.name }, value: h.wire.retransmits });
      }
    }
  }
  const source = hub.sourceState();
  const c = hub.counters;
  const open = hub.episodes.openByCause();
  return [
    {
      name: "earthworm_episodes_total",
      help:
        "Episodes (a heart late or expired, or Earthworm blind) that ended, by their diagnosed cause.",
      type: "counter",
      samples: Object.entries(hub.episodes.closed).map(([cause, value]) => ({
        labels: { cause },
        value,
      })),
    },
    {
      name: "earthworm_episodes_open",
      help: "Episodes in progress, by their diagnosed cause.",
      type: "gauge",
      samples: Object.entries(open).map(([cause, value]) => ({
        labels: { cause },
        value,
      })),
    },
    {
      name: "earthworm_hearts",
      help: "Hearts (Leases) by kind and status.",
      type: "gauge",
      samples: [...byKindStatus].map(([k, value]) => {
        const [cluster, kind, status] = JSON.parse(k) as [
          string | null,
          string,
          string,
        ];
        return {
          labels: { ...clusterLabel(cluster ?? undefined), kind, status },
          value,
        };
      }),
    },
    {
      name: "earthworm_hearts_longest_silence_seconds",
      help:
        "Longest time since a heart's last observed beat, by kind, on Earthworm's clock.",
      type: "gauge",
      samples: [...longestSilence].map(([k, value]) => {
        const [cluster, kind] = JSON.parse(k) as [string | null, string];
        return {
          labels: { ...clusterLabel(cluster ?? undefined), kind },
          value,
        };
      }),
    },
    ...(perHeart
      ? [{
        name: "earthworm_heart_seconds_since_beat",
        help:
          "Seconds since the heart's last beat was observed, on Earthworm's clock (--per-heart-metrics).",
        type: "gauge" as const,
        samples: sinceBeat,
      }]
      : []),
    scalar("earthworm_beats_total", "Beats observed.", "counter", c.beats),
    scalar(
      "earthworm_transitions_total",
      "Holder changes observed.",
      "counter",
      c.transitions,
    ),
    {
      name: "earthworm_lease_transitions_total",
      help:
        "Holder changes of a non-node Lease (leader handovers) observed since this leader saw it first.",
      type: "counter",
      samples: leaseTransitions,
    },
    scalar(
      "earthworm_lease_events_total",
      "Lease watch events received.",
      "counter",
      c.leaseEvents,
    ),
    scalar(
      "earthworm_expiry_reads_total",
      "Fresh reads of a silent heart's Lease before calling it expired.",
      "counter",
      hub.confirmers.reduce((n, c) => n + c.counters.reads, 0),
    ),
    scalar(
      "earthworm_expiry_read_failures_total",
      "Such reads that failed or timed out (the heart showed unknown).",
      "counter",
      hub.confirmers.reduce((n, c) => n + c.counters.failures, 0),
    ),
    scalar(
      "earthworm_stale_views_total",
      "Fresh reads that found a change the watch had not delivered (the view was rebuilt).",
      "counter",
      c.staleViews,
    ),
    scalar(
      "earthworm_resyncs_total",
      "Full lease lists received.",
      "counter",
      c.resyncs,
    ),
    {
      name: "earthworm_source_connected",
      help:
        "1 while the API server (or simulated source) is reachable; with several clusters, one series per cluster.",
      type: "gauge",
      samples: source.clusters
        ? source.clusters.map((c) => ({
          labels: { kind: source.kind, cluster: c.name },
          value: c.connected ? 1 : 0,
        }))
        : [{
          labels: { kind: source.kind },
          value: source.connected ? 1 : 0,
        }],
    },
    {
      name: "earthworm_wire_available",
      help:
        "1 when eBPF wire data is available; the reason label says why not.",
      type: "gauge",
      samples: [{
        labels: { reason: source.wire?.reason ?? "" },
        value: source.wire?.available ? 1 : 0,
      }],
    },
    scalar(
      "earthworm_wire_exchanges_total",
      "Wire exchanges received from agents.",
      "counter",
      c.wireExchanges,
    ),
    scalar(
      "earthworm_wire_paired_beats_total",
      "Node beats paired with the exchange that carried them.",
      "counter",
      c.wirePaired,
    ),
    scalar(
      "earthworm_wire_srtt_max_seconds",
      "Largest smoothed RTT among the kubelets' API connections.",
      "gauge",
      srttMax,
    ),
    ...(perHeart
      ? [{
        name: "earthworm_wire_srtt_seconds",
        help:
          "Smoothed RTT of the kubelet's API connection (--per-heart-metrics).",
        type: "gauge" as const,
        samples: srtt,
      }]
      : []),
    {
      name: "earthworm_wire_retransmits_total",
      help:
        "TCP retransmits on a kubelet's API connections; a node's series starts at its first retransmit unless --per-heart-metrics.",
      type: "counter",
      samples: retrans,
    },
    scalar(
      "earthworm_stream_clients",
      "Connected SSE clients.",
      "gauge",
      hub.events.subscribers,
    ),
    scalar(
      "earthworm_stream_dropped_clients_total",
      "SSE clients disconnected for falling behind.",
      "counter",
      hub.events.dropped,
    ),
    scalar(
      "earthworm_stream_resyncs_total",
      "Times an SSE client fell too far behind, skipped what it missed and was sent a fresh snapshot instead.",
      "counter",
      hub.events.lagged,
    ),
    scalar(
      "earthworm_stream_batches_total",
      "Batches of compact events sent on the stream.",
      "counter",
      hub.batcher.batches,
    ),
    scalar(
      "earthworm_stream_queued_bytes",
      "Bytes of events queued for SSE clients (each client's queue counted).",
      "gauge",
      hub.events.queuedBytes,
    ),
    scalar(
      "earthworm_stream_held_bytes",
      "Bytes of serialised events held for resuming clients.",
      "gauge",
      hub.events.heldBytes,
    ),
    scalar(
      "earthworm_stream_snapshots_total",
      "Snapshots serialised for new SSE clients.",
      "counter",
      snapshotCache(hub).builds,
    ),
    scalar(
      "earthworm_store_bytes",
      "Bytes held by the beat history.",
      "gauge",
      hub.store.byteSize(),
    ),
  ];
}
