import assert from "node:assert/strict";
import { AsyncQueue } from "../core/async_queue.ts";
import { FakeClock } from "../core/fake_clock.ts";
import type { WireExchange } from "../core/api_types.ts";
import type { RawWireEvent } from "../core/wire_types.ts";
import { BURST, feedWireExchanges } from "./wire_feed.ts";
import { rawEvent } from "./_test_events.ts";
import { aggregate, WireAggregator } from "./wire_aggregator.ts";

/** A probe the test pushes kernel events into and ends. */
class PushSource {
  #queue = new AsyncQueue<RawWireEvent>();

  push(ev: RawWireEvent) {
    this.#queue.push(ev);
  }

  end() {
    this.#queue.close();
  }

  exchanges(): AsyncIterable<WireExchange> {
    return aggregate(
      this.#queue,
      new WireAggregator({ node: "n", monoToWallOffsetMs: 0 }),
    );
  }
}

const tick = () => new Promise((r) => setTimeout(r, 0));

Deno.test("an exchange after a quiet spell is delivered at once", async () => {
  const clock = new FakeClock();
  const source = new PushSource();
  const batches: WireExchange[][] = [];
  const done = feedWireExchanges(source, {
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

Deno.test("exchanges beyond the budget wait for it and go together, one delivery an interval", async () => {
  const clock = new FakeClock();
  const source = new PushSource();
  const batches: WireExchange[][] = [];
  const done = feedWireExchanges(source, {
    onBatch: (b) => void batches.push(b),
    flushIntervalMs: 1000,
    clock,
  });
  const exchange = (i: bigint) =>
    source.push(rawEvent({ startNs: i, firstRxNs: i + 1n }));
  exchange(1n);
  exchange(2n);
  await tick();
  assert.deepEqual(batches.map((b) => b.length), [1, 1], `a burst of ${BURST}`);
  await clock.advance(300);
  exchange(3n);
  await clock.advance(300);
  exchange(4n);
  await clock.advance(399);
  assert.deepEqual(batches.map((b) => b.length), [1, 1]);
  await clock.advance(1);
  assert.deepEqual(batches.map((b) => b.length), [1, 1, 2]);
  exchange(5n);
  await clock.advance(999);
  assert.deepEqual(batches.map((b) => b.length), [1, 1, 2]);
  await clock.advance(1);
  assert.deepEqual(batches.map((b) => b.length), [1, 1, 2, 1]);
  source.end();
  await done;
});

Deno.test("exchanges about one flush interval apart keep going at once after an extra one", async () => {
  const clock = new FakeClock();
  const source = new PushSource();
  const sent: number[] = [];
  const done = feedWireExchanges(source, {
    onBatch: () => void sent.push(clock.now()),
    flushIntervalMs: 1000,
    clock,
  });
  const pushedAt: number[] = [];
  for (let i = 0n; i < 20n; i++) {
    if (i === 5n) {
      source.push(rawEvent({ startNs: 100n, firstRxNs: 101n })); // a close_notify
      await tick();
    }
    pushedAt.push(clock.now());
    source.push(rawEvent({ startNs: i, firstRxNs: i + 1n }));
    await tick();
    await clock.advance(1005);
  }
  source.end();
  await done;
  assert.equal(sent.length, 21);
  const renewals = sent.filter((_, i) => i !== 5);
  assert.deepEqual(renewals, pushedAt, "every renewal's exchange went at once");
});

Deno.test("a full batch is delivered at once and the rest on abort", async () => {
  const clock = new FakeClock();
  const source = new PushSource();
  const batches: WireExchange[][] = [];
  const stop = new AbortController();
  const done = feedWireExchanges(source, {
    onBatch: (b) => void batches.push(b),
    maxBatch: 2,
    clock,
    signal: stop.signal,
  });
  for (let i = 1n; i <= 5n; i++) {
    source.push(rawEvent({ startNs: i, firstRxNs: i + 1n }));
  }
  await tick();
  assert.deepEqual(batches.map((b) => b.length), [1, 1, 2]);
  stop.abort();
  await done;
  assert.deepEqual(batches.map((b) => b.length), [1, 1, 2, 1]);
  source.end();
});

Deno.test("an error of the sink ends the feed and rejects it", async () => {
  const clock = new FakeClock();
  const source = new PushSource();
  let calls = 0;
  const done = feedWireExchanges(source, {
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
      onBatch: () => {},
      maxBatch: 0,
    }),
    /maxBatch > 0, got 1000 and 0/,
  );
});
