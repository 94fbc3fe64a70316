/**
 * Which hearts the overview shows and in what order: worst status first,
 * filtered by cluster, namespace, kind, status and a name search.
 *
 * @module
 */

import {
  type Heart,
  type HeartKind,
  type HeartStatus,
  STATUS_SEVERITY,
} from "../core/api_types.ts";

/** The overview's filter, as kept in the URL. */
export interface OverviewFilter {
  /** Case-insensitive substring of the name, namespace or holder. */
  search: string;
  /** Cluster to show, or "" for all (several clusters watched only). */
  cluster: string;
  /** Namespace to show, or "" for all. */
  namespace: string;
  /** Kind to show, or "" for all. */
  kind: HeartKind | "";
  /** Status to show, or "" for all. */
  status: HeartStatus | "";
}

/** The filter that shows everything. */
export const NO_FILTER: OverviewFilter = {
  search: "",
  cluster: "",
  namespace: "",
  kind: "",
  status: "",
};

/** Hearts matching `filter`, worst status first, then by cluster, namespace and name. */
export function selectHearts(
  hearts: Iterable<Heart>,
  filter: OverviewFilter,
): Heart[] {
  const needle = filter.search.trim().toLowerCase();
  const out: Heart[] = [];
  for (const heart of hearts) {
    if (filter.cluster !== "" && heart.cluster !== filter.cluster) continue;
    if (filter.namespace !== "" && heart.namespace !== filter.namespace) {
      continue;
    }
    if (filter.kind !== "" && heart.kind !== filter.kind) continue;
    if (filter.status !== "" && heart.status !== filter.status) continue;
    if (needle !== "" && !matches(heart, needle)) continue;
    out.push(heart);
  }
  // Names never change: their order is worked out once per set of hearts
  // (the collator is slow), and each re-sort compares numbers.
  const rank = nameRanks(out);
  return out.sort((a, b) =>
    STATUS_SEVERITY[a.status] - STATUS_SEVERITY[b.status] ||
    rank.get(a.id)! - rank.get(b.id)!
  );
}

/** Order by cluster, namespace and name of every heart ranked so far, by id. */
let ranks = new Map<string, number>();

function nameRanks(hearts: readonly Heart[]): Map<string, number> {
  if (hearts.every((h) => ranks.has(h.id))) return ranks;
  const byName = (a: Heart, b: Heart) => {
    const ca = a.cluster ?? "", cb = b.cluster ?? "";
    if (ca !== cb) return ca < cb ? -1 : 1;
    return a.namespace !== b.namespace
      ? (a.namespace < b.namespace ? -1 : 1)
      : naturalCompare(a.name, b.name);
  };
  ranks = new Map(
    [...hearts].sort(byName).map((h, i) => [h.id, i] as [string, number]),
  );
  return ranks;
}

/** Orders hearts worst status first, then by cluster, namespace and name. */
export function compareHearts(a: Heart, b: Heart): number {
  const bySeverity = STATUS_SEVERITY[a.status] - STATUS_SEVERITY[b.status];
  if (bySeverity !== 0) return bySeverity;
  const ca = a.cluster ?? "", cb = b.cluster ?? "";
  if (ca !== cb) return ca < cb ? -1 : 1;
  if (a.namespace !== b.namespace) return a.namespace < b.namespace ? -1 : 1;
  return naturalCompare(a.name, b.name);
}

/** Sorted namespaces of `hearts`. */
export function namespacesOf(hearts: Iterable<Heart>): string[] {
  const set = new Set<string>();
  for (const heart of hearts) set.add(heart.namespace);
  return [...set].sort();
}

/** Sorted clusters of `hearts` (empty when one cluster is watched). */
export function clustersOf(hearts: Iterable<Heart>): string[] {
  const set = new Set<string>();
  for (const heart of hearts) {
    if (heart.cluster !== undefined) set.add(heart.cluster);
  }
  return [...set].sort();
}

/** Number of hearts in each status. */
export function countByStatus(
  hearts: Iterable<Heart>,
): Record<HeartStatus, number> {
  const counts: Record<HeartStatus, number> = {
    expired: 0,
    late: 0,
    unknown: 0,
    healthy: 0,
  };
  for (const heart of hearts) counts[heart.status]++;
  return counts;
}

function matches(heart: Heart, needle: string): boolean {
  return heart.name.toLowerCase().includes(needle) ||
    heart.namespace.toLowerCase().includes(needle) ||
    (heart.cluster?.toLowerCase().includes(needle) ?? false) ||
    (heart.holder?.toLowerCase().includes(needle) ?? false);
}

const collator = new Intl.Collator("en", { numeric: true });

/** Compares names so that `node-2` sorts before `node-10`. */
function naturalCompare(a: string, b: string): number {
  return collator.compare(a, b);
}
