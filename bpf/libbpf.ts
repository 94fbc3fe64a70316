/**
 * The one binding to libbpf (`libbpf.so.1`) and the few libc calls it needs,
 * through Deno FFI. Holds the symbol table (each C prototype beside it),
 * turns negative errno returns into {@link LibbpfError} with libbpf's own
 * message, routes libbpf's log to Earthworm's logger, and wraps native
 * handles in classes with private pointers and `[Symbol.dispose]`.
 *
 * @module
 */

import { getLogger } from "../core/log.ts";

const log = getLogger("libbpf");

const LIBBPF_SYMBOLS = {
  // libbpf_print_fn_t libbpf_set_print(libbpf_print_fn_t fn);
  libbpf_set_print: { parameters: ["function"], result: "pointer" },
  // int libbpf_strerror(int err, char *buf, size_t size);
  libbpf_strerror: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  // int libbpf_num_possible_cpus(void);
  libbpf_num_possible_cpus: { parameters: [], result: "i32" },
  // int libbpf_probe_bpf_map_type(enum bpf_map_type map_type, const void *opts);
  libbpf_probe_bpf_map_type: {
    parameters: ["u32", "pointer"],
    result: "i32",
    optional: true,
  },
  // const char *libbpf_version_string(void);  (1.0+)
  libbpf_version_string: { parameters: [], result: "pointer", optional: true },
  // struct bpf_object *bpf_object__open_mem(const void *obj_buf, size_t obj_buf_sz,
  //                                         const struct bpf_object_open_opts *opts);
  bpf_object__open_mem: {
    parameters: ["buffer", "usize", "buffer"],
    result: "pointer",
  },
  // int bpf_object__load(struct bpf_object *obj);
  bpf_object__load: { parameters: ["pointer"], result: "i32" },
  // void bpf_object__close(struct bpf_object *obj);
  bpf_object__close: { parameters: ["pointer"], result: "void" },
  // struct btf *bpf_object__btf(const struct bpf_object *obj);
  bpf_object__btf: { parameters: ["pointer"], result: "pointer" },
  // struct bpf_map *bpf_object__find_map_by_name(const struct bpf_object *obj, const char *name);
  bpf_object__find_map_by_name: {
    parameters: ["pointer", "buffer"],
    result: "pointer",
  },
  // struct bpf_program *bpf_object__find_program_by_name(const struct bpf_object *obj,
  //                                                      const char *name);
  bpf_object__find_program_by_name: {
    parameters: ["pointer", "buffer"],
    result: "pointer",
  },
  // void *bpf_map__initial_value(struct bpf_map *map, size_t *psize);
  bpf_map__initial_value: {
    parameters: ["pointer", "buffer"],
    result: "pointer",
  },
  // int bpf_map__set_type(struct bpf_map *map, enum bpf_map_type type);
  bpf_map__set_type: { parameters: ["pointer", "u32"], result: "i32" },
  // int bpf_map__set_key_size(struct bpf_map *map, __u32 size);
  bpf_map__set_key_size: { parameters: ["pointer", "u32"], result: "i32" },
  // int bpf_map__set_value_size(struct bpf_map *map, __u32 size);
  bpf_map__set_value_size: { parameters: ["pointer", "u32"], result: "i32" },
  // int bpf_map__set_max_entries(struct bpf_map *map, __u32 max_entries);
  bpf_map__set_max_entries: { parameters: ["pointer", "u32"], result: "i32" },
  // int bpf_map__fd(const struct bpf_map *map);
  bpf_map__fd: { parameters: ["pointer"], result: "i32" },
  // int bpf_map__update_elem(const struct bpf_map *map, const void *key, size_t key_sz,
  //                          const void *value, size_t value_sz, __u64 flags);
  bpf_map__update_elem: {
    parameters: ["pointer", "buffer", "usize", "buffer", "usize", "u64"],
    result: "i32",
  },
  // int bpf_map__lookup_elem(const struct bpf_map *map, const void *key, size_t key_sz,
  //                          void *value, size_t value_sz, __u64 flags);
  bpf_map__lookup_elem: {
    parameters: ["pointer", "buffer", "usize", "buffer", "usize", "u64"],
    result: "i32",
  },
  // int bpf_program__fd(const struct bpf_program *prog);
  bpf_program__fd: { parameters: ["pointer"], result: "i32" },
  // struct bpf_link *bpf_program__attach(const struct bpf_program *prog);
  bpf_program__attach: { parameters: ["pointer"], result: "pointer" },
  // struct bpf_link *bpf_program__attach_cgroup(const struct bpf_program *prog, int cgroup_fd);
  bpf_program__attach_cgroup: {
    parameters: ["pointer", "i32"],
    result: "pointer",
  },
  // struct bpf_link *bpf_program__attach_uprobe(const struct bpf_program *prog, bool retprobe,
  //                                             pid_t pid, const char *binary_path,
  //                                             size_t func_offset);
  bpf_program__attach_uprobe: {
    parameters: ["pointer", "bool", "i32", "buffer", "usize"],
    result: "pointer",
  },
  // int bpf_link__destroy(struct bpf_link *link);
  bpf_link__destroy: { parameters: ["pointer"], result: "i32" },
  // int bpf_obj_get_info_by_fd(int bpf_fd, void *info, __u32 *info_len);
  bpf_obj_get_info_by_fd: {
    parameters: ["i32", "buffer", "buffer"],
    result: "i32",
  },
  // int bpf_prog_get_fd_by_id(__u32 id);
  bpf_prog_get_fd_by_id: { parameters: ["u32"], result: "i32" },
  // int bpf_prog_test_run_opts(int prog_fd, struct bpf_test_run_opts *opts);  (0.7+)
  bpf_prog_test_run_opts: {
    parameters: ["i32", "buffer"],
    result: "i32",
    optional: true,
  },
  // __s32 btf__find_by_name_kind(const struct btf *btf, const char *type_name, __u32 kind);
  btf__find_by_name_kind: {
    parameters: ["pointer", "buffer", "u32"],
    result: "i32",
  },
  // const struct btf_type *btf__type_by_id(const struct btf *btf, __u32 id);
  btf__type_by_id: { parameters: ["pointer", "u32"], result: "pointer" },
  // const char *btf__name_by_offset(const struct btf *btf, __u32 offset);
  btf__name_by_offset: { parameters: ["pointer", "u32"], result: "pointer" },
  // struct ring_buffer *ring_buffer__new(int map_fd, ring_buffer_sample_fn sample_cb,
  //                                      void *ctx, const struct ring_buffer_opts *opts);  (0.0.9+)
  ring_buffer__new: {
    parameters: ["i32", "function", "pointer", "pointer"],
    result: "pointer",
    optional: true,
  },
  // int ring_buffer__epoll_fd(const struct ring_buffer *rb);
  ring_buffer__epoll_fd: {
    parameters: ["pointer"],
    result: "i32",
    optional: true,
  },
  // int ring_buffer__consume(struct ring_buffer *rb);
  ring_buffer__consume: {
    parameters: ["pointer"],
    result: "i32",
    optional: true,
  },
  // void ring_buffer__free(struct ring_buffer *rb);
  ring_buffer__free: {
    parameters: ["pointer"],
    result: "void",
    optional: true,
  },
  // struct perf_buffer *perf_buffer__new(int map_fd, size_t page_cnt,
  //     perf_buffer_sample_fn sample_cb, perf_buffer_lost_fn lost_cb, void *ctx,
  //     const struct perf_buffer_opts *opts);  (1.0 signature)
  perf_buffer__new: {
    parameters: ["i32", "usize", "function", "function", "pointer", "pointer"],
    result: "pointer",
  },
  // int perf_buffer__epoll_fd(const struct perf_buffer *pb);
  perf_buffer__epoll_fd: { parameters: ["pointer"], result: "i32" },
  // int perf_buffer__consume(struct perf_buffer *pb);
  perf_buffer__consume: { parameters: ["pointer"], result: "i32" },
  // void perf_buffer__free(struct perf_buffer *pb);
  perf_buffer__free: { parameters: ["pointer"], result: "void" },
} as const satisfies Deno.ForeignLibraryInterface;

const LIBC_SYMBOLS = {
  // int *__errno_location(void);
  __errno_location: { parameters: [], result: "pointer" },
  // int open(const char *pathname, int flags);
  open: { parameters: ["buffer", "i32"], result: "i32" },
  // int close(int fd);
  close: { parameters: ["i32"], result: "i32" },
  // int epoll_wait(int epfd, struct epoll_event *events, int maxevents, int timeout);
  epoll_wait: {
    parameters: ["i32", "buffer", "i32", "i32"],
    result: "i32",
    nonblocking: true,
  },
  // int vsnprintf(char *str, size_t size, const char *format, va_list ap);
  vsnprintf: {
    parameters: ["buffer", "usize", "pointer", "pointer"],
    result: "i32",
  },
  // int clock_gettime(clockid_t clockid, struct timespec *tp);
  clock_gettime: { parameters: ["i32", "buffer"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

type LibbpfSymbols = Deno.DynamicLibrary<typeof LIBBPF_SYMBOLS>["symbols"];
type LibcSymbols = Deno.DynamicLibrary<typeof LIBC_SYMBOLS>["symbols"];

/** `BPF_MAP_TYPE_*` values used here. */
export const MapType = { PERF_EVENT_ARRAY: 4, RINGBUF: 27 } as const;

const BTF_KIND_VAR = 14;
const BTF_KIND_DATASEC = 15;
const O_RDONLY_DIRECTORY_CLOEXEC = 0o200000 | 0o2000000;
const EPERM = 1;
const EACCES = 13;

const encoder = new TextEncoder();

/** A NUL-terminated C string. */
export function cString(s: string): Uint8Array<ArrayBuffer> {
  return encoder.encode(s + "\0");
}

/** A libbpf or libc call failed; `errno` is positive, `message` carries libbpf's text. */
export class LibbpfError extends Error {
  override name = "LibbpfError";
  /** The failed C function. */
  readonly call: string;
  /** Positive errno (or LIBBPF_ERRNO__* code). */
  readonly errno: number;
  /** libbpf's description of the error. */
  readonly detail: string;

  constructor(call: string, errno: number, detail: string, what: string) {
    super(`${what}: ${call} failed: ${detail} (errno ${errno})`);
    this.call = call;
    this.errno = errno;
    this.detail = detail;
  }

  /** True when the kernel refused for lack of privilege. */
  get permissionDenied(): boolean {
    return this.errno === EPERM || this.errno === EACCES;
  }
}

/** libbpf and libc loaded together, with libbpf's log routed to the logger. */
export class Libbpf implements Disposable {
  #lib: Deno.DynamicLibrary<typeof LIBBPF_SYMBOLS>;
  #libc: Deno.DynamicLibrary<typeof LIBC_SYMBOLS>;
  #print:
    | Deno.UnsafeCallback<
      { parameters: ["i32", "pointer", "pointer"]; result: "i32" }
    >
    | null;
  #closed = false;

  /** Loads `path` (default `libbpf.so.1`); throws when it is missing. */
  constructor(path = "libbpf.so.1") {
    this.#lib = Deno.dlopen(path, LIBBPF_SYMBOLS);
    try {
      this.#libc = Deno.dlopen("libc.so.6", LIBC_SYMBOLS);
    } catch (e) {
      this.#lib.close();
      throw e;
    }
    const libc = this.#libc.symbols;
    const line = new Uint8Array(1024);
    this.#print = new Deno.UnsafeCallback(
      { parameters: ["i32", "pointer", "pointer"], result: "i32" },
      (level, fmt, args) => {
        const n = libc.vsnprintf(line, BigInt(line.length), fmt, args);
        const text = new TextDecoder().decode(
          line.subarray(0, Math.max(0, Math.min(n, line.length - 1))),
        ).trimEnd();
        if (level === 0) log.warn(text);
        else if (level === 1) log.info(text);
        else log.debug(text);
        return 0;
      },
    );
    this.#lib.symbols.libbpf_set_print(this.#print.pointer);
  }

  /** The libbpf symbols; throws once closed. */
  get sym(): LibbpfSymbols {
    if (this.#closed) throw new Error("libbpf is closed: open a new Libbpf");
    return this.#lib.symbols;
  }

  /** The libc symbols; throws once closed. */
  get libc(): LibcSymbols {
    if (this.#closed) throw new Error("libbpf is closed: open a new Libbpf");
    return this.#libc.symbols;
  }

  /** libbpf's version, e.g. `v1.1`, or null before 1.0. */
  version(): string | null {
    const fn = this.sym.libbpf_version_string;
    if (!fn) return null;
    const p = fn();
    return p ? Deno.UnsafePointerView.getCString(p) : null;
  }

  /** Text of a (positive or negative) errno from libbpf. */
  strerror(err: number): string {
    const buf = new Uint8Array(256);
    this.sym.libbpf_strerror(err, buf, BigInt(buf.length));
    const end = buf.indexOf(0);
    return new TextDecoder().decode(
      buf.subarray(0, end < 0 ? buf.length : end),
    );
  }

  /** The calling thread's errno. */
  errno(): number {
    const p = this.libc.__errno_location();
    return p ? new Deno.UnsafePointerView(p).getInt32() : 0;
  }

  /** Throws a LibbpfError for an int result below zero; returns it otherwise. */
  check(result: number, call: string, what: string): number {
    if (result < 0) throw this.error(call, -result, what);
    return result;
  }

  /** Throws a LibbpfError (from errno) for a NULL pointer result. */
  checkPointer(
    result: Deno.PointerValue,
    call: string,
    what: string,
  ): Deno.PointerObject {
    if (result === null) throw this.error(call, this.errno(), what);
    return result;
  }

  /** Builds a LibbpfError for `errno`. */
  error(call: string, errno: number, what: string): LibbpfError {
    return new LibbpfError(call, errno, this.strerror(errno), what);
  }

  /** Whether the kernel supports a map type (null when libbpf cannot probe). */
  probeMapType(type: number): boolean | null {
    const fn = this.sym.libbpf_probe_bpf_map_type;
    if (!fn) return null;
    const r = fn(type, null);
    return r < 0 ? null : r === 1;
  }

  /** Number of possible CPUs. */
  possibleCpus(): number {
    return this.check(
      this.sym.libbpf_num_possible_cpus(),
      "libbpf_num_possible_cpus",
      "Cannot count CPUs",
    );
  }

  /** CLOCK_MONOTONIC minus CLOCK_REALTIME offset: wall ms = mono ns / 1e6 + offset. */
  monotonicToWallOffsetMs(): number {
    const ts = new BigInt64Array(2);
    const u8 = new Uint8Array(ts.buffer);
    this.libc.clock_gettime(0, u8);
    const real = Number(ts[0]!) * 1e3 + Number(ts[1]!) / 1e6;
    this.libc.clock_gettime(1, u8);
    const mono = Number(ts[0]!) * 1e3 + Number(ts[1]!) / 1e6;
    return real - mono;
  }

  /**
   * Runs loaded program `id` `repeat` times on `packet` in the kernel
   * (`BPF_PROG_TEST_RUN`, for benchmarks): its return value and average run
   * time in ns, timed over the whole loop rather than run by run.
   */
  testRun(
    id: number,
    packet: Uint8Array,
    repeat: number,
  ): { retval: number; nsPerRun: number } {
    const run = this.sym.bpf_prog_test_run_opts;
    if (!run) throw new Error("This libbpf has no bpf_prog_test_run_opts");
    const fd = this.check(
      this.sym.bpf_prog_get_fd_by_id(id),
      "bpf_prog_get_fd_by_id",
      `Cannot open program ${id}`,
    );
    try {
      const data = new Uint8Array(packet);
      // struct bpf_test_run_opts (libbpf 1.1): sz, data_in, data_out,
      // data_size_in, data_size_out, ctx_in, ctx_out, ctx_size_in,
      // ctx_size_out, retval, repeat, duration, flags, cpu, batch_size.
      const opts = new Uint8Array(80);
      const view = new DataView(opts.buffer);
      view.setBigUint64(0, 80n, true);
      view.setBigUint64(
        8,
        BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(data))),
        true,
      );
      view.setUint32(24, data.length, true);
      view.setInt32(60, repeat, true);
      this.check(
        run(fd, opts),
        "bpf_prog_test_run_opts",
        `Cannot test-run program ${id}`,
      );
      return {
        retval: view.getUint32(56, true),
        nsPerRun: view.getUint32(64, true),
      };
    } finally {
      this.libc.close(fd);
    }
  }

  /** Opens a directory read-only and returns its file descriptor (for cgroups). */
  openDirectory(path: string): FileDescriptor {
    const fd = this.libc.open(cString(path), O_RDONLY_DIRECTORY_CLOEXEC);
    if (fd < 0) {
      const errno = this.errno();
      throw new LibbpfError(
        "open",
        errno,
        this.strerror(errno),
        `Cannot open "${path}"`,
      );
    }
    return new FileDescriptor(this, fd);
  }

  /** Stops routing libbpf's log and unloads both libraries. */
  [Symbol.dispose](): void {
    if (this.#closed) return;
    this.#lib.symbols.libbpf_set_print(null);
    this.#print?.close();
    this.#print = null;
    this.#closed = true;
    this.#libc.close();
    this.#lib.close();
  }
}

/** A file descriptor owned by Earthworm, closed on dispose. */
export class FileDescriptor implements Disposable {
  #lib: Libbpf;
  #fd: number;

  constructor(lib: Libbpf, fd: number) {
    this.#lib = lib;
    this.#fd = fd;
  }

  /** The raw descriptor; -1 once closed. */
  get fd(): number {
    return this.#fd;
  }

  /** Closes the descriptor. */
  [Symbol.dispose](): void {
    if (this.#fd < 0) return;
    this.#lib.libc.close(this.#fd);
    this.#fd = -1;
  }
}

/** A BPF program inside an open object (owned by the object). */
export interface BpfProgram {
  name: string;
  pointer: Deno.PointerObject;
}

/** A BPF map inside an open object (owned by the object). */
export interface BpfMap {
  name: string;
  pointer: Deno.PointerObject;
}

/** Name, kernel id and run statistics of a loaded program. */
export interface ProgramInfo {
  name: string;
  id: number;
  /** Total run time in ns; counts only while `kernel.bpf_stats_enabled=1`. */
  runTimeNs: bigint;
  runCount: bigint;
}

/** An ELF BPF object opened from memory (`bpf_object__open_mem`). */
export class BpfObject implements Disposable {
  #lib: Libbpf;
  #ptr: Deno.PointerObject | null;
  // libbpf reads the ELF buffer until load finishes: keep it alive.
  #elf: Uint8Array<ArrayBuffer>;

  /** Opens `elf` under `name` (map names derive from it). */
  constructor(lib: Libbpf, elf: Uint8Array, name: string) {
    this.#lib = lib;
    this.#elf = new Uint8Array(elf);
    const opts = new Uint8Array(80); // struct bpf_object_open_opts, libbpf 1.1
    const view = new DataView(opts.buffer);
    view.setBigUint64(0, 80n, true); // .sz
    const nameBuf = cString(name);
    const namePtr = Deno.UnsafePointer.of(nameBuf);
    view.setBigUint64(8, BigInt(Deno.UnsafePointer.value(namePtr)), true);
    this.#ptr = lib.checkPointer(
      lib.sym.bpf_object__open_mem(this.#elf, BigInt(this.#elf.length), opts),
      "bpf_object__open_mem",
      `Cannot open the eBPF object "${name}"`,
    );
  }

  get #obj(): Deno.PointerObject {
    if (this.#ptr === null) throw new Error("The eBPF object is closed");
    return this.#ptr;
  }

  /** A map by name; throws when the object has none. */
  map(name: string): BpfMap {
    const p = this.#lib.sym.bpf_object__find_map_by_name(
      this.#obj,
      cString(name),
    );
    if (p === null) throw new Error(`The eBPF object has no map "${name}"`);
    return { name, pointer: p };
  }

  /** A program by function name; throws when the object has none. */
  program(name: string): BpfProgram {
    const p = this.#lib.sym.bpf_object__find_program_by_name(
      this.#obj,
      cString(name),
    );
    if (p === null) throw new Error(`The eBPF object has no program "${name}"`);
    return { name, pointer: p };
  }

  /**
   * Offsets of the variables of a data section (`.rodata`), read from the
   * object's BTF the way generated skeletons do at build time.
   */
  sectionLayout(
    section: string,
  ): Map<string, { offset: number; size: number }> {
    const sym = this.#lib.sym;
    const btf = sym.bpf_object__btf(this.#obj);
    if (btf === null) {
      throw new Error("The eBPF object has no BTF: rebuild it with clang -g");
    }
    const id = this.#lib.check(
      sym.btf__find_by_name_kind(btf, cString(section), BTF_KIND_DATASEC),
      "btf__find_by_name_kind",
      `Cannot find section "${section}" in the object's BTF`,
    );
    const type = sym.btf__type_by_id(btf, id);
    if (type === null) {
      throw new Error(`BTF type ${id} of "${section}" is missing`);
    }
    const view = new Deno.UnsafePointerView(type);
    const vlen = view.getUint32(4) & 0xffff; // struct btf_type { name_off; info; size; }
    const layout = new Map<string, { offset: number; size: number }>();
    for (let i = 0; i < vlen; i++) {
      const base = 12 + i * 12; // struct btf_var_secinfo { type; offset; size; }
      const varType = sym.btf__type_by_id(btf, view.getUint32(base));
      if (varType === null) continue;
      const varView = new Deno.UnsafePointerView(varType);
      if (((varView.getUint32(4) >> 24) & 0x1f) !== BTF_KIND_VAR) continue;
      const namePtr = sym.btf__name_by_offset(btf, varView.getUint32(0));
      if (namePtr === null) continue;
      layout.set(Deno.UnsafePointerView.getCString(namePtr), {
        offset: view.getUint32(base + 4),
        size: view.getUint32(base + 8),
      });
    }
    return layout;
  }

  /** The writable initial contents of a data map (before load). */
  initialValue(map: BpfMap): Uint8Array {
    const size = new BigUint64Array(1);
    const p = this.#lib.checkPointer(
      this.#lib.sym.bpf_map__initial_value(
        map.pointer,
        new Uint8Array(size.buffer),
      ),
      "bpf_map__initial_value",
      `Cannot read the initial value of map "${map.name}"`,
    );
    return new Uint8Array(
      Deno.UnsafePointerView.getArrayBuffer(p, Number(size[0]!)),
    );
  }

  /** Loads every program into the kernel (runs the verifier). */
  load(): void {
    this.#lib.check(
      this.#lib.sym.bpf_object__load(this.#obj),
      "bpf_object__load",
      "Cannot load the eBPF programs into the kernel",
    );
  }

  /** Attaches a program at its section's default place (tracepoints). */
  attach(prog: BpfProgram): BpfLink {
    const link = this.#lib.checkPointer(
      this.#lib.sym.bpf_program__attach(prog.pointer),
      "bpf_program__attach",
      `Cannot attach program "${prog.name}"`,
    );
    return new BpfLink(this.#lib, link, prog.name);
  }

  /** Attaches a cgroup program to the cgroup open as `cgroup`. */
  attachCgroup(prog: BpfProgram, cgroup: FileDescriptor): BpfLink {
    const link = this.#lib.checkPointer(
      this.#lib.sym.bpf_program__attach_cgroup(prog.pointer, cgroup.fd),
      "bpf_program__attach_cgroup",
      `Cannot attach program "${prog.name}" to the cgroup`,
    );
    return new BpfLink(this.#lib, link, prog.name);
  }

  /**
   * Attaches a program as a uprobe at file offset `offset` of the
   * executable at `path`, for process `pid` (-1: every process running it).
   */
  attachUprobe(
    prog: BpfProgram,
    pid: number,
    path: string,
    offset: number,
  ): BpfLink {
    const link = this.#lib.checkPointer(
      this.#lib.sym.bpf_program__attach_uprobe(
        prog.pointer,
        false,
        pid,
        cString(path),
        BigInt(offset),
      ),
      "bpf_program__attach_uprobe",
      `Cannot attach program "${prog.name}" at offset 0x${
        offset.toString(16)
      } of "${path}"`,
    );
    return new BpfLink(this.#lib, link, prog.name);
  }

  /** Kernel id and run statistics of a loaded program. */
  programInfo(prog: BpfProgram): ProgramInfo {
    const fd = this.#lib.check(
      this.#lib.sym.bpf_program__fd(prog.pointer),
      "bpf_program__fd",
      `Program "${prog.name}" is not loaded`,
    );
    const info = new Uint8Array(232); // struct bpf_prog_info (uapi 6.x)
    const len = new Uint32Array([info.length]);
    this.#lib.check(
      this.#lib.sym.bpf_obj_get_info_by_fd(
        fd,
        info,
        new Uint8Array(len.buffer),
      ),
      "bpf_obj_get_info_by_fd",
      `Cannot read information on program "${prog.name}"`,
    );
    const view = new DataView(info.buffer);
    const has = (off: number) => len[0]! >= off + 8;
    return {
      name: prog.name,
      id: view.getUint32(4, true),
      runTimeNs: has(192) ? view.getBigUint64(192, true) : 0n,
      runCount: has(200) ? view.getBigUint64(200, true) : 0n,
    };
  }

  /** Closes the object: unloads programs and maps no link still holds. */
  [Symbol.dispose](): void {
    if (this.#ptr === null) return;
    this.#lib.sym.bpf_object__close(this.#ptr);
    this.#ptr = null;
  }
}

/** An attached program; destroying it detaches. */
export class BpfLink implements Disposable {
  #lib: Libbpf;
  #ptr: Deno.PointerObject | null;
  /** Program the link attaches. */
  readonly program: string;

  constructor(lib: Libbpf, ptr: Deno.PointerObject, program: string) {
    this.#lib = lib;
    this.#ptr = ptr;
    this.program = program;
  }

  /** Detaches the program. */
  [Symbol.dispose](): void {
    if (this.#ptr === null) return;
    this.#lib.sym.bpf_link__destroy(this.#ptr);
    this.#ptr = null;
  }
}
