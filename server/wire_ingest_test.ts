import assert from "node:assert/strict";
import { createApp } from "./api.ts";
import type {
  ErrorResponse,
  HeartsResponse,
  WireExchange,
} from "../core/api_types.ts";
import { FakeClock } from "../core/fake_clock.ts";
import { HeartHub } from "./heart_hub.ts";
import type { Authenticator } from "../core/wire_types.ts";
import type { Lease } from "../core/lease_types.ts";
import { MAX_PENDING_NODES } from "./wire_state.ts";
import {
  MAX_WIRE_BODY_BYTES,
  parseWireReport,
  WireReportError,
} from "./wire_ingest.ts";

/** Tokens `agent-<node>` are Earthworm agents' on that node. */
const authenticate: Authenticator = (token) => {
  const node = /^agent-(.+)$/.exec(token)?.[1];
  return Promise.resolve(
    node
      ? { ok: true, user: "system:serviceaccount:earthworm:earthworm", node }
      : token === "other-sa"
      ? {
        ok: false,
        status: 403,
        error:
          "Token of system:serviceaccount:default:default is not an Earthworm agent",
      }
      : { ok: false, status: 401, error: "Token rejected by TokenReview" },
  );
};

function exchange(
  node: string,
  over: Partial<WireExchange> = {},
): WireExchange {
  return {
    node,
    conn: "10.0.0.2:40000->10.0.0.1:6443",
    at: "2026-01-01T00:00:10.003Z",
    latencyMs: 4.2,
    bytesSent: 700,
    bytesReceived: 420,
    srttUs: 180,
    retransmits: 0,
    resets: 0,
    ...over,
  };
}

function nodeLease(name: string): Lease {
  return {
    metadata: { namespace: "kube-node-lease", name },
    spec: {
      holderIdentity: name,
      leaseDurationSeconds: 40,
      renewTime: "2026-01-01T00:00:00Z",
    },
  };
}

function setup(wireRate = { perSecond: 1000, burst: 1000 }) {
  const clock = new FakeClock();
  const hub = new HeartHub({
    clock,
    source: { kind: "cluster", name: "test" },
  });
  hub.source(true, undefined, clock.now());
  hub.resync(["n1", "n2"].map(nodeLease), clock.now());
  return {
    hub,
    app: createApp({
      hub,
      authenticateAgent: authenticate,
      // These tests post many reports at one instant of the fake clock.
      wireRate,
    }),
  };
}

function post(
  app: ReturnType<typeof setup>["app"],
  body: unknown,
  headers: Record<string, string> = {},
) {
  return app.request("/api/v1/wire", {
    method: "POST",
    headers: {
      "content-type": "application/json",
      authorization: "Bearer agent-n1",
      ...headers,
    },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

Deno.test("an authenticated agent's wire report reaches the hub", async () => {
  const { app, hub } = setup();
  const res = await post(app, {
    node: "n1",
    probe: { available: true },
    exchanges: [exchange("n1")],
  });
  assert.equal(res.status, 204);
  const hearts = await (await app.request("/api/v1/hearts"))
    .json() as HeartsResponse;
  assert.equal(hearts.hearts[0]!.wire?.srttUs, 180);
  assert.equal(hearts.source.wire?.available, true);
  assert.equal(hub.counters.wireExchanges, 1);
});

Deno.test("a node whose probe cannot load is reported with its reason", async () => {
  const { app } = setup();
  await post(app, { node: "n1", probe: { available: true }, exchanges: [] });
  await post(app, {
    node: "n2",
    probe: {
      available: false,
      reason:
        "eBPF is unavailable (no-btf): /sys/kernel/btf/vmlinux is missing",
    },
    exchanges: [],
  }, { authorization: "Bearer agent-n2" });
  const hearts = await (await app.request("/api/v1/hearts"))
    .json() as HeartsResponse;
  assert.equal(hearts.source.wire?.available, true);
  assert.match(
    hearts.source.wire?.reason ?? "",
    /1 of 2 agents run lease-only; n2: eBPF is unavailable \(no-btf\)/,
  );
  const metrics = await (await app.request("/metrics")).text();
  assert.match(
    metrics,
    /earthworm_wire_available\{reason="1 of 2 agents run lease-only/,
  );
});

Deno.test("unauthenticated, malformed and oversized reports get 4xx and change nothing", async () => {
  const { app, hub } = setup();
  const good = {
    node: "n1",
    probe: { available: true },
    exchanges: [exchange("n1")],
  };
  const cases: [Response | Promise<Response>, number, RegExp][] = [
    [post(app, good, { authorization: "" }), 401, /Missing bearer token/],
    [post(app, good, { authorization: "Bearer stolen" }), 401, /rejected/],
    [
      post(app, good, { authorization: "Bearer other-sa" }),
      403,
      /not an Earthworm agent/,
    ],
    [post(app, "{not json", {}), 400, /not valid JSON/],
    [post(app, good, { "content-type": "text/plain" }), 400, /Content-Type/],
    [
      post(app, { ...good, node: "Not_A_Node" }),
      400,
      /not a Kubernetes node name/,
    ],
    [
      post(app, { ...good, exchanges: [exchange("n1", { latencyMs: -1 })] }),
      400,
      /exchanges\[0\]\.latencyMs/,
    ],
    [
      post(app, { ...good, exchanges: [exchange("n9")] }),
      400,
      /exchanges\[0\]\.node must be "n1"/,
    ],
    [
      post(app, { ...good, exchanges: Array(2001).fill(exchange("n1")) }),
      413,
      /at most 2000/,
    ],
    [
      post(app, "x".repeat(MAX_WIRE_BODY_BYTES + 1)),
      413,
      /too large|larger than/,
    ],
  ];
  for (const [pending, status, message] of cases) {
    const res = await pending;
    assert.equal(res.status, status, String(message));
    assert.match((await res.json() as ErrorResponse).error, message);
  }
  assert.equal(hub.counters.wireExchanges, 0);
  assert.equal((await app.request("/healthz")).status, 200);
});

Deno.test("a server without agent authentication refuses wire reports", async () => {
  const clock = new FakeClock();
  const hub = new HeartHub({ clock, source: { kind: "mock", name: "m" } });
  const res = await createApp({ hub }).request("/api/v1/wire", {
    method: "POST",
    body: "{}",
  });
  assert.equal(res.status, 404);
});

Deno.test("parseWireReport rejects a body that is not an object", () => {
  assert.throws(() => parseWireReport([]), WireReportError);
  assert.throws(
    () => parseWireReport({ node: "n1", probe: {}, exchanges: [] }),
    /boolean available/,
  );
});

Deno.test("wire signals are accepted by kind, and an unknown kind is refused", () => {
  const report = (signal: unknown) => ({
    node: "n1",
    probe: { available: true, pairing: "exact" },
    exchanges: [{
      node: "n1",
      conn: "a->b",
      at: "2026-01-01T00:00:00.000Z",
      latencyMs: 1500,
      bytesSent: 600,
      bytesReceived: 0,
      srttUs: 100,
      retransmits: 0,
      resets: 0,
      confidence: "exact",
      signal,
    }],
  });
  assert.equal(
    parseWireReport(report("pending")).exchanges[0]!.signal,
    "pending",
  );
  assert.throws(
    () => parseWireReport(report("meltdown")),
    /signal must be one of pending, retransmit, reset, closed/,
  );
});

Deno.test("a report must come from the node its token was issued for", async () => {
  const { app, hub } = setup();
  const res = await post(app, {
    node: "n2",
    probe: { available: true },
    exchanges: [exchange("n2")],
  });
  assert.equal(res.status, 403);
  assert.match(
    (await res.json() as ErrorResponse).error,
    /token was issued for node "n1", not "n2"/,
  );
  assert.equal(hub.counters.wireExchanges, 0);
  assert.deepEqual([...hub.probes().keys()], []);
});

Deno.test("made-up node names leave the probe map at the cluster's nodes", async () => {
  const { app, hub } = setup({ perSecond: 1, burst: 10_000 });
  for (let i = 0; i < 5000; i++) {
    // Forged by the agent of n1: refused before it reaches the hub.
    const forged = await post(app, {
      node: `made-up-${i}`,
      probe: { available: false, reason: "x" },
      exchanges: [],
    });
    assert.equal(forged.status, 403);
    await forged.body?.cancel();
  }
  assert.deepEqual([...hub.probes().keys()], []);
  // In process, or from agents whose node's Lease is not seen yet: a few
  // are kept until their Lease appears.
  for (let i = 0; i < 5000; i++) {
    hub.wireReport(`made-up-${i}`, { available: false, reason: "x" }, []);
  }
  assert.equal(
    (await post(app, { node: "n1", probe: { available: true }, exchanges: [] }))
      .status,
    204,
  );
  hub.wireReport("n2", { available: true }, []);
  assert.equal(hub.probes().size, 2 + MAX_PENDING_NODES);
  assert.ok(hub.probes().has("made-up-4999"));
  assert.ok(!hub.probes().has("made-up-0"));
  // A pending node whose Lease appears stays; a node that leaves goes.
  hub.event({ type: "ADDED", object: nodeLease("made-up-4999") }, Date.now());
  for (let i = 0; i < 100; i++) {
    hub.wireReport(`later-${i}`, { available: true }, []);
  }
  assert.ok(hub.probes().has("made-up-4999"), "adopted with its Lease");
  assert.equal(hub.probes().size, 3 + MAX_PENDING_NODES);
  hub.event({ type: "DELETED", object: nodeLease("n2") }, Date.now());
  assert.ok(!hub.probes().has("n2"));
  assert.equal(hub.probes().size, 2 + MAX_PENDING_NODES);
});

Deno.test("a node past its report rate gets 429 with Retry-After, and others are not held back", async () => {
  const clock = new FakeClock();
  const hub = new HeartHub({ clock, source: { kind: "cluster", name: "t" } });
  hub.source(true, undefined, clock.now());
  hub.resync(["n1", "n2"].map(nodeLease), clock.now());
  const app = createApp({
    hub,
    authenticateAgent: authenticate,
    wireRate: { perSecond: 1, burst: 2 },
  });
  const report = (node: string) =>
    post(app, {
      node,
      probe: { available: true },
      exchanges: [exchange(node)],
    }, { authorization: `Bearer agent-${node}` });
  assert.equal((await report("n1")).status, 204);
  assert.equal((await report("n1")).status, 204);
  const refused = await report("n1");
  assert.equal(refused.status, 429);
  assert.equal(refused.headers.get("retry-after"), "1");
  assert.match(
    ((await refused.json()) as ErrorResponse).error,
    /Node "n1" sent more than 1 wire reports a second: hold its exchanges and send them in one batch after 1 s/,
  );
  assert.equal(hub.counters.wireExchanges, 2, "the refused one is not taken");
  assert.equal((await report("n2")).status, 204);
  await clock.advance(1000);
  assert.equal((await report("n1")).status, 204);
  const metrics = await (await app.request("/metrics")).text();
  assert.match(metrics, /earthworm_wire_reports_total\{result="accepted"\} 4/);
  assert.match(metrics, /earthworm_wire_reports_total\{result="throttled"\} 1/);
});
