/**
 * Earthworm's leader next to a client-go informer on the same cluster, for
 * issue 12 (a script, not part of `deno task bench`: it needs the control
 * plane of `tests/cluster/` and prints measurements instead of asserting):
 *
 *   deno run -A tests/bench/scale_informer.ts [--nodes 5000] [--other 1000]
 *     [--other-every 10] [--window 120] [--part 600] [--warmup 30]
 *     [--kwok-workers 256]
 *     [--cluster-dir DIR] [--earthworm MAIN_TS] [--compare MAIN_TS]
 *     [--compare-v8-flags FLAGS] [--no-live]
 *     [--history] [--history-speed 10] [--history-other-every 2] [--heap]
 *     [--profile FILE] [--floor]
 *
 * Live part (unless `--no-live`):
 *
 * 1. Starts a private control plane (or uses the running one of
 *    `cluster.sh` in `--cluster-dir`) with `--nodes` kwok nodes, kwok
 *    renewing their Leases with `--kwok-workers` workers, and `--other`
 *    Leases that `leasebench renew` (client-go) renews every
 *    `--other-every` seconds, like controllers' leader elections.
 * 2. Starts Earthworm's leader path, one `earthworm agent --no-ebpf` that
 *    wins its election and lists and watches every Lease into its hub and
 *    beat store, and `leasebench informer`, a minimal client-go
 *    SharedInformer on every Lease (JSON, the client's default), and the
 *    same informer on protobuf (`-protobuf`, as kube-state-metrics and
 *    controllers read; Earthworm's list and watch read protobuf too).
 * 3. After `--warmup` seconds, over `--window` seconds, reads both
 *    processes' CPU time (`/proc/<pid>/stat`, user + system) and the Lease
 *    updates each received (Earthworm: `earthworm_lease_events_total`; the
 *    informers: their handler calls): CPU per update and the ratios; for
 *    a window longer than `--part` seconds (10 minutes) also the ratio in
 *    each part, to tell whether it grows with the history the leader holds.
 *    With `--compare MAIN_TS`, a second leader from another checkout's
 *    `main.ts` (its own election Lease) runs beside the first in the same
 *    window, and its CPU per update is printed against both: two versions
 *    of Earthworm side by side on one cluster, under one load. With
 *    `--compare-v8-flags FLAGS` that second leader runs with
 *    `--v8-flags=FLAGS` instead of the launch's own (and from this
 *    checkout unless `--compare` names another): a runtime setting tried
 *    side by side.
 * 4. Freshness: for every tenth Lease (names ending in 0), when each saw
 *    each new renewTime: Earthworm's `observedAt` of the beat, the
 *    informer's handler time. Both are floored to the millisecond, as
 *    Earthworm's clock is. Reference: the renewTime the writer stamped just
 *    before its update, and for the renewer's Leases also the moment the API
 *    server's answer to the update arrived (the commit, confirmed).
 * 5. kwok: node Lease renewals a second, and each node's interval between
 *    renewals (10 s nominal, +4 % jitter): on time or late.
 * 6. The leader's resident memory every minute of the window (a window of
 *    an hour or more ends with an hour of history in its store), and at
 *    the end that of every process; with `--heap` (the leader then runs with
 *    `--inspect` on loopback) also its V8 heap before and after a full
 *    collection, what it holds apart from the collector's slack.
 * 7. With `--floor`, `_watch_floor.ts` beside them: Earthworm's list/watch
 *    loop into a sink that only counts, its CPU per update measured in the
 *    same window (what the runtime and the watch cost before the hub).
 * 8. With `--profile FILE`, a V8 CPU profile of the leader over the window
 *    (written to FILE, a `.cpuprofile` for DevTools) and its functions with
 *    the most samples of their own. The profiler costs CPU: the ratio of a
 *    run with it is not the one to quote.
 *
 * History part (`--history`): `earthworm mock --nodes 5000 --leases 1000
 * --no-incidents` on a clock running `--history-speed` times faster than
 * wall time (simulated time: the simulator, the hub and the store all run
 * on it), until one hour of simulated time has passed, so the store holds
 * an hour of beats of every heart (node Leases every 10 s, the other Leases
 * every `--history-other-every` s); then its resident memory (and with
 * `--heap` its V8 heap, as above).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { kwokNode, startCluster } from "../cluster/harness.ts";
import {
  type EarthwormProcess,
  MALLOC_ENV,
  startEarthworm,
  V8_FLAGS,
} from "../earthworm_process.ts";
import { freePorts, sleep, until } from "../wait.ts";
import type { BeatsResponse, HeartsResponse } from "../../core/api_types.ts";
import { buildLeasebench, Leasebench } from "./_leasebench.ts";
import {
  cpuSeconds,
  heapUsage,
  loadavg,
  LoadSampler,
  quantile,
  rss,
  RssSampler,
  startCpuProfile,
  summary,
  topSelf,
} from "./_measure.ts";

const args = parseArgs({
  args: Deno.args,
  options: {
    nodes: { type: "string", default: "5000" },
    other: { type: "string", default: "1000" },
    "other-every": { type: "string", default: "10" },
    window: { type: "string", default: "120" },
    part: { type: "string", default: "600" },
    warmup: { type: "string", default: "30" },
    "kwok-workers": { type: "string", default: "256" },
    "cluster-dir": { type: "string" },
    earthworm: { type: "string" },
    compare: { type: "string" },
    "compare-v8-flags": { type: "string" },
    "no-live": { type: "boolean", default: false },
    history: { type: "boolean", default: false },
    "history-speed": { type: "string", default: "10" },
    "history-other-every": { type: "string", default: "2" },
    heap: { type: "boolean", default: false },
    profile: { type: "string" },
    floor: { type: "boolean", default: false },
  },
});
const NODES = Number(args.values.nodes);
const OTHER = Number(args.values.other);
const OTHER_EVERY = Number(args.values["other-every"]);
const WINDOW_S = Number(args.values.window);
const PART_S = Number(args.values.part);
const WARMUP_S = Number(args.values.warmup);
const KWOK_WORKERS = args.values["kwok-workers"]!;
const OTHER_NS = "earthworm-bench";
const ENTRY = args.values.earthworm;
const COMPARE_V8 = args.values["compare-v8-flags"];
const COMPARE = args.values.compare ??
  (COMPARE_V8 === undefined
    ? undefined
    : new URL("../../main.ts", import.meta.url).pathname);
const PROFILE = args.values.profile;
const HEAP = args.values.heap! || PROFILE !== undefined;
const FLOOR = args.values.floor!;
function mib(v: number): string {
  return `${v.toFixed(0)} MiB`;
}

/** Flags that let {@linkcode heap} read a process's V8 heap (with `--heap`). */
function inspectFlags(): { denoFlags: string[]; inspect: string } | undefined {
  if (!HEAP) return undefined;
  const inspect = `127.0.0.1:${freePorts(1)[0]}`;
  return { denoFlags: [`--inspect=${inspect}`], inspect };
}

async function heap(inspect: string | undefined): Promise<string> {
  if (inspect === undefined) return "";
  const h = await heapUsage(inspect);
  return `; V8 heap ${mib(h.before)} used, ${
    mib(h.after)
  } after a full collection (of ${mib(h.total)} reserved)`;
}

function memory(pid: number): string {
  const m = rss(pid);
  return `${mib(m.rss)} (anonymous ${mib(m.anon)}, file-backed ${
    mib(m.file)
  }; peak ${mib(m.peak)})`;
}

async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, "m").exec(text);
  if (!m) throw new Error(`No metric ${name} at ${url}`);
  return Number(m[1]);
}

interface Env {
  kubeconfig: string;
  kubectl(args: string[], stdin?: string): Promise<string>;
  stop(): Promise<void>;
}

async function controlPlane(): Promise<Env> {
  const dir = args.values["cluster-dir"];
  if (dir) {
    const kubeconfig = `${dir}/admin.kubeconfig`;
    const { clusterBinDir, run } = await import("../cluster/harness.ts");
    const kubectl = (a: string[], stdin?: string) =>
      run(
        `${clusterBinDir()}/kubectl`,
        ["--kubeconfig", kubeconfig, ...a],
        {},
        stdin,
      );
    return { kubeconfig, kubectl, stop: async () => {} };
  }
  Deno.env.set("EARTHWORM_KWOK_LEASE_WORKERS", KWOK_WORKERS);
  const cluster = await startCluster();
  return {
    kubeconfig: cluster.kubeconfigPath,
    kubectl: cluster.kubectl,
    stop: () => cluster.stop(),
  };
}

/**
 * Creates kwok nodes `kwok-node-<i>` up to `n`, five batches at a time, and
 * deletes those past `n` (with their Leases) that a running control plane
 * kept from a larger run, so the window holds exactly `n` node Leases.
 */
async function ensureNodes(env: Env, n: number): Promise<void> {
  const names = (await env.kubectl([
    "get",
    "nodes",
    "-l",
    "earthworm.dev/kwok=true",
    "-o",
    "name",
  ])).split("\n").map((l) => l.trim().replace(/^node\//, "")).filter((l) => l);
  const extra = names.filter((name) =>
    Number(name.slice("kwok-node-".length)) >= n
  );
  const chunks: string[][] = [];
  for (let i = 0; i < extra.length; i += 100) {
    chunks.push(extra.slice(i, i + 100));
  }
  await drain(chunks, 5, async (chunk) => {
    await env.kubectl(["delete", "node", "--wait=false", ...chunk]);
    await env.kubectl([
      "-n",
      "kube-node-lease",
      "delete",
      "lease",
      "--ignore-not-found",
      "--wait=false",
      ...chunk,
    ]);
  });
  if (extra.length > 0) {
    console.log(`deleted ${extra.length} kwok nodes past --nodes ${n}`);
  }
  const have = names.length - extra.length;
  const batches: [number, number][] = [];
  for (let i = have; i < n; i += 500) batches.push([i, Math.min(n, i + 500)]);
  await drain(batches, 5, async ([from, to]) => {
    const items = [];
    for (let i = from; i < to; i++) items.push(kwokNode(`kwok-node-${i}`));
    await env.kubectl(
      ["create", "-f", "-"],
      JSON.stringify({ apiVersion: "v1", kind: "List", items }),
    );
  });
}

/** Runs `task` on every item, `workers` at a time, taking items in order. */
async function drain<T>(
  items: T[],
  workers: number,
  task: (item: T) => Promise<void>,
): Promise<void> {
  const queue = [...items];
  const work = async () => {
    while (queue.length > 0) await task(queue.shift()!);
  };
  await Promise.all(Array.from({ length: workers }, work));
}

async function ensureNamespace(env: Env, ns: string): Promise<void> {
  try {
    await env.kubectl(["create", "namespace", ns]);
  } catch (err) {
    if (!String(err).includes("AlreadyExists")) throw err;
  }
}

/**
 * `startEarthworm`'s options for another checkout's `main.ts`: it runs in
 * its own directory, with its own deno.json and lock.
 */
function entryOptions(entry: string | undefined): {
  entry?: string;
  cwd?: string;
} {
  if (entry === undefined) return {};
  const path = Deno.realPathSync(entry);
  return { entry: path, cwd: path.slice(0, path.lastIndexOf("/")) };
}

async function startLeader(
  env: Env,
  name: string,
  entry: string | undefined,
  v8Flags?: string,
): Promise<
  EarthwormProcess & {
    address: string;
    inspect: string | undefined;
  }
> {
  const [port] = freePorts(1);
  const inspect = inspectFlags();
  const address = `http://127.0.0.1:${port}`;
  const proc = await startEarthworm([
    "agent",
    "--kubeconfig",
    env.kubeconfig,
    "--host",
    "127.0.0.1",
    "--port",
    String(port),
    "--identity",
    name,
    "--address",
    address,
    "--election-namespace",
    "earthworm",
    "--election-lease",
    name,
    "--no-ebpf",
  ], {
    timeoutMs: 60_000,
    ...entryOptions(entry),
    ...(v8Flags !== undefined && { v8Flags: `--v8-flags=${v8Flags}` }),
    ...(inspect && { denoFlags: inspect.denoFlags }),
  });
  return { ...proc, address, inspect: inspect?.inspect };
}

/** A leasebench-speaking process's CPU seconds and Lease updates so far. */
async function reading(
  p: Leasebench,
): Promise<{ cpu: number; updates: number }> {
  const cpu = cpuSeconds(p.pid);
  const c = await p.stats<
    { adds: number; updates: number; deletes: number }
  >();
  return { cpu, updates: c.adds + c.updates + c.deletes };
}

/** CPU, updates and µs per update between two readings. */
function usage(
  a: { cpu: number; updates: number },
  b: { cpu: number; updates: number },
): { cpu: number; updates: number; per: number } {
  const cpu = b.cpu - a.cpu;
  const updates = b.updates - a.updates;
  return { cpu, updates, per: cpu / updates * 1e6 };
}

interface Seen {
  /** id + renewTime (ms) → when seen, ms (floored). */
  at: Map<string, number>;
}

function key(id: string, renewMs: number): string {
  return `${id} ${renewMs}`;
}

async function earthwormSeen(
  url: string,
  ids: string[],
  since: number,
): Promise<Seen> {
  const at = new Map<string, number>();
  await drain(ids, 8, async (id) => {
    const res = await fetch(
      `${url}/api/v1/hearts/${id}/beats?since=${new Date(since).toISOString()}`,
    );
    if (!res.ok) {
      await res.body?.cancel();
      return;
    }
    const body = await res.json() as BeatsResponse;
    for (const b of body.beats) {
      at.set(key(id, Date.parse(b.renewTime)), Date.parse(b.observedAt));
    }
  });
  return { at };
}

async function live(): Promise<void> {
  const started = Date.now();
  const bin = await buildLeasebench();
  console.log(
    `control plane: ${NODES} kwok nodes (kwok lease workers ${KWOK_WORKERS}), ${OTHER} other Leases renewed every ${OTHER_EVERY} s; ${
      loadavg().join(" ")
    } load`,
  );
  const env = await controlPlane();
  const children: { stop(): Promise<unknown> }[] = [];
  try {
    await ensureNodes(env, NODES);
    await ensureNamespace(env, "earthworm");
    await ensureNamespace(env, OTHER_NS);
    const renewer = new Leasebench(bin, [
      "renew",
      "-kubeconfig",
      env.kubeconfig,
      "-namespace",
      OTHER_NS,
      "-prefix",
      "ctl",
      "-count",
      String(OTHER),
      "-every",
      `${OTHER_EVERY}s`,
    ]);
    children.push(renewer);
    await renewer.next(); // ready
    console.log(
      `nodes and Leases in place after ${
        ((Date.now() - started) / 1000).toFixed(0)
      } s`,
    );

    const total = NODES + OTHER;
    const leaderWithAll = async (
      name: string,
      entry: string | undefined,
      v8Flags?: string,
    ) => {
      const p = await startLeader(env, name, entry, v8Flags);
      children.push(p);
      await until(
        `the leader ${name} to hold ${total} hearts`,
        300_000,
        async () => {
          const res = await fetch(`${p.address}/api/v1/hearts`);
          if (!res.ok) {
            await res.body?.cancel();
            return false;
          }
          const body = await res.json() as HeartsResponse;
          return body.hearts.length >= total;
        },
        2_000,
      );
      return p;
    };
    const leader = await leaderWithAll("scale-bench-leader", ENTRY);
    const other = COMPARE === undefined
      ? undefined
      : await leaderWithAll("scale-bench-compare", COMPARE, COMPARE_V8);
    const informer = new Leasebench(bin, [
      "informer",
      "-kubeconfig",
      env.kubeconfig,
      "-sample-suffix",
      "0",
    ]);
    children.push(informer);
    await informer.next(); // synced
    // The same informer reading protobuf, as kube-state-metrics and the
    // controllers do (Earthworm's watch and list read protobuf too).
    const informerPb = new Leasebench(bin, [
      "informer",
      "-kubeconfig",
      env.kubeconfig,
      "-protobuf",
      "-sample-suffix",
      "none",
    ]);
    children.push(informerPb);
    await informerPb.next(); // synced
    // Earthworm's own list/watch loop with nothing behind it (--floor).
    const floor = FLOOR
      ? new Leasebench(Deno.execPath(), [
        "run",
        "-A",
        V8_FLAGS,
        new URL("./_watch_floor.ts", import.meta.url).pathname,
        env.kubeconfig,
      ], MALLOC_ENV)
      : undefined;
    if (floor) {
      children.push(floor);
      await floor.next(); // synced
    }
    console.log(
      `leader and informer hold every Lease; warming up for ${WARMUP_S} s`,
    );
    await sleep(WARMUP_S * 1000);
    await informer.dump();
    await renewer.dump();

    const load = new LoadSampler();
    const leaderRss = new RssSampler(leader.child.pid);
    const t0 = Date.now();
    const leaderReading = async (p = leader) => ({
      cpu: cpuSeconds(p.child.pid),
      updates: await metric(p.address, "earthworm_lease_events_total"),
    });
    const ew0 = await leaderReading();
    const cm0 = other && await leaderReading(other);
    const go0 = await reading(informer);
    const pb0 = await reading(informerPb);
    const fl0 = floor && await reading(floor);
    const rn0 = await renewer.stats<{ renewals: number }>();
    const stopProfile = PROFILE !== undefined && leader.inspect !== undefined
      ? await startCpuProfile(leader.inspect)
      : undefined;
    // The window part by part: Earthworm's and the informer's CPU per update
    // in each, read back to back.
    const parts: string[] = [];
    let ewPart = ew0, goPart = go0, cmPart = cm0;
    const partS = Math.min(PART_S, WINDOW_S);
    for (let left = WINDOW_S; left > 0; left -= partS) {
      await sleep(Math.min(left, partS) * 1000);
      const ew = await leaderReading(), go = await reading(informer);
      const cm = other && await leaderReading(other);
      const e = usage(ewPart, ew), g = usage(goPart, go);
      const c = cmPart && cm && usage(cmPart, cm);
      parts.push(
        `${(e.per / g.per).toFixed(2)}× (${e.per.toFixed(1)} µs)` +
          (c ? ` vs --compare ${(c.per / g.per).toFixed(2)}×` : ""),
      );
      ewPart = ew;
      goPart = go;
      cmPart = cm;
    }
    const profile = await stopProfile?.();
    const ew1 = await leaderReading();
    const cm1 = other && await leaderReading(other);
    const go1 = await reading(informer);
    const pb1 = await reading(informerPb);
    const fl1 = floor && await reading(floor);
    const rn1 = await renewer.stats<{ renewals: number }>();
    const t1 = Date.now();
    const loadText = load.stop();
    const rssText = leaderRss.stop();
    const seconds = (t1 - t0) / 1000;

    const { cpu: ewCpu, updates: ewUpdates, per: ewPer } = usage(ew0, ew1);
    const { cpu: goCpu, updates: goUpdates, per: goPer } = usage(go0, go1);
    const { cpu: pbCpu, updates: pbUpdates, per: pbPer } = usage(pb0, pb1);
    const otherRenewals = rn1.renewals - rn0.renewals;
    console.log(
      `\nwindow ${seconds.toFixed(0)} s, ${loadText}; ${
        (goUpdates / seconds).toFixed(0)
      } Lease updates/s (kwok's node Leases ${
        ((goUpdates - otherRenewals) / seconds).toFixed(0)
      }/s, the renewer's ${(otherRenewals / seconds).toFixed(0)}/s)`,
    );
    console.log(
      `CPU per Lease update: Earthworm ${ewPer.toFixed(1)} µs (${
        ewCpu.toFixed(2)
      } s for ${ewUpdates}), client-go informer ${goPer.toFixed(1)} µs (${
        goCpu.toFixed(2)
      } s for ${goUpdates}): ratio ${(ewPer / goPer).toFixed(2)}×`,
    );
    console.log(
      `  the informer on protobuf: ${pbPer.toFixed(1)} µs (${
        pbCpu.toFixed(2)
      } s for ${pbUpdates}): ratio ${(ewPer / pbPer).toFixed(2)}×`,
    );
    if (cm0 && cm1) {
      const { cpu, updates: n, per } = usage(cm0, cm1);
      console.log(
        `  --compare ${COMPARE}${
          COMPARE_V8 === undefined ? "" : ` --v8-flags=${COMPARE_V8}`
        }: ${per.toFixed(1)} µs (${cpu.toFixed(2)} s for ${n}): ratio ${
          (per / goPer).toFixed(2)
        }× the informer; ` +
          `this checkout / --compare ${(ewPer / per).toFixed(3)}`,
      );
    }
    if (parts.length > 1) {
      console.log(
        `  Earthworm / informer in each ${PART_S} s of the window: ${
          parts.join(", ")
        }`,
      );
    }
    if (fl0 && fl1) {
      const { cpu, updates: n, per } = usage(fl0, fl1);
      console.log(
        `  Earthworm's watch loop alone (--floor): ${per.toFixed(1)} µs (${
          cpu.toFixed(2)
        } s for ${n}), ${(per / goPer).toFixed(2)}× the informer; ` +
          `the leader's pipeline above it ${(ewPer - per).toFixed(1)} µs`,
      );
    }

    // Freshness of the same updates.
    const goSamples = (await informer.dump()).filter((s) =>
      s.renewUs / 1000 >= t0 && s.renewUs / 1000 < t1
    );
    const rnSamples = (await renewer.dump()).filter((s) =>
      s.renewUs / 1000 >= t0 && s.renewUs / 1000 < t1
    );
    const ids = [...new Set(goSamples.map((s) => s.id))];
    const ew = await earthwormSeen(leader.address, ids, t0 - 60_000);
    const answered = new Map(
      rnSamples.map((s) => [key(s.id, Math.floor(s.renewUs / 1000)), s]),
    );
    const rows: Record<string, { ew: number[]; go: number[]; diff: number[] }> =
      {
        "node Leases (kwok), renewTime → seen": { ew: [], go: [], diff: [] },
        "other Leases, renewTime → seen": { ew: [], go: [], diff: [] },
        "other Leases, update answered → seen": { ew: [], go: [], diff: [] },
      };
    let unmatched = 0;
    for (const s of goSamples) {
      const renewMs = Math.floor(s.renewUs / 1000);
      const ewAt = ew.at.get(key(s.id, renewMs));
      if (ewAt === undefined) {
        unmatched++;
        continue;
      }
      const goAt = Math.floor(s.atNs / 1e6);
      const node = s.id.startsWith("kube-node-lease/");
      const add = (row: string, ref: number) => {
        rows[row]!.ew.push(ewAt - ref);
        rows[row]!.go.push(goAt - ref);
        rows[row]!.diff.push(ewAt - goAt);
      };
      add(
        node
          ? "node Leases (kwok), renewTime → seen"
          : "other Leases, renewTime → seen",
        s.renewUs / 1000,
      );
      const a = answered.get(key(s.id, renewMs));
      if (a) add("other Leases, update answered → seen", a.atNs / 1e6);
    }
    console.log(
      `freshness (both clocks floored to the ms; ${unmatched} informer samples not seen by Earthworm):`,
    );
    for (const [row, v] of Object.entries(rows)) {
      if (v.ew.length === 0) continue;
      const mean = v.diff.reduce((a, b) => a + b, 0) / v.diff.length;
      console.log(
        `  ${row}: Earthworm ${summary(v.ew)}; informer ${
          summary(v.go)
        }; Earthworm − informer, same update: p50 ${
          quantile([...v.diff].sort((a, b) => a - b), 0.5).toFixed(0)
        } ms, mean ${mean.toFixed(2)} ms`,
      );
    }

    // kwok: node renewals and their lateness.
    const byNode = new Map<string, number[]>();
    for (const s of goSamples) {
      if (!s.id.startsWith("kube-node-lease/")) continue;
      const list = byNode.get(s.id) ?? [];
      list.push(s.renewUs / 1000);
      byNode.set(s.id, list);
    }
    const intervals: number[] = [];
    for (const times of byNode.values()) {
      times.sort((a, b) => a - b);
      for (let i = 1; i < times.length; i++) {
        intervals.push((times[i]! - times[i - 1]!) / 1000);
      }
    }
    const late = intervals.filter((v) => v > 12).length;
    const expired = intervals.filter((v) => v > 40).length;
    console.log(
      `kwok: ${
        ((goUpdates - otherRenewals) / seconds).toFixed(0)
      } node renewals/s of the ${
        (NODES / 10.2).toFixed(0)
      }/s due; interval between renewals of ${byNode.size} nodes: ${
        summary(intervals, "s", 2)
      }; ${late} (${
        (late / Math.max(1, intervals.length) * 100).toFixed(1)
      } %) over 12 s, ${expired} over the 40 s lease`,
    );
    if (profile && PROFILE !== undefined) {
      await Deno.writeTextFile(PROFILE, JSON.stringify(profile));
      console.log(
        `CPU profile of the leader over the window: ${PROFILE}; most samples of their own:\n${
          topSelf(profile, 25).join("\n")
        }`,
      );
    }
    console.log(
      `the leader's resident memory over the window (before the queries above): ${rssText}`,
    );
    console.log(
      `resident memory: Earthworm leader ${
        memory(leader.child.pid)
      }${await heap(
        leader.inspect,
      )}; client-go informer ${memory(informer.pid)}; on protobuf ${
        memory(informerPb.pid)
      }${other ? `; --compare leader ${memory(other.child.pid)}` : ""}`,
    );
  } finally {
    for (const c of children.reverse()) await c.stop().catch(() => {});
    await env.stop();
  }
  console.log(
    `live part done in ${((Date.now() - started) / 1000).toFixed(0)} s`,
  );
}

async function history(): Promise<void> {
  const speed = Number(args.values["history-speed"]);
  const otherEvery = Number(args.values["history-other-every"]);
  const [port] = freePorts(1);
  const load = new LoadSampler();
  const started = Date.now();
  const inspect = inspectFlags();
  const mock = await startEarthworm([
    "mock",
    "--host",
    "127.0.0.1",
    "--port",
    String(port),
    "--nodes",
    String(NODES),
    "--leases",
    String(OTHER),
    "--lease-interval",
    String(otherEvery),
    "--speed",
    String(speed),
    "--no-incidents",
  ], {
    timeoutMs: 60_000,
    ...entryOptions(ENTRY),
    ...(inspect && { denoFlags: inspect.denoFlags }),
  });
  const url = mock.url;
  try {
    const first = await (await fetch(`${url}/api/v1/hearts`))
      .json() as HeartsResponse;
    const simStart = Date.parse(first.generatedAt);
    console.log(
      `\nhistory: earthworm mock, ${NODES} nodes every 10 s and ${OTHER} other Leases every ${otherEvery} s, ${speed}× faster than wall time`,
    );
    let simNow = simStart;
    let peak = 0;
    while (simNow - simStart < 3_660_000) {
      await sleep(10_000);
      const body = await (await fetch(`${url}/api/v1/hearts?kind=lease`))
        .json() as HeartsResponse;
      simNow = Date.parse(body.generatedAt);
      peak = Math.max(peak, rss(mock.child.pid).rss);
    }
    // The beats held by a few hearts of each kind: an hour's worth?
    const hearts =
      (await (await fetch(`${url}/api/v1/hearts`)).json() as HeartsResponse)
        .hearts;
    const held: Record<string, number[]> = { node: [], lease: [] };
    for (const kind of ["node", "lease"] as const) {
      for (const h of hearts.filter((h) => h.kind === kind).slice(0, 20)) {
        const b = await (await fetch(
          `${url}/api/v1/hearts/${h.namespace}/${h.name}/beats`,
        )).json() as BeatsResponse;
        held[kind]!.push(b.beats.length);
      }
    }
    const avg = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
    const storeBytes = await metric(url, "earthworm_store_bytes");
    console.log(
      `after ${((simNow - simStart) / 60_000).toFixed(0)} simulated minutes (${
        ((Date.now() - started) / 1000).toFixed(0)
      } s, ${load.stop()}): ${hearts.length} hearts; beats held per heart: node ${
        avg(held.node!).toFixed(0)
      } (an hour: 360), other ${avg(held.lease!).toFixed(0)} (an hour: ${
        (3600 / otherEvery).toFixed(0)
      }); store ${(storeBytes / 2 ** 20).toFixed(1)} MiB`,
    );
    console.log(
      `resident memory with one hour of history: ${
        memory(mock.child.pid)
      } (sampled peak ${mib(peak)})${await heap(inspect?.inspect)}`,
    );
  } finally {
    await mock.stop();
  }
}

if (import.meta.main) {
  if (!args.values["no-live"]) await live();
  if (args.values.history) await history();
}
