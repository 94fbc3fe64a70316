/**
 * `GET /metrics`: the hub's state in the Prometheus text exposition format.
 *
 * @module
 */

import type { HeartHub } from "./heart_hub.ts";
import type { HeartKind, HeartStatus } from "./api_types.ts";

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

/** The hub's metric families at `now`. */
export function hubMetrics(
  hub: HeartHub,
  now: number = hub.clock.now(),
): MetricSamples {
  const hearts = hub.hearts(now);
  const byKindStatus = new Map<string, number>();
  for (const kind of ["node", "lease"] as HeartKind[]) {
    for (
      const status of ["healthy", "late", "expired", "unknown"] as HeartStatus[]
    ) {
      byKindStatus.set(`${kind}|${status}`, 0);
    }
  }
  const sinceBeat: Sample[] = [];
  const srtt: Sample[] = [];
  const retrans: Sample[] = [];
  for (const h of hearts) {
    const key = `${h.kind}|${h.status}`;
    byKindStatus.set(key, (byKindStatus.get(key) ?? 0) + 1);
    if (h.lastObservedAt) {
      sinceBeat.push({
        labels: { namespace: h.namespace, name: h.name, kind: h.kind },
        value: (now - Date.parse(h.lastObservedAt)) / 1000,
      });
    }
    if (h.wire) {
      if (h.wire.srttUs !== null) {
        srtt.push({ labels: { node: h.name }, value: h.wire.srttUs / 1e6 });
      }
      retrans.push({ labels: { node: h.name }, value: h.wire.retransmits });
    }
  }
  const source = hub.sourceState();
  const c = hub.counters;
  return [
    {
      name: "earthworm_hearts",
      help: "Hearts (Leases) by kind and status.",
      type: "gauge",
      samples: [...byKindStatus].map(([k, value]) => {
        const [kind, status] = k.split("|") as [string, string];
        return { labels: { kind, status }, value };
      }),
    },
    {
      name: "earthworm_heart_seconds_since_beat",
      help:
        "Seconds since the heart's last beat was observed, on Earthworm's clock.",
      type: "gauge",
      samples: sinceBeat,
    },
    {
      name: "earthworm_beats_total",
      help: "Beats observed.",
      type: "counter",
      samples: [{ value: c.beats }],
    },
    {
      name: "earthworm_transitions_total",
      help: "Holder changes observed.",
      type: "counter",
      samples: [{ value: c.transitions }],
    },
    {
      name: "earthworm_lease_events_total",
      help: "Lease watch events received.",
      type: "counter",
      samples: [{ value: c.leaseEvents }],
    },
    {
      name: "earthworm_resyncs_total",
      help: "Full lease lists received.",
      type: "counter",
      samples: [{ value: c.resyncs }],
    },
    {
      name: "earthworm_source_connected",
      help: "1 while the API server (or simulated source) is reachable.",
      type: "gauge",
      samples: [{
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
    {
      name: "earthworm_wire_exchanges_total",
      help: "Wire exchanges received from agents.",
      type: "counter",
      samples: [{ value: c.wireExchanges }],
    },
    {
      name: "earthworm_wire_paired_beats_total",
      help: "Node beats paired with the exchange that carried them.",
      type: "counter",
      samples: [{ value: c.wirePaired }],
    },
    {
      name: "earthworm_wire_srtt_seconds",
      help: "Smoothed RTT of the kubelet's API connection.",
      type: "gauge",
      samples: srtt,
    },
    {
      name: "earthworm_wire_retransmits_total",
      help: "TCP retransmits on the kubelet's API connections.",
      type: "counter",
      samples: retrans,
    },
    {
      name: "earthworm_stream_clients",
      help: "Connected SSE clients.",
      type: "gauge",
      samples: [{ value: hub.events.subscribers }],
    },
    {
      name: "earthworm_stream_dropped_clients_total",
      help: "SSE clients disconnected for falling behind.",
      type: "counter",
      samples: [{ value: hub.events.dropped }],
    },
    {
      name: "earthworm_store_bytes",
      help: "Bytes held by the beat history.",
      type: "gauge",
      samples: [{ value: hub.store.byteSize() }],
    },
  ];
}
