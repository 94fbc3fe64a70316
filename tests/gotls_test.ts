/**
 * End-to-end tests of the Go TLS probe (bpf/gotls.bpf.c through
 * bpf/gotls_probe.ts, paired by wire/h2_exchange.ts) on this machine's
 * kernel:
 * - h2echo (tests/wire/h2echo) sends a crafted HTTP/2 frame stream over
 *   TLS in chunks of chosen sizes and echoes it back, so frames straddle
 *   Write and Read calls everywhere; the records must rebuild every frame;
 * - the Go test kubelet (tests/wire/gokubelet, client-go) renews a Lease
 *   every second against a real kube-apiserver while it watches and
 *   patches on the same HTTP/2 connection; every renewal must pair with
 *   its own exchange.
 * Needs root, kernel BTF, libbpf and Go (plus the control plane for the
 * second); skips on a laptop, fails under CI=true.
 *
 * @module
 */

import assert from "node:assert/strict";
import { prereq } from "./prereq.ts";
import { collectLines } from "./earthworm_process.ts";
import { ebpfMissing } from "./wire/ebpf_prereq.ts";
import { onPath } from "./prereq.ts";
import { clusterMissing, startCluster } from "./cluster/harness.ts";
import { openGoTlsProbe } from "../bpf/gotls_probe.ts";
import { type GoConnSocket, goConnSocket } from "../bpf/go_conn.ts";
import { decodeGoTlsRecord, type GoTlsRecord } from "../bpf/gotls_event.ts";
import { H2ExchangeTracker, type LeaseExchange } from "../wire/h2_exchange.ts";

const HERE = new URL(".", import.meta.url).pathname;
const ROOT = new URL("..", import.meta.url).pathname;

function goProbeMissing(): string | null {
  const missing = ebpfMissing();
  if (missing) return missing;
  if (!onPath("go")) return "Go is not installed: install Go 1.22+";
  if (!onPath("cc")) return '"cc" is not installed: apt-get install gcc';
  return null;
}

const env = prereq("root, kernel BTF, libbpf and Go", goProbeMissing());
const cluster = prereq(
  "root, kernel BTF, libbpf, Go and a Kubernetes control plane",
  goProbeMissing() ?? clusterMissing(),
);

async function run(cmd: string, args: string[], cwd = ROOT): Promise<string> {
  const out = await new Deno.Command(cmd, {
    args,
    cwd,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(
      `${cmd} ${args.join(" ")} failed: ${
        new TextDecoder().decode(out.stderr)
      }`,
    );
  }
  return text;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, ms: number, ok: () => boolean) {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await sleep(20);
  }
}

// ---------------------------------------------------------------------------
// Frames straddling calls

/** An HTTP/2 frame. */
interface Frame {
  type: number;
  flags: number;
  streamId: number;
  payload: Uint8Array;
}

function encodeFrames(frames: Frame[]): Uint8Array {
  const size = frames.reduce((n, f) => n + 9 + f.payload.length, 0);
  const out = new Uint8Array(size);
  const v = new DataView(out.buffer);
  let at = 0;
  for (const f of frames) {
    v.setUint32(at, f.payload.length << 8 | f.type);
    out[at + 4] = f.flags;
    v.setUint32(at + 5, f.streamId);
    out.set(f.payload, at + 9);
    at += 9 + f.payload.length;
  }
  return out;
}

function bytes(n: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);
}

const PREFACE = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
const REPORTED = new Set([0, 1, 3, 7, 9]);

/** A client's stream: what a Go HTTP/2 client sends, and odd cases. */
function frameStream(windowUpdates: number): Frame[] {
  const lease = Deno.readFileSync(
    `${HERE}testdata/lease_put_protobuf.bin`,
  );
  const leaseBody = new Uint8Array(303);
  leaseBody.set(lease);
  const f = (type: number, flags: number, streamId: number, p: Uint8Array) => ({
    type,
    flags,
    streamId,
    payload: p,
  });
  return [
    f(4, 0, 0, bytes(12, 1)), // SETTINGS
    f(8, 0, 0, bytes(4, 2)), // WINDOW_UPDATE
    f(1, 0x04, 1, bytes(17, 3)), // HEADERS
    f(0, 0x01, 1, leaseBody), // DATA, END_STREAM: a protobuf Lease
    f(1, 0x04, 13, bytes(12, 13)),
    f(0, 0x01, 13, LEASE_JSON), // a JSON Lease
    f(6, 0, 0, bytes(8, 4)), // PING
    f(1, 0x20, 3, bytes(40, 5)), // HEADERS with PRIORITY, no END_HEADERS
    f(9, 0x04, 3, bytes(30, 6)), // CONTINUATION
    f(0, 0x08, 3, bytes(300, 7)), // DATA, PADDED
    f(3, 0, 3, new Uint8Array([0, 0, 0, 8])), // RST_STREAM (CANCEL)
    f(0, 0, 5, bytes(3000, 8)), // a long DATA
    ...Array.from({ length: windowUpdates }, (_, i) => f(8, 0, 5, bytes(4, i))),
    f(2, 0, 5, bytes(5, 9)), // PRIORITY
    f(0, 0x01, 7, bytes(1, 10)), // a one-byte DATA
    f(0, 0x01, 9, new Uint8Array(0)), // an empty DATA
    f(7, 0, 0, bytes(8, 11)), // GOAWAY
    f(1, 0x05, 11, bytes(5, 12)), // HEADERS, END_STREAM
  ];
}

const LEASE_JSON = new TextEncoder().encode(
  '{"kind":"Lease","apiVersion":"coordination.k8s.io/v1","metadata":{"name":"n","namespace":"kube-node-lease"},"spec":{}}',
);

/** Whether a payload starts like a Lease, as the probe checks before copying a sent body. */
function leaseLike(payload: Uint8Array): boolean {
  const pb = Deno.readFileSync(`${HERE}testdata/lease_put_protobuf.bin`)
    .subarray(0, 37);
  const json = LEASE_JSON.subarray(0, 53);
  return [pb, json].some((prefix) =>
    prefix.every((b, i) => i >= payload.length || payload[i] === b)
  ) && payload.length > 0;
}

function captureSize(
  type: number,
  dir: "write" | "read",
  payload: Uint8Array,
): number {
  if (type === 0) return dir === "write" && leaseLike(payload) ? 256 : 0;
  if (type === 1) return dir === "read" ? 16 : 0;
  if (type === 3) return 4;
  if (type === 7) return 8;
  return 0;
}

/** What the probe should report for `frames` in direction `dir`. */
function expected(frames: Frame[], dir: "write" | "read") {
  return frames.filter((f) => REPORTED.has(f.type)).map((f) => ({
    type: f.type,
    flags: f.flags,
    streamId: f.streamId,
    length: f.payload.length,
    data: [
      ...f.payload.subarray(
        0,
        Math.min(captureSize(f.type, dir, f.payload), f.payload.length),
      ),
    ],
  }));
}

/** Rebuilds frames from FRAME records and the PAYLOAD records that continue them. */
function rebuild(records: GoTlsRecord[]) {
  const out: ReturnType<typeof expected> = [];
  for (const r of records) {
    if (r.kind === "frame") {
      assert.equal(r.offset, 0);
      out.push({
        type: r.type,
        flags: r.flags,
        streamId: r.streamId,
        length: r.length,
        data: [...r.data],
      });
    } else if (r.kind === "payload") {
      const last = out.at(-1);
      assert.ok(last, "a payload record follows a frame record");
      assert.deepEqual(
        [r.type, r.streamId, r.offset],
        [last.type, last.streamId, last.data.length],
      );
      last.data.push(...r.data);
    }
  }
  return out;
}

let h2echo: Promise<string> | null = null;

function buildH2echo(): Promise<string> {
  h2echo ??= (async () => {
    const dir = await Deno.makeTempDir({ prefix: "earthworm-h2echo-" });
    await run("go", [
      "build",
      "-trimpath",
      "-ldflags=-s -w",
      "-o",
      `${dir}/h2echo`,
      ".",
    ], `${HERE}wire/h2echo`);
    return `${dir}/h2echo`;
  })();
  return h2echo;
}

/** Runs h2echo with the probe attached once its connection is open. */
async function echo(
  stream: Uint8Array,
  splits: { w: string; r: string; W: string; R: string },
  buffer: "ring" | "perf",
) {
  const bin = await buildH2echo();
  const input = await Deno.makeTempFile();
  await Deno.writeFile(input, stream);
  const child = new Deno.Command(bin, {
    args: [
      "-in",
      input,
      "-skip",
      String(PREFACE.length),
      "-w",
      splits.w,
      "-r",
      splits.r,
      "-W",
      splits.W,
      "-R",
      splits.R,
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines: string[] = [];
  const reading = collectLines(child.stdout, lines);
  const stdin = child.stdin.getWriter();
  const records: GoTlsRecord[] = [];
  let exited = false;
  child.status.then(() => (exited = true));
  try {
    await until("h2echo to connect", 10_000, () => lines.length > 0);
    await using probe = await openGoTlsProbe({ pid: child.pid, buffer });
    assert.equal(probe.buffer, buffer);
    const consuming = (async () => {
      for await (const r of probe.records()) records.push(r);
    })();
    await stdin.write(new TextEncoder().encode("go\n"));
    await until(
      "the echo",
      30_000,
      () => lines.some((l) => l.startsWith("done")),
    );
    // Both connections are still open: find their sockets.
    await sleep(100);
    const conns = [...new Set(records.map((r) => r.conn))];
    const sockets = await Promise.all(
      conns.map((c) => goConnSocket(child.pid, c)),
    );
    await stdin.write(new TextEncoder().encode("close\n"));
    await until("h2echo to exit", 10_000, () => exited);
    await sleep(200);
    await probe.close();
    await consuming;
    return { records, sockets, stats: probe.stats(), drops: probe.drops() };
  } finally {
    await stdin.close().catch(() => {});
    await child.status;
    await reading;
    await Deno.remove(input);
  }
}

async function checkStraddling(
  windowUpdates: number,
  splits: { w: string; r: string; W: string; R: string },
  buffer: "ring" | "perf" = "ring",
) {
  const frames = frameStream(windowUpdates);
  const body = encodeFrames(frames);
  const stream = new Uint8Array(PREFACE.length + body.length);
  stream.set(PREFACE);
  stream.set(body, PREFACE.length);
  const { records, sockets, stats, drops } = await echo(
    stream,
    splits,
    buffer,
  );
  // The client's socket is the server's, seen from the other end.
  assert.equal(sockets.length, 2);
  const [a, b] = sockets;
  assert.ok(a && b, "both tls.Conns lead to their TCP sockets");
  assert.deepEqual([a.local, a.remote], [b.remote, b.local]);
  assert.match(a.local, /^127\.0\.0\.1:\d+$/);
  assert.equal(drops, 0);
  assert.equal(stats.desync, 0, "no frame header was ever invalid");
  assert.equal(stats.overflow, 0);
  const groups = new Map<string, GoTlsRecord[]>();
  for (const r of records) {
    if (r.kind === "close") continue;
    const key = `${r.conn}/${r.dir}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  // Client write, server read, server write, client read.
  assert.equal(groups.size, 4, [...groups.keys()].join(" "));
  for (const [key, group] of groups) {
    const dir = group[0]!.dir;
    assert.deepEqual(rebuild(group), expected(frames, dir), key);
    for (let i = 1; i < group.length; i++) {
      assert.ok(group[i]!.tsNs >= group[i - 1]!.tsNs, "records in time order");
    }
  }
  assert.equal(
    records.filter((r) => r.kind === "close").length,
    2,
    "both ends closed",
  );
}

Deno.test({
  name: "ebpf: the committed Go TLS record fixture is what gotls.h lays out",
  ignore: env.ignore,
}, async () => {
  env.check();
  const dir = await Deno.makeTempDir();
  try {
    await run("cc", [
      "-Wall",
      "-Werror",
      "-I",
      `${ROOT}bpf`,
      `${HERE}wire/gotls_fixture.c`,
      "-o",
      `${dir}/fixture`,
    ]);
    const out = await new Deno.Command(`${dir}/fixture`, { stdout: "piped" })
      .output();
    assert.deepEqual(
      out.stdout,
      await Deno.readFile(`${HERE}testdata/gotls_record_frame.bin`),
    );
    assert.equal(decodeGoTlsRecord(out.stdout).pid, 4242);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name:
    "ebpf: frames straddling Write and Read calls of a few bytes reach user space whole and in order",
  ignore: env.ignore,
}, async () => {
  env.check();
  await checkStraddling(40, {
    w: "24,1,2,3,5,7,11,13,64",
    r: "24,4,9,1,17,100",
    W: "21,1,8,9,10,100",
    R: "3,9,27,5,200",
  });
});

Deno.test({
  name:
    "ebpf: the perf buffer (kernels 5.5 to 5.7) delivers the same records in time order",
  ignore: env.ignore,
}, async () => {
  env.check();
  await checkStraddling(40, {
    w: "24,1,2,3,5,7,11,13,64",
    r: "24,4,9,1,17,100",
    W: "21,1,8,9,10,100",
    R: "3,9,27,5,200",
  }, "perf");
});

Deno.test({
  name:
    "ebpf: calls cut exactly at frame headers, and calls of a thousand frames, keep frame sync",
  ignore: env.ignore,
}, async () => {
  env.check();
  await checkStraddling(40, { w: "24,9", r: "24,9", W: "21,9", R: "9" });
  // About 1,200 WINDOW_UPDATE frames in one 16 KiB Write and Read: more
  // frames than one walker program parses, so it tail-calls itself.
  await checkStraddling(1200, {
    w: "24,16384",
    r: "24,16384",
    W: "21,16384",
    R: "16384",
  });
});

// ---------------------------------------------------------------------------
// A client-go kubelet against a real API server

interface Renewal {
  seq: number;
  startNs: number;
  endNs: number;
  latencyNs: number;
  sentResourceVersion: string;
  resourceVersion?: string;
  error?: string;
}

/** The sub-millisecond microseconds of an RFC 3339 time with six fraction digits. */
function micros(time: string): number {
  const frac = /\.(\d+)Z$/.exec(time)?.[1] ?? "";
  return Number(frac.padEnd(6, "0").slice(3, 6));
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

const RENEWALS = Number(Deno.env.get("EARTHWORM_GOTLS_RENEWALS") ?? "60");

Deno.test({
  name:
    "ebpf: every Lease renewal of a client-go kubelet on one HTTP/2 connection pairs with its own request and response",
  ignore: cluster.ignore,
  sanitizeResources: false, // the cluster harness's child processes
}, async () => {
  cluster.check();
  const bin = (await run("bash", [`${HERE}wire/gokubelet/build.sh`])).trim();
  const c = await startCluster();
  // The same probe on kube-apiserver: when its own TLS layer read each PUT
  // and wrote the answer. Its audit log times a narrower span (from its
  // handler chain's start to the handler's end); the difference is time
  // the wire cannot see from the node. Attached before the kubelet dials:
  // Go's HTTP/2 server reads each frame's 9-byte header and its payload in
  // separate calls, which never line up with a call's end as the probe's
  // mid-connection sync needs, so it syncs from the client preface.
  const apiserverPid = Number(
    (await Deno.readTextFile(`${c.dir}/pids/kube-apiserver.pid`)).trim(),
  );
  await using serverProbe = await openGoTlsProbe({ pid: apiserverPid });
  const serverFrames: GoTlsRecord[] = [];
  const consumingServer = (async () => {
    for await (const r of serverProbe.records()) {
      if (r.kind === "frame") serverFrames.push(r);
    }
  })();
  // The control plane shares this machine's cores with the client: the
  // stand-in kubelet runs at a higher priority so that its own scheduling
  // delays, which the wire cannot see, stay small.
  const child = new Deno.Command("nice", {
    args: [
      "-n",
      "-15",
      bin,
      "-kubeconfig",
      c.kubeconfigPath,
      "-node",
      "gotls-node",
      "-wait",
      "-renewals",
      String(RENEWALS),
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines: string[] = [];
  const reading = collectLines(child.stdout, lines);
  const stdin = child.stdin.getWriter();
  const statsWas = (await Deno.readTextFile(
    "/proc/sys/kernel/bpf_stats_enabled",
  )).trim();
  try {
    await until(
      "the kubelet to connect",
      60_000,
      () => lines.some((l) => l.includes('"ready"')),
    );
    await Deno.writeTextFile("/proc/sys/kernel/bpf_stats_enabled", "1");
    // Attached to a connection already open (Lease read, watches started):
    // frame sync comes from the frames themselves.
    await using probe = await openGoTlsProbe({ pid: child.pid });
    const tracker = new H2ExchangeTracker();
    const exchanges: LeaseExchange[] = [];
    let records = 0;
    const found: { socket: Promise<GoConnSocket | null> | null } = {
      socket: null,
    };
    const consuming = (async () => {
      for await (const r of probe.records()) {
        records++;
        const done = tracker.push(r);
        // While the connection is open: the socket under the tls.Conn.
        if (done.length > 0) {
          found.socket ??= goConnSocket(child.pid, done[0]!.conn);
        }
        exchanges.push(...done);
      }
    })();
    await stdin.write(new TextEncoder().encode("go\n"));
    const status = await child.status;
    assert.ok(status.success, "the kubelet ran its renewals");
    await sleep(300);
    const programs = probe.programs();
    const stats = probe.stats();
    await probe.close();
    await consuming;
    await reading;
    const serverDrops = serverProbe.drops();
    await serverProbe.close();
    await consumingServer;

    const events = lines.map((l) => JSON.parse(l));
    const dials = events.filter((e) => e.event === "dial");
    assert.equal(dials.length, 1, "one connection for everything");
    const renewals: Renewal[] = events.filter((e) => e.event === "renew");
    assert.equal(renewals.length, RENEWALS);
    assert.ok(renewals.every((r) => !r.error), "every renewal succeeded");

    // Pair by the resourceVersion each PUT carried: exact, not by time.
    const byVersion = new Map(exchanges.map((e) => [e.resourceVersion, e]));
    const paired = renewals.flatMap((r) => {
      const e = byVersion.get(r.sentResourceVersion);
      return e ? [{ r, e }] : [];
    });
    assert.ok(
      paired.length >= Math.ceil(0.99 * renewals.length),
      `${paired.length} of ${renewals.length} renewals paired`,
    );
    assert.equal(exchanges.length, paired.length, "no other exchange");
    for (const { e } of paired) {
      assert.equal(e.name, "gotls-node");
      assert.equal(e.namespace, "kube-node-lease");
      assert.equal(e.status, 200);
      assert.equal(e.outcome, "answered");
      assert.equal(e.encoding, "protobuf");
    }
    const streams = new Set(paired.map(({ e }) => e.streamId));
    assert.equal(streams.size, paired.length, "stream ids distinct");
    assert.equal(new Set(paired.map(({ e }) => e.conn)).size, 1);
    const under = await found.socket;
    assert.ok(under, "the tls.Conn leads to its TCP socket");
    assert.deepEqual(
      [under.local, under.remote],
      [dials[0].local, dials[0].remote],
      "the socket the kubelet dialled",
    );

    // The wire interval lies inside the client's own (one clock), and
    // the difference is what the client does before the HEADERS leave
    // and after the response ends.
    const answerErr: number[] = [], endErr: number[] = [];
    for (const { r, e } of paired) {
      const start = Number(e.startNs), answer = Number(e.answerNs);
      const end = Number(e.endNs);
      assert.ok(r.startNs <= start && start < answer && answer <= end, "order");
      assert.ok(end <= r.endNs, "the response ends before Update returns");
      answerErr.push((r.latencyNs - (answer - start)) / 1e6);
      endErr.push((r.latencyNs - (end - start)) / 1e6);
    }
    answerErr.sort((a, b) => a - b);
    endErr.sort((a, b) => a - b);

    // The API server's own latency for each PUT, from its audit log
    // (received → response complete, microseconds), in the same order.
    const audit = (await Deno.readTextFile(`${c.dir}/audit.log`))
      .split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l))
      .filter((a) =>
        a.verb === "update" && a.objectRef?.name === "gotls-node" &&
        a.stage === "ResponseComplete"
      );
    const serverMs = audit.map((a) =>
      (Date.parse(a.stageTimestamp) - Date.parse(a.requestReceivedTimestamp)) +
      (micros(a.stageTimestamp) - micros(a.requestReceivedTimestamp)) / 1000
    );
    // The probe's exchanges come in the order the PUTs went out; the audit
    // log also holds the Lease's creation-time updates of the warm-up.
    const tail = serverMs.slice(-paired.length);
    assert.equal(tail.length, paired.length, "an audit event per renewal");
    const serverErr = paired.map(({ e }, i) =>
      Math.abs(Number((e.endNs ?? e.startNs) - e.startNs) / 1e6 - tail[i]!)
    ).sort((a, b) => a - b);
    // The API server's side of the same PUTs: its connection to the
    // kubelet is the one whose streams carry them, read and answered
    // inside the kubelet's own interval (one clock: both probes stamp with
    // the kernel's monotonic clock).
    const { side, outside } = serverSide(
      serverFrames,
      paired.map(({ e }) => e),
    );
    assert.equal(
      outside,
      0,
      "the API server read and answered every PUT within the kubelet's wire interval",
    );
    assert.ok(
      side.length >= Math.ceil(0.9 * paired.length),
      `the API server's TLS layer shows ${side.length} of ${paired.length} PUTs`,
    );
    const auditByVersion = new Map(
      paired.map(({ e }, i) => [e.resourceVersion, tail[i]!]),
    );
    const serverToAudit: number[] = [], clientToServer: number[] = [];
    for (const { e, readNs, writeNs } of side) {
      const start = Number(e.startNs), end = Number(e.endNs ?? e.startNs);
      const serverMs = (writeNs - readNs) / 1e6;
      serverToAudit.push(serverMs - auditByVersion.get(e.resourceVersion)!);
      clientToServer.push((end - start) / 1e6 - serverMs);
    }
    serverToAudit.sort((a, b) => a - b);
    clientToServer.sort((a, b) => a - b);
    const perCall = Object.fromEntries(
      programs.map((p) => [
        p.name,
        p.runCount > 0n
          ? `${Number(p.runTimeNs / p.runCount)} ns x ${p.runCount}`
          : "0",
      ]),
    );
    console.error(
      JSON.stringify({
        renewals: renewals.length,
        paired: paired.length,
        records,
        stats,
        drops: probe.drops(),
        latencyErrorMs: {
          toApiServerLog: {
            p50: percentile(serverErr, 0.5),
            p90: percentile(serverErr, 0.9),
            p99: percentile(serverErr, 0.99),
          },
          toAnswer: {
            p50: percentile(answerErr, 0.5),
            p90: percentile(answerErr, 0.9),
            p99: percentile(answerErr, 0.99),
          },
          toEnd: {
            p50: percentile(endErr, 0.5),
            p90: percentile(endErr, 0.9),
            p99: percentile(endErr, 0.99),
          },
          // Inside kube-apiserver, between its TLS layer and its audit
          // timestamps: no wire measurement on the node can be closer to
          // the audit log than this.
          apiServerTlsToItsLog: {
            p50: percentile(serverToAudit, 0.5),
            p90: percentile(serverToAudit, 0.9),
            p99: percentile(serverToAudit, 0.99),
          },
          // The node's wire interval minus the API server's TLS interval:
          // loopback, both sides' TLS and the kubelet's own scheduling.
          wireToApiServerTls: {
            p50: percentile(clientToServer, 0.5),
            p90: percentile(clientToServer, 0.9),
            p99: percentile(clientToServer, 0.99),
          },
        },
        apiServerSide: { puts: side.length, drops: serverDrops },
        bpfPerCall: perCall,
      }),
    );
    assert.equal(probe.drops(), 0);
    assert.equal(stats.desync, 0);
    assert.ok(percentile(endErr, 0.5) < 1, "median error under 1 ms");
  } finally {
    await Deno.writeTextFile("/proc/sys/kernel/bpf_stats_enabled", statsWas)
      .catch(() => {});
    await stdin.close().catch(() => {});
    try {
      child.kill("SIGKILL");
    } catch {
      // exited
    }
    await child.status;
    await reading.catch(() => {});
    await c.stop();
  }
});

Deno.test({
  name: "ebpf: the h2echo build directory is removed",
  ignore: env.ignore,
}, async () => {
  if (h2echo) {
    await Deno.remove((await h2echo).replace(/\/h2echo$/, ""), {
      recursive: true,
    });
  }
});

/**
 * For each exchange of the kubelet's connection, when kube-apiserver's TLS
 * layer read the HEADERS that opened its stream and wrote the frame that
 * ended the answer, on the server's connection that carried those streams
 * (its tls.Conn is a different object from the kubelet's: it is found as
 * the connection on which the most streams were read and answered within
 * their exchange's interval). `outside` counts the exchanges whose stream
 * that connection read and answered outside their interval: none, if one
 * clock and causality hold.
 */
function serverSide(
  frames: GoTlsRecord[],
  exchanges: LeaseExchange[],
): {
  side: { e: LeaseExchange; readNs: number; writeNs: number }[];
  outside: number;
} {
  const byConn = new Map<
    string,
    Map<number, { readNs?: number; writeNs?: number }>
  >();
  for (const f of frames) {
    let streams = byConn.get(f.conn);
    if (!streams) byConn.set(f.conn, streams = new Map());
    let s = streams.get(f.streamId);
    if (!s) streams.set(f.streamId, s = {});
    const ns = Number(f.tsNs);
    if (f.dir === "read" && f.type === 1 && s.readNs === undefined) {
      s.readNs = ns;
    } else if (f.dir === "write" && (f.flags & 1) !== 0) s.writeNs = ns;
  }
  let best: ReturnType<typeof serverSide> = { side: [], outside: 0 };
  for (const streams of byConn.values()) {
    const side: { e: LeaseExchange; readNs: number; writeNs: number }[] = [];
    let outside = 0;
    for (const e of exchanges) {
      const s = streams.get(e.streamId);
      if (s?.readNs === undefined || s.writeNs === undefined) continue;
      const within = Number(e.startNs) <= s.readNs && s.readNs < s.writeNs &&
        s.writeNs <= Number(e.endNs ?? e.startNs);
      if (within) side.push({ e, readNs: s.readNs, writeNs: s.writeNs });
      else outside++;
    }
    if (side.length > best.side.length) best = { side, outside };
  }
  return best;
}
