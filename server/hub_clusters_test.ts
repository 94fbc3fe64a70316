import assert from "node:assert/strict";
import type { Lease } from "../core/lease_types.ts";
import type { SourceEvent } from "../core/api_types.ts";
import { FakeClock } from "../core/fake_clock.ts";
import { configureLogger } from "../core/log.ts";
import { SimApiServer } from "../sim/sim_api_server.ts";
import { HeartHub } from "./heart_hub.ts";
import { aggregateSource, checkClusterNames } from "./hub_clusters.ts";

configureLogger({ level: "error" });

function nodeLease(name: string, renewMs: number): Lease {
  return {
    metadata: { namespace: "kube-node-lease", name },
    spec: {
      holderIdentity: name,
      leaseDurationSeconds: 40,
      renewTime: new Date(renewMs).toISOString(),
    },
  };
}

function twoClusters() {
  const clock = new FakeClock();
  const hub = new HeartHub({
    clock,
    source: { kind: "cluster", name: "a, b" },
    clusters: [
      { name: "a", server: "https://a.example:6443" },
      { name: "b", server: "https://b.example:6443" },
    ],
  });
  const events = hub.feed.record();
  const t0 = clock.now();
  hub.sink("a").source(true, undefined, t0);
  hub.sink("b").source(true, undefined, t0);
  return { clock, hub, t0, events };
}

Deno.test("hearts of two clusters with the same Lease name stay apart, named by their cluster", () => {
  const { hub, t0 } = twoClusters();
  hub.sink("a").resync([nodeLease("n1", t0)], t0);
  hub.sink("b").resync([nodeLease("n1", t0), nodeLease("n2", t0)], t0);
  const hearts = hub.hearts(t0).map((h) => [h.id, h.cluster, h.name]);
  assert.deepEqual(hearts.sort(), [
    ["a/kube-node-lease/n1", "a", "n1"],
    ["b/kube-node-lease/n1", "b", "n1"],
    ["b/kube-node-lease/n2", "b", "n2"],
  ]);
  // A relist of one cluster deletes only that cluster's vanished hearts.
  hub.sink("b").resync([nodeLease("n2", t0)], t0 + 1000);
  assert.deepEqual(hub.hearts(t0 + 1000).map((h) => h.id).sort(), [
    "a/kube-node-lease/n1",
    "b/kube-node-lease/n2",
  ]);
  assert.deepEqual(hub.clusterNames, ["a", "b"]);
});

Deno.test("one cluster that cannot be seen turns only its own hearts unknown", () => {
  const { hub, t0, events } = twoClusters();
  hub.sink("a").resync([nodeLease("n1", t0)], t0);
  hub.sink("b").resync([nodeLease("n1", t0)], t0);
  hub.sink("b").source(false, "watch failed: connection refused", t0 + 1000);
  // Long past the Lease duration: a's heart is expired by now, b's unknown.
  hub.sweep(t0 + 60_000);
  const status = Object.fromEntries(
    hub.hearts(t0 + 60_000).map((h) => [h.id, h.status]),
  );
  assert.equal(status["b/kube-node-lease/n1"], "unknown");
  assert.equal(status["a/kube-node-lease/n1"], "expired");

  const source = hub.sourceState();
  assert.equal(source.connected, false);
  assert.match(source.reason!, /cluster "b": watch failed/);
  assert.deepEqual(
    source.clusters!.map((c) => [c.name, c.server, c.connected]),
    [["a", "https://a.example:6443", true], [
      "b",
      "https://b.example:6443",
      false,
    ]],
  );
  const b = source.clusters!.find((c) => c.name === "b")!;
  assert.equal(b.reason, "watch failed: connection refused");
  assert.match(b.diagnosis!.summary, /cluster "b"/);
  assert.equal(source.diagnosis?.summary, b.diagnosis!.summary);

  // The blindness is an episode of cluster b's source only.
  assert.equal(hub.sourceEpisodes("a").length, 0);
  assert.equal(hub.sourceEpisodes("b").length, 1);
  assert.equal(hub.sourceEpisodes()[0]!.cluster, "b");

  // b is seen again: its heart is judged again from that moment, a's stays.
  hub.sink("b").source(true, undefined, t0 + 61_000);
  hub.sink("b").event(
    { type: "MODIFIED", object: nodeLease("n1", t0 + 61_000) },
    t0 + 61_000,
  );
  const after = hub.sourceState();
  assert.equal(after.connected, true);
  assert.equal(after.reason, undefined);
  assert.equal(after.clusters!.every((c) => c.connected), true);
  assert.equal(hub.sourceEpisodes("b")[0]!.end !== null, true);
  assert.equal(
    hub.heart("b/kube-node-lease/n1", t0 + 61_000)!.status,
    "healthy",
  );
  const sourceEvents = events.filter((e) => e.event === "source");
  const last = sourceEvents.at(-1)!.data as SourceEvent;
  assert.equal(last.clusters!.length, 2);
});

Deno.test("a single-cluster hub keeps its ids and reports no clusters", () => {
  const clock = new FakeClock();
  const hub = new HeartHub({ clock, source: { kind: "mock", name: "m" } });
  hub.source(true, undefined, clock.now());
  hub.resync([nodeLease("n1", clock.now())], clock.now());
  const [heart] = hub.hearts(clock.now());
  assert.equal(heart!.id, "kube-node-lease/n1");
  assert.equal(heart!.cluster, undefined);
  assert.equal(hub.sourceState().clusters, undefined);
  assert.deepEqual(hub.clusterNames, []);
  assert.throws(() => hub.sink("a"), /single-cluster hub is the sink itself/);
});

Deno.test("a hub of several clusters refuses direct feeding and unknown or duplicate cluster names", () => {
  const { hub } = twoClusters();
  assert.throws(
    () => hub.resync([], 0),
    /several clusters: feed each through hub.sink/,
  );
  assert.throws(
    () => hub.sink("c"),
    /No cluster "c": the hub watches "a", "b"/,
  );
  assert.throws(() => checkClusterNames(["a", "a"]), /given twice/);
  assert.throws(() => checkClusterNames([" "]), /must not be empty/);
});

Deno.test("the aggregate source is connected only while every cluster is", () => {
  const base = { kind: "cluster" as const, name: "a, b", timeScale: 1 };
  const up = aggregateSource(base, [
    { name: "a", server: "s", connected: true, since: "2026-01-01T00:00:01Z" },
    { name: "b", server: "s", connected: true, since: "2026-01-01T00:00:05Z" },
  ]);
  assert.equal(up.connected, true);
  assert.equal(up.since, "2026-01-01T00:00:05.000Z");
  const down = aggregateSource(base, [
    { name: "a", server: "s", connected: false, since: "2026-01-01T00:00:07Z" },
    {
      name: "b",
      server: "s",
      connected: false,
      reason: "timeout",
      since: "2026-01-01T00:00:03Z",
    },
  ]);
  assert.equal(down.connected, false);
  assert.equal(down.since, "2026-01-01T00:00:03.000Z");
  assert.equal(
    down.reason,
    'cluster "a": its API server cannot be reached; cluster "b": timeout',
  );
});

Deno.test("each cluster's silent hearts are read from its own API server, and a stale view rebuilds only that cluster's", async () => {
  const clock = new FakeClock();
  const servers = {
    a: new SimApiServer({ clock }),
    b: new SimApiServer({ clock }),
  };
  const reads: string[] = [];
  const stale: string[] = [];
  const hub = new HeartHub({
    clock,
    source: { kind: "cluster", name: "a, b" },
    clusters: (["a", "b"] as const).map((name) => ({
      name,
      server: `https://${name}`,
      confirm: (namespace: string, lease: string, signal: AbortSignal) => {
        reads.push(`${name}: ${namespace}/${lease}`);
        return servers[name].read(namespace, lease, signal);
      },
      onStale: (reason: string) => stale.push(`${name}: ${reason}`),
    })),
  });
  const t0 = clock.now();
  const election = (renewMs: number): Lease => ({
    metadata: { namespace: "kube-system", name: "kcm" },
    spec: {
      holderIdentity: "kcm-1",
      leaseDurationSeconds: 15,
      renewTime: new Date(renewMs).toISOString(),
    },
  });
  const stop = new AbortController();
  const sweeper = hub.runSweeper(stop.signal, 1000);
  for (const name of ["a", "b"] as const) {
    const sink = hub.sink(name);
    sink.source(true, undefined, t0);
    sink.resync([servers[name].write(election(t0))], t0);
    sink.event({
      type: "MODIFIED",
      object: servers[name].write(election(t0 + 2000)),
    }, t0 + 2000);
  }
  // a's holder really stops; b's keeps renewing, but b's watch delivers
  // nothing more.
  await clock.advance(2000);
  servers.b.write(election(t0 + 10_000));
  await clock.advance(20_000);
  assert.deepEqual(reads.sort(), [
    "a: kube-system/kcm",
    "b: kube-system/kcm",
  ]);
  assert.equal(hub.heart("a/kube-system/kcm")!.status, "expired");
  assert.equal(stale.length, 1);
  assert.match(stale[0]!, /^b: Lease b\/kube-system\/kcm was renewed at/);
  const states = Object.fromEntries(
    hub.sourceState().clusters!.map((c) => [c.name, c.connected]),
  );
  assert.deepEqual(states, { a: true, b: false });
  assert.equal(hub.heart("b/kube-system/kcm")!.status, "unknown");
  assert.equal(hub.counters.staleViews, 1);
  stop.abort();
  await sweeper;
  for (const c of hub.confirmers) c.reset();
  await clock.advance(0);
});
