import assert from "node:assert/strict";
import type { WireExchange } from "../core/api_types.ts";
import { AsyncQueue } from "../core/async_queue.ts";
import { FakeClock } from "../core/fake_clock.ts";
import { configureLogger } from "../core/log.ts";
import type { RawWireEvent } from "../core/wire_types.ts";
import type { H2Record } from "./h2_exchange.ts";
import { type ExactProbe, NodeProbe, type TcpProbe } from "./node_probe.ts";
import { rawEvent } from "./_test_events.ts";

configureLogger({ level: "error" });

// The first 256 bytes of a Lease PUT body for "gk-1" at resourceVersion
// 199, as the Go TLS probe captured it from a client-go kubelet.
const LEASE_PUT = Deno.readFileSync(
  new URL("../tests/testdata/lease_put_protobuf.bin", import.meta.url),
);
const SOCKET = "10.0.0.5:41000->10.0.0.1:16443";
const OFFSET_MS = Date.parse("2026-01-01T00:00:00Z");

class FakeTcp implements TcpProbe {
  readonly buffer = "ring";
  readonly monoToWallOffsetMs = OFFSET_MS;
  readonly adopted = 1;
  readonly endpoint = { port: 16443, detail: "test" };
  readonly queue = new AsyncQueue<RawWireEvent>();
  closed = false;
  events(): AsyncIterable<RawWireEvent> {
    return this.queue;
  }
  health(): Promise<string | null> {
    return Promise.resolve(null);
  }
  close(): Promise<void> {
    this.closed = true;
    this.queue.close();
    return Promise.resolve();
  }
}

class FakeExact implements ExactProbe {
  readonly queue = new AsyncQueue<H2Record>();
  closed = false;
  constructor(readonly pid: number) {}
  records(): AsyncIterable<H2Record> {
    return this.queue;
  }
  socketOf(): Promise<string | null> {
    return Promise.resolve(SOCKET);
  }
  close(): Promise<void> {
    this.closed = true;
    this.queue.close();
    return Promise.resolve();
  }
  /** One Lease PUT on `stream` sent at `ms` and answered 200 two ms later. */
  renewal(stream: number, ms: number): void {
    const t = BigInt(ms) * 1_000_000n;
    const base = {
      pid: this.pid,
      conn: "c000100000",
      streamId: stream,
      offset: 0,
    };
    this.queue.push({
      ...base,
      kind: "frame",
      tsNs: t,
      dir: "write",
      type: 1,
      flags: 4,
      length: 17,
      data: new Uint8Array(0),
    });
    this.queue.push({
      ...base,
      kind: "frame",
      tsNs: t + 50_000n,
      dir: "write",
      type: 0,
      flags: 1,
      length: 303,
      data: LEASE_PUT,
    });
    this.queue.push({
      ...base,
      kind: "frame",
      tsNs: t + 2_000_000n,
      dir: "read",
      type: 1,
      flags: 5,
      length: 4,
      data: new Uint8Array([0x88, 0x7f, 0x00, 0x9a]),
    });
  }
}

async function collect(
  probe: NodeProbe,
  n: number,
): Promise<WireExchange[]> {
  const out: WireExchange[] = [];
  for await (const x of probe.exchanges()) {
    out.push(x);
    if (out.length >= n) break;
  }
  return out;
}

Deno.test("renewals traced in the kubelet's HTTP/2 stream come out exact, TCP ones inferred, with the socket's RTT lent", async () => {
  const clock = new FakeClock();
  const tcp = new FakeTcp();
  const exact = new FakeExact(42);
  const probe = await NodeProbe.open({
    node: "gk-1",
    tcp,
    openExact: () => Promise.resolve(exact),
    kubeletPid: () => Promise.resolve(42),
    clock,
  });
  try {
    assert.deepEqual(probe.pairing, { mode: "exact" });
    tcp.queue.push(rawEvent({
      conn: SOCKET,
      srttUs: 250,
      startNs: 1_000_000n,
      firstRxNs: 3_000_000n,
      bytesSent: 700,
      bytesReceived: 500,
    }));
    exact.renewal(3, 1000);
    const [inferred, lease] = await collect(probe, 2);
    assert.equal(inferred!.confidence, "inferred");
    assert.deepEqual(lease, {
      node: "gk-1",
      conn: SOCKET,
      at: "2026-01-01T00:00:01.000Z",
      latencyMs: 2,
      bytesSent: 9 + 17 + 9 + 303,
      bytesReceived: 9 + 4,
      srttUs: 250,
      retransmits: 0,
      resets: 0,
      confidence: "exact",
      lease: "kube-node-lease/gk-1",
      resourceVersion: "199",
      status: 200,
    });
  } finally {
    await probe.close();
  }
  assert.equal(tcp.closed && exact.closed, true);
});

Deno.test("a kubelet restart (a new pid) is followed by tracing the new process", async () => {
  const clock = new FakeClock();
  const tcp = new FakeTcp();
  let pid = 42;
  const opened: FakeExact[] = [];
  const probe = await NodeProbe.open({
    node: "gk-1",
    tcp,
    openExact: (p) => {
      const e = new FakeExact(p);
      opened.push(e);
      return Promise.resolve(e);
    },
    kubeletPid: () => Promise.resolve(pid),
    clock,
    checkMs: 5000,
  });
  try {
    await clock.advance(5000);
    assert.equal(opened.length, 1, "same pid: nothing to do");
    pid = 77;
    await clock.advance(5000);
    assert.deepEqual(opened.map((e) => e.pid), [42, 77]);
    assert.equal(opened[0]!.closed, true);
    opened[1]!.renewal(5, 2000);
    const [x] = await collect(probe, 1);
    assert.equal(x!.confidence, "exact");
  } finally {
    await probe.close();
  }
});

Deno.test("where the Go TLS layer cannot be traced, pairing is inferred and says why", async () => {
  const clock = new FakeClock();
  const failing = await NodeProbe.open({
    node: "n",
    tcp: new FakeTcp(),
    openExact: () => Promise.reject(new Error("no crypto/tls in the binary")),
    kubeletPid: () => Promise.resolve(42),
    clock,
  });
  const off = await NodeProbe.open({
    node: "n",
    tcp: new FakeTcp(),
    exactOff: "exact identification disabled by --no-uprobes",
    kubeletPid: () => Promise.resolve(42),
    clock,
  });
  try {
    assert.deepEqual(failing.pairing, {
      mode: "inferred",
      reason:
        "the kubelet's Go TLS layer cannot be traced: no crypto/tls in the binary",
    });
    assert.deepEqual(off.pairing, {
      mode: "inferred",
      reason: "exact identification disabled by --no-uprobes",
    });
  } finally {
    await failing.close();
    await off.close();
  }
});
