/**
 * The wire side end to end on this machine's kernel and a real control
 * plane: kubelet-like processes renew their node Leases over one keep-alive
 * HTTPS connection to a real kube-apiserver, `earthworm agent` processes load
 * the real eBPF probe, the leader pairs beats with the exchanges that carried
 * them (its own node in process, a follower's by authenticated POST), and an
 * agent that may not load eBPF keeps serving lease hearts and says why.
 * Needs root, kernel BTF, libbpf and the built control plane; skips on a
 * laptop, fails under CI=true.
 *
 * @module
 */

import assert from "node:assert/strict";
import { clusterPrereq } from "./cluster/harness.ts";
import { ebpfPrereq } from "./wire/ebpf_prereq.ts";
import {
  type Agent,
  type FakeKubelet,
  until,
  WireStream,
  WireWorld,
} from "./wire/cluster_world.ts";
import type {
  Beat,
  BeatEvent,
  BeatsResponse,
  HeartsResponse,
} from "../core/api_types.ts";

const ebpf = ebpfPrereq();
const cluster = clusterPrereq();
const ignore = ebpf.ignore || cluster.ignore;
const check = () => {
  ebpf.check();
  cluster.check();
};

async function leading(agent: Agent): Promise<void> {
  await until(`agent ${agent.name} to lead and watch`, 60_000, async () => {
    const ready = await fetch(`${agent.url}/readyz`);
    await ready.body?.cancel();
    return ready.ok &&
        (await agent.metric("earthworm_leader")) === 1
      ? true
      : undefined;
  });
}

async function beats(agent: Agent, node: string): Promise<Beat[]> {
  const res = await agent.json<BeatsResponse>(
    `/api/v1/hearts/kube-node-lease/${node}/beats`,
  );
  return res.beats;
}

/** Beats of `node` paired with a wire latency, once at least `n` are. */
function pairedBeats(agent: Agent, node: string, n: number): Promise<Beat[]> {
  return until(
    `${n} beats of ${node} with a wire latency`,
    40_000,
    async () => {
      const paired = (await beats(agent, node)).filter((b) =>
        b.wireLatencyMs !== undefined
      );
      return paired.length >= n ? paired : undefined;
    },
  );
}

function post(
  agent: Agent,
  token: string | null,
  body: unknown,
): Promise<Response> {
  return fetch(`${agent.url}/api/v1/wire`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(token !== null && { authorization: `Bearer ${token}` }),
    },
    body: JSON.stringify(body),
  });
}

/**
 * Every paired beat was stamped by the kubelet and carried by an exchange on
 * the connection that sent it, starting at or just after its renewTime. That
 * includes the first renewal on a connection opened later, whose TLS
 * handshake runs between the stamp and the PUT (as in a real kubelet): the
 * probe never reports handshake legs, so none can pass for the PUT.
 */
async function assertPairsMatchTheWire(
  paired: Beat[],
  kubelet: FakeKubelet,
  stream: WireStream,
  apiserver: string,
): Promise<void> {
  const renewals = new Map(kubelet.renewals.map((r) => [r.renewTime, r]));
  for (const beat of paired) {
    const renewTime = Date.parse(beat.renewTime);
    const renewal = renewals.get(renewTime);
    assert.ok(renewal, `beat ${beat.renewTime} was stamped by the kubelet`);
    const conn = `127.0.0.1:${renewal.port}->${apiserver}`;
    const find = () =>
      stream.exchanges.find((x) =>
        x.conn === conn &&
        Date.parse(x.at) >= renewTime - 50 &&
        Date.parse(x.at) <= renewTime + 2000 &&
        x.latencyMs === beat.wireLatencyMs
      );
    // The beat can be read before the stream's batch with its exchange
    // (about 100 ms later) has arrived: wait a little for it.
    const carrier = await until(
      `the exchange of ${beat.renewTime} on the stream`,
      5_000,
      find,
    ).catch(() => undefined);
    assert.ok(
      carrier,
      `an exchange on ${conn} starting just after ${beat.renewTime} took ${beat.wireLatencyMs} ms; near it: ${
        JSON.stringify(
          stream.exchanges.filter((x) =>
            Math.abs(Date.parse(x.at) - renewTime) < 5000
          ),
        )
      }`,
    );
    assert.ok(
      carrier.bytesSent > 500 && carrier.bytesReceived > 500,
      `the carrier holds a Lease PUT and its answer: ${
        JSON.stringify(carrier)
      }`,
    );
    assert.ok(beat.wireLatencyMs! > 0 && beat.wireLatencyMs! < 1000);
  }
}

/** A `beat` event of the leader's stream and when it arrived. */
interface LiveBeat {
  renewTime: number;
  wireLatencyMs: number | undefined;
  receivedAt: number;
}

/** `beat` events of `node` on the leader's stream for renewals stamped in [from, to). */
function liveBeats(
  stream: WireStream,
  node: string,
  from: number,
  to: number,
): LiveBeat[] {
  return stream.events
    .filter((m) => m.event === "beat")
    .map((m) => ({ ...(JSON.parse(m.data) as BeatEvent), at: m.receivedAt }))
    .filter((e) => e.id === `kube-node-lease/${node}`)
    .map((e) => ({
      renewTime: Date.parse(e.beat.renewTime),
      wireLatencyMs: e.beat.wireLatencyMs,
      receivedAt: e.at,
    }))
    .filter((b) => b.renewTime >= from && b.renewTime < to);
}

Deno.test({
  name:
    "ebpf: a kubelet's lease renewals on a real API server reach the leader's stream as wire events, in process and by authenticated POST, and beats get their wire latency",
  ignore,
}, async () => {
  check();
  await using world = await WireWorld.start();
  // The kubelets hold their connections before any agent starts, so the
  // probes must adopt them. Each node's kubelet has its own name so the two
  // probes on this one machine do not both follow it, and neither follows a
  // real kubelet or another test's Go kubelet on this machine.
  const kubeletA = await world.kubelet("kubelet-a", "wire-node-a");
  const kubeletB = await world.kubelet("kubelet-b", "wire-node-b");
  const leader = await world.agent({
    identity: "a1",
    node: "wire-node-a",
    comm: "kubelet-a",
  });
  await leading(leader);
  await using stream = new WireStream(leader.url);
  const follower = await world.agent({
    identity: "a2",
    node: "wire-node-b",
    comm: "kubelet-b",
  });
  // The leader logs this once its Go TLS probe is open too, which may come
  // after the follower started on a loaded machine.
  await until(
    "a1's probe to run",
    30_000,
    () =>
      /wire probe running buffer=\S+ adopted=1/.test(leader.stderr) ||
      undefined,
  );
  await until(
    "a2 to follow a1",
    30_000,
    () => /leader is now identity=a1/.test(follower.stderr) || undefined,
  );
  await until(
    "a2's probe to run",
    30_000,
    () =>
      /wire probe running buffer=\S+ adopted=1/.test(follower.stderr) ||
      undefined,
  );

  const apiserver = `127.0.0.1:${world.apiPort}`;
  const oldConn = `127.0.0.1:${kubeletA.ports[0]}->${apiserver}`;
  await until(
    "wire events of both nodes",
    30_000,
    () =>
      stream.of("wire-node-a").some((x) => x.conn === oldConn) &&
        stream.of("wire-node-b").some((x) =>
          x.conn === `127.0.0.1:${kubeletB.ports[0]}->${apiserver}`
        ) || undefined,
  );

  // The kubelet opens a new connection (as after a broken one): followed from connect().
  await kubeletA.send("reconnect");
  const newPort = await until(
    "the new connection",
    10_000,
    () => kubeletA.ports[1],
  );
  const newConn = `127.0.0.1:${newPort}->${apiserver}`;
  await until(
    "wire events on the new connection",
    20_000,
    () => stream.of("wire-node-a").some((x) => x.conn === newConn) || undefined,
  );
  // The reconnect closed the old connection, and the probe said so.
  assert.ok(
    stream.signals.some((x) => x.signal === "closed" && x.conn === oldConn),
    JSON.stringify(stream.signals),
  );
  for (const x of stream.exchanges) {
    assert.ok(
      x.srttUs > 0 && x.latencyMs > 0 && x.latencyMs < 1000,
      JSON.stringify(x),
    );
    assert.ok(x.node === "wire-node-a" || x.node === "wire-node-b");
  }

  // Beats of both nodes are paired with the exchange that carried them: in
  // process for the leader's node, through POST /api/v1/wire for the other.
  const pairedA = await pairedBeats(leader, "wire-node-a", 5);
  const pairedB = await pairedBeats(leader, "wire-node-b", 5);
  await assertPairsMatchTheWire(pairedA, kubeletA, stream, apiserver);
  await assertPairsMatchTheWire(pairedB, kubeletB, stream, apiserver);
  const second = await until(
    "two renewals on the new connection",
    10_000,
    () => kubeletA.renewals.filter((r) => r.port === newPort)[1],
  );
  const pairedOnNew = await until(
    "beats carried by the new connection to be paired",
    20_000,
    async () => {
      const later = (await beats(leader, "wire-node-a")).filter((b) =>
        Date.parse(b.renewTime) >= second.renewTime &&
        b.wireLatencyMs !== undefined
      );
      return later.length >= 2 ? later : undefined;
    },
  );
  await assertPairsMatchTheWire(pairedOnNew, kubeletA, stream, apiserver);
  // Its first renewal too, unless its PUT left right behind the TLS
  // Finished and joined the handshake leg (then it is not paired at all).
  const firstOnNew = kubeletA.renewals.find((r) => r.port === newPort)!;
  const all = await beats(leader, "wire-node-a");
  await assertPairsMatchTheWire(
    all.filter((b) =>
      Date.parse(b.renewTime) === firstOnNew.renewTime &&
      b.wireLatencyMs !== undefined
    ),
    kubeletA,
    stream,
    apiserver,
  );

  // Exchanges are reported when their answer arrives, not at the next
  // renewal: each renewal's exchange reaches the leader's stream within
  // milliseconds of its Lease's watch event (the `beat` event), in process
  // and by POST, where it used to trail by a renewal interval.
  for (
    const [node, kubelet] of [["wire-node-a", kubeletA], [
      "wire-node-b",
      kubeletB,
    ]] as const
  ) {
    const from = Math.min(...stream.of(node).map((x) => x.receivedAt));
    const live = await until(
      `five live beats of ${node}`,
      20_000,
      () => {
        const got = liveBeats(stream, node, from, Date.now() - 2000);
        return got.length >= 5 ? got : undefined;
      },
    );
    const gaps: number[] = [];
    for (const beat of live) {
      const renewal = kubelet.renewals.find((r) =>
        r.renewTime === beat.renewTime
      );
      const conn = `127.0.0.1:${renewal?.port}->${apiserver}`;
      const carrier = stream.exchanges.find((x) =>
        x.conn === conn && x.bytesSent > 500 &&
        Date.parse(x.at) >= beat.renewTime - 50 &&
        Date.parse(x.at) <= beat.renewTime + 2000
      );
      if (carrier) gaps.push(carrier.receivedAt - beat.receivedAt);
    }
    const shown = `${node}: exchange minus beat arrival (ms) ${gaps}; ${
      live.filter((b) => b.wireLatencyMs !== undefined).length
    } of ${live.length} live beats carried a wire latency`;
    assert.ok(live.length >= 5 && gaps.length >= live.length - 1, shown);
    assert.ok(gaps.every((g) => g < 200), shown);
    // The hub holds a node beat up to 200 ms for its exchange, so the live
    // events themselves carry the wire latency.
    const carried = live.filter((b) => b.wireLatencyMs !== undefined).length;
    assert.ok(carried >= Math.ceil(live.length * 0.8), shown);
  }

  const hearts = await follower.json<HeartsResponse>(
    "/api/v1/hearts?kind=node",
  );
  for (const node of ["wire-node-a", "wire-node-b"]) {
    const heart = hearts.hearts.find((h) => h.name === node);
    assert.ok(heart?.wire, `${node} has a wire summary (through the follower)`);
    assert.ok(heart.wire.srttUs !== null && heart.wire.srttUs > 0);
    assert.equal(heart.wire.retransmits, 0);
    assert.equal(heart.wire.resets, 0);
    assert.ok(
      Date.now() - Date.parse(heart.wire.lastExchangeAt!) < 10_000,
      `recent exchange ${heart.wire.lastExchangeAt}`,
    );
    assert.equal(heart.status, "healthy");
  }
  // The stand-in kubelets are not Go programs: renewals are inferred from
  // TCP timing, and the summary says so and why.
  assert.equal(hearts.source.wire?.available, true);
  assert.match(
    hearts.source.wire?.pairing ?? "",
    /exactly on 0 of 2 nodes; inferred from TCP timing .*not a Go executable/,
  );
  for (const node of ["wire-node-a", "wire-node-b"]) {
    const srtt = await leader.metric(
      "earthworm_wire_srtt_seconds",
      new RegExp(`node="${node}"`),
    );
    assert.ok(srtt !== undefined && srtt > 0 && srtt < 1, `srtt ${srtt}`);
  }
  const pairedTotal = await leader.metric("earthworm_wire_paired_beats_total");
  assert.ok(pairedTotal! >= pairedA.length + pairedB.length);
  assert.equal(await leader.metric("earthworm_wire_available"), 1);

  // Reports without the right token are refused, and the leader carries on.
  const report = {
    node: "wire-node-b",
    probe: { available: true },
    exchanges: [],
  };
  const refusals: [string | null, number][] = [
    [null, 401],
    ["not-a-token", 401],
    [world.read("token-default-audience"), 401],
    [world.read("token-other-user"), 403],
    // An agent's own token, for another node than its own.
    [world.read("token-wire-node-a"), 403],
  ];
  for (const [token, status] of refusals) {
    const res = await post(leader, token, report);
    const body = await res.json();
    assert.equal(res.status, status, JSON.stringify(body));
    assert.equal(typeof body.error, "string");
  }
  const bad = await post(leader, world.read("token-wire-node-b"), {
    node: "wire-node-b",
  });
  assert.equal(bad.status, 400);
  await bad.body?.cancel();
  const seen = stream.of("wire-node-b").length;
  await until(
    "more wire events from the follower",
    20_000,
    () => stream.of("wire-node-b").length > seen || undefined,
  );
  const health = await fetch(`${leader.url}/healthz`);
  assert.equal(health.status, 200);
  await health.body?.cancel();
  assert.ok(!leader.exited && !follower.exited);
  assert.doesNotMatch(follower.stderr, /cannot send wire report/);
});

Deno.test({
  name:
    "ebpf: an agent that may not load eBPF keeps serving lease hearts and says why in the API and metrics",
  ignore,
}, async () => {
  check();
  await using world = await WireWorld.start();
  const kubelet = await world.kubelet("kubelet-a", "wire-node-a");
  const agent = await world.agent({
    identity: "nobody-1",
    node: "wire-node-a",
    comm: "kubelet-a",
    unprivileged: true,
  });
  await leading(agent);
  const reason = await until(
    "the probe's reason in the API",
    30_000,
    async () => {
      const hearts = await agent.json<HeartsResponse>("/api/v1/hearts");
      const wire = hearts.source.wire;
      return wire?.reason?.includes("Not permitted") ? wire : undefined;
    },
  );
  assert.equal(reason.available, false);
  assert.match(
    reason.reason!,
    /^1 of 1 agents run lease-only; wire-node-a: Not permitted to load eBPF programs .*: run as root or grant CAP_BPF/,
  );
  assert.match(agent.stderr, /running lease-only/);
  assert.equal(
    await agent.metric(
      "earthworm_wire_available",
      /reason="1 of 1 agents run lease-only; wire-node-a: Not permitted/,
    ),
    0,
  );

  // Lease hearts go on: the kubelet's renewals are beats, without wire latency.
  const before = kubelet.renewals.length;
  const got = await until("five beats of the node", 30_000, async () => {
    const list = await beats(agent, "wire-node-a");
    return list.length >= 5 ? list : undefined;
  });
  assert.ok(kubelet.renewals.length > before);
  assert.ok(got.every((b) => b.wireLatencyMs === undefined));
  const hearts = await agent.json<HeartsResponse>("/api/v1/hearts?kind=node");
  const heart = hearts.hearts.find((h) => h.name === "wire-node-a");
  assert.equal(heart?.status, "healthy");
  assert.equal(heart?.wire, undefined);
  assert.equal(await agent.metric("earthworm_wire_exchanges_total"), 0);

  // As a follower it tells the new leader why, within seconds, by POST.
  await world.kubelet("kubelet-b", "wire-node-b");
  const root = await world.agent({
    identity: "root-1",
    node: "wire-node-b",
    comm: "kubelet-b",
  });
  await until(
    "root-1 to follow",
    30_000,
    () => /leader is now identity=nobody-1/.test(root.stderr) || undefined,
  );
  assert.equal(await agent.stop(), 0);
  await leading(root);
  const follower = await world.agent({
    identity: "nobody-2",
    node: "wire-node-a",
    comm: "kubelet-a",
    unprivileged: true,
  });
  const remote = await until(
    "the follower's reason at the leader",
    15_000,
    async () => {
      const wire =
        (await root.json<HeartsResponse>("/api/v1/hearts")).source.wire;
      return wire?.reason?.includes("wire-node-a") ? wire : undefined;
    },
  );
  assert.equal(remote.available, true, "one agent of two has wire data");
  assert.match(
    remote.reason!,
    /^1 of 2 agents run lease-only; wire-node-a: Not permitted to load eBPF programs/,
  );
  const served = await follower.json<HeartsResponse>(
    "/api/v1/hearts?kind=node",
  );
  assert.deepEqual(
    served.hearts.map((h) => [h.name, h.status]).sort(),
    [["wire-node-a", "healthy"], ["wire-node-b", "healthy"]],
  );
  assert.doesNotMatch(follower.stderr, /cannot send wire report/);
});
