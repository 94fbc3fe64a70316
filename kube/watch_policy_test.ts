import assert from "node:assert/strict";
import { KubeApiError } from "./rest_client.ts";
import {
  backoffDelay,
  classifyFailure,
  decideAfterListFailure,
  decideAfterWatch,
  DEFAULT_BACKOFF,
  DEFAULT_LIVENESS,
  judgePing,
  watchTimeoutSeconds,
} from "./watch_policy.ts";
import { WatchStatusError } from "./watch_loop.ts";

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

Deno.test("a liveness read is silent when it times out or cannot reach the server, not when the server answers with an error", () => {
  const L = { periodMs: 1000, timeoutMs: 3000 };
  assert.deepEqual(judgePing({ ok: true }, L), { silent: false });
  assert.deepEqual(judgePing({ ok: false, timedOut: true }, L), {
    silent: true,
    reason: "the API server did not answer a Lease read within 3 s",
  });
  const refusedPing = judgePing(
    { ok: false, timedOut: false, error: refused() },
    L,
  );
  assert.equal(refusedPing.silent, true);
  assert.match(
    (refusedPing as { reason: string }).reason,
    /^ECONNREFUSED: fetch failed/,
  );
  assert.equal(
    judgePing({
      ok: false,
      timedOut: false,
      error: new KubeApiError(503, "GET /x: HTTP 503: unavailable"),
    }, L).silent,
    true,
  );
  for (const code of [403, 429, 500]) {
    assert.deepEqual(
      judgePing({
        ok: false,
        timedOut: false,
        error: new KubeApiError(code, `GET /x: HTTP ${code}`),
      }, L),
      { silent: false },
      `HTTP ${code} is an answer`,
    );
  }
  assert.equal(DEFAULT_LIVENESS.periodMs + DEFAULT_LIVENESS.timeoutMs, 4000);
});

Deno.test("a watch ended because the view is stale relists at once, with the source down, and backs off when that repeats", () => {
  const stale = "Lease a/b was renewed on the API server";
  const first = decideAfterWatch(
    { opened: true, durationMs: 60_000, events: 10, stale },
    { failures: 0, gones: 0 },
    P,
    () => 0,
  );
  assert.deepEqual(first, {
    next: "list",
    delayMs: 0,
    failures: 0,
    gones: 1,
    down: stale,
  });
  const again = decideAfterWatch(
    { opened: true, durationMs: 10, events: 0, stale },
    first,
    P,
    () => 0,
  );
  assert.equal(again.next, "list");
  assert.equal(again.delayMs, 1000);
});
