/**
 * End-to-end tests of the wire probe on this machine's kernel: a TLS server
 * stands in for the API server on 127.0.0.1, clients run under a binary
 * named `kubelet` (the kernel's comm comes from the executable's name) or
 * another name, and the probe loads the real eBPF object. Needs root, kernel
 * BTF, libbpf, openssl, clang and tc; skips on a laptop, fails under CI=true.
 *
 * @module
 */

import assert from "node:assert/strict";
import { prereq } from "./prereq.ts";
import { collectLines } from "./earthworm_process.ts";
import { ebpfMissing } from "./wire/ebpf_prereq.ts";
import { onPath } from "./prereq.ts";
import { openWireProbe, type WireProbe } from "../bpf/wire_probe.ts";
import type { RawWireEvent } from "../core/wire_types.ts";
import { WireAggregator } from "../wire/wire_aggregator.ts";
import { probeCommand } from "../cli/probe.ts";

const PORT = Number(Deno.env.get("EARTHWORM_PROBE_TEST_PORT") ?? "6443");
const HERE = new URL(".", import.meta.url).pathname;
const ROOT = new URL("..", import.meta.url).pathname;

/** The probe's prerequisites plus the tools these tests drive. */
function probeTestMissing(): string | null {
  const missing = ebpfMissing();
  if (missing) return missing;
  for (const tool of ["openssl", "clang", "tc", "cc"]) {
    if (!onPath(tool)) return `"${tool}" is not installed`;
  }
  return null;
}

const env = prereq(
  "root, kernel BTF, libbpf and network tools",
  probeTestMissing(),
);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function run(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, {
    args,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) +
    new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`${cmd} ${args.join(" ")} failed: ${text}`);
  return text;
}

/** Waits until `check` returns a value, polling `lines`-style state every 20 ms. */
async function until<T>(
  what: string,
  timeoutMs: number,
  check: () => T | undefined,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const v = check();
    if (v !== undefined) return v;
    await sleep(20);
  }
  throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** A child process whose stdout lines are collected. */
class Child implements AsyncDisposable {
  readonly lines: string[] = [];
  readonly pid: number;
  exited = false;
  #child: Deno.ChildProcess;
  #stdin: WritableStreamDefaultWriter<Uint8Array>;
  #reading: Promise<void>;

  constructor(cmd: string, args: string[]) {
    this.#child = new Deno.Command(cmd, {
      args,
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
      cwd: ROOT,
    }).spawn();
    this.pid = this.#child.pid;
    this.#child.status.then(() => (this.exited = true));
    const child = this.#child;
    this.#stdin = child.stdin.getWriter();
    this.#reading = collectLines(child.stdout, this.lines);
  }

  send(line: string): Promise<void> {
    return this.#stdin.write(new TextEncoder().encode(line + "\n"));
  }

  /** Local ports of the connections the client opened, in order. */
  get ports(): number[] {
    return this.lines.filter((l) => l.startsWith("open ")).map((l) =>
      Number(l.slice(5))
    );
  }

  /** Number of answered PUTs on `port`. */
  puts(port: number): number {
    return this.lines.filter((l) => l === `put ${port} 200`).length;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // already exited
    }
    await this.#stdin.close().catch(() => {});
    await this.#reading.catch(() => {});
    await this.#child.status;
  }
}

/** The stand-in API server, its certificates, and client launchers. */
class World implements AsyncDisposable {
  readonly dir: string;
  /** The TLS server's port: the API server's, as the "kubelet" sees it. */
  readonly port: number;
  #server: Child | null = null;
  #clients: Child[] = [];

  private constructor(dir: string, port: number) {
    this.dir = dir;
    this.port = port;
  }

  static async start(port = PORT): Promise<World> {
    const world = new World(
      await Deno.makeTempDir({ prefix: "earthworm-probe-" }),
      port,
    );
    try {
      const d = world.dir;
      const ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
      ];
      await run("openssl", [
        "req",
        "-x509",
        ...ec,
        "-keyout",
        `${d}/ca.key`,
        "-out",
        `${d}/ca.pem`,
        "-subj",
        "/CN=earthworm-test-ca",
        "-days",
        "1",
      ]);
      await run("openssl", [
        "req",
        ...ec,
        "-keyout",
        `${d}/key.pem`,
        "-out",
        `${d}/req.csr`,
        "-subj",
        "/CN=127.0.0.1",
      ]);
      await Deno.writeTextFile(
        `${d}/ext.cnf`,
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
      );
      await run("openssl", [
        "x509",
        "-req",
        "-in",
        `${d}/req.csr`,
        "-CA",
        `${d}/ca.pem`,
        "-CAkey",
        `${d}/ca.key`,
        "-CAcreateserial",
        "-out",
        `${d}/cert.pem`,
        "-days",
        "1",
        "-extfile",
        `${d}/ext.cnf`,
      ]);
      world.#server = new Child(Deno.execPath(), [
        "run",
        "--allow-net",
        "--allow-read",
        `${HERE}wire/tls_server.ts`,
        "--port",
        String(world.port),
        "--cert",
        `${d}/cert.pem`,
        "--key",
        `${d}/key.pem`,
      ]);
      const server = world.#server;
      await until(
        "the TLS server to listen",
        20_000,
        () => {
          if (server.exited) {
            throw new Error(
              `The TLS server exited: is port ${world.port} in use?`,
            );
          }
          return server.lines.includes("listening") || undefined;
        },
      );
      return world;
    } catch (e) {
      await world[Symbol.asyncDispose]();
      throw e;
    }
  }

  /** Starts a client whose process name (comm) is `name`, sending a PUT every `intervalMs`. */
  async client(name: string, intervalMs: number): Promise<Child> {
    const exe = `${this.dir}/${name}`;
    await Deno.symlink(Deno.execPath(), exe);
    const c = new Child(exe, [
      "run",
      "--allow-net",
      "--allow-read",
      `${HERE}wire/client.ts`,
      "--port",
      String(this.port),
      "--ca",
      `${this.dir}/ca.pem`,
      "--interval",
      String(intervalMs),
    ]);
    this.#clients.push(c);
    await until(`"${name}" to answer a PUT`, 20_000, () => {
      const p = c.ports[0];
      return p !== undefined && c.puts(p) > 0 ? true : undefined;
    });
    return c;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    for (const c of this.#clients) await c[Symbol.asyncDispose]();
    await this.#server?.[Symbol.asyncDispose]();
    await Deno.remove(this.dir, { recursive: true });
  }
}

/** Collects a probe's events in the background. */
class Recorder {
  readonly events: RawWireEvent[] = [];
  /** Date.now() when each event reached user space. */
  readonly arrivals = new Map<RawWireEvent, number>();
  readonly done: Promise<void>;

  constructor(probe: WireProbe) {
    this.done = (async () => {
      for await (const ev of probe.events()) {
        this.arrivals.set(ev, Date.now());
        this.events.push(ev);
      }
    })();
  }

  waitFor(
    what: string,
    pred: (ev: RawWireEvent) => boolean,
    timeoutMs = 15_000,
  ): Promise<RawWireEvent> {
    return until(what, timeoutMs, () => this.events.find(pred));
  }
}

const on = (port: number) => (ev: RawWireEvent) =>
  ev.local.endsWith(`:${port}`);

Deno.test({
  name:
    "ebpf: a kubelet's connection opened before the probe and its new connections report exchanges, RTT and bytes",
  ignore: env.ignore,
}, async () => {
  env.check();
  await using world = await World.start();
  const kubelet = await world.client("kubelet", 50);
  const oldPort = kubelet.ports[0]!;
  const probe = await openWireProbe({ port: PORT });
  const rec = new Recorder(probe);
  try {
    assert.ok(probe.adopted >= 1, `adopted ${probe.adopted} connections`);
    const old = await rec.waitFor(
      "an exchange on the old connection",
      (ev) => on(oldPort)(ev) && ev.kind === "exchange" && ev.firstRxNs > 0n,
    );
    assert.equal(old.origin, "adopted");
    assert.equal(old.comm, "kubelet");
    assert.equal(old.pid, kubelet.pid);
    assert.equal(old.remote, `127.0.0.1:${PORT}`);
    assert.ok(
      old.bytesSent > 200 && old.bytesReceived > 100,
      `bytes ${old.bytesSent}/${old.bytesReceived}`,
    );
    assert.ok(old.srttUs > 0, "smoothed RTT is reported");
    assert.ok(old.firstRxNs > old.startNs && old.lastRxNs >= old.firstRxNs);

    await kubelet.send("open");
    const newPort = await until(
      "a second connection",
      10_000,
      () => kubelet.ports[1],
    );
    const fresh = await rec.waitFor(
      "an exchange on the new connection",
      (ev) => on(newPort)(ev) && ev.kind === "exchange" && ev.firstRxNs > 0n,
    );
    assert.equal(fresh.origin, "connect");
    assert.ok(
      fresh.srttUs > 0 && fresh.bytesSent > 0 && fresh.bytesReceived > 0,
    );
    const track = rec.events.find((ev) =>
      on(newPort)(ev) && ev.kind === "track"
    );
    assert.equal(track?.origin, "connect");
    const established = rec.events.find((ev) =>
      on(newPort)(ev) && ev.kind === "state"
    );
    assert.deepEqual([established?.oldState, established?.newState], [
      "SYN_SENT",
      "ESTABLISHED",
    ]);

    const exchanges = new WireAggregator({
      node: "test-node",
      monoToWallOffsetMs: probe.monoToWallOffsetMs,
    })
      .addAll(rec.events);
    for (const port of [oldPort, newPort]) {
      const mine = exchanges.filter((x) =>
        x.conn === `127.0.0.1:${port}->127.0.0.1:${PORT}`
      );
      assert.ok(mine.length > 0, `exchanges on port ${port}`);
      assert.ok(
        mine.every((x) =>
          x.latencyMs > 0 && x.latencyMs < 1000 && x.node === "test-node"
        ),
      );
      const age = Math.abs(Date.now() - Date.parse(mine[0]!.at));
      assert.ok(age < 60_000, `exchange time ${mine[0]!.at} is close to now`);
    }

    await kubelet.send("close");
    await rec.waitFor(
      "the old connection to close",
      (ev) => on(oldPort)(ev) && ev.newState === "CLOSE",
    );
  } finally {
    await probe.close();
    await rec.done;
  }
  assert.equal(probe.drops(), 0);
});

Deno.test({
  name:
    "ebpf: a connection whose packets the probe judged unfollowed is followed once user space adopts it",
  ignore: env.ignore,
}, async () => {
  env.check();
  await using world = await World.start();
  const kubelet = await world.client("kubelet", 50);
  const port = kubelet.ports[0]!;
  const probe = await openWireProbe({ port: PORT, adoptExisting: false });
  const rec = new Recorder(probe);
  try {
    // Its PUTs now cross the probe, which finds the socket in neither map
    // and remembers that in the socket.
    const puts = kubelet.puts(port);
    await until(
      "more PUTs",
      10_000,
      () => kubelet.puts(port) > puts + 3 || undefined,
    );
    assert.equal(rec.events.filter(on(port)).length, 0);
    assert.equal(await probe.adopt(), 1);
    const ex = await rec.waitFor(
      "an exchange on the adopted connection",
      (ev) => on(port)(ev) && ev.kind === "exchange" && ev.firstRxNs > 0n,
    );
    assert.equal(ex.origin, "adopted");
  } finally {
    await probe.close();
    await rec.done;
  }
});

Deno.test({
  name:
    "ebpf: without a port the probe finds the API server port from the kubelet's own connection, and its health says whether it holds one",
  ignore: env.ignore,
}, async () => {
  env.check();
  // Any port but 6443: the port is discovered, not assumed.
  const free = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (free.addr as Deno.NetAddr).port;
  free.close();
  await using world = await World.start(port);
  // A name of its own: a real kubelet may run on this machine too.
  const kubelet = await world.client("ew-discover", 50);
  const probe = await openWireProbe({ comm: "ew-discover" });
  const rec = new Recorder(probe);
  try {
    assert.equal(probe.endpoint.port, port);
    assert.equal(probe.endpoint.source, "connections");
    assert.match(probe.endpoint.detail, new RegExp(`127\\.0\\.0\\.1:${port}`));
    await rec.waitFor(
      "an exchange on the discovered port",
      (ev) => ev.kind === "exchange" && ev.remote === `127.0.0.1:${port}`,
    );
    assert.equal(await probe.health(), null);
    await kubelet.send("close");
    let reason: string | null = null;
    const deadline = Date.now() + 10_000;
    while (reason === null && Date.now() < deadline) {
      await sleep(50);
      reason = await probe.health();
    }
    assert.match(
      reason ?? "",
      /no "ew-discover" process holds a connection to it/,
    );
  } finally {
    await probe.close();
    await rec.done;
  }
});

Deno.test({
  name:
    "ebpf: an exchange reaches user space when its answer arrives, not when the next request leaves",
  ignore: env.ignore,
}, async () => {
  env.check();
  await using world = await World.start();
  const kubelet = await world.client("kubelet", 1500);
  const port = kubelet.ports[0]!;
  const probe = await openWireProbe({ port: PORT });
  const rec = new Recorder(probe);
  const answered = (ev: RawWireEvent) =>
    on(port)(ev) && ev.kind === "exchange" && ev.firstRxNs > 0n;
  try {
    await until(
      "three answered exchanges",
      15_000,
      () => rec.events.filter(answered).length >= 3 || undefined,
    );
  } finally {
    await probe.close();
    await rec.done;
  }
  const wall = (ns: bigint) => Number(ns) / 1e6 + probe.monoToWallOffsetMs;
  const exchanges = rec.events.filter(answered);
  for (const [i, ev] of exchanges.entries()) {
    const arrival = rec.arrivals.get(ev)!;
    const sinceAnswer = arrival - wall(ev.firstRxNs);
    assert.ok(
      ev.tsNs >= ev.firstRxNs && ev.tsNs - ev.firstRxNs < 1_000_000n,
      `emitted ${ev.tsNs - ev.firstRxNs} ns after the answer's first byte`,
    );
    assert.ok(
      sinceAnswer < 200,
      `exchange ${i} reached user space ${sinceAnswer} ms after its answer`,
    );
    const next = exchanges[i + 1];
    if (next) {
      assert.ok(
        arrival < wall(next.startNs) - 1000,
        `exchange ${i} arrived at ${arrival}, the next request left at ${
          wall(next.startNs)
        }`,
      );
    }
    assert.ok(ev.bytesSent > 200 && ev.bytesReceived > 100);
  }
});

Deno.test({
  name:
    "ebpf: the TLS handshake legs of a kubelet's new connection are never reported as exchanges",
  ignore: env.ignore,
}, async () => {
  env.check();
  await using world = await World.start();
  const kubelet = await world.client("kubelet", 2000);
  const oldPort = kubelet.ports[0]!;
  const probe = await openWireProbe({ port: PORT });
  const rec = new Recorder(probe);
  let newPort: number;
  try {
    // A new connection followed from connect(): its TLS handshake (ClientHello,
    // the client's Finished flight, session tickets) runs under the probe.
    await kubelet.send("open");
    newPort = await until("a new connection", 10_000, () => kubelet.ports[1]);
    await until(
      "two PUTs on it",
      15_000,
      () => kubelet.puts(newPort) >= 2 || undefined,
    );
    // close_notify (an alert record) on the old connection.
    await kubelet.send("close");
    await rec.waitFor(
      "the old connection to close",
      (ev) => on(oldPort)(ev) && ev.newState === "CLOSE",
    );
    await sleep(300);
  } finally {
    await probe.close();
    await rec.done;
  }
  const exchangesOn = (port: number) =>
    rec.events.filter((ev) => on(port)(ev) && ev.kind === "exchange");
  assert.ok(
    rec.events.some((ev) => on(newPort)(ev) && ev.kind === "track"),
    "the new connection is followed from connect()",
  );
  // The PUTs on the old connection tell the size of a request.
  const old = exchangesOn(oldPort);
  const put = old.map((ev) => ev.bytesSent).filter((n) => n >= 64);
  assert.ok(
    put.length > 0 && Math.max(...put) - Math.min(...put) < 8,
    `${put}`,
  );
  const isPut = (ev: RawWireEvent) =>
    Math.abs(ev.bytesSent - put[0]!) < 8 && ev.firstRxNs > 0n &&
    ev.bytesReceived > 100;
  const fresh = exchangesOn(newPort);
  const shown = fresh.map((ev) => `${ev.bytesSent}/${ev.bytesReceived}`);
  assert.deepEqual(
    fresh.filter((ev) => !isPut(ev)).map((ev) =>
      `${ev.bytesSent}/${ev.bytesReceived}`
    ),
    [],
    `every exchange on the new connection is a PUT (${put[0]} bytes): ${shown}`,
  );
  // A PUT sent right behind the client's Finished, before the server's
  // session tickets, joins the handshake leg and is not reported.
  const puts = kubelet.puts(newPort);
  assert.ok(
    fresh.length === puts || fresh.length === puts - 1,
    `${fresh.length} exchanges for ${puts} PUTs: ${shown}`,
  );
  // TLS 1.3 encrypts alerts: the close_notify is application data, reported,
  // and far too small to carry a Lease update (the leader never pairs it).
  const closing = old.filter((ev) => !isPut(ev)).map((ev) => ev.bytesSent);
  assert.ok(closing.every((n) => n < 64), `close_notify: ${closing}`);
});

Deno.test({
  name:
    "ebpf: plain TCP request/response traffic (no TLS) is reported as one exchange per request",
  ignore: env.ignore,
}, async () => {
  env.check();
  const dir = await Deno.makeTempDir({ prefix: "earthworm-plain-" });
  const children: Child[] = [];
  try {
    const server = new Child(Deno.execPath(), [
      "run",
      "--allow-net",
      `${HERE}wire/pingpong.ts`,
      "server",
      "0",
    ]);
    children.push(server);
    const port = await until("the plain TCP server", 20_000, () => {
      const line = server.lines.find((l) => l.startsWith("ready "));
      return line ? Number(line.slice(6)) : undefined;
    });
    const probe = await openWireProbe({ port });
    const rec = new Recorder(probe);
    try {
      await Deno.symlink(Deno.execPath(), `${dir}/kubelet`);
      children.push(
        new Child(`${dir}/kubelet`, [
          "run",
          "--allow-net",
          `${HERE}wire/pingpong.ts`,
          "client",
          String(port),
          "1",
        ]),
      );
      await until(
        "100 exchanges",
        20_000,
        () =>
          rec.events.filter((ev) => ev.kind === "exchange").length >= 100 ||
          undefined,
      );
    } finally {
      // The probe first: a client killed mid-request would leave an
      // unanswered exchange, reported when its connection closes.
      await probe.close();
      await rec.done;
      for (const c of children.splice(1)) await c[Symbol.asyncDispose]();
    }
    const exchanges = rec.events.filter((ev) => ev.kind === "exchange");
    assert.ok(exchanges.length >= 100);
    // The probe stops while a request may be in flight: its exchange is not reported.
    assert.deepEqual(
      [
        ...new Set(
          exchanges.map((ev) => `${ev.bytesSent}/${ev.bytesReceived}`),
        ),
      ],
      ["64/128"],
    );
    assert.ok(exchanges.every((ev) => ev.firstRxNs > ev.startNs));
    assert.equal(probe.drops(), 0);
  } finally {
    for (const c of children) await c[Symbol.asyncDispose]();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name:
    "ebpf: a process with another name talking to the same port is never reported",
  ignore: env.ignore,
}, async () => {
  env.check();
  await using world = await World.start();
  const other = await world.client("apiclient", 20);
  const kubelet = await world.client("kubelet", 50);
  const probe = await openWireProbe({ port: PORT });
  const rec = new Recorder(probe);
  try {
    await other.send("open");
    const otherNew = await until(
      "the other process's new connection",
      10_000,
      () => other.ports[1],
    );
    await until(
      "PUTs on it",
      10_000,
      () => other.puts(otherNew) >= 20 || undefined,
    );
    // The kubelet is seen meanwhile: the probe works, it just ignores the other one.
    await rec.waitFor(
      "a kubelet exchange",
      (ev) => ev.kind === "exchange" && ev.pid === kubelet.pid,
    );
  } finally {
    await probe.close();
    await rec.done;
  }
  const leaked = rec.events.filter((ev) =>
    ev.pid === other.pid || ev.comm !== "kubelet" ||
    other.ports.some((p) => on(p)(ev))
  );
  assert.deepEqual(leaked, []);
  assert.ok(rec.events.length > 0);
});

Deno.test({
  name:
    "ebpf: induced packet loss shows retransmits on the kubelet's connection",
  ignore: env.ignore,
}, async () => {
  env.check();
  await using world = await World.start();
  const kubelet = await world.client("kubelet", 10);
  const port = kubelet.ports[0]!;
  const drop = `${world.dir}/drop.o`;
  await run("clang", [
    "-O2",
    "-target",
    "bpf",
    "-I/usr/include/x86_64-linux-gnu",
    `-DDROP_PORT=${PORT}`,
    "-DDROP_PERCENT=30",
    "-c",
    `${HERE}wire/drop.bpf.c`,
    "-o",
    drop,
  ]);
  const probe = await openWireProbe({ port: PORT });
  const rec = new Recorder(probe);
  const hadClsact = (await run("tc", ["qdisc", "show", "dev", "lo"])).includes(
    "clsact",
  );
  try {
    if (!hadClsact) await run("tc", ["qdisc", "add", "dev", "lo", "clsact"]);
    await run("tc", [
      "filter",
      "add",
      "dev",
      "lo",
      "ingress",
      "pref",
      "4917",
      "bpf",
      "direct-action",
      "obj",
      drop,
      "sec",
      "tc",
    ]);
    const retrans = await rec.waitFor(
      "a retransmit event",
      (ev) => on(port)(ev) && ev.kind === "retransmit",
      30_000,
    );
    assert.ok(
      retrans.totalRetrans >= 1,
      `total retransmits ${retrans.totalRetrans}`,
    );
    const slow = await rec.waitFor(
      "an exchange with retransmits",
      (ev) => on(port)(ev) && ev.kind === "exchange" && ev.retrans > 0,
      30_000,
    );
    const x = new WireAggregator({ node: "n", monoToWallOffsetMs: 0 }).add(
      slow,
    );
    assert.ok(
      x !== null && x.retransmits > 0 && x.latencyMs > 1,
      `exchange ${JSON.stringify(x)}`,
    );
  } finally {
    await run("tc", ["filter", "del", "dev", "lo", "ingress", "pref", "4917"])
      .catch(() => "");
    if (!hadClsact) {
      await run("tc", ["qdisc", "del", "dev", "lo", "clsact"]).catch(() => "");
    }
    await probe.close();
    await rec.done;
  }
  assert.ok(
    !(await run("tc", ["filter", "show", "dev", "lo", "ingress"])).includes(
      "drop",
    ),
    "filter removed",
  );
});

Deno.test({
  name:
    "ebpf: the perf buffer, forced on this kernel, gives the same events as the ring buffer",
  ignore: env.ignore,
}, async () => {
  env.check();
  await using world = await World.start();
  const kubelet = await world.client("kubelet", 30);
  const port = kubelet.ports[0]!;
  const ring = await openWireProbe({ port: PORT, buffer: "ring" });
  const perf = await openWireProbe({ port: PORT, buffer: "perf" });
  const ringRec = new Recorder(ring);
  const perfRec = new Recorder(perf);
  try {
    assert.equal(ring.buffer, "ring");
    assert.equal(perf.buffer, "perf");
    const enough = (rec: Recorder) =>
      rec.events.filter((ev) => ev.kind === "exchange").length >= 20 ||
      undefined;
    await until(
      "20 exchanges through both buffers",
      20_000,
      () => enough(ringRec) && enough(perfRec),
    );
  } finally {
    await perf.close();
    await ring.close();
    await Promise.all([ringRec.done, perfRec.done]);
  }
  const exchanges = (rec: Recorder) =>
    rec.events.filter((ev) => ev.kind === "exchange" && on(port)(ev));
  const r = exchanges(ringRec), p = exchanges(perfRec);
  // Both probes saw the same segments; compare the exchanges both were attached for.
  const from = Math.max(Number(r[0]!.startNs), Number(p[0]!.startNs));
  const to = Math.min(Number(r.at(-1)!.startNs), Number(p.at(-1)!.startNs));
  const inWindow = (evs: RawWireEvent[]) =>
    evs.filter((ev) =>
      Number(ev.startNs) >= from + 1e6 && Number(ev.startNs) <= to - 1e6
    );
  const rw = inWindow(r), pw = inWindow(p);
  assert.ok(pw.length >= 10, `${pw.length} exchanges in the common window`);
  assert.equal(pw.length, rw.length);
  pw.forEach((ev, i) => {
    const twin = rw[i]!;
    assert.ok(Math.abs(Number(ev.startNs - twin.startNs)) < 2e6, "same start");
    assert.deepEqual(
      [ev.bytesSent, ev.bytesReceived, ev.origin, ev.pid, ev.conn],
      [twin.bytesSent, twin.bytesReceived, twin.origin, twin.pid, twin.conn],
    );
  });
  assert.equal(ring.drops() + perf.drops(), 0);
});

Deno.test({
  name: "ebpf: the probe run by an unprivileged user fails with a typed reason",
  ignore: env.ignore,
}, async () => {
  env.check();
  const dir = await Deno.makeTempDir();
  try {
    await Deno.chmod(dir, 0o777);
    const out = await new Deno.Command("setpriv", {
      args: [
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=-all",
        Deno.execPath(),
        "run",
        "--allow-all",
        "--no-lock",
        `${HERE}wire/probe_main.ts`,
        "--duration",
        "1",
      ],
      env: {
        DENO_DIR: `${dir}/deno`,
        HOME: dir,
        NO_COLOR: "1",
        RUST_BACKTRACE: "0",
      },
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 1, stderr);
    assert.match(
      stderr,
      /earthworm probe: eBPF is unavailable \(no-permission\): Not permitted to load eBPF programs \(.*\): run as root or grant CAP_BPF/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "ebpf: earthworm probe --json prints one JSON object per kubelet event",
  ignore: env.ignore,
}, async () => {
  env.check();
  await using world = await World.start();
  const kubelet = await world.client("kubelet", 50);
  const port = kubelet.ports[0]!;
  const lines: string[] = [];
  const errors: string[] = [];
  const stop = new AbortController();
  const code = probeCommand(["--json", "--port", String(PORT)], {
    stdout: (l) => {
      lines.push(l);
      if (lines.length >= 10) stop.abort();
    },
    stderr: (l) => errors.push(l),
    signal: stop.signal,
  });
  const timer = setTimeout(() => stop.abort(), 20_000);
  try {
    assert.equal(await code, 0, errors.join("\n"));
  } finally {
    clearTimeout(timer);
  }
  const objects = lines.map((l) => JSON.parse(l));
  assert.ok(objects.length >= 10);
  assert.ok(
    objects.every((o) => o.comm === "kubelet" && typeof o.time === "string"),
  );
  const exchange = objects.find((o) =>
    o.type === "exchange" && o.conn.startsWith(`127.0.0.1:${port}->`)
  );
  assert.ok(exchange, lines.join("\n"));
  assert.ok(
    exchange.latencyMs > 0 && exchange.bytesSent > 0 && exchange.srttUs > 0,
  );
  assert.match(
    errors.join("\n"),
    /following "kubelet" to port \d+ \(ring buffer, 1 existing connections adopted; port given\)/,
  );
});

Deno.test("earthworm probe rejects a bad flag with a one-line error and exit code 2", async () => {
  const errors: string[] = [];
  const io = { stdout: () => {}, stderr: (l: string) => errors.push(l) };
  assert.equal(await probeCommand(["--bogus"], io), 2);
  assert.equal(await probeCommand(["--duration", "soon"], io), 2);
  assert.deepEqual(errors, [
    'earthworm: Unknown flag "--bogus" for "earthworm probe": run "earthworm probe --help" to see the flags',
    'earthworm: Flag "--duration" must be a number, got "soon"',
  ]);
  const out: string[] = [];
  assert.equal(
    await probeCommand(["--help"], {
      stdout: (l) => out.push(l),
      stderr: () => {},
    }),
    0,
  );
  assert.match(out.join("\n"), /^Usage: earthworm probe/);
});

Deno.test({
  name: "ebpf: the committed bpf/heartbeat.bpf.o is what its source builds to",
  ignore: env.ignore,
}, async () => {
  env.check();
  const out = await new Deno.Command("bash", {
    args: [`${ROOT}bpf/build.sh`, "--check"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) +
    new TextDecoder().decode(out.stderr);
  assert.ok(out.success, text);
  assert.match(text, /is up to date/);
});
