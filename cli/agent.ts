/**
 * `earthworm agent`: the in-cluster DaemonSet process. Every agent serves the
 * UI; the agents elect one leader on a Lease; only the leader watches all
 * Leases (one cluster-wide watch per cluster) and answers the API, while
 * followers hand API calls and the SSE stream to it.
 *
 * @module
 */

import {
  inClusterRestConfig,
  KubeRestClient,
  loadKubeConfig,
  type RestConfig,
  restConfigFromKubeConfig,
} from "../agent/kube_client.ts";
import { LeaderElector, RestLeaseLock } from "../agent/leader_election.ts";
import { watchLeases } from "../agent/lease_watcher.ts";
import { createApp } from "../server/api.ts";
import { systemClock } from "../server/clock.ts";
import { HeartHub } from "../server/heart_hub.ts";
import { serveApp } from "../server/http_server.ts";
import { configureLogger, getLogger } from "../server/log.ts";
import type { MetricSamples } from "../server/metrics.ts";
import { UsageError } from "./errors.ts";
import { listFlag, numberFlag, parseFlags, stringFlag } from "./flags.ts";

const log = getLogger("agent");

const HELP = `Usage: earthworm agent [flags]

Runs on every node (DaemonSet). The agents elect a leader on a Lease; the
leader watches every Lease and serves the API; every agent serves the UI and
hands API calls to the leader. Node and pod names come from the downward API
(NODE_NAME, POD_NAME, POD_NAMESPACE, POD_IP).

Flags:
  --port N                 Port to listen on (default 8080)
  --host ADDR              Address to listen on (default 0.0.0.0)
  --identity NAME          Candidate name (default $POD_NAME, else the hostname)
  --address URL            Where other agents reach this one (default http://$POD_IP:PORT)
  --election-namespace NS  Namespace of the election Lease (default $POD_NAMESPACE, else earthworm)
  --election-lease NAME    Name of the election Lease (default earthworm-leader)
  --lease-duration S       Election lease duration in seconds (default 15)
  --renew-deadline S       Renew deadline in seconds (default 10)
  --retry-period S         Retry period in seconds (default 2)
  --namespace NS           Watch only this namespace; repeat for several
  --kubeconfig FILE        Use a kubeconfig instead of the in-cluster ServiceAccount
  --context NAME           Context of that kubeconfig
  --retention S            Seconds of beat history kept per heart (default 3600)
  -h, --help               Show this help
`;

/** Runs `earthworm agent`. */
export async function agentCommand(args: string[]): Promise<number> {
  const flags = parseFlags("earthworm agent", args, {
    port: { type: "string" },
    host: { type: "string" },
    identity: { type: "string" },
    address: { type: "string" },
    "election-namespace": { type: "string" },
    "election-lease": { type: "string" },
    "lease-duration": { type: "string" },
    "renew-deadline": { type: "string" },
    "retry-period": { type: "string" },
    namespace: { type: "string", multiple: true },
    kubeconfig: { type: "string" },
    context: { type: "string" },
    retention: { type: "string" },
  });
  if (flags.values.help) {
    console.log(HELP);
    return 0;
  }
  if (Deno.env.get("KUBERNETES_SERVICE_HOST")) configureLogger({ json: true });
  const env = (name: string) => Deno.env.get(name) || undefined;
  const port = numberFlag(flags, "port", 8080, {
    min: 0,
    max: 65535,
    integer: true,
  });
  const host = stringFlag(flags, "host", "0.0.0.0");
  const identity = stringFlag(flags, "identity") ?? env("POD_NAME") ??
    Deno.hostname();
  const electionNamespace = stringFlag(flags, "election-namespace") ??
    env("POD_NAMESPACE") ?? "earthworm";
  const electionLease = stringFlag(flags, "election-lease", "earthworm-leader");
  const leaseDurationMs =
    numberFlag(flags, "lease-duration", 15, { min: 1, max: 3600 }) * 1000;
  const renewDeadlineMs =
    numberFlag(flags, "renew-deadline", 10, { min: 0.1, max: 3600 }) * 1000;
  const retryPeriodMs =
    numberFlag(flags, "retry-period", 2, { min: 0.05, max: 3600 }) * 1000;
  const retention = numberFlag(flags, "retention", 3600, {
    min: 10,
    max: 7 * 86_400,
  });
  const namespaces = listFlag(flags, "namespace");
  const kubeconfig = stringFlag(flags, "kubeconfig");
  const context = stringFlag(flags, "context");
  const node = env("NODE_NAME") ?? Deno.hostname();

  const rest: RestConfig =
    kubeconfig !== undefined || !env("KUBERNETES_SERVICE_HOST")
      ? await restConfigFromKubeConfig(
        await loadKubeConfig({
          ...(kubeconfig !== undefined && { kubeconfig }),
          ...(context !== undefined && { context }),
        }),
      )
      : inClusterRestConfig();

  const controller = new AbortController();
  const signal = controller.signal;
  let hub: HeartHub | undefined;
  let leader: { identity: string; address: string | undefined } | undefined;
  let elector: LeaderElector | undefined;

  const app = createApp({
    hub: () => (elector?.isLeader() ? hub : undefined),
    forward: () => {
      if (elector?.isLeader()) return null;
      return leader?.address && leader.identity !== identity
        ? leader.address
        : null;
    },
    ready: () => {
      if (elector?.isLeader()) {
        return hub?.sourceState().connected
          ? null
          : "leading, but not watching Leases yet";
      }
      return leader?.address ? null : "no leader elected yet";
    },
    metrics: (): MetricSamples => [{
      name: "earthworm_leader",
      help: "1 while this agent is the elected leader.",
      type: "gauge",
      samples: [{
        labels: { identity, node },
        value: elector?.isLeader() ? 1 : 0,
      }],
    }],
  });
  const server = serveApp(app, { host, port, signal });
  const address = stringFlag(flags, "address") ??
    (env("POD_IP")
      ? `http://${env("POD_IP")}:${server.port}`
      : `http://127.0.0.1:${server.port}`);
  if (!/^https?:\/\/[^/]+$/.test(address)) {
    throw new UsageError(
      `Flag "--address" must be a base URL such as http://10.0.0.5:8080, got "${address}"`,
    );
  }

  const client = new KubeRestClient(rest);
  elector = new LeaderElector({
    lock: new RestLeaseLock(client, electionNamespace, electionLease),
    identity,
    address,
    leaseDurationMs,
    renewDeadlineMs,
    retryPeriodMs,
    callbacks: {
      onStartedLeading(leading) {
        hub = new HeartHub({
          clock: systemClock,
          source: { kind: "cluster", name: rest.server },
        });
        hub.setWireAvailability(false, "no agent has reported wire data yet");
        const current = hub;
        current.runSweeper(leading);
        watchLeases({
          rest,
          namespaces,
          sink: current,
          clock: systemClock,
          signal: leading,
        }).catch((err) => {
          log.error("lease watch stopped", {
            error: err instanceof Error ? err.message : String(err),
          });
        });
        leading.addEventListener("abort", () => current.events.closeAll(), {
          once: true,
        });
      },
      onStoppedLeading() {
        hub = undefined;
      },
      onNewLeader(newIdentity, newAddress) {
        leader = { identity: newIdentity, address: newAddress };
        log.info("leader is now", {
          identity: newIdentity,
          address: newAddress ?? "",
        });
      },
    },
  });

  const onSignal = () => {
    log.info("shutting down: releasing the election Lease");
    controller.abort();
  };
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
  for (const s of signals) Deno.addSignalListener(s, onSignal);
  log.info(`listening on ${server.url}/`, {
    identity,
    node,
    address,
    lease: `${electionNamespace}/${electionLease}`,
  });
  try {
    while (!signal.aborted) {
      await elector.run(signal);
      if (!signal.aborted) {
        await systemClock.sleep(retryPeriodMs, signal).catch(() => {});
      }
    }
  } finally {
    for (const s of signals) Deno.removeSignalListener(s, onSignal);
    client[Symbol.dispose]();
    await server.finished;
  }
  return 0;
}
