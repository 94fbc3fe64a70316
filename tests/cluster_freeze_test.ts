/**
 * A frozen API server (SIGSTOP, as a partition would look from Earthworm)
 * with 15 s Leases, like every controller election: Earthworm must say it
 * cannot see within 5 s, never call a heart expired meanwhile, and show the
 * beats exactly once it sees again.
 */
import assert from "node:assert/strict";
import {
  type Cluster,
  clusterPrereq,
  startCluster,
} from "./cluster/harness.ts";
import { runLeaseWatch, WatchControl } from "../kube/watch_loop.ts";
import { restLeaseSource } from "../kube/rest_lease_source.ts";
import { clientNodeLeaseSource } from "../kube/client_node_source.ts";
import { type Lease, microTime } from "../core/lease_types.ts";
import type { LeaseSource } from "../core/lease_source.ts";
import { HeartHub } from "../server/heart_hub.ts";
import { systemClock } from "../core/clock.ts";
import { configureLogger } from "../core/log.ts";
import { KubeRestClient } from "../kube/rest_client.ts";
import { loadKubeConfig } from "../kube/kubeconfig.ts";
import type { StatusEvent } from "../core/api_types.ts";
import { sleep, until } from "./wait.ts";

configureLogger({ level: "warn" });
const req = clusterPrereq();

const NS = "earthworm-freeze";
const LEASES = ["ctrl-a", "ctrl-b", "ctrl-c", "ctrl-d"];
const FREEZE_MS = 30_000;

/**
 * Renews one 15 s Lease every 2–5 s, like a controller's elector, and keeps
 * every renewTime the API server accepted. A renewal sent while the server
 * is frozen waits for it (no client deadline), so what it accepted after the
 * thaw is known exactly.
 */
async function renew(
  client: KubeRestClient,
  name: string,
  written: string[],
  signal: AbortSignal,
): Promise<void> {
  const path = `/apis/coordination.k8s.io/v1/namespaces/${NS}/leases/${name}`;
  let lease = await client.request<Lease>(
    "POST",
    `/apis/coordination.k8s.io/v1/namespaces/${NS}/leases`,
    {
      apiVersion: "coordination.k8s.io/v1",
      kind: "Lease",
      metadata: { name, namespace: NS },
      spec: {
        holderIdentity: `${name}-holder`,
        leaseDurationSeconds: 15,
        acquireTime: microTime(Date.now()),
        renewTime: microTime(Date.now()),
      },
    },
  );
  written.push(lease.spec!.renewTime!);
  while (!signal.aborted) {
    await sleep(2_000 + Math.random() * 3_000);
    if (signal.aborted) break;
    lease = await client.request<Lease>("PUT", path, {
      ...lease,
      spec: { ...lease.spec, renewTime: microTime(Date.now()) },
    });
    written.push(lease.spec!.renewTime!);
  }
}

/** Records every `status` and `source` event the hub publishes, with its wall time. */
function recordHub(hub: HeartHub) {
  const statuses: (StatusEvent & { at: number })[] = [];
  const sources: { connected: boolean; reason?: string; at: number }[] = [];
  const stop = hub.feed.listen((e) => {
    if (e.event === "status") statuses.push({ ...e.data, at: Date.now() });
    if (e.event === "source") sources.push({ ...e.data, at: Date.now() });
  });
  return {
    statuses,
    sources,
    close() {
      stop();
      return Promise.resolve();
    },
  };
}

async function source(
  via: string,
  cluster: Cluster,
  client: KubeRestClient,
): Promise<LeaseSource> {
  if (via === "fetch REST client") return restLeaseSource(client);
  return await clientNodeLeaseSource(
    await loadKubeConfig({ kubeconfig: cluster.kubeconfigPath }),
  );
}

for (const via of ["fetch REST client", "@kubernetes/client-node"]) {
  Deno.test({
    name:
      `cluster: a 30 s SIGSTOP of kube-apiserver with 15 s Leases shows unknown within 5 s, never expired, and exact beats after SIGCONT (${via})`,
    ignore: req.ignore,
    async fn() {
      req.check();
      const cluster = await startCluster();
      const stop = new AbortController();
      const renewing = new AbortController();
      let watch: Promise<void> | undefined;
      let sweeper: Promise<void> | undefined;
      const renewers: Promise<void>[] = [];
      using client = new KubeRestClient(cluster.rest);
      const leaseSource = await source(via, cluster, client);
      // Wired as the commands wire it: fresh reads before expired, relist
      // when a read shows the view behind.
      const control = new WatchControl();
      const hub = new HeartHub({
        clock: systemClock,
        source: { kind: "cluster", name: cluster.server },
        confirm: (namespace, name, signal) =>
          leaseSource.read(namespace, name, signal),
        onStale: (reason) => control.relist(reason),
      });
      const recorder = recordHub(hub);
      try {
        await cluster.kubectl(["create", "namespace", NS]);
        await cluster.createNodes(5);
        watch = runLeaseWatch({
          source: leaseSource,
          sink: hub,
          clock: systemClock,
          signal: stop.signal,
          control,
        });
        sweeper = hub.runSweeper(stop.signal);
        await until(
          "the watch to connect",
          30_000,
          () => hub.sourceState().connected,
        );
        const written: Record<string, string[]> = {};
        for (const name of LEASES) {
          written[name] = [];
          renewers.push(renew(client, name, written[name], renewing.signal));
        }
        const id = (name: string) => `${NS}/${name}`;
        await until(
          "every test Lease to beat twice",
          30_000,
          () => LEASES.every((n) => (hub.heart(id(n))?.beats ?? 0) >= 2),
        );
        for (const n of LEASES) {
          assert.equal(hub.heart(id(n))!.status, "healthy");
        }

        const frozenAt = Date.now();
        cluster.freezeApiserver();
        const unknownAt = await until(
          "the source to be reported unreachable",
          FREEZE_MS - 1_000,
          () => !hub.sourceState().connected && Date.now(),
        );
        await sleep(frozenAt + FREEZE_MS - Date.now());
        const thawedAt = Date.now();
        cluster.thawApiserver();
        const liveAt = await until(
          "the source to be reachable again",
          30_000,
          () => hub.sourceState().connected && Date.now(),
        );
        const counts = Object.fromEntries(
          LEASES.map((n) => [n, written[n]!.length]),
        );
        await until(
          "three renewals of every test Lease after the thaw",
          30_000,
          () => LEASES.every((n) => written[n]!.length >= counts[n]! + 3),
        );
        renewing.abort();
        await Promise.all(renewers);
        await until(
          "the hub to see the last renewals",
          15_000,
          () =>
            LEASES.every((n) =>
              hub.heart(id(n))?.lastRenewTime !== null &&
              Date.parse(hub.heart(id(n))!.lastRenewTime!) ===
                Date.parse(written[n]!.at(-1)!)
            ),
        );
        console.log(
          `${via}: SIGSTOP → unknown ${
            unknownAt - frozenAt
          } ms, SIGCONT → live ${liveAt - thawedAt} ms; source events: ${
            recorder.sources.map((s) =>
              `${s.connected ? "up" : "down"}@${s.at - frozenAt}ms${
                s.reason ? ` (${s.reason.slice(0, 80)})` : ""
              }`
            ).join(", ")
          }`,
        );
        const expired = recorder.statuses.filter((s) =>
          s.to === "expired" &&
          (s.id.startsWith(`${NS}/`) || s.id.startsWith("kube-node-lease/"))
        );
        assert.deepEqual(
          expired.map((s) => `${s.id} at ${s.at - frozenAt} ms`),
          [],
          "no test Lease or kwok node expired",
        );
        assert.ok(
          unknownAt - frozenAt <= 5_000,
          `unknown ${unknownAt - frozenAt} ms after SIGSTOP (at most 5 s)`,
        );
        assert.ok(
          liveAt - thawedAt <= 5_000,
          `live ${liveAt - thawedAt} ms after SIGCONT (at most 5 s)`,
        );
        // Exact beats: every accepted renewal after the first sighting is one
        // beat, in order, none twice, none missing.
        for (const n of LEASES) {
          const beats = hub.beats(id(n))!.map((b) => Date.parse(b.renewTime));
          assert.deepEqual(
            beats,
            written[n]!.slice(1).map((t) => Date.parse(t)),
            `${n}: beats match the accepted renewals`,
          );
        }
      } finally {
        cluster.thawApiserver();
        renewing.abort();
        await Promise.allSettled(renewers);
        stop.abort();
        await watch;
        await sweeper;
        await recorder.close();
        await cluster.stop();
      }
    },
  });
}
