import assert from "node:assert/strict";
import { FakeClock } from "../core/fake_clock.ts";
import { NODE_LEASE_NAMESPACE } from "../core/lease_types.ts";
import {
  INCIDENTS,
  nodeName,
  OUTAGE_REASON,
  seededRandom,
  Simulator,
} from "./simulator.ts";
import { recordWatch } from "./_test_watch.ts";
import { scaledClock } from "../core/clock.ts";
import type { WireExchange } from "../core/api_types.ts";

Deno.test("simulated kubelets renew every 10 s with jitter and increasing resourceVersions", async () => {
  const clock = new FakeClock();
  const sim = new Simulator({ clock, nodes: 12, incidents: false });
  const nodes = sim.server.leases().filter((l) =>
    l.metadata.namespace === NODE_LEASE_NAMESPACE
  );
  assert.equal(nodes.length, 12);
  const watch = recordWatch(sim.server, clock, sim.server.resourceVersion);
  const ac = new AbortController();
  const running = sim.run(ac.signal);
  await clock.advance(120_000);
  ac.abort();
  await running;
  await watch.stop();
  const n1 = watch.seen.filter((e) => e.lease.metadata.name === nodeName(0));
  assert.ok(
    n1.length >= 10 && n1.length <= 13,
    `node-01 renewed ${n1.length} times in 120 s`,
  );
  for (let i = 1; i < n1.length; i++) {
    const gap = (n1[i]!.at - n1[i - 1]!.at) / 1000;
    assert.ok(gap >= 9 && gap <= 11.5, `renew gap ${gap}s`);
  }
  const rvs = watch.seen.map((e) => Number(e.lease.metadata.resourceVersion));
  assert.deepEqual(rvs, [...rvs].sort((a, b) => a - b));
  assert.ok(watch.seen.every((e) => e.type === "MODIFIED"));
  assert.match(n1[0]!.lease.spec!.renewTime!, /\.\d{6}Z$/);
});

Deno.test("more controller Leases renew at the interval asked for, spread over forty namespaces", async () => {
  const clock = new FakeClock();
  const sim = new Simulator({
    clock,
    nodes: 0,
    leases: 100,
    leaseIntervalSeconds: 2,
    incidents: false,
  });
  const extra = sim.server.leases().filter((l) =>
    l.metadata.namespace.startsWith("team-")
  );
  assert.equal(extra.length, 100);
  assert.equal(new Set(extra.map((l) => l.metadata.namespace)).size, 40);
  const watch = recordWatch(sim.server, clock, sim.server.resourceVersion);
  const ac = new AbortController();
  const running = sim.run(ac.signal);
  await clock.advance(60_000);
  ac.abort();
  await running;
  await watch.stop();
  const one = watch.seen.filter((e) =>
    e.lease.metadata.name === "controller-7"
  );
  assert.ok(one.length >= 28 && one.length <= 32, `${one.length} renewals`);
  assert.equal(one[0]!.lease.spec!.leaseDurationSeconds, 15);
});

Deno.test("the incident script takes the API server down for its window and nobody renews meanwhile", async () => {
  const clock = new FakeClock();
  const sim = new Simulator({ clock, nodes: 3 });
  const watch = recordWatch(sim.server, clock, sim.server.resourceVersion);
  const ac = new AbortController();
  const running = sim.run(ac.signal);
  const downAt: number[] = [];
  const upAt: number[] = [];
  let wasUp = true;
  const start = clock.now();
  for (let t = 0; t < INCIDENTS.cycleSeconds; t++) {
    await clock.advance(1000);
    if (sim.server.reachable !== wasUp) {
      wasUp = sim.server.reachable;
      (wasUp ? upAt : downAt).push((clock.now() - start) / 1000);
    }
  }
  ac.abort();
  await running;
  await watch.stop();
  const { at, seconds } = INCIDENTS.outage;
  assert.equal(downAt.length, 1);
  assert.equal(upAt.length, 1);
  assert.ok(Math.abs(downAt[0]! - at) <= 1, `down at ${downAt[0]}`);
  assert.ok(Math.abs(upAt[0]! - (at + seconds)) <= 1, `up at ${upAt[0]}`);
  // The outage broke the recording watch, as it breaks Earthworm's.
  assert.match(String(watch.error()), /simulated API server outage/);
  assert.ok(watch.seen.every((e) => (e.at - start) / 1000 < at + 1));
});

Deno.test("during the outage a node's renewal waits, and the kubelet gives up on it before its next try", async () => {
  const clock = new FakeClock();
  const records: WireExchange[] = [];
  const sim = new Simulator({
    clock,
    nodes: 1,
    wire: (_node, exchanges) => records.push(...exchanges),
  });
  const ac = new AbortController();
  const running = sim.run(ac.signal);
  const { at, seconds } = INCIDENTS.outage;
  await clock.advance((at + seconds + 15) * 1000);
  ac.abort();
  await running;
  const pending = records.filter((x) => x.signal === "pending");
  assert.ok(pending.length >= 2, `${pending.length} pending renewals`);
  for (const p of pending) {
    // Each ends as the same request (start, connection), unanswered.
    const end = records.find((x) =>
      x.signal === undefined && x.at === p.at && x.conn === p.conn
    );
    assert.ok(end, `the renewal sent at ${p.at} ends`);
    assert.equal(end.status, undefined);
    assert.equal(end.bytesReceived, 0);
    assert.ok(end.latencyMs > 1000 && end.latencyMs <= 10_000);
  }
  // After the outage the renewals are answered again.
  const last = records.filter((x) => x.signal === undefined).at(-1)!;
  assert.equal(last.status, 200);
});

Deno.test("the autoscaled node exists exactly between its join and its leave", async () => {
  const clock = new FakeClock();
  const sim = new Simulator({ clock, nodes: 2 });
  const ac = new AbortController();
  const running = sim.run(ac.signal);
  const id = INCIDENTS.scale.node;
  const start = clock.now();
  for (let t = 0; t < INCIDENTS.cycleSeconds * 2; t += 5) {
    await clock.advance(5000);
    const s = ((clock.now() - start) / 1000) % INCIDENTS.cycleSeconds;
    const present = sim.server.get(NODE_LEASE_NAMESPACE, id) !== undefined;
    const expected = s >= INCIDENTS.scale.joinAt + 1 &&
      s < INCIDENTS.scale.leaveAt;
    if (
      s <= INCIDENTS.scale.joinAt || Math.abs(s - INCIDENTS.scale.leaveAt) < 1
    ) {
      continue;
    }
    assert.equal(present, expected, `at ${s}s of the cycle`);
  }
  ac.abort();
  await running;
});

Deno.test("clock jumps of any size never crash the simulator, add a node twice or renew in a burst", async () => {
  const random = seededRandom(1234);
  for (let run = 0; run < 10; run++) {
    const clock = new FakeClock();
    const sim = new Simulator({ clock, nodes: 30, seed: run });
    const writes: { name: string; type: "ADDED" | "MODIFIED" | "DELETED" }[] =
      [];
    const server = sim.server;
    const write = server.write.bind(server);
    const del = server.delete.bind(server);
    server.write = (lease) => {
      const { namespace, name } = lease.metadata;
      const type = server.get(namespace, name) ? "MODIFIED" : "ADDED";
      const stored = write(lease);
      writes.push({ name, type });
      return stored;
    };
    server.delete = (namespace, name) => {
      const deleted = del(namespace, name);
      if (deleted) writes.push({ name, type: "DELETED" });
      return deleted;
    };
    const ac = new AbortController();
    const running = sim.run(ac.signal);
    for (let step = 0; step < 60; step++) {
      // Mostly small steps, sometimes a stall of up to three incident cycles.
      const jump = random() < 0.2
        ? random() * INCIDENTS.cycleSeconds * 3000
        : random() * 4000;
      const before = writes.length;
      await clock.jump(jump);
      const counts = new Map<string, number>();
      for (const w of writes.slice(before)) {
        if (w.type === "MODIFIED") {
          counts.set(w.name, (counts.get(w.name) ?? 0) + 1);
        }
      }
      for (const [name, n] of counts) {
        assert.ok(n <= 1, `${name} renewed ${n} times after a ${jump} ms jump`);
      }
      let members = 0;
      for (const w of writes) {
        if (w.name !== INCIDENTS.scale.node) continue;
        if (w.type === "ADDED") members++;
        if (w.type === "DELETED") members--;
        assert.ok(
          members === 0 || members === 1,
          `${members} autoscaled nodes`,
        );
      }
    }
    ac.abort();
    await running;
  }
});

Deno.test("the outage reason says it is simulated", () => {
  assert.match(OUTAGE_REASON, /simulated API server outage/);
});

Deno.test("seeded jitter repeats", () => {
  const a = seededRandom(7);
  const b = seededRandom(7);
  assert.deepEqual([a(), a(), a()], [b(), b(), b()]);
});

Deno.test("a scaled clock runs the simulation faster without changing its rhythm", async () => {
  const base = new FakeClock();
  const clock = scaledClock(10, base);
  const sim = new Simulator({ clock, nodes: 1, incidents: false });
  const watch = recordWatch(sim.server, clock, sim.server.resourceVersion);
  const ac = new AbortController();
  const running = sim.run(ac.signal);
  await base.advance(12_000); // 120 s of simulated time
  ac.abort();
  await running;
  await watch.stop();
  const n1 = watch.seen.filter((e) => e.lease.metadata.name === nodeName(0));
  assert.ok(n1.length >= 10 && n1.length <= 13, `${n1.length} renewals`);
});
