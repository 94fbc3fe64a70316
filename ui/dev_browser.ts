/**
 * Drives Debian's Chromium through `npm:playwright-core` against an
 * Earthworm started in mock mode: used by `ui/screenshot.ts` and the browser
 * test. Never downloads a browser.
 *
 * @module
 */

import { type Browser, chromium } from "playwright-core";

/** Debian's Chromium. */
export const CHROMIUM = "/usr/bin/chromium";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

/** A running `earthworm mock` child process. */
export interface MockServer extends AsyncDisposable {
  /** Base URL without a trailing slash, e.g. `http://127.0.0.1:41234`. */
  url: string;
  /** Everything the process wrote to stderr so far. */
  output(): string;
  /** Sends `signal` to the process (SIGSTOP freezes it, SIGCONT thaws it). */
  kill(signal: Deno.Signal): void;
  /** Stops the process (thawing it first) and waits for it. */
  close(): Promise<void>;
}

/** Starts `earthworm mock` on a free port; resolves once it listens. */
export async function startMock(
  args: string[] = [],
  timeoutMs = 30_000,
): Promise<MockServer> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "mock", "--port", "0", ...args],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  let text = "";
  let closed = false;
  const decoder = new TextDecoder();
  const reader = child.stderr.getReader();
  const pump = (async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        text += decoder.decode(value, { stream: true });
      }
    } catch {
      // The stream ends when the process is killed.
    }
  })();
  const close = async () => {
    if (closed) return;
    closed = true;
    try {
      child.kill("SIGCONT");
      child.kill("SIGTERM");
    } catch {
      // Already exited.
    }
    const killer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch {
        // Already exited.
      }
    }, 5_000);
    await child.status;
    clearTimeout(killer);
    await pump;
  };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const match = text.match(/listening on (http:\/\/[^\s/]+)/);
    if (match) {
      return {
        url: match[1]!,
        output: () => text,
        kill: (signal) => child.kill(signal),
        close,
        [Symbol.asyncDispose]: close,
      };
    }
    if (Date.now() > deadline) {
      await close();
      throw new Error(
        `earthworm mock did not start within ${timeoutMs} ms: ${text.trim()}`,
      );
    }
    const exited = await Promise.race([
      child.status.then(() => true),
      new Promise<false>((r) => setTimeout(() => r(false), 50)),
    ]);
    if (exited) {
      await close();
      throw new Error(`earthworm mock exited before listening: ${text.trim()}`);
    }
  }
}

/** Launches headless Chromium with flags that keep it off the network. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
}
