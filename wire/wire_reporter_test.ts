import assert from "node:assert/strict";
import { AsyncQueue } from "../core/async_queue.ts";
import { systemClock } from "../core/clock.ts";
import { WireUnavailableError } from "../core/errors.ts";
import { FakeClock } from "../core/fake_clock.ts";
import { configureLogger } from "../core/log.ts";
import type { WireExchange } from "../core/api_types.ts";
import type {
  ProbeState,
  RawWireEvent,
  WireReport,
  WireReportSink,
} from "../core/wire_types.ts";
import { rawEvent } from "./_test_events.ts";
import { aggregate, WireAggregator } from "./wire_aggregator.ts";
import {
  type OpenedProbe,
  runWireReporter,
  type WireTarget,
} from "./wire_reporter.ts";

configureLogger({ level: "error" });

/** A leader's hub as the reporter sees it: it records what it is given. */
class RecordingSink implements WireReportSink {
  reports: { node: string; probe: ProbeState; exchanges: WireExchange[] }[] =
    [];
  wireReport(node: string, probe: ProbeState, exchanges: WireExchange[]) {
    this.reports.push({ node, probe: { ...probe }, exchanges });
  }
}

/** A probe the test pushes kernel events into. */
class FakeProbe implements OpenedProbe {
  readonly monoToWallOffsetMs = Date.parse("2026-01-01T00:00:00Z");
  readonly queue = new AsyncQueue<RawWireEvent>();
  closed = false;
  exchanges(): AsyncIterable<WireExchange> {
    return aggregate(
      this.queue,
      new WireAggregator({
        node: "node-under-test",
        monoToWallOffsetMs: this.monoToWallOffsetMs,
      }),
    );
  }
  close(): Promise<void> {
    this.closed = true;
    this.queue.close();
    return Promise.resolve();
  }
  /** Pushes one finished exchange on connection `cookie`, started at `startMs`. */
  exchange(cookie: number, startMs: number): void {
    const startNs = BigInt(startMs) * 1_000_000n;
    this.queue.push(rawEvent({
      cookie: BigInt(cookie),
      startNs,
      firstRxNs: startNs + 3_000_000n,
      tsNs: startNs + 3_000_000n,
      bytesSent: 600,
      bytesReceived: 500,
    }));
  }
}

/** A leader's `POST /api/v1/wire` on a local port; answers with `status()`. */
function fakeLeader(status: () => number) {
  const received: { auth: string | null; body: WireReport }[] = [];
  const refused: WireReport[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (req) => {
      const body = await req.json() as WireReport;
      const code = status();
      if (code === 200) {
        received.push({ auth: req.headers.get("authorization"), body });
      } else refused.push(body);
      return new Response(null, { status: code });
    },
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    received,
    refused,
    server,
  };
}

async function until(
  what: string,
  ok: () => boolean,
  timeoutMs = 10_000,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

Deno.test("a lease-only agent's reason reaches a leader found after the probe state was known, within a second", async () => {
  const clock = new FakeClock();
  const sink = new RecordingSink();
  let target: WireTarget = null;
  const controller = new AbortController();
  let stateKnown!: () => void;
  const known = new Promise<void>((r) => stateKnown = r);
  const running = runWireReporter({
    node: "node-1",
    disabledReason: "eBPF disabled by --no-ebpf",
    target: () => target,
    token: () => Promise.resolve("unused"),
    clock,
    signal: controller.signal,
    onState: () => stateKnown(),
  });
  try {
    await known;
    await clock.advance(0);
    assert.equal(sink.reports.length, 0, "no leader yet");
    target = { sink };
    await clock.advance(1000);
    assert.deepEqual(sink.reports.at(-1)?.probe, {
      available: false,
      reason: "eBPF disabled by --no-ebpf",
    });
  } finally {
    controller.abort();
    await running;
  }
});

Deno.test("a probe that cannot load leaves the agent lease-only with the probe's own reason", async () => {
  const sink = new RecordingSink();
  const controller = new AbortController();
  let state: ProbeState | undefined;
  const running = runWireReporter({
    node: "node-1",
    openProbe: () =>
      Promise.reject(
        new WireUnavailableError("no-btf", "This kernel has no BTF"),
      ),
    target: () => ({ sink }),
    token: () => Promise.resolve("unused"),
    clock: systemClock,
    signal: controller.signal,
    onState: (s) => state = s,
  });
  try {
    await until("the probe state", () => state !== undefined);
    assert.deepEqual(state, {
      available: false,
      reason: "This kernel has no BTF",
    });
    await until("a report", () => sink.reports.length > 0);
    assert.equal(sink.reports[0]!.probe.reason, "This kernel has no BTF");
  } finally {
    controller.abort();
    await running;
  }
});

Deno.test("exchanges reach a remote leader by a POST with the agent's bearer token", async () => {
  const leader = fakeLeader(() => 200);
  const probe = new FakeProbe();
  const controller = new AbortController();
  const running = runWireReporter({
    node: "node-7",
    openProbe: () => Promise.resolve(probe),
    target: () => ({ url: leader.url }),
    token: () => Promise.resolve("projected-token"),
    clock: systemClock,
    signal: controller.signal,
    flushIntervalMs: 20,
  });
  try {
    await until("the probe state", () => leader.received.length > 0);
    probe.exchange(1, 1000);
    await until(
      "the exchange",
      () => leader.received.some((r) => r.body.exchanges.length > 0),
    );
    const report = leader.received.find((r) => r.body.exchanges.length > 0)!;
    assert.equal(report.auth, "Bearer projected-token");
    assert.equal(report.body.node, "node-7");
    assert.deepEqual(report.body.probe, { available: true });
    assert.equal(report.body.exchanges[0]!.latencyMs, 3);
    assert.equal(report.body.exchanges[0]!.at, "2026-01-01T00:00:01.000Z");
  } finally {
    controller.abort();
    await running;
    await leader.server.shutdown();
  }
  assert.equal(probe.closed, true, "the probe is closed when the agent stops");
});

Deno.test("a batch the leader refuses is dropped, and later batches go through once it answers again", async () => {
  let status = 503;
  const leader = fakeLeader(() => status);
  const probe = new FakeProbe();
  const controller = new AbortController();
  const running = runWireReporter({
    node: "node-7",
    openProbe: () => Promise.resolve(probe),
    target: () => ({ url: leader.url }),
    token: () => Promise.resolve("t"),
    clock: systemClock,
    signal: controller.signal,
    flushIntervalMs: 20,
    statusRetryMs: 20,
  });
  try {
    probe.exchange(1, 1000);
    await until(
      "the refused delivery",
      () => leader.refused.some((r) => r.exchanges.length > 0),
    );
    status = 200;
    probe.exchange(1, 2000);
    await until(
      "the second exchange",
      () => leader.received.some((r) => r.body.exchanges.length > 0),
    );
    const starts = leader.received.flatMap((r) =>
      r.body.exchanges.map((x) => x.at)
    );
    assert.deepEqual(starts, ["2026-01-01T00:00:02.000Z"], "the first is lost");
  } finally {
    controller.abort();
    await running;
    await leader.server.shutdown();
  }
});

Deno.test("with no leader known, batches are dropped instead of piling up", async () => {
  const clock = new FakeClock();
  const sink = new RecordingSink();
  let target: WireTarget = null;
  const probe = new FakeProbe();
  const controller = new AbortController();
  const running = runWireReporter({
    node: "node-2",
    openProbe: () => Promise.resolve(probe),
    target: () => target,
    token: () => Promise.resolve("t"),
    clock,
    signal: controller.signal,
    flushIntervalMs: 10,
  });
  try {
    for (let i = 0; i < 5; i++) probe.exchange(1, 1000 + i * 100);
    // Ten flush intervals: every pending batch has been offered to nobody.
    for (let i = 0; i < 10; i++) await clock.advance(10);
    assert.equal(probe.queue.size, 0);
    target = { sink };
    probe.exchange(1, 9000);
    for (let i = 0; i < 10; i++) await clock.advance(10);
    const all = sink.reports.flatMap((r) => r.exchanges.map((x) => x.at));
    assert.deepEqual(all, ["2026-01-01T00:00:09.000Z"]);
  } finally {
    controller.abort();
    await running;
  }
});

Deno.test("with no kubelet yet the probe is tried again, and the agent goes from lease-only to wire data", async () => {
  const clock = new FakeClock();
  const sink = new RecordingSink();
  const controller = new AbortController();
  let attempts = 0;
  const probe = new FakeProbe();
  const states: ProbeState[] = [];
  const running = runWireReporter({
    node: "node-3",
    openProbe: () => {
      if (++attempts < 3) {
        return Promise.reject(
          new WireUnavailableError("no-kubelet", "No process named kubelet"),
        );
      }
      return Promise.resolve(probe);
    },
    target: () => ({ sink }),
    token: () => Promise.resolve("t"),
    clock,
    signal: controller.signal,
    reopenMs: 30_000,
    onState: (s) => states.push(s),
  });
  try {
    await clock.advance(0);
    assert.equal(attempts, 1);
    await clock.advance(30_000);
    assert.equal(attempts, 2);
    await clock.advance(30_000);
    assert.equal(attempts, 3);
    assert.deepEqual(states, [
      { available: false, reason: "No process named kubelet" },
      { available: true },
    ]);
    assert.deepEqual(sink.reports.at(-1)?.probe, { available: true });
  } finally {
    controller.abort();
    await running;
  }
});

Deno.test("a probe that follows no kubelet connection says why, and is reopened after two failed checks", async () => {
  const clock = new FakeClock();
  const sink = new RecordingSink();
  const controller = new AbortController();
  const opened: FakeProbe[] = [];
  let healthy = true;
  const states: ProbeState[] = [];
  const running = runWireReporter({
    node: "node-4",
    openProbe: () => {
      const p = Object.assign(new FakeProbe(), {
        health: () =>
          Promise.resolve(
            healthy ? null : "no kubelet connection to port 6443",
          ),
      });
      opened.push(p);
      return Promise.resolve(p);
    },
    target: () => ({ sink }),
    token: () => Promise.resolve("t"),
    clock,
    signal: controller.signal,
    healthIntervalMs: 30_000,
    onState: (s) => states.push(s),
  });
  try {
    await clock.advance(0);
    assert.equal(opened.length, 1);
    healthy = false;
    await clock.advance(30_000);
    assert.deepEqual(states.at(-1), {
      available: false,
      reason: "no kubelet connection to port 6443",
    });
    assert.equal(sink.reports.at(-1)?.probe.available, false, "told at once");
    assert.equal(opened.length, 1, "one failed check does not reopen");
    await clock.advance(30_000);
    assert.equal(opened.length, 2, "reopened after the second");
    assert.equal(opened[0]!.closed, true);
    healthy = true;
    await clock.advance(30_000);
    assert.deepEqual(states.at(-1), { available: true });
  } finally {
    controller.abort();
    await running;
  }
});

Deno.test("a leader's 429 with Retry-After holds the exchanges until then, and they go in one report", async () => {
  const posts: { at: number; body: WireReport; status: number }[] = [];
  let throttle = true;
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (req) => {
      const body = await req.json() as WireReport;
      const refuse = throttle && body.exchanges.length > 0;
      posts.push({ at: Date.now(), body, status: refuse ? 429 : 204 });
      if (refuse) {
        throttle = false;
        return new Response('{"error":"slow down"}', {
          status: 429,
          headers: { "retry-after": "1" },
        });
      }
      return new Response(null, { status: 204 });
    },
  );
  const url = `http://127.0.0.1:${server.addr.port}`;
  const probe = new FakeProbe();
  const controller = new AbortController();
  const running = runWireReporter({
    node: "node-7",
    openProbe: () => Promise.resolve(probe),
    target: () => ({ url }),
    token: () => Promise.resolve("t"),
    clock: systemClock,
    signal: controller.signal,
    flushIntervalMs: 20,
  });
  try {
    await until("the probe state", () => posts.length > 0);
    probe.exchange(1, 1000);
    await until(
      "the throttled report",
      () => posts.some((p) => p.status === 429),
    );
    const refusedAt = posts.find((p) => p.status === 429)!.at;
    probe.exchange(1, 2000);
    probe.exchange(1, 3000);
    await until(
      "the held exchanges",
      () => posts.some((p) => p.status === 204 && p.body.exchanges.length > 0),
    );
    const after = posts.filter((p) => p.at > refusedAt);
    const delivered = after.filter((p) => p.body.exchanges.length > 0);
    assert.equal(delivered.length, 1, "one report carries what was held");
    assert.deepEqual(
      delivered[0]!.body.exchanges.map((x) => x.at),
      [
        "2026-01-01T00:00:01.000Z",
        "2026-01-01T00:00:02.000Z",
        "2026-01-01T00:00:03.000Z",
      ],
    );
    assert.ok(
      after[0]!.at - refusedAt >= 900,
      `nothing is posted during the wait (the next post came after ${
        after[0]!.at - refusedAt
      } ms)`,
    );
  } finally {
    controller.abort();
    await running;
    await server.shutdown();
  }
});
