/**
 * The API-server load of Earthworm's leader election, for issue 12 item 2
 * (a script, not part of `deno task bench`: it needs the control plane of
 * `tests/cluster/` and prints measurements instead of asserting):
 *
 *   deno run -A tests/bench/election_requests.ts [--candidates 100,1000]
 *     [--per-client 100] [--window 60] [--warmup 20] [--failovers 2]
 *
 * For each count of `--candidates`, on a private control plane whose audit
 * log records every request (EARTHWORM_AUDIT_ALL=1):
 *
 * 1. Starts that many candidates in this process, each a `LeaderElector`
 *    on a `RestLeaseLock` of its own, as `earthworm agent` builds them, with
 *    the agent's default timings (15 s lease, 10 s renew deadline, 2 s
 *    retry). Real agent processes cost about 100 MB each, so the candidates
 *    share a process; every `--per-client` of them share one HTTP/2
 *    connection (by default each has its own, as agents do: with 100
 *    streams on one connection a request of a new leader was seen to hang
 *    past its abort). Each count uses its own election Lease.
 * 2. Waits until one leads and every follower's watch of the Lease is open
 *    (the audit log shows one watch per follower), then `--warmup` seconds.
 * 3. Counts, over `--window` seconds, the requests that name the election
 *    Lease in the audit log (watches once, when their answer starts; other
 *    requests when they complete), by verb: the requests a second.
 * 4. `--failovers` times: the leader vanishes without a word (its requests
 *    fail from then on, as when its node dies), the time until another
 *    leads and the requests of that failover; then one graceful stop (the
 *    leader releases the Lease).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { startCluster } from "../cluster/harness.ts";
import { KubeRestClient } from "../../kube/rest_client.ts";
import { LeaderElector } from "../../kube/leader_election.ts";
import { type LeaseLock, RestLeaseLock } from "../../kube/lease_lock.ts";
import { killable } from "../cluster/killable_lock.ts";
import { configureLogger } from "../../core/log.ts";
import { sleep, until } from "../wait.ts";
import { LoadSampler } from "./_measure.ts";

const args = parseArgs({
  args: Deno.args,
  options: {
    candidates: { type: "string", default: "100,1000" },
    "per-client": { type: "string", default: "1" },
    window: { type: "string", default: "60" },
    warmup: { type: "string", default: "20" },
    failovers: { type: "string", default: "2" },
    "log-level": { type: "string", default: "error" },
  },
});
const COUNTS = args.values.candidates!.split(",").map(Number);
const PER_CLIENT = Number(args.values["per-client"]);
const WINDOW_S = Number(args.values.window);
const WARMUP_S = Number(args.values.warmup);
const FAILOVERS = Number(args.values.failovers);
const NAMESPACE = "earthworm";
const LEASE_MS = 15_000;
const RETRY_MS = 2_000;

configureLogger({
  level: args.values["log-level"] as "debug" | "info" | "warn" | "error",
});

interface AuditEvent {
  stage: string;
  verb: string;
  requestURI: string;
  stageTimestamp: string;
  objectRef?: { name?: string };
  responseStatus?: { code?: number };
}

/** The audit events that name Lease `name` in `earthworm`, between `from` and `to` (ms). */
function electionRequests(
  dir: string,
  name: string,
  from: number,
  to: number,
): AuditEvent[] {
  const out: AuditEvent[] = [];
  const path = `/namespaces/${NAMESPACE}/leases`;
  for (const file of [`${dir}/audit.log`]) {
    let text: string;
    try {
      text = Deno.readTextFileSync(file);
    } catch {
      continue;
    }
    for (const line of text.split("\n")) {
      if (!line.includes(name)) continue;
      const ev = JSON.parse(line) as AuditEvent;
      const uri = ev.requestURI;
      if (!uri.includes(path)) continue;
      const named = ev.objectRef?.name === name ||
        new URLSearchParams(uri.split("?")[1] ?? "").get("fieldSelector") ===
          `metadata.name=${name}`;
      if (!named) continue;
      const watch = ev.verb === "watch";
      if (ev.stage !== (watch ? "ResponseStarted" : "ResponseComplete")) {
        continue;
      }
      const at = Date.parse(ev.stageTimestamp);
      if (at >= from && at < to) out.push(ev);
    }
  }
  return out;
}

function byVerb(events: AuditEvent[], seconds: number): string {
  const counts = new Map<string, number>();
  for (const e of events) counts.set(e.verb, (counts.get(e.verb) ?? 0) + 1);
  const parts = [...counts].sort().map(([v, n]) => `${v} ${n}`);
  return `${events.length} (${(events.length / seconds).toFixed(3)}/s${
    parts.length ? `: ${parts.join(", ")}` : ""
  })`;
}

interface Candidate {
  id: string;
  lock: LeaseLock & { kill(): void };
  stop: AbortController;
  run: Promise<void>;
  leading: boolean;
}

async function measure(
  cluster: Awaited<ReturnType<typeof startCluster>>,
  n: number,
): Promise<void> {
  const name = `election-${n}-bench`;
  const clients: KubeRestClient[] = [];
  const candidates: Candidate[] = [];
  let leaderSince = 0;
  const spawn = (i: number) => {
    if (i % PER_CLIENT === 0) clients.push(new KubeRestClient(cluster.rest));
    const client = clients.at(-1)!;
    const c: Candidate = {
      id: `candidate-${i}`,
      lock: killable(new RestLeaseLock(client, NAMESPACE, name)),
      stop: new AbortController(),
      run: Promise.resolve(),
      leading: false,
    };
    const elector = new LeaderElector({
      lock: c.lock,
      identity: c.id,
      address: `http://10.1.${Math.floor(i / 250)}.${i % 250}:8080`,
      leaseDurationMs: LEASE_MS,
      renewDeadlineMs: 10_000,
      retryPeriodMs: RETRY_MS,
      callbacks: {
        onStartedLeading: () => {
          c.leading = true;
          leaderSince = Date.now();
        },
        onStoppedLeading: () => c.leading = false,
      },
    });
    c.run = elector.run(c.stop.signal);
    candidates.push(c);
  };
  const leaders = () => candidates.filter((c) => c.leading);
  const load = new LoadSampler();
  const started = Date.now();
  try {
    // Started 100 at a time, as a DaemonSet's pods come up over a while.
    for (let i = 0; i < n; i++) {
      spawn(i);
      if (i % 100 === 99) await sleep(200);
    }
    await until("one leader", 60_000, () => leaders().length === 1, 100);
    const watching = await until(
      `${n - 1} followers watching the election Lease`,
      300_000,
      () =>
        electionRequests(cluster.dir, name, started, Infinity)
            .filter((e) => e.verb === "watch").length >= n - 1 && Date.now(),
      1_000,
    );
    const startup = electionRequests(cluster.dir, name, started, Date.now());
    console.log(
      `\n${n} candidates (${clients.length} connections): one leader and every follower watching after ${
        ((watching - started) / 1000).toFixed(0)
      } s; requests until then ${byVerb(startup, (watching - started) / 1000)}`,
    );
    await sleep(WARMUP_S * 1000);
    const t0 = Date.now();
    await sleep(WINDOW_S * 1000);
    const t1 = Date.now();
    // The audit log is written as requests complete: let it catch up.
    await sleep(2_000);
    const steady = electionRequests(cluster.dir, name, t0, t1);
    console.log(
      `  steady state, ${((t1 - t0) / 1000).toFixed(0)} s: ${
        byVerb(steady, (t1 - t0) / 1000)
      } in all`,
    );

    for (let round = 0; round <= FAILOVERS; round++) {
      const graceful = round === FAILOVERS;
      const leader = leaders()[0]!;
      // Not right after a renewal: somewhere in the retry period.
      await sleep(Math.random() * RETRY_MS);
      const before = leaderSince;
      const stoppedAt = Date.now();
      if (!graceful) leader.lock.kill();
      leader.stop.abort();
      // Its run ends within the renew deadline (10 s) even if a request hangs.
      await until(
        "the stopped leader's run to end",
        30_000,
        () =>
          Promise.race([
            leader.run.then(() => true),
            sleep(500).then(() => false),
          ]),
      );
      candidates.splice(candidates.indexOf(leader), 1);
      const newAt = await until(
        "a new leader",
        60_000,
        () => leaderSince !== before && leaders().length === 1 && leaderSince,
        20,
      );
      await sleep(5_000);
      const during = electionRequests(
        cluster.dir,
        name,
        stoppedAt,
        newAt + 3_000,
      );
      console.log(
        `  ${
          graceful ? "graceful release" : "leader vanished"
        } → new leader after ${
          ((newAt - stoppedAt) / 1000).toFixed(2)
        } s (bound: lease ${LEASE_MS / 1000} s + retry ${
          RETRY_MS / 1000
        } s after its last renewal); requests from the stop until 3 s after the takeover: ${
          byVerb(during, (newAt + 3_000 - stoppedAt) / 1000)
        }`,
      );
    }
  } finally {
    for (const c of candidates) c.stop.abort();
    await Promise.all(candidates.map((c) => c.run));
    for (const c of clients) c.close();
    console.log(
      `  ${n} candidates done in ${
        ((Date.now() - started) / 1000).toFixed(0)
      } s, ${load.stop()}`,
    );
  }
}

if (import.meta.main) {
  Deno.env.set("EARTHWORM_AUDIT_ALL", "1");
  const cluster = await startCluster();
  try {
    await cluster.kubectl(["create", "namespace", NAMESPACE]);
    for (const n of COUNTS) await measure(cluster, n);
  } finally {
    await cluster.stop();
  }
}
