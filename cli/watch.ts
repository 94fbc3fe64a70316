/**
 * `earthworm watch`: watch a real cluster's Leases from a kubeconfig and serve
 * the UI and API on localhost. Runs on `@kubernetes/client-node` (kubeconfig
 * contexts, exec plugins, its Lease API and Watch) under Earthworm's own
 * list/watch loop. No eBPF: wire data comes only from agents.
 *
 * @module
 */

import { loadKubeConfig } from "../kube/kubeconfig.ts";
import { clientNodeLeaseSource } from "../kube/client_node_source.ts";
import { runLeaseWatch, WatchControl } from "../kube/watch_loop.ts";
import { systemClock } from "../core/clock.ts";
import { UsageError } from "../core/errors.ts";
import {
  listFlag,
  outputHelp,
  parseFlags,
  SERVE_FLAGS,
  serveSettings,
} from "./flags.ts";
import { serveHub } from "./serve_hub.ts";
import { readKubeconfig } from "../kube/kubeconfig_file.ts";
import type { HubCluster } from "../server/hub_clusters.ts";
import type { LeaseSource } from "../core/lease_source.ts";
import {
  chooseWatchTargets,
  type KubeconfigContexts,
  type WatchTarget,
} from "./watch_clusters.ts";

const HELP = `Usage: earthworm watch [flags]

Watches the Leases of a real cluster, or of several (every namespace, or the
ones given) and serves the cardiogram UI and API on localhost.

Several clusters: repeat --context (each is taken from the first kubeconfig
given that defines it) or --kubeconfig (each kubeconfig none of the contexts
given is in adds its current context). Each cluster is named after its
context; its hearts are shown with that name.

Flags:
  --kubeconfig FILE   Kubeconfig to use (default $KUBECONFIG or ~/.kube/config);
                      repeat for several
  --context NAME      Context of the kubeconfig (default its current context);
                      repeat for several
  --namespace NS      Watch only this namespace; repeat for several
  --port N            Port to listen on (default 8080; 0 picks a free one)
  --host ADDR         Address to listen on (default 127.0.0.1)
  --retention S       Seconds of beat history kept per heart (default 3600)
${outputHelp(22)}
  -h, --help          Show this help
`;

/** Runs `earthworm watch`. */
export async function watchCommand(args: string[]): Promise<number> {
  const flags = parseFlags("earthworm watch", args, {
    ...SERVE_FLAGS,
    kubeconfig: { type: "string", multiple: true },
    context: { type: "string", multiple: true },
    namespace: { type: "string", multiple: true },
  });
  if (flags.values.help) {
    console.log(HELP);
    return 0;
  }
  const serve = serveSettings(flags, "127.0.0.1");
  const namespaces = listFlag(flags, "namespace");
  for (const ns of namespaces) {
    if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(ns)) {
      throw new UsageError(
        `Flag "--namespace" must be a Kubernetes namespace name, got "${ns}"`,
      );
    }
  }
  const kubeconfigs = listFlag(flags, "kubeconfig");
  const contexts = listFlag(flags, "context");
  if (kubeconfigs.length > 1 || contexts.length > 1) {
    return await watchClusters(
      await watchTargets(kubeconfigs, contexts),
      namespaces,
      serve,
    );
  }
  const kubeconfig = kubeconfigs[0];
  const context = contexts[0];
  const kc = await loadKubeConfig({
    ...(kubeconfig !== undefined && { kubeconfig }),
    ...(context !== undefined && { context }),
  });
  const server = kc.getCurrentCluster()?.server ?? "(unknown server)";
  const source = await clientNodeLeaseSource(kc);
  const control = new WatchControl();
  const served = await serveHub({
    clock: systemClock,
    source: { kind: "cluster", name: server },
    host: serve.host,
    port: serve.port,
    retentionMs: serve.retentionMs,
    webhooks: serve.webhooks,
    perHeartMetrics: serve.perHeartMetrics,
    ...(serve.externalUrl !== undefined && { externalUrl: serve.externalUrl }),
    confirm: (namespace, name, signal) => source.read(namespace, name, signal),
    onStale: (reason) => control.relist(reason),
  });
  served.hub.setWireAvailability(
    false,
    "earthworm watch runs off-cluster: wire data comes from in-cluster agents",
    undefined,
    { reasonPhrase: { id: "wire.offCluster", args: {} } },
  );
  await runLeaseWatch({
    source,
    namespaces,
    sink: served.hub,
    clock: systemClock,
    signal: served.signal,
    control,
  });
  await served.finished;
  return 0;
}

/** The clusters named by repeated `--kubeconfig` and `--context` flags. */
async function watchTargets(
  kubeconfigs: string[],
  contexts: string[],
): Promise<WatchTarget[]> {
  const known: KubeconfigContexts[] = [];
  for (const path of kubeconfigs.length > 0 ? kubeconfigs : [undefined]) {
    const found = await readKubeconfig(
      path === undefined ? {} : { kubeconfig: path },
    );
    if (found === "in-cluster") {
      throw new UsageError(
        "Several clusters need kubeconfigs, and none was found (only the in-cluster ServiceAccount): pass --kubeconfig FILE for each",
      );
    }
    const names = found.files.flatMap((f) =>
      Array.isArray(f.doc.contexts)
        ? f.doc.contexts.flatMap((c: unknown) =>
          typeof c === "object" && c !== null &&
            typeof (c as { name?: unknown }).name === "string"
            ? [(c as { name: string }).name]
            : []
        )
        : []
    );
    known.push({
      path,
      contexts: names,
      current: found.context.name,
    });
  }
  return chooseWatchTargets(known, contexts);
}

/** Watches several clusters, each with its own watch loop, into one hub. */
async function watchClusters(
  targets: WatchTarget[],
  namespaces: string[],
  serve: ReturnType<typeof serveSettings>,
): Promise<number> {
  const watched: {
    target: WatchTarget;
    source: LeaseSource;
    control: WatchControl;
    cluster: HubCluster;
  }[] = [];
  for (const target of targets) {
    const kc = await loadKubeConfig({
      ...(target.kubeconfig !== undefined &&
        { kubeconfig: target.kubeconfig }),
      context: target.context,
    });
    const source = await clientNodeLeaseSource(kc);
    const control = new WatchControl();
    watched.push({
      target,
      source,
      control,
      cluster: {
        name: target.name,
        server: kc.getCurrentCluster()?.server ?? "(unknown server)",
        confirm: (namespace, name, signal) =>
          source.read(namespace, name, signal),
        onStale: (reason) => control.relist(reason),
      },
    });
  }
  const served = await serveHub({
    clock: systemClock,
    source: { kind: "cluster", name: targets.map((t) => t.name).join(", ") },
    clusters: watched.map((w) => w.cluster),
    host: serve.host,
    port: serve.port,
    retentionMs: serve.retentionMs,
    webhooks: serve.webhooks,
    perHeartMetrics: serve.perHeartMetrics,
    ...(serve.externalUrl !== undefined && { externalUrl: serve.externalUrl }),
  });
  served.hub.setWireAvailability(
    false,
    "earthworm watch runs off-cluster: wire data comes from in-cluster agents",
  );
  await Promise.all(watched.map((w) =>
    runLeaseWatch({
      source: w.source,
      namespaces,
      sink: served.hub.sink(w.target.name),
      clock: systemClock,
      signal: served.signal,
      control: w.control,
    })
  ));
  await served.finished;
  return 0;
}
