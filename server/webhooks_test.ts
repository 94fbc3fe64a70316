import assert from "node:assert/strict";
import { systemClock } from "../core/clock.ts";
import { FakeClock } from "../core/fake_clock.ts";
import { configureLogger } from "../core/log.ts";
import type { Lease } from "../core/lease_types.ts";
import { HeartHub } from "./heart_hub.ts";
import { alertmanagerBody, notificationsOf, runWebhooks } from "./webhooks.ts";

configureLogger({ level: "error" });

function nodeLease(name: string, renewMs: number): Lease {
  return {
    metadata: { name, namespace: "kube-node-lease", resourceVersion: "1" },
    spec: {
      holderIdentity: name,
      leaseDurationSeconds: 40,
      renewTime: new Date(renewMs).toISOString(),
    },
  };
}

/** A local receiver that refuses the first `failFirst` posts with 503. */
function receiver(failFirst: number) {
  const bodies: unknown[] = [];
  let calls = 0;
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (req) => {
      const body = await req.json();
      if (calls++ < failFirst) return new Response(null, { status: 503 });
      bodies.push(body);
      return new Response(null, { status: 200 });
    },
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}/hook`,
    bodies,
    calls: () => calls,
    server,
  };
}

async function until(what: string, ok: () => boolean): Promise<void> {
  const end = Date.now() + 10_000;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

Deno.test("an expired heart and its recovery reach an Alertmanager receiver, retried through its failures", async () => {
  const clock = new FakeClock();
  const t0 = clock.now();
  const hub = new HeartHub({ clock, source: { kind: "mock", name: "test" } });
  hub.source(true, undefined, t0);
  hub.resync([nodeLease("n1", t0)], t0);
  hub.event({ type: "MODIFIED", object: nodeLease("n1", t0 + 1) }, t0);
  const am = receiver(2);
  const plain = receiver(0);
  const controller = new AbortController();
  const running = runWebhooks({
    targets: [
      { url: am.url, format: "alertmanager" },
      { url: plain.url, format: "json" },
    ],
    feed: hub.feed,
    clock: systemClock,
    signal: controller.signal,
    retryMs: { initial: 10, max: 40 },
    externalUrl: "http://earthworm.example",
  });
  try {
    await new Promise((r) => setTimeout(r, 20)); // subscribed
    hub.sweep(t0 + 45_000); // silent past its 40 s lease
    await until(
      "the expired alert",
      () =>
        am.bodies.some((b) =>
          (b as { status: string }).status === "firing" &&
          JSON.stringify(b).includes("expired")
        ),
    );
    assert.ok(am.calls() >= 3, "two refusals, then accepted");
    const firing = am.bodies.find((b) =>
      JSON.stringify(b).includes("no renewal for longer than its lease") ||
      JSON.stringify(b).includes("is expired")
    ) as {
      alerts: { labels: Record<string, string>; generatorURL: string }[];
    };
    assert.equal(firing.alerts[0]!.labels.alertname, "EarthwormHeartbeatLost");
    assert.equal(firing.alerts[0]!.labels.heart, "kube-node-lease/n1");
    assert.equal(
      firing.alerts[0]!.generatorURL,
      "http://earthworm.example/#/heart/kube-node-lease/n1",
    );
    // The heart beats again: resolved.
    hub.event(
      { type: "MODIFIED", object: nodeLease("n1", t0 + 46_000) },
      t0 + 46_000,
    );
    await until(
      "the resolved alert",
      () =>
        am.bodies.some((b) => (b as { status: string }).status === "resolved"),
    );
    const kinds = plain.bodies.map((b) => (b as { kind: string }).kind);
    assert.ok(
      kinds.includes("expired") && kinds.includes("recovered"),
      `${kinds}`,
    );
    assert.ok(kinds.includes("diagnosis"), "the diagnosis is posted too");
  } finally {
    controller.abort();
    const stats = await running;
    await am.server.shutdown();
    await plain.server.shutdown();
    assert.ok(stats.sent >= 4, JSON.stringify(stats));
  }
});

Deno.test("a dead receiver never holds more than the queue limit and never blocks the hub", async () => {
  const clock = new FakeClock();
  const hub = new HeartHub({ clock, source: { kind: "mock", name: "test" } });
  const controller = new AbortController();
  const running = runWebhooks({
    targets: [{ url: "http://127.0.0.1:9/closed", format: "json" }],
    feed: hub.feed,
    clock: systemClock,
    signal: controller.signal,
    queueLimit: 5,
    retryMs: { initial: 5, max: 5 },
    timeoutMs: 200,
  });
  await new Promise((r) => setTimeout(r, 20));
  const t0 = clock.now();
  hub.source(true, undefined, t0);
  const names = Array.from({ length: 20 }, (_, i) => `n${i}`);
  hub.resync(names.map((n) => nodeLease(n, t0)), t0);
  for (const n of names) {
    hub.event({ type: "MODIFIED", object: nodeLease(n, t0 + 1) }, t0);
  }
  const started = performance.now();
  hub.sweep(t0 + 45_000);
  assert.ok(performance.now() - started < 1000, "the sweep does not wait");
  await new Promise((r) => setTimeout(r, 100));
  controller.abort();
  const stats = await running;
  assert.ok(stats.dropped >= 20, `dropped ${stats.dropped}`);
  assert.equal(stats.sent, 0);
});

Deno.test("the Alertmanager body carries the diagnosis as annotations", () => {
  const body = alertmanagerBody({
    kind: "diagnosis",
    at: "2026-01-01T00:00:30.000Z",
    heart: {
      id: "kube-node-lease/n1",
      kind: "node",
      namespace: "kube-node-lease",
      name: "n1",
      holder: null,
      status: "late",
    },
    diagnosis: {
      cause: "kubelet",
      since: "2026-01-01T00:00:20.000Z",
      summary: "kubelet sent no renewal for 24 s",
      evidence: [{ at: "2026-01-01T00:00:06.000Z", text: "no Lease request" }],
    },
  }, "http://x") as {
    status: string;
    alerts: { annotations: Record<string, string>; startsAt: string }[];
  };
  assert.equal(body.status, "firing");
  assert.equal(body.alerts[0]!.annotations.cause, "kubelet");
  assert.match(body.alerts[0]!.annotations.summary!, /kubelet sent no renewal/);
  assert.equal(body.alerts[0]!.startsAt, "2026-01-01T00:00:20.000Z");
});

Deno.test("with several clusters a heart's alert names its cluster, namespace and name", () => {
  const [n] = notificationsOf(
    {
      event: "diagnosis",
      data: {
        id: "prod/kube-node-lease/n1",
        cluster: "prod",
        diagnosis: {
          cause: "kubelet",
          since: "2026-01-01T00:00:20.000Z",
          summary: "kubelet sent no renewal for 24 s",
          evidence: [],
        },
        episode: { worst: "late" },
      },
    } as unknown as Parameters<typeof notificationsOf>[0],
    "2026-01-01T00:00:30.000Z",
  );
  assert.deepEqual(n!.heart, {
    id: "prod/kube-node-lease/n1",
    cluster: "prod",
    kind: "node",
    namespace: "kube-node-lease",
    name: "n1",
    holder: null,
    status: "late",
  });
  const body = alertmanagerBody(n!, "http://x") as {
    alerts: { labels: Record<string, string>; generatorURL: string }[];
  };
  assert.equal(body.alerts[0]!.labels.cluster, "prod");
  assert.equal(body.alerts[0]!.labels.heart, "prod/kube-node-lease/n1");
  assert.equal(
    body.alerts[0]!.generatorURL,
    "http://x/#/heart/prod/kube-node-lease/n1",
  );
});
