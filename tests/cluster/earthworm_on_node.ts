/**
 * Earthworm deployed on the real test node: the agent's process on the host,
 * its BPF programs, and a `kubectl port-forward` to the DaemonSet that is
 * opened again when it breaks. Shared by the real-node and diagnosis tests.
 *
 * @module
 */

import type { Cluster } from "./harness.ts";
import { clusterBinDir } from "./harness.ts";
import { LineProcess } from "../line_process.ts";
import { until } from "../wait.ts";

/** BPF programs of Earthworm loaded on this machine (names from the two objects). */
export async function earthwormPrograms(): Promise<string[]> {
  const out = await new Deno.Command("bpftool", {
    args: ["prog", "list", "--json"],
    stdout: "piped",
  }).output();
  const progs = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    name?: string;
  }[];
  return progs.map((p) => p.name ?? "").filter((n) =>
    n.startsWith("ew_") || n.startsWith("gotls_")
  );
}

/** The agent's own process on this host (hostPID), found by its command line. */
export function agentPid(): number | undefined {
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const cmd = Deno.readTextFileSync(`/proc/${entry.name}/cmdline`);
      if (cmd.includes("/opt/earthworm/") && cmd.includes("\0agent\0")) {
        return Number(entry.name);
      }
    } catch {
      // gone
    }
  }
  return undefined;
}

export function rssMiB(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

export function cpuTicks(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]); // utime + stime
}

/** Microseconds from `a` to `b`, RFC 3339 times with six fraction digits. */
export function microsBetween(a: string, b: string): number {
  const micros = (s: string) =>
    Date.parse(s) * 1000 +
    Number((/\.(\d+)Z$/.exec(s)?.[1] ?? "").padEnd(6, "0").slice(3, 6));
  return micros(b) - micros(a);
}

/**
 * `kubectl -n earthworm port-forward daemonset/earthworm`, opened again
 * when it breaks (a new pod, a restarted kubelet: the forward goes through
 * the kubelet's streaming server).
 */
export class Forward implements AsyncDisposable {
  #proc: LineProcess | null = null;
  #url: string | null = null;
  constructor(readonly cluster: Cluster) {}

  async url(): Promise<string> {
    if (this.#url) return this.#url;
    await this.#proc?.[Symbol.asyncDispose]();
    this.#proc = new LineProcess(`${clusterBinDir()}/kubectl`, [
      "--kubeconfig",
      this.cluster.kubeconfigPath,
      "-n",
      "earthworm",
      "port-forward",
      "--address",
      "127.0.0.1",
      "daemonset/earthworm",
      "0:8080",
    ]);
    const port = await this.#proc.waitFor(
      "kubectl port-forward to listen",
      30_000,
      (lines) =>
        lines.map((l) => /Forwarding from 127\.0\.0\.1:(\d+)/.exec(l.text)?.[1])
          .find((p) => p !== undefined),
    );
    this.#url = `http://127.0.0.1:${port}`;
    return this.#url;
  }

  /** GETs `path` as JSON; undefined (and a new forward next time) when it fails. */
  async get<T>(path: string): Promise<T | undefined> {
    try {
      const res = await fetch(`${await this.url()}${path}`);
      if (!res.ok) {
        await res.body?.cancel();
        return undefined;
      }
      return await res.json() as T;
    } catch {
      this.#url = null;
      return undefined;
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.#proc?.[Symbol.asyncDispose]();
  }
}

/** Earthworm running on the real node with exact pairing, read by pod IP. */
export interface DeployedEarthworm {
  /** Base URL of the agent, by its pod IP (reachable from the host over the bridge). */
  agent: string;
  /** Removes it again (kubectl delete -f). */
  remove(): Promise<void>;
}

/**
 * Applies `manifest` (the image must be imported already), grants the
 * README's exact-pairing capability, and waits until the agent leads and
 * pairs the node's renewals exactly.
 */
export async function deployExact(
  cluster: Cluster,
  manifest: string,
): Promise<DeployedEarthworm> {
  await cluster.kubectl(["apply", "-f", manifest]);
  await cluster.kubectl([
    "-n",
    "earthworm",
    "patch",
    "daemonset",
    "earthworm",
    "--type",
    "json",
    "-p",
    '[{"op":"add","path":"/spec/template/spec/containers/0/securityContext/capabilities/add/-","value":"SYS_ADMIN"}]',
  ]);
  const agent = await until("the agent to pair exactly", 240_000, async () => {
    const pods = JSON.parse(
      await cluster.kubectl(["-n", "earthworm", "get", "pods", "-o", "json"]),
    ).items as {
      metadata: { deletionTimestamp?: string };
      spec: {
        containers: {
          securityContext?: { capabilities?: { add?: string[] } };
        }[];
      };
      status?: { podIP?: string; phase?: string };
    }[];
    const pod = pods.find((p) =>
      !p.metadata.deletionTimestamp &&
      p.spec.containers[0]?.securityContext?.capabilities?.add?.includes(
        "SYS_ADMIN",
      ) && p.status?.podIP
    );
    if (!pod) return undefined;
    const url = `http://${pod.status!.podIP}:8080`;
    try {
      const res = await fetch(`${url}/api/v1/hearts`, {
        signal: AbortSignal.timeout(2000),
      });
      if (!res.ok) {
        await res.body?.cancel();
        return undefined;
      }
      const h = await res.json() as { source: { wire?: { pairing?: string } } };
      return h.source.wire?.pairing?.includes("exactly on 1 of 1")
        ? url
        : undefined;
    } catch {
      return undefined;
    }
  }, 1000);
  return {
    agent,
    async remove() {
      await cluster.kubectl(["delete", "-f", manifest, "--wait=true"]);
    },
  };
}
