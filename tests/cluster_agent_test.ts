/**
 * End-to-end tests of `earthworm watch` and `earthworm agent` as real
 * processes on a real control plane (kube-apiserver, kube-controller-manager,
 * etcd, kwok nodes): hearts and holders as the API server has them, one
 * leader among three agents, followers handing the API and the event stream
 * to it, failover after SIGKILL and SIGTERM, and an event stream through a
 * follower that survives the failover. Figures for the closing note come
 * from `tests/bench/cluster_agents.ts`, not from here.
 */
import assert from "node:assert/strict";
import { clusterPrereq, startCluster } from "./cluster/harness.ts";
import type { Cluster } from "./cluster/harness.ts";
import { startEarthworm } from "./earthworm_process.ts";
import { collectFullSse } from "./sse_client.ts";
import {
  type AgentProcess,
  leaderIntervals,
  overlappingLeaders,
  RolePoller,
  startAgent,
  StreamFollower,
} from "./agent_observers.ts";
import type {
  BeatEvent,
  Heart,
  HeartsResponse,
  SnapshotEvent,
  StatusEvent,
} from "../core/api_types.ts";
import { sleep, until } from "./wait.ts";

const req = clusterPrereq();

const NODES = 20;
const LEASE_S = 4;
const RENEW_S = 3;
const RETRY_S = 1;
/** Measurement allowance: role polls every 100 ms on a busy 2-core machine. */
const SLACK_MS = 750;
const ELECTION_NS = "earthworm";

async function getJson<T>(
  url: string,
): Promise<{ body: T; servedBy: string | null; status: number }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  const body = await res.json() as T;
  return {
    body,
    servedBy: res.headers.get("x-earthworm-served-by"),
    status: res.status,
  };
}

interface ApiLease {
  metadata: {
    namespace: string;
    name: string;
    annotations?: Record<string, string>;
  };
  spec: { holderIdentity?: string };
}

async function leasesOf(cluster: Cluster): Promise<ApiLease[]> {
  const list = JSON.parse(
    await cluster.kubectl(["get", "leases", "-A", "-o", "json"]),
  ) as { items: ApiLease[] };
  return list.items;
}

/** One `earthworm agent` process. */
interface Agent extends AgentProcess {
  alive: boolean;
}

async function startTestAgent(
  cluster: Cluster,
  identity: string,
): Promise<Agent> {
  const agent = await startAgent(cluster, identity, [
    "--lease-duration",
    String(LEASE_S),
    "--renew-deadline",
    String(RENEW_S),
    "--retry-period",
    String(RETRY_S),
  ]);
  return { ...agent, alive: true };
}

/** The expected hearts, from the API server: id → [kind, holder]. */
function expectedHearts(leases: ApiLease[]): Map<string, [string, string]> {
  return new Map(leases.map((l) => [
    `${l.metadata.namespace}/${l.metadata.name}`,
    [
      l.metadata.namespace === "kube-node-lease" ? "node" : "lease",
      l.spec.holderIdentity ?? "",
    ],
  ]));
}

function heartsTable(r: HeartsResponse): Map<string, [string, string]> {
  return new Map(r.hearts.map((h) => [h.id, [h.kind, h.holder ?? ""]]));
}

Deno.test({
  name:
    "cluster: earthworm watch and three earthworm agents on a real control plane",
  ignore: req.ignore,
  async fn(t) {
    req.check();
    const cluster = await startCluster();
    try {
      const nodes = await cluster.createNodes(NODES);
      await cluster.kubectl(["create", "namespace", ELECTION_NS]);
      const nodeIds = nodes.map((n) => `kube-node-lease/${n}`);

      await t.step(
        "cluster: earthworm watch lists node hearts and controller leases with their holders, then streams a snapshot and beats",
        () => watchStep(cluster, nodeIds),
      );
      await t.step(
        "cluster: three agents elect one leader, answer the same hearts through followers, fail over after SIGKILL and SIGTERM in time and never have two leaders; a stream through a follower resumes across each failover",
        () => agentsStep(cluster, nodeIds),
      );
    } finally {
      await cluster.stop();
    }
  },
});

async function watchStep(cluster: Cluster, nodeIds: string[]): Promise<void> {
  const watch = await startEarthworm([
    "watch",
    "--kubeconfig",
    cluster.kubeconfigPath,
    "--port",
    "0",
  ], { timeoutMs: 60_000 });
  let code: number | undefined;
  try {
    // Every node has renewed once since Earthworm listed it.
    const hearts = await until("every node heart to beat", 60_000, async () => {
      const { body } = await getJson<HeartsResponse>(
        `${watch.url}/api/v1/hearts`,
      );
      const byId = new Map(body.hearts.map((h) => [h.id, h]));
      return nodeIds.every((id) => (byId.get(id)?.beats ?? 0) >= 1) &&
        body;
    }, 500);
    assert.equal(hearts.source.kind, "cluster");
    assert.equal(hearts.source.connected, true);
    assert.equal(hearts.source.name, cluster.server);

    // Same Leases, kinds and holders as the API server has.
    const truth = expectedHearts(await leasesOf(cluster));
    assert.deepEqual(
      [...heartsTable(hearts).entries()].sort(),
      [...truth.entries()].sort(),
    );
    const byId = new Map(hearts.hearts.map((h) => [h.id, h]));
    for (const id of nodeIds) {
      const h = byId.get(id)!;
      assert.equal(h.kind, "node");
      assert.ok(h.holder, `${id} has a holder (kwok's identity)`);
      assert.equal(h.leaseDurationSeconds, 40);
      assert.equal(h.expectedIntervalSeconds, 10);
      assert.notEqual(h.status, "expired");
    }
    const kcm = byId.get("kube-system/kube-controller-manager");
    assert.ok(kcm, "the controller manager's election Lease is a heart");
    assert.equal(kcm.kind, "lease");
    assert.match(kcm.holder ?? "", /^[^_]+_[0-9a-f-]{36}$/);
    const identity = hearts.hearts.filter((h) =>
      h.namespace === "kube-system" && h.name.startsWith("apiserver-")
    );
    assert.equal(identity.length, 1, "one API server identity Lease");
    assert.match(identity[0]!.holder ?? "", /^apiserver-[a-z0-9]+_[0-9a-f-]+$/);
    const scheduler = byId.get("kube-system/kube-scheduler");
    if (scheduler) assert.equal(scheduler.kind, "lease");

    const nodeKinds = await getJson<HeartsResponse>(
      `${watch.url}/api/v1/hearts?kind=node`,
    );
    assert.deepEqual(
      nodeKinds.body.hearts.map((h) => h.id).sort(),
      [...nodeIds].sort(),
    );

    // The stream: a snapshot of the same hearts, then beats of real Leases.
    const res = await fetch(`${watch.url}/api/v1/stream`);
    assert.equal(res.status, 200);
    const msgs = await collectFullSse(
      res,
      (m) => m.filter((x) => x.event === "beat").length >= 5,
      30_000,
    );
    const first = msgs[0]!;
    assert.equal(first.event, "snapshot");
    const snapshot = JSON.parse(first.data) as SnapshotEvent;
    assert.deepEqual(
      snapshot.hearts.map((h) => h.id).sort(),
      [...truth.keys()].sort(),
    );
    const ids = msgs.filter((m) => m.id !== undefined).map((m) => Number(m.id));
    assert.deepEqual(ids, [...ids].sort((a, b) => a - b), "ids increase");
    for (const m of msgs.filter((x) => x.event === "beat")) {
      const beat = JSON.parse(m.data) as BeatEvent;
      assert.ok(truth.has(beat.id), `a beat of a known Lease: ${beat.id}`);
      const before = snapshot.hearts.find((h) => h.id === beat.id);
      assert.ok(
        beat.beat.renewTime > (before?.lastRenewTime ?? ""),
        `${beat.id} renewed after the snapshot`,
      );
      assert.equal(beat.beat.holder, truth.get(beat.id)![1]);
    }
  } finally {
    code = await watch.stop();
  }
  assert.equal(code, 0, "watch exits cleanly on SIGTERM");
}

async function agentsStep(cluster: Cluster, nodeIds: string[]): Promise<void> {
  const agents: Agent[] = [];
  const roles = new RolePoller();
  let stream: StreamFollower | undefined;
  const leaseUrl = (a: Agent) => a.address;
  const live = () => agents.filter((a) => a.alive);
  const add = async (identity: string) => {
    const a = await startTestAgent(cluster, identity);
    agents.push(a);
    roles.watch(a.identity, a.address);
    return a;
  };
  const currentLeader = () =>
    until("exactly one leader", 30_000, () => {
      const leaders = live().filter((a) => roles.latest(a.identity) === 1);
      const known = live().every((a) => roles.latest(a.identity) !== null);
      return known && leaders.length === 1 && leaders[0];
    }, 50);
  try {
    for (let i = 0; i < 3; i++) await add(`agent-${i}`);

    // Exactly one leader, and the Lease says so.
    let leader = await currentLeader();
    await sleep(1_500);
    assert.equal(
      live().filter((a) => roles.latest(a.identity) === 1).length,
      1,
      "still exactly one leader",
    );
    const lease = (await leasesOf(cluster)).find((l) =>
      l.metadata.namespace === ELECTION_NS &&
      l.metadata.name === "earthworm-leader"
    );
    assert.equal(lease?.spec.holderIdentity, leader.identity);
    assert.equal(
      lease?.metadata.annotations?.["earthworm.dev/leader-address"],
      leader.address,
    );

    // Every agent answers the same hearts; followers say who served them.
    await until("the leader to see every node", 60_000, async () => {
      const { body } = await getJson<HeartsResponse>(
        `${leader.address}/api/v1/hearts?kind=node`,
      );
      return body.hearts.length === nodeIds.length;
    }, 500);
    const truth = expectedHearts(await leasesOf(cluster));
    for (const a of live()) {
      const r = await getJson<HeartsResponse>(`${a.address}/api/v1/hearts`);
      assert.equal(r.status, 200, a.identity);
      assert.equal(
        r.servedBy,
        a === leader ? null : leaseUrl(leader),
        `${a.identity} is served by the leader`,
      );
      assert.deepEqual(
        [...heartsTable(r.body).entries()].sort(),
        [...truth.entries()].sort(),
        `${a.identity} answers the API server's Leases and holders`,
      );
      const beats = await getJson<{ beats: unknown[] }>(
        `${a.address}/api/v1/hearts/${nodeIds[0]}/beats?limit=5`,
      );
      assert.equal(beats.status, 200);
      const missing = await getJson<{ error: string }>(
        `${a.address}/api/v1/hearts/kube-node-lease/nope/beats`,
      );
      assert.equal(missing.status, 404, "errors pass through unchanged");
      assert.match(missing.body.error, /No heart/);
    }

    // A stream opened through a follower.
    const follower = live().find((a) => a !== leader)!;
    const s = new StreamFollower(follower.address);
    stream = s;
    await until(
      "a snapshot and beats through the follower",
      30_000,
      () => s.received[0]?.event === "snapshot" && s.beatsIn(0) >= 2,
    );
    assert.equal(s.connects[0]?.servedBy, leader.address);

    const failovers: Record<string, number> = {};
    for (const signal of ["SIGKILL", "SIGTERM"] as const) {
      // The stream goes through a follower that survives this round.
      let via = s.url === leader.address
        ? undefined
        : live().find((a) => a.address === s.url);
      if (!via) {
        via = live().find((a) => a !== leader)!;
        s.url = via.address;
        s.reconnect();
        const n = s.connects.length;
        await until(
          "the stream through another follower",
          30_000,
          () => s.connects.length > n && s.beatsIn(n) >= 1,
        );
        assert.equal(s.connects[n]!.servedBy, leader.address);
        assert.ok(
          !s.received.some((m) => m.connection === n && m.event === "snapshot"),
          "resuming through another follower replays what was missed, without a snapshot",
        );
      }
      const mark = s.received.length;
      const idsBefore = new Set(s.received.map((m) => m.id));

      const stoppedAt = Date.now();
      leader.proc.child.kill(signal);
      if (signal === "SIGKILL") {
        leader.alive = false;
        roles.forget(leader.identity);
      }
      const old = leader;
      const newLeader = await until(
        `a new leader after ${signal}`,
        30_000,
        () =>
          live().find((a) =>
            a !== old && roles.latest(a.identity) === 1 &&
            roles.firstLeadingAfter(a.identity, stoppedAt) !== undefined
          ),
        20,
      );
      const tookMs = roles.firstLeadingAfter(newLeader.identity, stoppedAt)! -
        stoppedAt;
      failovers[signal] = tookMs;
      if (signal === "SIGTERM") {
        assert.equal(await old.proc.stop(), 0, "the old leader exits cleanly");
        old.alive = false;
        roles.forget(old.identity);
      } else {
        await old.proc.stop();
      }
      leader = newLeader;

      // The stream reconnected to the same follower, got a fresh snapshot
      // from the new leader (other ids) and then beats again.
      const fresh = await until(
        `a new snapshot through ${via.identity} after ${signal}`,
        30_000,
        () => {
          const i = s.received.findIndex((m, j) =>
            j >= mark && m.event === "snapshot"
          );
          return i >= 0 &&
            s.received.slice(i + 1).some((m) => m.event === "beat") &&
            i;
        },
      );
      const snap = s.received[fresh]!;
      assert.equal(snap.url, via.address, "same follower");
      assert.ok(!idsBefore.has(snap.id), "the new leader's ids differ");
      assert.ok(
        snap.connection > s.received[mark - 1]!.connection,
        "the stream broke and was reopened",
      );
      const conn = s.connects[snap.connection]!;
      assert.equal(
        conn.servedBy,
        via === leader ? null : leader.address,
        "served by the new leader",
      );
      assert.equal(conn.lastEventId !== undefined, true, "resumed with an id");
      // The view after it holds every node: a new leader that has not
      // listed yet sends a snapshot without them, then each as it comes (a
      // heart the view lacks comes as a status event from null).
      const viewIds = (): Set<string> => {
        const ids = new Set(
          (JSON.parse(snap.data) as SnapshotEvent).hearts.map((h) => h.id),
        );
        for (const m of s.received.slice(fresh + 1)) {
          if (m.connection !== snap.connection) break;
          if (m.event === "heart") ids.add((JSON.parse(m.data) as Heart).id);
          if (m.event === "status") {
            const e = JSON.parse(m.data) as StatusEvent;
            if (e.to === null) ids.delete(e.id);
            else ids.add(e.id);
          }
        }
        return ids;
      };
      await until(
        `every node heart in the stream after ${signal}`,
        30_000,
        () => nodeIds.every((id) => viewIds().has(id)),
      ).catch((err) => {
        // Say what the view lacked and how the stream went since the stop.
        const missing = nodeIds.filter((id) => !viewIds().has(id));
        const counts = new Map<string, number>();
        for (const m of s.received.slice(mark)) {
          const key = `connection ${m.connection} ${m.event}`;
          counts.set(key, (counts.get(key) ?? 0) + 1);
        }
        throw new Error(
          `${(err as Error).message}: ${missing.length} missing (${
            missing.slice(0, 5).join(", ")
          }); snapshot on connection ${snap.connection} with ${
            (JSON.parse(snap.data) as SnapshotEvent).hearts.length
          } hearts; since the stop: ${
            JSON.stringify(s.connects.filter((c) => c.at >= stoppedAt))
          }, failures ${
            JSON.stringify(s.failures.filter((f) => f.at >= stoppedAt))
          }, messages ${JSON.stringify(Object.fromEntries(counts))}`,
        );
      });
      const after = s.received.slice(fresh);
      const ids = after.map((m) => Number(m.id));
      assert.deepEqual(ids, [...ids].sort((a, b) => a - b), "ids increase");
      const firstBeat = after.find((m) => m.event === "beat")!;
      console.log(
        `${signal}: stream through ${via.identity} reopened ${
          s.connects.length - 1 - s.received[mark - 1]!.connection
        } time(s) after ${
          s.failures.filter((f) => f.at >= stoppedAt).length
        } failed attempt(s); snapshot ${snap.at - stoppedAt} ms and next beat ${
          firstBeat.at - stoppedAt
        } ms after the leader was stopped`,
      );

      // Keep three agents for the next round.
      if (signal === "SIGKILL") await add(`agent-${agents.length}`);
    }

    console.log(
      `failover with lease ${LEASE_S} s / renew ${RENEW_S} s / retry ${RETRY_S} s: ` +
        `SIGKILL → new leader ${failovers.SIGKILL} ms, SIGTERM → new leader ${failovers.SIGTERM} ms`,
    );
    assert.ok(
      failovers.SIGKILL! >= (LEASE_S - RETRY_S) * 1000,
      `takeover ${failovers.SIGKILL} ms after SIGKILL came before the lease could expire`,
    );
    assert.ok(
      failovers.SIGKILL! <= (LEASE_S + RETRY_S) * 1000 + SLACK_MS,
      `takeover ${failovers.SIGKILL} ms after SIGKILL exceeds lease duration + retry period`,
    );
    assert.ok(
      failovers.SIGTERM! <= 2 * RETRY_S * 1000,
      `takeover ${failovers.SIGTERM} ms after SIGTERM exceeds 2 × retry period`,
    );
  } finally {
    await stream?.close();
    await roles.close();
    for (const a of agents) {
      if (a.alive) a.proc.child.kill("SIGTERM");
    }
    for (const a of agents) await a.proc.stop();
  }
  const intervals = leaderIntervals(roles.samples).sort((a, b) =>
    a.start - b.start
  );
  const t0 = roles.samples[0]?.sent ?? 0;
  console.log(
    `leaders over ${roles.samples.length} role readings: ${
      intervals.map((l) =>
        `${l.identity} ${((l.start - t0) / 1000).toFixed(1)}–${
          ((l.end - t0) / 1000).toFixed(1)
        } s`
      ).join(", ")
    }`,
  );
  assert.ok(intervals.length >= 3, "three leaderships were recorded");
  assert.deepEqual(overlappingLeaders(intervals), [], "never two leaders");
}
