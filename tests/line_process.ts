/**
 * A child process for end-to-end tests whose stdout lines are kept with the
 * time each arrived, and awaited by condition.
 *
 * @module
 */

import { until } from "./wait.ts";

/** A child process whose stdout lines are kept with the time each arrived. */
export class LineProcess implements AsyncDisposable {
  readonly lines: { at: number; text: string }[] = [];
  #child: Deno.ChildProcess;
  #reading: Promise<void>;
  #stderr: Promise<string>;
  #exit: string | undefined;

  constructor(readonly cmd: string, args: string[]) {
    const child = new Deno.Command(cmd, {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#child = child;
    this.#reading = (async () => {
      let rest = "";
      const text = child.stdout.pipeThrough(new TextDecoderStream());
      for await (const chunk of text) {
        const parts = (rest + chunk).split("\n");
        rest = parts.pop() ?? "";
        const at = Date.now();
        for (const line of parts) this.lines.push({ at, text: line });
      }
    })();
    this.#stderr = new Response(child.stderr).text();
    Promise.all([child.status, this.#stderr]).then(([status, stderr]) =>
      this.#exit = `exit ${status.code}: ${stderr.trim()}`
    );
  }

  /** Waits until `match` finds something in the lines so far. */
  waitFor<T>(
    what: string,
    timeoutMs: number,
    match: (lines: { at: number; text: string }[]) => T | undefined,
  ): Promise<T> {
    return until(what, timeoutMs, () => {
      const found = match(this.lines);
      if (found !== undefined || this.#exit === undefined) return found;
      throw new Error(`${this.cmd} ended before ${what} (${this.#exit})`);
    }, 50);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.#child.kill("SIGTERM");
    } catch {
      // already exited
    }
    await this.#child.status;
    await this.#reading;
    await this.#stderr;
  }
}
