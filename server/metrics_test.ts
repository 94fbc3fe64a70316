import assert from "node:assert/strict";
import type { WireExchange } from "../core/api_types.ts";
import type { Lease } from "../core/lease_types.ts";
import { FakeClock } from "../core/fake_clock.ts";
import { HeartHub } from "./heart_hub.ts";
import { hubMetrics, renderMetrics } from "./metrics.ts";

function lease(
  namespace: string,
  name: string,
  holder: string,
  renewMs: number,
  transitions: number,
): Lease {
  return {
    metadata: { namespace, name },
    spec: {
      holderIdentity: holder,
      leaseDurationSeconds: 15,
      leaseTransitions: transitions,
      renewTime: new Date(renewMs).toISOString(),
    },
  };
}

Deno.test("metrics count each non-node Lease's holder changes in earthworm_lease_transitions_total", () => {
  const clock = new FakeClock();
  const hub = new HeartHub({ clock, source: { kind: "mock", name: "test" } });
  const t0 = clock.now();
  hub.source(true, undefined, t0);
  hub.resync([
    lease("kube-system", "kube-scheduler", "a", t0, 4),
    lease("kube-system", "kube-controller-manager", "a", t0, 0),
    lease("kube-node-lease", "n1", "n1", t0, 0),
  ], t0);
  // Two handovers of the scheduler's Lease, one renewal of the other.
  const changes: [string, string, number][] = [
    ["kube-scheduler", "b", 5],
    ["kube-scheduler", "a", 6],
    ["kube-controller-manager", "a", 0],
  ];
  for (const [i, [name, holder, transitions]] of changes.entries()) {
    const at = t0 + (i + 1) * 2000;
    hub.event({
      type: "MODIFIED",
      object: lease("kube-system", name, holder, at, transitions),
    }, at);
  }
  // A node Lease with a new holder (a recreated node) is not counted here.
  hub.event({
    type: "MODIFIED",
    object: lease("kube-node-lease", "n1", "n1-new", t0 + 8000, 1),
  }, t0 + 8000);

  const families = hubMetrics(hub, { now: t0 + 9000, perHeart: true });
  const family = families.find((f) =>
    f.name === "earthworm_lease_transitions_total"
  );
  assert.ok(family);
  assert.equal(family.type, "counter");
  const byLease = Object.fromEntries(
    family.samples.map((s) => [`${s.labels?.namespace}/${s.labels?.name}`, s]),
  );
  assert.deepEqual(Object.keys(byLease).sort(), [
    "kube-system/kube-controller-manager",
    "kube-system/kube-scheduler",
  ]);
  assert.equal(byLease["kube-system/kube-scheduler"]!.value, 2);
  assert.equal(byLease["kube-system/kube-controller-manager"]!.value, 0);
  // The first sighting is a baseline: leaseTransitions 4 before Earthworm
  // watched counts for nothing.
  const text = renderMetrics(families);
  assert.match(
    text,
    /^# TYPE earthworm_lease_transitions_total counter$/m,
  );
  assert.match(
    text,
    /^earthworm_lease_transitions_total\{namespace="kube-system",name="kube-scheduler"\} 2$/m,
  );
  // The cluster-wide counter still counts every holder change.
  assert.match(text, /^earthworm_transitions_total 3$/m);
});

Deno.test("by default /metrics stays small at 5,000 nodes: aggregated series, per-heart ones only behind perHeart", () => {
  const clock = new FakeClock();
  const hub = new HeartHub({ clock, source: { kind: "mock", name: "test" } });
  const t0 = clock.now();
  hub.source(true, undefined, t0);
  const nodes = Array.from({ length: 5000 }, (_, i) => ({
    metadata: { namespace: "kube-node-lease", name: `node-${i}` },
    spec: {
      holderIdentity: `node-${i}`,
      leaseDurationSeconds: 40,
      renewTime: new Date(t0 - (i % 10) * 1000).toISOString(),
    },
  }));
  const others = Array.from(
    { length: 1000 },
    (_, i) => lease(`team-${i % 40}`, `ctl-${i}`, "a", t0, 0),
  );
  hub.resync([...nodes, ...others], t0);
  // Two nodes beat (a first sighting is only a baseline).
  for (const [name, at] of [["node-0", t0 + 500], ["node-1", t0 + 1500]]) {
    hub.event({
      type: "MODIFIED",
      object: lease(
        "kube-node-lease",
        name as string,
        name as string,
        at as number,
        0,
      ),
    }, at as number);
  }
  // One Lease changes hands and one node's connection retransmits: those two
  // get series of their own even by default.
  hub.event({
    type: "MODIFIED",
    object: lease("team-3", "ctl-3", "b", t0 + 1000, 1),
  }, t0 + 1000);
  const wire = (node: string, retransmits: number): WireExchange => ({
    node,
    conn: "10.0.0.2:40000->10.0.0.1:6443",
    at: new Date(t0 + 1000).toISOString(),
    latencyMs: 2,
    bytesSent: 400,
    bytesReceived: 300,
    srttUs: node === "node-7" ? 250_000 : 900,
    retransmits,
    resets: 0,
  });
  hub.wireReport("node-7", { available: true }, [wire("node-7", 3)]);
  hub.wireReport("node-8", { available: true }, [wire("node-8", 0)]);

  const aggregated = renderMetrics(hubMetrics(hub, { now: t0 + 2000 }));
  const size = new TextEncoder().encode(aggregated).byteLength;
  assert.ok(size < 8 * 1024, `aggregated /metrics is ${size} bytes`);
  assert.doesNotMatch(aggregated, /earthworm_heart_seconds_since_beat\{/);
  assert.doesNotMatch(aggregated, /earthworm_wire_srtt_seconds\{/);
  assert.match(
    aggregated,
    /^earthworm_hearts_longest_silence_seconds\{kind="node"\} 1\.5$/m,
  );
  assert.match(aggregated, /^earthworm_wire_srtt_max_seconds 0\.25$/m);
  assert.match(
    aggregated,
    /^earthworm_lease_transitions_total\{namespace="team-3",name="ctl-3"\} 1$/m,
  );
  assert.equal(
    aggregated.match(/^earthworm_lease_transitions_total\{/gm)?.length,
    1,
  );
  assert.match(
    aggregated,
    /^earthworm_wire_retransmits_total\{node="node-7"\} 3$/m,
  );
  assert.doesNotMatch(aggregated, /retransmits_total\{node="node-8"\}/);
  assert.match(
    aggregated,
    /^earthworm_hearts\{kind="node",status="healthy"\} 2$/m,
  );

  const perHeart = renderMetrics(
    hubMetrics(hub, { now: t0 + 2000, perHeart: true }),
  );
  assert.equal(
    perHeart.match(/^earthworm_heart_seconds_since_beat\{/gm)?.length,
    3,
  );
  assert.equal(
    perHeart.match(/^earthworm_lease_transitions_total\{/gm)?.length,
    1000,
  );
  assert.match(
    perHeart,
    /^earthworm_wire_srtt_seconds\{node="node-8"\} 0\.0009$/m,
  );
  console.error(
    `/metrics at 5,000 nodes + 1,000 Leases: ${size} bytes aggregated, ${
      new TextEncoder().encode(perHeart).byteLength
    } per heart`,
  );
});

Deno.test("metrics count the fresh reads of silent hearts, their failures and the stale views they found", async () => {
  const clock = new FakeClock();
  const hub = new HeartHub({
    clock,
    source: { kind: "mock", name: "test" },
    confirm: () => Promise.reject(new Error("etcd is unavailable")),
  });
  hub.source(true, undefined, clock.now());
  hub.resync([{
    metadata: { namespace: "kube-system", name: "kcm" },
    spec: {
      holderIdentity: "a",
      leaseDurationSeconds: 15,
      renewTime: new Date(clock.now()).toISOString(),
    },
  }], clock.now());
  hub.sweep(clock.now() + 16_000);
  await clock.advance(0);
  const text = renderMetrics(hubMetrics(hub, { now: clock.now() + 16_000 }));
  assert.match(text, /^earthworm_expiry_reads_total 1$/m);
  assert.match(text, /^earthworm_expiry_read_failures_total 1$/m);
  assert.match(text, /^earthworm_stale_views_total 0$/m);
  hub.confirmer?.reset();
});

Deno.test("with several clusters the heart and source series carry a cluster label", () => {
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
  hub.sink("b").source(false, "connection refused", t0);
  hub.sink("a").resync([lease("kube-node-lease", "n1", "n1", t0, 0)], t0);
  hub.sink("b").resync([lease("kube-node-lease", "n1", "n1", t0, 0)], t0);
  hub.sink("a").event({
    type: "MODIFIED",
    object: lease("kube-node-lease", "n1", "n1", t0 + 1000, 0),
  }, t0 + 1000);
  const text = renderMetrics(
    hubMetrics(hub, { now: t0 + 1000, perHeart: true }),
  );
  assert.match(
    text,
    /^earthworm_hearts\{cluster="a",kind="node",status="healthy"\} 1$/m,
  );
  assert.match(
    text,
    /^earthworm_hearts\{cluster="b",kind="node",status="unknown"\} 1$/m,
  );
  assert.match(
    text,
    /^earthworm_source_connected\{kind="cluster",cluster="a"\} 1$/m,
  );
  assert.match(
    text,
    /^earthworm_source_connected\{kind="cluster",cluster="b"\} 0$/m,
  );
  assert.match(
    text,
    /^earthworm_heart_seconds_since_beat\{cluster="a",namespace="kube-node-lease",name="n1",kind="node"\} 0$/m,
  );
  assert.doesNotMatch(text, /^earthworm_hearts\{kind=/m);
});
