/**
 * Wire probe overhead on traffic that is not the kubelet's (issue 10, item
 * 5), run by hand as root; not part of `deno task test` or `deno task bench`:
 *
 *     sudo deno run -A tests/bench/wire_overhead.ts [--seconds 2] [--reps 5]
 *       [--paths lo,veth] [--streams 1] [--write 131072] [--comm kubelet]
 *       [--port 6443] [--same-port] [--no-stats] [--json]
 *
 * A process named `ewtraffic` (built from `overhead_traffic.c` into
 * `~/.cache/earthworm/overhead/`) sends TCP as fast as it goes to another
 * port than the followed one, over loopback and over a veth pair between
 * two network namespaces made for the run (10.251.0.1 → 10.251.0.2, removed
 * afterwards, even on failure or Ctrl-C): each segment crosses cgroup_skb
 * egress and ingress as pod traffic does. Windows of `--seconds` alternate,
 * in rotating order, between no program, empty cgroup_skb programs attached
 * like the probe (`empty_skb.bpf.c`: the hook's own cost) and the probe
 * (`openWireProbe`); each is measured `--reps` times in the one run.
 *
 * Reported per path: throughput (bytes/s, segments/s) and its ratio with
 * and without each program set (median and range over the repetitions);
 * the same ratio for bytes per CPU-second of the sender's and the sink's
 * threads, which tells the cost per byte even when other work on a shared
 * machine takes the CPUs the traffic would use; and,
 * from `bpf_prog_info` with `kernel.bpf_stats_enabled=1` (restored after),
 * each program's ns per run, its runs per unrelated packet (packets: the
 * sender's segments out + in, as TCP counts them, so a GSO super-packet of
 * n MSS counts n), and ns per unrelated packet in total. Other traffic on
 * the machine runs the programs too and is counted in their runs. Stats
 * add two clock reads per run: `--no-stats` measures throughput without
 * them (and no per-run cost). `--same-port` sends to the followed port
 * instead (another process talking to the API server: the probe's second
 * filter). The 1-minute load average is printed with every window.
 *
 * @module
 */

import { openWireProbe, type WireProbe } from "../../bpf/wire_probe.ts";
import {
  type BpfLink,
  BpfObject,
  type FileDescriptor,
  Libbpf,
  type ProgramInfo,
} from "../../bpf/libbpf.ts";
import { detectCgroup2 } from "../../bpf/cgroup.ts";
import { configureLogger } from "../../core/log.ts";

const HERE = new URL(".", import.meta.url).pathname;
const STATS = "/proc/sys/kernel/bpf_stats_enabled";
const TRAFFIC_COMM = "ewtraffic";
const WARMUP_MS = 400;
const NS_PREFIX = "ewovh-";
const ADDR_A = "10.251.0.1";
const ADDR_B = "10.251.0.2";

type Mode = "none" | "empty" | "probe";
const MODES: Mode[] = ["none", "empty", "probe"];

interface Options {
  seconds: number;
  reps: number;
  paths: string[];
  streams: number;
  write: number;
  comm: string;
  port: number;
  samePort: boolean;
  stats: boolean;
  json: boolean;
}

function parseOptions(args: string[]): Options {
  const o: Options = {
    seconds: 2,
    reps: 5,
    paths: ["lo", "veth"],
    streams: 1,
    write: 131072,
    comm: "kubelet",
    port: 6443,
    samePort: false,
    stats: true,
    json: false,
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const value = () => {
      const v = args[++i];
      if (v === undefined) throw new Error(`Flag "${a}" needs a value`);
      return v;
    };
    const number = (min: number, max: number) => {
      const v = Number(value());
      if (!Number.isFinite(v) || v < min || v > max) {
        throw new RangeError(
          `Flag "${a}" takes a number from ${min} to ${max}`,
        );
      }
      return v;
    };
    if (a === "--seconds") o.seconds = number(0.2, 600);
    else if (a === "--reps") o.reps = Math.round(number(1, 100));
    else if (a === "--streams") o.streams = Math.round(number(1, 64));
    else if (a === "--write") o.write = Math.round(number(1, 1 << 24));
    else if (a === "--port") o.port = Math.round(number(1, 65535));
    else if (a === "--comm") o.comm = value();
    else if (a === "--same-port") o.samePort = true;
    else if (a === "--no-stats") o.stats = false;
    else if (a === "--json") o.json = true;
    else if (a === "--paths") {
      o.paths = value().split(",");
      for (const p of o.paths) {
        if (p !== "lo" && p !== "veth") {
          throw new Error(`Unknown path "${p}": use lo, veth or lo,veth`);
        }
      }
    } else throw new Error(`Unknown flag "${a}": see the module doc`);
  }
  if (o.comm === TRAFFIC_COMM) {
    throw new Error(
      `The followed process "${o.comm}" is the traffic generator's name: follow another`,
    );
  }
  return o;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function loadavg(): string {
  return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(
    " ",
  );
}

async function run(cmd: string, ...args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, {
    args,
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  if (!out.success) {
    throw new Error(
      `"${cmd} ${args.join(" ")}" failed: ${
        new TextDecoder().decode(out.stderr).trim()
      }`,
    );
  }
  return new TextDecoder().decode(out.stdout);
}

/** Builds the traffic generator and the empty programs once per source. */
async function build(): Promise<{ traffic: string; empty: string }> {
  const traffic = await Deno.readFile(`${HERE}overhead_traffic.c`);
  const empty = await Deno.readFile(`${HERE}empty_skb.bpf.c`);
  const digest = new Uint8Array(
    await crypto.subtle.digest(
      "SHA-256",
      new Uint8Array([...traffic, 0, ...empty]),
    ),
  );
  const hash = [...digest.subarray(0, 6)].map((b) =>
    b.toString(16).padStart(2, "0")
  ).join("");
  const dir = `${
    Deno.env.get("HOME") ?? "/root"
  }/.cache/earthworm/overhead/${hash}`;
  const out = {
    traffic: `${dir}/${TRAFFIC_COMM}`,
    empty: `${dir}/empty_skb.bpf.o`,
  };
  try {
    Deno.statSync(out.traffic);
    Deno.statSync(out.empty);
    return out;
  } catch {
    // not built yet
  }
  await Deno.mkdir(dir, { recursive: true });
  await run(
    "gcc",
    "-O2",
    "-Wall",
    "-pthread",
    "-o",
    out.traffic,
    `${HERE}overhead_traffic.c`,
  );
  await run(
    "clang",
    "-O2",
    "-g",
    "-target",
    "bpf",
    "-c",
    `${HERE}empty_skb.bpf.c`,
    "-o",
    out.empty,
  );
  return out;
}

/** Lines of a child's standard output, read one at a time. */
class Lines {
  #reader: ReadableStreamDefaultReader<string>;
  #rest = "";
  #lines: string[] = [];

  constructor(stream: ReadableStream<Uint8Array<ArrayBuffer>>) {
    this.#reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  }

  async next(what: string): Promise<string> {
    while (this.#lines.length === 0) {
      const { value, done } = await this.#reader.read();
      if (done) throw new Error(`${what} exited before answering`);
      const parts = (this.#rest + value).split("\n");
      this.#rest = parts.pop() ?? "";
      this.#lines.push(...parts);
    }
    return this.#lines.shift()!;
  }

  cancel(): void {
    this.#reader.cancel().catch(() => {});
  }
}

/** Everything the run must undo, undone in reverse order, once. */
class Cleanup {
  #steps: { what: string; step: () => unknown }[] = [];

  add(what: string, step: () => unknown): void {
    this.#steps.push({ what, step });
  }

  async run(): Promise<void> {
    while (this.#steps.length > 0) {
      const { what, step } = this.#steps.pop()!;
      try {
        await step();
      } catch (e) {
        console.error(
          `cleanup: ${what}: ${e instanceof Error ? e.message : e}`,
        );
      }
    }
  }
}

function spawn(cleanup: Cleanup, argv: string[], stdin: boolean) {
  const child = new Deno.Command(argv[0]!, {
    args: argv.slice(1),
    stdin: stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = new Lines(child.stdout);
  const stop = async () => {
    lines.cancel();
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
    await child.status;
  };
  cleanup.add(`stop ${argv.join(" ")}`, stop);
  return { child, lines, stop };
}

/** A place the traffic goes through: loopback, or a veth pair. */
interface Path {
  name: string;
  /** argv prefix that runs a command on the sending side. */
  sendVia: string[];
  sinkVia: string[];
  address: string;
}

async function removeStaleNamespaces(): Promise<void> {
  const list = await run("ip", "netns", "list");
  for (const line of list.split("\n")) {
    const m = new RegExp(`^(${NS_PREFIX}(\\d+)-[ab])\\b`).exec(line);
    if (!m) continue;
    try {
      Deno.statSync(`/proc/${m[2]}`);
      continue; // its run is still going
    } catch {
      await run("ip", "netns", "delete", m[1]!);
    }
  }
}

async function vethPath(cleanup: Cleanup): Promise<Path> {
  const a = `${NS_PREFIX}${Deno.pid}-a`, b = `${NS_PREFIX}${Deno.pid}-b`;
  const ifA = `ewo${Deno.pid}a`, ifB = `ewo${Deno.pid}b`;
  await run("ip", "netns", "add", a);
  cleanup.add(`remove netns ${a}`, () => run("ip", "netns", "delete", a));
  await run("ip", "netns", "add", b);
  cleanup.add(`remove netns ${b}`, () => run("ip", "netns", "delete", b));
  await run("ip", "link", "add", ifA, "type", "veth", "peer", "name", ifB);
  cleanup.add(`remove ${ifA}`, async () => {
    // Gone with its namespace normally; left in the host's if moving failed.
    if ((await run("ip", "-o", "link", "show")).includes(` ${ifA}@`)) {
      await run("ip", "link", "delete", ifA);
    }
  });
  await run("ip", "link", "set", ifA, "netns", a);
  await run("ip", "link", "set", ifB, "netns", b);
  for (const [ns, dev, addr] of [[a, ifA, ADDR_A], [b, ifB, ADDR_B]]) {
    await run("ip", "-n", ns!, "addr", "add", `${addr}/30`, "dev", dev!);
    await run("ip", "-n", ns!, "link", "set", dev!, "up");
    await run("ip", "-n", ns!, "link", "set", "lo", "up");
  }
  return {
    name: "veth",
    sendVia: ["ip", "netns", "exec", a],
    sinkVia: ["ip", "netns", "exec", b],
    address: ADDR_B,
  };
}

/** A set of attached programs whose run statistics can be read. */
interface Attached {
  programs(): ProgramInfo[];
  close(): Promise<void>;
}

/** The empty cgroup_skb programs, loaded once, attached per window. */
class EmptyPrograms implements Disposable {
  #lib: Libbpf;
  #obj: BpfObject;
  #cgroup: FileDescriptor;

  constructor(object: Uint8Array, cgroupPath: string) {
    this.#lib = new Libbpf();
    this.#obj = new BpfObject(this.#lib, object, "empty_skb");
    this.#obj.load();
    this.#cgroup = this.#lib.openDirectory(cgroupPath);
  }

  /** Kernel ids of the egress and ingress programs. */
  ids(): number[] {
    return ["empty_egress", "empty_ingress"].map((n) =>
      this.#obj.programInfo(this.#obj.program(n)).id
    );
  }

  /** See {@link Libbpf.testRun}. */
  testRun(id: number, packet: Uint8Array, repeat: number) {
    return this.#lib.testRun(id, packet, repeat);
  }

  attach(): Attached {
    const progs = ["empty_egress", "empty_ingress"].map((n) =>
      this.#obj.program(n)
    );
    const links: BpfLink[] = [];
    try {
      for (const p of progs) {
        links.push(this.#obj.attachCgroup(p, this.#cgroup));
      }
    } catch (e) {
      for (const l of links) l[Symbol.dispose]();
      throw e;
    }
    return {
      programs: () => progs.map((p) => this.#obj.programInfo(p)),
      close: () => {
        for (const l of links) l[Symbol.dispose]();
        return Promise.resolve();
      },
    };
  }

  [Symbol.dispose](): void {
    this.#cgroup[Symbol.dispose]();
    this.#obj[Symbol.dispose]();
    this.#lib[Symbol.dispose]();
  }
}

/**
 * cgroup_skb programs that others attached to the cgroup (through bpftool,
 * when installed): they would run in every window, "none" included.
 */
async function foreignPrograms(
  cgroupPath: string,
  ours: number[],
): Promise<number | null> {
  let text: string;
  try {
    text = await run("bpftool", "-j", "cgroup", "show", cgroupPath);
  } catch {
    return null;
  }
  const attached = (text.trim() ? JSON.parse(text) : []) as {
    id: number;
    attach_type: string;
  }[];
  return attached.filter((a) =>
    /ingress|egress/.test(a.attach_type) && !ours.includes(a.id)
  ).length;
}

/** What one window measured. */
interface WindowResult {
  path: string;
  mode: Mode;
  rep: number;
  seconds: number;
  bytes: number;
  segsOut: number;
  segsIn: number;
  /** CPU time of the sender's and the sink's threads during the window. */
  cpuNs: number;
  programs: { name: string; runs: number; ns: number }[];
  statsOn: boolean;
  load: string;
  /** cgroup_skb programs of others on the cgroup (null: unknown). */
  foreign: number | null;
}

function parseMark(line: string) {
  const m = /^mark (\d+) (\d+) (\d+) (\d+)$/.exec(line);
  if (!m) throw new Error(`Unexpected line from ${TRAFFIC_COMM}: "${line}"`);
  return {
    ns: BigInt(m[1]!),
    bytes: Number(m[2]),
    out: Number(m[3]),
    in: Number(m[4]),
  };
}

/**
 * CPU time (ns, from schedstat) the threads of `pids` have run. Softirq work
 * done in their context (most of loopback and veth receive) is included.
 */
function cpuNs(pids: number[]): number {
  let sum = 0;
  for (const pid of pids) {
    for (const task of Deno.readDirSync(`/proc/${pid}/task`)) {
      try {
        sum += Number(
          Deno.readTextFileSync(`/proc/${pid}/task/${task.name}/schedstat`)
            .split(" ")[0],
        );
      } catch {
        // the thread ended meanwhile
      }
    }
  }
  return sum;
}

async function measureWindow(
  o: Options,
  sinkPid: number,
  cleanup: Cleanup,
  bin: string,
  cgroupPath: string,
  path: Path,
  port: number,
  mode: Mode,
  rep: number,
  attach: () => Promise<Attached | null>,
): Promise<WindowResult> {
  const attached = await attach();
  const inner = new Cleanup();
  if (attached) inner.add("detach", () => attached.close());
  cleanup.add("window", () => inner.run());
  try {
    const sender = spawn(inner, [
      ...path.sendVia,
      bin,
      "send",
      path.address,
      String(port),
      String(o.streams),
      String(o.write),
    ], true);
    const stdin = sender.child.stdin.getWriter();
    inner.add("close stdin", () => stdin.close().catch(() => {}));
    const mark = async () => {
      await stdin.write(new TextEncoder().encode("m\n"));
      return parseMark(await sender.lines.next(TRAFFIC_COMM));
    };
    await mark(); // connected
    await sleep(WARMUP_MS);
    const pids = [sender.child.pid, sinkPid];
    const p0 = attached?.programs() ?? [];
    const c0 = cpuNs(pids);
    const m0 = await mark();
    await sleep(o.seconds * 1000);
    const m1 = await mark();
    const c1 = cpuNs(pids);
    const p1 = attached?.programs() ?? [];
    const statsOn = (await Deno.readTextFile(STATS)).trim() === "1";
    const foreign = await foreignPrograms(cgroupPath, p1.map((p) => p.id));
    return {
      path: path.name,
      mode,
      rep,
      seconds: Number(m1.ns - m0.ns) / 1e9,
      bytes: m1.bytes - m0.bytes,
      segsOut: m1.out - m0.out,
      segsIn: m1.in - m0.in,
      cpuNs: c1 - c0,
      programs: p1.map((a) => {
        const b = p0.find((x) => x.name === a.name);
        return {
          name: a.name,
          runs: Number(a.runCount - (b?.runCount ?? 0n)),
          ns: Number(a.runTimeNs - (b?.runTimeNs ?? 0n)),
        };
      }),
      statsOn,
      load: loadavg(),
      foreign,
    };
  } finally {
    await inner.run();
  }
}

/**
 * An Ethernet + IPv4 + TCP segment with 100 bytes of payload to `port`, for
 * BPF_PROG_TEST_RUN (whose dummy socket has remote port 0: the unrelated
 * path).
 */
function testPacket(port: number): Uint8Array {
  const p = new Uint8Array(14 + 20 + 20 + 100);
  const v = new DataView(p.buffer);
  v.setUint16(12, 0x0800); // IPv4
  v.setUint8(14, 0x45);
  v.setUint16(16, 20 + 20 + 100);
  v.setUint8(22, 64);
  v.setUint8(23, 6); // TCP
  p.set([127, 0, 0, 1], 26);
  p.set([127, 0, 0, 1], 30);
  v.setUint16(34, 40000);
  v.setUint16(36, port);
  v.setUint8(46, 5 << 4);
  v.setUint8(47, 0x18); // PSH ACK
  return p;
}

/**
 * Run time of each cgroup_skb program on one unrelated packet in the
 * kernel's test runner, empty and probe programs in alternating rounds:
 * no per-run clock reads (stats are off meanwhile) and no other traffic,
 * but hot caches.
 */
async function isolated(
  o: Options,
  empty: EmptyPrograms,
  cgroupPath: string,
  cleanup: Cleanup,
): Promise<Record<string, number[]>> {
  const probe = await openWireProbe({
    comm: o.comm,
    port: o.port,
    cgroupPath,
  });
  cleanup.add("close the probe", () => probe.close());
  try {
    const ids: Record<string, number> = {};
    const [eg, ing] = empty.ids();
    ids.empty_egress = eg!;
    ids.empty_ingress = ing!;
    for (const p of probe.programs()) {
      if (p.name === "ew_egress" || p.name === "ew_ingress") ids[p.name] = p.id;
    }
    // Stats would time each run with two clock reads: off meanwhile.
    await Deno.writeTextFile(STATS, "0");
    const packet = testPacket(o.samePort ? o.port : 5201);
    const out: Record<string, number[]> = {};
    for (let round = 0; round < 20; round++) {
      for (const [name, id] of Object.entries(ids)) {
        const r = empty.testRun(id, packet, 200_000);
        if (r.retval !== 1) {
          throw new Error(`Program "${name}" returned ${r.retval}, not 1`);
        }
        (out[name] ??= []).push(r.nsPerRun);
      }
    }
    return out;
  } finally {
    await Deno.writeTextFile(STATS, o.stats ? "1" : "0");
    await probe.close();
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const fmt = (x: number, digits = 1) =>
  Number.isFinite(x) ? x.toFixed(digits) : "-";

function spread(xs: number[], digits: number, scale = 1): string {
  if (xs.length === 0) return "-";
  return `${fmt(median(xs) * scale, digits)} (${
    fmt(Math.min(...xs) * scale, digits)
  }–${fmt(Math.max(...xs) * scale, digits)})`;
}

/** Per-path figures from its windows. */
function summarize(windows: WindowResult[], stats: boolean) {
  const by = (mode: Mode) => windows.filter((w) => w.mode === mode);
  const rate = (w: WindowResult) => w.bytes / w.seconds;
  const perCpu = (w: WindowResult) => w.bytes / w.cpuNs * 1e9;
  const ratio = (mode: Mode, f: (w: WindowResult) => number) => {
    const out: number[] = [];
    for (const w of by(mode)) {
      const base = by("none").find((n) => n.rep === w.rep);
      if (base) out.push(f(w) / f(base));
    }
    return out;
  };
  const costs = (mode: Mode) => {
    const ws = by(mode).filter((w) => w.statsOn);
    const packets = ws.reduce((s, w) => s + w.segsOut + w.segsIn, 0);
    const names = [
      ...new Set(ws.flatMap((w) => w.programs.map((p) => p.name))),
    ];
    const programs = names.map((name) => {
      const mine = ws.map((w) => w.programs.find((p) => p.name === name)!);
      const runs = mine.reduce((s, p) => s + p.runs, 0);
      const ns = mine.reduce((s, p) => s + p.ns, 0);
      return {
        name,
        runs,
        nsPerRun: runs ? ns / runs : NaN,
        nsPerRunWindows: mine.filter((p) => p.runs > 0).map((p) =>
          p.ns / p.runs
        ),
        runsPerPacket: runs / packets,
        nsPerPacket: ns / packets,
      };
    });
    const perWindow = ws.map((w) =>
      w.programs.reduce((s, p) => s + p.ns, 0) / (w.segsOut + w.segsIn)
    );
    const cpu = ws.reduce((s, w) => s + w.cpuNs, 0);
    const ns = ws.reduce(
      (s, w) => s + w.programs.reduce((t, p) => t + p.ns, 0),
      0,
    );
    return {
      programs,
      /** Programs' run time over the traffic's own CPU time. */
      cpuShare: ns / cpu,
      nsPerPacket: programs.reduce((s, p) => s + p.nsPerPacket, 0),
      nsPerPacketWindows: perWindow,
      runsPerPacket: programs.reduce((s, p) => s + p.runsPerPacket, 0),
    };
  };
  return {
    throughput: Object.fromEntries(MODES.map((m) => [m, {
      bytesPerS: by(m).map(rate),
      segsOutPerS: by(m).map((w) => w.segsOut / w.seconds),
      packetsPerS: by(m).map((w) => (w.segsOut + w.segsIn) / w.seconds),
      bytesPerCpuS: by(m).map(perCpu),
    }])),
    ratioEmpty: ratio("empty", rate),
    ratioProbe: ratio("probe", rate),
    cpuRatioEmpty: ratio("empty", perCpu),
    cpuRatioProbe: ratio("probe", perCpu),
    empty: stats ? costs("empty") : null,
    probe: stats ? costs("probe") : null,
    load: windows.map((w) => Number(w.load.split(" ")[0])),
    windows: windows.length,
    foreignWindows: windows.filter((w) => w.foreign).length,
  };
}

function report(path: string, s: ReturnType<typeof summarize>): void {
  console.log(`\n== ${path}: median (min–max) over the repetitions`);
  for (const m of MODES) {
    const t = s.throughput[m]!;
    console.log(
      `${m.padEnd(6)} ${spread(t.bytesPerS, 2, 1e-9).padEnd(24)} GB/s  ${
        spread(t.segsOutPerS, 1, 1e-3).padEnd(22)
      } k segments out/s  ${spread(t.packetsPerS, 1, 1e-3)} k packets/s  ${
        spread(t.bytesPerCpuS, 2, 1e-9)
      } GB per CPU-second`,
    );
  }
  console.log(
    `throughput with/without: empty programs ${
      spread(s.ratioEmpty, 2, 100)
    } %, probe ${spread(s.ratioProbe, 2, 100)} %`,
  );
  console.log(
    `bytes per CPU-second with/without: empty programs ${
      spread(s.cpuRatioEmpty, 2, 100)
    } %, probe ${spread(s.cpuRatioProbe, 2, 100)} %`,
  );
  for (const [label, c] of [["empty", s.empty], ["probe", s.probe]] as const) {
    if (!c) continue;
    console.log(
      `${label}: program            runs    ns/run (window range)   runs/packet   ns/packet`,
    );
    for (const p of c.programs) {
      console.log(
        `  ${p.name.padEnd(18)} ${String(p.runs).padStart(9)}  ${
          `${fmt(p.nsPerRun)} (${fmt(Math.min(...p.nsPerRunWindows))}–${
            fmt(Math.max(...p.nsPerRunWindows))
          })`.padEnd(22)
        } ${fmt(p.runsPerPacket, 4).padStart(10)}  ${
          fmt(p.nsPerPacket, 2).padStart(10)
        }`,
      );
    }
    console.log(
      `  total: ${fmt(c.runsPerPacket, 4)} runs and ${
        fmt(c.nsPerPacket, 2)
      } ns per unrelated packet (windows ${spread(c.nsPerPacketWindows, 2)})`,
    );
    console.log(
      `  run time = ${
        fmt(c.cpuShare * 100, 2)
      } % of the traffic's own CPU time (other traffic's runs included)`,
    );
  }
  if (s.empty && s.probe) {
    console.log(
      `probe's own cost over the empty hook: ${
        fmt(s.probe.nsPerPacket - s.empty.nsPerPacket, 2)
      } ns per unrelated packet`,
    );
  }
  if (s.foreignWindows > 0) {
    console.log(
      `others' cgroup_skb programs were attached at the end of ${s.foreignWindows} of ${s.windows} windows: they ran in "none" too`,
    );
  }
  console.log(
    `load average (1 min) during the windows: ${fmt(Math.min(...s.load), 2)}–${
      fmt(Math.max(...s.load), 2)
    }`,
  );
}

async function main(o: Options): Promise<void> {
  if (Deno.uid() !== 0) throw new Error("Run the overhead bench as root");
  configureLogger({ level: "warn" });
  const cleanup = new Cleanup();
  const onSignal = () => {
    console.error("interrupted: cleaning up");
    cleanup.run().finally(() => Deno.exit(130));
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  try {
    const bins = await build();
    const cgroupPath = detectCgroup2();
    if (cgroupPath === null) {
      throw new Error("No cgroup v2 hierarchy is mounted");
    }
    const previousStats = (await Deno.readTextFile(STATS)).trim();
    cleanup.add(
      `restore ${STATS}=${previousStats}`,
      () => Deno.writeTextFile(STATS, previousStats),
    );
    await Deno.writeTextFile(STATS, o.stats ? "1" : "0");
    const empty = new EmptyPrograms(
      await Deno.readFile(bins.empty),
      cgroupPath,
    );
    cleanup.add("unload the empty programs", () => empty[Symbol.dispose]());
    await removeStaleNamespaces();
    console.log(
      `wire overhead: ${o.reps} × ${o.seconds} s windows per mode, ${o.streams} stream(s) of ${o.write}-byte writes by "${TRAFFIC_COMM}", probe follows "${o.comm}" on port ${o.port}, cgroup ${cgroupPath}, bpf_stats ${
        o.stats ? "on" : "off"
      } (was ${previousStats}), load ${loadavg()}, kernel ${Deno.osRelease()}`,
    );
    const alone = await isolated(o, empty, cgroupPath, cleanup);
    console.log(
      "\n== one unrelated packet in BPF_PROG_TEST_RUN (20 rounds of 200,000 runs): ns/run, median (min–max)",
    );
    for (const [name, ns] of Object.entries(alone)) {
      console.log(`  ${name.padEnd(14)} ${spread(ns, 1)}`);
    }
    console.log(`load ${loadavg()}\n`);
    const summaries: Record<string, unknown> = { isolated: alone };
    const all: WindowResult[] = [];
    for (const name of o.paths) {
      const pathCleanup = new Cleanup();
      cleanup.add(`tear down ${name}`, () => pathCleanup.run());
      try {
        const path: Path = name === "veth"
          ? await vethPath(pathCleanup)
          : { name: "lo", sendVia: [], sinkVia: [], address: "127.0.0.1" };
        const sink = spawn(pathCleanup, [
          ...path.sinkVia,
          bins.traffic,
          "sink",
          String(o.samePort ? o.port : 0),
        ], false);
        const port = Number(
          /^ready (\d+)$/.exec(await sink.lines.next("sink"))?.[1],
        );
        if (port === o.port && !o.samePort) {
          throw new Error(`The sink got the followed port ${port}: run again`);
        }
        const windows: WindowResult[] = [];
        for (let rep = 1; rep <= o.reps; rep++) {
          // Rotate the order so no mode always follows another.
          const order = MODES.map((_, i) =>
            MODES[(i + rep - 1) % MODES.length]!
          );
          for (const mode of order) {
            const attach = async (): Promise<Attached | null> => {
              if (mode === "none") return null;
              if (mode === "empty") return empty.attach();
              const probe: WireProbe = await openWireProbe({
                comm: o.comm,
                port: o.port,
                cgroupPath,
              });
              return {
                programs: () => probe.programs(),
                close: () => probe.close(),
              };
            };
            const w = await measureWindow(
              o,
              sink.child.pid,
              cleanup,
              bins.traffic,
              cgroupPath,
              path,
              port,
              mode,
              rep,
              attach,
            );
            windows.push(w);
            console.log(
              `${name.padEnd(4)} rep ${rep} ${mode.padEnd(5)} ${
                fmt(w.bytes / w.seconds / 1e9, 2)
              } GB/s ${
                fmt(w.segsOut / w.seconds / 1e3)
              } k seg/s  load ${w.load}${
                w.foreign
                  ? `  (${w.foreign} cgroup_skb programs of others attached)`
                  : ""
              }${
                w.statsOn || !o.stats
                  ? ""
                  : "  (bpf_stats were switched off meanwhile: not counted)"
              }`,
            );
          }
        }
        const s = summarize(windows, o.stats);
        summaries[name] = s;
        all.push(...windows);
        report(name, s);
      } finally {
        await pathCleanup.run();
      }
    }
    if (o.json) {
      console.log(JSON.stringify({ options: o, summaries, windows: all }));
    }
  } finally {
    await cleanup.run();
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
  }
}

if (import.meta.main) {
  await main(parseOptions(Deno.args));
}
