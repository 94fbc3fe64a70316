/**
 * Diagnosis scored on the real node: each scripted incident of
 * tests/cluster/incidents.ts once, with Earthworm deployed from its image
 * and manifest with exact pairing. The time from the fault to the correct
 * cause is printed; `tests/bench/diagnosis_score.ts` repeats them for a
 * confusion table.
 *
 * @module
 */

import assert from "node:assert/strict";
import { run, startCluster } from "./cluster/harness.ts";
import { realNodeMissing, startRealNode } from "./cluster/node.ts";
import { deployExact } from "./cluster/earthworm_on_node.ts";
import { type IncidentResult, INCIDENTS, settle } from "./cluster/incidents.ts";
import { onPath, prereq } from "./prereq.ts";

const ROOT = new URL("..", import.meta.url).pathname;

const req = prereq(
  "a real node (root, containerd, Go, the control plane) and the image tools",
  realNodeMissing() ??
    (onPath("skopeo") ? null : '"skopeo" is not installed') ??
    (onPath("iptables") ? null : '"iptables" is not installed'),
);

Deno.test({
  name:
    "cluster: on a real node, a frozen kubelet, a blackholed connection, a frozen API server, a frozen etcd and Earthworm's own cut connection are each diagnosed as their cause",
  ignore: req.ignore,
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  req.check();
  const dir = await Deno.makeTempDir({ prefix: "earthworm-diagnosis-" });
  const archive = `${dir}/earthworm.oci.tar`;
  await run("bash", [`${ROOT}deploy/build_image.sh`, "-o", archive], {
    DENO: Deno.execPath(),
  });
  const cluster = await startCluster();
  const results: IncidentResult[] = [];
  try {
    const node = await startRealNode(cluster);
    await node.importImage(archive);
    const deployed = await deployExact(
      cluster,
      `${ROOT}deploy/earthworm.yaml`,
    );
    const world = { cluster, node, agent: deployed.agent };
    await settle(world);
    for (const incident of INCIDENTS) {
      results.push(await incident.run(world));
      await settle(world);
    }
  } finally {
    console.error(`diagnosis: ${JSON.stringify(results)}`);
    await cluster.stop();
    await Deno.remove(dir, { recursive: true });
  }
  const correct = results.filter((r) => r.got === r.expected).length;
  console.error(`diagnosis: ${correct} of ${results.length} incidents correct`);
  for (const r of results) {
    // A frozen API server or etcd is named by a kubelet's renewal seen
    // waiting, given up without an answer, or answered late.
    assert.equal(
      r.got,
      r.expected,
      `${r.incident}: ${r.summary}; evidence: ${r.evidence.join("; ")}`,
    );
  }
});
