import assert from "node:assert/strict";
import { MAX_TIMER_MS, scaledClock, systemClock } from "./clock.ts";

Deno.test("a real sleep longer than one timer can hold waits instead of firing at once", async () => {
  for (const clock of [systemClock, scaledClock(0.5)]) {
    const ac = new AbortController();
    let woke = false;
    const sleeping = clock.sleep(MAX_TIMER_MS * 4, ac.signal).then(
      () => woke = true,
      () => {},
    );
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(woke, false);
    ac.abort();
    await sleeping;
    assert.equal(woke, false);
  }
});

Deno.test("a real sleep resolves after its delay and can be aborted", async () => {
  const started = performance.now();
  await systemClock.sleep(20);
  assert.ok(performance.now() - started >= 19);
  const ac = new AbortController();
  ac.abort(new Error("stop"));
  await assert.rejects(systemClock.sleep(10, ac.signal), /stop/);
});
