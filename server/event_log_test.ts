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
  assert.equal(log.publish("source", source).id, 100);
  assert.equal(log.publish("source", source).id, 101);
  assert.equal(log.lastId, 101);
});

Deno.test("since returns what a client missed while it is still held", () => {
  const log = new EventLog({ firstId: 1, capacity: 5 });
  for (let i = 0; i < 8; i++) {
    log.publish("source", { ...source, name: `e${i}` });
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
  log.publish("source", source);
  const sub = log.subscribe();
  log.publish("source", { ...source, name: "x" });
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
  log.publish("source", source);
  assert.equal((await pending).length, 1);
  sub.close();
});

Deno.test("a subscriber that falls behind is dropped, not buffered", () => {
  const log = new EventLog({ firstId: 1, maxQueue: 10 });
  const slow = log.subscribe();
  for (let i = 0; i < 11; i++) log.publish("source", source);
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
