/**
 * Test helper private to sim/: records what a watch on a simulated API
 * server delivers, with the clock's time of each event.
 *
 * @module
 */

import type { Clock } from "../core/clock.ts";
import type { Lease } from "../core/lease_types.ts";
import type { SimApiServer } from "./sim_api_server.ts";

/** One recorded watch event. */
export interface Seen {
  type: string;
  lease: Lease;
  at: number;
}

/** Watches `server` from `from` until `stop` is called or the watch fails (`error`). */
export function recordWatch(
  server: SimApiServer,
  clock: Clock,
  from = "0",
): { seen: Seen[]; error: () => unknown; stop: () => Promise<void> } {
  const seen: Seen[] = [];
  let error: unknown;
  const controller = new AbortController();
  const done = server.watch({
    namespace: undefined,
    resourceVersion: from,
    timeoutSeconds: 1e9,
    onOpen: () => {},
    onEvent: (e) =>
      seen.push({ type: e.type, lease: e.object as Lease, at: clock.now() }),
    signal: controller.signal,
  }).catch((err) => {
    error = err;
  });
  return {
    seen,
    error: () => error,
    stop: async () => {
      controller.abort();
      await done;
    },
  };
}
