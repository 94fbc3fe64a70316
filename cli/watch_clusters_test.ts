import assert from "node:assert/strict";
import { chooseWatchTargets } from "./watch_clusters.ts";

const a = { path: "a.yaml", contexts: ["prod", "stage"], current: "prod" };
const b = { path: "b.yaml", contexts: ["kind"], current: "kind" };
const dflt = { path: undefined, contexts: ["x", "y"], current: "x" };

Deno.test("each --context comes from the first kubeconfig defining it; the others add their current context", () => {
  assert.deepEqual(chooseWatchTargets([dflt], ["x", "y"]), [
    { name: "x", kubeconfig: undefined, context: "x" },
    { name: "y", kubeconfig: undefined, context: "y" },
  ]);
  assert.deepEqual(chooseWatchTargets([a, b], []), [
    { name: "prod", kubeconfig: "a.yaml", context: "prod" },
    { name: "kind", kubeconfig: "b.yaml", context: "kind" },
  ]);
  assert.deepEqual(chooseWatchTargets([a, b], ["stage"]), [
    { name: "stage", kubeconfig: "a.yaml", context: "stage" },
    { name: "kind", kubeconfig: "b.yaml", context: "kind" },
  ]);
  assert.deepEqual(chooseWatchTargets([a, b], ["kind", "stage", "prod"]), [
    { name: "stage", kubeconfig: "a.yaml", context: "stage" },
    { name: "prod", kubeconfig: "a.yaml", context: "prod" },
    { name: "kind", kubeconfig: "b.yaml", context: "kind" },
  ]);
});

Deno.test("contexts of the same name in two kubeconfigs become two clusters with unique names", () => {
  const one = { path: "one", contexts: ["earthworm"], current: "earthworm" };
  const two = { path: "two", contexts: ["earthworm"], current: "earthworm" };
  const three = { path: "3", contexts: ["earthworm"], current: "earthworm" };
  assert.deepEqual(
    chooseWatchTargets([one, two, three], []).map((t) => t.name),
    ["earthworm", "earthworm-2", "earthworm-3"],
  );
});

Deno.test("an unknown or repeated context, or a kubeconfig without a current context, is refused with what to do", () => {
  assert.throws(
    () => chooseWatchTargets([a, b], ["nope"]),
    /Context "nope" is defined in none of the kubeconfigs \(a.yaml, b.yaml\): list theirs with "kubectl config get-contexts"/,
  );
  assert.throws(
    () => chooseWatchTargets([a], ["prod", "prod"]),
    /given twice with --context: give each once/,
  );
  assert.throws(
    () =>
      chooseWatchTargets([a, {
        path: "c",
        contexts: ["z"],
        current: undefined,
      }], [
        "prod",
      ]),
    /Kubeconfig c sets no current-context: name one of its contexts with --context/,
  );
});
