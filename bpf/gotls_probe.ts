/**
 * The Go TLS probe: finds crypto/tls.(*Conn).Write, Read (and its RETs)
 * and Close in a Go process's executable (`/proc/<pid>/exe`, stripped or
 * not), loads the embedded `gotls.bpf.o` through libbpf, attaches uprobes
 * there for that process, and yields the decoded frame records. Pair them
 * into Lease exchanges with `wire/h2_exchange.ts`.
 *
 * @module
 */

import gotlsObject from "./gotls.bpf.o" with { type: "bytes" };
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
import {
  decodeGoTlsRecord,
  GOTLS_STATS,
  type GoTlsRecord,
  type GoTlsStats,
} from "./gotls_event.ts";
import { GoBinary, type GoFunc } from "./go_symbols.ts";
import { WireUnavailableError } from "../core/errors.ts";

const log = getLogger("gotls");

const PROGRAMS = [
  "gotls_write",
  "gotls_read_enter",
  "gotls_read_return",
  "gotls_close",
  "gotls_walk",
];
const POLL_MS = 100;
const QUEUE_LIMIT = 65536;
const PERF_PAGES = 64;

/** Where the uprobes go: file offsets in the executable. */
export interface GoTlsTargets {
  /** Go version of the executable, when it records one. */
  goVersion: string | null;
  /** `(*Conn).Write` past its stack check (its PUSHQ BP, or the frame start). */
  write: number;
  /** `(*Conn).Read` past its stack check. */
  readEnter: number;
  /** Each RET of `(*Conn).Read`. */
  readReturns: number[];
  /** `(*Conn).Close` past its stack check. */
  close: number;
}

/** Finds the uprobe offsets of crypto/tls in a Go executable. */
export function goTlsTargets(bin: GoBinary): GoTlsTargets {
  if (bin.arch !== "amd64") {
    throw new WireUnavailableError(
      "unsupported-os",
      `Go TLS uprobes support amd64 executables only, this one is ${bin.arch}`,
    );
  }
  const fn = (name: string) => {
    const f = bin.func(name);
    if (!f) {
      throw new WireUnavailableError(
        "load-failed",
        `The executable has no "${name}": it does not use Go's crypto/tls`,
      );
    }
    return f;
  };
  const write = fn("crypto/tls.(*Conn).Write");
  const read = fn("crypto/tls.(*Conn).Read");
  const close = fn("crypto/tls.(*Conn).Close");
  // Past the stack check, so one call fires once; the PUSHQ BP there when
  // there is one, which the kernel emulates instead of single-stepping.
  const start = (f: GoFunc) =>
    bin.fileOffset(bin.framePush(f) ?? bin.frameStart(f));
  return {
    goVersion: bin.goVersion,
    write: start(write),
    readEnter: start(read),
    readReturns: bin.returns(read).map((a) => bin.fileOffset(a)),
    close: start(close),
  };
}

/** Settings of {@link openGoTlsProbe}. */
export interface GoTlsProbeOptions {
  /** Process to trace. */
  pid: number;
  /** Its executable; default `/proc/<pid>/exe`. */
  path?: string;
  /** Event buffer: `auto` (ring on 5.8+, else perf), or forced. */
  buffer?: "auto" | "ring" | "perf";
  /** libbpf to load; default `libbpf.so.1` (or `$EARTHWORM_LIBBPF`). */
  libbpfPath?: string;
  /** Closes the probe when aborted. */
  signal?: AbortSignal;
}

/** A running probe. Close it (or abort its signal) to detach everything. */
export interface GoTlsProbe extends AsyncDisposable {
  /** The event buffer in use. */
  readonly buffer: "ring" | "perf";
  /** Where the uprobes are attached. */
  readonly targets: GoTlsTargets;
  /** Decoded records, in time order; ends when the probe closes. One consumer. */
  records(): AsyncIterableIterator<GoTlsRecord>;
  /** Records lost: kernel buffer full, perf lost records, user-space queue full. */
  drops(): number;
  /** The BPF side's counters, summed over CPUs. */
  stats(): GoTlsStats;
  /** Kernel ids and run statistics of the loaded programs. */
  programs(): ProgramInfo[];
  /** Detaches and frees everything; resolves when done. */
  close(): Promise<void>;
}

function unavailable(e: unknown): WireUnavailableError {
  if (e instanceof WireUnavailableError) return e;
  if (e instanceof LibbpfError && e.permissionDenied) {
    return new WireUnavailableError(
      "no-permission",
      `Not permitted to create uprobes (${e.detail}): current kernels allow them only with CAP_SYS_ADMIN; grant it for exact identification (README, "Exact pairing")`,
      e,
    );
  }
  const detail = e instanceof Error ? e.message : String(e);
  return new WireUnavailableError(
    "load-failed",
    `The Go TLS probe did not load: ${detail}`,
    e,
  );
}

/**
 * Opens, loads and attaches the Go TLS probe to process `pid`. Throws
 * `GoBinaryError` (go_symbols.ts) when its executable is no Go binary
 * this can read, {@link WireUnavailableError} when eBPF cannot run here or
 * the executable lacks crypto/tls.
 */
export async function openGoTlsProbe(
  options: GoTlsProbeOptions,
): Promise<GoTlsProbe> {
  const { pid } = options;
  if (!Number.isInteger(pid) || pid <= 0) {
    throw new RangeError(`Process id ${pid} is not a positive integer`);
  }
  if (Deno.build.os !== "linux") {
    throw new WireUnavailableError(
      "unsupported-os",
      `eBPF needs Linux, this is ${Deno.build.os}`,
    );
  }
  const path = options.path ?? `/proc/${pid}/exe`;
  let targets: GoTlsTargets;
  {
    using bin = GoBinary.open(path);
    targets = goTlsTargets(bin);
  }
  const libPath = options.libbpfPath ?? Deno.env.get("EARTHWORM_LIBBPF") ??
    "libbpf.so.1";
  let lib: Libbpf;
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
    const obj = new BpfObject(lib, gotlsObject, "gotls");
    owned.push(obj);
    const ringSupported = lib.sym.ring_buffer__new !== null &&
      (lib.probeMapType(MapType.RINGBUF) ?? true);
    if (options.buffer === "ring" && !ringSupported) {
      throw new WireUnavailableError(
        "old-kernel",
        "This kernel or libbpf has no BPF ring buffer: use the perf buffer",
      );
    }
    const useRing = options.buffer === "perf" ? false : ringSupported;
    const layout = obj.sectionLayout(".rodata");
    const setting = layout.get("use_ringbuf");
    if (!setting) {
      throw new Error(
        'The eBPF object has no setting "use_ringbuf": rebuild bpf/gotls.bpf.o',
      );
    }
    obj.initialValue(obj.map(".rodata"))[setting.offset] = useRing ? 1 : 0;
    if (!useRing) usePerfBuffer(lib, obj);
    obj.load();
    const links: BpfLink[] = [];
    try {
      links.push(
        obj.attachUprobe(obj.program("gotls_write"), pid, path, targets.write),
        obj.attachUprobe(
          obj.program("gotls_read_enter"),
          pid,
          path,
          targets.readEnter,
        ),
        obj.attachUprobe(obj.program("gotls_close"), pid, path, targets.close),
      );
      for (const ret of targets.readReturns) {
        links.push(
          obj.attachUprobe(obj.program("gotls_read_return"), pid, path, ret),
        );
      }
    } finally {
      owned.push(...links);
    }
    const probe = new Probe(lib, obj, useRing, owned, targets);
    owned.length = 0; // the probe owns them now
    log.info("Go TLS probe attached", {
      pid,
      go: targets.goVersion,
      buffer: probe.buffer,
      rets: targets.readReturns.length,
    });
    if (options.signal) {
      if (options.signal.aborted) await probe.close();
      else {
        options.signal.addEventListener("abort", () => void probe.close(), {
          once: true,
        });
      }
    }
    return probe;
  } catch (e) {
    for (const d of owned.reverse()) d[Symbol.dispose]();
    throw unavailable(e);
  }
}

/** Turns the `events` ring buffer into a perf event array (5.4–5.7). */
function usePerfBuffer(lib: Libbpf, obj: BpfObject): void {
  const events = obj.map("events").pointer;
  const cpus = lib.possibleCpus();
  const what = "Cannot switch to the perf buffer";
  lib.check(
    lib.sym.bpf_map__set_type(events, MapType.PERF_EVENT_ARRAY),
    "bpf_map__set_type",
    what,
  );
  lib.check(lib.sym.bpf_map__set_key_size(events, 4), "set_key_size", what);
  lib.check(lib.sym.bpf_map__set_value_size(events, 4), "set_value_size", what);
  lib.check(
    lib.sym.bpf_map__set_max_entries(events, cpus),
    "bpf_map__set_max_entries",
    what,
  );
}

class Probe implements GoTlsProbe {
  readonly buffer: "ring" | "perf";
  readonly targets: GoTlsTargets;
  #lib: Libbpf;
  #obj: BpfObject;
  #owned: Disposable[];
  #events: EventBuffer;
  #batch: GoTlsRecord[] = [];
  #queue: GoTlsRecord[] = [];
  #head = 0; // next record of #queue to hand out
  #wake: (() => void) | null = null;
  #userDrops = 0;
  #badRecords = 0;
  #final: { drops: number; stats: GoTlsStats } | null = null;
  #closed = false;
  #closing: Promise<void> | null = null;
  #pump: Promise<void>;

  constructor(
    lib: Libbpf,
    obj: BpfObject,
    useRing: boolean,
    owned: Disposable[],
    targets: GoTlsTargets,
  ) {
    this.#lib = lib;
    this.#obj = obj;
    this.#owned = [...owned];
    this.targets = targets;
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

  #push(record: Uint8Array): void {
    try {
      this.#batch.push(decodeGoTlsRecord(record));
    } catch (e) {
      if (this.#badRecords++ === 0) {
        log.warn("undecodable Go TLS record", { error: String(e) });
      }
    }
  }

  /** Moves a poll's records to the queue; per-CPU perf buffers need sorting. */
  #flush(): void {
    if (this.#batch.length === 0) return;
    if (this.buffer === "perf") {
      this.#batch.sort((
        a,
        b,
      ) => (a.tsNs < b.tsNs ? -1 : a.tsNs > b.tsNs ? 1 : 0));
    }
    for (const r of this.#batch) {
      if (this.#queue.length - this.#head >= QUEUE_LIMIT) this.#userDrops++;
      else this.#queue.push(r);
    }
    this.#batch = [];
    this.#wake?.();
  }

  async #run(): Promise<void> {
    while (!this.#closed) {
      try {
        await this.#events.poll(POLL_MS);
        this.#flush();
      } catch (e) {
        log.error("reading Go TLS records failed, stopping the probe", {
          error: String(e),
        });
        this.#closed = true;
      }
    }
    this.#wake?.();
  }

  async *records(): AsyncIterableIterator<GoTlsRecord> {
    while (true) {
      if (this.#head < this.#queue.length) {
        const r = this.#queue[this.#head++]!;
        if (this.#head === this.#queue.length) {
          this.#queue = [];
          this.#head = 0;
        }
        yield r;
        continue;
      }
      if (this.#closed) return;
      await new Promise<void>((resolve) => (this.#wake = resolve));
      this.#wake = null;
    }
  }

  #sumPerCpu(map: string, key: number): number {
    const cpus = this.#lib.possibleCpus();
    const value = new BigUint64Array(cpus);
    const k = new Uint32Array([key]);
    const r = this.#lib.sym.bpf_map__lookup_elem(
      this.#obj.map(map).pointer,
      new Uint8Array(k.buffer),
      4n,
      new Uint8Array(value.buffer),
      BigInt(value.byteLength),
      0n,
    );
    let sum = 0;
    if (r === 0) { for (const n of value) sum += Number(n); }
    return sum;
  }

  drops(): number {
    const kernel = this.#final?.drops ?? this.#sumPerCpu("drops", 0);
    return kernel + this.#events.lost + this.#userDrops;
  }

  stats(): GoTlsStats {
    if (this.#final) return { ...this.#final.stats };
    const out = {} as GoTlsStats;
    GOTLS_STATS.forEach((name, i) => (out[name] = this.#sumPerCpu("stats", i)));
    return out;
  }

  programs(): ProgramInfo[] {
    return PROGRAMS.map((name) =>
      this.#obj.programInfo(this.#obj.program(name))
    );
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed = true;
      this.#wake?.();
      await this.#pump;
      this.#final = {
        drops: this.#sumPerCpu("drops", 0),
        stats: this.stats(),
      };
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
