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
import { serveApp } from "./http_server.ts";
import type { Authenticator } from "../core/wire_types.ts";

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

Deno.test("impossible dates and dates without a timezone are refused in since=", async () => {
  const { app } = setup();
  for (
    const since of [
      "2026-02-30T00:00:00Z",
      "2026-13-01T00:00:00Z",
      "2025-02-29T00:00:00Z",
      "2026-01-01T24:00:00Z",
      "2026-01-01T00:60:00Z",
      "2026-01-01T00:00:00",
      "2026-01-01",
      "2026-01-01T00:00:00+25:00",
    ]
  ) {
    const res = await app.request(
      `/api/v1/hearts/kube-node-lease/n1/beats?since=${
        encodeURIComponent(since)
      }`,
    );
    assert.equal(res.status, 400, since);
    assert.match((await res.json() as ErrorResponse).error, /RFC 3339/);
  }
  for (
    const since of [
      "2024-02-29T00:00:00Z",
      "2026-01-01T00:00:00.123456Z",
      "2026-01-01t01:00:00+01:00",
      "2026-01-01T00:00:00-05:30",
    ]
  ) {
    const res = await app.request(
      `/api/v1/hearts/kube-node-lease/n1/beats?since=${
        encodeURIComponent(since)
      }`,
    );
    assert.equal(res.status, 200, since);
    await res.body?.cancel();
  }
});

Deno.test("a known path with an unsupported method gets 405 and the methods it takes", async () => {
  const { app } = setup();
  const cases: [string, string, string][] = [
    ["POST", "/api/v1/hearts", "GET, HEAD"],
    ["DELETE", "/api/v1/hearts/kube-node-lease/n1", "GET, HEAD"],
    ["PUT", "/api/v1/hearts/kube-node-lease/n1/beats", "GET, HEAD"],
    ["POST", "/api/v1/hearts/kube-node-lease/n1/episodes", "GET, HEAD"],
    ["DELETE", "/api/v1/source/episodes", "GET, HEAD"],
    ["POST", "/api/v1/stream", "GET, HEAD"],
    ["GET", "/api/v1/wire", "POST"],
    ["POST", "/healthz", "GET, HEAD"],
    ["POST", "/", "GET, HEAD"],
  ];
  for (const [method, path, allow] of cases) {
    const res = await app.request(path, { method });
    assert.equal(res.status, 405, `${method} ${path}`);
    assert.equal(res.headers.get("allow"), allow, `${method} ${path}`);
    assert.match(
      (await res.json() as ErrorResponse).error,
      new RegExp(`${method} is not allowed`),
    );
  }
  assert.equal((await app.request("/api/v1/nothing")).status, 404);
});

Deno.test("on a loopback bind only loopback and localhost Host values are served", async () => {
  const { hub } = setup();
  const local = createApp({ hub, loopbackOnly: true });
  for (
    const host of [
      "evil.example",
      "evil.example:8080",
      "10.0.0.5:8080",
      "127.0.0.1.evil.example",
      "localhost.evil.example",
    ]
  ) {
    for (const path of ["/", "/api/v1/hearts", "/api/v1/stream", "/metrics"]) {
      const res = await local.request(`http://${host}${path}`, {
        headers: { host },
      });
      assert.equal(res.status, 403, `${host}${path}`);
      assert.match(
        (await res.json() as ErrorResponse).error,
        /Host .* is not served/,
      );
    }
  }
  for (
    const host of [
      "localhost",
      "localhost:8080",
      "127.0.0.1:8080",
      "127.1.2.3",
      "[::1]:8080",
      "earthworm.localhost:8080",
    ]
  ) {
    const res = await local.request(`http://${host}/api/v1/hearts`, {
      headers: { host },
    });
    assert.equal(res.status, 200, host);
    await res.body?.cancel();
  }
  // In the cluster the agent is reached by pod IP and Service name.
  const anywhere = createApp({ hub });
  const res = await anywhere.request("http://10.0.0.5:8080/api/v1/hearts", {
    headers: { host: "10.0.0.5:8080" },
  });
  assert.equal(res.status, 200);
  await res.body?.cancel();
});

Deno.test("every answer carries the content security headers", async () => {
  const { app } = setup();
  for (
    const path of ["/", "/app.js", "/api/v1/hearts", "/nope.png", "/metrics"]
  ) {
    const res = await app.request(path);
    await res.body?.cancel();
    const csp = res.headers.get("content-security-policy") ?? "";
    assert.match(csp, /default-src 'self'/, path);
    assert.match(csp, /frame-ancestors 'none'/, path);
    assert.match(csp, /script-src 'self'(;|$)/, path);
    assert.equal(res.headers.get("x-content-type-options"), "nosniff", path);
    assert.equal(res.headers.get("x-frame-options"), "DENY", path);
  }
});

/**
 * Sends a chunked POST of up to `total` bytes on a raw connection, as fast
 * as the server takes it; stops when the server stops reading for a second
 * or closes. Returns the bytes the server took and the start of its answer.
 */
async function pushChunked(
  port: number,
  path: string,
  headers: Record<string, string>,
  total: number,
): Promise<{ sent: number; answer: string }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const enc = new TextEncoder();
  const head = [
    `POST ${path} HTTP/1.1`,
    "Host: 127.0.0.1",
    "Transfer-Encoding: chunked",
    "Content-Type: application/json",
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
  ].join("\r\n") + "\r\n\r\n";
  let sent = 0;
  let answer = "";
  const reading = (async () => {
    const buf = new Uint8Array(4096);
    try {
      while (answer.length < 2000) {
        const n = await conn.read(buf);
        if (n === null) break;
        answer += new TextDecoder().decode(buf.subarray(0, n));
      }
    } catch {
      // reset by the server: what came before it counts
    }
  })();
  try {
    await conn.write(enc.encode(head));
    const payload = new Uint8Array(64 * 1024).fill(0x20);
    const chunk = new Uint8Array([
      ...enc.encode(`${payload.length.toString(16)}\r\n`),
      ...payload,
      ...enc.encode("\r\n"),
    ]);
    while (sent < total && answer === "") {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const stalled = new Promise<"stalled">((r) =>
        timer = setTimeout(() => r("stalled"), 1000)
      );
      let written = 0;
      const writing = (async () => {
        while (written < chunk.length) {
          written += await conn.write(chunk.subarray(written));
        }
        return "written" as const;
      })();
      const outcome = await Promise.race([writing, stalled]).catch(() =>
        "closed" as const
      );
      clearTimeout(timer);
      writing.catch(() => {});
      if (outcome !== "written") break;
      sent += payload.length;
    }
    await Promise.race([reading, new Promise((r) => setTimeout(r, 2000))]);
  } finally {
    conn.close();
    await reading;
  }
  return { sent, answer };
}

/** A leader that counts the requests it gets, and a follower forwarding to it. */
async function leaderAndFollower(
  authenticate: Authenticator,
  fn: (
    ctx: { leader: string; follower: string; leaderRequests: () => number },
  ) => Promise<void>,
) {
  const { hub } = setup();
  const ac = new AbortController();
  let requests = 0;
  const leader = await serveApp(
    createApp({
      hub,
      authenticateAgent: authenticate,
      extend: (app) =>
        app.use("*", async (_c, next) => {
          requests++;
          await next();
        }),
    }),
    { host: "127.0.0.1", port: 0, signal: ac.signal },
  );
  const follower = await serveApp(
    createApp({ forward: () => leader.url, authenticateAgent: authenticate }),
    { host: "127.0.0.1", port: 0, signal: ac.signal },
  );
  try {
    await fn({
      leader: leader.url,
      follower: follower.url,
      leaderRequests: () => requests,
    });
  } finally {
    hub.events.closeAll();
    ac.abort();
    await Promise.all([leader.finished, follower.finished]);
  }
}

const agentOnly: Authenticator = (token) =>
  Promise.resolve(
    token === "agent-n1"
      ? {
        ok: true,
        user: "system:serviceaccount:earthworm:earthworm",
        node: "n1",
      }
      : { ok: false, status: 401, error: "Token rejected by TokenReview" },
  );

Deno.test("a follower refuses unauthenticated wire reports without asking the leader", async () => {
  await leaderAndFollower(agentOnly, async ({ follower, leaderRequests }) => {
    const report = JSON.stringify({
      node: "n1",
      probe: { available: true },
      exchanges: [],
    });
    for (const authorization of [undefined, "Bearer garbage"]) {
      const res = await fetch(`${follower}/api/v1/wire`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          ...(authorization && { authorization }),
        },
        body: report,
      });
      assert.equal(res.status, 401);
      await res.body?.cancel();
    }
    assert.equal(leaderRequests(), 0);
    // An unauthenticated body is not read at all.
    const { sent, answer } = await pushChunked(
      Number(new URL(follower).port),
      "/api/v1/wire",
      { authorization: "Bearer garbage" },
      64 << 20,
    );
    assert.match(answer, /^HTTP\/1\.1 401/);
    assert.ok(sent < 16 << 20, `the follower took ${sent} bytes`);
    assert.equal(leaderRequests(), 0);
  });
});

Deno.test("a follower stops reading a forwarded body past the leader's 1 MiB limit", async () => {
  await leaderAndFollower(agentOnly, async ({ follower }) => {
    const port = Number(new URL(follower).port);
    for (
      const [path, auth] of [
        ["/api/v1/wire", "Bearer agent-n1"],
        ["/api/v1/hearts", "Bearer agent-n1"],
      ] as const
    ) {
      const { sent, answer } = await pushChunked(
        port,
        path,
        { authorization: auth },
        256 << 20,
      );
      assert.ok(
        sent < 16 << 20,
        `${path}: the follower took ${sent >> 20} MiB`,
      );
      assert.match(answer, /^HTTP\/1\.1 (413|405)/, path);
    }
  });
});

Deno.test("with several clusters, hearts carry their cluster and heart routes take ?cluster=", async () => {
  const clock = new FakeClock();
  const hub = new HeartHub({
    clock,
    source: { kind: "cluster", name: "a, b" },
    clusters: [{ name: "a", server: "https://a" }, {
      name: "b",
      server: "https://b",
    }],
  });
  const t0 = clock.now();
  hub.sink("a").source(true, undefined, t0);
  hub.sink("b").source(true, undefined, t0);
  hub.sink("a").resync([lease("kube-node-lease", "n1", t0)], t0);
  hub.sink("b").resync([lease("kube-node-lease", "n1", t0)], t0);
  hub.sink("b").source(false, "connection refused", t0 + 500);
  hub.sink("b").source(true, undefined, t0 + 1000);
  const app = createApp({ hub });

  const all = await (await app.request("/api/v1/hearts"))
    .json() as HeartsResponse;
  assert.deepEqual(all.hearts.map((h) => [h.id, h.cluster]).sort(), [
    ["a/kube-node-lease/n1", "a"],
    ["b/kube-node-lease/n1", "b"],
  ]);
  assert.deepEqual(all.source.clusters!.map((c) => c.name), ["a", "b"]);
  const onlyB = await (await app.request("/api/v1/hearts?cluster=b"))
    .json() as HeartsResponse;
  assert.deepEqual(onlyB.hearts.map((h) => h.id), ["b/kube-node-lease/n1"]);

  const one = await app.request("/api/v1/hearts/kube-node-lease/n1?cluster=b");
  assert.equal(one.status, 200);
  assert.equal((await one.json()).id, "b/kube-node-lease/n1");
  const beats = await app.request(
    "/api/v1/hearts/kube-node-lease/n1/beats?cluster=a",
  );
  assert.equal(beats.status, 200);
  assert.equal(
    ((await beats.json()) as BeatsResponse).heart.id,
    "a/kube-node-lease/n1",
  );
  const none = await app.request("/api/v1/hearts/kube-node-lease/n1");
  assert.equal(none.status, 400);
  assert.match(
    ((await none.json()) as ErrorResponse).error,
    /Parameter "cluster" must name one of the clusters watched \("a", "b"\), got none/,
  );
  const episodes = await app.request("/api/v1/source/episodes?cluster=b");
  assert.equal(episodes.status, 200);
  const [episode] = (await episodes.json()).episodes;
  assert.equal(episode.cluster, "b");
  assert.equal(episode.id, "source");
  const wrong = await app.request("/api/v1/source/episodes?cluster=c");
  assert.equal(wrong.status, 400);
});

Deno.test("a single-cluster server refuses ?cluster= with what to do", async () => {
  const { app } = setup();
  const res = await app.request("/api/v1/hearts/kube-node-lease/n1?cluster=a");
  assert.equal(res.status, 400);
  assert.match(
    ((await res.json()) as ErrorResponse).error,
    /watches one cluster: leave it out/,
  );
});
