/**
 * The UI at scale in Debian's Chromium: `earthworm mock --nodes N --speed S`
 * (default 5,000 nodes at 10 times the real rate) in a 1280x800 page. It
 * reports, with the machine's load average:
 *
 * - frames per second of the page over `--seconds` (requestAnimationFrame
 *   callbacks counted in the page), cardiogram redraws per second, and the
 *   CPU seconds per second of the page's main thread (scripts, layout,
 *   style): what the UI costs on a machine busy with other work too;
 * - stream health: batches the page applied, snapshots it took (1 means no
 *   resync and no reconnection), and the server's dropped and resynced
 *   clients;
 * - stream volume: bytes per second on a second, raw SSE connection, and the
 *   snapshot's size;
 * - scrolling the whole grid top to bottom, one viewport a frame, until the
 *   last heart's card is drawn (the page's main thread per step: what one
 *   screenful of other hearts costs);
 * - scrolling top to bottom as a user dragging the scrollbar does: the
 *   position follows the clock from top to bottom over `--drag-ms`, each
 *   frame showing where the thumb is by then; the time until the last
 *   heart's card is drawn, and the frames drawn on the way;
 * - the JS heap (after a forced GC) every minute for `--heap-minutes`, and
 *   its growth per minute.
 *
 * With `--profile FILE`, the page's CPU profile over the scroll is written
 * to FILE (a `.cpuprofile` for DevTools) and its functions with the most
 * samples of their own are printed.
 *
 * Figures only: nothing here asserts a time.
 *
 *     deno run -A tests/bench/ui_scale.ts [--nodes 5000] [--speed 10]
 *       [--seconds 30] [--heap-minutes 10] [--profile FILE]
 *
 * @module
 */

import { parseArgs } from "node:util";
import type { Page } from "playwright-core";
import { launchChromium, startMock } from "../../ui/dev_browser.ts";
import { nodeName } from "../../sim/simulator.ts";
import { type CpuProfile, topSelf } from "./_measure.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    nodes: { type: "string", default: "5000" },
    speed: { type: "string", default: "10" },
    seconds: { type: "string", default: "30" },
    "heap-minutes": { type: "string", default: "10" },
    profile: { type: "string" },
    "drag-ms": { type: "string", default: "2000" },
  },
});
const nodes = Number(values.nodes);
const speed = Number(values.speed);
const seconds = Number(values.seconds);
const heapMinutes = Number(values["heap-minutes"]);
const dragMs = Number(values["drag-ms"]);

function load(): string {
  return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(
    " ",
  );
}

function metric(text: string, name: string): number {
  const m = text.match(new RegExp(`^${name} (\\S+)$`, "m"));
  return m ? Number(m[1]) : NaN;
}

/** The server's stream counters (NaN when it did not answer within a minute: a starved mock). */
async function serverMetrics(url: string) {
  const text = await fetch(`${url}/metrics`, {
    signal: AbortSignal.timeout(60_000),
  }).then((res) => res.text()).catch(() => "");
  return {
    dropped: metric(text, "earthworm_stream_dropped_clients_total"),
    resyncs: metric(text, "earthworm_stream_resyncs_total"),
    batches: metric(text, "earthworm_stream_batches_total"),
  };
}

/** Reads a raw stream for `ms`: the snapshot's size, then bytes and batches a second. */
async function streamVolume(url: string, ms: number) {
  const ac = new AbortController();
  const res = await fetch(`${url}/api/v1/stream`, { signal: ac.signal });
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = "";
  let snapshotBytes = 0;
  let start = 0;
  let bytes = 0;
  let batches = 0;
  let entries = 0;
  const timer = setTimeout(() => ac.abort(), ms + 60_000);
  const started = performance.now();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      if (start === 0) {
        text += decoder.decode(value, { stream: true });
        const at = text.indexOf("event: snapshot");
        const end = at < 0 ? -1 : text.indexOf("\n\n", at);
        if (end < 0) continue;
        snapshotBytes = new TextEncoder().encode(text.slice(0, end + 2))
          .byteLength;
        start = performance.now();
        continue;
      }
      bytes += value.byteLength;
      // Counted across chunk boundaries: the tail of one joins the next.
      text = text.slice(-32) + decoder.decode(value, { stream: true });
      batches += text.split("event: batch\n").length - 1;
      entries += text.split('["').length - 1;
      text = text.slice(-32).replace(/^[\s\S]*(event: batch\n|\[")/, "");
      if (performance.now() - start >= ms) break;
    }
  } catch (err) {
    if (!ac.signal.aborted) throw err;
    // Timed out: report what came.
  } finally {
    clearTimeout(timer);
    ac.abort();
    await reader.cancel().catch(() => {});
  }
  if (start === 0) {
    throw new Error(
      `no snapshot within ${Math.round(performance.now() - started)} ms`,
    );
  }
  const s = (performance.now() - start) / 1000;
  return {
    snapshotBytes,
    bytesPerSecond: Math.round(bytes / s),
    batchesPerSecond: +(batches / s).toFixed(1),
    entriesPerSecond: Math.round(entries / s),
  };
}

async function appCounters(page: Page) {
  return await page.evaluate(() => {
    const app = document.querySelector<HTMLElement>(".app")!;
    return {
      snapshots: Number(app.dataset.snapshots),
      batches: Number(app.dataset.batches),
    };
  });
}

/** Frames and cardiogram redraws a second over `ms`, and the longest frame. */
async function frameRate(page: Page, ms: number) {
  return await page.evaluate(async (ms) => {
    // Redraws of each card on screen (a card shows whichever heart its
    // slot holds: the order changes as statuses do; only cards there
    // throughout count).
    const draws = () =>
      new Map(
        [...document.querySelectorAll<HTMLElement>(".card .cardiogram")]
          .map((el) => [el, Number(el.dataset.drawsTotal ?? 0)]),
      );
    const d0 = draws();
    let frames = 0;
    let longest = 0;
    const t0 = performance.now();
    let last = t0;
    await new Promise<void>((resolve) => {
      const tick = (now: number) => {
        frames++;
        longest = Math.max(longest, now - last);
        last = now;
        if (now - t0 >= ms) resolve();
        else requestAnimationFrame(tick);
      };
      requestAnimationFrame(tick);
    });
    const s = (performance.now() - t0) / 1000;
    let kept = 0;
    let redraws = 0;
    for (const [card, n] of draws()) {
      const n0 = d0.get(card);
      if (n0 === undefined || n < n0) continue;
      kept++;
      redraws += n - n0;
    }
    return {
      fps: +(frames / s).toFixed(1),
      longestFrameMs: Math.round(longest),
      redrawsPerCardPerSecond: kept ? +(redraws / kept / s).toFixed(1) : null,
      cards: document.querySelectorAll(".card").length,
    };
  }, ms);
}

/**
 * Scrolls the grid top to bottom, one viewport a frame (`dragMs` null), or
 * as a scrollbar drag over `dragMs` does: every frame the position is where
 * the thumb is by then. Time until the last card is drawn, frames on the
 * way, and the longest.
 */
async function scrollThrough(
  page: Page,
  lastId: string,
  dragMs: number | null,
) {
  return await page.evaluate(async ([lastId, dragMs]) => {
    const grid = document.querySelector<HTMLElement>(".grid-scroll")!;
    grid.scrollTop = 0;
    await new Promise((r) => requestAnimationFrame(r));
    const t0 = performance.now();
    const bottom = grid.scrollHeight - grid.clientHeight;
    let frames = 0;
    let longest = 0;
    let last = t0;
    let dragged = 0;
    while (dragMs === null ? grid.scrollTop < bottom - 1 : dragged < 1) {
      if (dragMs === null) grid.scrollTop += grid.clientHeight;
      else {
        dragged = Math.min(1, (performance.now() - t0) / dragMs);
        grid.scrollTop = Math.round(dragged * bottom);
      }
      frames++;
      const now = await new Promise<number>((r) => requestAnimationFrame(r));
      longest = Math.max(longest, now - last);
      last = now;
    }
    // Until the last heart's card is there and its cardiogram drawn.
    for (;;) {
      // Cards are recycled: the count is the last heart's once it names it.
      const card = document.querySelector(
        `.card[data-heart-id="${lastId}"] .cardiogram`,
      ) as HTMLElement | null;
      if (
        card && (card.dataset.drawn ?? lastId) === lastId &&
        Number(card.dataset.draws ?? 0) > 0
      ) break;
      await new Promise((r) => requestAnimationFrame(r));
    }
    return {
      ms: Math.round(performance.now() - t0),
      frames,
      longestFrameMs: Math.round(longest),
    };
  }, [lastId, dragMs] as const);
}

const report: Record<string, unknown> = {
  nodes,
  speed,
  loadBefore: load(),
};
await using mock = await startMock([
  "--nodes",
  String(nodes),
  "--speed",
  String(speed),
], 120_000);
const browser = await launchChromium();
try {
  const page = await browser.newPage({
    viewport: { width: 1280, height: 800 },
  });
  const cdp = await page.context().newCDPSession(page);
  const heap = async () => {
    await cdp.send("HeapProfiler.collectGarbage");
    const { usedSize } = await cdp.send("Runtime.getHeapUsage");
    return +(usedSize / 2 ** 20).toFixed(1);
  };
  const loadStart = performance.now();
  await page.goto(`${mock.url}/`);
  await page.waitForFunction(
    (n) =>
      Number(
        document.querySelector<HTMLElement>("[data-shown]")?.dataset.shown,
      ) >= n,
    nodes,
    { timeout: 120_000 },
  );
  await page.waitForSelector(".card .cardiogram[data-draws]", {
    timeout: 60_000,
  });
  report.firstPaintOfAllHeartsMs = Math.round(performance.now() - loadStart);
  console.error(`ui_scale: ${nodes} hearts drawn; measuring`);
  // Let the history loads of the first cards settle.
  await page.waitForTimeout(3_000);

  const before = await appCounters(page);
  const server0 = await serverMetrics(mock.url);
  await cdp.send("Performance.enable");
  const perf = async () => {
    const { metrics } = await cdp.send("Performance.getMetrics");
    return Object.fromEntries(metrics.map((m) => [m.name, m.value]));
  };
  const perf0 = await perf();
  const wall0 = performance.now();
  report.frames = await frameRate(page, seconds * 1000);
  const perf1 = await perf();
  const wall = (performance.now() - wall0) / 1000;
  // CPU seconds of the page's main thread per second: what the UI costs,
  // whatever else the machine runs.
  const per = (k: string) =>
    +(((perf1[k] ?? 0) - (perf0[k] ?? 0)) / wall).toFixed(3);
  report.pageMainThread = {
    taskSecondsPerSecond: per("TaskDuration"),
    scriptSecondsPerSecond: per("ScriptDuration"),
    layoutSecondsPerSecond: per("LayoutDuration"),
    styleSecondsPerSecond: per("RecalcStyleDuration"),
  };
  const after = await appCounters(page);
  const server1 = await serverMetrics(mock.url);
  report.page = {
    batchesPerSecond: +((after.batches - before.batches) / seconds).toFixed(1),
    snapshotsTaken: after.snapshots,
  };
  report.server = {
    batchesPerSecond: +((server1.batches - server0.batches) / seconds)
      .toFixed(1),
    droppedClients: server1.dropped,
    resyncs: server1.resyncs,
  };
  report.loadAfterFrames = load();
  report.stream = await streamVolume(mock.url, 10_000).catch((err) => ({
    error: `a raw stream read failed: ${err}`,
  }));
  console.error(
    `ui_scale: ${JSON.stringify(report.frames)} ${
      JSON.stringify(report.pageMainThread)
    }; scrolling`,
  );

  if (values.profile !== undefined) {
    await cdp.send("Profiler.enable");
    await cdp.send("Profiler.start");
  }
  const scrollPerf0 = await perf();
  const lastId = `kube-node-lease/${nodeName(nodes - 1)}`;
  const scroll = await scrollThrough(page, lastId, null);
  const steps = scroll.frames;
  const scrollPerf1 = await perf();
  // The page's main thread over the scroll, in milliseconds per step.
  const perStep = (k: string) =>
    +(((scrollPerf1[k] ?? 0) - (scrollPerf0[k] ?? 0)) * 1000 / steps)
      .toFixed(1);
  report.scroll = {
    ms: scroll.ms,
    steps,
    longestFrameMs: scroll.longestFrameMs,
    msPerStep: +(scroll.ms / steps).toFixed(1),
    mainThreadMsPerStep: {
      task: perStep("TaskDuration"),
      script: perStep("ScriptDuration"),
      layout: perStep("LayoutDuration"),
      style: perStep("RecalcStyleDuration"),
    },
  };
  if (values.profile !== undefined) {
    const { profile } = await cdp.send("Profiler.stop");
    await Deno.writeTextFile(values.profile, JSON.stringify(profile));
    console.error(
      `ui_scale: the page's CPU profile over the scroll: ${values.profile}; ` +
        `most samples of their own:\n${
          topSelf(profile as unknown as CpuProfile, 25).join("\n")
        }`,
    );
  }
  const drag = await scrollThrough(page, lastId, dragMs);
  report.drag = {
    dragMs,
    ms: drag.ms,
    framesDuringDrag: drag.frames,
    fpsDuringDrag: +(drag.frames / (Math.max(dragMs, 1) / 1000)).toFixed(1),
    longestFrameMs: drag.longestFrameMs,
  };
  await page.evaluate(() => {
    document.querySelector<HTMLElement>(".grid-scroll")!.scrollTop = 0;
  });

  const heapSeries: { minute: number; mb: number }[] = [];
  heapSeries.push({ minute: 0, mb: await heap() });
  for (let m = 1; m <= heapMinutes; m++) {
    await page.waitForTimeout(60_000);
    heapSeries.push({ minute: m, mb: await heap() });
    console.error(`ui_scale: heap ${JSON.stringify(heapSeries.at(-1))}`);
  }
  const first = heapSeries[Math.min(1, heapSeries.length - 1)]!;
  const lastHeap = heapSeries.at(-1)!;
  report.heap = {
    series: heapSeries,
    growthMbPerMinute: lastHeap.minute > first.minute
      ? +((lastHeap.mb - first.mb) / (lastHeap.minute - first.minute))
        .toFixed(2)
      : null,
  };
  const final = await appCounters(page);
  report.snapshotsTakenAtEnd = final.snapshots;
  report.serverAtEnd = await serverMetrics(mock.url);
  report.loadAfter = load();
} finally {
  await browser.close();
}
console.log(JSON.stringify(report, null, 2));
