/**
 * The hub's events as they happen, in full and in order, to listeners in
 * the same process: the stream's batcher (which sends them compactly to
 * clients), webhooks and tests. A listener is called synchronously and
 * must not throw or block; one that does is logged and the others go on.
 *
 * @module
 */

import type { HubEventName, HubEvents } from "../core/api_types.ts";
import { getLogger } from "../core/log.ts";

const log = getLogger("feed");

/** One hub event. */
export type HubEvent = {
  [K in HubEventName]: { event: K; data: HubEvents[K] };
}[HubEventName];

/** Synchronous fan-out of the hub's events. */
export class HubFeed {
  #listeners = new Set<(e: HubEvent) => void>();
  /** Events published so far. */
  published = 0;

  /** Tells every listener. */
  publish<K extends HubEventName>(event: K, data: HubEvents[K]): void {
    this.published++;
    const e = { event, data } as HubEvent;
    for (const listener of this.#listeners) {
      try {
        listener(e);
      } catch (err) {
        log.error("a hub event listener failed", {
          event,
          error: err instanceof Error ? err.message : String(err),
        });
      }
    }
  }

  /** Calls `listener` for every event from now on; returns the function that stops it. */
  listen(listener: (e: HubEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Records every event from now on into an array (for tests and tools). */
  record(): HubEvent[] {
    const out: HubEvent[] = [];
    this.listen((e) => out.push(e));
    return out;
  }
}
