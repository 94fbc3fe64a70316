import assert from "node:assert/strict";
import { formatRoute, parseRoute } from "./route.ts";
import { NO_FILTER } from "./overview_filter.ts";

Deno.test("route parses a heart's detail path", () => {
  assert.deepEqual(parseRoute("#/heart/kube-node-lease/node-1"), {
    view: "heart",
    namespace: "kube-node-lease",
    name: "node-1",
  });
});

Deno.test("route falls back to the unfiltered overview for anything else", () => {
  for (const hash of ["", "#", "#/", "#/nowhere", "#/heart/only-namespace"]) {
    assert.deepEqual(
      parseRoute(hash),
      { view: "overview", filter: NO_FILTER },
      hash,
    );
  }
});

Deno.test("route round-trips the overview filter and ignores invalid values", () => {
  const route = {
    view: "overview" as const,
    filter: {
      search: "node 1",
      cluster: "prod",
      namespace: "kube-system",
      kind: "lease" as const,
      status: "late" as const,
    },
  };
  assert.deepEqual(parseRoute(formatRoute(route)), route);
  assert.deepEqual(parseRoute("#/?kind=pod&status=dead"), {
    view: "overview",
    filter: NO_FILTER,
  });
  assert.equal(formatRoute({ view: "overview", filter: NO_FILTER }), "#/");
});

Deno.test("route encodes names in a heart's path", () => {
  const route = { view: "heart" as const, namespace: "ns", name: "a/b c" };
  assert.equal(formatRoute(route), "#/heart/ns/a%2Fb%20c");
  assert.deepEqual(parseRoute(formatRoute(route)), route);
});

Deno.test("route carries a heart's cluster, and the overview's cluster filter, when several clusters are watched", () => {
  const route = {
    view: "heart" as const,
    cluster: "prod eu",
    namespace: "kube-node-lease",
    name: "n1",
  };
  assert.equal(formatRoute(route), "#/heart/prod%20eu/kube-node-lease/n1");
  assert.deepEqual(parseRoute(formatRoute(route)), route);
  assert.deepEqual(parseRoute("#/?cluster=b"), {
    view: "overview",
    filter: { ...NO_FILTER, cluster: "b" },
  });
});
