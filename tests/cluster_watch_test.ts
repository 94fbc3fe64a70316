/**
 * The Lease watcher against a real kube-apiserver with kwok nodes, feeding
 * the real HeartHub.
 */
import assert from "node:assert/strict";
import { clusterPrereq, startCluster } from "./cluster/harness.ts";
import {
  newWatchStats,
  runLeaseWatch,
  type WatchStats,
} from "../kube/watch_loop.ts";
import { restLeaseSource, watchLeases } from "../kube/rest_lease_source.ts";
import { toLease } from "../kube/lease_api.ts";
import { clientNodeLeaseSource } from "../kube/client_node_source.ts";
import type { Lease, LeaseEvent, LeaseSink } from "../core/lease_types.ts";
import { HeartHub, nodeHeartId } from "../server/heart_hub.ts";
import { systemClock } from "../core/clock.ts";
import { configureLogger } from "../core/log.ts";
import { KubeRestClient, type StreamOptions } from "../kube/rest_client.ts";
import { loadKubeConfig } from "../kube/kubeconfig.ts";

configureLogger({ level: "warn" });
const req = clusterPrereq();

/** Forwards to the hub and records what the watcher delivered. */
class TeeSink implements LeaseSink {
  /** observedAt − renewTime for node Lease updates (kwok writes on this host's clock). */
  delays: number[] = [];
  /** `id renewTime` of every ADDED/MODIFIED event. */
  delivered: string[] = [];
  sources: { up: boolean; at: number; reason: string | undefined }[] = [];
  resyncs = 0;
  constructor(readonly hub: HeartHub) {}
  event(e: LeaseEvent, observedAt: number): void {
    const l = e.object;
    const renew = l.spec?.renewTime;
    if (e.type !== "DELETED" && renew) {
      this.delivered.push(
        `${l.metadata.namespace}/${l.metadata.name} ${renew}`,
      );
      if (e.type === "MODIFIED" && l.metadata.namespace === "kube-node-lease") {
        this.delays.push(observedAt - Date.parse(renew));
      }
    }
    this.hub.event(e, observedAt);
  }
  resync(leases: Lease[], observedAt: number): void {
    this.resyncs++;
    this.hub.resync(leases, observedAt);
  }
  source(up: boolean, reason: string | undefined, at: number): void {
    this.sources.push({ up, at, reason });
    this.hub.source(up, reason, at);
  }
}

function newHub(server: string): HeartHub {
  return new HeartHub({
    clock: systemClock,
    source: { kind: "cluster", name: server },
  });
}

function percentile(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
}

async function until(
  what: string,
  timeoutMs: number,
  check: () => boolean | Promise<boolean>,
): Promise<number> {
  const start = Date.now();
  while (!(await check())) {
    if (Date.now() - start > timeoutMs) {
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return Date.now();
}

function duplicates(list: string[]): string[] {
  const seen = new Set<string>();
  return list.filter((x) => seen.has(x) || (seen.add(x), false));
}

Deno.test({
  name:
    "cluster: 200 kwok nodes and controller leases become hearts; a node that stops renewing goes late, then expired",
  ignore: req.ignore,
  sanitizeResources: true,
  async fn() {
    req.check();
    const cluster = await startCluster({ nodeGrace: "40s" });
    const stop = new AbortController();
    let watch: Promise<void> | undefined;
    try {
      const nodes = await cluster.createNodes(200);
      const hub = newHub(cluster.server);
      const sink = new TeeSink(hub);
      const stats: WatchStats = newWatchStats();
      watch = watchLeases({
        rest: cluster.rest,
        sink,
        signal: stop.signal,
        stats,
      });

      // Every node heart has beaten at least twice: intervals are known.
      await until(
        "200 node hearts with two beats",
        60_000,
        () => nodes.every((n) => (hub.heart(nodeHeartId(n))?.beats ?? 0) >= 2),
      );
      const kcm = hub.heart("kube-system/kube-controller-manager");
      assert.ok(kcm, "the controller manager's election lease is a heart");
      assert.equal(kcm.kind, "lease");
      assert.match(kcm.holder ?? "", /_[0-9a-f-]{36}$/);
      const apiserverLease = hub.hearts().find((h) =>
        h.namespace === "kube-system" && h.name.startsWith("apiserver-")
      );
      assert.ok(apiserverLease, "the API server identity lease is a heart");
      for (const n of nodes) {
        const h = hub.heart(nodeHeartId(n))!;
        assert.equal(h.kind, "node");
        assert.equal(h.leaseDurationSeconds, 40);
        assert.equal(h.expectedIntervalSeconds, 10);
        assert.ok(h.holder, `${n} has a holder`);
        assert.equal(h.status, "healthy");
      }
      const intervals = nodes.map((n) =>
        hub.heart(nodeHeartId(n))!.lastIntervalSeconds ?? 0
      );
      assert.ok(
        intervals.every((s) => s >= 9 && s <= 11.5),
        `kwok renews every 10 s ± 4 %: ${percentile(intervals, 0)}..${
          percentile(intervals, 100)
        } s`,
      );

      // One node stops renewing, the way a kubelet that died would.
      const victim = nodes[0]!;
      const id = nodeHeartId(victim);
      const beatsBefore = hub.heart(id)!.beats;
      await cluster.stopNodeRenewals(victim);
      const t0 = Date.now();
      await new Promise((r) => setTimeout(r, 11_000)); // a renewal in flight may still land
      const lastBeatAt = Date.parse(hub.heart(id)!.lastObservedAt!);
      const times: Record<string, number> = {};
      using client = new KubeRestClient(cluster.rest);
      await until(
        "the victim to expire and be marked NotReady",
        90_000,
        async () => {
          hub.sweep();
          const status = hub.heart(id)!.status;
          if (status !== "healthy" && times[status] === undefined) {
            times[status] = Date.now();
          }
          if (times.notReady === undefined) {
            const node = await client.request<
              { status: { conditions: { type: string; status: string }[] } }
            >(
              "GET",
              `/api/v1/nodes/${victim}`,
            );
            const ready = node.status.conditions.find((c) =>
              c.type === "Ready"
            );
            if (ready && ready.status !== "True") times.notReady = Date.now();
          }
          return times.expired !== undefined && times.notReady !== undefined &&
            sink.delays.length >= 1000;
        },
      );
      const rel = (t: number | undefined) =>
        t === undefined ? "never" : `${((t - lastBeatAt) / 1000).toFixed(1)} s`;
      console.log(
        `victim ${victim}: last beat observed ${
          ((lastBeatAt - t0) / 1000).toFixed(1)
        } s after renewals stopped; ` +
          `late after ${rel(times.late)}, expired after ${
            rel(times.expired)
          }, ` +
          `kube-controller-manager marked it NotReady after ${
            rel(times.notReady)
          } (grace period 40 s)`,
      );
      assert.ok(
        times.late !== undefined && times.expired !== undefined &&
          times.late < times.expired,
      );
      assert.ok(
        times.late - lastBeatAt >= 20_000,
        "late only after two missed intervals",
      );
      assert.ok(
        times.expired - lastBeatAt >= 40_000,
        "expired only after the lease duration",
      );
      assert.ok(
        times.expired - lastBeatAt <= 43_000,
        "expired soon after the lease duration",
      );
      assert.ok(
        hub.heart(id)!.beats <= beatsBefore + 1,
        "no beat after renewals stopped",
      );
      for (const n of nodes.slice(1)) {
        assert.equal(hub.heart(nodeHeartId(n))!.status, "healthy", n);
      }

      const d = sink.delays;
      console.log(
        `lease update → sink over ${d.length} kwok renewals: p50 ${
          percentile(d, 50).toFixed(1)
        } ms, ` +
          `p99 ${percentile(d, 99).toFixed(1)} ms, max ${
            percentile(d, 100).toFixed(1)
          } ms; ` +
          `${stats.lists} list(s), ${stats.watches} watch(es), ${stats.bookmarks} bookmark(s)`,
      );
      assert.ok(d.length >= 1000);
      assert.deepEqual(duplicates(sink.delivered), []);
      assert.equal(stats.failures, 0);
    } finally {
      stop.abort();
      await watch;
      await cluster.stop();
    }
  },
});

for (
  const via of ["fetch REST client", "@kubernetes/client-node"] as const
) {
  Deno.test({
    name:
      `cluster: restarting kube-apiserver and compacting etcd lose no lease and duplicate no beat (${via})`,
    ignore: req.ignore,
    async fn() {
      req.check();
      const cluster = await startCluster();
      const stop = new AbortController();
      let watch: Promise<void> | undefined;
      try {
        const nodes = await cluster.createNodes(50);
        const hub = newHub(cluster.server);
        const sink = new TeeSink(hub);
        const stats = newWatchStats();
        const settings = {
          sink,
          signal: stop.signal,
          stats,
          backoff: { initialMs: 200, maxMs: 2_000, factor: 2, jitter: 0.5 },
        };
        watch = via === "fetch REST client"
          ? watchLeases({ rest: cluster.rest, ...settings })
          : runLeaseWatch({
            source: await clientNodeLeaseSource(
              await loadKubeConfig({ kubeconfig: cluster.kubeconfigPath }),
              // client-node never ends a watch whose API server went away:
              // the idle limit notices (50 kwok nodes keep the watch busy).
              { idleMs: 5_000 },
            ),
            ...settings,
          });
        await until(
          "50 node hearts with two beats",
          60_000,
          () =>
            nodes.every((n) => (hub.heart(nodeHeartId(n))?.beats ?? 0) >= 2),
        );
        const outages: [number, number][] = [];

        // 1. Restart: the watch resumes from its last resourceVersion.
        let down = Date.now();
        await cluster.restartApiserver(2_000);
        await until(
          "the source to be up again",
          30_000,
          () => sink.sources.at(-1)?.up === true && sink.sources.length >= 3,
        );
        outages.push([down, Date.now()]);
        const relistsAfterRestart = stats.relistsAfterGone;
        console.log(
          `plain restart: ${
            sink.sources.length - 1
          } source changes, relists after 410: ${relistsAfterRestart}`,
        );
        await new Promise((r) => setTimeout(r, 12_000));

        // 2. Restart with etcd compacted meanwhile: the resumed watch gets 410 and relists.
        down = Date.now();
        await cluster.stopApiserver();
        const rev = await cluster.compactEtcd();
        await cluster.startApiserver();
        await until(
          "a relist after 410",
          30_000,
          () => stats.relistsAfterGone > relistsAfterRestart,
        );
        outages.push([down, Date.now()]);
        console.log(
          `compacted etcd at revision ${rev}: relists after 410: ${stats.relistsAfterGone}, lists: ${stats.lists}`,
        );
        await new Promise((r) => setTimeout(r, 12_000));

        assert.ok(sink.sources.some((s) => !s.up), "the outage was reported");
        assert.equal(sink.sources.at(-1)?.up, true);
        assert.deepEqual(
          duplicates(sink.delivered),
          [],
          "no Lease update was delivered twice",
        );

        // No lease lost: the hub agrees with a fresh list.
        using client = new KubeRestClient(cluster.rest);
        await until("the hub to match a fresh list", 15_000, async () => {
          const list = await client.request<{ items: Lease[] }>(
            "GET",
            "/apis/coordination.k8s.io/v1/leases",
          );
          return list.items.every((l) => {
            const h = hub.heart(`${l.metadata.namespace}/${l.metadata.name}`);
            return h !== undefined && h.lastRenewTime !== null &&
              Date.parse(h.lastRenewTime) >=
                Date.parse(l.spec?.renewTime ?? "") - 1;
          }) && hub.size === list.items.length;
        });

        // No beat duplicated, none lost: outside the outages, beats of a node are ~10 s apart.
        for (const n of nodes) {
          const beats = hub.beats(nodeHeartId(n))!;
          assert.deepEqual(
            duplicates(beats.map((b) => b.renewTime)),
            [],
            `${n} has a repeated beat`,
          );
          for (let i = 1; i < beats.length; i++) {
            const a = Date.parse(beats[i - 1]!.renewTime);
            const b = Date.parse(beats[i]!.renewTime);
            const spansOutage = outages.some(([s, e]) => a < e && b > s);
            if (!spansOutage) {
              assert.ok(
                b - a < 11_000,
                `${n}: ${b - a} ms between beats (a lost beat?)`,
              );
            }
          }
        }
      } finally {
        stop.abort();
        await watch;
        await cluster.stop();
      }
    },
  });
}

/** A REST client that counts what its streams received: frames or lines. */
class FrameCounter extends KubeRestClient {
  frames = 0;
  lines = 0;
  override stream(path: string, opts: StreamOptions): Promise<void> {
    const { onLine, onFrame } = opts;
    return super.stream(path, {
      ...opts,
      onLine: (v) => {
        this.lines++;
        onLine(v);
      },
      ...(onFrame && {
        onFrame: (f: Uint8Array) => {
          this.frames++;
          onFrame(f);
        },
      }),
    });
  }
}

Deno.test({
  name:
    "cluster: the REST source lists and watches Leases in protobuf and sees what client-node sees in JSON",
  ignore: req.ignore,
  async fn() {
    req.check();
    const cluster = await startCluster();
    const stop = new AbortController();
    const watches: Promise<void>[] = [];
    try {
      await cluster.createNodes(20);
      await cluster.kubectl(["create", "namespace", "fixture"]);
      const apply = (lease: unknown) =>
        cluster.kubectl(["apply", "-f", "-"], JSON.stringify(lease));
      const lease = (name: string, spec: Record<string, unknown>) => ({
        apiVersion: "coordination.k8s.io/v1",
        kind: "Lease",
        metadata: {
          name,
          namespace: "fixture",
          labels: { app: "x" },
          annotations: { note: "größe ✓" },
        },
        spec,
      });
      await apply(lease("full", {
        holderIdentity: "nöde-1_7f3e",
        leaseDurationSeconds: 15,
        acquireTime: "2026-12-02T04:50:01.000001Z",
        renewTime: "2026-12-02T04:50:02.123456Z",
        leaseTransitions: 3,
      }));
      await apply(lease("empty-spec", {}));

      using client = new FrameCounter(cluster.rest);
      const protobuf = restLeaseSource(client);
      const json = await clientNodeLeaseSource(
        await loadKubeConfig({ kubeconfig: cluster.kubeconfigPath }),
      );
      const byName = (a: Lease, b: Lease) =>
        a.metadata.name.localeCompare(b.metadata.name);

      // The list: the API server answers it in protobuf, read as JSON reads it.
      const answer = await client.getProtobufOrJson(
        "/apis/coordination.k8s.io/v1/namespaces/fixture/leases",
      );
      assert.ok("protobuf" in answer, "the API server answered in protobuf");
      const listed = await protobuf.list("fixture", stop.signal);
      const listedJson = await json.list("fixture", stop.signal);
      assert.deepEqual(
        listed.items.sort(byName),
        listedJson.items.sort(byName),
      );
      assert.equal(listed.items.length, 2);
      const all = await protobuf.list(undefined, stop.signal);
      assert.ok(all.items.length >= 22, `${all.items.length} Leases in all`);

      // The watch: the same changes, seen the same way from the same version.
      const rv = listed.resourceVersion;
      const seen = { protobuf: [] as LeaseEvent[], json: [] as LeaseEvent[] };
      for (
        const [name, source] of [["protobuf", protobuf], [
          "json",
          json,
        ]] as const
      ) {
        watches.push(
          source.watch({
            namespace: "fixture",
            resourceVersion: rv,
            timeoutSeconds: 120,
            onOpen: () => {},
            onEvent: (e) => {
              if (e.type === "BOOKMARK") return;
              seen[name].push({
                type: e.type as LeaseEvent["type"],
                object: toLease(e.object, "fixture"),
              });
            },
            signal: stop.signal,
          }).catch((err) => {
            if (!stop.signal.aborted) throw err;
          }),
        );
      }
      await cluster.kubectl([
        "-n",
        "fixture",
        "patch",
        "lease",
        "full",
        "--type",
        "merge",
        "-p",
        '{"spec":{"renewTime":"2026-12-02T04:50:04.999999Z","holderIdentity":null}}',
      ]);
      await cluster.kubectl(["-n", "fixture", "delete", "lease", "empty-spec"]);
      await apply(lease("later", { renewTime: "2026-12-02T04:51:00.000000Z" }));
      await until(
        "three changes seen by both watches",
        30_000,
        () => seen.protobuf.length >= 3 && seen.json.length >= 3,
      );
      // Frames, not lines: the REST source's watch was answered in protobuf.
      assert.equal(client.lines, 0);
      assert.ok(client.frames >= 3, `${client.frames} frames`);
      assert.deepEqual(seen.protobuf, seen.json);
      assert.deepEqual(
        seen.protobuf.map((e) => `${e.type} ${e.object.metadata.name}`),
        ["MODIFIED full", "DELETED empty-spec", "ADDED later"],
      );
      assert.deepEqual(seen.protobuf[0]!.object.spec, {
        holderIdentity: null,
        leaseDurationSeconds: 15,
        acquireTime: "2026-12-02T04:50:01.000001Z",
        renewTime: "2026-12-02T04:50:04.999999Z",
        leaseTransitions: 3,
      });
    } finally {
      stop.abort();
      await Promise.all(watches);
      await cluster.stop();
    }
  },
});
