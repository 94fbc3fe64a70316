import assert from "node:assert/strict";
import { ServerClock } from "./server_clock.ts";

function fakeLocal(start = 1000) {
  const t = { now: start };
  return { t, now: () => t.now };
}

Deno.test("server clock is unknown before its first anchor", () => {
  const local = fakeLocal();
  assert.equal(new ServerClock(local.now).now(), null);
});

Deno.test("server clock runs at the server's time scale from the snapshot", () => {
  const local = fakeLocal();
  const clock = new ServerClock(local.now);
  clock.reset(50_000, 10);
  local.t.now += 1_000;
  assert.equal(clock.now(), 60_000);
});

Deno.test("server clock moves forward to an event that is ahead of it", () => {
  const local = fakeLocal();
  const clock = new ServerClock(local.now);
  clock.reset(50_000, 1);
  local.t.now += 100;
  clock.observe(50_400);
  assert.equal(clock.now(), 50_400);
  clock.observe(50_000);
  assert.equal(clock.now(), 50_400, "an older event does not move it back");
});

Deno.test("server clock keeps its estimate when the scale changes", () => {
  const local = fakeLocal();
  const clock = new ServerClock(local.now);
  clock.reset(0, 1);
  local.t.now += 2_000;
  clock.setScale(5);
  assert.equal(clock.now(), 2_000);
  local.t.now += 1_000;
  assert.equal(clock.now(), 7_000);
  clock.setScale(-1);
  assert.equal(clock.scale, 5, "a nonsensical scale is ignored");
});
