import assert from "node:assert/strict";
import {
  findConnections,
  parseProcAddress,
  parseProcNetTcp,
} from "./proc_scan.ts";

const TCP =
  `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:C80A 0100007F:192B 01 00000000:00000000 02:000AFC7E 00000000     0        0 51234 2 0000000000000000 20 4 30 10 -1
   1: 0100007F:192B 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 51000 1 0000000000000000 100 0 0 10 0
   2: 0100007F:C80B 0100007F:192B 06 00000000:00000000 03:00001770 00000000     0        0 0 3 0000000000000000
   3: 0100007F:C80C 0100007F:01BB 01 00000000:00000000 02:000AFC7E 00000000     0        0 51236 2 0000000000000000 20 4 30 10 -1
`;
const TCP6 =
  `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0000000000000000FFFF00000100007F:D431 0000000000000000FFFF00000100007F:192B 01 00000000:00000000 00:00000000 00000000     0        0 61000 1 0000000000000000 20 4 29 10 -1
   1: B80D0120000000000000000005000000:D432 B80D0120000000000000000001000000:192B 01 00000000:00000000 00:00000000 00000000     0        0 61001 1 0000000000000000 20 4 29 10 -1
`;

Deno.test("IPv4 and IPv6 addresses of /proc/net/tcp parse into mapped 16-byte form", () => {
  assert.deepEqual([...parseProcAddress("0100007F")], [
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    255,
    255,
    127,
    0,
    0,
    1,
  ]);
  assert.deepEqual(
    [...parseProcAddress("B80D0120000000000000000005000000")],
    [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5],
  );
  assert.throws(() => parseProcAddress("12345"), /Unexpected address "12345"/);
});

Deno.test("rows of /proc/net/tcp carry ports, state and inode", () => {
  const rows = parseProcNetTcp(TCP);
  assert.equal(rows.length, 4);
  assert.deepEqual(
    rows.map((r) => [r.lport, r.rport, r.state, r.inode]),
    [[51210, 6443, 1, 51234], [6443, 0, 10, 51000], [51211, 6443, 6, 0], [
      51212,
      443,
      1,
      51236,
    ]],
  );
});

Deno.test("existing connections are those of processes with the name, to the port, established", async () => {
  const root = await Deno.makeTempDir();
  try {
    const proc = async (pid: number, comm: string, inodes: number[]) => {
      await Deno.mkdir(`${root}/${pid}/fd`, { recursive: true });
      await Deno.mkdir(`${root}/${pid}/net`);
      await Deno.writeTextFile(`${root}/${pid}/comm`, comm + "\n");
      await Deno.writeTextFile(`${root}/${pid}/net/tcp`, TCP);
      await Deno.writeTextFile(`${root}/${pid}/net/tcp6`, TCP6);
      for (const [i, inode] of inodes.entries()) {
        await Deno.symlink(`socket:[${inode}]`, `${root}/${pid}/fd/${i + 3}`);
      }
      await Deno.symlink("/dev/null", `${root}/${pid}/fd/0`);
    };
    await proc(100, "kubelet", [51234, 51236, 61000, 61001]);
    await proc(200, "curl", [51234]);
    await Deno.mkdir(`${root}/self`);
    const found = await findConnections("kubelet", 6443, root);
    assert.deepEqual(
      found.map((c) => [c.pid, c.comm, c.lport, c.rport, c.inode]).sort(),
      [[100, "kubelet", 51210, 6443, 51234], [
        100,
        "kubelet",
        54321,
        6443,
        61000,
      ], [
        100,
        "kubelet",
        54322,
        6443,
        61001,
      ]].sort(),
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
