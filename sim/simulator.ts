/**
 * A simulated cluster for `earthworm mock`: kubelets renewing node Leases
 * every 10 s with jitter (40 s duration), controllers renewing their
 * leader-election Leases, API server identity Leases, and a script of
 * incidents that repeats: a late node, a node that dies and comes back, a
 * leader handover and a short API server outage. It keeps Lease objects with
 * resourceVersions like an API server and delivers them to a
 * {@linkcode LeaseSink} as a list followed by watch events (ADDED, MODIFIED,
 * DELETED, with increasing resourceVersions), exactly as the
 * real watcher does.
 *
 * @module
 */

import type { WireExchange } from "../core/api_types.ts";
import type { Clock } from "../core/clock.ts";
import type { Lease, LeaseSink } from "../core/lease_types.ts";
import { NODE_LEASE_NAMESPACE } from "../core/lease_types.ts";

/** Settings of the simulation. */
export interface SimulatorOptions {
  clock: Clock;
  /** Number of nodes (kubelets). Default 12. */
  nodes: number;
  /** Seed of the pseudo-random jitter, so a run can be repeated. */
  seed?: number;
  /** Whether to run the incident script. Default true. */
  incidents?: boolean;
  /**
   * Receives the simulated kubelets' wire exchanges (each renewal's PUT), as
   * agents report them: the same path as eBPF data from real nodes.
   */
  wire?: (node: string, exchanges: WireExchange[]) => void;
}

/** The incident script, in seconds since the start of each cycle. */
export const INCIDENTS = {
  cycleSeconds: 180,
  /**
   * One node's packets are lost: its renewals retransmit and time out, its
   * heart turns late, then recovers.
   */
  late: { node: 2, at: 20, skipSeconds: 25 },
  /** One node stops renewing past its lease duration, then comes back. */
  death: { node: 4, at: 25, downSeconds: 70 },
  /** The kube-controller-manager leader stops; the standby takes over after the lease expires. */
  handover: { at: 110 },
  /** A node joins (ADDED) and later leaves the cluster (DELETED), as with an autoscaler. */
  scale: { node: "node-autoscaled-1", joinAt: 50, leaveAt: 165 },
  /** The API server is unreachable for a while: hearts turn unknown, not expired. */
  outage: { at: 140, seconds: 12 },
} as const;

interface Renewer {
  namespace: string;
  name: string;
  holders: string[];
  holderIndex: number;
  durationSeconds: number;
  renewSeconds: number;
  jitterSeconds: number;
  nextAt: number;
  /** Renewals are suppressed until this time (incident). */
  silentUntil: number;
  /** Renewals are attempted but lost on the wire until this time (incident). */
  lossyUntil: number;
}

/** Returns a deterministic pseudo-random generator in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Formats epoch ms as a Kubernetes MicroTime (six fractional digits). */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

/** Name of simulated node `i` (0-based). */
export function nodeName(i: number): string {
  return `node-${String(i + 1).padStart(2, "0")}`;
}

/** The simulated cluster. */
export class Simulator {
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #incidents: boolean;
  readonly #wire: SimulatorOptions["wire"];
  readonly #renewers: Renewer[] = [];
  readonly #leases = new Map<string, Lease>();
  #resourceVersion = 1000;
  #start: number;
  #outageUntil = -Infinity;
  #handledCycle = {
    outage: -1,
    handover: -1,
    late: -1,
    death: -1,
    join: -1,
    leave: -1,
  };

  /** Builds the cluster; nothing happens until {@linkcode Simulator.run}. */
  constructor(opts: SimulatorOptions) {
    this.#clock = opts.clock;
    this.#random = seededRandom(opts.seed ?? 42);
    this.#incidents = opts.incidents ?? true;
    this.#wire = opts.wire;
    this.#start = opts.clock.now();
    for (let i = 0; i < opts.nodes; i++) {
      this.#add(NODE_LEASE_NAMESPACE, nodeName(i), [nodeName(i)], 40, 10, 0.5);
    }
    this.#add(
      "kube-system",
      "kube-controller-manager",
      ["cp-1_7f3a", "cp-2_91bc"],
      15,
      2,
      0.2,
    );
    this.#add("kube-system", "kube-scheduler", ["cp-1_42de"], 15, 2, 0.2);
    this.#add(
      "kube-system",
      "apiserver-a3f9c2e1b7d04",
      ["apiserver-a3f9c2e1b7d04_cp-1"],
      3600,
      10,
      0.1,
    );
    this.#add(
      "cert-manager",
      "cert-manager-controller",
      ["cert-manager-7d9f_0"],
      60,
      15,
      1,
    );
    this.#add(
      "ingress-nginx",
      "ingress-nginx-leader",
      ["ingress-nginx-controller-5c8d_x2"],
      30,
      5,
      0.5,
    );
  }

  #add(
    namespace: string,
    name: string,
    holders: string[],
    durationSeconds: number,
    renewSeconds: number,
    jitterSeconds: number,
  ): Lease {
    const now = this.#clock.now();
    const r: Renewer = {
      namespace,
      name,
      holders,
      holderIndex: 0,
      durationSeconds,
      renewSeconds,
      jitterSeconds,
      // Spread first renewals over one interval, like a cluster already running.
      nextAt: now + this.#random() * renewSeconds * 1000,
      silentUntil: -Infinity,
      lossyUntil: -Infinity,
    };
    this.#renewers.push(r);
    const renewedAt = now - this.#random() * renewSeconds * 1000;
    const lease: Lease = {
      apiVersion: "coordination.k8s.io/v1",
      kind: "Lease",
      metadata: {
        name,
        namespace,
        resourceVersion: String(++this.#resourceVersion),
        uid: crypto.randomUUID(),
        creationTimestamp: new Date(now - 86_400_000).toISOString().replace(
          /\.\d{3}Z$/,
          "Z",
        ),
      },
      spec: {
        holderIdentity: holders[0]!,
        leaseDurationSeconds: durationSeconds,
        acquireTime: microTime(now - 86_400_000),
        renewTime: microTime(renewedAt),
        leaseTransitions: 0,
      },
    };
    this.#leases.set(`${namespace}/${name}`, lease);
    return lease;
  }

  /** The current Lease objects (a `list`). */
  list(): Lease[] {
    return [...this.#leases.values()].map((l) => structuredClone(l));
  }

  /** Whether the simulated API server is reachable at `now`. */
  reachable(now: number): boolean {
    return now >= this.#outageUntil;
  }

  /**
   * Runs the cluster until `signal` aborts: delivers a list, then a watch
   * event per Lease change, and drives the incident script.
   */
  async run(sink: LeaseSink, signal: AbortSignal): Promise<void> {
    sink.source(true, undefined, this.#clock.now());
    sink.resync(this.list(), this.#clock.now());
    while (!signal.aborted) {
      const now = this.#clock.now();
      for (const r of this.#renewers) {
        if (r.nextAt > now) continue;
        r.nextAt +=
          (r.renewSeconds + (this.#random() * 2 - 1) * r.jitterSeconds) * 1000;
        if (now < r.silentUntil) continue;
        if (now < r.lossyUntil) {
          this.#exchange(r, now - 2, 5000 + this.#random() * 2000, 3);
          continue;
        }
        const lease = this.#renew(r, now);
        const renewTime = Date.parse(lease.spec!.renewTime!);
        this.#exchange(r, renewTime, now - renewTime, 0);
        // Delivery lags the write a little, as through a real watch.
        if (this.reachable(now)) {
          sink.event({ type: "MODIFIED", object: structuredClone(lease) }, now);
        }
      }
      // After the renewals, so a relist at the end of an outage already
      // holds this instant's renewals instead of racing them.
      if (this.#incidents) this.#script(now, sink);
      const next = Math.min(...this.#renewers.map((r) => r.nextAt), now + 1000);
      try {
        await this.#clock.sleep(Math.max(1, next - now), signal);
      } catch {
        return;
      }
    }
  }

  /** Reports the PUT of a node's renewal, as its agent's probe would. */
  #exchange(
    r: Renewer,
    startedAt: number,
    latencyMs: number,
    retransmits: number,
  ): void {
    if (!this.#wire || r.namespace !== NODE_LEASE_NAMESPACE) return;
    const port = 40000 +
      (r.name.length * 7919 + r.name.charCodeAt(r.name.length - 1)) % 20000;
    this.#wire(r.name, [{
      node: r.name,
      conn: `10.0.0.${1 + (port % 250)}:${port}->10.0.0.254:6443`,
      at: new Date(startedAt + 1).toISOString(),
      latencyMs: Math.round(Math.max(latencyMs, 1) * 1000) / 1000,
      bytesSent: 620 + Math.floor(this.#random() * 40),
      bytesReceived: retransmits ? 0 : 480 + Math.floor(this.#random() * 40),
      srttUs: Math.round((retransmits ? 90_000 : 180) + this.#random() * 120),
      retransmits,
      resets: 0,
    }]);
  }

  #renew(r: Renewer, now: number): Lease {
    const lease = this.#leases.get(`${r.namespace}/${r.name}`)!;
    const spec = lease.spec!;
    const holder = r.holders[r.holderIndex]!;
    if (spec.holderIdentity !== holder) {
      spec.holderIdentity = holder;
      spec.acquireTime = microTime(now);
      spec.leaseTransitions = (spec.leaseTransitions ?? 0) + 1;
    }
    // The holder stamps renewTime on its own clock just before writing.
    spec.renewTime = microTime(now - 5 - Math.floor(this.#random() * 60));
    lease.metadata.resourceVersion = String(++this.#resourceVersion);
    return lease;
  }

  #script(now: number, sink: LeaseSink): void {
    const elapsed = (now - this.#start) / 1000;
    const cycle = Math.floor(elapsed / INCIDENTS.cycleSeconds);
    const t = elapsed - cycle * INCIDENTS.cycleSeconds;
    const cycleStart = this.#start + cycle * INCIDENTS.cycleSeconds * 1000;
    const nodeRenewer = (i: number) =>
      this.#renewers.find((r) =>
        r.namespace === NODE_LEASE_NAMESPACE && r.name === nodeName(i)
      );

    if (t >= INCIDENTS.late.at && this.#handledCycle.late < cycle) {
      this.#handledCycle.late = cycle;
      const r = nodeRenewer(INCIDENTS.late.node);
      if (r) {
        r.lossyUntil = cycleStart +
          (INCIDENTS.late.at + INCIDENTS.late.skipSeconds) * 1000;
      }
    }
    if (t >= INCIDENTS.death.at && this.#handledCycle.death < cycle) {
      this.#handledCycle.death = cycle;
      const r = nodeRenewer(INCIDENTS.death.node);
      if (r) {
        r.silentUntil = cycleStart +
          (INCIDENTS.death.at + INCIDENTS.death.downSeconds) * 1000;
      }
    }
    if (t >= INCIDENTS.handover.at && this.#handledCycle.handover < cycle) {
      this.#handledCycle.handover = cycle;
      const r = this.#renewers.find((x) =>
        x.name === "kube-controller-manager"
      );
      if (r) {
        // The leader dies; the standby acquires once the lease has expired.
        r.silentUntil = now + r.durationSeconds * 1000;
        r.holderIndex = (r.holderIndex + 1) % r.holders.length;
      }
    }
    if (t >= INCIDENTS.scale.joinAt && this.#handledCycle.join < cycle) {
      this.#handledCycle.join = cycle;
      const lease = this.#add(
        NODE_LEASE_NAMESPACE,
        INCIDENTS.scale.node,
        [INCIDENTS.scale.node],
        40,
        10,
        0.5,
      );
      lease.metadata.creationTimestamp = new Date(now).toISOString().replace(
        /\.\d{3}Z$/,
        "Z",
      );
      lease.spec!.acquireTime = lease.spec!.renewTime = microTime(now);
      if (this.reachable(now)) {
        sink.event({ type: "ADDED", object: structuredClone(lease) }, now);
      }
    }
    if (t >= INCIDENTS.scale.leaveAt && this.#handledCycle.leave < cycle) {
      this.#handledCycle.leave = cycle;
      const id = `${NODE_LEASE_NAMESPACE}/${INCIDENTS.scale.node}`;
      const lease = this.#leases.get(id);
      if (lease) {
        this.#leases.delete(id);
        this.#renewers.splice(
          this.#renewers.findIndex((r) => r.name === INCIDENTS.scale.node),
          1,
        );
        lease.metadata.resourceVersion = String(++this.#resourceVersion);
        if (this.reachable(now)) {
          sink.event({ type: "DELETED", object: structuredClone(lease) }, now);
        }
      }
    }
    if (t >= INCIDENTS.outage.at && this.#handledCycle.outage < cycle) {
      this.#handledCycle.outage = cycle;
      this.#outageUntil = now + INCIDENTS.outage.seconds * 1000;
      sink.source(
        false,
        "simulated API server outage: connection refused",
        now,
      );
    }
    if (this.#outageUntil !== -Infinity && now >= this.#outageUntil) {
      this.#outageUntil = -Infinity;
      // Like the real watcher: reconnect, relist, reconcile.
      sink.source(true, undefined, now);
      sink.resync(this.list(), now);
    }
  }
}
