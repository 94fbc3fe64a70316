/**
 * A simulated cluster for `earthworm mock`: kubelets renewing node Leases
 * every 10 s with jitter (40 s duration), controllers renewing their
 * leader-election Leases, API server identity Leases, and a script of
 * incidents that repeats: a late node, a node that dies and comes back, a
 * leader handover, a node that joins and leaves, and a short API server
 * outage. The renewers write into a {@linkcode SimApiServer}; Earthworm reads
 * that server through its real list/watch loop, as it reads a real cluster.
 *
 * @module
 */

import type { WireExchange } from "../core/api_types.ts";
import type { Clock } from "../core/clock.ts";
import { microTime, NODE_LEASE_NAMESPACE } from "../core/lease_types.ts";
import { SimApiServer } from "./sim_api_server.ts";

/** Settings of the simulation. */
export interface SimulatorOptions {
  clock: Clock;
  /** Number of nodes (kubelets). Default 12. */
  nodes: number;
  /**
   * More leader-election Leases, as operators and controllers hold (15 s
   * duration), in namespaces `team-0` to `team-39`. Default 0.
   */
  leases?: number;
  /** Seconds between renewals of each of those. Default 2, client-go's retry period. */
  leaseIntervalSeconds?: number;
  /** Seed of the pseudo-random jitter, so a run can be repeated. */
  seed?: number;
  /** Whether to run the incident script. Default true. */
  incidents?: boolean;
  /**
   * Receives the simulated kubelets' wire exchanges (each renewal's PUT), as
   * agents report them: the same path as eBPF data from real nodes.
   */
  wire?: (node: string, exchanges: WireExchange[]) => void;
  /** The API server to write to; a new one on `clock` by default. */
  server?: SimApiServer;
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
  /**
   * The API server is down for a while: nothing can renew, Earthworm's watch
   * fails, and its hearts turn unknown, not expired.
   */
  outage: { at: 140, seconds: 12 },
} as const;

/** Reason the simulated API server gives while it is down. */
export const OUTAGE_REASON = "simulated API server outage: connection refused";

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
  /** Index in the schedule heap; -1 when not scheduled. */
  slot: number;
  /** When its renewal that is waiting for an answer went out, or null. */
  waitingSince: number | null;
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

/** Name of simulated node `i` (0-based). */
export function nodeName(i: number): string {
  return `node-${String(i + 1).padStart(2, "0")}`;
}

function rfc3339Seconds(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** The simulated cluster. */
export class Simulator {
  /** The API server the simulated cluster writes to. */
  readonly server: SimApiServer;
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #incidents: boolean;
  readonly #wire: SimulatorOptions["wire"];
  readonly #renewers = new Map<string, Renewer>();
  /** Renewers ordered by their next renewal (a binary min-heap). */
  readonly #due: Renewer[] = [];
  readonly #start: number;
  #handledCycle = { late: -1, death: -1, handover: -1 };

  /** Builds the cluster with its Leases; nothing renews until {@linkcode Simulator.run}. */
  constructor(opts: SimulatorOptions) {
    this.#clock = opts.clock;
    this.server = opts.server ?? new SimApiServer({ clock: opts.clock });
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
    const every = opts.leaseIntervalSeconds ?? 2;
    for (let i = 0; i < (opts.leases ?? 0); i++) {
      const name = `controller-${i}`;
      this.#add(
        `team-${i % 40}`,
        name,
        [`${name}-7c9d_0`],
        15,
        every,
        every / 10,
      );
    }
  }

  /** Number of renewing Leases. */
  get size(): number {
    return this.#renewers.size;
  }

  /**
   * Creates a Lease renewed from now on. A cluster already running has
   * renewed it up to one interval ago; a joining node (`joined`) just now.
   */
  #add(
    namespace: string,
    name: string,
    holders: string[],
    durationSeconds: number,
    renewSeconds: number,
    jitterSeconds: number,
    joined = false,
  ): void {
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
      nextAt: joined
        ? now + renewSeconds * 1000
        : now + this.#random() * renewSeconds * 1000,
      silentUntil: -Infinity,
      lossyUntil: -Infinity,
      slot: -1,
      waitingSince: null,
    };
    const created = joined ? now : now - 86_400_000;
    const renewedAt = joined ? now : now - this.#random() * renewSeconds * 1000;
    this.server.write({
      apiVersion: "coordination.k8s.io/v1",
      kind: "Lease",
      metadata: {
        name,
        namespace,
        uid: crypto.randomUUID(),
        creationTimestamp: rfc3339Seconds(created),
      },
      spec: {
        holderIdentity: holders[0]!,
        leaseDurationSeconds: durationSeconds,
        acquireTime: microTime(created),
        renewTime: microTime(renewedAt),
        leaseTransitions: 0,
      },
    });
    this.#renewers.set(`${namespace}/${name}`, r);
    this.#schedule(r);
    if (joined) this.#probeUp(r);
  }

  #remove(namespace: string, name: string): void {
    const id = `${namespace}/${name}`;
    const r = this.#renewers.get(id);
    if (!r) return;
    this.#renewers.delete(id);
    this.#unschedule(r);
    this.server.delete(namespace, name);
  }

  /**
   * Runs the cluster until `signal` aborts: renews each Lease when it is due
   * and drives the incident script. When the clock jumps (a stalled process
   * at a high `--speed`), a renewer renews once and resumes its rhythm from
   * now, as a kubelet does, instead of catching up on every missed interval.
   */
  async run(signal: AbortSignal): Promise<void> {
    // Each node's agent reports its probe state when it starts, before any exchange.
    for (const r of this.#renewers.values()) this.#probeUp(r);
    while (!signal.aborted) {
      const now = this.#clock.now();
      // The script first, so a renewal at the end of an outage finds the
      // server up, and a node that left is not renewed.
      if (this.#incidents) this.#script(now);
      while (this.#due.length > 0 && this.#due[0]!.nextAt <= now) {
        const r = this.#due[0]!;
        const interval =
          (r.renewSeconds + (this.#random() * 2 - 1) * r.jitterSeconds) * 1000;
        r.nextAt = r.nextAt + interval <= now
          ? now + interval
          : r.nextAt + interval;
        this.#siftDown(0);
        this.#renew(r, now);
      }
      const next = Math.min(this.#due[0]?.nextAt ?? Infinity, now + 1000);
      try {
        await this.#clock.sleep(Math.max(1, next - now), signal);
      } catch {
        return;
      }
    }
  }

  #renew(r: Renewer, now: number): void {
    if (now < r.silentUntil) return;
    if (now < r.lossyUntil) {
      this.#exchange(r, now - 2, 5000 + this.#random() * 2000, 3);
      return;
    }
    // A kubelet cannot renew while the API server is down: its request
    // waits for an answer, as its agent's probe sees it.
    if (!this.server.reachable) {
      this.#waiting(r, now);
      return;
    }
    this.#gaveUp(r, now);
    const lease = this.server.get(r.namespace, r.name);
    if (!lease?.spec) return;
    const spec = { ...lease.spec };
    const holder = r.holders[r.holderIndex]!;
    if (spec.holderIdentity !== holder) {
      spec.holderIdentity = holder;
      spec.acquireTime = microTime(now);
      spec.leaseTransitions = (spec.leaseTransitions ?? 0) + 1;
    }
    // The holder stamps renewTime on its own clock just before writing.
    const renewTime = now - 5 - Math.floor(this.#random() * 60);
    spec.renewTime = microTime(renewTime);
    this.server.write({ ...lease, spec });
    this.#exchange(
      r,
      renewTime,
      now - renewTime,
      0,
      lease.metadata.resourceVersion,
    );
  }

  /**
   * Reports a renewal that waits for an answer, as the Go TLS probe does;
   * the one before it, still unanswered, was given up.
   */
  #waiting(r: Renewer, now: number): void {
    if (!this.#wire || r.namespace !== NODE_LEASE_NAMESPACE) return;
    this.#gaveUp(r, now);
    r.waitingSince = now;
    this.#wire(r.name, [{
      ...this.#unanswered(r, now, 1000),
      signal: "pending",
    }]);
  }

  /**
   * Reports how the renewal that waited ended: the kubelet's client gave up
   * on it (a real kubelet's times out after 10 s and resets the stream),
   * without a byte of answer.
   */
  #gaveUp(r: Renewer, now: number): void {
    const since = r.waitingSince;
    if (since === null || !this.#wire) return;
    r.waitingSince = null;
    this.#wire(r.name, [
      this.#unanswered(r, since, Math.min(now - since, 10_000)),
    ]);
  }

  /** A node's renewal sent at `sentAt` without an answer after `waitedMs`. */
  #unanswered(r: Renewer, sentAt: number, waitedMs: number): WireExchange {
    const version = this.server.get(r.namespace, r.name)?.metadata
      .resourceVersion;
    return {
      node: r.name,
      conn: this.#conn(r),
      at: new Date(sentAt).toISOString(),
      latencyMs: waitedMs,
      bytesSent: 640,
      bytesReceived: 0,
      srttUs: 200,
      retransmits: 0,
      resets: 0,
      confidence: "exact",
      lease: `${r.namespace}/${r.name}`,
      ...(version !== undefined && { resourceVersion: version }),
    };
  }

  /** The simulated kubelet's connection id. */
  #conn(r: Renewer): string {
    const port = 40000 +
      (r.name.length * 7919 + r.name.charCodeAt(r.name.length - 1)) % 20000;
    return `10.0.0.${1 + (port % 250)}:${port}->10.0.0.254:6443`;
  }

  /** Reports that a node's agent runs its probe, as an agent does at start. */
  #probeUp(r: Renewer): void {
    if (this.#wire && r.namespace === NODE_LEASE_NAMESPACE) {
      this.#wire(r.name, []);
    }
  }

  /** Reports the PUT of a node's renewal, as its agent's probe would. */
  #exchange(
    r: Renewer,
    startedAt: number,
    latencyMs: number,
    retransmits: number,
    updatedVersion?: string,
  ): void {
    if (!this.#wire || r.namespace !== NODE_LEASE_NAMESPACE) return;
    this.#wire(r.name, [{
      node: r.name,
      conn: this.#conn(r),
      at: new Date(startedAt + 1).toISOString(),
      latencyMs: Math.round(Math.max(latencyMs, 1) * 1000) / 1000,
      bytesSent: 620 + Math.floor(this.#random() * 40),
      bytesReceived: retransmits ? 0 : 480 + Math.floor(this.#random() * 40),
      srttUs: Math.round((retransmits ? 90_000 : 180) + this.#random() * 120),
      retransmits,
      resets: 0,
      // As the agents' Go TLS probe reports a renewal: its own request and
      // response, and the version it updated. A lost one is a TCP exchange.
      ...(updatedVersion !== undefined
        ? {
          confidence: "exact" as const,
          lease: `${r.namespace}/${r.name}`,
          resourceVersion: updatedVersion,
          status: 200,
        }
        : { confidence: "inferred" as const }),
    }]);
  }

  /**
   * Applies the incident script at `now`. Each incident is decided from the
   * position in the current cycle, so a clock that jumps over moments (or
   * whole cycles) leaves the cluster in the state that position calls for:
   * the autoscaled node exists exactly between its join and leave, the API
   * server is down exactly during the outage window.
   */
  #script(now: number): void {
    const elapsed = (now - this.#start) / 1000;
    const cycle = Math.floor(elapsed / INCIDENTS.cycleSeconds);
    const t = elapsed - cycle * INCIDENTS.cycleSeconds;
    const cycleStart = this.#start + cycle * INCIDENTS.cycleSeconds * 1000;
    const node = (i: number) =>
      this.#renewers.get(`${NODE_LEASE_NAMESPACE}/${nodeName(i)}`);

    const { outage, late, death, handover, scale } = INCIDENTS;
    const down = t >= outage.at && t < outage.at + outage.seconds;
    if (down !== !this.server.reachable) {
      this.server.setDown(down ? OUTAGE_REASON : null);
    }
    if (t >= late.at && this.#handledCycle.late < cycle) {
      this.#handledCycle.late = cycle;
      const r = node(late.node);
      if (r) r.lossyUntil = cycleStart + (late.at + late.skipSeconds) * 1000;
    }
    if (t >= death.at && this.#handledCycle.death < cycle) {
      this.#handledCycle.death = cycle;
      const r = node(death.node);
      if (r) r.silentUntil = cycleStart + (death.at + death.downSeconds) * 1000;
    }
    if (t >= handover.at && this.#handledCycle.handover < cycle) {
      this.#handledCycle.handover = cycle;
      const r = this.#renewers.get("kube-system/kube-controller-manager");
      if (r) {
        // The leader dies; the standby acquires once the lease has expired.
        r.silentUntil = now + r.durationSeconds * 1000;
        r.holderIndex = (r.holderIndex + 1) % r.holders.length;
      }
    }
    // Joining and leaving need the API server, like every write.
    if (!this.server.reachable) return;
    const member = t >= scale.joinAt && t < scale.leaveAt;
    const present = this.#renewers.has(`${NODE_LEASE_NAMESPACE}/${scale.node}`);
    if (member && !present) {
      this.#add(
        NODE_LEASE_NAMESPACE,
        scale.node,
        [scale.node],
        40,
        10,
        0.5,
        true,
      );
    } else if (!member && present) {
      this.#remove(NODE_LEASE_NAMESPACE, scale.node);
    }
  }

  // A binary min-heap on nextAt, so a wake-up costs O(log n) per renewal
  // rather than a scan of every Lease (5,000 nodes at --speed 10).

  #schedule(r: Renewer): void {
    r.slot = this.#due.length;
    this.#due.push(r);
    this.#siftUp(r.slot);
  }

  #unschedule(r: Renewer): void {
    const i = r.slot;
    if (i < 0) return;
    const last = this.#due.pop()!;
    r.slot = -1;
    if (last === r) return;
    this.#due[i] = last;
    last.slot = i;
    this.#siftDown(i);
    this.#siftUp(last.slot);
  }

  #swap(i: number, j: number): void {
    const a = this.#due[i]!;
    const b = this.#due[j]!;
    this.#due[i] = b;
    this.#due[j] = a;
    a.slot = j;
    b.slot = i;
  }

  #siftUp(i: number): void {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.#due[parent]!.nextAt <= this.#due[i]!.nextAt) return;
      this.#swap(i, parent);
      i = parent;
    }
  }

  #siftDown(i: number): void {
    const n = this.#due.length;
    while (true) {
      const l = 2 * i + 1;
      const r = l + 1;
      let min = i;
      if (l < n && this.#due[l]!.nextAt < this.#due[min]!.nextAt) min = l;
      if (r < n && this.#due[r]!.nextAt < this.#due[min]!.nextAt) min = r;
      if (min === i) return;
      this.#swap(i, min);
      i = min;
    }
  }
}
