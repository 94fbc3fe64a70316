/**
 * A real node for the test cluster of `harness.ts`: containerd with a private
 * CNI bridge, a kubelet registered as `system:node:<name>`, and
 * kube-scheduler, all started and stopped by `tests/cluster/node.sh`. Tests
 * gate on {@linkcode realNodePrereq}; `Cluster.stop()` stops the node too.
 *
 * ```ts
 * const cluster = await startCluster();
 * try {
 *   const node = await startRealNode(cluster);
 *   await node.importImage("/path/to/image.tar");
 * } finally {
 *   await cluster.stop();
 * }
 * ```
 *
 * @module
 */

import { type Cluster, clusterMissing, onPath, run } from "./harness.ts";
import { type Prereq, prereq, rootMissing } from "../prereq.ts";

const HERE = new URL(".", import.meta.url).pathname;
const SCRIPT = `${HERE}node.sh`;

/** containerd's sandbox image, built from `images/pause.c`. */
export const PAUSE_IMAGE = "localhost/earthworm-test/pause:v1";
/** The test image of `images/probe/`: `serve PORT` or `whoami`. */
export const PROBE_IMAGE = "localhost/earthworm-test/probe:v1";

function executable(path: string): boolean {
  try {
    const info = Deno.statSync(path);
    return info.isFile && ((info.mode ?? 0o111) & 0o111) !== 0;
  } catch {
    return false;
  }
}

/** Why a real node cannot run here, or null when it can. */
export function realNodeMissing(): string | null {
  const cluster = clusterMissing();
  if (cluster !== null) return cluster;
  const root = rootMissing();
  if (root !== null) return `a real node ${root}`;
  const tools: [string, string][] = [
    ["containerd", "containerd"],
    ["ctr", "containerd"],
    ["containerd-shim-runc-v2", "containerd"],
    ["runc", "runc"],
    ["ip", "iproute2"],
    ["iptables", "iptables"],
    ["iptables-save", "iptables"],
    ["umoci", "umoci"],
    ["gcc", "gcc libc6-dev"],
    ["tar", "tar"],
  ];
  for (const [tool, pkg] of tools) {
    if (!onPath(tool)) {
      return `${tool} is not installed: install it with apt-get install ${pkg}`;
    }
  }
  const cni = Deno.env.get("EARTHWORM_CNI_BIN") ?? "/usr/lib/cni";
  for (const plugin of ["bridge", "host-local", "loopback"]) {
    if (!executable(`${cni}/${plugin}`)) {
      return `CNI plugin "${cni}/${plugin}" is missing: apt-get install containernetworking-plugins (or set EARTHWORM_CNI_BIN)`;
    }
  }
  if (!onPath("go")) {
    // The probe image is a Go program; kubelet and kube-scheduler build from Go too.
    return "Go is not installed: install Go 1.24+ (the node's test image and kubelet build from Go)";
  }
  return null;
}

/** Prerequisite of `cluster: ` tests on a real node: skips without root or containerd, fails under CI. */
export function realNodePrereq(): Prereq {
  return prereq(
    "a real Kubernetes node (root, containerd, CNI plugins, a control plane)",
    realNodeMissing(),
  );
}

/** Options of {@linkcode startRealNode}. */
export interface RealNodeOptions {
  /** Node name (default "earthworm-node"). */
  name?: string;
}

/** A running real node of a test cluster. */
export interface RealNode {
  /** The Node's name (`system:node:<name>` is the kubelet's user). */
  name: string;
  /** The private bridge pods attach to (`ewbr<port>`). */
  bridge: string;
  /** The pods' /24, e.g. `100.82.30.0/24`. */
  podCidr: string;
  /** The bridge's address: the node's InternalIP, where the kubelet listens. */
  nodeIp: string;
  /** The kubelet's HTTPS port on {@linkcode RealNode.nodeIp}. */
  kubeletPort: number;
  /** containerd's socket (for `ctr --address`). */
  containerdAddress: string;
  /** Milliseconds from `node.sh up` until the node was Ready. */
  readyMs: number;
  /** Milliseconds from `node.sh up` until the node's Lease existed (a new node's first Lease waits one renew interval). */
  leaseMs: number;
  /** The kubelet's pid (it changes when the kubelet restarts). */
  kubeletPid(): number;
  /** Imports an OCI or Docker image archive into containerd's `k8s.io` namespace; returns the image names. */
  importImage(archive: string): Promise<string[]>;
  /** Freezes the kubelet with SIGSTOP: its Lease renewals stop, its process stays. */
  pauseKubelet(): void;
  /** Thaws a paused kubelet with SIGCONT. */
  resumeKubelet(): void;
  /** Stops the kubelet (SIGTERM, SIGCONT first); its pods keep running. */
  stopKubelet(): Promise<void>;
  /** Starts the kubelet again and waits for its /healthz. */
  startKubelet(): Promise<void>;
  /** Stops and starts the kubelet; returns the new pid. */
  restartKubelet(): Promise<number>;
  /** What a stopped node left behind (processes, mounts, bridge, iptables, cgroups), or null. */
  leftovers(): Promise<string | null>;
  /** Stops the node and removes what it made; throws if anything is left. */
  stop(): Promise<void>;
}

/** The directory holding the test images' OCI archives (`pause.tar`, `probe.tar`), built if needed. */
export async function nodeImagesDir(): Promise<string> {
  return (await run("bash", [`${HERE}images/build.sh`], {})).trim();
}

/**
 * Starts a real node in `cluster` and resolves once the node is Ready and its
 * Lease exists. Stop it
 * with `cluster.stop()` (or `node.stop()` first).
 */
export async function startRealNode(
  cluster: Cluster,
  opts: RealNodeOptions = {},
): Promise<RealNode> {
  const env: Record<string, string> = {
    EARTHWORM_CLUSTER_PORT: new URL(cluster.server).port,
    EARTHWORM_CLUSTER_DIR: cluster.dir,
  };
  if (opts.name !== undefined) env.EARTHWORM_NODE_NAME = opts.name;
  const script = (...args: string[]) => run("bash", [SCRIPT, ...args], env);
  const parse = (out: string) =>
    Object.fromEntries(
      out.trim().split("\n").map((line) => {
        const eq = line.indexOf("=");
        return [line.slice(0, eq), line.slice(eq + 1)];
      }),
    );
  const timing = parse(await script("up"));
  const vars = parse(await script("env"));
  const pidFile = `${cluster.dir}/pids/kubelet.pid`;
  const kubeletPid = () => {
    const pid = Number(Deno.readTextFileSync(pidFile).trim());
    if (!Number.isInteger(pid) || pid <= 0) {
      throw new Error(`Cannot read the kubelet's pid from "${pidFile}"`);
    }
    return pid;
  };
  const node: RealNode = {
    name: vars.NODE_NAME ?? "",
    bridge: vars.BRIDGE ?? "",
    podCidr: vars.POD_CIDR ?? "",
    nodeIp: vars.GATEWAY ?? "",
    kubeletPort: Number(vars.KUBELET_PORT),
    containerdAddress: vars.CONTAINERD_ADDRESS ?? "",
    readyMs: Number(timing.READY_MS),
    leaseMs: Number(timing.LEASE_MS),
    kubeletPid,
    async importImage(archive) {
      const out = await script("import", archive);
      return [...out.matchAll(/^unpacking (\S+) \(/gm)].map((m) => m[1] ?? "");
    },
    pauseKubelet: () => Deno.kill(kubeletPid(), "SIGSTOP"),
    resumeKubelet: () => Deno.kill(kubeletPid(), "SIGCONT"),
    stopKubelet: () => script("stop-kubelet").then(() => {}),
    startKubelet: () => script("start-kubelet").then(() => {}),
    async restartKubelet() {
      await script("stop-kubelet");
      await script("start-kubelet");
      return kubeletPid();
    },
    async leftovers() {
      const out = await new Deno.Command("bash", {
        args: [SCRIPT, "leftovers"],
        env,
        stdin: "null",
      }).output();
      const text = new TextDecoder().decode(out.stdout).trim();
      return out.success
        ? null
        : text || `node.sh leftovers failed (exit ${out.code})`;
    },
    stop: () => script("down").then(() => {}),
  };
  return node;
}
