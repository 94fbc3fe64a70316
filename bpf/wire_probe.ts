/**
 * The wire probe: loads the embedded `heartbeat.bpf.o` through libbpf,
 * attaches it, adopts the connections the target process already holds and
 * yields decoded events. Throws {@link WireUnavailableError} with the reason
 * when eBPF cannot run here, so callers can go on lease-only.
 *
 * @module
 */

import heartbeatObject from "./heartbeat.bpf.o" with { type: "bytes" };
import { getLogger } from "../core/log.ts";
import {
  type BpfLink,
  BpfObject,
  Libbpf,
  LibbpfError,
  MapType,
  type ProgramInfo,
} from "./libbpf.ts";
import { type EventBuffer, PerfBuffer, RingBuffer } from "./event_buffer.ts";
import { decodeWireEvent, encodeOwner, encodeTuple } from "./wire_event.ts";
import type { RawWireEvent } from "../core/wire_types.ts";
import { AsyncQueue } from "../core/async_queue.ts";
import { WireUnavailableError } from "../core/errors.ts";
import { findConnections, pidsOf } from "./proc_scan.ts";
import {
  type ApiserverEndpoint,
  discoverApiserver,
} from "./apiserver_endpoint.ts";
import { detectCgroup2 } from "./cgroup.ts";

const log = getLogger("wire");

const CGROUP_PROGRAMS = [
  "ew_connect4",
  "ew_connect6",
  "ew_egress",
  "ew_ingress",
];
const TRACE_PROGRAMS = [
  "ew_retransmit",
  "ew_send_reset",
  "ew_receive_reset",
  "ew_state",
];
const BPF_NOEXIST = 1n;
const POLL_MS = 100;
const QUEUE_LIMIT = 65536;
const PERF_PAGES = 64;

/** Settings of {@link openWireProbe}. */
export interface WireProbeOptions {
  /** Process name (kernel comm, at most 15 bytes) to follow; default `kubelet`. */
  comm?: string;
  /**
   * Remote TCP port of the API server. Default: discovered from the
   * kubelet's kubeconfig or its own connections (`apiserver_endpoint.ts`).
   */
  port?: number;
  /** Event buffer: `auto` (ring on 5.8+, else perf), or forced. */
  buffer?: "auto" | "ring" | "perf";
  /** cgroup v2 directory to attach to; default: the detected cgroup2 root. */
  cgroupPath?: string;
  /** libbpf to load; default `libbpf.so.1` (or `$EARTHWORM_LIBBPF`). */
  libbpfPath?: string;
  /** Whether to adopt connections opened before the probe; default true. */
  adoptExisting?: boolean;
  /** Closes the probe when aborted. */
  signal?: AbortSignal;
}

/** A running probe. Close it (or abort its signal) to detach everything. */
export interface WireProbe extends AsyncDisposable {
  /** The event buffer in use. */
  readonly buffer: "ring" | "perf";
  /** Connections adopted from /proc when the probe started. */
  readonly adopted: number;
  /** The API server endpoint it follows, and how that was found. */
  readonly endpoint: ApiserverEndpoint;
  /** Add to `Number(event.tsNs) / 1e6` to get wall-clock milliseconds. */
  readonly monoToWallOffsetMs: number;
  /** Decoded events, in arrival order; ends when the probe closes. One consumer. */
  events(): AsyncIterable<RawWireEvent>;
  /** Events lost: kernel buffer full, perf lost records, user-space queue full. */
  drops(): number;
  /** Kernel ids and run statistics of the loaded programs. */
  programs(): ProgramInfo[];
  /** Scans /proc again and adopts connections not yet followed; returns how many. */
  adopt(): Promise<number>;
  /**
   * Null while the followed process holds a connection to the API server
   * port (so the probe sees its traffic), else why the probe sees nothing.
   */
  health(): Promise<string | null>;
  /** Detaches and frees everything; resolves when done. */
  close(): Promise<void>;
}

function kernelVersion(): [number, number] {
  const m = /^(\d+)\.(\d+)/.exec(Deno.osRelease());
  return m ? [Number(m[1]), Number(m[2])] : [0, 0];
}

function atLeast(v: [number, number], major: number, minor: number): boolean {
  return v[0] > major || (v[0] === major && v[1] >= minor);
}

function precheck(): void {
  if (Deno.build.os !== "linux") {
    throw new WireUnavailableError(
      "unsupported-os",
      `eBPF needs Linux, this is ${Deno.build.os}`,
    );
  }
  const v = kernelVersion();
  if (!atLeast(v, 5, 4)) {
    throw new WireUnavailableError(
      "old-kernel",
      `Kernel ${Deno.osRelease()} is too old for the wire probe: it needs 5.4 or newer`,
    );
  }
  try {
    Deno.statSync("/sys/kernel/btf/vmlinux");
  } catch (e) {
    throw new WireUnavailableError(
      "no-btf",
      "Kernel BTF is missing (/sys/kernel/btf/vmlinux): use a kernel built with CONFIG_DEBUG_INFO_BTF=y",
      e,
    );
  }
  // Before anything that reads the kubelet's /proc entries (which only a
  // permitted agent may): say what is missing instead of what failed later.
  const status = (() => {
    try {
      return Deno.readTextFileSync("/proc/self/status");
    } catch {
      return "";
    }
  })();
  const capEff = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1];
  const missing = capEff === undefined
    ? []
    : missingCapabilities(BigInt(`0x${capEff}`), atLeast(v, 5, 8));
  if (missing.length > 0) {
    throw new WireUnavailableError(
      "no-permission",
      `Not permitted to load eBPF programs (missing ${
        missing.join(", ")
      }): ${PERMISSION_FIX}`,
    );
  }
}

const PERMISSION_FIX =
  "run as root or grant CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN and CAP_SYS_PTRACE (and CAP_SYS_RESOURCE before 5.11, CAP_SYS_ADMIN before 5.8)";

const CAP = { NET_ADMIN: 12, SYS_ADMIN: 21, PERFMON: 38, BPF: 39 } as const;

/**
 * The capabilities missing from the effective set `capEff` to load and
 * attach the probe: CAP_BPF and CAP_PERFMON (5.8+; CAP_SYS_ADMIN stands in
 * for both, and is needed before 5.8), and CAP_NET_ADMIN.
 */
export function missingCapabilities(capEff: bigint, has58: boolean): string[] {
  const has = (n: number) => (capEff >> BigInt(n) & 1n) === 1n;
  const missing: string[] = [];
  if (!has(CAP.SYS_ADMIN)) {
    if (!has58) missing.push("CAP_SYS_ADMIN");
    else {
      if (!has(CAP.BPF)) missing.push("CAP_BPF");
      if (!has(CAP.PERFMON)) missing.push("CAP_PERFMON");
    }
  }
  if (!has(CAP.NET_ADMIN)) missing.push("CAP_NET_ADMIN");
  return missing;
}

function unavailableFromLoad(e: unknown): WireUnavailableError {
  if (e instanceof LibbpfError && e.permissionDenied) {
    return new WireUnavailableError(
      "no-permission",
      `Not permitted to load eBPF programs (${e.detail}): ${PERMISSION_FIX}`,
      e,
    );
  }
  const detail = e instanceof Error ? e.message : String(e);
  return new WireUnavailableError(
    "load-failed",
    `The eBPF program did not load: ${detail}`,
    e,
  );
}

/** Opens, loads and attaches the wire probe. */
export async function openWireProbe(
  options: WireProbeOptions = {},
): Promise<WireProbe> {
  const comm = options.comm ?? "kubelet";
  const commBytes = new TextEncoder().encode(comm);
  if (commBytes.length === 0 || commBytes.length > 15) {
    throw new RangeError(
      `Process name "${comm}" must be 1 to 15 bytes (the kernel's comm limit)`,
    );
  }
  if (
    options.port !== undefined &&
    (!Number.isInteger(options.port) || options.port < 1 ||
      options.port > 65535)
  ) {
    throw new RangeError(
      `Port ${options.port} is not a TCP port: use 1 to 65535`,
    );
  }
  precheck();
  let lib: Libbpf;
  const libPath = options.libbpfPath ?? Deno.env.get("EARTHWORM_LIBBPF") ??
    "libbpf.so.1";
  try {
    lib = new Libbpf(libPath);
  } catch (e) {
    throw new WireUnavailableError(
      "no-libbpf",
      `Cannot load "${libPath}": install libbpf 1.x (Debian/Ubuntu: apt-get install libbpf1)`,
      e,
    );
  }
  const owned: Disposable[] = [lib];
  try {
    const obj = new BpfObject(lib, heartbeatObject, "heartbeat");
    owned.push(obj);
    const ringSupported = lib.sym.ring_buffer__new !== null &&
      (lib.probeMapType(MapType.RINGBUF) ?? atLeast(kernelVersion(), 5, 8));
    const useRing = options.buffer === "perf"
      ? false
      : options.buffer === "ring"
      ? (ringSupported || (() => {
        throw new WireUnavailableError(
          "old-kernel",
          "This kernel or libbpf has no BPF ring buffer: use the perf buffer",
        );
      })())
      : ringSupported;
    // After the checks that cannot pass by waiting (libbpf, BTF), so those
    // are reported first: a missing kubelet is retried.
    const endpoint: ApiserverEndpoint = options.port === undefined
      ? await discoverApiserver(comm)
      : { port: options.port, source: "flag", detail: "given" };
    const port = endpoint.port;
    writeSettings(obj, commBytes, port, useRing);
    const events = obj.map("events");
    if (!useRing) {
      const cpus = lib.possibleCpus();
      lib.check(
        lib.sym.bpf_map__set_type(events.pointer, MapType.PERF_EVENT_ARRAY),
        "bpf_map__set_type",
        "Cannot switch to the perf buffer",
      );
      lib.check(
        lib.sym.bpf_map__set_key_size(events.pointer, 4),
        "bpf_map__set_key_size",
        "Cannot switch to the perf buffer",
      );
      lib.check(
        lib.sym.bpf_map__set_value_size(events.pointer, 4),
        "bpf_map__set_value_size",
        "Cannot switch to the perf buffer",
      );
      lib.check(
        lib.sym.bpf_map__set_max_entries(events.pointer, cpus),
        "bpf_map__set_max_entries",
        "Cannot switch to the perf buffer",
      );
    }
    try {
      obj.load();
    } catch (e) {
      throw unavailableFromLoad(e);
    }
    const cgroupPath = options.cgroupPath ??
      detectCgroup2(await pidsOf(comm));
    if (cgroupPath === null) {
      throw new WireUnavailableError(
        "no-cgroup2",
        "No cgroup v2 hierarchy is mounted: mount one (mount -t cgroup2 none /sys/fs/cgroup/unified)",
      );
    }
    const cgroup = lib.openDirectory(cgroupPath);
    owned.push(cgroup);
    const links: BpfLink[] = [];
    try {
      for (const name of CGROUP_PROGRAMS) {
        links.push(obj.attachCgroup(obj.program(name), cgroup));
      }
      for (const name of TRACE_PROGRAMS) {
        links.push(obj.attach(obj.program(name)));
      }
    } finally {
      owned.push(...links);
    }
    const probe = new Probe(lib, obj, useRing, owned, comm, endpoint);
    owned.length = 0; // the probe owns them now
    try {
      if (options.adoptExisting ?? true) await probe.adopt();
    } catch (e) {
      await probe.close();
      throw e;
    }
    log.info("wire probe attached", {
      comm,
      port,
      found: endpoint.detail,
      buffer: probe.buffer,
      cgroup: cgroupPath,
      adopted: probe.adopted,
      libbpf: lib.version(),
    });
    if (options.signal) {
      if (options.signal.aborted) await probe.close();
      else {options.signal.addEventListener("abort", () => void probe.close(), {
          once: true,
        });}
    }
    return probe;
  } catch (e) {
    for (const d of owned.reverse()) d[Symbol.dispose]();
    if (e instanceof LibbpfError && e.permissionDenied) {
      throw unavailableFromLoad(e);
    }
    throw e;
  }
}

function writeSettings(
  obj: BpfObject,
  comm: Uint8Array,
  port: number,
  useRing: boolean,
): void {
  const layout = obj.sectionLayout(".rodata");
  const data = obj.initialValue(obj.map(".rodata"));
  const field = (name: string) => {
    const f = layout.get(name);
    if (!f) {
      throw new Error(
        `The eBPF object has no setting "${name}": rebuild bpf/heartbeat.bpf.o`,
      );
    }
    return f;
  };
  const c = field("target_comm");
  data.fill(0, c.offset, c.offset + c.size);
  data.set(comm, c.offset);
  const p = field("target_port");
  new DataView(data.buffer, data.byteOffset).setUint16(p.offset, port, true);
  data[field("use_ringbuf").offset] = useRing ? 1 : 0;
}

class Probe implements WireProbe {
  readonly buffer: "ring" | "perf";
  readonly monoToWallOffsetMs: number;
  #lib: Libbpf;
  #obj: BpfObject;
  #owned: Disposable[];
  #events: EventBuffer;
  #comm: string;
  #port: number;
  readonly endpoint: ApiserverEndpoint;
  #adopted = 0;
  #queue = new AsyncQueue<RawWireEvent>(QUEUE_LIMIT);
  #userDrops = 0;
  #finalKernelDrops = 0;
  #released = false;
  #badRecords = 0;
  #closed = false;
  #closing: Promise<void> | null = null;
  #pump: Promise<void>;

  constructor(
    lib: Libbpf,
    obj: BpfObject,
    useRing: boolean,
    owned: Disposable[],
    comm: string,
    endpoint: ApiserverEndpoint,
  ) {
    this.endpoint = endpoint;
    this.#lib = lib;
    this.#obj = obj;
    this.#owned = [...owned];
    this.#comm = comm;
    this.#port = endpoint.port;
    this.monoToWallOffsetMs = lib.monotonicToWallOffsetMs();
    const fd = lib.check(
      lib.sym.bpf_map__fd(obj.map("events").pointer),
      "bpf_map__fd",
      "The events map is not loaded",
    );
    const onRecord = (record: Uint8Array) => this.#push(record);
    this.#events = useRing
      ? new RingBuffer(lib, fd, onRecord)
      : new PerfBuffer(lib, fd, PERF_PAGES, onRecord);
    this.buffer = this.#events.kind;
    this.#pump = this.#run();
  }

  get adopted(): number {
    return this.#adopted;
  }

  #push(record: Uint8Array): void {
    let ev: RawWireEvent;
    try {
      ev = decodeWireEvent(record);
    } catch (e) {
      if (this.#badRecords++ === 0) {
        log.warn("undecodable wire event", { error: String(e) });
      }
      return;
    }
    // After close, the last poll's records have no reader: not a loss.
    if (this.#queue.closed) return;
    if (!this.#queue.push(ev)) this.#userDrops++;
  }

  async #run(): Promise<void> {
    while (!this.#closed) {
      try {
        await this.#events.poll(POLL_MS);
      } catch (e) {
        log.error("reading wire events failed, stopping the probe", {
          error: String(e),
        });
        this.#closed = true;
      }
    }
    this.#queue.close();
  }

  events(): AsyncIterable<RawWireEvent> {
    return this.#queue;
  }

  drops(): number {
    return this.#kernelDrops() + this.#events.lost + this.#userDrops;
  }

  #kernelDrops(): number {
    if (this.#released) return this.#finalKernelDrops;
    const cpus = this.#lib.possibleCpus();
    const value = new BigUint64Array(cpus);
    const key = new Uint8Array(4);
    const r = this.#lib.sym.bpf_map__lookup_elem(
      this.#obj.map("drops").pointer,
      key,
      4n,
      new Uint8Array(value.buffer),
      BigInt(value.byteLength),
      0n,
    );
    let sum = 0;
    if (r === 0) { for (const n of value) sum += Number(n); }
    return sum;
  }

  programs(): ProgramInfo[] {
    return [...CGROUP_PROGRAMS, ...TRACE_PROGRAMS].map((name) =>
      this.#obj.programInfo(this.#obj.program(name))
    );
  }

  async health(): Promise<string | null> {
    if (this.#closed) return "The eBPF probe is closed";
    const held = await findConnections(this.#comm, this.#port);
    if (held.length > 0) return null;
    return `The eBPF probe follows port ${this.#port} (${this.endpoint.detail}), but no "${this.#comm}" process holds a connection to it: is the kubelet running, and is it named "${this.#comm}" (--comm)?`;
  }

  async adopt(): Promise<number> {
    const found = await findConnections(this.#comm, this.#port);
    if (this.#closed) return 0;
    const tuples = this.#obj.map("tuples");
    let added = 0;
    for (const c of found) {
      const key = encodeTuple(c);
      const value = encodeOwner(c.pid, c.comm);
      const r = this.#lib.sym.bpf_map__update_elem(
        tuples.pointer,
        key,
        BigInt(key.length),
        value,
        BigInt(value.length),
        BPF_NOEXIST,
      );
      if (r === 0) added++;
      else if (r !== -17) {
        this.#lib.check(
          r,
          "bpf_map__update_elem",
          "Cannot follow an existing connection",
        ); // -EEXIST: already followed
      }
    }
    this.#adopted += added;
    if (added > 0) {
      this.#nextAdoption();
      log.debug("adopted existing connections", { count: added });
    }
    return added;
  }

  /**
   * Bumps the adoption generation once the new tuples are in their map, so
   * the kernel looks again at sockets it judged unfollowed before.
   */
  #nextAdoption(): void {
    const map = this.#obj.map("adoption").pointer;
    const key = new Uint8Array(4);
    const gen = new Uint32Array(1);
    const value = new Uint8Array(gen.buffer);
    const sym = this.#lib.sym;
    this.#lib.check(
      sym.bpf_map__lookup_elem(map, key, 4n, value, 4n, 0n),
      "bpf_map__lookup_elem",
      "Cannot read the adoption generation",
    );
    gen[0] = (gen[0]! + 1) >>> 0;
    this.#lib.check(
      sym.bpf_map__update_elem(map, key, 4n, value, 4n, 0n),
      "bpf_map__update_elem",
      "Cannot bump the adoption generation",
    );
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed = true;
      this.#queue.close();
      await this.#pump;
      this.#finalKernelDrops = this.#kernelDrops();
      this.#released = true;
      this.#events[Symbol.dispose]();
      // Links detach before the object closes; libbpf itself goes last.
      for (const d of this.#owned.reverse()) d[Symbol.dispose]();
      this.#owned = [];
    })();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
