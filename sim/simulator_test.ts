import assert from "node:assert/strict";
import { FakeClock } from "../core/clock.ts";
import { HeartHub } from "../server/heart_hub.ts";
import type { Lease, LeaseEvent, LeaseSink } from "../core/lease_types.ts";
import {
  INCIDENTS,
  microTime,
  nodeName,
  seededRandom,
  Simulator,
} from "./simulator.ts";

class Recorder implements LeaseSink {
  events: { ev: LeaseEvent; at: number }[] = [];
  lists: { leases: Lease[]; at: number }[] = [];
  sources: { connected: boolean; at: number }[] = [];
  event(ev: LeaseEvent, at: number) {
    this.events.push({ ev, at });
  }
  resync(leases: Lease[], at: number) {
    this.lists.push({ leases, at });
  }
  source(connected: boolean, _reason: string | undefined, at: number) {
    this.sources.push({ connected, at });
  }
}

Deno.test("simulated kubelets renew every 10 s with jitter like a real API server's watch", async () => {
  const clock = new FakeClock();
  const sim = new Simulator({ clock, nodes: 12, incidents: false });
  const rec = new Recorder();
  const ac = new AbortController();
  const running = sim.run(rec, ac.signal);
  await clock.advance(120_000);
  ac.abort();
  await running;
  assert.equal(rec.lists.length, 1);
  assert.equal(
    rec.lists[0]!.leases.filter((l) =>
      l.metadata.namespace === "kube-node-lease"
    ).length,
    12,
  );
  const n1 = rec.events.filter((e) =>
    e.ev.object.metadata.name === nodeName(0)
  );
  assert.ok(
    n1.length >= 10 && n1.length <= 13,
    `node-01 renewed ${n1.length} times in 120 s`,
  );
  for (let i = 1; i < n1.length; i++) {
    const gap = (n1[i]!.at - n1[i - 1]!.at) / 1000;
    assert.ok(gap >= 9 && gap <= 11.5, `renew gap ${gap}s`);
  }
  const rvs = rec.events.map((e) =>
    Number(e.ev.object.metadata.resourceVersion)
  );
  assert.deepEqual(
    rvs,
    [...rvs].sort((a, b) => a - b),
    "resourceVersions increase",
  );
  assert.ok(rec.events.every((e) => e.ev.type === "MODIFIED"));
  assert.match(
    n1[0]!.ev.object.spec!.renewTime!,
    /\.\d{6}Z$/,
    "renewTime is a MicroTime",
  );
});

Deno.test("the incident script makes a node late, kills one and brings it back, hands over a leader and drops the API server", async () => {
  const clock = new FakeClock();
  const hub = new HeartHub({ clock, source: { kind: "mock", name: "sim" } });
  const sim = new Simulator({
    clock,
    nodes: 12,
    wire: (node, exchanges) =>
      hub.wireReport(node, { available: true }, exchanges),
  });
  const ac = new AbortController();
  const sweeper = hub.runSweeper(ac.signal, 1000);
  const running = sim.run(hub, ac.signal);
  const seen = new Map<string, Set<string>>();
  const sources: boolean[] = [];
  const sub = hub.events.subscribe();
  for (let t = 0; t < INCIDENTS.cycleSeconds + 10; t++) {
    await clock.advance(1000);
    for (const e of await sub.take(0)) {
      const data = JSON.parse(e.data);
      if (e.event === "status") {
        const set = seen.get(data.id) ?? new Set();
        set.add(data.to);
        seen.set(data.id, set);
      }
      if (e.event === "source" && sources.at(-1) !== data.connected) {
        sources.push(data.connected);
      }
    }
  }
  sub.close();
  ac.abort();
  await Promise.all([running, sweeper]);
  const late = seen.get(`kube-node-lease/${nodeName(INCIDENTS.late.node)}`)!;
  assert.ok(
    late.has("late") && !late.has("expired"),
    `late node went ${[...late]}`,
  );
  const lateHeart = hub.heart(
    `kube-node-lease/${nodeName(INCIDENTS.late.node)}`,
  )!;
  assert.ok(
    lateHeart.wire!.retransmits > 0,
    "the late node's renewals retransmitted",
  );
  const calmBeats = hub.beats(`kube-node-lease/${nodeName(0)}`)!;
  assert.ok(
    calmBeats.length > 10 &&
      calmBeats.every((b) => b.wireLatencyMs !== undefined),
    "every beat paired with its PUT",
  );
  const dead = seen.get(`kube-node-lease/${nodeName(INCIDENTS.death.node)}`)!;
  assert.ok(
    dead.has("expired") && dead.has("healthy"),
    `dead node went ${[...dead]}`,
  );
  assert.equal(
    hub.heart("kube-system/kube-controller-manager")!.transitions,
    1,
  );
  assert.equal(
    hub.heart("kube-system/kube-controller-manager")!.holder,
    "cp-2_91bc",
  );
  assert.deepEqual(
    sources,
    [true, false, true],
    "connected, one outage, then back",
  );
  const scaled = seen.get(`kube-node-lease/${INCIDENTS.scale.node}`)!;
  assert.ok(
    scaled.has(null as unknown as string),
    "the autoscaled node joined and was deleted",
  );
  assert.equal(hub.heart(`kube-node-lease/${INCIDENTS.scale.node}`), undefined);
  const calm = seen.get(`kube-node-lease/${nodeName(0)}`)!;
  assert.ok(
    calm.has("unknown") && !calm.has("expired"),
    "the outage shows unknown, never expired",
  );
});

Deno.test("seeded jitter repeats and MicroTime has six fractional digits", () => {
  const a = seededRandom(7);
  const b = seededRandom(7);
  assert.deepEqual([a(), a(), a()], [b(), b(), b()]);
  assert.equal(
    microTime(Date.parse("2026-01-01T00:00:00.123Z")),
    "2026-01-01T00:00:00.123000Z",
  );
});
