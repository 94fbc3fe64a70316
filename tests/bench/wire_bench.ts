/**
 * Wire probe benchmarks.
 *
 * - `deno bench --allow-all tests/bench/wire_bench.ts`: user-space cost of
 *   decoding and aggregating one event (no root needed).
 * - `deno run --allow-all tests/bench/wire_bench.ts [SECONDS] [--perf-buffer]` (root): loads
 *   the probe, drives request/response traffic from a process named
 *   `ewbench` as fast as it goes, and reports events per second delivered,
 *   drops, kernel-to-user-space latency, and each BPF program's average run
 *   time from `kernel.bpf_stats_enabled=1`.
 *
 * @module
 */

import { decodeWireEvent } from "../../bpf/wire_event.ts";
import { WireAggregator } from "../../wire/wire_aggregator.ts";
import { openWireProbe } from "../../bpf/wire_probe.ts";

const fixture = Deno.readFileSync(
  new URL("../testdata/wire_event_exchange.bin", import.meta.url),
);

Deno.bench("decode one wire event", () => {
  decodeWireEvent(fixture);
});

const aggregator = new WireAggregator({ node: "bench", monoToWallOffsetMs: 0 });
Deno.bench(
  "decode and aggregate one exchange event into a WireExchange",
  () => {
    aggregator.add(decodeWireEvent(fixture));
  },
);

const HERE = new URL(".", import.meta.url).pathname;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ??
    NaN;
}

/** Drives traffic through a loaded probe and prints what it measured. */
async function kernelBench(
  seconds: number,
  buffer: "auto" | "perf",
): Promise<void> {
  const statsPath = "/proc/sys/kernel/bpf_stats_enabled";
  const previousStats = (await Deno.readTextFile(statsPath)).trim();
  const dir = await Deno.makeTempDir({ prefix: "earthworm-bench-" });
  const children: Deno.ChildProcess[] = [];
  const spawn = async (exe: string, args: string[]) => {
    const child = new Deno.Command(exe, {
      args,
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    children.push(child);
    const reader = child.stdout.pipeThrough(new TextDecoderStream())
      .getReader();
    let text = "";
    while (!/ready.*\n/.test(text)) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`${exe} ${args.join(" ")} exited early`);
      text += value;
    }
    reader.cancel().catch(() => {});
    return text;
  };
  const pingpong = `${HERE}../wire/pingpong.ts`;
  try {
    await Deno.writeTextFile(statsPath, "1");
    await Deno.symlink(Deno.execPath(), `${dir}/ewbench`);
    const ready = await spawn(Deno.execPath(), [
      "run",
      "--allow-net",
      pingpong,
      "server",
      "0",
    ]);
    const port = Number(/ready (\d+)/.exec(ready)?.[1]);
    const probe = await openWireProbe({ comm: "ewbench", port, buffer });
    const agg = new WireAggregator({
      node: "bench",
      monoToWallOffsetMs: probe.monoToWallOffsetMs,
    });
    const before = probe.programs();
    await spawn(`${dir}/ewbench`, [
      "run",
      "--allow-net",
      pingpong,
      "client",
      String(port),
      "4",
    ]);
    let events = 0, exchanges = 0;
    const delays: number[] = [];
    const start = performance.now();
    let after = before;
    const timer = setTimeout(() => {
      after = probe.programs();
      probe.close();
    }, seconds * 1000);
    for await (const ev of probe.events()) {
      events++;
      if (agg.add(ev)) exchanges++;
      if ((events & 63) === 0) {
        const nowWall = performance.timeOrigin + performance.now();
        delays.push(
          nowWall - (Number(ev.tsNs) / 1e6 + probe.monoToWallOffsetMs),
        );
      }
    }
    clearTimeout(timer);
    const elapsed = (performance.now() - start) / 1000;
    delays.sort((a, b) => a - b);
    console.log(`buffer: ${probe.buffer}`);
    console.log(
      `events delivered: ${events} in ${elapsed.toFixed(1)} s = ${
        (events / elapsed).toFixed(0)
      } events/s (${exchanges} exchanges)`,
    );
    console.log(`dropped: ${probe.drops()}`);
    console.log(
      `kernel event -> user space: p50 ${
        percentile(delays, 0.5).toFixed(3)
      } ms, p99 ${percentile(delays, 0.99).toFixed(3)} ms`,
    );
    console.log("BPF program        runs      avg ns/run");
    for (const a of after) {
      const b = before.find((x) => x.name === a.name);
      const runs = a.runCount - (b?.runCount ?? 0n);
      const ns = a.runTimeNs - (b?.runTimeNs ?? 0n);
      const avg = runs > 0n ? (Number(ns) / Number(runs)).toFixed(0) : "-";
      console.log(
        `${a.name.padEnd(18)} ${String(runs).padStart(9)} ${avg.padStart(10)}`,
      );
    }
  } finally {
    for (const c of children) {
      try {
        c.kill("SIGKILL");
      } catch {
        // already gone
      }
      await c.status;
    }
    await Deno.writeTextFile(statsPath, previousStats);
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) {
  const seconds = Number(Deno.args.find((a) => /^\d+$/.test(a)) ?? "5");
  await kernelBench(
    seconds,
    Deno.args.includes("--perf-buffer") ? "perf" : "auto",
  );
}
