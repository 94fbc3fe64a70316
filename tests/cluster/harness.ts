/**
 * Test harness for the real control plane of `tests/cluster/cluster.sh`:
 * start a private cluster (its own ports and state dir), create kwok nodes,
 * stop one node's renewals, restart, freeze and thaw kube-apiserver, compact
 * etcd, and stop it all again. Tests gate on {@linkcode clusterPrereq}.
 *
 * @module
 */

import { onPath, type Prereq, prereq } from "../prereq.ts";

export { onPath };
import type { RestConfig } from "../../kube/rest_client.ts";

const HERE = new URL(".", import.meta.url).pathname;
const SCRIPT = `${HERE}cluster.sh`;

/** Pinned versions; keep in step with build.sh. */
const VERSIONS = "k8s-v1.34.4-kwok-v0.8.0-etcd-v3.6.16";

/** The directory build.sh installs binaries into. */
export function clusterBinDir(): string {
  const explicit = Deno.env.get("EARTHWORM_CLUSTER_BIN");
  if (explicit) return explicit;
  const cache = Deno.env.get("EARTHWORM_CACHE") ??
    `${Deno.env.get("HOME") ?? "/root"}/.cache/earthworm`;
  return `${cache}/cluster/${VERSIONS}/bin`;
}

function built(): boolean {
  const bin = clusterBinDir();
  return [
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet",
    "kubectl",
    "kwok",
  ]
    .every((b) => {
      try {
        return Deno.statSync(`${bin}/${b}`).isFile;
      } catch {
        return false;
      }
    });
}

/** Why the control plane cannot run here, or null when it can. */
export function clusterMissing(): string | null {
  for (const tool of ["openssl", "curl", "bash"]) {
    if (!onPath(tool)) {
      return `${tool} is not installed: install it with apt-get`;
    }
  }
  if (built()) return null;
  if (!onPath("go")) {
    return `Go is not installed and no control plane is cached in ${clusterBinDir()}: install Go 1.24+ and run tests/cluster/build.sh`;
  }
  return null;
}

/** Prerequisite of `cluster: ` tests: skips on laptops without Go, fails under CI. */
export function clusterPrereq(): Prereq {
  return prereq("a Kubernetes control plane", clusterMissing());
}

/** Options of {@linkcode startCluster}. */
export interface ClusterOptions {
  /** kube-apiserver port; the next six are used too (three by a real node). Default: a free one. */
  port?: number;
  /** State directory; default a fresh temporary one, removed by stop(). */
  dir?: string;
  /** kube-controller-manager's --node-monitor-grace-period (default 40s). */
  nodeGrace?: string;
  /** kwok's node lease duration in seconds (default 40; renewals every quarter). */
  nodeLeaseSeconds?: number;
}

/** A running private control plane. */
export interface Cluster {
  dir: string;
  kubeconfigPath: string;
  server: string;
  /** Admin credentials for the light REST client. */
  rest: RestConfig;
  /** Runs kubectl against the cluster and returns its stdout. */
  kubectl(args: string[], stdin?: string): Promise<string>;
  /** Creates `n` kwok nodes named `<prefix>-<i>`; kwok starts renewing their Leases. */
  createNodes(n: number, prefix?: string): Promise<string[]>;
  /** Makes kwok stop renewing one node's Lease (the node stays). */
  stopNodeRenewals(node: string): Promise<void>;
  /** Stops kube-apiserver (SIGTERM). */
  stopApiserver(): Promise<void>;
  /** Starts kube-apiserver and waits for /readyz. */
  startApiserver(): Promise<void>;
  /** Stops kube-apiserver, waits `downMs`, starts it again. */
  restartApiserver(downMs?: number): Promise<void>;
  /**
   * Freezes kube-apiserver with SIGSTOP: its sockets stay open and new
   * connections are accepted by the kernel, but nothing answers.
   */
  freezeApiserver(): void;
  /** Thaws a frozen kube-apiserver with SIGCONT. */
  thawApiserver(): void;
  /** Compacts etcd at its current revision; returns that revision. */
  compactEtcd(): Promise<number>;
  /** Stops every process and removes a temporary state dir. */
  stop(): Promise<void>;
}

function freePort(): number {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20000 + Math.floor(Math.random() * 9000);
    const listeners: Deno.Listener[] = [];
    try {
      // The control plane uses four ports, a real node (node.ts) three more.
      for (let p = base; p < base + 7; p++) {
        listeners.push(Deno.listen({ hostname: "127.0.0.1", port: p }));
      }
      return base;
    } catch {
      // one of them is taken: try another range
    } finally {
      for (const l of listeners) l.close();
    }
  }
  throw new Error("Cannot find seven free consecutive ports on 127.0.0.1");
}

/** Runs `cmd` to completion and returns its stdout; throws with its stderr on failure. */
export async function run(
  cmd: string,
  args: string[],
  env: Record<string, string>,
  stdin?: string,
): Promise<string> {
  const child = new Deno.Command(cmd, {
    args,
    env,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const out = await child.output();
  const stdout = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    const stderr = new TextDecoder().decode(out.stderr);
    throw new Error(
      `${cmd} ${args.join(" ")} failed (exit ${out.code}): ${
        stderr.trim().slice(-2000)
      }`,
    );
  }
  return stdout;
}

/** The manifest of a Node that kwok manages (renews its Lease, fakes its status). */
export function kwokNode(name: string) {
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: {
      name,
      labels: { "earthworm.dev/kwok": "true", type: "kwok" },
      annotations: { "kwok.x-k8s.io/node": "fake" },
    },
    spec: {
      taints: [{
        key: "kwok.x-k8s.io/node",
        value: "fake",
        effect: "NoSchedule",
      }],
    },
  };
}

/** Starts a private control plane; call stop() when done (even on failure). */
export async function startCluster(
  opts: ClusterOptions = {},
): Promise<Cluster> {
  const port = opts.port ?? freePort();
  const temporary = opts.dir === undefined;
  const dir = opts.dir ??
    await Deno.makeTempDir({ prefix: `earthworm-cluster-${port}-` });
  const env: Record<string, string> = {
    EARTHWORM_CLUSTER_PORT: String(port),
    EARTHWORM_CLUSTER_DIR: dir,
    EARTHWORM_NODE_GRACE: opts.nodeGrace ?? "40s",
    EARTHWORM_NODE_LEASE_SECONDS: String(opts.nodeLeaseSeconds ?? 40),
  };
  const script = (cmd: string) => run("bash", [SCRIPT, cmd], env);
  let frozen: number | undefined;
  const apiserverPid = () =>
    Number(Deno.readTextFileSync(`${dir}/pids/kube-apiserver.pid`).trim());
  const thaw = () => {
    if (frozen === undefined) return;
    try {
      Deno.kill(frozen, "SIGCONT");
    } catch {
      // it is gone already
    }
    frozen = undefined;
  };
  const stop = async () => {
    thaw();
    await script("down");
    if (temporary) await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  try {
    await script("up");
  } catch (err) {
    await stop().catch(() => {});
    throw err;
  }
  const kubeconfigPath = `${dir}/admin.kubeconfig`;
  const kubectlBin = `${clusterBinDir()}/kubectl`;
  const kubectl = (args: string[], stdin?: string) =>
    run(kubectlBin, ["--kubeconfig", kubeconfigPath, ...args], {}, stdin);
  const read = (f: string) => Deno.readTextFileSync(`${dir}/certs/${f}`);
  return {
    dir,
    kubeconfigPath,
    server: `https://127.0.0.1:${port}`,
    rest: {
      server: `https://127.0.0.1:${port}`,
      caCerts: [read("ca.crt")],
      cert: read("admin.crt"),
      key: read("admin.key"),
    },
    kubectl,
    async createNodes(n, prefix = "kwok-node") {
      const names = Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
      const items = names.map(kwokNode);
      await kubectl(
        ["create", "-f", "-"],
        JSON.stringify({ apiVersion: "v1", kind: "List", items }),
      );
      return names;
    },
    async stopNodeRenewals(node) {
      // kwok manages nodes by this label; without it kwok releases the
      // node's Lease and stops renewing it, like a kubelet that died.
      await kubectl(["label", "node", node, "earthworm.dev/kwok-"]);
    },
    stopApiserver: () => script("stop-apiserver").then(() => {}),
    startApiserver: () => script("start-apiserver").then(() => {}),
    async restartApiserver(downMs = 0) {
      await script("stop-apiserver");
      if (downMs > 0) await new Promise((r) => setTimeout(r, downMs));
      await script("start-apiserver");
    },
    freezeApiserver() {
      if (frozen !== undefined) return;
      const pid = apiserverPid();
      Deno.kill(pid, "SIGSTOP");
      frozen = pid;
    },
    thawApiserver: thaw,
    async compactEtcd() {
      return Number((await script("compact")).trim());
    },
    stop,
  };
}
