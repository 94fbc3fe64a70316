/**
 * REST calls of the UI to Earthworm's API.
 *
 * @module
 */

import type {
  BeatsResponse,
  EpisodesResponse,
  ErrorResponse,
} from "../core/api_types.ts";

/** A request the server answered with an error status. */
export class LoadError extends Error {
  /** The HTTP status. */
  readonly status: number;

  /** `message` is the server's own (English) explanation. */
  constructor(message: string, status: number) {
    super(message);
    this.name = "LoadError";
    this.status = status;
  }
}

/**
 * Fetches a heart's beats, oldest first: those after `since` (epoch ms), at
 * most `limit`; `cluster` names its cluster when several are watched.
 */
export async function fetchBeats(
  namespace: string,
  name: string,
  query: { since?: number; limit?: number; cluster?: string | undefined },
  signal?: AbortSignal,
): Promise<BeatsResponse> {
  const params = new URLSearchParams();
  if (query.cluster !== undefined) params.set("cluster", query.cluster);
  if (query.since !== undefined) {
    params.set("since", new Date(query.since).toISOString());
  }
  if (query.limit !== undefined) params.set("limit", String(query.limit));
  const path = `/api/v1/hearts/${encodeURIComponent(namespace)}/${
    encodeURIComponent(name)
  }/beats`;
  const res = await fetch(
    `${path}?${params}`,
    signal === undefined ? {} : { signal },
  );
  const body: unknown = await res.json().catch(() => null);
  if (!res.ok) {
    const error = (body as ErrorResponse | null)?.error;
    throw new LoadError(
      error ??
        `Cannot load beats of "${namespace}/${name}": HTTP ${res.status}`,
      res.status,
    );
  }
  return body as BeatsResponse;
}

/** Fetches a heart's episodes (late or expired, and why), oldest first. */
export async function fetchEpisodes(
  namespace: string,
  name: string,
  cluster: string | undefined,
  signal?: AbortSignal,
): Promise<EpisodesResponse> {
  const query = cluster === undefined
    ? ""
    : `?cluster=${encodeURIComponent(cluster)}`;
  const res = await fetch(
    `/api/v1/hearts/${encodeURIComponent(namespace)}/${
      encodeURIComponent(name)
    }/episodes${query}`,
    signal === undefined ? {} : { signal },
  );
  const body: unknown = await res.json().catch(() => null);
  if (!res.ok) {
    throw new LoadError(
      (body as ErrorResponse | null)?.error ??
        `Cannot load episodes of "${namespace}/${name}": HTTP ${res.status}`,
      res.status,
    );
  }
  return body as EpisodesResponse;
}

/**
 * Loads the recent history of hearts that appear on screen, a few at a
 * time; a heart that left the screen before its turn came is skipped (a
 * fast scroll past thousands of hearts asks for none of them).
 */
export class HistoryLoader {
  #pending: Array<
    { key: string; run: () => Promise<void>; wanted: () => boolean }
  > = [];
  #inFlight = 0;
  #requested = new Set<string>();
  #concurrency: number;
  /** Requests skipped because their heart had left the screen. */
  skipped = 0;

  /** At most `concurrency` requests run at once. */
  constructor(concurrency = 4) {
    this.#concurrency = concurrency;
  }

  /**
   * Queues `load` for `key` unless it is queued or running already; when
   * its turn comes it runs only if `wanted()` still says so.
   */
  request(
    key: string,
    load: () => Promise<void>,
    wanted: () => boolean = () => true,
  ): void {
    if (this.#requested.has(key)) return;
    this.#requested.add(key);
    this.#pending.push({ key, run: load, wanted });
    this.#pump();
  }

  #pump(): void {
    while (this.#inFlight < this.#concurrency) {
      const next = this.#pending.shift();
      if (next === undefined) return;
      if (!next.wanted()) {
        this.#requested.delete(next.key);
        this.skipped++;
        continue;
      }
      this.#inFlight++;
      next.run().catch(() => {}).finally(() => {
        this.#requested.delete(next.key);
        this.#inFlight--;
        this.#pump();
      });
    }
  }
}
