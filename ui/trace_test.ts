import assert from "node:assert/strict";
import { sweepTrace, type TraceBeat, type TraceInput } from "./trace.ts";

const WINDOW = 120_000;

function beatsEvery(intervalMs: number, from: number, to: number): TraceBeat[] {
  const beats: TraceBeat[] = [];
  for (let t = from; t <= to; t += intervalMs) {
    beats.push({ t, intervalMs: beats.length === 0 ? null : intervalMs });
  }
  return beats;
}

function input(over: Partial<TraceInput>): TraceInput {
  return {
    beats: [],
    now: 1_000_000 + 30_000,
    windowMs: WINDOW,
    spikeMs: 400,
    status: "healthy",
    expectedIntervalMs: 10_000,
    leaseDurationMs: 40_000,
    ...over,
  };
}

Deno.test("trace of a heart without beats is a flat line in its status tone", () => {
  const trace = sweepTrace(input({ status: "unknown" }));
  assert.equal(trace.spikes, 0);
  assert.ok(trace.ys.every((y) => Number.isNaN(y) || y === 0));
  assert.ok(trace.tones.every((t) => t === "unknown"));
});

Deno.test("trace draws one spike per beat in the sweep and stays inside the window", () => {
  const now = 1_000_000 + 30_000;
  const beats = beatsEvery(10_000, now - 300_500, now - 1_000);
  const trace = sweepTrace(input({ beats, now }));
  const visible = beats.filter((b) => b.t > now - WINDOW * (1 - 0.035)).length;
  assert.equal(trace.spikes, visible);
  assert.equal(trace.ys.filter((y) => y === 1).length, visible);
  for (let i = 0; i < trace.xs.length; i++) {
    const x = trace.xs[i]!;
    assert.ok(x >= 0 && x <= WINDOW, `x ${x} in window`);
    if (i > 0) {
      assert.ok(x >= trace.xs[i - 1]!, "x ascends, as Chart.js expects");
    }
  }
  assert.ok(trace.tones.every((t) => t === "ok" || t === "unknown"));
});

Deno.test("trace cursor sits at now modulo the window with an erase gap after it", () => {
  const now = 5 * WINDOW + 45_000;
  const trace = sweepTrace(
    input({ now, beats: beatsEvery(10_000, now - 200_000, now) }),
  );
  assert.equal(trace.cursorX, 45_000);
  const breakAt = trace.ys.findIndex((y) => Number.isNaN(y));
  assert.ok(breakAt > 0, "current and previous sweep are separate lines");
  assert.equal(trace.xs[breakAt - 1], 45_000);
  assert.ok(trace.xs[breakAt + 1]! > 45_000 + WINDOW * 0.03);
});

Deno.test("trace draws a spike progressively as the cursor passes the beat", () => {
  const now = 2 * WINDOW + 60_000;
  const trace = sweepTrace(
    input({ now, beats: [{ t: now, intervalMs: 10_000 }] }),
  );
  assert.equal(trace.cursorY, 1, "cursor is on the R peak");
});

Deno.test("trace colours a stretched gap amber past twice the expected interval", () => {
  const now = 3 * WINDOW + 100_000;
  const beats: TraceBeat[] = [
    { t: now - 60_000, intervalMs: 10_000 },
    { t: now - 35_000, intervalMs: 25_000 },
    { t: now - 25_000, intervalMs: 10_000 },
  ];
  const trace = sweepTrace(input({ now, beats }));
  const lateAt = trace.tones.indexOf("late");
  assert.ok(lateAt >= 0, "the 25 s gap turns amber");
  const sweepStart = now - 100_000;
  assert.equal(trace.xs[lateAt]! + sweepStart, now - 60_000 + 20_000);
  assert.ok(!trace.tones.includes("expired"));
});

Deno.test("trace of an expired heart ends in a red flatline", () => {
  const now = 3 * WINDOW + 100_000;
  const beats = beatsEvery(10_000, now - 150_000, now - 60_000);
  const trace = sweepTrace(input({ now, beats, status: "expired" }));
  const current = trace.tones.slice(
    0,
    trace.ys.findIndex((y) => Number.isNaN(y)),
  );
  assert.equal(current[current.length - 1], "expired");
  assert.equal(trace.cursorY, 0);
  const firstRed = trace.tones.indexOf("expired");
  const sweepStart = now - 100_000;
  assert.equal(trace.xs[firstRed]! + sweepStart, now - 60_000 + 40_000);
});

Deno.test("trace follows the server's expired verdict even when its clock lags", () => {
  const now = 3 * WINDOW + 100_000;
  const beats = beatsEvery(10_000, now - 150_000, now - 30_000);
  const trace = sweepTrace(input({ now, beats, status: "expired" }));
  const current = trace.tones.slice(
    0,
    trace.ys.findIndex((y) => Number.isNaN(y)),
  );
  assert.equal(current[current.length - 1], "expired");
});

Deno.test("trace goes grey after the last beat while the heart is unknown", () => {
  const now = 3 * WINDOW + 100_000;
  const beats = beatsEvery(10_000, now - 150_000, now - 50_000);
  const trace = sweepTrace(input({ now, beats, status: "unknown" }));
  const current = trace.tones.slice(
    0,
    trace.ys.findIndex((y) => Number.isNaN(y)),
  );
  assert.equal(current[current.length - 1], "unknown");
  assert.ok(current.includes("ok"), "beats before the outage stay green");
});

Deno.test("trace draws a gap during an API server outage grey, not amber or red", () => {
  const now = 3 * WINDOW + 100_000;
  const beats: TraceBeat[] = [
    { t: now - 80_000, intervalMs: 10_000 },
    { t: now - 20_000, intervalMs: 60_000 },
  ];
  const outages = [{ from: now - 75_000, to: now - 21_000 }];
  const trace = sweepTrace(input({ now, beats, outages }));
  const sweepStart = now - 100_000;
  const toneAt = (t: number) => {
    let tone = trace.tones[0];
    for (let i = 0; i < trace.xs.length; i++) {
      if (Number.isNaN(trace.ys[i]!)) break;
      if (trace.xs[i]! + sweepStart <= t) tone = trace.tones[i];
    }
    return tone;
  };
  assert.equal(toneAt(now - 77_000), "ok");
  assert.equal(toneAt(now - 50_000), "unknown");
  assert.ok(!trace.tones.includes("expired") && !trace.tones.includes("late"));
});

Deno.test("trace counts lateness again from the end of an outage", () => {
  const now = 3 * WINDOW + 100_000;
  const beats: TraceBeat[] = [
    { t: now - 80_000, intervalMs: 10_000 },
    { t: now - 12_000, intervalMs: 68_000 },
  ];
  const outages = [{ from: now - 75_000, to: now - 50_000 }];
  const trace = sweepTrace(input({ now, beats, outages }));
  const sweepStart = now - 100_000;
  const toneAt = (t: number) => {
    let tone = trace.tones[0];
    for (let i = 0; i < trace.xs.length; i++) {
      if (Number.isNaN(trace.ys[i]!)) break;
      if (trace.xs[i]! + sweepStart <= t) tone = trace.tones[i];
    }
    return tone;
  };
  assert.equal(toneAt(now - 60_000), "unknown");
  assert.equal(toneAt(now - 40_000), "ok");
  assert.equal(toneAt(now - 20_000), "late");
  assert.ok(!trace.tones.includes("expired"));
});
