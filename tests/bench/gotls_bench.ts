/**
 * Go TLS probe cost (root, Go): `deno run --allow-all
 * tests/bench/gotls_bench.ts [FRAMES]`. Builds tests/wire/h2echo, which
 * sends FRAMES (default 20,000) HTTP/2 frames over TLS one per Write and
 * reads each with one Read, on both ends, so every frame costs two Writes
 * and two Reads (each Read: an entry probe and a RET probe). Runs it three
 * times without the probe and three times with it, and prints the added
 * wall time per Write+Read pair and each BPF program's average run time
 * (`kernel.bpf_stats_enabled=1`). Two streams: PINGs (walked, never
 * reported) and DATA frames (reported, 256 bytes captured per client DATA).
 *
 * @module
 */

import { openGoTlsProbe } from "../../bpf/gotls_probe.ts";
import { collectLines } from "../earthworm_process.ts";

const FRAMES = Number(Deno.args[0] ?? "20000");
const HERE = new URL("..", import.meta.url).pathname;

function frames(type: number, flags: number, stream: number, size: number) {
  const one = new Uint8Array(9 + size);
  new DataView(one.buffer).setUint32(0, size << 8 | type);
  one[4] = flags;
  new DataView(one.buffer).setUint32(5, stream);
  const preface = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
  const out = new Uint8Array(preface.length + one.length * FRAMES);
  out.set(preface);
  for (let i = 0; i < FRAMES; i++) {
    out.set(one, preface.length + i * one.length);
  }
  return { bytes: out, frame: one.length };
}

async function build(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "earthworm-gotls-bench-" });
  const out = await new Deno.Command("go", {
    args: ["build", "-trimpath", "-ldflags=-s -w", "-o", `${dir}/h2echo`, "."],
    cwd: `${HERE}wire/h2echo`,
  }).output();
  if (!out.success) throw new Error("go build of h2echo failed");
  return `${dir}/h2echo`;
}

async function once(bin: string, input: string, frame: number, probe: boolean) {
  const split = `24,${frame}`;
  const child = new Deno.Command(bin, {
    args: [
      "-in",
      input,
      "-skip",
      "24",
      "-w",
      split,
      "-r",
      split,
      "-W",
      String(frame),
      "-R",
      String(frame),
    ],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  const lines: string[] = [];
  const reading = collectLines(child.stdout, lines);
  while (lines.length === 0) await new Promise((r) => setTimeout(r, 10));
  const p = probe ? await openGoTlsProbe({ pid: child.pid }) : null;
  let records = 0;
  const consuming = (async () => {
    if (p) { for await (const _ of p.records()) records++; }
  })();
  const stdin = child.stdin.getWriter();
  const t0 = performance.now();
  await stdin.write(new TextEncoder().encode("go\n"));
  while (!lines.some((l) => l.startsWith("done"))) {
    await new Promise((r) => setTimeout(r, 1));
  }
  const ms = performance.now() - t0;
  await new Promise((r) => setTimeout(r, 200));
  const programs = p?.programs() ?? [];
  await p?.close();
  await consuming;
  await stdin.close().catch(() => {});
  await child.status;
  await reading;
  return { ms, records, drops: p?.drops() ?? 0, programs, stats: p?.stats() };
}

if (import.meta.main) {
  const bin = await build();
  const was = (await Deno.readTextFile("/proc/sys/kernel/bpf_stats_enabled"))
    .trim();
  await Deno.writeTextFile("/proc/sys/kernel/bpf_stats_enabled", "1");
  try {
    for (
      const [name, type, flags] of [["PING", 6, 0], ["DATA", 0, 0]] as const
    ) {
      const { bytes, frame } = frames(
        type,
        flags,
        type === 6 ? 0 : 1,
        type === 6 ? 8 : 300,
      );
      const input = await Deno.makeTempFile();
      await Deno.writeFile(input, bytes);
      const bare: number[] = [], probed: number[] = [];
      let last: Awaited<ReturnType<typeof once>> | null = null;
      for (let i = 0; i < 3; i++) {
        bare.push((await once(bin, input, frame, false)).ms);
        last = await once(bin, input, frame, true);
        probed.push(last.ms);
      }
      await Deno.remove(input);
      const median = (a: number[]) => a.sort((x, y) => x - y)[1]!;
      const pairs = 2 * FRAMES; // Write+Read pairs: client→server and back
      console.log(JSON.stringify({
        frames: `${FRAMES} ${name} (${frame} bytes), one per call`,
        bareMs: median(bare),
        probedMs: median(probed),
        addedUsPerWriteReadPair: (median(probed) - median(bare)) * 1000 / pairs,
        records: last!.records,
        drops: last!.drops,
        bpfNsPerRun: Object.fromEntries(
          last!.programs.map((p) => [
            p.name,
            p.runCount ? Number(p.runTimeNs / p.runCount) : 0,
          ]),
        ),
      }));
    }
  } finally {
    await Deno.writeTextFile("/proc/sys/kernel/bpf_stats_enabled", was);
    await Deno.remove(bin.replace(/\/h2echo$/, ""), { recursive: true });
  }
}
