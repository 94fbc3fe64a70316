import assert from "node:assert/strict";
import { FakeClock } from "../core/clock.ts";
import { configureLogger } from "../core/log.ts";
import { KubeApiError } from "./rest_client.ts";
import type { Lease, LeaseEvent, LeaseSink } from "../core/lease_types.ts";
import {
  type LeaseList,
  type LeaseSource,
  newWatchStats,
  type RawWatchEvent,
  runLeaseWatch,
  toLease,
  type WatchRequest,
  WatchStatusError,
} from "./watch_loop.ts";
import {
  backoffDelay,
  classifyFailure,
  decideAfterListFailure,
  decideAfterWatch,
  DEFAULT_BACKOFF,
  watchTimeoutSeconds,
} from "./watch_policy.ts";

configureLogger({ level: "error" });

const P = { initialMs: 1000, maxMs: 30_000, factor: 2, jitter: 0.5 };

Deno.test("backoff doubles per failure, adds at most the jitter fraction and never passes the cap", () => {
  assert.deepEqual(
    [0, 1, 2, 3, 4, 5, 6].map((a) => backoffDelay(a, P, () => 0)),
    [1000, 2000, 4000, 8000, 16000, 30000, 30000],
  );
  assert.equal(backoffDelay(1, P, () => 1), 3000);
  assert.equal(backoffDelay(4, P, () => 1), 24000);
  assert.equal(backoffDelay(5, P, () => 1), 30000);
  assert.equal(backoffDelay(0, DEFAULT_BACKOFF, () => 0.5), 1200);
});

function refused(): Error {
  const cause = Object.assign(
    new Error("connect ECONNREFUSED 127.0.0.1:6443"),
    { code: "ECONNREFUSED" },
  );
  return new TypeError("fetch failed", { cause });
}

Deno.test("failures are classified as gone, unreachable or other", () => {
  const cases: [unknown, { gone: boolean; unreachable: boolean }][] = [
    [new KubeApiError(410, "GET /x: HTTP 410: too old"), {
      gone: true,
      unreachable: false,
    }],
    [new WatchStatusError(410, "too old resource version: 5 (90)"), {
      gone: true,
      unreachable: false,
    }],
    [new Error("too old resource version: 1 (2)"), {
      gone: true,
      unreachable: false,
    }],
    [refused(), { gone: false, unreachable: true }],
    [
      new TypeError("error sending request: Connection refused (os error 111)"),
      { gone: false, unreachable: true },
    ],
    [new DOMException("Watch sent nothing", "TimeoutError"), {
      gone: false,
      unreachable: true,
    }],
    [new KubeApiError(503, "unavailable"), { gone: false, unreachable: true }],
    [new KubeApiError(403, "forbidden"), { gone: false, unreachable: false }],
    [new SyntaxError("Unexpected token"), { gone: false, unreachable: false }],
  ];
  for (const [err, want] of cases) {
    const f = classifyFailure(err);
    assert.deepEqual(
      { gone: f.gone, unreachable: f.unreachable },
      want,
      String(err),
    );
    assert.ok(f.reason.length > 0);
  }
});

Deno.test("after a watch: re-watch at once after a healthy end, relist after 410, resume after an outage, back off on failures", () => {
  const r = () => 0;
  const ok = { opened: true, durationMs: 300_000, events: 10 };
  const quick = { opened: true, durationMs: 10, events: 0 };
  const refusedAtOnce = {
    opened: false,
    durationMs: 5,
    events: 0,
    error: refused(),
  };
  const cases: [
    string,
    Parameters<typeof decideAfterWatch>[0],
    { failures: number; gones: number },
    object,
  ][] = [
    ["healthy end", ok, { failures: 3, gones: 2 }, {
      next: "watch",
      delayMs: 0,
      failures: 0,
      gones: 0,
    }],
    ["end without anything", quick, { failures: 2, gones: 0 }, {
      next: "watch",
      delayMs: 4000,
      failures: 3,
      gones: 0,
    }],
    ["first 410", { ...quick, error: new WatchStatusError(410, "Gone") }, {
      failures: 2,
      gones: 0,
    }, {
      next: "list",
      delayMs: 0,
      failures: 2,
      gones: 1,
    }],
    ["repeated 410", { ...quick, error: new WatchStatusError(410, "Gone") }, {
      failures: 0,
      gones: 2,
    }, {
      next: "list",
      delayMs: 2000,
      failures: 0,
      gones: 3,
    }],
    [
      "410 after a healthy watch",
      { ...ok, error: new KubeApiError(410, "Gone") },
      { failures: 0, gones: 5 },
      {
        next: "list",
        delayMs: 0,
        failures: 0,
        gones: 1,
      },
    ],
    ["connection refused", refusedAtOnce, { failures: 1, gones: 0 }, {
      next: "watch",
      delayMs: 2000,
      failures: 2,
      gones: 0,
      down: "ECONNREFUSED: fetch failed: connect ECONNREFUSED 127.0.0.1:6443",
    }],
    ["stream dropped after a healthy while", { ...ok, error: refused() }, {
      failures: 4,
      gones: 0,
    }, {
      next: "watch",
      delayMs: 1000,
      failures: 1,
      gones: 0,
      down: "ECONNREFUSED: fetch failed: connect ECONNREFUSED 127.0.0.1:6443",
    }],
    ["server error", { ...quick, error: new KubeApiError(500, "boom") }, {
      failures: 0,
      gones: 0,
    }, {
      next: "watch",
      delayMs: 1000,
      failures: 1,
      gones: 0,
    }],
  ];
  for (const [name, outcome, state, want] of cases) {
    assert.deepEqual(decideAfterWatch(outcome, state, P, r), want, name);
  }
  const list = decideAfterListFailure(
    new KubeApiError(403, "forbidden"),
    { failures: 0, gones: 0 },
    P,
    r,
  );
  assert.deepEqual([list.next, list.delayMs, list.failures], ["list", 1000, 1]);
  assert.match(list.down ?? "", /HTTP 403/);
});

Deno.test("server-side watch timeouts spread between the minimum and twice it", () => {
  assert.equal(watchTimeoutSeconds(300, () => 0), 300);
  assert.equal(watchTimeoutSeconds(300, () => 0.999), 599);
});

Deno.test("toLease keeps MicroTime strings exactly and turns Date objects into RFC 3339", () => {
  const lease = toLease({
    metadata: {
      name: "n1",
      namespace: "kube-node-lease",
      resourceVersion: "7",
      creationTimestamp: new Date("2026-01-01T00:00:00Z"),
    },
    spec: {
      holderIdentity: "n1",
      leaseDurationSeconds: 40,
      renewTime: "2026-01-01T00:00:10.123456Z",
      extra: 1,
    },
  });
  assert.deepEqual(lease, {
    metadata: {
      name: "n1",
      namespace: "kube-node-lease",
      resourceVersion: "7",
      creationTimestamp: "2026-01-01T00:00:00Z",
    },
    spec: {
      holderIdentity: "n1",
      leaseDurationSeconds: 40,
      acquireTime: null,
      renewTime: "2026-01-01T00:00:10.123456Z",
      leaseTransitions: null,
    },
  });
});

function lease(name: string, renew: string, rv: string): Lease {
  return {
    metadata: { name, namespace: "kube-node-lease", resourceVersion: rv },
    spec: { holderIdentity: name, leaseDurationSeconds: 40, renewTime: renew },
  };
}

type Step =
  | { list: LeaseList }
  | { listError: unknown }
  | {
    watchFrom: string;
    open?: false;
    events: RawWatchEvent[];
    then: "end" | unknown;
  };

class ScriptedSource implements LeaseSource {
  calls: string[] = [];
  constructor(
    private steps: Step[],
    private clock: FakeClock,
    private done: () => void,
  ) {}
  #next(): Step | undefined {
    const s = this.steps.shift();
    if (!s) this.done();
    return s;
  }
  list(): Promise<LeaseList> {
    const s = this.#next();
    this.calls.push("list");
    if (s && "list" in s) return Promise.resolve(s.list);
    if (s && "listError" in s) return Promise.reject(s.listError);
    return new Promise(() => {});
  }
  async watch(req: WatchRequest) {
    this.calls.push(`watch@${req.resourceVersion}`);
    const s = this.#next();
    if (!s || !("watchFrom" in s)) {
      await new Promise<void>((resolve) =>
        req.signal.aborted
          ? resolve()
          : req.signal.addEventListener("abort", () => resolve(), {
            once: true,
          })
      );
      return;
    }
    assert.equal(req.resourceVersion, s.watchFrom);
    if (s.open !== false) req.onOpen();
    for (const e of s.events) req.onEvent(e);
    if (s.then !== "end") throw s.then;
    await this.clock.sleep(5_000, req.signal);
  }
}

class RecordingSink implements LeaseSink {
  log: string[] = [];
  event(e: LeaseEvent) {
    this.log.push(
      `${e.type} ${e.object.metadata.name} ${e.object.spec?.renewTime}`,
    );
  }
  resync(leases: Lease[]) {
    this.log.push(`resync ${leases.map((l) => l.metadata.name).join(",")}`);
  }
  source(up: boolean, reason: string | undefined) {
    this.log.push(up ? "up" : `down ${reason?.split(":")[0]}`);
  }
}

Deno.test("watch loop resumes from bookmarks, reports outages, resumes after them, relists on 410 and never gives up", async () => {
  const clock = new FakeClock();
  const stop = new AbortController();
  const source = new ScriptedSource(
    [
      { listError: refused() },
      { listError: new KubeApiError(403, "forbidden") },
      { list: { items: [lease("n1", "t0", "9")], resourceVersion: "10" } },
      {
        watchFrom: "10",
        events: [
          { type: "MODIFIED", object: lease("n1", "t1", "11") },
          { type: "BOOKMARK", object: { metadata: { resourceVersion: "15" } } },
        ],
        then: "end",
      },
      {
        watchFrom: "15",
        events: [{ type: "ADDED", object: lease("n2", "t1", "16") }],
        then: refused(),
      },
      { watchFrom: "16", open: false, events: [], then: refused() },
      {
        watchFrom: "16",
        events: [{
          type: "ERROR",
          object: {
            kind: "Status",
            code: 410,
            message: "too old resource version: 16 (30)",
          },
        }],
        then: "end",
      },
      {
        list: {
          items: [lease("n1", "t1", "11"), lease("n2", "t2", "17")],
          resourceVersion: "20",
        },
      },
      {
        watchFrom: "20",
        events: [{ type: "DELETED", object: lease("n2", "t3", "33") }],
        then: new KubeApiError(500, "boom"),
      },
    ],
    clock,
    () => stop.abort(),
  );
  const sink = new RecordingSink();
  const stats = newWatchStats();
  const started = clock.now();
  const run = runLeaseWatch({
    source,
    sink,
    signal: stop.signal,
    clock,
    backoff: P,
    random: () => 0,
    stats,
  });
  for (let i = 0; i < 1000 && !stop.signal.aborted; i++) {
    await clock.advance(100);
  }
  await run;
  assert.deepEqual(sink.log, [
    "down ECONNREFUSED",
    "up",
    "resync n1",
    "MODIFIED n1 t1",
    "ADDED n2 t1",
    "down ECONNREFUSED",
    "up",
    "resync n1,n2",
    "DELETED n2 t3",
  ]);
  assert.deepEqual(source.calls, [
    "list",
    "list",
    "list",
    "watch@10",
    "watch@15",
    "watch@16",
    "watch@16",
    "list",
    "watch@20",
    "watch@33",
  ]);
  // backoff: 1 s + 2 s (lists), 5 s (healthy watch), 1 s + 2 s (outage), 1 s (500)
  assert.equal(clock.now() - started, 12_000);
  assert.equal(stats.relistsAfterGone, 1);
  assert.equal(stats.bookmarks, 1);
  assert.equal(stats.resourceVersions[""], "33");
  assert.equal(clock.pending, 0);
});

Deno.test("watch loop with namespaces lists each, resyncs them together and watches each from its own version", async () => {
  const clock = new FakeClock();
  const stop = new AbortController();
  const seen: string[] = [];
  const source: LeaseSource = {
    list: (ns) =>
      Promise.resolve({
        items: [lease(`${ns}-a`, "t", "1")],
        resourceVersion: ns === "a" ? "5" : "7",
      }),
    watch: (req) => {
      seen.push(`${req.namespace}@${req.resourceVersion}`);
      if (seen.length === 2) queueMicrotask(() => stop.abort());
      return new Promise<void>((resolve) =>
        req.signal.aborted
          ? resolve()
          : req.signal.addEventListener("abort", () => resolve(), {
            once: true,
          })
      );
    },
  };
  const sink = new RecordingSink();
  await runLeaseWatch({
    source,
    sink,
    namespaces: ["a", "b", "a"],
    signal: stop.signal,
    clock,
  });
  assert.deepEqual(sink.log, ["up", "resync a-a,b-a"]);
  assert.deepEqual(seen, ["a@5", "b@7"]);
});
