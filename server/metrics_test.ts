import assert from "node:assert/strict";
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

  const families = hubMetrics(hub, t0 + 9000);
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
