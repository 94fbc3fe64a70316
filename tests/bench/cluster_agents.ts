/**
 * Figures of the agents on a real control plane, for the closing note of
 * issue 3 (a script, not part of `deno task bench`: it needs the cluster of
 * `tests/cluster/`, and it prints measurements instead of asserting them):
 *
 *   deno run -A tests/bench/cluster_agents.ts [--nodes 200] [--writes 1200] [--no-failover]
 *
 * 1. Starts a private control plane with `--nodes` kwok nodes and three
 *    `earthworm agent` processes with client-go's default election timings
 *    (15 s lease, 10 s renew deadline, 2 s retry).
 * 2. Latency: renews 20 Leases of its own with PUTs, each about twice a
 *    second (kwok's node renewals run alongside), and reads the event stream
 *    of the leader and of a follower. For each renewal it reports the time
 *    from the PUT's response (the API server committed the update and said
 *    so) to the `beat` event read from the stream, and from sending the PUT.
 *    Writer and readers are this one process, so both ends use one clock.
 * 3. Memory: VmRSS (and its anonymous and file-backed parts) of the leader
 *    and of the followers, one of them forwarding the stream.
 * 4. Failover: SIGKILL of the leader, then SIGTERM of the next one, timed
 *    until another agent's `earthworm_leader` gauge reads 1.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { startCluster } from "../cluster/harness.ts";
import {
  type AgentProcess,
  RolePoller,
  startAgent,
  StreamFollower,
} from "../agent_observers.ts";
import { KubeRestClient } from "../../kube/rest_client.ts";
import type { BeatEvent, HeartsResponse } from "../../core/api_types.ts";
import { sleep, until } from "../wait.ts";
import { microTime } from "../../core/lease_types.ts";

const args = parseArgs({
  args: Deno.args,
  options: {
    nodes: { type: "string", default: "200" },
    writes: { type: "string", default: "1200" },
    "no-failover": { type: "boolean", default: false },
  },
});
const NODES = Number(args.values.nodes);
const WRITES = Number(args.values.writes);
const LEASES = 20;
const PERIOD_MS = 500;
const NS = "earthworm-bench";

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ??
    NaN;
}

function summary(values: number[]): string {
  const s = [...values].sort((a, b) => a - b);
  const f = (v: number) => v.toFixed(1);
  return `p50 ${f(percentile(s, 0.5))} ms, p99 ${
    f(percentile(s, 0.99))
  } ms, max ${f(s.at(-1) ?? NaN)} ms (n = ${s.length})`;
}

function memory(pid: number): string {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kib = (field: string) =>
    Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN);
  const mib = (v: number) => (v / 1024).toFixed(1);
  return `VmRSS ${mib(kib("VmRSS"))} MiB (anonymous ${
    mib(kib("RssAnon"))
  }, file-backed ${mib(kib("RssFile"))}), peak ${mib(kib("VmHWM"))} MiB`;
}

interface LeaseObject {
  metadata: { name: string; resourceVersion?: string };
  spec: Record<string, unknown>;
}

/** Renews `LEASES` Leases until `total` renewals were sent; records each. */
async function renewLeases(
  client: KubeRestClient,
  total: number,
  onRenewal: (key: string, sentAt: number, ackedAt: number) => void,
): Promise<void> {
  const base = `/apis/coordination.k8s.io/v1/namespaces/${NS}/leases`;
  let sent = 0;
  await Promise.all(
    Array.from({ length: LEASES }, async (_, i) => {
      const name = `bench-${i}`;
      let lease = await client.request<LeaseObject>("POST", base, {
        apiVersion: "coordination.k8s.io/v1",
        kind: "Lease",
        metadata: { name, namespace: NS },
        spec: {
          holderIdentity: "bench-writer",
          leaseDurationSeconds: 10,
          renewTime: microTime(Date.now()),
        },
      });
      await sleep(Math.random() * PERIOD_MS);
      let last = 0;
      while (sent < total) {
        sent++;
        const renewMs = Math.max(Date.now(), last + 1);
        last = renewMs;
        lease.spec.renewTime = microTime(renewMs);
        const sentAt = performance.now();
        lease = await client.request<LeaseObject>(
          "PUT",
          `${base}/${name}`,
          lease,
        );
        onRenewal(
          `${NS}/${name} ${new Date(renewMs).toISOString()}`,
          sentAt,
          performance.now(),
        );
        await sleep(PERIOD_MS * (0.8 + Math.random() * 0.4));
      }
    }),
  );
}

async function main(): Promise<void> {
  const started = Date.now();
  console.log(
    `starting a control plane with ${NODES} kwok nodes and three agents`,
  );
  const cluster = await startCluster();
  const agents: AgentProcess[] = [];
  const roles = new RolePoller();
  const streams: StreamFollower[] = [];
  const client = new KubeRestClient(cluster.rest);
  try {
    await cluster.createNodes(NODES);
    await cluster.kubectl(["create", "namespace", "earthworm"]);
    await cluster.kubectl(["create", "namespace", NS]);
    for (let i = 0; i < 3; i++) {
      const a = await startAgent(cluster, `agent-${i}`);
      agents.push(a);
      roles.watch(a.identity, a.address, 100);
    }
    const leaderOf = (among: AgentProcess[]) =>
      among.find((a) => roles.latest(a.identity) === 1);
    let leader = await until("a leader", 60_000, () => leaderOf(agents));
    await until(
      `the leader to see ${NODES} node hearts beat`,
      180_000,
      async () => {
        const res = await fetch(`${leader.address}/api/v1/hearts?kind=node`);
        const body = await res.json() as HeartsResponse;
        return body.hearts.filter((h) => h.beats >= 1).length >= NODES;
      },
      1_000,
    );
    const followers = agents.filter((a) => a !== leader);
    console.log(
      `leader ${leader.identity}; ${NODES} node hearts beating after ${
        ((Date.now() - started) / 1000).toFixed(0)
      } s`,
    );

    // Latency: our own renewals, read through the leader and a follower.
    const viaLeader = new StreamFollower(leader.address);
    const viaFollower = new StreamFollower(followers[0]!.address);
    streams.push(viaLeader, viaFollower);
    const seen = [new Map<string, number>(), new Map<string, number>()];
    [viaLeader, viaFollower].forEach((s, i) => {
      s.onMessage = (m) => {
        if (m.event !== "beat") return;
        const e = JSON.parse(m.data) as BeatEvent;
        if (e.heart.namespace === NS) {
          seen[i]!.set(`${e.id} ${e.beat.renewTime}`, m.perf);
        }
      };
    });
    await until(
      "both streams to open",
      30_000,
      () => viaLeader.connects.length > 0 && viaFollower.connects.length > 0,
    );
    const renewals = new Map<string, { sentAt: number; ackedAt: number }>();
    const writeStart = Date.now();
    await renewLeases(
      client,
      WRITES,
      (key, sentAt, ackedAt) => renewals.set(key, { sentAt, ackedAt }),
    );
    await sleep(2_000);
    const writeSeconds = (Date.now() - writeStart) / 1000;
    const lines: string[] = [];
    for (const [i, name] of ["the leader", "a follower"].entries()) {
      const fromAck: number[] = [];
      const fromSend: number[] = [];
      let missing = 0;
      for (const [key, r] of renewals) {
        const at = seen[i]!.get(key);
        if (at === undefined) {
          missing++;
          continue;
        }
        fromAck.push(at - r.ackedAt);
        fromSend.push(at - r.sentAt);
      }
      lines.push(
        `  through ${name}: PUT answered → beat read ${summary(fromAck)}; ` +
          `PUT sent → beat read ${summary(fromSend)}; ${missing} not seen`,
      );
    }
    const put = [...renewals.values()].map((r) => r.ackedAt - r.sentAt);
    console.log(
      `latency over ${renewals.size} Lease renewals in ${
        writeSeconds.toFixed(0)
      } s (${LEASES} Leases, every ${PERIOD_MS} ms, plus kwok's ${NODES} nodes every 10 s):\n` +
        `${lines.join("\n")}\n  the PUT itself: ${summary(put)}`,
    );

    // Memory with every heart loaded and a stream forwarded by a follower.
    console.log(`memory with ${NODES} nodes and ${LEASES} extra Leases:`);
    console.log(
      `  leader ${leader.identity}: ${memory(leader.proc.child.pid)}`,
    );
    for (const f of followers) {
      console.log(
        `  follower ${f.identity}${
          f === followers[0] ? " (forwarding a stream)" : ""
        }: ${memory(f.proc.child.pid)}`,
      );
    }

    if (!args.values["no-failover"]) {
      // Failover with the default timings.
      let live = [...agents];
      for (const signal of ["SIGKILL", "SIGTERM"] as const) {
        const old = leader;
        const stoppedAt = Date.now();
        old.proc.child.kill(signal);
        live = live.filter((a) => a !== old);
        leader = await until(
          `a new leader after ${signal}`,
          60_000,
          () =>
            live.find((a) =>
              roles.firstLeadingAfter(a.identity, stoppedAt) !== undefined
            ),
          20,
        );
        const ms = roles.firstLeadingAfter(leader.identity, stoppedAt)! -
          stoppedAt;
        roles.forget(old.identity);
        await old.proc.stop();
        console.log(
          `failover (lease 15 s, renew 10 s, retry 2 s): ${signal} → ${leader.identity} leads after ${ms} ms`,
        );
      }
    }
  } finally {
    for (const s of streams) await s.close();
    await roles.close();
    for (const a of agents) {
      try {
        a.proc.child.kill("SIGTERM");
      } catch {
        // already exited
      }
    }
    for (const a of agents) await a.proc.stop();
    client.close();
    await cluster.stop();
  }
  console.log(`done in ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

if (import.meta.main) await main();
