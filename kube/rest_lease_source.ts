/**
 * The {@linkcode LeaseSource} on the real API server through the small REST
 * client: paginated lists and watches with bookmarks. In-cluster agents use
 * it (no client-node import), and {@linkcode watchLeases} runs the watch
 * loop on it.
 *
 * @module
 */

import type { KubeConfig } from "@kubernetes/client-node";
import type { Lease } from "../core/lease_types.ts";
import type { LeaseSource, RawWatchEvent } from "../core/lease_source.ts";
import { leasePath, leasesPath, livenessQuery, toLease } from "./lease_api.ts";
import { restConfigFromKubeConfig } from "./kubeconfig.ts";
import {
  decodeLeaseList,
  decodeWatchEvent,
  type LeasePage,
} from "./lease_protobuf.ts";
import {
  KubeApiError,
  KubeRestClient,
  type RestConfig,
} from "./rest_client.ts";
import { type LeaseWatchOptions, runLeaseWatch } from "./watch_loop.ts";

interface RawList {
  metadata?: { resourceVersion?: string; continue?: string };
  items?: unknown[];
}

/** A list answer in either encoding as one page of Leases. */
function leasePage(
  answer: { protobuf: Uint8Array } | { json: unknown },
  namespace: string,
): LeasePage {
  if ("protobuf" in answer) return decodeLeaseList(answer.protobuf, namespace);
  const raw = answer.json as RawList;
  const page: LeasePage = {
    items: (raw.items ?? []).map((item) => toLease(item, namespace)),
  };
  if (raw.metadata?.resourceVersion) {
    page.resourceVersion = raw.metadata.resourceVersion;
  }
  if (raw.metadata?.continue) page.continue = raw.metadata.continue;
  return page;
}

/**
 * A {@linkcode LeaseSource} on the real API server: paginated lists (500 per
 * page), watches with bookmarks, an empty list from the watch cache as the
 * liveness read, and quorum GETs of one Lease. A watch that sends nothing
 * for `idleMs` (default 150 s; bookmarks arrive about once a minute) counts
 * as failed.
 */
export function restLeaseSource(
  client: KubeRestClient,
  idleMs = 150_000,
): LeaseSource {
  return {
    async list(namespace, signal) {
      const items: Lease[] = [];
      let cont: string | undefined;
      let resourceVersion = "";
      do {
        const q = new URLSearchParams({ limit: "500" });
        if (cont) q.set("continue", cont);
        const page = leasePage(
          await client.getProtobufOrJson(
            `${leasesPath(namespace)}?${q}`,
            signal,
          ),
          namespace ?? "",
        );
        items.push(...page.items);
        resourceVersion = page.resourceVersion ?? resourceVersion;
        cont = page.continue || undefined;
      } while (cont);
      return { items, resourceVersion };
    },
    watch(req) {
      const q = new URLSearchParams({
        watch: "1",
        resourceVersion: req.resourceVersion,
        allowWatchBookmarks: "true",
        timeoutSeconds: String(req.timeoutSeconds),
      });
      // Every Lease update of the cluster comes through here: a connection
      // of its own, read without fetch's per-chunk cost, in protobuf (about
      // half the bytes, and managedFields skipped instead of parsed).
      const namespace = req.namespace ?? "";
      return client.stream(`${leasesPath(req.namespace)}?${q}`, {
        onLine: (v) => req.onEvent(v as RawWatchEvent),
        onFrame: (frame) => req.onEvent(decodeWatchEvent(frame, namespace)),
        signal: req.signal,
        idleMs,
        onOpen: req.onOpen,
        ownConnection: true,
      });
    },
    async ping(namespace, signal) {
      await client.request(
        "GET",
        `${leasesPath(namespace)}?${livenessQuery()}`,
        undefined,
        signal,
      );
    },
    async read(namespace, name, signal) {
      try {
        // No resourceVersion: the API server reads etcd (a quorum read).
        const raw = await client.request(
          "GET",
          leasePath(namespace, name),
          undefined,
          signal,
        );
        return toLease(raw, namespace);
      } catch (err) {
        if (err instanceof KubeApiError && err.code === 404) return null;
        throw err;
      }
    },
  };
}

/** Options of {@linkcode watchLeases}. */
export interface WatchLeasesOptions extends Omit<LeaseWatchOptions, "source"> {
  /** A loaded client-node KubeConfig (its current context is used)... */
  kubeConfig?: KubeConfig;
  /** ...or a ready REST configuration (e.g. `inClusterRestConfig()`). */
  rest?: RestConfig;
  /** Idle limit of one watch stream in milliseconds. */
  idleMs?: number;
}

/**
 * Lists and watches Leases on a real API server into `sink` until `signal`
 * aborts. Takes either a client-node KubeConfig or a RestConfig.
 */
export async function watchLeases(opts: WatchLeasesOptions): Promise<void> {
  const rest = opts.rest ??
    (opts.kubeConfig
      ? await restConfigFromKubeConfig(opts.kubeConfig)
      : undefined);
  if (!rest) {
    throw new TypeError("watchLeases needs either kubeConfig or rest");
  }
  using client = new KubeRestClient(rest);
  await runLeaseWatch({
    ...opts,
    source: restLeaseSource(client, opts.idleMs),
  });
}
