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
  stringFlag,
} from "./flags.ts";
import { serveHub } from "./serve_hub.ts";

const HELP = `Usage: earthworm watch [flags]

Watches the Leases of a real cluster (every namespace, or the ones given) and
serves the cardiogram UI and API on localhost.

Flags:
  --kubeconfig FILE   Kubeconfig to use (default $KUBECONFIG or ~/.kube/config)
  --context NAME      Context of the kubeconfig (default its current context)
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
    kubeconfig: { type: "string" },
    context: { type: "string" },
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
  const kubeconfig = stringFlag(flags, "kubeconfig");
  const context = stringFlag(flags, "context");
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
