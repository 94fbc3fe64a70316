/**
 * Wire latency benchmark (root, real kernel, real control plane):
 *
 *   deno run --allow-all tests/bench/wire_latency_bench.ts [SECONDS] [--flush 1000,100,20] [--interval 100]
 *
 * Two kubelet-like processes renew their node Leases on a private
 * kube-apiserver every `--interval` ms over one keep-alive HTTPS connection
 * each; a leader agent (its node's exchanges reach its hub in process) and a
 * follower agent (its exchanges go by authenticated POST /api/v1/wire) load
 * the real eBPF probe. An SSE client of the leader timestamps every `wire`
 * event and prints, per path (p50, p99, max), the time from the end of the
 * exchange (its first answer byte, on the node's clock: the same machine
 * here) to the arrival at the client. The probe emits its kernel event at
 * that first answer byte, so this is also kernel event → leader's stream.
 *
 * Run once per flush interval (`--wire-flush-ms`): an exchange after a quiet
 * spell goes at once; busier connections are batched up to that interval.
 *
 * Under `deno bench` this module does nothing.
 *
 * @module
 */

import { until, WireStream, WireWorld } from "../wire/cluster_world.ts";

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ??
    NaN;
}

function summary(values: number[]): string {
  const s = values.toSorted((a, b) => a - b);
  const f = (v: number) => v.toFixed(1).padStart(8);
  return `${String(s.length).padStart(6)} ${f(percentile(s, 0.5))} ${
    f(percentile(s, 0.99))
  } ${f(s.at(-1) ?? NaN)}`;
}

/** Latencies (ms) of one path. */
interface Latencies {
  fromExchangeEnd: number[];
}

/** Runs one configuration; returns latencies per node. */
async function measure(
  world: WireWorld,
  flushMs: number,
  seconds: number,
): Promise<Map<string, Latencies>> {
  const extraArgs = ["--wire-flush-ms", String(flushMs)];
  const leader = await world.agent({
    identity: `lead-${flushMs}`,
    node: "bench-node-a",
    comm: "kubelet",
    extraArgs,
  });
  try {
    await until("the leader to lead", 60_000, async () => {
      const res = await fetch(`${leader.url}/readyz`);
      await res.body?.cancel();
      return res.ok && (await leader.metric("earthworm_leader")) === 1
        ? true
        : undefined;
    });
  } catch (err) {
    await leader.stop();
    throw err;
  }
  const follower = await world.agent({
    identity: `follow-${flushMs}`,
    node: "bench-node-b",
    comm: "kubelet-b",
    extraArgs,
  });
  try {
    await using stream = new WireStream(leader.url);
    // Both probes running and the follower's reports arriving.
    await until(
      "wire events of both nodes",
      30_000,
      () =>
        stream.of("bench-node-a").length > 0 &&
          stream.of("bench-node-b").length > 0 || undefined,
    );
    const from = Date.now();
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const result = new Map<string, Latencies>();
    for (const x of stream.exchanges) {
      const end = Date.parse(x.at) + x.latencyMs;
      if (end < from) continue;
      let l = result.get(x.node);
      if (!l) {
        l = { fromExchangeEnd: [] };
        result.set(x.node, l);
      }
      l.fromExchangeEnd.push(x.receivedAt - end);
    }
    return result;
  } finally {
    await follower.stop();
    await leader.stop();
  }
}

if (import.meta.main) {
  const seconds = Number(Deno.args.find((a) => /^\d+$/.test(a)) ?? "20");
  const arg = (name: string, fallback: string) => {
    const i = Deno.args.indexOf(name);
    return i >= 0 ? Deno.args[i + 1] ?? fallback : fallback;
  };
  const flushes = arg("--flush", "1000,100,20").split(",").map(Number);
  const interval = Number(arg("--interval", "100"));
  await using world = await WireWorld.start();
  await world.kubelet("kubelet", "bench-node-a", interval);
  await world.kubelet("kubelet-b", "bench-node-b", interval);
  console.log(
    `kernel event (exchange end) -> wire event at an SSE client of the leader; renewals every ${interval} ms, ${seconds} s per run`,
  );
  console.log(
    "flush ms  path                         from      n   p50 ms   p99 ms   max ms",
  );
  for (const flushMs of flushes) {
    const result = await measure(world, flushMs, seconds);
    for (
      const [node, path] of [
        ["bench-node-a", "leader, in process"],
        ["bench-node-b", "follower, POST /api/v1/wire"],
      ] as const
    ) {
      const l = result.get(node);
      console.log(
        `${String(flushMs).padStart(8)}  ${path.padEnd(28)} exchange end ${
          summary(l?.fromExchangeEnd ?? [])
        }`,
      );
    }
  }
}
