/**
 * A {@linkcode LeaseSource} on `@kubernetes/client-node`: `CoordinationV1Api`
 * lists (paginated) and client-node's `Watch` streams. `earthworm watch` uses
 * it from a laptop, where the library's kubeconfig handling (contexts, exec
 * plugins, proxies) matters and its memory does not. The loop around it
 * (`watch_loop.ts`) owns resumption, relisting and backoff, which covers
 * the library's gaps: its informer stops on errors other than 410; under
 * 2.0.1 an aborted watch never calls `done`, so this source settles the watch
 * itself when its signal aborts; and a watch whose API server restarted is
 * never ended either (measured here). So a watch that delivers nothing for
 * `idleMs` is ended as if the server had closed it: the loop watches again
 * from the last resourceVersion at once, which costs one request on a quiet
 * watch and finds out, by failing, when the API server is really gone.
 *
 * Lists, the liveness read and fresh reads of one Lease end when their signal
 * aborts: the signal reaches client-node's fetch through a per-request
 * middleware, so a frozen API server leaves no request hanging.
 *
 * In-cluster agents use the fetch-based source in `rest_lease_source.ts`
 * instead: importing client-node costs about 70 MB of resident memory on
 * every node.
 *
 * @module
 */

import type {
  ConfigurationOptions,
  KubeConfig,
  RequestContext,
  ResponseContext,
} from "@kubernetes/client-node";
import type { LeaseList, LeaseSource } from "../core/lease_source.ts";
import { leasesPath, LIVENESS_FIELD_SELECTOR, toLease } from "./lease_api.ts";
import type { Lease } from "../core/lease_types.ts";

const PAGE = 500;

/** Builds the source for the current context of `kc`. */
export async function clientNodeLeaseSource(
  kc: KubeConfig,
  opts: { idleMs?: number } = {},
): Promise<LeaseSource> {
  const idleMs = opts.idleMs ?? 15_000;
  const k8s = await import("@kubernetes/client-node");
  const api = kc.makeApiClient(k8s.CoordinationV1Api);
  const watcher = new k8s.Watch(kc);
  /** Per-request options that make the request end when `signal` aborts. */
  const abortable = (signal: AbortSignal): ConfigurationOptions => ({
    middleware: [{
      pre: (request: RequestContext) => {
        request.setSignal(signal);
        return new k8s.Observable(Promise.resolve(request));
      },
      post: (response: ResponseContext) =>
        new k8s.Observable(Promise.resolve(response)),
    }],
    middlewareMergeStrategy: "append",
  });
  return {
    async list(namespace, signal): Promise<LeaseList> {
      const items: Lease[] = [];
      let cont: string | undefined;
      let resourceVersion = "";
      do {
        signal.throwIfAborted();
        const page = namespace === undefined
          ? await api.listLeaseForAllNamespaces({
            limit: PAGE,
            ...(cont && { _continue: cont }),
          }, abortable(signal))
          : await api.listNamespacedLease({
            namespace,
            limit: PAGE,
            ...(cont && { _continue: cont }),
          }, abortable(signal));
        for (const item of page.items) items.push(toLease(item, namespace));
        resourceVersion = page.metadata?.resourceVersion ?? resourceVersion;
        cont = page.metadata?._continue || undefined;
      } while (cont);
      return { items, resourceVersion };
    },

    async ping(namespace, signal): Promise<void> {
      // An empty list from the watch cache: see livenessQuery().
      const query = {
        resourceVersion: "0",
        fieldSelector: LIVENESS_FIELD_SELECTOR,
        limit: 1,
      };
      if (namespace === undefined) {
        await api.listLeaseForAllNamespaces(query, abortable(signal));
      } else {
        await api.listNamespacedLease(
          { namespace, ...query },
          abortable(signal),
        );
      }
    },

    async read(namespace, name, signal): Promise<Lease | null> {
      try {
        return toLease(
          await api.readNamespacedLease(
            { namespace, name },
            abortable(signal),
          ),
          namespace,
        );
      } catch (err) {
        if (err instanceof k8s.ApiException && err.code === 404) return null;
        throw err;
      }
    },

    watch(request): Promise<void> {
      const { signal } = request;
      return new Promise<void>((resolve, reject) => {
        let settled = false;
        let controller: AbortController | undefined;
        let idle: ReturnType<typeof setTimeout> | undefined;
        const arm = () => {
          clearTimeout(idle);
          idle = setTimeout(() => settle(), idleMs);
        };
        const settle = (err?: unknown) => {
          if (settled) return;
          settled = true;
          clearTimeout(idle);
          signal.removeEventListener("abort", onAbort);
          controller?.abort();
          if (err === undefined || err === null) resolve();
          else reject(err);
        };
        // client-node 2.0.1 never calls `done` for an aborted watch.
        const onAbort = () => settle();
        if (signal.aborted) return settle();
        signal.addEventListener("abort", onAbort, { once: true });
        arm();
        watcher.watch(
          leasesPath(request.namespace),
          {
            resourceVersion: request.resourceVersion,
            allowWatchBookmarks: true,
            timeoutSeconds: request.timeoutSeconds,
          },
          (type, object) => {
            if (settled) return;
            arm();
            try {
              request.onEvent({ type, object });
            } catch (err) {
              settle(err);
            }
          },
          (err) => settle(signal.aborted ? undefined : err),
        ).then((c) => {
          controller = c;
          if (settled) c.abort();
          else request.onOpen();
        }, settle);
      });
    },
  };
}
