/**
 * The UI's location in the URL hash: `#/` with the overview's filter as
 * query parameters, or `#/heart/<namespace>/<name>` for one heart
 * (`#/heart/<cluster>/<namespace>/<name>` when several clusters are watched).
 *
 * @module
 */

import type { HeartKind, HeartStatus } from "../core/api_types.ts";
import { NO_FILTER, type OverviewFilter } from "./overview_filter.ts";

/** Where the UI is. */
export type Route =
  | { view: "overview"; filter: OverviewFilter }
  | { view: "heart"; namespace: string; name: string; cluster?: string };

const KINDS: readonly string[] = ["node", "lease"];
const STATUSES: readonly string[] = ["healthy", "late", "expired", "unknown"];

/** Parses a location hash such as `#/heart/kube-node-lease/node-1`. */
export function parseRoute(hash: string): Route {
  const path = hash.replace(/^#/, "");
  const [pathname = "", query = ""] = path.split("?", 2);
  const parts = pathname.split("/").filter((p) => p !== "");
  if (parts[0] === "heart" && parts.length === 3) {
    return {
      view: "heart",
      namespace: safeDecode(parts[1]!),
      name: safeDecode(parts[2]!),
    };
  }
  if (parts[0] === "heart" && parts.length === 4) {
    return {
      view: "heart",
      cluster: safeDecode(parts[1]!),
      namespace: safeDecode(parts[2]!),
      name: safeDecode(parts[3]!),
    };
  }
  const params = new URLSearchParams(query);
  const kind = params.get("kind") ?? "";
  const status = params.get("status") ?? "";
  return {
    view: "overview",
    filter: {
      search: params.get("q") ?? "",
      cluster: params.get("cluster") ?? "",
      namespace: params.get("ns") ?? "",
      kind: KINDS.includes(kind) ? kind as HeartKind : "",
      status: STATUSES.includes(status) ? status as HeartStatus : "",
    },
  };
}

/** Formats a route as a location hash. */
export function formatRoute(route: Route): string {
  if (route.view === "heart") {
    const cluster = route.cluster === undefined
      ? ""
      : `${encodeURIComponent(route.cluster)}/`;
    return `#/heart/${cluster}${encodeURIComponent(route.namespace)}/${
      encodeURIComponent(route.name)
    }`;
  }
  const params = new URLSearchParams();
  const f = route.filter;
  if (f.search !== NO_FILTER.search) params.set("q", f.search);
  if (f.cluster !== "") params.set("cluster", f.cluster);
  if (f.namespace !== "") params.set("ns", f.namespace);
  if (f.kind !== "") params.set("kind", f.kind);
  if (f.status !== "") params.set("status", f.status);
  const query = params.toString();
  return query === "" ? "#/" : `#/?${query}`;
}

function safeDecode(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}
