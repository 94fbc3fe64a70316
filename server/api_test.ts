import assert from "node:assert/strict";
import type { Lease } from "../core/lease_types.ts";
import { createApp } from "./api.ts";
import type {
  BeatsResponse,
  ErrorResponse,
  HeartsResponse,
} from "../core/api_types.ts";
import { FakeClock } from "../core/fake_clock.ts";
import { HeartHub } from "./heart_hub.ts";

function lease(namespace: string, name: string, renewMs: number): Lease {
  return {
    metadata: { namespace, name },
    spec: {
      holderIdentity: name,
      leaseDurationSeconds: 40,
      renewTime: new Date(renewMs).toISOString(),
    },
  };
}

function setup() {
  const clock = new FakeClock();
  const hub = new HeartHub({ clock, source: { kind: "mock", name: "test" } });
  const t0 = clock.now();
  hub.source(true, undefined, t0);
  hub.resync([
    lease("kube-node-lease", "n1", t0),
    lease("kube-system", "kcm", t0),
  ], t0);
  for (let i = 1; i <= 5; i++) {
    hub.event({
      type: "MODIFIED",
      object: lease("kube-node-lease", "n1", t0 + i * 10_000),
    }, t0 + i * 10_000 + 30);
  }
  const app = createApp({ hub });
  return { app, hub, t0 };
}

Deno.test("GET /api/v1/hearts lists every heart with the documented fields", async () => {
  const { app } = setup();
  const res = await app.request("/api/v1/hearts");
  assert.equal(res.status, 200);
  const body = await res.json() as HeartsResponse;
  assert.equal(body.source.connected, true);
  assert.ok(!Number.isNaN(Date.parse(body.generatedAt)));
  const n1 = body.hearts.find((h) => h.id === "kube-node-lease/n1")!;
  for (
    const key of [
      "id",
      "kind",
      "namespace",
      "name",
      "holder",
      "status",
      "lastRenewTime",
      "lastObservedAt",
      "leaseDurationSeconds",
      "expectedIntervalSeconds",
      "lastIntervalSeconds",
      "beats",
      "transitions",
    ]
  ) assert.ok(key in n1, `heart has "${key}"`);
  assert.equal(n1.beats, 5);
  const nodes = await (await app.request("/api/v1/hearts?kind=node"))
    .json() as HeartsResponse;
  assert.deepEqual(nodes.hearts.map((h) => h.id), ["kube-node-lease/n1"]);
  const ns = await (await app.request("/api/v1/hearts?namespace=kube-system"))
    .json() as HeartsResponse;
  assert.deepEqual(ns.hearts.map((h) => h.id), ["kube-system/kcm"]);
});

Deno.test("beats endpoint returns oldest first and honours since and limit", async () => {
  const { app, t0 } = setup();
  const all =
    await (await app.request("/api/v1/hearts/kube-node-lease/n1/beats"))
      .json() as BeatsResponse;
  assert.equal(all.beats.length, 5);
  assert.ok(all.beats[0]!.observedAt < all.beats[4]!.observedAt);
  const since = new Date(t0 + 30_000).toISOString();
  const some = await (await app.request(
    `/api/v1/hearts/kube-node-lease/n1/beats?since=${since}&limit=2`,
  ))
    .json() as BeatsResponse;
  assert.deepEqual(some.beats.map((b) => b.renewTime), [
    new Date(t0 + 40_000).toISOString(),
    new Date(t0 + 50_000).toISOString(),
  ]);
});

Deno.test("unknown hearts get 404 and bad parameters 400, with a JSON error", async () => {
  const { app } = setup();
  const cases: [string, number, RegExp][] = [
    [
      "/api/v1/hearts/kube-node-lease/nope/beats",
      404,
      /No heart "kube-node-lease\/nope"/,
    ],
    ["/api/v1/hearts/kube-node-lease/nope", 404, /No heart/],
    [
      "/api/v1/hearts/kube-node-lease/n1/beats?since=yesterday",
      400,
      /"since" must be an RFC 3339 time/,
    ],
    [
      "/api/v1/hearts/kube-node-lease/n1/beats?limit=0",
      400,
      /"limit" must be a whole number/,
    ],
    ["/api/v1/hearts/kube-node-lease/n1/beats?limit=abc", 400, /"limit"/],
    ["/api/v1/hearts?kind=pod", 400, /"kind" must be/],
    ["/api/v1/nothing", 404, /No API route/],
  ];
  for (const [path, status, message] of cases) {
    const res = await app.request(path);
    assert.equal(res.status, status, path);
    assert.match(res.headers.get("content-type") ?? "", /application\/json/);
    assert.match((await res.json() as ErrorResponse).error, message, path);
  }
});

Deno.test("health, readiness and metrics endpoints answer", async () => {
  const { hub } = setup();
  let reason: string | null = "no leader yet";
  const app = createApp({ hub, ready: () => reason });
  assert.equal((await app.request("/healthz")).status, 200);
  const notReady = await app.request("/readyz");
  assert.equal(notReady.status, 503);
  assert.match(await notReady.text(), /no leader yet/);
  reason = null;
  assert.equal((await app.request("/readyz")).status, 200);
  const metrics = await (await app.request("/metrics")).text();
  assert.match(metrics, /^# TYPE earthworm_hearts gauge$/m);
  assert.match(
    metrics,
    /^earthworm_hearts\{kind="node",status="healthy"\} 1$/m,
  );
  assert.match(metrics, /^earthworm_beats_total 5$/m);
  assert.match(metrics, /^earthworm_source_connected\{kind="mock"\} 1$/m);
});

Deno.test("the embedded UI is served with validators", async () => {
  const { app } = setup();
  const page = await app.request("/");
  assert.equal(page.status, 200);
  assert.match(await page.text(), /<script[^>]+src="\/app.js"/);
  const js = await app.request("/app.js");
  assert.match(js.headers.get("content-type")!, /javascript/);
  const etag = js.headers.get("etag")!;
  await js.body?.cancel();
  assert.equal(
    (await app.request("/app.js", { headers: { "if-none-match": etag } }))
      .status,
    304,
  );
  assert.equal((await app.request("/nope.png")).status, 404);
});

Deno.test("a follower forwards API calls to the leader", async () => {
  const { hub } = setup();
  const leaderApp = createApp({ hub });
  const ac = new AbortController();
  const leader = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    signal: ac.signal,
    onListen: () => {},
  }, leaderApp.fetch);
  try {
    let target: string | null = `http://127.0.0.1:${leader.addr.port}`;
    const follower = createApp({ forward: () => target });
    const res = await follower.request(
      "/api/v1/hearts/kube-node-lease/n1/beats?limit=1",
    );
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("x-earthworm-served-by"), target);
    assert.equal((await res.json() as BeatsResponse).beats.length, 1);
    target = null;
    const none = await follower.request("/api/v1/hearts");
    assert.equal(none.status, 503);
    assert.match(
      (await none.json() as ErrorResponse).error,
      /No leader is known yet/,
    );
    target = "http://127.0.0.1:1";
    const down = await follower.request("/api/v1/hearts");
    assert.equal(down.status, 502);
    assert.match(
      (await down.json() as ErrorResponse).error,
      /Cannot reach the leader/,
    );
  } finally {
    ac.abort();
    await leader.finished;
  }
});

Deno.test("a stream forwarded by a follower ends at the leader when the client leaves", async () => {
  const { hub } = setup();
  const ac = new AbortController();
  const leader = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    signal: ac.signal,
    onListen: () => {},
  }, createApp({ hub }).fetch);
  const follower = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen: () => {} },
    createApp({ forward: () => `http://127.0.0.1:${leader.addr.port}` }).fetch,
  );
  try {
    const client = new AbortController();
    const res = await fetch(
      `http://127.0.0.1:${follower.addr.port}/api/v1/stream`,
      { signal: client.signal },
    );
    const reader = res.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    assert.match(first, /retry: \d+/);
    assert.equal(hub.events.subscribers, 1);
    client.abort();
    await reader.cancel().catch(() => {});
    for (let i = 0; i < 200 && hub.events.subscribers > 0; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(hub.events.subscribers, 0, "the leader's subscription ended");
  } finally {
    hub.events.closeAll();
    ac.abort();
    await Promise.all([leader.finished, follower.finished]);
  }
});
