/**
 * Leader election against a real kube-apiserver: in-process candidates with
 * their own clients, then separate processes stopped with SIGKILL and SIGTERM
 * (whose resident memory is measured as well).
 */
import assert from "node:assert/strict";
import { clusterPrereq, startCluster } from "./cluster/harness.ts";
import { KubeRestClient } from "../kube/rest_client.ts";
import { LeaderElector } from "../kube/leader_election.ts";
import { type LeaseLock, RestLeaseLock } from "../kube/lease_lock.ts";
import { killable } from "./cluster/killable_lock.ts";
import { configureLogger } from "../core/log.ts";

configureLogger({ level: "error" });
const req = clusterPrereq();

const LEASE_MS = 4_000;
const RENEW_MS = 3_000;
const RETRY_MS = 1_000;
/** Allowance for request round trips on a busy 2-core machine. */
const SLACK_MS = 500;

interface Interval {
  id: string;
  start: number;
  end: number;
}

/** Checks that no two leadership intervals overlap. */
function assertNeverTwoLeaders(intervals: Interval[]): void {
  const sorted = [...intervals].sort((a, b) => a.start - b.start);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1]!;
    const cur = sorted[i]!;
    assert.ok(
      cur.start >= prev.end,
      `${cur.id} led from ${cur.start} while ${prev.id} led until ${prev.end}`,
    );
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function until(
  what: string,
  timeoutMs: number,
  check: () => boolean,
): Promise<number> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > timeoutMs) {
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await sleep(20);
  }
  return Date.now();
}

function stats(values: number[]): string {
  const s = [...values].sort((a, b) => a - b);
  return `min ${s[0]} ms, median ${s[Math.floor(s.length / 2)]} ms, max ${
    s.at(-1)
  } ms over ${s.length}`;
}

interface Candidate {
  id: string;
  client: KubeRestClient;
  lock: LeaseLock & { kill(): void };
  stop: AbortController;
  run: Promise<void>;
  leadingSince: number | undefined;
}

Deno.test({
  name:
    "cluster: three in-process candidates elect one leader; failovers are timely and never overlap",
  ignore: req.ignore,
  async fn() {
    req.check();
    const cluster = await startCluster();
    const intervals: Interval[] = [];
    const live: Candidate[] = [];
    let next = 0;
    const spawn = () => {
      const id = `candidate-${next++}`;
      const client = new KubeRestClient(cluster.rest);
      const lock = killable(
        new RestLeaseLock(client, "default", "earthworm-leader"),
      );
      const c: Candidate = {
        id,
        client,
        lock,
        stop: new AbortController(),
        run: Promise.resolve(),
        leadingSince: undefined,
      };
      const elector = new LeaderElector({
        lock,
        identity: id,
        address: `http://10.0.0.${next}:8080`,
        leaseDurationMs: LEASE_MS,
        renewDeadlineMs: RENEW_MS,
        retryPeriodMs: RETRY_MS,
        callbacks: {
          onStartedLeading: () => c.leadingSince = Date.now(),
          onStoppedLeading: () => {
            intervals.push({ id, start: c.leadingSince!, end: Date.now() });
            c.leadingSince = undefined;
          },
        },
      });
      c.run = elector.run(c.stop.signal);
      live.push(c);
    };
    const retire = async (c: Candidate) => {
      c.stop.abort();
      await c.run;
      c.client.close();
      live.splice(live.indexOf(c), 1);
    };
    try {
      for (let i = 0; i < 3; i++) spawn();
      const abrupt: number[] = [];
      const graceful: number[] = [];
      for (let round = 0; round < 8; round++) {
        await until(
          "one leader",
          20_000,
          () => live.filter((c) => c.leadingSince).length === 1,
        );
        assert.equal(live.filter((c) => c.leadingSince).length, 1);
        await sleep(1_500 + Math.random() * RETRY_MS);
        const leader = live.find((c) => c.leadingSince)!;
        const kill = round % 2 === 0;
        const stoppedAt = Date.now();
        if (kill) leader.lock.kill(); // no request, not even a release, gets out
        await retire(leader);
        if (kill) intervals.at(-1)!.end = stoppedAt;
        const newAt = await until(
          "a new leader",
          20_000,
          () => live.some((c) => c.leadingSince),
        );
        (kill ? abrupt : graceful).push(newAt - stoppedAt);
        spawn();
      }
      console.log(
        `abrupt stop → new leader: ${
          stats(abrupt)
        } (lease ${LEASE_MS} ms, retry ${RETRY_MS} ms)`,
      );
      console.log(`graceful release → new leader: ${stats(graceful)}`);
      for (const ms of abrupt) {
        assert.ok(
          ms >= LEASE_MS - RETRY_MS,
          `takeover after ${ms} ms came before the lease could expire`,
        );
        assert.ok(
          ms <= LEASE_MS + RETRY_MS + SLACK_MS,
          `takeover after ${ms} ms is too late`,
        );
      }
      for (const ms of graceful) {
        assert.ok(ms <= 2 * RETRY_MS, `takeover after ${ms} ms is too late`);
      }
      const lease = await live[0]!.client.request<
        {
          metadata: { annotations?: Record<string, string> };
          spec: { holderIdentity: string };
        }
      >(
        "GET",
        "/apis/coordination.k8s.io/v1/namespaces/default/leases/earthworm-leader",
      );
      const holder = live.find((c) => c.leadingSince);
      assert.equal(lease.spec.holderIdentity, holder?.id);
      assert.match(
        lease.metadata.annotations?.["earthworm.dev/leader-address"] ?? "",
        /^http:\/\/10\.0\.0\.\d+:8080$/,
      );
    } finally {
      for (const c of [...live]) await retire(c);
      await cluster.stop();
    }
    assertNeverTwoLeaders(intervals);
  },
});

interface ProcEvent {
  t: number;
  id: string;
  event: string;
  leader?: string;
  hearts?: number;
}

class ElectorProcess {
  readonly events: ProcEvent[] = [];
  readonly child: Deno.ChildProcess;
  readonly done: Promise<void>;
  constructor(
    readonly id: string,
    dir: string,
    port: string,
    extra: string[] = [],
  ) {
    const script =
      new URL("./cluster/elector_main.ts", import.meta.url).pathname;
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        script,
        dir,
        port,
        id,
        String(LEASE_MS),
        String(RENEW_MS),
        String(RETRY_MS),
        ...extra,
      ],
      stdout: "piped",
      stderr: "inherit",
      stdin: "null",
    }).spawn();
    this.child = child;
    this.done = (async () => {
      const lines = child.stdout.pipeThrough(new TextDecoderStream());
      let buf = "";
      for await (const chunk of lines) {
        buf += chunk;
        let nl;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (line.startsWith("{")) this.events.push(JSON.parse(line));
        }
      }
      await child.status;
    })();
  }
  get leading(): boolean {
    const roles = this.events.filter((e) =>
      e.event === "leading" || e.event === "stopped"
    );
    return roles.at(-1)?.event === "leading";
  }
  rssKiB(): number {
    const status = Deno.readTextFileSync(`/proc/${this.child.pid}/status`);
    return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  }
}

Deno.test({
  name:
    "cluster: elector processes fail over after SIGKILL and SIGTERM; follower and leader memory",
  ignore: req.ignore,
  async fn() {
    req.check();
    const cluster = await startCluster();
    const procs: ElectorProcess[] = [];
    const port = new URL(cluster.server).port;
    try {
      await cluster.createNodes(200);
      for (let i = 0; i < 3; i++) {
        procs.push(
          new ElectorProcess(`proc-${i}`, cluster.dir, port, ["--watch"]),
        );
      }
      await until(
        "one leading process",
        30_000,
        () => procs.filter((p) => p.leading).length === 1,
      );
      let leader = procs.find((p) => p.leading)!;
      await until(
        "the leader's hub to hold 200 node hearts",
        60_000,
        () =>
          (leader.events.findLast((e) => e.event === "hearts")?.hearts ?? 0) >=
            200,
      );
      await sleep(5_000);
      const followers = procs.filter((p) => p !== leader);
      const leaderRss = leader.rssKiB();
      const followerRss = followers.map((p) => p.rssKiB());
      console.log(
        `resident memory: leader (elector + watcher + hub, ${
          leader.events.findLast((e) => e.event === "hearts")?.hearts
        } hearts) ` +
          `${(leaderRss / 1024).toFixed(0)} MiB; followers (elector only) ${
            followerRss.map((k) => (k / 1024).toFixed(0)).join(", ")
          } MiB`,
      );

      // SIGKILL: no release; a follower takes over once the lease expires.
      const killed = leader;
      const killedAt = Date.now();
      leader.child.kill("SIGKILL");
      await leader.done;
      const abrupt = (await until("a new leader after SIGKILL", 20_000, () =>
        followers.some((p) =>
          p.leading
        ))) - killedAt;
      leader = followers.find((p) =>
        p.leading
      )!;

      // SIGTERM: the leader releases; a follower takes over at its next attempt.
      const termAt = Date.now();
      leader.child.kill("SIGTERM");
      const rest = followers.filter((p) => p !== leader);
      const graceful = (await until("a new leader after SIGTERM", 20_000, () =>
        rest.some((p) =>
          p.leading
        ))) - termAt;
      await leader.done;
      console.log(
        `processes: SIGKILL → new leader ${abrupt} ms, SIGTERM → new leader ${graceful} ms`,
      );
      assert.ok(
        abrupt >= LEASE_MS - RETRY_MS &&
          abrupt <= LEASE_MS + RETRY_MS + SLACK_MS,
        `SIGKILL failover ${abrupt} ms`,
      );
      assert.ok(graceful <= 2 * RETRY_MS, `SIGTERM failover ${graceful} ms`);
      assert.ok(
        leader.events.some((e) =>
          e.event === "exit"
        ),
        "the terminated leader exited cleanly",
      );

      // Never two leaders: the killed one led until it was killed.
      const intervals: Interval[] = [];
      for (const p of procs) {
        let start: number | undefined;
        for (const e of p.events) {
          if (e.event === "leading") {
            start = e.t;
          }
          if (e.event === "stopped" && start !== undefined) {
            intervals.push({ id: p.id, start, end: e.t });
            start = undefined;
          }
        }
        if (start !== undefined) {
          intervals.push({
            id: p.id,
            start,
            end: p === killed ? killedAt : Date.now(),
          });
        }
      }
      assertNeverTwoLeaders(intervals);
    } finally {
      for (const p of procs) {
        try {
          p.child.kill("SIGKILL");
        } catch {
          // already exited
        }
        await p.done;
      }
      await cluster.stop();
    }
  },
});
