/**
 * Finds the TCP connection under a Go `*crypto/tls.Conn` of a live process
 * (the address the Go TLS probe reports), so an exchange can name its
 * socket 4-tuple like the wire probe's: reads the process's memory through
 * `/proc/<pid>/mem` along tls.Conn.conn (a net.Conn interface) to the
 * `*net.netFD` of a `*net.TCPConn` and its poll.FD.Sysfd, then maps the fd
 * to its socket inode (`/proc/<pid>/fd`) and the inode to its tuple
 * (`/proc/<pid>/net/tcp{,6}`).
 *
 * Layouts used, unchanged since Go 1.9: tls.Conn starts with `conn
 * net.Conn`; net.TCPConn starts with `conn{fd *netFD}`; netFD starts with
 * `pfd poll.FD`, whose `Sysfd int` follows a 16-byte fdMutex. A wrapper
 * that embeds the net.Conn (client-go's connection rotation does) is
 * looked through when the interface sits in its first two words. Every
 * guess is checked against /proc: a candidate fd must be a TCP socket of
 * the process, else the answer is null, never a wrong tuple from a wrong
 * layout (a stray fd that is another TCP socket of the process stays
 * possible in principle).
 *
 * @module
 */

import { parseProcNetTcp } from "./proc_scan.ts";
import { formatAddress } from "./wire_event.ts";

/** The socket under a tls.Conn. */
export interface GoConnSocket {
  fd: number;
  inode: number;
  /** `address:port` of each end, IPv4 dotted, IPv6 in brackets. */
  local: string;
  remote: string;
}

const SYSFD_OFFSET = 16; // poll.FD: fdMutex{state uint64; rsema, wsema uint32}, then Sysfd

async function readWord(
  mem: Deno.FsFile,
  addr: bigint,
): Promise<bigint | null> {
  if (addr <= 0n || addr >= 1n << 56n) return null;
  const buf = new Uint8Array(8);
  try {
    await mem.seek(addr, Deno.SeekMode.Start);
    let done = 0;
    while (done < 8) {
      const n = await mem.read(buf.subarray(done));
      if (n === null) return null;
      done += n;
    }
  } catch {
    return null; // unmapped
  }
  return new DataView(buf.buffer).getBigUint64(0, true);
}

async function socketInode(pid: number, fd: number): Promise<number | null> {
  try {
    const m = /^socket:\[(\d+)\]$/.exec(
      await Deno.readLink(`/proc/${pid}/fd/${fd}`),
    );
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

async function tcpSocket(
  pid: number,
  fd: number,
): Promise<GoConnSocket | null> {
  const inode = await socketInode(pid, fd);
  if (inode === null) return null;
  for (const file of ["tcp", "tcp6"]) {
    let text: string;
    try {
      text = await Deno.readTextFile(`/proc/${pid}/net/${file}`);
    } catch {
      continue;
    }
    const row = parseProcNetTcp(text).find((r) => r.inode === inode);
    if (row) {
      return {
        fd,
        inode,
        local: `${formatAddress(row.laddr)}:${row.lport}`,
        remote: `${formatAddress(row.raddr)}:${row.rport}`,
      };
    }
  }
  return null;
}

/**
 * The TCP socket under the tls.Conn at `conn` (hex address, as records
 * carry it) in process `pid`, or null when it cannot be found for sure.
 * Needs to read the process's memory (root, or ptrace rights).
 */
export async function goConnSocket(
  pid: number,
  conn: string,
): Promise<GoConnSocket | null> {
  let mem: Deno.FsFile;
  try {
    mem = await Deno.open(`/proc/${pid}/mem`, { read: true });
  } catch {
    return null;
  }
  try {
    // tls.Conn.conn is an interface: (itab, data) at offsets 0 and 8.
    const data = await readWord(mem, BigInt(`0x${conn}`) + 8n);
    let candidates = data === null ? [] : [data];
    for (let depth = 0; depth < 3 && candidates.length > 0; depth++) {
      const next: bigint[] = [];
      for (const c of candidates) {
        // As *net.TCPConn: the first word is its *netFD.
        const netFD = await readWord(mem, c);
        const sysfd = netFD === null
          ? null
          : await readWord(mem, netFD + BigInt(SYSFD_OFFSET));
        if (sysfd !== null && sysfd < 1n << 20n) {
          const socket = await tcpSocket(pid, Number(sysfd));
          if (socket) return socket;
        }
        // As a wrapper embedding net.Conn first (its data at +8) or after
        // one word (a func or pointer field: data at +16).
        for (const off of [8n, 16n]) {
          const inner = await readWord(mem, c + off);
          if (inner !== null) next.push(inner);
        }
      }
      candidates = next;
    }
    return null;
  } finally {
    mem.close();
  }
}
