/**
 * `earthworm agent`: the in-cluster DaemonSet process. Every agent serves the
 * UI; the agents elect one leader on a Lease; only the leader watches all
 * Leases (one cluster-wide watch per cluster) and answers the API, while
 * followers hand API calls and the SSE stream to it.
 *
 * @module
 */

import { KubeRestClient, type RestConfig } from "../kube/rest_client.ts";
import {
  inClusterRestConfig,
  kubeconfigRestConfig,
} from "../kube/kubeconfig.ts";
import { LeaderElector } from "../kube/leader_election.ts";
import { RestLeaseLock } from "../kube/lease_lock.ts";
import { restLeaseSource, watchLeases } from "../kube/rest_lease_source.ts";
import { WatchControl } from "../kube/watch_loop.ts";
import { tokenReviewAuthenticator } from "../kube/token_review.ts";
import { type OpenedProbe, runWireReporter } from "../wire/wire_reporter.ts";
import { type ExactProbe, NodeProbe } from "../wire/node_probe.ts";
import type { ProbeState } from "../core/wire_types.ts";
import { tokenFileReader } from "../core/token_file.ts";
import { createApp } from "../server/api.ts";
import { sleepUnlessAborted, systemClock } from "../core/clock.ts";
import { HeartHub } from "../server/heart_hub.ts";
import { runWebhooks } from "../server/webhooks.ts";
import { serveApp } from "../server/http_server.ts";
import { isLoopbackAddress } from "../server/http_guard.ts";
import { configureLogger, getLogger } from "../core/log.ts";
import type { MetricSamples } from "../server/metrics.ts";
import { UsageError } from "../core/errors.ts";
import {
  listFlag,
  numberFlag,
  outputHelp,
  parseFlags,
  SERVE_FLAGS,
  serveSettings,
  stringFlag,
} from "./flags.ts";
import { onShutdownSignal } from "./signals.ts";

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
${outputHelp(27)}
  --comm NAME              Process whose API connections the eBPF probe follows (default kubelet)
  --apiserver-port N       API server port the kubelet connects to (default: found
                           from the kubelet's kubeconfig or its connections)
  --no-ebpf                Do not load the eBPF probe: run lease-only
  --no-uprobes             Do not trace the kubelet's Go TLS layer: infer each
                           renewal's exchange from TCP timing only
  --wire-flush-ms N        Longest wait before wire exchanges go to the leader, and the
                           shortest time between two reports (default 1000)
  --wire-max-rate N        As leader, wire reports a second accepted from each node;
                           past that (and a burst of 5) 429 with Retry-After (default 2)
  --token-file FILE        Projected token presented to the leader
                           (default /var/run/secrets/earthworm/token)
  --agent-user NAME        User whose tokens the leader accepts; repeat for several
                           (default system:serviceaccount:$POD_NAMESPACE:earthworm)
  -h, --help               Show this help
`;

/** Runs `earthworm agent`. */
export async function agentCommand(args: string[]): Promise<number> {
  const flags = parseFlags("earthworm agent", args, {
    ...SERVE_FLAGS,
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
    comm: { type: "string" },
    "apiserver-port": { type: "string" },
    "no-ebpf": { type: "boolean" },
    "no-uprobes": { type: "boolean" },
    "wire-flush-ms": { type: "string" },
    "wire-max-rate": { type: "string" },
    "token-file": { type: "string" },
    "agent-user": { type: "string", multiple: true },
  });
  if (flags.values.help) {
    console.log(HELP);
    return 0;
  }
  if (Deno.env.get("KUBERNETES_SERVICE_HOST")) configureLogger({ json: true });
  const env = (name: string) => Deno.env.get(name) || undefined;
  const { port, host, retentionMs, webhooks, externalUrl, perHeartMetrics } =
    serveSettings(flags, "0.0.0.0");
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
  const namespaces = listFlag(flags, "namespace");
  const kubeconfig = stringFlag(flags, "kubeconfig");
  const context = stringFlag(flags, "context");
  const node = env("NODE_NAME") ?? Deno.hostname();
  const comm = stringFlag(flags, "comm", "kubelet");
  const apiserverPort = stringFlag(flags, "apiserver-port") === undefined
    ? undefined
    : numberFlag(flags, "apiserver-port", 0, {
      min: 1,
      max: 65535,
      integer: true,
    });
  const wireFlushMs = numberFlag(flags, "wire-flush-ms", 1000, {
    min: 10,
    max: 60_000,
  });
  const wireMaxRate = numberFlag(flags, "wire-max-rate", 2, {
    min: 0.01,
    max: 1000,
  });
  const tokenFile = stringFlag(
    flags,
    "token-file",
    "/var/run/secrets/earthworm/token",
  );
  const agentUsers = listFlag(flags, "agent-user");
  if (agentUsers.length === 0) {
    agentUsers.push(`system:serviceaccount:${electionNamespace}:earthworm`);
  }

  // A plain kubeconfig is read without client-node, which would add about
  // 70 MB to every agent; client-node handles the rest (exec plugins...).
  const kubeconfigOpts = {
    ...(kubeconfig !== undefined && { kubeconfig }),
    ...(context !== undefined && { context }),
  };
  const rest: RestConfig =
    kubeconfig !== undefined || !env("KUBERNETES_SERVICE_HOST")
      ? await kubeconfigRestConfig(kubeconfigOpts)
      : inClusterRestConfig();

  const controller = new AbortController();
  const signal = controller.signal;
  let hub: HeartHub | undefined;
  let leader: { identity: string; address: string | undefined } | undefined;
  // Assigned once the server's port (and so this agent's address) is known;
  // the app's closures read it before that.
  // deno-lint-ignore prefer-const
  let elector: LeaderElector | undefined;
  let probe: ProbeState = flags.values["no-ebpf"]
    ? { available: false, reason: "eBPF disabled by --no-ebpf" }
    : { available: false, reason: "the probe is starting" };

  const client = new KubeRestClient(rest);
  // Fresh reads of one Lease confirm a silence before a heart is called
  // expired; a read that shows the watch behind makes the watch relist.
  const reader = restLeaseSource(client);
  const control = new WatchControl();
  const reviews = { accepted: 0, refused: 0, unreachable: 0 };
  const app = createApp({
    perHeartMetrics,
    authenticateAgent: tokenReviewAuthenticator(client, {
      allowedUsers: agentUsers,
      // About two tokens per node (one and its successor while rotating);
      // the hearts count every node Lease and a few more.
      cacheEntries: () => 2 * (hub?.size ?? 0) + 64,
      onReview: (verdict) =>
        reviews[
          verdict.ok
            ? "accepted"
            : verdict.status === 503
            ? "unreachable"
            : "refused"
        ]++,
    }),
    wireRate: { perSecond: wireMaxRate, burst: Math.max(5, 2 * wireMaxRate) },
    loopbackOnly: isLoopbackAddress(host),
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
    }, {
      name: "earthworm_token_reviews_total",
      help:
        "TokenReviews this agent sent to check agents' wire-report tokens (cached verdicts are not counted), by outcome.",
      type: "counter",
      samples: Object.entries(reviews).map(([result, value]) => ({
        labels: { result },
        value,
      })),
    }, {
      name: "earthworm_agent_wire_probe",
      help:
        "1 while this agent's eBPF probe runs; the reason label says why not.",
      type: "gauge",
      samples: [{
        labels: { node, reason: probe.reason ?? "" },
        value: probe.available ? 1 : 0,
      }],
    }],
  });
  const server = await serveApp(app, { host, port, signal });
  const address = stringFlag(flags, "address") ??
    (env("POD_IP")
      ? `http://${env("POD_IP")}:${server.port}`
      : `http://127.0.0.1:${server.port}`);
  if (!/^https?:\/\/[^/]+$/.test(address)) {
    throw new UsageError(
      `Flag "--address" must be a base URL such as http://10.0.0.5:8080, got "${address}"`,
    );
  }

  elector = new LeaderElector({
    lock: new RestLeaseLock(client, electionNamespace, electionLease),
    identity,
    address,
    leaseDurationMs,
    renewDeadlineMs,
    retryPeriodMs,
    callbacks: {
      onStartedLeading(leading) {
        // Keep the hub across terms: an agent that lost the Lease briefly
        // (an API server outage longer than the renew deadline) and wins it
        // back keeps its beat history; the relist reconciles the hearts.
        if (!hub) {
          hub = new HeartHub({
            clock: systemClock,
            source: { kind: "cluster", name: rest.server },
            store: { retentionMs },
            confirm: (namespace, name, signal) =>
              reader.read(namespace, name, signal),
            onStale: (reason) => control.relist(reason),
          });
          hub.setWireAvailability(
            false,
            "no agent has reported wire data yet",
            undefined,
            { reasonPhrase: { id: "wire.noAgent", args: {} } },
          );
        }
        const current = hub;
        current.wireReport(node, probe, []);
        current.runSweeper(leading);
        if (webhooks.length > 0) {
          // Only the leader alerts; a new leader's hub starts without the
          // old one's state, so it alerts on what it sees expire from now.
          runWebhooks({
            targets: webhooks,
            feed: current.feed,
            clock: systemClock,
            signal: leading,
            externalUrl: externalUrl ?? address,
          });
        }
        watchLeases({
          rest,
          namespaces,
          sink: current,
          clock: systemClock,
          signal: leading,
          control,
        }).catch((err) => {
          log.error("lease watch stopped", {
            error: err instanceof Error ? err.message : String(err),
          });
        });
        leading.addEventListener("abort", () => {
          current.source(
            false,
            "this agent stopped leading",
            systemClock.now(),
          );
          current.events.closeAll();
        }, { once: true });
      },
      onStoppedLeading() {
        // The app serves the hub only while leading (see `hub:` above).
      },
      onNewLeader(newIdentity, newAddress) {
        leader = { identity: newIdentity, address: newAddress };
        if (newIdentity === "") log.info("the election Lease has no holder");
        else {
          log.info("leader is now", {
            identity: newIdentity,
            address: newAddress ?? "",
          });
        }
      },
    },
  });

  const removeSignals = onShutdownSignal((s) => {
    log.info("shutting down: releasing the election Lease", { signal: s });
    controller.abort();
  });
  log.info(`listening on ${server.url}/`, {
    identity,
    node,
    address,
    lease: `${electionNamespace}/${electionLease}`,
    server: rest.server,
  });
  const wire = runWireReporter({
    node,
    ...(flags.values["no-ebpf"]
      ? { disabledReason: "eBPF disabled by --no-ebpf" }
      : {
        openProbe: () =>
          openProbe(
            node,
            comm,
            apiserverPort,
            flags.values["no-uprobes"] !== true,
            signal,
          ),
      }),
    flushIntervalMs: wireFlushMs,
    target: () => {
      if (elector?.isLeader()) return hub ? { sink: hub } : null;
      if (leader?.address && leader.identity !== identity) {
        return { url: leader.address };
      }
      // Leadership lapsed and nobody else took it (the API server is down,
      // so nobody can): this agent's hub, which it keeps for its next term,
      // still takes the node's exchanges. A renewal left waiting, or answered
      // late once the API server is back, is the evidence that blames it.
      return hub ? { sink: hub } : null;
    },
    token: tokenFileReader(tokenFile, {
      hint: "mount the projected ServiceAccount token there",
    }),
    clock: systemClock,
    signal,
    onState: (state) => probe = state,
  }).catch((err) =>
    log.error("wire reporter stopped", {
      error: err instanceof Error ? err.message : String(err),
    })
  );
  try {
    while (!signal.aborted) {
      await elector.run(signal);
      await sleepUnlessAborted(systemClock, retryPeriodMs, signal);
    }
  } finally {
    removeSignals();
    await wire;
    client[Symbol.dispose]();
    await server.finished;
  }
  return 0;
}

/**
 * Opens the node's wire probes (loaded on demand: an agent without them
 * never parses libbpf's FFI table): the TCP-level probe, and the Go TLS
 * uprobes on the kubelet unless `exact` is false. Without `port`, the probe
 * finds the API server endpoint from the kubelet itself.
 */
async function openProbe(
  node: string,
  comm: string,
  port: number | undefined,
  exact: boolean,
  signal: AbortSignal,
): Promise<OpenedProbe> {
  const { openWireProbe } = await import("../bpf/wire_probe.ts");
  const { pidsOf } = await import("../bpf/proc_scan.ts");
  const tcp = await openWireProbe({
    comm,
    ...(port !== undefined && { port }),
    signal,
  });
  return await NodeProbe.open({
    node,
    tcp,
    clock: systemClock,
    kubeletPid: async () =>
      (await pidsOf(comm)).sort((a, b) => a - b)[0] ??
        null,
    ...(exact
      ? { openExact: (pid: number) => openExactProbe(pid, signal) }
      : { exactOff: "exact identification disabled by --no-uprobes" }),
  });
}

/** The Go TLS uprobes on the kubelet process `pid`. */
async function openExactProbe(
  pid: number,
  signal: AbortSignal,
): Promise<ExactProbe> {
  const { openGoTlsProbe } = await import("../bpf/gotls_probe.ts");
  const { goConnSocket } = await import("../bpf/go_conn.ts");
  const probe = await openGoTlsProbe({ pid, signal });
  return {
    pid,
    records: () => probe.records(),
    socketOf: async (conn) => {
      const s = await goConnSocket(pid, conn);
      return s ? `${s.local}->${s.remote}` : null;
    },
    close: () => probe.close(),
  };
}
