/**
 * Soak of the event stream (issue 11): the server's memory under 1,000 SSE
 * clients that come and go, resume, and stall. A script, not part of
 * `deno task bench`; it prints measurements instead of asserting them:
 *
 *   deno run -A tests/bench/sse_soak.ts [--minutes 10] [--clients 1000]
 *     [--stalled 100] [--churn 20] [--nodes 2000] [--speed 10]
 *     [--baseline main | --baseline none] [--heap]
 *
 * 1. Starts `earthworm mock --nodes 2000 --speed 10` (about 2,000 beat
 *    events a second, far more than 1,000 clients can be sent on two cores:
 *    the server must drop the clients that fall behind).
 * 2. Opens `--clients` streams on raw connections: readers that read and
 *    discard (tracking the last event id), and `--stalled` of them that send
 *    their request and never read. Every second `--churn` readers leave and
 *    as many join, half of them resuming with `Last-Event-ID`; a reader the
 *    server disconnects comes back after 2 s with its last id, as a browser's
 *    EventSource does; a stalled client gives up after 30 to 120 s and
 *    another takes its place.
 * 3. Samples the server's VmRSS (`/proc/<pid>/status`), its stream clients
 *    and drops (`/metrics`) and its established sockets (`/proc/net/tcp`)
 *    every 5 s for `--minutes`; then closes every client and samples again.
 * 4. Prints the plateau (median VmRSS over the second half of the run), the
 *    peak (largest sample and VmHWM), and the same for the code of
 *    `--baseline` (a git ref, default `main`, exported with `git archive`
 *    and run the same way) with the ratios.
 * 5. With `--heap` (the mock then runs with `--inspect` on loopback), once
 *    every client left: the V8 heap before and after a full collection, and
 *    VmRSS after it, which tells what of the memory left is the program's
 *    and what is the collector's or the allocator's.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { type EarthwormProcess, startEarthworm } from "../earthworm_process.ts";
import { freePorts, sleep } from "../wait.ts";
import { heapUsage } from "./_measure.ts";

const ROOT = new URL("../..", import.meta.url).pathname;

const args = parseArgs({
  args: Deno.args,
  options: {
    minutes: { type: "string", default: "10" },
    clients: { type: "string", default: "1000" },
    stalled: { type: "string", default: "100" },
    churn: { type: "string", default: "20" },
    nodes: { type: "string", default: "2000" },
    speed: { type: "string", default: "10" },
    baseline: { type: "string", default: "main" },
    "sample-s": { type: "string", default: "5" },
    heap: { type: "boolean", default: false },
  },
});
const MINUTES = Number(args.values.minutes);
const CLIENTS = Number(args.values.clients);
const STALLED = Number(args.values.stalled);
const CHURN = Number(args.values.churn);
const SAMPLE_MS = Number(args.values["sample-s"]) * 1000;
const RETRY_MS = 2000;

interface Sample {
  atS: number;
  rssMiB: number;
  clients: number;
  dropped: number;
  sockets: number;
}

interface Result {
  label: string;
  samples: Sample[];
  plateauMiB: number;
  peakMiB: number;
  hwmMiB: number;
  afterMiB: number;
  received: number;
  resumes: number;
  reconnects: number;
}

function status(pid: number): { rss: number; hwm: number } {
  const text = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kib = (f: string) =>
    Number(new RegExp(`${f}:\\s+(\\d+)`).exec(text)?.[1] ?? NaN);
  return { rss: kib("VmRSS") / 1024, hwm: kib("VmHWM") / 1024 };
}

/** Server-side sockets of `port` in state ESTABLISHED. */
function established(port: number): number {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  let n = 0;
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text = "";
    try {
      text = Deno.readTextFileSync(file);
    } catch {
      continue;
    }
    for (const line of text.split("\n")) {
      const f = line.trim().split(/\s+/);
      if (f[1]?.endsWith(hex) && f[3] === "01") n++;
    }
  }
  return n;
}

/**
 * Polls the server's stream metrics in the background: a saturated server
 * may take seconds to answer, and the samples must not wait for it.
 */
function metricsPoller(url: string) {
  const latest = { clients: NaN, dropped: NaN };
  let stopped = false;
  const value = (text: string, name: string) =>
    Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1] ?? NaN);
  const done = (async () => {
    while (!stopped) {
      try {
        const text = await (await fetch(`${url}/metrics`, {
          signal: AbortSignal.timeout(30_000),
        })).text();
        latest.clients = value(text, "earthworm_stream_clients");
        latest.dropped = value(text, "earthworm_stream_dropped_clients_total");
      } catch { /* busy: keep the last values */ }
      await sleep(SAMPLE_MS);
    }
  })();
  return {
    latest,
    stop: () => {
      stopped = true;
      return done;
    },
  };
}

/** One SSE client on a raw connection. */
class Client {
  lastId: string | null;
  #conn: Deno.TcpConn | undefined;
  #left = false;
  constructor(
    readonly stats: { received: number; resumes: number; reconnects: number },
    readonly port: number,
    readonly stalled: boolean,
    lastId: string | null,
  ) {
    this.lastId = lastId;
  }

  /** Runs until it leaves; a reader the server dropped comes back. */
  async run(): Promise<void> {
    const decoder = new TextDecoder();
    const buf = new Uint8Array(64 * 1024);
    while (!this.#left) {
      try {
        this.#conn = await Deno.connect({
          hostname: "127.0.0.1",
          port: this.port,
        });
        if (this.#left) return;
        if (this.lastId !== null) this.stats.resumes++;
        await this.#conn.write(
          new TextEncoder().encode(
            `GET /api/v1/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n${
              this.lastId === null ? "" : `Last-Event-ID: ${this.lastId}\r\n`
            }\r\n`,
          ),
        );
        if (this.stalled) {
          // Never read; wait until the server or the bench closes it.
          await new Promise<void>((resolve) => {
            const check = setInterval(() => {
              if (this.#left) {
                clearInterval(check);
                resolve();
              }
            }, 500);
          });
          return;
        }
        while (true) {
          const n = await this.#conn.read(buf);
          if (n === null) break;
          this.stats.received += n;
          const tail = decoder.decode(buf.subarray(Math.max(0, n - 4096), n));
          const ids = [...tail.matchAll(/(?:^|\n)id: (\d+)\n/g)];
          if (ids.length) this.lastId = ids.at(-1)![1]!;
        }
      } catch {
        // reset by the server, or closed by leave()
      } finally {
        try {
          this.#conn?.close();
        } catch { /* closed */ }
      }
      if (this.#left) return;
      this.stats.reconnects++;
      await sleep(RETRY_MS);
    }
  }

  leave(): void {
    this.#left = true;
    try {
      this.#conn?.close();
    } catch { /* closed */ }
  }
}

async function soak(label: string, ew: EarthwormProcess): Promise<Result> {
  const port = Number(new URL(ew.url).port);
  const pid = ew.child.pid;
  const stats = { received: 0, resumes: 0, reconnects: 0 };
  const readers = new Set<Client>();
  const stalled = new Set<Client>();
  const running: Promise<void>[] = [];
  const start = (stall: boolean, lastId: string | null) => {
    const c = new Client(stats, port, stall, lastId);
    (stall ? stalled : readers).add(c);
    running.push(c.run().finally(() => (stall ? stalled : readers).delete(c)));
    if (stall) setTimeout(() => c.leave(), 30_000 + Math.random() * 90_000);
    return c;
  };
  // Join gradually, as a fleet of browsers would.
  for (let i = 0; i < CLIENTS; i++) {
    start(i < STALLED, null);
    if (i % 50 === 49) await sleep(100);
  }
  const metrics = metricsPoller(ew.url);
  const t0 = Date.now();
  const end = t0 + MINUTES * 60_000;
  const samples: Sample[] = [];
  let nextSample = t0;
  let lastPrint = 0;
  console.error(
    `${label}: ${CLIENTS} clients (${STALLED} stalled) on ${ew.url}, pid ${pid}`,
  );
  while (Date.now() < end) {
    // Churn: readers leave; as many join, half of them resuming.
    const leaving = [...readers].sort(() => Math.random() - 0.5).slice(
      0,
      CHURN,
    );
    for (const c of leaving) {
      c.leave();
      start(false, Math.random() < 0.5 ? c.lastId : null);
    }
    while (stalled.size < STALLED) start(true, null);
    if (Date.now() >= nextSample) {
      nextSample += SAMPLE_MS;
      const s: Sample = {
        atS: (Date.now() - t0) / 1000,
        rssMiB: status(pid).rss,
        clients: metrics.latest.clients,
        dropped: metrics.latest.dropped,
        sockets: established(port),
      };
      samples.push(s);
      if (s.atS - lastPrint >= 30 || samples.length === 1) {
        lastPrint = s.atS;
        console.error(
          `${label} ${s.atS.toFixed(0).padStart(4)} s: VmRSS ${
            s.rssMiB.toFixed(0)
          } MiB, ${s.clients} stream clients, ${s.dropped} dropped so far, ${s.sockets} sockets, ${
            (stats.received / 1e9).toFixed(2)
          } GB received`,
        );
      }
    }
    await sleep(1000);
  }
  const hwm = status(pid).hwm;
  for (const c of [...readers, ...stalled]) c.leave();
  await Promise.all(running);
  // Memory once everyone left.
  let after = NaN;
  for (let i = 0; i < 6; i++) {
    await sleep(5000);
    after = status(pid).rss;
  }
  await metrics.stop();
  console.error(
    `${label} after every client left: VmRSS ${after.toFixed(0)} MiB, ${
      established(port)
    } sockets, ${metrics.latest.clients} stream clients`,
  );
  const second = samples.filter((s) => s.atS >= MINUTES * 30).map((s) =>
    s.rssMiB
  ).sort((a, b) => a - b);
  return {
    label,
    samples,
    plateauMiB: second[Math.floor(second.length / 2)] ?? NaN,
    peakMiB: Math.max(...samples.map((s) => s.rssMiB)),
    hwmMiB: hwm,
    afterMiB: after,
    ...stats,
  };
}

async function run(label: string, dir: string): Promise<Result> {
  const inspect = args.values.heap ? `127.0.0.1:${freePorts(1)[0]}` : undefined;
  const ew = await startEarthworm([
    "mock",
    "--port",
    "0",
    "--nodes",
    args.values.nodes,
    "--speed",
    args.values.speed,
  ], {
    cwd: dir,
    entry: `${dir}/main.ts`,
    timeoutMs: 120_000,
    ...(inspect && { denoFlags: [`--inspect=${inspect}`] }),
  });
  try {
    // Let the simulated cluster reach its steady beat before the clients.
    await sleep(10_000);
    console.error(
      `${label}: VmRSS ${
        status(ew.child.pid).rss.toFixed(0)
      } MiB before any client`,
    );
    const result = await soak(label, ew);
    if (inspect) {
      const h = await heapUsage(inspect);
      await sleep(5000);
      console.error(
        `${label} after every client left: V8 heap ${
          h.before.toFixed(0)
        } MiB used, ${h.after.toFixed(0)} MiB after a full collection (of ${
          h.total.toFixed(0)
        } MiB reserved), external ${h.externalBefore.toFixed(0)} MiB, ${
          h.externalAfter.toFixed(0)
        } MiB after; VmRSS 5 s after it ${
          status(ew.child.pid).rss.toFixed(0)
        } MiB`,
      );
    }
    return result;
  } finally {
    await ew.stop();
  }
}

async function exportRef(ref: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "earthworm-soak-baseline-" });
  const archive = await new Deno.Command("git", {
    args: ["-C", ROOT, "archive", "--format=tar", ref],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!archive.success) {
    throw new Error(
      `git archive ${ref} failed: ${new TextDecoder().decode(archive.stderr)}`,
    );
  }
  const tar = new Deno.Command("tar", {
    args: ["-x", "-C", dir],
    stdin: "piped",
  }).spawn();
  const w = tar.stdin.getWriter();
  await w.write(archive.stdout);
  await w.close();
  if (!(await tar.status).success) throw new Error(`tar -x into ${dir} failed`);
  return dir;
}

function line(r: Result): string {
  return `${r.label.padEnd(24)} plateau ${
    r.plateauMiB.toFixed(0).padStart(5)
  } MiB  peak ${r.peakMiB.toFixed(0).padStart(5)} MiB  VmHWM ${
    r.hwmMiB.toFixed(0).padStart(5)
  } MiB  after ${r.afterMiB.toFixed(0).padStart(5)} MiB  ${
    (r.received / 1e9).toFixed(1)
  } GB to ${r.resumes} resumes, ${r.reconnects} reconnects`;
}

const baseline = args.values.baseline === "none"
  ? null
  : await exportRef(args.values.baseline);
try {
  const results = [await run("this tree", ROOT)];
  if (baseline) {
    results.push(await run(`baseline ${args.values.baseline}`, baseline));
  }
  console.log(
    `\nSSE soak: ${CLIENTS} clients (${STALLED} stalled, ${CHURN} leaving and joining a second), mock --nodes ${args.values.nodes} --speed ${args.values.speed}, ${MINUTES} min each; plateau = median VmRSS over the second half\n`,
  );
  for (const r of results) console.log(line(r));
  if (results.length === 2) {
    const [a, b] = results as [Result, Result];
    console.log(
      `\nbaseline / this tree: plateau ${
        (b.plateauMiB / a.plateauMiB).toFixed(1)
      }x, peak ${(b.peakMiB / a.peakMiB).toFixed(1)}x, after ${
        (b.afterMiB / a.afterMiB).toFixed(1)
      }x`,
    );
  }
} finally {
  if (baseline) await Deno.remove(baseline, { recursive: true });
}
