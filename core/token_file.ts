/**
 * Bearer tokens read from files: the ServiceAccount token, a kubeconfig's
 * `tokenFile`, the agent's projected token. Bound tokens rotate, so the file
 * is read again at most once a minute.
 *
 * @module
 */

import { type Clock, systemClock } from "./clock.ts";

/** How often a token file is read again. */
export const TOKEN_REFRESH_MS = 60_000;

/** Settings of {@linkcode tokenFileReader}. */
export interface TokenFileOptions {
  clock?: Clock;
  /** The fix named when the file cannot be read. */
  hint?: string;
}

/**
 * Returns a function that yields the token in `path`, re-reading the file
 * at most every {@linkcode TOKEN_REFRESH_MS}. A file that cannot be read
 * rejects with a message naming it and, when given, the fix.
 */
export function tokenFileReader(
  path: string,
  opts: TokenFileOptions = {},
): () => Promise<string> {
  const clock = opts.clock ?? systemClock;
  let token = "";
  let readAt = -Infinity;
  return async () => {
    if (clock.now() - readAt > TOKEN_REFRESH_MS) {
      try {
        token = (await Deno.readTextFile(path)).trim();
      } catch (err) {
        const detail = err instanceof Error ? err.message : String(err);
        throw new Error(
          `Cannot read the token file "${path}": ${detail}${
            opts.hint ? `: ${opts.hint}` : ""
          }`,
          { cause: err },
        );
      }
      readAt = clock.now();
    }
    return token;
  };
}
