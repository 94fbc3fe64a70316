/**
 * The Go side of the scale benchmarks (`leasebench/`, client-go): a Lease
 * informer and a Lease renewer, run as child processes that answer `stats`
 * and `dump` on stdin with JSON lines.
 *
 * @module
 */

const HERE = new URL(".", import.meta.url).pathname;

/** Builds leasebench once (cached in ~/.cache/earthworm/leasebench) and returns its path. */
export async function buildLeasebench(): Promise<string> {
  const out = await new Deno.Command("bash", {
    args: [`${HERE}leasebench/build.sh`],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error("Building tests/bench/leasebench failed");
  return new TextDecoder().decode(out.stdout).trim();
}

/** One recorded renewal: the Lease, its renewTime (µs) and when it was seen or answered (ns). */
export interface LeaseSample {
  id: string;
  renewUs: number;
  atNs: number;
}

/** A running leasebench process. */
export class Leasebench {
  readonly child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #lines: ReadableStreamDefaultReader<string>;
  #buffer = "";

  constructor(bin: string, args: string[], env?: Record<string, string>) {
    this.child = new Deno.Command(bin, {
      args,
      ...(env && { env }),
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.#writer = this.child.stdin.getWriter();
    this.#lines = this.child.stdout.pipeThrough(new TextDecoderStream())
      .getReader();
  }

  /** The pid, for CPU and memory readings. */
  get pid(): number {
    return this.child.pid;
  }

  /** The next JSON line it writes. */
  async next<T = Record<string, unknown>>(): Promise<T> {
    while (true) {
      const nl = this.#buffer.indexOf("\n");
      if (nl >= 0) {
        const line = this.#buffer.slice(0, nl);
        this.#buffer = this.#buffer.slice(nl + 1);
        return JSON.parse(line) as T;
      }
      const { value, done } = await this.#lines.read();
      if (done) throw new Error("leasebench ended its output");
      this.#buffer += value;
    }
  }

  async #send(command: string): Promise<void> {
    await this.#writer.write(new TextEncoder().encode(`${command}\n`));
  }

  /** Its counters now. */
  async stats<T = Record<string, number>>(): Promise<T> {
    await this.#send("stats");
    return await this.next<T>();
  }

  /** The samples recorded since the last dump. */
  async dump(): Promise<LeaseSample[]> {
    await this.#send("dump");
    const out: LeaseSample[] = [];
    while (true) {
      const line = await this.next<LeaseSample & { done?: boolean }>();
      if (line.done) return out;
      out.push(line);
    }
  }

  /** Ends it (closing stdin) and waits. */
  async stop(): Promise<void> {
    await this.#writer.close().catch(() => {});
    try {
      this.child.kill("SIGTERM");
    } catch {
      // already exited
    }
    await this.child.status;
    await this.#lines.cancel().catch(() => {});
  }
}
