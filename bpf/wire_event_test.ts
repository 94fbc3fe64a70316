import assert from "node:assert/strict";
import {
  decodeWireEvent,
  encodeOwner,
  encodeTuple,
  formatAddress,
  WIRE_EVENT_OFFSETS,
  WIRE_EVENT_SIZE,
  WIRE_OWNER_SIZE,
  WIRE_TUPLE_SIZE,
} from "./wire_event.ts";
import { onPath, prereq } from "../tests/prereq.ts";

const fixture = Deno.readFileSync(
  new URL("../tests/testdata/wire_event_exchange.bin", import.meta.url),
);

Deno.test("fixture written by the C struct has the decoder's size", () => {
  assert.equal(fixture.length, WIRE_EVENT_SIZE);
  assert.equal(WIRE_EVENT_OFFSETS.comm + 16 + 4, WIRE_EVENT_SIZE);
});

Deno.test("decoder reads every field of an exchange event at its C offset", () => {
  const ev = decodeWireEvent(fixture);
  assert.deepEqual(ev, {
    kind: "exchange",
    tsNs: 1000000123456789n,
    cookie: 0x0102030405060708n,
    local: "10.0.0.7:51234",
    remote: "[fd00::1]:6443",
    conn: "10.0.0.7:51234->[fd00::1]:6443",
    pid: 4242,
    comm: "kubelet",
    origin: "adopted",
    srttUs: 1234,
    totalRetrans: 7,
    resets: 1,
    startNs: 1000000100000000n,
    firstRxNs: 1000000102500000n,
    lastRxNs: 1000000103000000n,
    bytesSent: 612,
    bytesReceived: 4097,
    retrans: 2,
    oldState: "",
    newState: "",
    resetDirection: null,
  });
});

Deno.test("decoder names TCP states of state events and directions of resets", () => {
  const state = fixture.slice();
  state[WIRE_EVENT_OFFSETS.type] = 5;
  const s = decodeWireEvent(state);
  assert.equal(s.kind, "state");
  assert.equal(s.oldState, "ESTABLISHED");
  assert.equal(s.newState, "FIN_WAIT1");
  const reset = fixture.slice();
  reset[WIRE_EVENT_OFFSETS.type] = 4;
  reset[WIRE_EVENT_OFFSETS.newState] = 2;
  assert.equal(decodeWireEvent(reset).resetDirection, "received");
});

Deno.test("decoder rejects short records and unknown types with a fix", () => {
  assert.throws(
    () => decodeWireEvent(fixture.subarray(0, 100)),
    /100 bytes, expected 136/,
  );
  const bad = fixture.slice();
  bad[WIRE_EVENT_OFFSETS.type] = 99;
  assert.throws(() => decodeWireEvent(bad), /unknown type 99: rebuild/);
});

Deno.test("addresses print as dotted IPv4 when mapped and as compressed IPv6 otherwise", () => {
  const v6 = new Uint8Array(16);
  v6[0] = 0x20;
  v6[1] = 0x01;
  v6[2] = 0x0d;
  v6[3] = 0xb8;
  v6[15] = 5;
  assert.equal(formatAddress(v6), "[2001:db8::5]");
  assert.equal(formatAddress(new Uint8Array(16)), "[::]");
});

Deno.test("tuple and owner records match struct wire_tuple and wire_owner", () => {
  const laddr = new Uint8Array(16).fill(1);
  const raddr = new Uint8Array(16).fill(2);
  const t = encodeTuple({ laddr, lport: 0x1234, raddr, rport: 6443 });
  assert.equal(t.length, WIRE_TUPLE_SIZE);
  assert.deepEqual([...t.subarray(0, 16)], [...laddr]);
  assert.deepEqual([...t.subarray(16, 32)], [...raddr]);
  assert.deepEqual([...t.subarray(32)], [0x34, 0x12, 0x2b, 0x19]);
  const o = encodeOwner(0x01020304, "kubelet");
  assert.equal(o.length, WIRE_OWNER_SIZE);
  assert.deepEqual(
    [...o.subarray(0, 8)],
    [0, 0, 0, 0, 0, 0, 0, 0],
    "cookie 0: not seen yet",
  );
  assert.deepEqual([...o.subarray(8, 12)], [4, 3, 2, 1]);
  assert.equal(new TextDecoder().decode(o.subarray(12, 19)), "kubelet");
  assert.equal(o[19], 0);
});

const cc = prereq(
  "a C compiler",
  onPath("cc") ? null : '"cc" is not installed: install gcc',
);

Deno.test({
  name: "cc: the committed decoder fixture is what the C header lays out",
  ignore: cc.ignore,
}, async () => {
  cc.check();
  const dir = await Deno.makeTempDir();
  try {
    const built = await new Deno.Command("cc", {
      args: [
        "-Wall",
        "-Werror",
        "-I",
        new URL(".", import.meta.url).pathname,
        new URL("../tests/wire/event_fixture.c", import.meta.url).pathname,
        "-o",
        `${dir}/fixture`,
      ],
      stderr: "piped",
    }).output();
    assert.ok(built.success, new TextDecoder().decode(built.stderr));
    const out = await new Deno.Command(`${dir}/fixture`, { stdout: "piped" })
      .output();
    assert.deepEqual(out.stdout, fixture);
    assert.equal(decodeWireEvent(out.stdout).comm, "kubelet");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
