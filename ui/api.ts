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

/** Fetches a heart's beats, oldest first: those after `since` (epoch ms), at most `limit`. */
export async function fetchBeats(
  namespace: string,
  name: string,
  query: { since?: number; limit?: number },
  signal?: AbortSignal,
): Promise<BeatsResponse> {
  const params = new URLSearchParams();
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
    throw new Error(
      error ??
        `Cannot load beats of "${namespace}/${name}": HTTP ${res.status}`,
    );
  }
  return body as BeatsResponse;
}

/** Fetches a heart's episodes (late or expired, and why), oldest first. */
export async function fetchEpisodes(
  namespace: string,
  name: string,
  signal?: AbortSignal,
): Promise<EpisodesResponse> {
  const res = await fetch(
    `/api/v1/hearts/${encodeURIComponent(namespace)}/${
      encodeURIComponent(name)
    }/episodes`,
    signal === undefined ? {} : { signal },
  );
  const body: unknown = await res.json().catch(() => null);
  if (!res.ok) {
    throw new Error(
      (body as ErrorResponse | null)?.error ??
        `Cannot load episodes of "${namespace}/${name}": HTTP ${res.status}`,
    );
  }
  return body as EpisodesResponse;
}

/** Loads the recent history of hearts that appear on screen, a few at a time. */
export class HistoryLoader {
  #pending: Array<() => Promise<void>> = [];
  #inFlight = 0;
  #requested = new Set<string>();
  #concurrency: number;

  /** At most `concurrency` requests run at once. */
  constructor(concurrency = 4) {
    this.#concurrency = concurrency;
  }

  /** Queues `load` for `key` unless it is queued or running already. */
  request(key: string, load: () => Promise<void>): void {
    if (this.#requested.has(key)) return;
    this.#requested.add(key);
    this.#pending.push(async () => {
      try {
        await load();
      } finally {
        this.#requested.delete(key);
      }
    });
    this.#pump();
  }

  #pump(): void {
    while (this.#inFlight < this.#concurrency) {
      const next = this.#pending.shift();
      if (next === undefined) return;
      this.#inFlight++;
      next().catch(() => {}).finally(() => {
        this.#inFlight--;
        this.#pump();
      });
    }
  }
}
