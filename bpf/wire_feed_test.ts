import assert from "node:assert/strict";
import { FakeClock } from "../server/clock.ts";
import type { WireExchange } from "../server/api_types.ts";
import type { RawWireEvent } from "./wire_event.ts";
import { feedWireExchanges } from "./wire_feed.ts";
import { rawEvent } from "./_test_events.ts";

/** An event source the test pushes into and ends. */
class PushSource {
  readonly monoToWallOffsetMs = 0;
  #queue: RawWireEvent[] = [];
  #wake: (() => void) | null = null;
  #ended = false;

  push(ev: RawWireEvent) {
    this.#queue.push(ev);
    this.#wake?.();
  }

  end() {
    this.#ended = true;
    this.#wake?.();
  }

  async *events(): AsyncIterableIterator<RawWireEvent> {
    while (true) {
      const ev = this.#queue.shift();
      if (ev) {
        yield ev;
        continue;
      }
      if (this.#ended) return;
      await new Promise<void>((r) => (this.#wake = r));
      this.#wake = null;
    }
  }
}

const tick = () => new Promise((r) => setTimeout(r, 0));

Deno.test("an exchange after a quiet spell is delivered at once", async () => {
  const clock = new FakeClock();
  const source = new PushSource();
  const batches: WireExchange[][] = [];
  const done = feedWireExchanges(source, {
    node: "n",
    onBatch: (b) => void batches.push(b),
    flushIntervalMs: 1000,
    clock,
  });
  source.push(rawEvent({ kind: "track" }));
  await tick();
  assert.equal(batches.length, 0, "no exchange, no delivery");
  source.push(rawEvent({ startNs: 1n, firstRxNs: 2n }));
  await tick();
  assert.deepEqual(batches.map((b) => b.length), [1]);
  await clock.advance(1000);
  source.push(rawEvent({ startNs: 3n, firstRxNs: 4n }));
  await tick();
  assert.deepEqual(batches.map((b) => b.length), [1, 1], "quiet again");
  source.end();
  await done;
});

Deno.test("exchanges within the flush interval of a delivery wait for its end and go together", async () => {
  const clock = new FakeClock();
  const source = new PushSource();
  const batches: WireExchange[][] = [];
  const done = feedWireExchanges(source, {
    node: "n",
    onBatch: (b) => void batches.push(b),
    flushIntervalMs: 1000,
    clock,
  });
  source.push(rawEvent({ startNs: 1n, firstRxNs: 2n }));
  await tick();
  await clock.advance(300);
  source.push(rawEvent({ startNs: 3n, firstRxNs: 4n }));
  await clock.advance(300);
  source.push(rawEvent({ startNs: 5n, firstRxNs: 6n }));
  await clock.advance(399);
  assert.deepEqual(batches.map((b) => b.length), [1]);
  await clock.advance(1);
  assert.deepEqual(batches.map((b) => b.length), [1, 2]);
  source.push(rawEvent({ startNs: 7n, firstRxNs: 8n }));
  await clock.advance(999);
  assert.deepEqual(
    batches.map((b) => b.length),
    [1, 2],
    "one delivery an interval",
  );
  await clock.advance(1);
  assert.deepEqual(batches.map((b) => b.length), [1, 2, 1]);
  source.end();
  await done;
});

Deno.test("a full batch is delivered at once and the rest on abort", async () => {
  const clock = new FakeClock();
  const source = new PushSource();
  const batches: WireExchange[][] = [];
  const stop = new AbortController();
  const done = feedWireExchanges(source, {
    node: "n",
    onBatch: (b) => void batches.push(b),
    maxBatch: 2,
    clock,
    signal: stop.signal,
  });
  for (let i = 1n; i <= 4n; i++) {
    source.push(rawEvent({ startNs: i, firstRxNs: i + 1n }));
  }
  await tick();
  assert.deepEqual(batches.map((b) => b.length), [1, 2]);
  stop.abort();
  await done;
  assert.deepEqual(batches.map((b) => b.length), [1, 2, 1]);
  source.end();
});

Deno.test("an error of the sink ends the feed and rejects it", async () => {
  const clock = new FakeClock();
  const source = new PushSource();
  let calls = 0;
  const done = feedWireExchanges(source, {
    node: "n",
    onBatch: () => {
      calls++;
      throw new Error("leader gone");
    },
    clock,
  });
  source.push(rawEvent({ startNs: 1n, firstRxNs: 2n }));
  await assert.rejects(done, /leader gone/);
  source.push(rawEvent({ startNs: 3n, firstRxNs: 4n }));
  await clock.advance(2000);
  assert.equal(calls, 1);
  source.end();
});

Deno.test("bad feed settings are rejected with the values", async () => {
  await assert.rejects(
    feedWireExchanges(new PushSource(), {
      node: "n",
      onBatch: () => {},
      maxBatch: 0,
    }),
    /maxBatch > 0, got 1000 and 0/,
  );
});
