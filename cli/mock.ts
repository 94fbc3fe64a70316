/**
 * `earthworm mock`: the whole pipeline on a simulated cluster, or on a
 * replay of a recorded Lease file, served on localhost. Both write into a
 * simulated API server that Earthworm reads with the same list/watch loop
 * as a real cluster.
 *
 * @module
 */

import { runLeaseWatch, WatchControl } from "../kube/watch_loop.ts";
import { SimApiServer } from "../sim/sim_api_server.ts";
import { Simulator } from "../sim/simulator.ts";
import { scaledClock } from "../core/clock.ts";
import {
  numberFlag,
  outputHelp,
  parseFlags,
  SERVE_FLAGS,
  serveSettings,
  stringFlag,
} from "./flags.ts";
import { serveHub } from "./serve_hub.ts";

const HELP = `Usage: earthworm mock [flags]

Runs Earthworm on a simulated cluster (kubelets renewing node Leases every
10 s with jitter, controller leader elections, scripted incidents) or replays
a recorded Lease file, and serves the UI and API.

Flags:
  --port N        Port to listen on (default 8080; 0 picks a free one)
  --host ADDR     Address to listen on (default 127.0.0.1)
  --nodes N       Simulated nodes (default 12, at most 10000)
  --leases N      More controller leader-election Leases (default 0, at most
                  10000), in namespaces team-0 to team-39
  --lease-interval S
                  Seconds between renewals of each of those (default 2)
  --replay FILE   Play a recording instead: Lease YAML/JSON or a timeline
                  written by "earthworm parse-leases"
  --speed N       Run time N times faster (default 1)
  --retention S   Seconds of beat history kept per heart (default 3600)
  --no-incidents  Simulate a calm cluster without the incident script
${outputHelp(18)}
  -h, --help      Show this help
`;

/** Runs `earthworm mock`. */
export async function mockCommand(args: string[]): Promise<number> {
  const flags = parseFlags("earthworm mock", args, {
    ...SERVE_FLAGS,
    nodes: { type: "string" },
    leases: { type: "string" },
    "lease-interval": { type: "string" },
    replay: { type: "string" },
    speed: { type: "string" },
    "no-incidents": { type: "boolean" },
  });
  if (flags.values.help) {
    console.log(HELP);
    return 0;
  }
  const serve = serveSettings(flags, "127.0.0.1");
  const nodes = numberFlag(flags, "nodes", 12, {
    min: 0,
    max: 10_000,
    integer: true,
  });
  const leases = numberFlag(flags, "leases", 0, {
    min: 0,
    max: 10_000,
    integer: true,
  });
  const leaseIntervalSeconds = numberFlag(flags, "lease-interval", 2, {
    min: 0.1,
    max: 3600,
  });
  const speed = numberFlag(flags, "speed", 1, { min: 0.01, max: 1000 });
  const replayPath = stringFlag(flags, "replay");
  const clock = scaledClock(speed);

  // Read the recording before listening, so bad input fails fast.
  const replay = replayPath === undefined
    ? undefined
    : await import("../sim/replay.ts");
  const timeline = replay && replayPath !== undefined
    ? await replay.loadTimeline(replayPath)
    : undefined;

  const server = new SimApiServer({ clock });
  const control = new WatchControl();
  const served = await serveHub({
    clock,
    confirm: (namespace, name, signal) => server.read(namespace, name, signal),
    onStale: (reason) => control.relist(reason),
    source: replayPath === undefined
      ? { kind: "mock", name: `simulated cluster (${nodes} nodes)` }
      : { kind: "replay", name: replayPath },
    timeScale: speed,
    host: serve.host,
    port: serve.port,
    retentionMs: serve.retentionMs,
    webhooks: serve.webhooks,
    perHeartMetrics: serve.perHeartMetrics,
    ...(serve.externalUrl !== undefined && { externalUrl: serve.externalUrl }),
  });
  if (replay) {
    served.hub.setWireAvailability(
      false,
      "a replay of recorded Leases has no wire data",
      undefined,
      { reasonPhrase: { id: "wire.replay", args: {} } },
    );
  }
  const cluster = replay && timeline
    ? replay.replayTimeline(timeline, server, {
      clock,
      speed: 1,
      signal: served.signal,
      loop: true,
    })
    : new Simulator({
      clock,
      nodes,
      leases,
      leaseIntervalSeconds,
      server,
      incidents: !flags.values["no-incidents"],
      // The simulated kubelets' PUTs, as their agents' probes would report them.
      wire: (node, exchanges) =>
        served.hub.wireReport(
          node,
          { available: true, pairing: "exact" },
          exchanges,
        ),
    }).run(served.signal);
  await Promise.all([
    cluster,
    runLeaseWatch({
      source: server,
      sink: served.hub,
      clock,
      signal: served.signal,
      control,
    }),
  ]);
  await served.finished;
  return 0;
}
