/**
 * Finds the TCP connections a process already holds, for connections opened
 * before the probe attached (connect-time hooks never saw them): processes by
 * `/proc/<pid>/comm`, their socket inodes from `/proc/<pid>/fd`, and the
 * tuples from `/proc/<pid>/net/tcp{,6}` (the process's own network namespace).
 *
 * @module
 */

import type { WireTuple } from "./wire_event.ts";

/** One row of /proc/net/tcp or tcp6. */
export interface ProcTcpRow extends WireTuple {
  /** TCP state number (1 = ESTABLISHED). */
  state: number;
  inode: number;
}

/** A connection owned by a matching process. */
export interface ExistingConnection extends WireTuple {
  pid: number;
  comm: string;
  inode: number;
}

const TCP_ESTABLISHED = 1;
const TCP_LISTEN = 10;

/** Parses an address as printed by /proc/net/tcp{,6} into 16 bytes (IPv4 mapped). */
export function parseProcAddress(hex: string): Uint8Array {
  const out = new Uint8Array(16);
  const words = hex.length / 8;
  if ((words !== 1 && words !== 4) || !/^[0-9A-Fa-f]+$/.test(hex)) {
    throw new SyntaxError(`Unexpected address "${hex}" in /proc/net/tcp`);
  }
  // Each 32-bit word is printed as a host-order (little-endian) number.
  const bytes: number[] = [];
  for (let w = 0; w < words; w++) {
    const word = hex.slice(w * 8, w * 8 + 8);
    for (let i = 3; i >= 0; i--) {
      bytes.push(parseInt(word.slice(i * 2, i * 2 + 2), 16));
    }
  }
  if (words === 1) {
    out[10] = 0xff;
    out[11] = 0xff;
    out.set(bytes, 12);
  } else {
    out.set(bytes);
  }
  return out;
}

/** Parses the text of /proc/net/tcp or /proc/net/tcp6 (header line skipped). */
export function parseProcNetTcp(text: string): ProcTcpRow[] {
  const rows: ProcTcpRow[] = [];
  for (const line of text.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const [laddr, lport] = f[1]!.split(":");
    const [raddr, rport] = f[2]!.split(":");
    if (!laddr || !lport || !raddr || !rport) continue;
    rows.push({
      laddr: parseProcAddress(laddr),
      lport: parseInt(lport, 16),
      raddr: parseProcAddress(raddr),
      rport: parseInt(rport, 16),
      state: parseInt(f[3]!, 16),
      inode: Number(f[9]),
    });
  }
  return rows;
}

async function readText(path: string): Promise<string | null> {
  try {
    return await Deno.readTextFile(path);
  } catch {
    return null; // the process exited or is not ours to read
  }
}

async function socketInodes(fdDir: string): Promise<Set<number>> {
  const inodes = new Set<number>();
  try {
    for await (const entry of Deno.readDir(fdDir)) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(
          await Deno.readLink(`${fdDir}/${entry.name}`),
        );
        if (m) inodes.add(Number(m[1]));
      } catch {
        // fd closed while we looked
      }
    }
  } catch {
    // process gone or not permitted
  }
  return inodes;
}

/** Pids of the processes named `comm`. */
export async function pidsOf(
  comm: string,
  procRoot = "/proc",
): Promise<number[]> {
  const pids: number[] = [];
  for await (const entry of Deno.readDir(procRoot)) {
    if (!/^\d+$/.test(entry.name)) continue;
    const name = (await readText(`${procRoot}/${entry.name}/comm`))?.trimEnd();
    if (name === comm) pids.push(Number(entry.name));
  }
  return pids;
}

/** A process's TCP sockets: established connections and listening ports. */
export interface ProcessSockets {
  pid: number;
  comm: string;
  established: ProcTcpRow[];
  /** Local ports the process listens on. */
  listening: Set<number>;
}

/**
 * The TCP sockets of every process named `comm`, from its own network
 * namespace's tables. `procRoot` is for tests; unreadable processes are
 * skipped.
 */
export async function processSockets(
  comm: string,
  procRoot = "/proc",
): Promise<ProcessSockets[]> {
  const out: ProcessSockets[] = [];
  const tablesByNetns = new Map<string, ProcTcpRow[]>();
  for await (const entry of Deno.readDir(procRoot)) {
    if (!/^\d+$/.test(entry.name)) continue;
    const dir = `${procRoot}/${entry.name}`;
    const name = (await readText(`${dir}/comm`))?.trimEnd();
    if (name !== comm) continue;
    const inodes = await socketInodes(`${dir}/fd`);
    let netns = dir;
    try {
      netns = await Deno.readLink(`${dir}/ns/net`);
    } catch {
      // no namespace link (tests, old kernels): use this process's own table
    }
    let rows = tablesByNetns.get(netns);
    if (!rows) {
      rows = [];
      for (const table of ["tcp", "tcp6"]) {
        const text = await readText(`${dir}/net/${table}`);
        if (text !== null) rows.push(...parseProcNetTcp(text));
      }
      tablesByNetns.set(netns, rows);
    }
    const own = rows.filter((r) => inodes.has(r.inode));
    out.push({
      pid: Number(entry.name),
      comm: name,
      established: own.filter((r) => r.state === TCP_ESTABLISHED),
      listening: new Set(
        own.filter((r) => r.state === TCP_LISTEN).map((r) => r.lport),
      ),
    });
  }
  return out;
}

/**
 * Established connections to remote `port` held by processes named `comm`.
 * `procRoot` is for tests; unreadable processes are skipped.
 */
export async function findConnections(
  comm: string,
  port: number,
  procRoot = "/proc",
): Promise<ExistingConnection[]> {
  const found: ExistingConnection[] = [];
  for (const p of await processSockets(comm, procRoot)) {
    for (const row of p.established) {
      if (row.rport !== port) continue;
      found.push({
        laddr: row.laddr,
        lport: row.lport,
        raddr: row.raddr,
        rport: row.rport,
        pid: p.pid,
        comm: p.comm,
        inode: row.inode,
      });
    }
  }
  return found;
}
