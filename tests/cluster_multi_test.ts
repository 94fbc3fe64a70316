/**
 * `earthworm watch` of two real control planes at once: the hearts of both
 * are shown with their cluster, and one frozen API server turns only its own
 * cluster's hearts unknown while the other cluster's stay healthy and beat.
 */
import assert from "node:assert/strict";
import type { Heart, HeartsResponse } from "../core/api_types.ts";
import {
  type Cluster,
  clusterPrereq,
  startCluster,
} from "./cluster/harness.ts";
import { type EarthwormProcess, startEarthworm } from "./earthworm_process.ts";
import { until } from "./wait.ts";

const req = clusterPrereq();

async function hearts(url: string): Promise<HeartsResponse> {
  const res = await fetch(`${url}/api/v1/hearts?kind=node`);
  assert.equal(res.status, 200);
  return await res.json() as HeartsResponse;
}

function ofCluster(body: HeartsResponse, cluster: string): Heart[] {
  return body.hearts.filter((h) => h.cluster === cluster);
}

Deno.test({
  name:
    "cluster: watch of two clusters shows both with their cluster, and a frozen API server turns only its own hearts unknown",
  ignore: req.ignore,
  async fn() {
    req.check();
    const clusters: Cluster[] = [];
    let watch: EarthwormProcess | undefined;
    try {
      // One after the other: each picks its own free ports and state dir.
      clusters.push(await startCluster());
      clusters.push(await startCluster());
      const [one, two] = clusters as [Cluster, Cluster];
      // The same node names in both: their hearts must stay apart.
      const nodes = await one.createNodes(2);
      await two.createNodes(2);
      // Both harness kubeconfigs call their context "earthworm": the second
      // cluster is named "earthworm-2".
      watch = await startEarthworm([
        "watch",
        "--kubeconfig",
        one.kubeconfigPath,
        "--kubeconfig",
        two.kubeconfigPath,
        "--namespace",
        "kube-node-lease",
        "--port",
        "0",
      ], { timeoutMs: 60_000 });
      const url = watch.url;
      const names = ["earthworm", "earthworm-2"];

      const healthy = (body: HeartsResponse, cluster: string) =>
        ofCluster(body, cluster).length === nodes.length &&
        ofCluster(body, cluster).every((h) =>
          h.status === "healthy" && h.beats > 0
        );
      const both = await until(
        "the node hearts of both clusters to beat, healthy",
        120_000,
        async () => {
          const body = await hearts(url);
          return names.every((n) => healthy(body, n)) && body;
        },
        500,
      );
      for (const [i, cluster] of names.entries()) {
        assert.deepEqual(
          ofCluster(both, cluster).map((h) => h.id).sort(),
          nodes.map((n) => `${cluster}/kube-node-lease/${n}`),
        );
        const state = both.source.clusters!.find((c) => c.name === cluster)!;
        assert.equal(state.connected, true);
        assert.equal(state.server, clusters[i]!.server);
      }
      assert.equal(both.source.connected, true);

      // Freeze the second API server: only its hearts turn unknown.
      two.freezeApiserver();
      const frozenAt = Date.now();
      const blind = await until(
        "the frozen cluster's hearts to turn unknown",
        60_000,
        async () => {
          const body = await hearts(url);
          return ofCluster(body, "earthworm-2").every((h) =>
            h.status === "unknown"
          ) && body;
        },
        250,
      );
      const blindMs = Date.now() - frozenAt;
      assert.ok(
        healthy(blind, "earthworm"),
        `the other cluster's hearts must stay healthy: ${
          JSON.stringify(ofCluster(blind, "earthworm"))
        }`,
      );
      const states = Object.fromEntries(
        blind.source.clusters!.map((c) => [c.name, c]),
      );
      assert.equal(states["earthworm"]!.connected, true);
      assert.equal(states["earthworm-2"]!.connected, false);
      assert.equal(blind.source.connected, false);
      assert.match(blind.source.reason!, /cluster "earthworm-2"/);
      const metrics = await (await fetch(`${url}/metrics`)).text();
      assert.match(
        metrics,
        /^earthworm_source_connected\{kind="cluster",cluster="earthworm-2"\} 0$/m,
      );
      assert.match(
        metrics,
        /^earthworm_source_connected\{kind="cluster",cluster="earthworm"\} 1$/m,
      );

      // The first cluster keeps beating while the second is frozen.
      const beatsBefore = new Map(
        ofCluster(blind, "earthworm").map((h) => [h.id, h.beats]),
      );
      await until(
        "every heart of the first cluster to beat again while the second is frozen",
        60_000,
        async () => {
          const body = await hearts(url);
          assert.ok(
            ofCluster(body, "earthworm-2").every((h) => h.status === "unknown"),
            "the frozen cluster's hearts stay unknown",
          );
          assert.ok(
            healthy(body, "earthworm"),
            `the other cluster's hearts stay healthy: ${
              JSON.stringify(ofCluster(body, "earthworm"))
            }`,
          );
          return ofCluster(body, "earthworm").every((h) =>
            h.beats > beatsBefore.get(h.id)!
          );
        },
        500,
      );

      // Thawed, the second cluster's hearts are seen and healthy again.
      two.thawApiserver();
      await until(
        "the thawed cluster to be seen again, its hearts healthy",
        90_000,
        async () => {
          const body = await hearts(url);
          return body.source.connected && healthy(body, "earthworm-2");
        },
        500,
      );
      console.log(
        `frozen cluster's hearts unknown after ${blindMs} ms (load ${
          Deno.loadavg().map((l) => l.toFixed(2)).join(" ")
        })`,
      );
      assert.equal(await watch.stop(), 0);
      watch = undefined;
    } finally {
      await watch?.stop();
      for (const c of clusters) await c.stop();
    }
  },
});
