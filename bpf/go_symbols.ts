/**
 * Reads what a uprobe needs from a Go executable, stripped or not: the ELF
 * sections and segments, the Go version (`.go.buildinfo`), and from the
 * `.gopclntab` (which `-s -w` keeps, since the runtime needs it) each
 * function's name and entry address and its pc → SP-delta table (pcsp).
 *
 * On amd64 the pcsp table also locates a function's RET instructions without
 * a disassembler: in a function that allocates a frame, the SP delta is 0
 * only in the prologue (before the stack check passed and the frame is
 * pushed), at each RET (after the epilogue popped the frame), and in the
 * morestack trailer. A zero-delta range after the prologue whose first byte
 * is 0xC3 starts with a RET (no other x86 instruction starts with that byte,
 * and a range starts on an instruction boundary); the trailer starts with a
 * spill or a CALL. Tests check the list against `go tool objdump`.
 *
 * Supports the pclntab of Go 1.18 and later (magic 0xfffffff0/0xfffffff1),
 * ELF64 little-endian.
 *
 * @module
 */

/** A function of a Go binary. Addresses are virtual (as linked). */
export interface GoFunc {
  /** Full name, e.g. `crypto/tls.(*Conn).Write`. */
  name: string;
  /** Address of its first instruction. */
  entry: number;
  /** Address just past its last instruction. */
  end: number;
}

/** One range of a pc-value table: `value` holds for pcs in [start, end). */
export interface PcRange {
  start: number;
  end: number;
  value: number;
}

/** A loaded ELF section. */
export interface ElfSection {
  name: string;
  type: number;
  addr: number;
  offset: number;
  size: number;
}

/** A PT_LOAD segment. */
export interface ElfSegment {
  vaddr: number;
  offset: number;
  filesz: number;
  flags: number;
}

/** The binary is not an ELF Go executable this module can read. */
export class GoBinaryError extends Error {
  override name = "GoBinaryError";
}

const PT_LOAD = 1;
const EM_X86_64 = 62;
const EM_AARCH64 = 183;
const RET = 0xc3;
const NOP = 0x90;
const MAX_NOPS = 8;
const BUILDINFO_MAGIC = "\xff Go buildinf:";
const MAGIC_GO118 = 0xfffffff0;
const MAGIC_GO120 = 0xfffffff1;

type ReadAt = (offset: number, length: number) => Uint8Array;

function fileReader(file: Deno.FsFile): ReadAt {
  return (offset, length) => {
    const out = new Uint8Array(length);
    file.seekSync(offset, Deno.SeekMode.Start);
    let done = 0;
    while (done < length) {
      const n = file.readSync(out.subarray(done));
      if (n === null) break;
      done += n;
    }
    if (done < length) {
      throw new GoBinaryError(
        `Short read at offset ${offset}: got ${done} of ${length} bytes`,
      );
    }
    return out;
  };
}

function u64(v: DataView, off: number): number {
  const n = v.getBigUint64(off, true);
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new GoBinaryError(`Value ${n} at ${off} is too large`);
  }
  return Number(n);
}

/** Reads an unsigned LEB128 varint at `pos`; returns [value, next pos]. */
function uvarint(b: Uint8Array, pos: number): [number, number] {
  let v = 0, shift = 0;
  for (;;) {
    const byte = b[pos++];
    if (byte === undefined) throw new GoBinaryError("Truncated varint");
    v += (byte & 0x7f) * 2 ** shift;
    if ((byte & 0x80) === 0) return [v, pos];
    shift += 7;
    if (shift > 49) throw new GoBinaryError("Varint too long");
  }
}

/** A Go executable opened for symbol lookup; close it when done. */
export class GoBinary implements Disposable {
  /** `amd64`, `arm64` or `elf-machine-<n>`. */
  readonly arch: string;
  /** Go version from `.go.buildinfo` (e.g. `go1.24.4`), or null when absent. */
  readonly goVersion: string | null;
  /** Address of `runtime.text`: function offsets in the pclntab are relative to it. */
  readonly textStart: number;
  /** Sections by name. */
  readonly sections: ReadonlyMap<string, ElfSection>;
  /** PT_LOAD segments. */
  readonly segments: readonly ElfSegment[];
  #read: ReadAt;
  #file: Deno.FsFile | null;
  #pcln: Uint8Array;
  #view: DataView;
  #nfunc: number;
  #funcnametab: number;
  #pctab: number;
  #functab: number;
  #index: Map<string, number[]> | null = null;

  private constructor(read: ReadAt, file: Deno.FsFile | null) {
    this.#read = read;
    this.#file = file;
    try {
      const head = read(0, 64);
      const hv = new DataView(head.buffer);
      if (
        head[0] !== 0x7f || head[1] !== 0x45 || head[2] !== 0x4c ||
        head[3] !== 0x46
      ) {
        throw new GoBinaryError("Not an ELF file");
      }
      if (head[4] !== 2 || head[5] !== 1) {
        throw new GoBinaryError("Only 64-bit little-endian ELF is supported");
      }
      const machine = hv.getUint16(18, true);
      this.arch = machine === EM_X86_64
        ? "amd64"
        : machine === EM_AARCH64
        ? "arm64"
        : `elf-machine-${machine}`;
      const phoff = u64(hv, 32), shoff = u64(hv, 40);
      const phentsize = hv.getUint16(54, true), phnum = hv.getUint16(56, true);
      const shentsize = hv.getUint16(58, true), shnum = hv.getUint16(60, true);
      const shstrndx = hv.getUint16(62, true);
      const segments: ElfSegment[] = [];
      if (phnum > 0) {
        const ph = read(phoff, phentsize * phnum);
        const pv = new DataView(ph.buffer);
        for (let i = 0; i < phnum; i++) {
          const b = i * phentsize;
          if (pv.getUint32(b, true) !== PT_LOAD) continue;
          segments.push({
            flags: pv.getUint32(b + 4, true),
            offset: u64(pv, b + 8),
            vaddr: u64(pv, b + 16),
            filesz: u64(pv, b + 32),
          });
        }
      }
      this.segments = segments;
      const sections = new Map<string, ElfSection>();
      if (shnum > 0) {
        const sh = read(shoff, shentsize * shnum);
        const sv = new DataView(sh.buffer);
        const raw = Array.from({ length: shnum }, (_, i) => {
          const b = i * shentsize;
          return {
            nameOff: sv.getUint32(b, true),
            type: sv.getUint32(b + 4, true),
            addr: u64(sv, b + 16),
            offset: u64(sv, b + 24),
            size: u64(sv, b + 32),
          };
        });
        const strtab = raw[shstrndx];
        const names = strtab ? read(strtab.offset, strtab.size) : null;
        for (const s of raw) {
          if (!names) break;
          const end = names.indexOf(0, s.nameOff);
          const name = new TextDecoder().decode(
            names.subarray(s.nameOff, end < 0 ? names.length : end),
          );
          sections.set(name, {
            name,
            type: s.type,
            addr: s.addr,
            offset: s.offset,
            size: s.size,
          });
        }
      }
      this.sections = sections;
      const text = sections.get(".text");
      if (!text) throw new GoBinaryError("The binary has no .text section");
      this.textStart = text.addr;
      this.goVersion = this.#readGoVersion();
      const pcln = sections.get(".gopclntab") ??
        sections.get(".data.rel.ro.gopclntab");
      if (!pcln) {
        throw new GoBinaryError(
          "The binary has no .gopclntab section: not a Go executable",
        );
      }
      this.#pcln = read(pcln.offset, pcln.size);
      this.#view = new DataView(
        this.#pcln.buffer,
        this.#pcln.byteOffset,
        this.#pcln.byteLength,
      );
      const magic = this.#view.getUint32(0, true);
      if (magic !== MAGIC_GO118 && magic !== MAGIC_GO120) {
        throw new GoBinaryError(
          `Unsupported pclntab magic 0x${
            magic.toString(16)
          }: Go 1.18 or newer is needed`,
        );
      }
      if (this.#pcln[7] !== 8) {
        throw new GoBinaryError(
          `Unsupported pointer size ${this.#pcln[7]} in the pclntab`,
        );
      }
      // pcHeader: magic, pad, minLC, ptrSize, then 8 pointer-sized words.
      const word = (i: number) => u64(this.#view, 8 + i * 8);
      this.#nfunc = word(0);
      this.#funcnametab = word(3);
      this.#pctab = word(6);
      this.#functab = word(7);
    } catch (e) {
      file?.close();
      throw e;
    }
  }

  /** Opens the executable at `path` (e.g. `/proc/<pid>/exe`); reads only what lookups need. */
  static open(path: string): GoBinary {
    let file: Deno.FsFile;
    try {
      file = Deno.openSync(path, { read: true });
    } catch (e) {
      throw new GoBinaryError(`Cannot open "${path}": ${e}`, { cause: e });
    }
    return new GoBinary(fileReader(file), file);
  }

  /** Parses an executable held in memory. */
  static fromBytes(bytes: Uint8Array): GoBinary {
    return new GoBinary((offset, length) => {
      if (offset + length > bytes.length) {
        throw new GoBinaryError(
          `Read past the end: ${offset}+${length} > ${bytes.length}`,
        );
      }
      return bytes.slice(offset, offset + length);
    }, null);
  }

  #readGoVersion(): string | null {
    const s = this.sections.get(".go.buildinfo");
    if (!s || s.size < 32) return null;
    const b = this.#read(s.offset, Math.min(s.size, 64 + 32));
    if (
      new TextDecoder("latin1").decode(b.subarray(0, 14)) !== BUILDINFO_MAGIC
    ) {
      return null;
    }
    if ((b[15]! & 2) === 0) return null; // pre-1.18 layout: pointers, not inline
    const [len, pos] = uvarint(b, 32);
    return new TextDecoder().decode(b.subarray(pos, pos + len));
  }

  /** Number of functions in the pclntab. */
  get functionCount(): number {
    return this.#nfunc;
  }

  #funcOff(i: number): number {
    return this.#functab +
      this.#view.getUint32(this.#functab + i * 8 + 4, true);
  }

  #entry(i: number): number {
    return this.textStart + this.#view.getUint32(this.#functab + i * 8, true);
  }

  #name(i: number): string {
    const nameOff = this.#view.getInt32(this.#funcOff(i) + 4, true);
    const start = this.#funcnametab + nameOff;
    const end = this.#pcln.indexOf(0, start);
    return new TextDecoder().decode(this.#pcln.subarray(start, end));
  }

  #func(i: number): GoFunc {
    // functab has nfunc+1 entries: the last is the end of the text.
    const end = this.textStart +
      this.#view.getUint32(this.#functab + (i + 1) * 8, true);
    return { name: this.#name(i), entry: this.#entry(i), end };
  }

  /** Every function, in address order. */
  functions(): GoFunc[] {
    return Array.from({ length: this.#nfunc }, (_, i) => this.#func(i));
  }

  /** Every function named `name` (an ABI wrapper may share its target's name). */
  funcs(name: string): GoFunc[] {
    if (this.#index === null) {
      this.#index = new Map();
      for (let i = 0; i < this.#nfunc; i++) {
        const n = this.#name(i);
        const list = this.#index.get(n);
        if (list) list.push(i);
        else this.#index.set(n, [i]);
      }
    }
    return (this.#index.get(name) ?? []).map((i) => this.#func(i));
  }

  /**
   * The function named `name`, or null. When an ABI wrapper shares the
   * name, the largest (the function itself: a wrapper only calls it).
   */
  func(name: string): GoFunc | null {
    const all = this.funcs(name);
    all.sort((a, b) => (b.end - b.entry) - (a.end - a.entry));
    return all[0] ?? null;
  }

  /** The pcsp table of `fn`: SP delta (bytes below the entry SP) per pc range. */
  spDeltas(fn: GoFunc): PcRange[] {
    const i = this.#indexOf(fn);
    const pcsp = this.#view.getUint32(this.#funcOff(i) + 16, true);
    const quantum = this.#pcln[6]!;
    const out: PcRange[] = [];
    let pos = this.#pctab + pcsp, pc = fn.entry, value = -1;
    for (let first = true;; first = false) {
      let uv: number, pcDelta: number;
      [uv, pos] = uvarint(this.#pcln, pos);
      if (uv === 0 && !first) break;
      // zig-zag: odd means negative
      const delta = uv % 2 === 1 ? -(uv + 1) / 2 : uv / 2;
      [pcDelta, pos] = uvarint(this.#pcln, pos);
      const start = pc;
      pc += pcDelta * quantum;
      value += delta;
      out.push({ start, end: pc, value });
      if (pc >= fn.end) break;
    }
    return out;
  }

  #indexOf(fn: GoFunc): number {
    // Binary search by entry: functab is sorted by address.
    let lo = 0, hi = this.#nfunc - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const e = this.#entry(mid);
      if (e === fn.entry) return mid;
      if (e < fn.entry) lo = mid + 1;
      else hi = mid - 1;
    }
    throw new GoBinaryError(
      `No function at 0x${fn.entry.toString(16)} ("${fn.name}")`,
    );
  }

  /** File offset of virtual address `addr` (what a uprobe attaches to). */
  fileOffset(addr: number): number {
    for (const s of this.segments) {
      if (addr >= s.vaddr && addr < s.vaddr + s.filesz) {
        return addr - s.vaddr + s.offset;
      }
    }
    throw new GoBinaryError(
      `Address 0x${addr.toString(16)} is in no loaded segment`,
    );
  }

  /** `length` code bytes at virtual address `addr`. */
  code(addr: number, length: number): Uint8Array {
    return this.#read(this.fileOffset(addr), length);
  }

  /**
   * The first pc of `fn` that runs with its frame being set up: past the
   * stack check, so a probe there fires once per call (a probe at the entry
   * fires again when the stack grows: morestack re-enters the function).
   * The argument registers are untouched up to there. amd64 only.
   */
  frameStart(fn: GoFunc): number {
    this.#needAmd64();
    const ranges = this.spDeltas(fn);
    const first = ranges.find((r) => r.value !== 0);
    if (!first || ranges[0]!.value !== 0) {
      throw new GoBinaryError(
        `"${fn.name}" allocates no frame: its RETs cannot be found from the pcsp table`,
      );
    }
    this.#checkPrologue(fn);
    return first.start;
  }

  /**
   * The `PUSHQ BP` that opens `fn`'s frame, right before its
   * {@link frameStart}, or null when the function sets its frame up
   * otherwise. Like the frame start it runs once per call (the stack check
   * jumps past it to morestack), with the argument registers untouched;
   * unlike a MOV, x86 uprobes emulate a PUSH (Linux 6.11+) instead of
   * single-stepping it out of line, which costs two traps. Checked by the
   * bytes around it: `55` then `MOVQ SP, BP` (48 89 e5), the layout since
   * Go 1.21; no other instruction that ends at the frame start can match.
   */
  framePush(fn: GoFunc): number | null {
    const start = this.frameStart(fn);
    if (start - 1 < fn.entry) return null;
    const b = this.code(start - 1, 4);
    return b[0] === 0x55 && b[1] === 0x48 && b[2] === 0x89 && b[3] === 0xe5
      ? start - 1
      : null;
  }

  /** Addresses of the RET instructions of `fn` (amd64, frame-allocating functions). */
  returns(fn: GoFunc): number[] {
    this.#needAmd64();
    const start = this.frameStart(fn);
    const rets: number[] = [];
    for (const r of this.spDeltas(fn)) {
      if (r.start < start || r.value !== 0) continue;
      // The compiler may put one-byte NOPs (inline marks) before the RET.
      const code = this.code(r.start, Math.min(r.end - r.start, MAX_NOPS + 1));
      let i = 0;
      while (code[i] === NOP && i < MAX_NOPS) i++;
      if (code[i] === RET) rets.push(r.start + i);
    }
    if (rets.length === 0) {
      throw new GoBinaryError(`No RET found in "${fn.name}"`);
    }
    return rets;
  }

  #needAmd64(): void {
    if (this.arch !== "amd64") {
      throw new GoBinaryError(
        `RET finding supports amd64 only, this binary is ${this.arch}`,
      );
    }
  }

  /**
   * Checks that `fn` starts with Go's amd64 stack check (`CMPQ SP,
   * 16(R14)`, `LEAQ -n(SP), R12` or `MOVQ SP, R12`) or, when it has none,
   * with `PUSHQ BP`:
   * proves that the text start and the function table line up.
   */
  #checkPrologue(fn: GoFunc): void {
    const b = this.code(fn.entry, 4);
    const cmp = b[0] === 0x49 && b[1] === 0x3b && b[2] === 0x66; // CMPQ SP, d8(R14)
    const lea = b[0] === 0x4c && b[1] === 0x8d &&
      (b[2] === 0x64 || b[2] === 0xa4); // LEAQ -n(SP), R12: a large frame
    const mov = b[0] === 0x49 && b[1] === 0x89 && b[2] === 0xe4; // MOVQ SP, R12: a huge frame
    const push = b[0] === 0x55; // PUSHQ BP: a NOSPLIT function
    if (!cmp && !lea && !mov && !push) {
      throw new GoBinaryError(
        `"${fn.name}" at 0x${
          fn.entry.toString(16)
        } does not start with a Go stack check (${
          [...b].map((x) => x.toString(16).padStart(2, "0")).join(" ")
        }): is the binary linked externally?`,
      );
    }
  }

  /** Closes the file. */
  [Symbol.dispose](): void {
    this.#file?.close();
    this.#file = null;
  }
}
