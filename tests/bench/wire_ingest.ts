/**
 * Wire ingest on the leader with 5,000 agents (issue 12, item 3): a script,
 * not part of `deno task bench` (it needs the control plane of
 * `tests/cluster/`), that prints measurements instead of asserting them:
 *
 *   deno run -A tests/bench/wire_ingest.ts [--agents 5000] [--interval 5]
 *     [--exchanges 1] [--seconds 60]
 *
 * 1. Starts a private control plane and `--agents` kwok nodes (their Leases
 *    last an hour, so kwok renews each every 15 minutes: the leader watches
 *    5,000 node Leases, but their renewals cost next to nothing).
 * 2. Issues one real ServiceAccount token per node with TokenRequest
 *    (`earthworm/earthworm`, audience `earthworm`), bound to the node
 *    object: the API server then names the node in each TokenReview
 *    (`authentication.kubernetes.io/node-name`), the leader's first way of
 *    telling which node a token is for.
 * 3. Starts a real leader, `earthworm agent --no-ebpf` on the admin
 *    kubeconfig, and waits until it holds the 5,000 node hearts.
 * 4. From this one process, drives one simulated agent per node, each on
 *    its own keep-alive connection: a report every `--interval` seconds
 *    (random phase) with `--exchanges` exact exchanges of its Lease
 *    renewal, as an agent's feed sends the kubelet's renewal every 10 s and
 *    its node-status read between them. A 429 is honoured (the agent waits
 *    `Retry-After`); a closed connection is opened again and counted.
 * 5. After a warm-up of one interval (every token reviewed once), measures
 *    over `--seconds`: the leader's CPU in cores (utime + stime of
 *    /proc/<pid>/stat), reports accepted per second (by the agents and by
 *    the leader's `earthworm_wire_reports_total`), TokenReviews (the
 *    leader's `earthworm_token_reviews_total` and the API server's audit
 *    log), the leader's VmRSS, report latency, reconnects and the load
 *    average.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { kwokNode, startCluster } from "../cluster/harness.ts";
import { startAgent } from "../agent_observers.ts";
import { KubeRestClient } from "../../kube/rest_client.ts";
import { until } from "../wait.ts";
import type { HeartsResponse } from "../../core/api_types.ts";

const args = parseArgs({
  args: Deno.args,
  options: {
    agents: { type: "string", default: "5000" },
    interval: { type: "string", default: "5" },
    exchanges: { type: "string", default: "1" },
    seconds: { type: "string", default: "60" },
  },
});
const AGENTS = Number(args.values.agents);
const INTERVAL_MS = Number(args.values.interval) * 1000;
const EXCHANGES = Number(args.values.exchanges);
const SECONDS = Number(args.values.seconds);
const NS = "earthworm";
const CLK_TCK = 100;

const enc = new TextEncoder();
const dec = new TextDecoder();

function log(msg: string) {
  console.error(`[${new Date().toISOString().slice(11, 19)}] ${msg}`);
}

function loadavg(): string {
  return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(
    " ",
  );
}

/** utime + stime of a process, in seconds. */
function cpuSeconds(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(
    Deno.readTextFileSync(`/proc/${pid}/status`),
  );
  return Number(m?.[1] ?? NaN) / 1024;
}

/** Runs `fn` over `items` with at most `n` at once. */
async function pool<T>(
  items: T[],
  n: number,
  fn: (item: T, i: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < items.length) {
        const i = next++;
        await fn(items[i]!, i);
      }
    }),
  );
}

function metric(text: string, name: string, labels: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${name}{${labels}}`));
  return Number(line?.split(" ").pop() ?? 0);
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ??
    NaN;
}

/** Counts of what the simulated agents saw. */
const seen = {
  status: new Map<number, number>(),
  reconnects: 0,
  errors: 0,
  latencies: [] as number[],
};

/**
 * One simulated agent on one keep-alive HTTP/1.1 connection: writes a
 * request and reads its answer (status line, headers, a Content-Length or
 * chunked body).
 */
class AgentConnection {
  #conn: Deno.TcpConn | null = null;
  #buf = new Uint8Array(0);

  constructor(readonly port: number) {}

  async #open(): Promise<Deno.TcpConn> {
    if (!this.#conn) {
      this.#conn = await Deno.connect({
        hostname: "127.0.0.1",
        port: this.port,
      });
      this.#buf = new Uint8Array(0);
    }
    return this.#conn;
  }

  close() {
    try {
      this.#conn?.close();
    } catch { /* closed already */ }
    this.#conn = null;
  }

  async #fill(conn: Deno.TcpConn): Promise<boolean> {
    const chunk = new Uint8Array(16 * 1024);
    const n = await conn.read(chunk);
    if (n === null) return false;
    const joined = new Uint8Array(this.#buf.length + n);
    joined.set(this.#buf);
    joined.set(chunk.subarray(0, n), this.#buf.length);
    this.#buf = joined;
    return true;
  }

  /** Sends one request; the response's status and Retry-After. */
  async request(
    head: string,
    body: Uint8Array,
    reused = true,
  ): Promise<{ status: number; retryAfter: number }> {
    const fresh = this.#conn === null;
    const conn = await this.#open();
    // An answer that takes longer than this is an error: the connection goes.
    const timer = setTimeout(() => this.close(), 30_000);
    try {
      const req = enc.encode(head);
      const all = new Uint8Array(req.length + body.length);
      all.set(req);
      all.set(body, req.length);
      let off = 0;
      while (off < all.length) off += await conn.write(all.subarray(off));
      let end: number;
      while ((end = indexOfHeadEnd(this.#buf)) < 0) {
        if (!await this.#fill(conn)) throw new Error("closed");
      }
      const headText = dec.decode(this.#buf.subarray(0, end));
      let rest = this.#buf.subarray(end + 4);
      const status = Number(headText.slice(9, 12));
      const length = /\r\ncontent-length:\s*(\d+)/i.exec(headText);
      const retryAfter = Number(
        /\r\nretry-after:\s*(\d+)/i.exec(headText)?.[1] ?? 0,
      );
      const closing = /\r\nconnection:\s*close/i.test(headText);
      if (length) {
        const want = Number(length[1]);
        this.#buf = rest;
        while (this.#buf.length < want) {
          if (!await this.#fill(conn)) throw new Error("closed");
        }
        this.#buf = this.#buf.slice(want);
      } else if (/\r\ntransfer-encoding:\s*chunked/i.test(headText)) {
        this.#buf = rest;
        while (true) {
          const text = dec.decode(this.#buf);
          const last = text.indexOf("0\r\n\r\n");
          if (last >= 0 && (last === 0 || text[last - 1] === "\n")) {
            this.#buf = this.#buf.slice(last + 5);
            break;
          }
          if (!await this.#fill(conn)) throw new Error("closed");
        }
      } else {
        this.#buf = rest;
        rest = new Uint8Array(0);
      }
      if (closing) this.close();
      return { status, retryAfter };
    } catch (err) {
      this.close();
      // A keep-alive connection the server closed while idle: open another.
      if (reused && !fresh) {
        seen.reconnects++;
        return await this.request(head, body, false);
      }
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }
}

function indexOfHeadEnd(b: Uint8Array): number {
  for (let i = 0; i + 3 < b.length; i++) {
    if (b[i] === 13 && b[i + 1] === 10 && b[i + 2] === 13 && b[i + 3] === 10) {
      return i;
    }
  }
  return -1;
}

function reportBody(node: string, rv: number): Uint8Array {
  const now = Date.now();
  const exchanges = Array.from({ length: EXCHANGES }, (_, i) => ({
    node,
    conn: "10.0.0.2:40000->10.96.0.1:443",
    at: new Date(now - 1000 + i).toISOString(),
    latencyMs: 3.2,
    bytesSent: 720,
    bytesReceived: 640,
    srttUs: 180,
    retransmits: 0,
    resets: 0,
    confidence: "exact",
    lease: `kube-node-lease/${node}`,
    resourceVersion: String(rv),
    status: 200,
  }));
  return enc.encode(JSON.stringify({
    node,
    probe: { available: true, pairing: "exact" },
    exchanges,
  }));
}

async function main() {
  log(`load average ${loadavg()}: starting the control plane`);
  const cluster = await startCluster({
    nodeLeaseSeconds: 3600,
    nodeGrace: "3600s",
  });
  const stops: (() => Promise<unknown>)[] = [() => cluster.stop()];
  const stopAll = async () => {
    for (const s of stops.reverse()) await s().catch(() => {});
  };
  const signal = new AbortController();
  Deno.addSignalListener("SIGINT", () => signal.abort());
  try {
    const api = new KubeRestClient(cluster.rest);
    stops.push(() => Promise.resolve(api[Symbol.dispose]()));
    await cluster.kubectl(["create", "namespace", NS]);
    await cluster.kubectl(["create", "serviceaccount", "earthworm", "-n", NS]);

    let t = performance.now();
    const nodes = Array.from(
      { length: AGENTS },
      (_, i) => `bench-node-${i}`,
    );
    const uids = new Map<string, string>();
    await pool(nodes, 16, async (name) => {
      const node = await api.request<{ metadata: { uid: string } }>(
        "POST",
        "/api/v1/nodes",
        kwokNode(name),
      );
      uids.set(name, node.metadata.uid);
    });
    log(
      `${AGENTS} nodes created in ${
        ((performance.now() - t) / 1000).toFixed(1)
      } s`,
    );

    t = performance.now();
    const tokens = new Map<string, string>();
    await pool(nodes, 16, async (name) => {
      const answer = await api.request<{ status: { token: string } }>(
        "POST",
        `/api/v1/namespaces/${NS}/serviceaccounts/earthworm/token`,
        {
          apiVersion: "authentication.k8s.io/v1",
          kind: "TokenRequest",
          spec: {
            audiences: ["earthworm"],
            expirationSeconds: 3600,
            boundObjectRef: {
              apiVersion: "v1",
              kind: "Node",
              name,
              uid: uids.get(name),
            },
          },
        },
      );
      tokens.set(name, answer.status.token);
    });
    log(
      `${AGENTS} tokens issued with TokenRequest in ${
        ((performance.now() - t) / 1000).toFixed(1)
      } s`,
    );

    const leader = await startAgent(cluster, "bench-leader");
    stops.push(() => leader.proc.stop());
    const pid = leader.proc.child.pid;
    const base = leader.address;
    const port = Number(new URL(base).port);
    t = performance.now();
    await until("the leader holding every node heart", 600_000, async () => {
      const res = await fetch(`${base}/api/v1/hearts?kind=node`).catch(() =>
        null
      );
      if (!res?.ok) {
        await res?.body?.cancel();
        return false;
      }
      const body = await res.json() as HeartsResponse;
      return body.hearts.length >= AGENTS;
    }, 2000);
    log(
      `leader holds ${AGENTS} node hearts after ${
        ((performance.now() - t) / 1000).toFixed(1)
      } s; RSS ${rssMiB(pid).toFixed(0)} MiB`,
    );

    const metrics = async () => {
      const text = await (await fetch(`${base}/metrics`, {
        signal: AbortSignal.timeout(30_000),
      })).text();
      return {
        accepted: metric(
          text,
          "earthworm_wire_reports_total",
          'result="accepted"',
        ),
        throttled: metric(
          text,
          "earthworm_wire_reports_total",
          'result="throttled"',
        ),
        refused: metric(
          text,
          "earthworm_wire_reports_total",
          'result="refused"',
        ),
        reviews: ["accepted", "refused", "unreachable"].reduce(
          (sum, r) =>
            sum +
            metric(text, "earthworm_token_reviews_total", `result="${r}"`),
          0,
        ),
      };
    };
    const auditReviews = async () =>
      (await Deno.readTextFile(`${cluster.dir}/audit.log`)).split("\n")
        .filter((l) =>
          l.includes('"resource":"tokenreviews"') &&
          l.includes('"stage":"ResponseComplete"')
        ).length;

    // The agents.
    let rv = 1000;
    let measuring = false;
    const conns: AgentConnection[] = [];
    const loops = nodes.map(async (node) => {
      const conn = new AgentConnection(port);
      conns.push(conn);
      const head = (length: number) =>
        `POST /api/v1/wire HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\n` +
        `authorization: Bearer ${tokens.get(node)}\r\n` +
        `content-type: application/json\r\ncontent-length: ${length}\r\n\r\n`;
      let next = performance.now() + Math.random() * INTERVAL_MS;
      while (!signal.signal.aborted) {
        const wait = next - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        if (signal.signal.aborted) break;
        // An agent's feed never catches up on missed batches in a burst.
        next = Math.max(next + INTERVAL_MS, performance.now());
        const body = reportBody(node, rv++);
        const started = performance.now();
        try {
          const { status, retryAfter } = await conn.request(
            head(body.length),
            body,
          );
          if (measuring) {
            seen.status.set(status, (seen.status.get(status) ?? 0) + 1);
            seen.latencies.push(performance.now() - started);
          }
          if (status === 429 && retryAfter > 0) {
            next = Math.max(next, performance.now() + retryAfter * 1000);
          }
        } catch {
          seen.errors++;
        }
      }
      conn.close();
    });

    log(
      `${AGENTS} agents reporting every ${
        INTERVAL_MS / 1000
      } s; warming up until every token was reviewed once`,
    );
    const startCpu = cpuSeconds(pid);
    t = performance.now();
    // Capped: an overwhelmed leader may not get there; the figures say so.
    await until("a review of every agent's token", 600_000, async () => {
      if (performance.now() - t > 240_000) return true;
      return await auditReviews() >= AGENTS;
    }, 1000);
    log(
      `every token reviewed after ${
        ((performance.now() - t) / 1000).toFixed(1)
      } s (leader CPU ${
        (cpuSeconds(pid) - startCpu).toFixed(1)
      } s meanwhile, RSS ${rssMiB(pid).toFixed(0)} MiB); one more interval`,
    );
    await new Promise((r) => setTimeout(r, Math.max(INTERVAL_MS, 5000)));

    // The leader may be too busy to answer its metrics in time: they are a
    // cross-check; CPU, memory and the agents' own counts do not need it.
    const tryMetrics = () => metrics().catch(() => null);
    const m0 = await tryMetrics();
    const a0 = await auditReviews();
    const cpu0 = cpuSeconds(pid);
    const self0 = cpuSeconds(Deno.pid);
    const load0 = loadavg();
    const t0 = performance.now();
    const rss: number[] = [];
    measuring = true;
    seen.reconnects = 0;
    seen.errors = 0;
    let lastCpu = cpu0;
    let lastOk = 0;
    let lastT = t0;
    while (performance.now() - t0 < SECONDS * 1000) {
      await new Promise((r) => setTimeout(r, 10_000));
      rss.push(rssMiB(pid));
      const now = performance.now();
      const c = cpuSeconds(pid);
      const ok = seen.status.get(204) ?? 0;
      const dt = (now - lastT) / 1000;
      log(
        `leader ${((c - lastCpu) / dt).toFixed(2)} cores, ${
          ((ok - lastOk) / dt).toFixed(0)
        } reports/s accepted, VmRSS ${
          rss.at(-1)!.toFixed(0)
        } MiB, load ${loadavg()}`,
      );
      lastCpu = c;
      lastOk = ok;
      lastT = now;
    }
    measuring = false;
    const elapsed = (performance.now() - t0) / 1000;
    const cpu = cpuSeconds(pid) - cpu0;
    const self = cpuSeconds(Deno.pid) - self0;
    const load1 = loadavg();
    const a1 = await auditReviews();
    const m1 = await tryMetrics();

    const lat = [...seen.latencies].sort((a, b) => a - b);
    const ok = seen.status.get(204) ?? 0;
    const counted = (f: (m: NonNullable<typeof m0>) => number) =>
      m0 && m1 ? String(f(m1) - f(m0)) : "n/a (metrics unanswered)";
    const lines = [
      `wire ingest: ${AGENTS} agents, a report every ${
        INTERVAL_MS / 1000
      } s with ${EXCHANGES} exchange(s), ${elapsed.toFixed(0)} s measured`,
      `  leader CPU: ${(cpu / elapsed).toFixed(3)} cores (${
        (cpu * 1e6 / Math.max(1, ok)).toFixed(0)
      } µs per accepted report)`,
      `  reports accepted: ${(ok / elapsed).toFixed(0)}/s (offered ${
        (AGENTS * 1000 / INTERVAL_MS).toFixed(0)
      }/s); by the leader's counter ${counted((m) => m.accepted)}, throttled ${
        counted((m) => m.throttled)
      }, refused ${counted((m) => m.refused)}; statuses ${
        JSON.stringify(Object.fromEntries(seen.status))
      }`,
      `  TokenReviews: ${a1 - a0} in the audit log (${
        (60 * (a1 - a0) / elapsed).toFixed(0)
      } a minute), ${
        counted((m) => m.reviews)
      } by the leader's counter; ${a1} since start`,
      `  report latency: p50 ${percentile(lat, 0.5).toFixed(1)} ms, p99 ${
        percentile(lat, 0.99).toFixed(1)
      } ms; reconnects ${seen.reconnects}, errors ${seen.errors}`,
      `  leader VmRSS: ${Math.min(...rss).toFixed(0)}–${
        Math.max(...rss).toFixed(0)
      } MiB; driver CPU ${(self / elapsed).toFixed(2)} cores`,
      `  load average: ${load0} at start, ${load1} at end (2 cores, shared)`,
    ];
    console.log(lines.join("\n"));
    const warnings = leader.proc.stderr().split("\n").filter((l) =>
      /warn|error|source|watch/i.test(l)
    );
    if (warnings.length > 0) {
      console.log(
        `  leader's warnings (${warnings.length}, last 10):\n    ${
          warnings.slice(-10).join("\n    ")
        }`,
      );
    }
    signal.abort();
    for (const c of conns) c.close();
    await Promise.race([
      Promise.all(loops),
      new Promise((r) => setTimeout(r, 10_000)),
    ]);
  } finally {
    await stopAll();
  }
}

await main();
