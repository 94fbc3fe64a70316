/**
 * Scripted incidents on the real test node, each scored by what Earthworm
 * (the image, the manifest, and the README's exact-pairing patch, running on
 * the node) diagnoses and how long that takes:
 * - `kubelet`: the kubelet frozen with SIGSTOP;
 * - `network`: the kubelet's connection to the API server blackholed;
 * - `apiserver`: kube-apiserver frozen a few seconds shorter than the Lease;
 * - `etcd`: etcd frozen (the API server cannot commit);
 * - `observer`: Earthworm's own connection to the API server cut.
 * The agent is read over its pod IP, not a port-forward: a port-forward goes
 * through the kubelet, which one incident freezes.
 *
 * @module
 */

import type { DiagnosisCause, Episode } from "../../core/api_types.ts";
import { findConnections } from "../../bpf/proc_scan.ts";
import type { Cluster } from "./harness.ts";
import type { RealNode } from "./node.ts";
import { sleep, until } from "../wait.ts";

/** The outcome of one incident. */
export interface IncidentResult {
  incident: string;
  expected: DiagnosisCause;
  /** The cause Earthworm concluded, or null when it concluded none. */
  got: DiagnosisCause | null;
  /** From the fault to that conclusion, seconds. */
  seconds: number | null;
  /** The diagnosis' summary. */
  summary: string;
  /** Its evidence, `hh:mm:ss.mmm text`, to read when it is wrong. */
  evidence: string[];
}

/** What the incidents act on. */
export interface IncidentWorld {
  cluster: Cluster;
  node: RealNode;
  /** Base URL of the agent, by its pod IP. */
  agent: string;
}

async function sh(cmd: string, args: string[]): Promise<void> {
  const out = await new Deno.Command(cmd, { args, stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(
      `${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`,
    );
  }
}

async function episodes(
  world: IncidentWorld,
  path: string,
): Promise<Episode[]> {
  try {
    const res = await fetch(`${world.agent}${path}`, {
      signal: AbortSignal.timeout(2000),
    });
    if (!res.ok) {
      await res.body?.cancel();
      return [];
    }
    return (await res.json() as { episodes: Episode[] }).episodes;
  } catch {
    return []; // not leading right now, or frozen: ask again
  }
}

function pidOf(cluster: Cluster, name: string): number {
  return Number(
    Deno.readTextFileSync(`${cluster.dir}/pids/${name}.pid`).trim(),
  );
}

/** The first episode that began after `t0` and reached a cause other than unknown. */
async function diagnosed(
  world: IncidentWorld,
  path: string,
  t0: number,
  timeoutMs: number,
  done = (_e: Episode) => true,
): Promise<Episode | null> {
  try {
    return await until("a diagnosis", timeoutMs, async () => {
      const list = await episodes(world, path);
      return list.find((e) =>
        Date.parse(e.start) >= t0 - 1000 && e.cause !== "unknown" && done(e)
      );
    }, 1000);
  } catch {
    return null;
  }
}

function result(
  incident: string,
  expected: DiagnosisCause,
  t0: number,
  e: Episode | null,
): IncidentResult {
  return {
    incident,
    expected,
    got: e?.cause ?? null,
    seconds: e ? Math.round((Date.parse(e.causeSince) - t0) / 100) / 10 : null,
    summary: e?.summary ?? "no diagnosis",
    evidence: (e?.evidence ?? []).map((x) => `${x.at.slice(11, 23)} ${x.text}`),
  };
}

/** Waits until the node's heart beats again and Earthworm sees the API server. */
export async function settle(world: IncidentWorld): Promise<void> {
  const heart = `kube-node-lease/${world.node.name}`;
  await until("the node to be healthy and seen again", 180_000, async () => {
    try {
      const res = await fetch(`${world.agent}/api/v1/hearts`, {
        signal: AbortSignal.timeout(2000),
      });
      if (!res.ok) {
        await res.body?.cancel();
        return false;
      }
      const body = await res.json() as {
        source: { connected: boolean };
        hearts: { id: string; status: string }[];
      };
      return body.source.connected &&
        body.hearts.find((h) => h.id === heart)?.status === "healthy";
    } catch {
      return false;
    }
  }, 1000);
}

const NODE_EPISODES = (w: IncidentWorld) =>
  `/api/v1/hearts/kube-node-lease/${w.node.name}/episodes`;
const SOURCE_EPISODES = "/api/v1/source/episodes";
/** How long a frozen API server or etcd stays frozen: under the 40 s node Lease. */
const FREEZE_MS = 30_000;

/** The scripted incidents, in the order they run. */
export const INCIDENTS: {
  name: string;
  expected: DiagnosisCause;
  run(world: IncidentWorld): Promise<IncidentResult>;
}[] = [
  {
    name: "kubelet SIGSTOP",
    expected: "kubelet",
    async run(world) {
      const t0 = Date.now();
      world.node.pauseKubelet();
      try {
        const e = await diagnosed(world, NODE_EPISODES(world), t0, 60_000);
        return result(this.name, this.expected, t0, e);
      } finally {
        world.node.resumeKubelet();
      }
    },
  },
  {
    name: "kubelet's connection blackholed",
    expected: "network",
    async run(world) {
      const port = new URL(world.cluster.server).port;
      const conns = await findConnections("kubelet", Number(port));
      if (conns.length === 0) {
        throw new Error("the kubelet holds no connection");
      }
      // Dropped where they arrive, as a blackhole on the path would: a drop
      // in OUTPUT fails the send itself (EPERM), and the kernel counts no
      // retransmit for a segment that never left. New connections on the
      // loopback are refused too: a kubelet whose renewal fails closes its
      // connections and dials again (the control plane's components keep
      // theirs; Earthworm's pods come over the node's bridge).
      const rules = [
        [
          "INPUT",
          "-i",
          "lo",
          "-p",
          "tcp",
          "--dport",
          port,
          "--syn",
          "-j",
          "DROP",
        ],
        ...conns.flatMap((c) => [
          [
            "INPUT",
            "-i",
            "lo",
            "-p",
            "tcp",
            "--sport",
            String(c.lport),
            "--dport",
            port,
            "-j",
            "DROP",
          ],
          [
            "INPUT",
            "-i",
            "lo",
            "-p",
            "tcp",
            "--sport",
            port,
            "--dport",
            String(c.lport),
            "-j",
            "DROP",
          ],
        ]),
      ];
      const t0 = Date.now();
      for (const r of rules) await sh("iptables", ["-w", "-I", ...r]);
      try {
        const e = await diagnosed(world, NODE_EPISODES(world), t0, 60_000);
        return result(this.name, this.expected, t0, e);
      } finally {
        for (const r of rules) {
          await sh("iptables", ["-w", "-D", ...r]).catch(() => {});
        }
      }
    },
  },
  {
    name: "kube-apiserver SIGSTOP (30 s)",
    expected: "apiserver",
    async run(world) {
      return await freeze(world, "kube-apiserver", this.name, this.expected);
    },
  },
  {
    name: "etcd SIGSTOP (30 s)",
    expected: "apiserver",
    async run(world) {
      return await freeze(world, "etcd", this.name, this.expected);
    },
  },
  {
    name: "Earthworm's connection to the API server cut",
    expected: "observer",
    async run(world) {
      const port = new URL(world.cluster.server).port;
      const rule = [
        "INPUT",
        "-i",
        world.node.bridge,
        "-p",
        "tcp",
        "--dport",
        port,
        "-j",
        "DROP",
      ];
      const t0 = Date.now();
      await sh("iptables", ["-w", "-I", ...rule]);
      try {
        await sleep(FREEZE_MS);
      } finally {
        await sh("iptables", ["-w", "-D", ...rule]).catch(() => {});
      }
      const e = await diagnosed(
        world,
        SOURCE_EPISODES,
        t0,
        90_000,
        (e) => e.end !== null,
      );
      return result(this.name, this.expected, t0, e);
    },
  },
];

/**
 * Freezes `process` for {@linkcode FREEZE_MS}: Earthworm is blind meanwhile
 * (it reads the same API server, and cannot hold its election Lease), so the
 * verdict is the episode of its blindness, once the renewals that waited on
 * the node are answered and reported.
 */
async function freeze(
  world: IncidentWorld,
  process: "kube-apiserver" | "etcd",
  name: string,
  expected: DiagnosisCause,
): Promise<IncidentResult> {
  const pid = pidOf(world.cluster, process);
  const t0 = Date.now();
  Deno.kill(pid, "SIGSTOP");
  try {
    await sleep(FREEZE_MS);
  } finally {
    Deno.kill(pid, "SIGCONT");
  }
  const e = await diagnosed(
    world,
    SOURCE_EPISODES,
    t0,
    90_000,
    (e) => e.end !== null && e.cause === expected,
  ) ?? await diagnosed(world, SOURCE_EPISODES, t0, 1000);
  return result(name, expected, t0, e);
}
