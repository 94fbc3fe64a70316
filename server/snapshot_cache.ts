/**
 * The `snapshot` a new stream starts with (compact: a row of numbers per
 * heart, see `core/stream_codec.ts`), serialised once per event id and
 * shared by every client that starts while it is current. A cached snapshot
 * stays current while the events published since it are fewer bytes than
 * half the snapshot: a new client then gets it followed by those events,
 * which is cheaper than serialising every heart again. Only `generatedAt`,
 * the time of sending the client's clock is set from, is written per client.
 *
 * @module
 */

import type { HeartHub } from "./heart_hub.ts";
import { byteSize, type LoggedEvent } from "./event_log.ts";
import { STREAM_PROTOCOL } from "../core/api_types.ts";
import { encodeHeart } from "../core/stream_codec.ts";

const encoder = new TextEncoder();

interface Serialised {
  /** Id of the last event the snapshot reflects. */
  id: number;
  /** `,"t":…,"source":…,"hearts":[…]}` and the message's end: all but generatedAt. */
  body: Uint8Array;
}

/** How a new stream starts: snapshot messages, then the events after it. */
export interface StreamStart {
  /** The snapshot message: a small per-client head and the shared body. */
  chunks: Uint8Array[];
  /** Events after the snapshot, for the client's queue. */
  backlog: LoggedEvent[];
}

/** One hub's snapshot cache. */
export class SnapshotCache {
  #cached: Serialised | null = null;
  /** Times the hearts were serialised. */
  builds = 0;

  constructor(private readonly hub: HeartHub) {}

  /**
   * The start of a new stream at `now`. `fits` says whether a backlog fits
   * the client's queue; when the cached snapshot's does not, a new one is
   * serialised. The caller flushes the hub's batcher first (in the same
   * turn), so no event waits outside the log.
   */
  start(
    now: number,
    fits: (backlog: LoggedEvent[]) => boolean,
  ): StreamStart {
    const log = this.hub.events;
    let cached = this.#cached;
    let backlog: LoggedEvent[] = [];
    if (cached && cached.id !== log.lastId) {
      const since = log.since(cached.id);
      if (
        since && byteSize(since) * 2 <= cached.body.byteLength && fits(since)
      ) {
        backlog = since;
      } else cached = null;
    }
    if (!cached) {
      const t = Math.round(now);
      const hearts = this.hub.hearts(now).map((h) =>
        JSON.stringify(encodeHeart(h, t))
      );
      cached = this.#cached = {
        id: log.lastId,
        body: encoder.encode(
          `,"t":${t},"source":${
            JSON.stringify(this.hub.sourceState())
          },"hearts":[${hearts.join(",")}]}\n\n`,
        ),
      };
      this.builds++;
    }
    const head = encoder.encode(
      `id: ${cached.id}\nevent: snapshot\ndata: {"v":${STREAM_PROTOCOL},"generatedAt":${
        JSON.stringify(new Date(now).toISOString())
      }`,
    );
    return { chunks: [head, cached.body], backlog };
  }
}

const caches = new WeakMap<HeartHub, SnapshotCache>();

/** The snapshot cache of `hub` (an agent gets a new hub when it leads again). */
export function snapshotCache(hub: HeartHub): SnapshotCache {
  let cache = caches.get(hub);
  if (!cache) {
    cache = new SnapshotCache(hub);
    caches.set(hub, cache);
  }
  return cache;
}
