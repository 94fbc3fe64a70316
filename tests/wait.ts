/**
 * Waiting helpers for end-to-end tests and harness scripts.
 *
 * @module
 */

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Polls `check` every `pollMs` until it returns a value other than
 * undefined or false, and resolves with that value; throws naming `what`
 * after `timeoutMs`.
 */
export async function until<T>(
  what: string,
  timeoutMs: number,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  pollMs = 100,
): Promise<T> {
  const start = Date.now();
  while (true) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() - start > timeoutMs) {
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await sleep(pollMs);
  }
}

/** Ports that were free a moment ago (for processes that must know theirs in advance). */
export function freePorts(n: number): number[] {
  const listeners = Array.from(
    { length: n },
    () => Deno.listen({ hostname: "127.0.0.1", port: 0 }),
  );
  const ports = listeners.map((l) => (l.addr as Deno.NetAddr).port);
  for (const l of listeners) l.close();
  return ports;
}

/**
 * Polls `check` every 200 ms until it returns a value, or fails after
 * `timeoutMs`; unlike {@linkcode until}, a check that throws (a page
 * navigating under it) is tried again, and the last error is the cause.
 */
export async function eventually<T>(
  what: string,
  timeoutMs: number,
  check: () => Promise<T | undefined>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`, {
        cause: last,
      });
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}
