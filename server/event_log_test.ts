import assert from "node:assert/strict";
import { EventLog } from "./event_log.ts";
import type { SourceState } from "../core/api_types.ts";

const source: SourceState = {
  kind: "mock",
  name: "t",
  connected: true,
  since: "2026-01-01T00:00:00Z",
  timeScale: 1,
};

Deno.test("event ids increase from the first id", () => {
  const log = new EventLog({ firstId: 100 });
  assert.equal(log.lastId, 99);
  assert.equal(log.publishJson("batch", JSON.stringify(source)).id, 100);
  assert.equal(log.publishJson("batch", JSON.stringify(source)).id, 101);
  assert.equal(log.lastId, 101);
});

Deno.test("since returns what a client missed while it is still held", () => {
  const log = new EventLog({ firstId: 1, capacity: 5 });
  for (let i = 0; i < 8; i++) {
    log.publishJson("batch", JSON.stringify({ ...source, name: `e${i}` }));
  }
  // Held: ids 4..8.
  assert.deepEqual(log.since(5)!.map((e) => e.id), [6, 7, 8]);
  assert.deepEqual(log.since(3)!.map((e) => e.id), [4, 5, 6, 7, 8]);
  assert.deepEqual(log.since(8), []);
  assert.equal(
    log.since(2),
    null,
    "event 3 is gone: the client needs a snapshot",
  );
  assert.equal(log.since(9), null, "an id from another log");
});

Deno.test("subscribers receive events published after they subscribed", async () => {
  const log = new EventLog({ firstId: 1 });
  log.publishJson("batch", JSON.stringify(source));
  const sub = log.subscribe();
  log.publishJson("batch", JSON.stringify({ ...source, name: "x" }));
  const got = await sub.take(1000);
  assert.deepEqual(got.map((e) => e.id), [2]);
  assert.equal(JSON.parse(got[0]!.data).name, "x");
  sub.close();
  assert.equal(log.subscribers, 0);
});

Deno.test("take waits for the next event and returns empty on timeout", async () => {
  const log = new EventLog({ firstId: 1 });
  const sub = log.subscribe();
  assert.deepEqual(await sub.take(5), []);
  const pending = sub.take(10_000);
  log.publishJson("batch", JSON.stringify(source));
  assert.equal((await pending).length, 1);
  sub.close();
});

Deno.test("a subscriber that falls behind is dropped, not buffered", () => {
  const log = new EventLog({ firstId: 1, maxQueue: 10 });
  const slow = log.subscribe();
  for (let i = 0; i < 11; i++) log.publishJson("batch", JSON.stringify(source));
  assert.equal(slow.closed, true);
  assert.equal(slow.reason, "overflow");
  assert.equal(slow.signal.aborted, true);
  assert.equal(slow.queued, 0);
  assert.equal(log.dropped, 1);
  assert.equal(log.subscribers, 0);
});

Deno.test("closeAll ends every subscription and wakes waiting takers", async () => {
  const log = new EventLog({ firstId: 1 });
  const sub = log.subscribe();
  const pending = sub.take(60_000);
  log.closeAll();
  assert.deepEqual(await pending, []);
  assert.equal(sub.closed, true);
  assert.equal(log.dropped, 0);
});

Deno.test("an event is serialised once: every subscriber is handed the same bytes", async () => {
  const log = new EventLog({ firstId: 7 });
  const subs = [log.subscribe(), log.subscribe(), log.subscribe()];
  const published = log.publishJson("batch", JSON.stringify(source));
  const got = await Promise.all(subs.map((s) => s.take(1000)));
  for (const [e] of got) assert.equal(e!.frame, published.frame);
  assert.equal(
    new TextDecoder().decode(published.frame),
    `id: 7\nevent: batch\ndata: ${JSON.stringify(source)}\n\n`,
  );
  assert.deepEqual(JSON.parse(published.data), source);
  log.closeAll();
});

Deno.test("a subscriber is dropped when its queued bytes pass the limit, whatever the count", () => {
  const log = new EventLog({ firstId: 1, maxQueue: 1000, maxQueueBytes: 4096 });
  const slow = log.subscribe();
  const big = { ...source, name: "x".repeat(1500) };
  log.publishJson("batch", JSON.stringify(big));
  log.publishJson("batch", JSON.stringify(big));
  assert.equal(slow.closed, false);
  assert.ok(slow.queuedBytes > 3000 && slow.queuedBytes <= 4096);
  log.publishJson("batch", JSON.stringify(big));
  assert.equal(slow.reason, "overflow");
  assert.equal(slow.queuedBytes, 0);
  assert.equal(log.queuedBytes, 0);
  assert.equal(log.dropped, 1);
});

Deno.test("take hands over at most a chunk's worth of bytes and keeps the rest queued", async () => {
  const log = new EventLog({ firstId: 100 }); // ids of one length: one size
  const sub = log.subscribe();
  for (let i = 0; i < 10; i++) log.publishJson("batch", JSON.stringify(source));
  const size = sub.queuedBytes / 10;
  const first = await sub.take(0, size * 3);
  assert.equal(first.length, 3);
  assert.equal(sub.queued, 7);
  assert.equal(sub.queuedBytes, size * 7);
  assert.equal((await sub.take(0)).length, 7);
  assert.equal(sub.queuedBytes, 0);
  sub.close();
});

Deno.test("the resumption ring is bounded in bytes as well as events", () => {
  const log = new EventLog({ firstId: 1, capacity: 100, capacityBytes: 2000 });
  const big = { ...source, name: "y".repeat(400) };
  for (let i = 0; i < 50; i++) log.publishJson("batch", JSON.stringify(big));
  assert.ok(log.heldBytes <= 2000, `${log.heldBytes} bytes held`);
  const held = log.since(log.lastId - 3);
  assert.deepEqual(held!.map((e) => e.id), [48, 49, 50]);
  assert.equal(log.since(1), null, "the oldest are gone");
});

Deno.test("preload refuses a backlog that would not fit, without dropping the subscriber", () => {
  const log = new EventLog({ firstId: 1, maxQueue: 5 });
  for (let i = 0; i < 8; i++) log.publishJson("batch", JSON.stringify(source));
  const sub = log.subscribe();
  assert.equal(sub.preload(log.since(0)!), false);
  assert.equal(sub.closed, false);
  assert.equal(sub.queued, 0);
  assert.equal(sub.preload(log.since(4)!), true);
  assert.equal(sub.queued, 4);
  sub.close();
});

Deno.test("a resyncing subscriber that falls behind skips to the newest event and is owed a snapshot, once", async () => {
  const log = new EventLog({ firstId: 1, maxQueue: 3 });
  const sub = log.subscribe({ resync: true });
  for (let i = 0; i < 4; i++) log.publishJson("batch", JSON.stringify(i));
  assert.equal(sub.closed, false, "not dropped");
  assert.equal(sub.lagged, true);
  assert.equal(log.lagged, 1);
  assert.equal(sub.queued, 0, "what it missed is skipped");
  assert.deepEqual(await sub.take(1000), [], "nothing until it resumes");
  // It resumes (after a snapshot of the state at event 4) and goes on.
  sub.resume();
  assert.equal(sub.lagged, false);
  log.publishJson("batch", JSON.stringify("next"));
  assert.deepEqual((await sub.take(1000)).map((e) => e.id), [5]);
  // Falling behind again is a new lag; but falling as far behind while
  // still owed a snapshot means it is stalled: dropped.
  for (let i = 0; i < 4; i++) log.publishJson("batch", JSON.stringify(i));
  assert.equal(sub.lagged, true);
  assert.equal(log.lagged, 2);
  for (let i = 0; i < 4; i++) log.publishJson("batch", JSON.stringify(i));
  assert.equal(sub.reason, "overflow");
  assert.equal(log.dropped, 1);
});

Deno.test("after a discontinuity nothing before it can be resumed, and ids go on increasing", () => {
  const log = new EventLog({ firstId: 1 });
  log.publishJson("batch", "{}");
  log.publishJson("batch", "{}");
  assert.deepEqual(log.since(1)?.map((e) => e.id), [2]);
  log.discontinue();
  assert.equal(log.heldBytes, 0);
  assert.equal(log.since(1), null);
  assert.equal(log.since(2), null, "the last id sent is before the gap");
  const next = log.publishJson("batch", "{}");
  assert.equal(next.id, 4, "an id is skipped");
  assert.deepEqual(log.since(3)?.map((e) => e.id), [4]);
  assert.equal(log.since(2), null);
});
