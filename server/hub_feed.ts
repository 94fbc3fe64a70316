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
  #listeners = new Map<(e: HubEvent) => void, (() => boolean) | undefined>();
  /** Events published so far. */
  published = 0;

  /**
   * Whether any listener takes events now. The hub asks before it builds
   * the events of a beat, its busiest path: with no stream client for a
   * while and no webhook, nobody does.
   */
  wanted(): boolean {
    for (const active of this.#listeners.values()) {
      if (active === undefined || active()) return true;
    }
    return false;
  }

  /** Tells every listener that takes events now. */
  publish<K extends HubEventName>(event: K, data: HubEvents[K]): void {
    this.published++;
    const e = { event, data } as HubEvent;
    for (const [listener, active] of this.#listeners) {
      if (active !== undefined && !active()) continue;
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

  /**
   * Calls `listener` for every event from now on, or with `active` only
   * for the events published while `active()` says true; returns the
   * function that stops it.
   */
  listen(
    listener: (e: HubEvent) => void,
    active?: () => boolean,
  ): () => void {
    this.#listeners.set(listener, active);
    return () => this.#listeners.delete(listener);
  }

  /** Records every event from now on into an array (for tests and tools). */
  record(): HubEvent[] {
    const out: HubEvent[] = [];
    this.listen((e) => out.push(e));
    return out;
  }
}
