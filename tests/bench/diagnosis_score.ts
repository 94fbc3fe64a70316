/**
 * The diagnosis' confusion table: every scripted incident of
 * tests/cluster/incidents.ts, repeated, on the real test node with Earthworm
 * deployed from its image and manifest with exact pairing. Prints each
 * result, then incidents × causes with the median time to the diagnosis.
 *
 *   sudo deno run -A tests/bench/diagnosis_score.ts [--repeats 3]
 *
 * @module
 */

import { parseArgs } from "node:util";
import { run, startCluster } from "../cluster/harness.ts";
import { startRealNode } from "../cluster/node.ts";
import { deployExact } from "../cluster/earthworm_on_node.ts";
import {
  type IncidentResult,
  INCIDENTS,
  settle,
} from "../cluster/incidents.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const { values } = parseArgs({
  args: Deno.args,
  options: { repeats: { type: "string", default: "3" } },
});
const repeats = Number(values.repeats);

const dir = await Deno.makeTempDir({ prefix: "earthworm-diagnosis-bench-" });
const archive = `${dir}/earthworm.oci.tar`;
await run("bash", [`${ROOT}deploy/build_image.sh`, "-o", archive], {
  DENO: Deno.execPath(),
});
const cluster = await startCluster();
const results: IncidentResult[] = [];
try {
  const node = await startRealNode(cluster);
  await node.importImage(archive);
  const deployed = await deployExact(cluster, `${ROOT}deploy/earthworm.yaml`);
  const world = { cluster, node, agent: deployed.agent };
  await settle(world);
  for (let i = 0; i < repeats; i++) {
    for (const incident of INCIDENTS) {
      const r = await incident.run(world);
      results.push(r);
      console.log(JSON.stringify({ round: i + 1, ...r }));
      await settle(world);
    }
  }
} finally {
  await cluster.stop();
  await Deno.remove(dir, { recursive: true });
}

const causes = [
  "kubelet",
  "network",
  "apiserver",
  "observer",
  "unknown",
  "none",
] as const;
console.log(`\nload average: ${Deno.readTextFileSync("/proc/loadavg").trim()}`);
console.log(
  `| incident | ${causes.join(" | ")} | median s to diagnosis |\n|---|${
    causes.map(() => "---:").join("|")
  }|---:|`,
);
for (const incident of INCIDENTS) {
  const mine = results.filter((r) => r.incident === incident.name);
  const counts = causes.map((c) =>
    mine.filter((r) => (r.got ?? "none") === c).length
  );
  const times = mine.filter((r) => r.got === r.expected && r.seconds !== null)
    .map((r) => r.seconds!).sort((a, b) => a - b);
  const median = times.length ? times[times.length >> 1] : "—";
  console.log(
    `| ${incident.name} (expect ${incident.expected}) | ${
      counts.join(" | ")
    } | ${median} |`,
  );
}
