import assert from "node:assert/strict";
import { AsyncQueue } from "./async_queue.ts";

Deno.test("queue yields items in order and ends after close once drained", async () => {
  const q = new AsyncQueue<number>();
  q.push(1);
  q.push(2);
  const got: number[] = [];
  const reading = (async () => {
    for await (const n of q) got.push(n);
  })();
  await Promise.resolve();
  q.push(3);
  q.close();
  await reading;
  assert.deepEqual(got, [1, 2, 3]);
  assert.equal(q.push(4), false, "a closed queue refuses items");
});

Deno.test("a full queue refuses the item instead of growing", () => {
  const q = new AsyncQueue<string>(2);
  assert.equal(q.push("a"), true);
  assert.equal(q.push("b"), true);
  assert.equal(q.push("c"), false);
  assert.equal(q.size, 2);
  assert.deepEqual(q.takeAll(), ["a", "b"]);
  assert.equal(q.size, 0);
});

Deno.test("wait resolves on a push, on close or after its timeout", async () => {
  const q = new AsyncQueue<number>();
  const pushed = q.wait();
  q.push(7);
  await pushed;
  assert.equal(q.shift(), 7);
  const closed = q.wait();
  q.close();
  await closed;
  const timed = new AsyncQueue<number>();
  const t0 = performance.now();
  await timed.wait(5);
  assert.ok(performance.now() - t0 >= 4);
});

Deno.test("shifting many items keeps order across compactions", () => {
  const q = new AsyncQueue<number>();
  for (let i = 0; i < 5000; i++) q.push(i);
  for (let i = 0; i < 3000; i++) assert.equal(q.shift(), i);
  for (let i = 5000; i < 6000; i++) q.push(i);
  const rest = q.takeAll();
  assert.equal(rest.length, 3000);
  assert.equal(rest[0], 3000);
  assert.equal(rest.at(-1), 5999);
});
