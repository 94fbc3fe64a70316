/**
 * What the scale benchmarks read from `/proc`: a process's CPU time and
 * resident memory, the machine's load average, and percentile summaries.
 *
 * @module
 */

/** Clock ticks per second of `/proc/<pid>/stat` (USER_HZ, 100 on Linux). */
const TICKS = 100;

/** User plus system CPU seconds a process has used so far (all its threads). */
export function cpuSeconds(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  // Fields after the command name, which sits in parentheses and may hold spaces.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / TICKS;
}

/** Resident memory of a process, in MiB: total, anonymous and file-backed, and the peak. */
export function rss(
  pid: number,
): { rss: number; anon: number; file: number; peak: number } {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const mib = (field: string) =>
    Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN) / 1024;
  return {
    rss: mib("VmRSS"),
    anon: mib("RssAnon"),
    file: mib("RssFile"),
    peak: mib("VmHWM"),
  };
}

/** The 1-, 5- and 15-minute load averages. */
export function loadavg(): [number, number, number] {
  const [a, b, c] = Deno.readTextFileSync("/proc/loadavg").split(" ").map(
    Number,
  );
  return [a ?? NaN, b ?? NaN, c ?? NaN];
}

/** Samples the 1-minute load average every `everyMs` until stopped; reports mean and range. */
export class LoadSampler {
  readonly #samples: number[] = [];
  readonly #timer: ReturnType<typeof setInterval>;
  constructor(everyMs = 5_000) {
    this.#samples.push(loadavg()[0]);
    this.#timer = setInterval(
      () => this.#samples.push(loadavg()[0]),
      everyMs,
    );
  }
  /** Stops sampling and describes the load during the run. */
  stop(): string {
    clearInterval(this.#timer);
    this.#samples.push(loadavg()[0]);
    const s = this.#samples;
    const mean = s.reduce((a, b) => a + b, 0) / s.length;
    return `load average ${mean.toFixed(1)} (1-min, ${
      Math.min(...s).toFixed(1)
    }–${Math.max(...s).toFixed(1)}) on ${navigator.hardwareConcurrency} cores`;
  }
}

/**
 * Samples a process's resident memory every `everyMs` over a window: how it
 * went, not only where it ended (a run's last reading can include what its
 * own final queries cost).
 */
export class RssSampler {
  readonly #samples: { at: number; rss: number; anon: number }[] = [];
  readonly #timer: ReturnType<typeof setInterval>;
  readonly #t0 = Date.now();
  constructor(readonly pid: number, everyMs = 60_000) {
    this.#take();
    this.#timer = setInterval(() => this.#take(), everyMs);
  }
  #take(): void {
    try {
      const m = rss(this.pid);
      this.#samples.push({
        at: (Date.now() - this.#t0) / 60_000,
        rss: m.rss,
        anon: m.anon,
      });
    } catch {
      // the process ended
    }
  }
  /** Stops sampling and describes the window: first, last, highest and the trend per minute. */
  stop(): string {
    clearInterval(this.#timer);
    this.#take();
    const s = this.#samples;
    if (s.length < 2) return "too short to sample";
    const first = s[0]!, last = s.at(-1)!;
    const max = Math.max(...s.map((x) => x.rss));
    const slope = (last.rss - first.rss) / (last.at - first.at);
    const step = Math.max(1, Math.round(s.length / 12));
    return `${first.rss.toFixed(0)} MiB at its start, ${
      last.rss.toFixed(0)
    } MiB (anonymous ${last.anon.toFixed(0)}) at its end after ${
      last.at.toFixed(0)
    } min, highest ${max.toFixed(0)} MiB, ${slope >= 0 ? "+" : ""}${
      slope.toFixed(2)
    } MiB/min; every ${step}th sample: ${
      s.filter((_, i) => i % step === 0)
        .map((x) => x.rss.toFixed(0)).join(" ")
    }`;
  }
}

/** The `p`-quantile (0..1) of sorted values. */
export function quantile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

/** `p50 x, p99 y, max z (n = …)` in `unit`. */
export function summary(values: number[], unit = "ms", digits = 1): string {
  const s = [...values].sort((a, b) => a - b);
  const f = (v: number) => v.toFixed(digits);
  return `p50 ${f(quantile(s, 0.5))} ${unit}, p99 ${
    f(quantile(s, 0.99))
  } ${unit}, max ${f(s.at(-1) ?? NaN)} ${unit} (n = ${s.length})`;
}

/** A DevTools protocol session with a Deno process started with `--inspect=<hostport>`. */
async function inspector(hostport: string): Promise<{
  call: (
    method: string,
    params?: Record<string, unknown>,
  ) => Promise<Record<string, unknown>>;
  close: () => void;
}> {
  const targets = await (await fetch(`http://${hostport}/json/list`))
    .json() as { webSocketDebuggerUrl: string }[];
  const ws = new WebSocket(targets[0]!.webSocketDebuggerUrl);
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = reject;
  });
  let next = 0;
  const waiting = new Map<number, (v: Record<string, unknown>) => void>();
  ws.onmessage = (e) => {
    const m = JSON.parse(e.data) as {
      id?: number;
      result?: Record<string, unknown>;
    };
    if (m.id !== undefined) waiting.get(m.id)?.(m.result ?? {});
  };
  return {
    call: (method, params = {}) =>
      new Promise((resolve) => {
        const id = ++next;
        waiting.set(id, resolve);
        ws.send(JSON.stringify({ id, method, params }));
      }),
    close: () => ws.close(),
  };
}

/**
 * V8's heap of a Deno process started with `--inspect=<hostport>`, before
 * and after a full collection (MiB): what the program holds, apart from the
 * collector's slack and memory outside the heap.
 */
export async function heapUsage(
  hostport: string,
): Promise<
  {
    before: number;
    after: number;
    total: number;
    externalBefore: number;
    externalAfter: number;
  }
> {
  const session = await inspector(hostport);
  // Memory outside the heap that V8 knows of (ArrayBuffers' contents).
  const external = async () => {
    const r = await session.call("Runtime.evaluate", {
      expression: "Deno.memoryUsage().external",
      returnByValue: true,
    }) as { result?: { value?: number } };
    return r.result?.value;
  };
  try {
    const before = await session.call("Runtime.getHeapUsage");
    const externalBefore = await external();
    await session.call("HeapProfiler.collectGarbage");
    const after = await session.call("Runtime.getHeapUsage");
    const externalAfter = await external();
    const mib = (v: unknown) => (typeof v === "number" ? v : NaN) / 2 ** 20;
    return {
      before: mib(before.usedSize),
      after: mib(after.usedSize),
      total: mib(after.totalSize),
      externalBefore: mib(externalBefore),
      externalAfter: mib(externalAfter),
    };
  } finally {
    session.close();
  }
}

/** A V8 CPU profile (the DevTools `Profiler.Profile`), as much of it as is read here. */
export interface CpuProfile {
  nodes: {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
  }[];
  samples: number[];
  timeDeltas: number[];
}

/**
 * Starts V8's sampling profiler in a process started with
 * `--inspect=<hostport>`; the function returned stops it and gives the
 * profile (to save as `.cpuprofile`, or to sum with {@linkcode topSelf}).
 */
export async function startCpuProfile(
  hostport: string,
  intervalUs = 500,
): Promise<() => Promise<CpuProfile>> {
  const session = await inspector(hostport);
  await session.call("Profiler.enable");
  await session.call("Profiler.setSamplingInterval", { interval: intervalUs });
  await session.call("Profiler.start");
  return async () => {
    try {
      const { profile } = await session.call("Profiler.stop");
      return profile as CpuProfile;
    } finally {
      session.close();
    }
  };
}

/** The functions with the most samples of their own, as "share name file:line" lines. */
export function topSelf(profile: CpuProfile, n = 15): string[] {
  const byNode = new Map(profile.nodes.map((x) => [x.id, x]));
  const counts = new Map<string, number>();
  for (const id of profile.samples) {
    const f = byNode.get(id)!.callFrame;
    const file = f.url.replace(/^.*\/(?=[^/]+\/[^/]+$)/, "");
    const key = `${f.functionName || "(anonymous)"} ${file}:${
      f.lineNumber + 1
    }`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const total = profile.samples.length;
  return [...counts.entries()].sort((a, b) => b[1] - a[1]).slice(0, n).map((
    [k, c],
  ) => `${(100 * c / total).toFixed(1).padStart(5)} %  ${k}`);
}
