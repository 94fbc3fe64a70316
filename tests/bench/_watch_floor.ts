/**
 * The floor under Earthworm's leader in `scale_informer.ts --floor`: a Deno
 * process that runs the leader's own list/watch loop (`watchLeases`: the REST
 * source in protobuf on its own connection, the liveness read, relists) into
 * a sink that only counts. What it costs per Lease update is what the runtime
 * and the watch cost before the hub does anything; the leader's cost above it
 * is Earthworm's pipeline.
 *
 * It speaks `leasebench`'s protocol: one JSON line once the first list is in,
 * then a JSON line of counters for each `stats` line on stdin; it ends when
 * stdin closes.
 *
 *   deno run -A tests/bench/_watch_floor.ts KUBECONFIG
 *
 * @module
 */

import type { Lease, LeaseEvent, LeaseSink } from "../../core/lease_types.ts";
import { configureLogger } from "../../core/log.ts";
import { kubeconfigRestConfig } from "../../kube/kubeconfig.ts";
import { watchLeases } from "../../kube/rest_lease_source.ts";

configureLogger({ level: "warn" });
const [kubeconfig] = Deno.args;
if (!kubeconfig) throw new Error("usage: _watch_floor.ts KUBECONFIG");

const counts = { adds: 0, updates: 0, deletes: 0 };
const print = (v: unknown) => console.log(JSON.stringify(v));
let synced = false;

const sink: LeaseSink = {
  event(e: LeaseEvent) {
    if (e.type === "ADDED") counts.adds++;
    else if (e.type === "MODIFIED") counts.updates++;
    else counts.deletes++;
  },
  resync(leases: Lease[]) {
    if (!synced) print({ synced: true, leases: leases.length });
    synced = true;
  },
  source() {},
};

const stop = new AbortController();
const watch = watchLeases({
  // As the agent reads it: a plain kubeconfig without client-node.
  rest: await kubeconfigRestConfig({ kubeconfig }),
  sink,
  signal: stop.signal,
});
for await (
  const line of Deno.stdin.readable.pipeThrough(new TextDecoderStream())
) {
  if (line.includes("stats")) print({ ...counts, at: Date.now() });
}
stop.abort();
await watch.catch(() => {});
