import assert from "node:assert/strict";
import type { Heart } from "../core/api_types.ts";
import {
  clustersOf,
  countByStatus,
  namespacesOf,
  NO_FILTER,
  selectHearts,
} from "./overview_filter.ts";

function heart(
  namespace: string,
  name: string,
  over: Partial<Heart> = {},
): Heart {
  return {
    id: `${namespace}/${name}`,
    kind: namespace === "kube-node-lease" ? "node" : "lease",
    namespace,
    name,
    holder: `${name}-holder`,
    status: "healthy",
    lastRenewTime: null,
    lastObservedAt: null,
    leaseDurationSeconds: 40,
    expectedIntervalSeconds: 10,
    lastIntervalSeconds: null,
    skewSeconds: null,
    beats: 0,
    transitions: 0,
    leaseTransitions: null,
    ...over,
  };
}

const HEARTS = [
  heart("kube-node-lease", "node-10"),
  heart("kube-node-lease", "node-2", { status: "late" }),
  heart("kube-node-lease", "node-1"),
  heart("kube-system", "kube-scheduler", { status: "unknown" }),
  heart("kube-node-lease", "node-3", { status: "expired" }),
  heart("cert-manager", "cert-manager-controller"),
];

Deno.test("overview sorts worst status first, then namespace and natural name order", () => {
  const ids = selectHearts(HEARTS, NO_FILTER).map((h) => h.id);
  assert.deepEqual(ids, [
    "kube-node-lease/node-3",
    "kube-node-lease/node-2",
    "kube-system/kube-scheduler",
    "cert-manager/cert-manager-controller",
    "kube-node-lease/node-1",
    "kube-node-lease/node-10",
  ]);
});

Deno.test("overview filters by namespace, kind, status and a search of name or holder", () => {
  const ids = (f: Partial<typeof NO_FILTER>) =>
    selectHearts(HEARTS, { ...NO_FILTER, ...f }).map((h) => h.name);
  assert.deepEqual(ids({ namespace: "kube-system" }), ["kube-scheduler"]);
  assert.deepEqual(ids({ kind: "lease" }), [
    "kube-scheduler",
    "cert-manager-controller",
  ]);
  assert.deepEqual(ids({ status: "late" }), ["node-2"]);
  assert.deepEqual(ids({ search: " NODE-1" }), ["node-1", "node-10"]);
  assert.deepEqual(ids({ search: "scheduler-holder" }), ["kube-scheduler"]);
  assert.deepEqual(ids({ kind: "node", search: "cert" }), []);
});

Deno.test("overview lists namespaces and counts hearts by status", () => {
  assert.deepEqual(namespacesOf(HEARTS), [
    "cert-manager",
    "kube-node-lease",
    "kube-system",
  ]);
  assert.deepEqual(countByStatus(HEARTS), {
    expired: 1,
    late: 1,
    unknown: 1,
    healthy: 3,
  });
});

Deno.test("overview keeps natural name order as hearts come and go", () => {
  const names = (hearts: Heart[]) =>
    selectHearts(hearts, NO_FILTER).map((h) => h.name);
  const nodes = ["node-9", "node-11", "node-1"].map((n) =>
    heart("kube-node-lease", n)
  );
  assert.deepEqual(names(nodes), ["node-1", "node-9", "node-11"]);
  const more = [...nodes, heart("kube-node-lease", "node-10")];
  assert.deepEqual(names(more), ["node-1", "node-9", "node-10", "node-11"]);
  assert.deepEqual(names(more.slice(1)), ["node-1", "node-10", "node-11"]);
});

Deno.test("overview filters by cluster, searches it, and lists clusters only when several are watched", () => {
  const a = heart("kube-node-lease", "n1", {
    id: "east/kube-node-lease/n1",
    cluster: "east",
  });
  const b = heart("kube-node-lease", "n1", {
    id: "west/kube-node-lease/n1",
    cluster: "west",
  });
  assert.deepEqual(clustersOf([b, a]), ["east", "west"]);
  assert.deepEqual(clustersOf([heart("kube-node-lease", "n1")]), []);
  assert.deepEqual(
    selectHearts([b, a], NO_FILTER).map((h) => h.id),
    ["east/kube-node-lease/n1", "west/kube-node-lease/n1"],
  );
  assert.deepEqual(
    selectHearts([a, b], { ...NO_FILTER, cluster: "west" }).map((h) => h.id),
    ["west/kube-node-lease/n1"],
  );
  assert.deepEqual(
    selectHearts([a, b], { ...NO_FILTER, search: "WEST" }).map((h) => h.id),
    ["west/kube-node-lease/n1"],
  );
});
