/**
 * Runs Earthworm as a child process for end-to-end tests and waits until it
 * listens.
 *
 * @module
 */

const ROOT = new URL("..", import.meta.url).pathname;

/** A running Earthworm process. */
export interface EarthwormProcess {
  url: string;
  child: Deno.ChildProcess;
  /** Everything it wrote to stderr so far. */
  stderr(): string;
  /** Milliseconds from spawn until it listened. */
  startupMs: number;
  /** Sends SIGTERM and waits for the exit code. */
  stop(): Promise<number>;
}

/**
 * V8 flags every launch of Earthworm passes (`deno task mock`, `deno task
 * compile`, the image's launcher and compile step; `tests/v8_flags_test.ts`
 * checks they agree): the old generation grows by at most half before a full
 * collection, instead of up to four times, so garbage of streams that came
 * and went is collected rather than kept, and the young generation stays at
 * 4 MiB a semi-space instead of growing to 16 (README.md, "Memory").
 */
export const V8_FLAGS =
  "--v8-flags=--heap-growing-percent=50,--max-semi-space-size=4";

/**
 * The C allocator's settings every launch of Earthworm runs with (the
 * tasks, the image's environment, the tests): one arena, and freed memory
 * handed back to the kernel from 128 KiB on, rather than kept for reuse
 * (README.md, "Memory").
 */
export const MALLOC_ENV: Readonly<Record<string, string>> = {
  MALLOC_ARENA_MAX: "1",
  MALLOC_TRIM_THRESHOLD_: "131072",
  MALLOC_MMAP_THRESHOLD_: "131072",
};

/**
 * Starts `deno run -A V8_FLAGS <entry> <args>` (entry defaults to main.ts)
 * and resolves once it logs `listening on http://...`.
 */
export async function startEarthworm(
  args: string[],
  opts: {
    entry?: string;
    /** Flags of `deno run` itself, before the entry (`--inspect=…`). */
    denoFlags?: string[];
    /** V8's flags instead of the launch's own ({@linkcode V8_FLAGS}), as `--v8-flags=…`. */
    v8Flags?: string;
    cwd?: string;
    env?: Record<string, string>;
    timeoutMs?: number;
  } = {},
): Promise<EarthwormProcess> {
  const started = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      opts.v8Flags ?? V8_FLAGS,
      ...opts.denoFlags ?? [],
      opts.entry ?? `${ROOT}main.ts`,
      ...args,
    ],
    cwd: opts.cwd ?? ROOT,
    env: { NO_COLOR: "1", ...MALLOC_ENV, ...opts.env },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let text = "";
  let url: string | undefined;
  const decoder = new TextDecoder();
  const reading = (async () => {
    for await (const chunk of child.stderr) {
      text += decoder.decode(chunk, { stream: true });
      url ??= /listening on (http:\/\/[^\s/]+)/.exec(text)?.[1];
    }
  })();
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  let exited: Deno.CommandStatus | undefined;
  child.status.then((s) => exited = s);
  while (!url) {
    if (exited || Date.now() > deadline) {
      try {
        child.kill("SIGKILL");
      } catch { /* already gone */ }
      await child.status;
      await reading;
      throw new Error(
        `Earthworm did not start (${
          exited ? `exit ${exited.code}` : "timeout"
        }): ${text}`,
      );
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  const startupMs = performance.now() - started;
  return {
    url,
    child,
    startupMs,
    stderr: () => text,
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch { /* already gone */ }
      const timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
      }, 10_000);
      const status = await child.status;
      clearTimeout(timer);
      await reading;
      return status.code;
    },
  };
}

/**
 * Runs `deno run -A main.ts <args>` to completion. A run that outlives
 * `timeoutMs` (60 s) is killed and reported with `timedOut`, so a test that
 * meets a hang fails instead of hanging.
 */
export async function runEarthworm(
  args: string[],
  opts: {
    cwd?: string;
    entry?: string;
    env?: Record<string, string>;
    timeoutMs?: number;
  } = {},
): Promise<
  { code: number; stdout: string; stderr: string; timedOut: boolean }
> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      opts.entry ?? `${ROOT}main.ts`,
      ...args,
    ],
    cwd: opts.cwd ?? ROOT,
    env: { NO_COLOR: "1", ...opts.env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
  }, opts.timeoutMs ?? 60_000);
  try {
    const out = await child.output();
    const d = new TextDecoder();
    return {
      code: out.code,
      stdout: d.decode(out.stdout),
      stderr: d.decode(out.stderr),
      timedOut,
    };
  } finally {
    clearTimeout(timer);
  }
}

/** Appends each complete line of `stream` to `lines` until it ends. */
export async function collectLines(
  stream: ReadableStream<Uint8Array<ArrayBuffer>>,
  lines: string[],
): Promise<void> {
  let rest = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    const parts = (rest + chunk).split("\n");
    rest = parts.pop() ?? "";
    lines.push(...parts);
  }
}
