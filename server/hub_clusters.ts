/**
 * The clusters a hub watches, each with its own view of its API server:
 * whether Earthworm can see it, why not, since when, the episode of that
 * blindness and its diagnosis, and the reads that confirm its hearts'
 * silences. A hub of one cluster has one unnamed entry and reports it as
 * `source`, as it always did; a hub of several reports each in
 * `source.clusters` and their aggregate in `source`.
 *
 * @module
 */

import type {
  ClusterState,
  Diagnosis,
  SourceState,
} from "../core/api_types.ts";
import type { ExpiryConfirmer, ReadLease } from "./expiry_confirmer.ts";
import type { HeartState } from "./heart.ts";

/** One cluster of a hub that watches several. */
export interface HubCluster {
  /** Its name, unique among the hub's clusters (the kubeconfig context by default). */
  name: string;
  /** Its API server's URL. */
  server: string;
  /** Reads one of its Leases fresh (see `HeartHubOptions.confirm`). */
  confirm?: ReadLease;
  /** Called when a fresh read shows its view stale (wire it to its watch loop). */
  onStale?: (reason: string) => void;
}

/** What the hub knows of one cluster's API server. */
export interface ClusterEntry {
  /** Its name; undefined for the one cluster of a single-cluster hub. */
  readonly name: string | undefined;
  readonly server: string;
  connected: boolean;
  /** Why it cannot be seen, while it cannot. */
  reason: string | undefined;
  /** Last change of `connected`, epoch ms. */
  since: number;
  /** While blind: the diagnosis of that blindness. */
  diagnosis: Diagnosis | undefined;
  /** The last episode of blindness, and until when late evidence may still change it. */
  episode: { start: number; end: number | null } | null;
  readonly confirmer: ExpiryConfirmer | undefined;
  readonly onStale: ((reason: string) => void) | undefined;
  /** Its hearts, by id. */
  readonly hearts: Map<string, HeartState>;
  /** The same hearts by namespace, then name: how a Lease update finds its heart. */
  readonly byLease: Map<string, Map<string, HeartState>>;
}

/**
 * Checks the names of a hub's clusters: each non-empty and unique. Throws a
 * RangeError naming the problem.
 */
export function checkClusterNames(names: readonly string[]): void {
  if (names.length === 0) {
    throw new RangeError("A hub of several clusters needs at least one");
  }
  const seen = new Set<string>();
  for (const name of names) {
    if (name.trim() === "") {
      throw new RangeError("A cluster name must not be empty: name it");
    }
    if (seen.has(name)) {
      throw new RangeError(
        `Cluster name "${name}" is given twice: cluster names must be unique`,
      );
    }
    seen.add(name);
  }
}

/** Words for the API server of `entry` in diagnoses. */
export function apiServerOf(entry: ClusterEntry): string {
  return entry.name === undefined
    ? "the API server"
    : `the API server of cluster "${entry.name}"`;
}

/** The API's view of one cluster. */
export function clusterState(entry: ClusterEntry): ClusterState {
  return {
    name: entry.name ?? "",
    server: entry.server,
    connected: entry.connected,
    ...(entry.reason !== undefined && !entry.connected &&
      { reason: entry.reason }),
    since: new Date(entry.since).toISOString(),
    ...(entry.diagnosis !== undefined && { diagnosis: entry.diagnosis }),
  };
}

/**
 * The `source` of a hub of several clusters: connected only while every
 * cluster is; the reason names each blind cluster; `since` is when that
 * last changed (the latest reconnection while all are connected, else the
 * earliest loss among the blind ones); the diagnosis is the first blind
 * cluster's.
 */
export function aggregateSource(
  base: Pick<SourceState, "kind" | "name" | "timeScale" | "wire">,
  clusters: readonly ClusterState[],
): SourceState {
  const blind = clusters.filter((c) => !c.connected);
  const times = (list: readonly ClusterState[]) =>
    list.map((c) => Date.parse(c.since));
  const since = blind.length === 0
    ? Math.max(...times(clusters))
    : Math.min(...times(blind));
  const diagnosis = blind.find((c) => c.diagnosis)?.diagnosis;
  return {
    kind: base.kind,
    name: base.name,
    connected: blind.length === 0,
    ...(blind.length > 0 && {
      reason: blind.map((c) =>
        `cluster "${c.name}": ${c.reason ?? "its API server cannot be reached"}`
      ).join("; "),
    }),
    since: new Date(since).toISOString(),
    timeScale: base.timeScale,
    ...(base.wire !== undefined && { wire: base.wire }),
    ...(diagnosis !== undefined && { diagnosis }),
    clusters: [...clusters],
  };
}
