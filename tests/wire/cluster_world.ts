/**
 * Harness of the wire end-to-end test and benchmark: a private real control
 * plane (tests/cluster), Earthworm's ServiceAccount with its RBAC and tokens,
 * kubelet-like processes that renew their node Lease over one keep-alive
 * HTTPS connection (tests/wire/lease_kubelet.ts, run under a binary named
 * like the kubelet so the kernel's comm matches), and `earthworm agent`
 * processes, optionally as an unprivileged user.
 *
 * @module
 */

import { type Cluster, startCluster } from "../cluster/harness.ts";
import { readFullSse, type SseMessage } from "../sse_client.ts";
import { collectLines } from "../earthworm_process.ts";
import type { WireEvent, WireExchange } from "../../core/api_types.ts";

const HERE = new URL(".", import.meta.url).pathname;
const ROOT = new URL("../..", import.meta.url).pathname;

/** Polls `check` every 50 ms until it returns a value; throws after `timeoutMs`. */
export async function until<T>(
  what: string,
  timeoutMs: number,
  check: () => T | undefined | Promise<T | undefined>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const v = await check();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** A child process whose stdout lines (and stderr text) are collected. */
export class Proc implements AsyncDisposable {
  readonly lines: string[] = [];
  stderr = "";
  readonly pid: number;
  exited = false;
  #child: Deno.ChildProcess;
  #stdin: WritableStreamDefaultWriter<Uint8Array>;
  #reading: Promise<unknown>;

  constructor(
    readonly name: string,
    cmd: string,
    args: string[],
    env: Record<string, string> = {},
    cwd = ROOT,
  ) {
    const child = new Deno.Command(cmd, {
      args,
      env: { NO_COLOR: "1", RUST_BACKTRACE: "0", ...env },
      cwd,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#child = child;
    this.pid = child.pid;
    this.#child.status.then(() => (this.exited = true));
    this.#stdin = this.#child.stdin.getWriter();
    const out = collectLines(child.stdout, this.lines);
    const err = (async () => {
      for await (
        const chunk of child.stderr.pipeThrough(new TextDecoderStream())
      ) this.stderr += chunk;
    })();
    this.#reading = Promise.all([out, err]);
  }

  /** Writes one line to its stdin. */
  send(line: string): Promise<void> {
    return this.#stdin.write(new TextEncoder().encode(line + "\n"));
  }

  /** Sends SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code. */
  async stop(graceMs = 10_000): Promise<number> {
    const kill = (sig: Deno.Signal) => {
      try {
        this.#child.kill(sig);
      } catch {
        // already exited
      }
    };
    kill("SIGTERM");
    const timer = setTimeout(() => kill("SIGKILL"), graceMs);
    const status = await this.#child.status;
    clearTimeout(timer);
    await this.#stdin.close().catch(() => {});
    await this.#reading.catch(() => {});
    return status.code;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop(2000).then(() => {});
  }
}

/** A kubelet-like process renewing its node Lease. */
export class FakeKubelet extends Proc {
  /** Local ports of the connections it opened, in order. */
  get ports(): number[] {
    return this.lines.filter((l) => l.startsWith("open ")).map((l) =>
      Number(l.slice(5))
    );
  }

  /** renewTimes (epoch ms) of answered renewals, with their local port. */
  get renewals(): { port: number; renewTime: number }[] {
    return this.lines.flatMap((l) => {
      const m = /^renew (\d+) 200 (\S+)$/.exec(l);
      return m ? [{ port: Number(m[1]), renewTime: Date.parse(m[2]!) }] : [];
    });
  }
}

/** A running `earthworm agent`. */
export class Agent extends Proc {
  url = "";

  /** GETs a JSON document from the agent. */
  async json<T>(path: string): Promise<T> {
    const res = await fetch(`${this.url}${path}`);
    const text = await res.text();
    if (!res.ok) throw new Error(`GET ${path}: ${res.status} ${text}`);
    return JSON.parse(text) as T;
  }

  /** GETs /metrics and returns the value of the first sample matching `name{labels}`. */
  async metric(
    name: string,
    labels: RegExp = /.*/,
  ): Promise<number | undefined> {
    const res = await fetch(`${this.url}/metrics`);
    const text = await res.text();
    for (const line of text.split("\n")) {
      const m = /^([a-z_]+)(\{.*\})? (\S+)$/.exec(line);
      if (m && m[1] === name && labels.test(m[2] ?? "")) return Number(m[3]);
    }
    return undefined;
  }
}

/** Settings of {@linkcode WireWorld.agent}. */
export interface AgentSettings {
  identity: string;
  node: string;
  comm: string;
  /** Run as `nobody` through setpriv, from a bundle in a world-readable dir. */
  unprivileged?: boolean;
  extraArgs?: string[];
}

/** The cluster, credentials, kubelets and agents of one test. */
export class WireWorld implements AsyncDisposable {
  /** Readable by anyone: tokens, kubeconfig, kubelet binaries, the bundle. */
  readonly dir: string;
  readonly cluster: Cluster;
  readonly apiPort: number;
  #procs: Proc[] = [];
  #bundle: string | undefined;

  private constructor(dir: string, cluster: Cluster) {
    this.dir = dir;
    this.cluster = cluster;
    this.apiPort = Number(new URL(cluster.server).port);
  }

  /**
   * Starts a cluster, creates the `earthworm` ServiceAccount with RBAC to
   * read and write Leases and create TokenReviews, and writes into `dir`:
   * `kubeconfig` (that ServiceAccount's credentials), `token-default-audience`
   * and `token-other-user` (a different ServiceAccount, right audience).
   * Each agent gets `token-<node>` (see {@linkcode WireWorld.agent}).
   */
  static async start(): Promise<WireWorld> {
    const dir = await Deno.makeTempDir({ prefix: "earthworm-wire-e2e-" });
    await Deno.chmod(dir, 0o755);
    let cluster: Cluster | undefined;
    try {
      cluster = await startCluster();
      const world = new WireWorld(dir, cluster);
      await world.#credentials();
      return world;
    } catch (err) {
      await cluster?.stop().catch(() => {});
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      throw err;
    }
  }

  async #credentials(): Promise<void> {
    const k = this.cluster.kubectl;
    await k(["apply", "-f", "-"], JSON.stringify(RBAC));
    const token = async (sa: string, audience?: string) =>
      (await k([
        "create",
        "token",
        sa,
        "-n",
        "earthworm",
        "--duration",
        "2h",
        ...(audience ? ["--audience", audience] : []),
      ])).trim();
    const write = (name: string, text: string) =>
      Deno.writeTextFile(`${this.dir}/${name}`, text, { mode: 0o644 });
    await write("token-default-audience", await token("earthworm"));
    await write("token-other-user", await token("other", "earthworm"));
    const rest = this.cluster.rest;
    const b64 = (s: string) => btoa(s);
    await write(
      "kubeconfig",
      JSON.stringify({
        apiVersion: "v1",
        kind: "Config",
        clusters: [{
          name: "e2e",
          cluster: {
            server: rest.server,
            "certificate-authority-data": b64(rest.caCerts?.[0] ?? ""),
          },
        }],
        users: [{
          name: "earthworm",
          user: { token: await token("earthworm") },
        }],
        contexts: [{
          name: "e2e",
          context: { cluster: "e2e", user: "earthworm" },
        }],
        "current-context": "e2e",
      }),
    );
  }

  /**
   * Writes `token-<node>`: what the agent on `node` presents to the leader,
   * its pod's projected token (audience "earthworm"), bound to a pod
   * scheduled on that node, as a DaemonSet's pod is, so the TokenReview names
   * the node.
   */
  async nodeToken(node: string): Promise<string> {
    const file = `${this.dir}/token-${node}`;
    try {
      await Deno.stat(file);
      return file;
    } catch { /* not yet */ }
    const k = this.cluster.kubectl;
    const pod = `earthworm-${node}`;
    await k(
      ["apply", "-f", "-"],
      JSON.stringify({
        apiVersion: "v1",
        kind: "List",
        items: [
          { apiVersion: "v1", kind: "Node", metadata: { name: node } },
          {
            apiVersion: "v1",
            kind: "Pod",
            metadata: { name: pod, namespace: "earthworm" },
            spec: {
              serviceAccountName: "earthworm",
              nodeName: node,
              containers: [{ name: "agent", image: "earthworm:e2e" }],
            },
          },
        ],
      }),
    );
    const token = (await k([
      "create",
      "token",
      "earthworm",
      "-n",
      "earthworm",
      "--duration",
      "2h",
      "--audience",
      "earthworm",
      "--bound-object-kind",
      "Pod",
      "--bound-object-name",
      pod,
    ])).trim();
    await Deno.writeTextFile(file, token, { mode: 0o644 });
    return file;
  }

  /** Reads a file this world wrote into its dir. */
  read(name: string): string {
    return Deno.readTextFileSync(`${this.dir}/${name}`).trim();
  }

  /**
   * Starts a kubelet-like process named `comm` renewing the Lease of `node`
   * every `intervalMs`, with the admin's client certificate, and waits for
   * its first answered renewal.
   */
  async kubelet(
    comm: string,
    node: string,
    intervalMs = 1000,
  ): Promise<FakeKubelet> {
    const exe = `${this.dir}/${comm}`;
    await Deno.symlink(Deno.execPath(), exe);
    const certs = `${this.cluster.dir}/certs`;
    const k = new FakeKubelet(comm, exe, [
      "run",
      "--allow-net",
      "--allow-read",
      `${HERE}lease_kubelet.ts`,
      "--port",
      String(this.apiPort),
      "--ca",
      `${certs}/ca.crt`,
      "--cert",
      `${certs}/admin.crt`,
      "--key",
      `${certs}/admin.key`,
      "--node",
      node,
      "--interval",
      String(intervalMs),
    ]);
    this.#procs.push(k);
    await until(`kubelet "${comm}" to renew its Lease`, 30_000, () => {
      if (k.exited) throw new Error(`kubelet "${comm}" exited: ${k.stderr}`);
      return k.renewals.length > 0 || undefined;
    });
    return k;
  }

  /** Starts `earthworm agent` for `node` and waits until it listens. */
  async agent(s: AgentSettings): Promise<Agent> {
    const args = [
      "agent",
      "--kubeconfig",
      `${this.dir}/kubeconfig`,
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      "--identity",
      s.identity,
      "--token-file",
      await this.nodeToken(s.node),
      "--apiserver-port",
      String(this.apiPort),
      "--comm",
      s.comm,
      "--retry-period",
      "1",
      // The tests read each node's RTT series.
      "--per-heart-metrics",
      ...(s.extraArgs ?? []),
    ];
    const env = { NODE_NAME: s.node };
    let agent: Agent;
    if (s.unprivileged) {
      const home = await Deno.makeTempDir({
        dir: this.dir,
        prefix: "nobody-",
      });
      await Deno.chmod(home, 0o777);
      agent = new Agent(
        s.identity,
        "setpriv",
        [
          "--reuid=65534",
          "--regid=65534",
          "--clear-groups",
          "--inh-caps=-all",
          Deno.execPath(),
          "run",
          "-A",
          "--no-lock",
          await this.#bundled(),
          ...args,
        ],
        { ...env, HOME: home, DENO_DIR: `${home}/deno` },
        home,
      );
    } else {
      agent = new Agent(s.identity, Deno.execPath(), [
        "run",
        "-A",
        `${ROOT}main.ts`,
        ...args,
      ], env);
    }
    this.#procs.push(agent);
    agent.url = await until(`agent ${s.identity} to listen`, 60_000, () => {
      if (agent.exited) {
        throw new Error(`agent ${s.identity} exited: ${agent.stderr}`);
      }
      return /listening on (http:\/\/[^\s/]+)/.exec(agent.stderr)?.[1];
    });
    return agent;
  }

  /** main.ts as one file in the world-readable dir (`nobody` cannot read root's Deno cache). */
  async #bundled(): Promise<string> {
    if (this.#bundle) return this.#bundle;
    const out = `${this.dir}/earthworm.js`;
    const res = await new Deno.Command(Deno.execPath(), {
      args: ["bundle", "--platform", "deno", "-o", out, `${ROOT}main.ts`],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!res.success) {
      throw new Error(
        `deno bundle failed: ${new TextDecoder().decode(res.stderr)}`,
      );
    }
    await Deno.chmod(out, 0o644);
    return this.#bundle = out;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    for (const p of this.#procs.toReversed()) await p.stop(5000);
    await this.cluster.stop();
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}

/** Earthworm's ServiceAccount and what it may do, plus a second ServiceAccount. */
const RBAC = {
  apiVersion: "v1",
  kind: "List",
  items: [
    { apiVersion: "v1", kind: "Namespace", metadata: { name: "earthworm" } },
    {
      apiVersion: "v1",
      kind: "ServiceAccount",
      metadata: { name: "earthworm", namespace: "earthworm" },
    },
    {
      apiVersion: "v1",
      kind: "ServiceAccount",
      metadata: { name: "other", namespace: "earthworm" },
    },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRole",
      metadata: { name: "earthworm-e2e" },
      rules: [
        {
          apiGroups: ["coordination.k8s.io"],
          resources: ["leases"],
          verbs: ["get", "list", "watch", "create", "update", "patch"],
        },
        {
          apiGroups: ["authentication.k8s.io"],
          resources: ["tokenreviews"],
          verbs: ["create"],
        },
      ],
    },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRoleBinding",
      metadata: { name: "earthworm-e2e" },
      roleRef: {
        apiGroup: "rbac.authorization.k8s.io",
        kind: "ClusterRole",
        name: "earthworm-e2e",
      },
      subjects: [{
        kind: "ServiceAccount",
        name: "earthworm",
        namespace: "earthworm",
      }],
    },
  ],
};

/** A `wire` exchange as an SSE client of the leader received it. */
export interface ReceivedExchange extends WireExchange {
  /** Date.now() when the event arrived at the client. */
  receivedAt: number;
}

/** An SSE message with the time it arrived at the client. */
export type ReceivedMessage = SseMessage & {
  /** Date.now() when the event arrived at the client. */
  receivedAt: number;
};

/** Collects the events of a leader's SSE stream in the background. */
export class WireStream implements AsyncDisposable {
  /** Every exchange of every `wire` event (signals are in `signals`). */
  readonly exchanges: ReceivedExchange[] = [];
  /** Every signal (`pending`, `retransmit`, `reset`, `closed`) of every `wire` event. */
  readonly signals: ReceivedExchange[] = [];
  /** Every event, `wire` events included. */
  readonly events: ReceivedMessage[] = [];
  #abort = new AbortController();
  #done: Promise<void>;

  constructor(url: string) {
    this.#done = (async () => {
      try {
        const res = await fetch(`${url}/api/v1/stream`, {
          signal: this.#abort.signal,
        });
        if (!res.ok) throw new Error(`GET /api/v1/stream: ${res.status}`);
        for await (const msg of readFullSse(res)) {
          const receivedAt = Date.now();
          this.events.push({ ...msg, receivedAt });
          if (msg.event !== "wire") continue;
          const data = JSON.parse(msg.data) as WireEvent;
          for (const x of data.exchanges) {
            (x.signal ? this.signals : this.exchanges).push({
              ...x,
              receivedAt,
            });
          }
        }
      } catch (err) {
        if (!this.#abort.signal.aborted) throw err;
      }
    })();
  }

  /** Exchanges of `node` received so far. */
  of(node: string): ReceivedExchange[] {
    return this.exchanges.filter((x) => x.node === node);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.#abort.abort();
    await this.#done.catch(() => {});
  }
}
