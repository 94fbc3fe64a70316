/**
 * Mock mode end to end in process: the simulated cluster writes into its
 * simulated API server, Earthworm's own list/watch loop reads it into the
 * hub, as `earthworm mock` wires them, on a fake clock.
 *
 * @module
 */

import assert from "node:assert/strict";
import { FakeClock } from "../core/fake_clock.ts";
import { configureLogger } from "../core/log.ts";
import { NODE_LEASE_NAMESPACE } from "../core/lease_types.ts";
import { newWatchStats, runLeaseWatch } from "../kube/watch_loop.ts";
import { HeartHub } from "../server/heart_hub.ts";
import {
  INCIDENTS,
  nodeName,
  OUTAGE_REASON,
  Simulator,
} from "../sim/simulator.ts";

configureLogger({ level: "error" });

/** The mock pipeline on a fake clock; the test advances time. */
function mockPipeline(nodes: number) {
  const clock = new FakeClock();
  const hub = new HeartHub({ clock, source: { kind: "mock", name: "sim" } });
  const sim = new Simulator({
    clock,
    nodes,
    wire: (node, exchanges) =>
      hub.wireReport(node, { available: true, pairing: "exact" }, exchanges),
  });
  const stats = newWatchStats();
  const ac = new AbortController();
  const running = Promise.all([
    sim.run(ac.signal),
    runLeaseWatch({
      source: sim.server,
      sink: hub,
      clock,
      signal: ac.signal,
      stats,
    }),
    hub.runSweeper(ac.signal, 1000),
  ]);
  return {
    clock,
    hub,
    sim,
    stats,
    stop: async () => {
      ac.abort();
      await running;
    },
  };
}

Deno.test("the incident script makes a node late, kills one and brings it back, hands over a leader and takes the API server down", async () => {
  const { clock, hub, stop } = mockPipeline(12);
  const seen = new Map<string, Set<string | null>>();
  const sources: boolean[] = [];
  const sub = hub.feed.listen((e) => {
    if (e.event === "status") {
      const set = seen.get(e.data.id) ?? new Set();
      set.add(e.data.to);
      seen.set(e.data.id, set);
    }
    if (e.event === "source" && sources.at(-1) !== e.data.connected) {
      sources.push(e.data.connected);
    }
  });
  try {
    for (let t = 0; t < INCIDENTS.cycleSeconds + 10; t++) {
      await clock.advance(1000);
    }
  } finally {
    sub();
    await stop();
  }
  const node = (i: number) => `${NODE_LEASE_NAMESPACE}/${nodeName(i)}`;
  const late = seen.get(node(INCIDENTS.late.node))!;
  assert.ok(
    late.has("late") && !late.has("expired"),
    `late node went ${[...late]}`,
  );
  assert.ok(
    hub.heart(node(INCIDENTS.late.node))!.wire!.retransmits > 0,
    "the late node's renewals retransmitted",
  );
  const calmBeats = hub.beats(node(0))!;
  assert.ok(
    calmBeats.length > 10 &&
      calmBeats.every((b) => b.wireLatencyMs !== undefined),
    "every beat paired with its PUT",
  );
  const dead = seen.get(node(INCIDENTS.death.node))!;
  assert.ok(
    dead.has("expired") && dead.has("healthy"),
    `dead node went ${[...dead]}`,
  );
  const kcm = hub.heart("kube-system/kube-controller-manager")!;
  assert.equal(kcm.transitions, 1);
  assert.equal(kcm.holder, "cp-2_91bc");
  assert.deepEqual(sources, [true, false, true], "one outage, then back");
  const scaled = seen.get(`${NODE_LEASE_NAMESPACE}/${INCIDENTS.scale.node}`)!;
  assert.ok(scaled.has(null), "the autoscaled node joined and was deleted");
  const calm = seen.get(node(0))!;
  assert.ok(
    calm.has("unknown") && !calm.has("expired"),
    "the outage shows unknown, never expired",
  );
});

Deno.test("the mock's API server outage goes through the watch loop: the watch fails, hearts turn unknown, the loop resumes from its resourceVersion", async () => {
  const { clock, hub, stats, stop } = mockPipeline(4);
  const sources: { connected: boolean; reason?: string; at: number }[] = [];
  const start = clock.now();
  const sub = hub.feed.listen((e) => {
    if (e.event !== "source") return;
    const data = e.data;
    if (sources.at(-1)?.connected === data.connected) return;
    sources.push({
      connected: data.connected,
      ...(data.reason !== undefined && { reason: data.reason }),
      at: (clock.now() - start) / 1000,
    });
  });
  try {
    for (let t = 0; t < INCIDENTS.outage.at + 60; t++) {
      await clock.advance(1000);
    }
  } finally {
    sub();
    await stop();
  }
  const down = sources.find((s) => !s.connected)!;
  const up = sources.findLast((s) => s.connected)!;
  // The reason is the loop's classification of the refused request.
  assert.equal(down.reason, `ECONNREFUSED: ${OUTAGE_REASON}`);
  assert.ok(Math.abs(down.at - INCIDENTS.outage.at) <= 1, `down at ${down.at}`);
  assert.ok(
    up.at >= INCIDENTS.outage.at + INCIDENTS.outage.seconds,
    `back at ${up.at}, after the outage`,
  );
  assert.ok(stats.failures >= 2, `${stats.failures} failed requests`);
  assert.equal(stats.lists, 1, "resumed from the resourceVersion, no relist");
  assert.ok(stats.watches >= 2, "watched again after the outage");
  assert.equal(stats.relistsAfterGone, 0);
  for (const heart of hub.hearts()) {
    assert.notEqual(heart.status, "expired", `${heart.id} after the outage`);
  }
});

Deno.test("the mock's incidents are diagnosed through the same code: lost packets as network, a dead node as kubelet, a handover, and the outage as the API server", async () => {
  const { clock, hub, stop } = mockPipeline(12);
  try {
    for (let t = 0; t < INCIDENTS.cycleSeconds + 10; t++) {
      await clock.advance(1000);
    }
  } finally {
    await stop();
  }
  const node = (i: number) => `${NODE_LEASE_NAMESPACE}/${nodeName(i)}`;
  const causes = (id: string) => hub.episodes.list(id).map((e) => e.cause);
  assert.deepEqual(causes(node(INCIDENTS.late.node)), ["network"]);
  assert.deepEqual(causes(node(INCIDENTS.death.node)), ["kubelet"]);
  const dead = hub.episodes.list(node(INCIDENTS.death.node))[0]!;
  assert.match(dead.summary, /kubelet sent no renewal for \d+ s/);
  assert.equal(dead.worst, "expired");
  assert.notEqual(dead.end, null, "the node came back");
  assert.deepEqual(causes("kube-system/kube-controller-manager"), [
    "handover",
  ]);
  const outage = hub.episodes.list("source");
  assert.equal(outage.length, 1);
  assert.equal(outage[0]!.cause, "apiserver");
  assert.match(outage[0]!.summary, /the API server answers no one/);
  // Calm nodes were never blamed for anything.
  assert.deepEqual(causes(node(0)), []);
  assert.equal(hub.episodes.closed.network, 1);
});
