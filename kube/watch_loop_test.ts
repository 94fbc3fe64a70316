import assert from "node:assert/strict";
import { FakeClock } from "../core/fake_clock.ts";
import { configureLogger } from "../core/log.ts";
import type { Lease, LeaseEvent, LeaseSink } from "../core/lease_types.ts";
import type {
  LeaseList,
  LeaseSource,
  RawWatchEvent,
  WatchRequest,
} from "../core/lease_source.ts";
import { KubeApiError } from "./rest_client.ts";
import { newWatchStats, runLeaseWatch } from "./watch_loop.ts";

configureLogger({ level: "error" });

const P = { initialMs: 1000, maxMs: 30_000, factor: 2, jitter: 0.5 };

function refused(): Error {
  const cause = Object.assign(
    new Error("connect ECONNREFUSED 127.0.0.1:6443"),
    { code: "ECONNREFUSED" },
  );
  return new TypeError("fetch failed", { cause });
}

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
  ping(): Promise<void> {
    return Promise.resolve();
  }
  read(): Promise<Lease | null> {
    return Promise.resolve(null);
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
    ping: () => Promise.resolve(),
    read: () => Promise.resolve(null),
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

Deno.test("watch loop hands a Lease decoded from protobuf on as it is, and converts JSON", async () => {
  const clock = new FakeClock();
  const stop = new AbortController();
  const decoded = lease("n1", "2026-03-01T10:00:00.000000Z", "2");
  const json = { ...lease("n2", "2026-03-01T10:00:01.000000Z", "3"), x: 1 };
  const got: Lease[] = [];
  const source: LeaseSource = {
    ping: () => Promise.resolve(),
    read: () => Promise.resolve(null),
    list: () => Promise.resolve({ items: [], resourceVersion: "1" }),
    watch: (req) => {
      req.onOpen();
      req.onEvent({ type: "MODIFIED", object: decoded, lease: true });
      req.onEvent({ type: "MODIFIED", object: json });
      queueMicrotask(() => stop.abort());
      return new Promise<void>((resolve) =>
        req.signal.addEventListener("abort", () => resolve(), { once: true })
      );
    },
  };
  await runLeaseWatch({
    source,
    sink: {
      event: (e) => got.push(e.object),
      resync() {},
      source() {},
    },
    signal: stop.signal,
    clock,
  });
  assert.equal(got.length, 2);
  assert.equal(got[0], decoded, "the decoded Lease itself, not a copy");
  assert.notEqual(got[1], json);
  assert.equal("x" in got[1]!, false, "JSON converted to the Lease shape");
  assert.equal(got[1]!.metadata.name, "n2");
});
