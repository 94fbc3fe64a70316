/**
 * `earthworm probe`: loads the embedded eBPF program on this machine and
 * prints the wire events of one process's connections to the API server
 * port, one JSON object per line with `--json`. The node-side debugging tool.
 *
 * @module
 */

import {
  EXIT_USAGE,
  UsageError,
  WireUnavailableError,
} from "../core/errors.ts";
import { numberFlag, parseFlags, stringFlag } from "./flags.ts";
import { openGoTlsProbe } from "../bpf/gotls_probe.ts";
import { pidsOf } from "../bpf/proc_scan.ts";
import { H2ExchangeTracker, type LeaseExchange } from "../wire/h2_exchange.ts";
import { onShutdownSignal } from "./signals.ts";
import { openWireProbe } from "../bpf/wire_probe.ts";
import type { RawWireEvent } from "../core/wire_types.ts";
import { monoToIso, WireAggregator } from "../wire/wire_aggregator.ts";

const USAGE = `Usage: earthworm probe [flags]

Load Earthworm's eBPF program and print the wire events of a process's TCP
connections to the API server: request/response exchanges (latency, bytes),
smoothed RTT, retransmits, resets and TCP state changes. Needs root (or
CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN) and a kernel with BTF.

Flags:
  --comm NAME         process name to follow (kernel comm) (default kubelet)
  --port PORT         API server port (default: found from the kubelet's
                      kubeconfig or its connections)
  --json              one JSON object per line instead of readable lines
  --perf-buffer       use the perf buffer even where a ring buffer works
  --no-uprobes        do not trace the kubelet's Go TLS layer (its Lease
                      renewals, exactly, as "lease" lines)
  --duration SECONDS  stop after this long (default: until Ctrl-C)
  --node NAME         node name in exchanges (default: this host's name)
  -h, --help          show this help
`;

const encoder = new TextEncoder();

/** Where the command writes; tests pass their own. */
export interface ProbeIo {
  stdout: (line: string) => void;
  stderr: (line: string) => void;
  /** Stops the probe early (in addition to --duration and the shutdown signals). */
  signal?: AbortSignal;
}

const defaultIo: ProbeIo = {
  stdout: (line) => Deno.stdout.writeSync(encoder.encode(line + "\n")),
  stderr: (line) => Deno.stderr.writeSync(encoder.encode(line + "\n")),
};

interface ProbeFlags {
  comm: string;
  port: number | undefined;
  json: boolean;
  perfBuffer: boolean;
  uprobes: boolean;
  durationMs: number | null;
  node: string;
}

function probeFlags(args: string[]): ProbeFlags | "help" {
  const flags = parseFlags("earthworm probe", args, {
    comm: { type: "string" },
    port: { type: "string" },
    json: { type: "boolean" },
    "perf-buffer": { type: "boolean" },
    "no-uprobes": { type: "boolean" },
    duration: { type: "string" },
    node: { type: "string" },
  });
  if (flags.values.help) return "help";
  const comm = stringFlag(flags, "comm", "kubelet");
  const commLength = encoder.encode(comm).length;
  if (commLength < 1 || commLength > 15) {
    throw new UsageError(
      `Flag "--comm" must be a process name of 1 to 15 bytes, got "${comm}"`,
    );
  }
  const duration = stringFlag(flags, "duration");
  return {
    comm,
    port: stringFlag(flags, "port") === undefined
      ? undefined
      : numberFlag(flags, "port", 0, { min: 1, max: 65535, integer: true }),
    json: flags.values.json === true,
    perfBuffer: flags.values["perf-buffer"] === true,
    uprobes: flags.values["no-uprobes"] !== true,
    durationMs: duration === undefined
      ? null
      : numberFlag(flags, "duration", 0, { min: 0.001, max: 31_536_000 }) *
        1000,
    node: stringFlag(flags, "node") ?? Deno.hostname(),
  };
}

/** One event as the JSON object `--json` prints. */
export function eventJson(
  ev: RawWireEvent,
  offsetMs: number,
  aggregator: WireAggregator,
): Record<string, unknown> {
  const out: Record<string, unknown> = {
    time: monoToIso(ev.tsNs, offsetMs),
    type: ev.kind,
    conn: ev.conn,
    pid: ev.pid,
    comm: ev.comm,
    origin: ev.origin,
    srttUs: ev.srttUs,
    totalRetrans: ev.totalRetrans,
    resets: ev.resets,
  };
  const exchange = aggregator.add(ev);
  if (exchange) {
    out.at = exchange.at;
    out.latencyMs = exchange.latencyMs;
    out.bytesSent = exchange.bytesSent;
    out.bytesReceived = exchange.bytesReceived;
    out.retransmits = exchange.retransmits;
    out.answered = ev.firstRxNs > 0n;
  }
  if (ev.kind === "state") {
    out.from = ev.oldState;
    out.to = ev.newState;
  }
  if (ev.kind === "reset") out.direction = ev.resetDirection;
  return out;
}

/**
 * Prints each Lease renewal of the kubelet found in its HTTP/2 stream by the
 * Go TLS uprobes, until `signal` aborts; says why when they cannot attach.
 */
async function traceLeases(
  comm: string,
  offsetMs: number,
  signal: AbortSignal,
  print: (json: Record<string, unknown>) => void,
  io: ProbeIo,
): Promise<void> {
  const pid = (await pidsOf(comm)).sort((a, b) => a - b)[0];
  if (pid === undefined) {
    io.stderr(`earthworm probe: no "${comm}" process to trace exactly`);
    return;
  }
  let probe;
  try {
    probe = await openGoTlsProbe({ pid, signal });
  } catch (e) {
    io.stderr(
      `earthworm probe: renewals are not traced exactly (pid ${pid}): ${
        e instanceof Error ? e.message : String(e)
      }`,
    );
    return;
  }
  io.stderr(
    `earthworm probe: tracing the Lease renewals of pid ${pid} in its HTTP/2 stream`,
  );
  const tracker = new H2ExchangeTracker(
    { namespace: null },
  );
  for await (const record of probe.records()) {
    for (const x of tracker.push(record)) print(leaseJson(x, offsetMs));
  }
  await probe.close();
}

/** One exactly identified Lease request and its response as JSON. */
export function leaseJson(
  x: LeaseExchange,
  offsetMs: number,
): Record<string, unknown> {
  const end = x.endNs ?? x.answerNs;
  return {
    time: monoToIso(x.startNs, offsetMs),
    type: "lease",
    pid: x.pid,
    lease: `${x.namespace}/${x.name}`,
    streamId: x.streamId,
    resourceVersion: x.resourceVersion,
    status: x.status,
    outcome: x.outcome,
    latencyMs: end === null ? null : Number(end - x.startNs) / 1e6,
    bytesSent: x.requestBytes,
    bytesReceived: x.responseBytes,
  };
}

/** One event as a readable line. */
export function eventLine(json: Record<string, unknown>): string {
  const time = String(json.time).slice(11, 23);
  if (json.type === "lease") {
    return `${time} lease    pid ${json.pid} ${json.lease} stream ${json.streamId} ${
      json.latencyMs === null ? "no answer" : `${json.latencyMs} ms`
    } status ${
      json.status ?? "?"
    } (${json.outcome}) sent ${json.bytesSent} B received ${json.bytesReceived} B`;
  }
  const who = `${json.comm}[${json.pid}] ${json.conn}`;
  const rtt = `srtt ${json.srttUs}µs`;
  switch (json.type) {
    case "exchange":
      return `${time} exchange ${who} ${json.latencyMs} ms sent ${json.bytesSent} B received ${json.bytesReceived} B ${rtt} retransmits ${json.retransmits}${
        json.answered ? "" : " (no answer)"
      }`;
    case "state":
      return `${time} state    ${who} ${json.from} -> ${json.to} ${rtt}`;
    case "reset":
      return `${time} reset    ${who} ${json.direction}`;
    case "retransmit":
      return `${time} retrans  ${who} total ${json.totalRetrans} ${rtt}`;
    default:
      return `${time} follow   ${who} (${json.origin}) ${rtt}`;
  }
}

/** Runs `earthworm probe`; returns the exit code (2 for bad flags, 1 when eBPF is unavailable). */
export async function probeCommand(
  args: string[],
  io: ProbeIo = defaultIo,
): Promise<number> {
  let flags: ProbeFlags | "help";
  try {
    flags = probeFlags(args);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    io.stderr(`earthworm: ${e.message}`);
    return EXIT_USAGE;
  }
  if (flags === "help") {
    io.stdout(USAGE.trimEnd());
    return 0;
  }
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  const removeSignals = onShutdownSignal(onSignal);
  const timer = flags.durationMs === null
    ? undefined
    : setTimeout(onSignal, flags.durationMs);
  io.signal?.addEventListener("abort", onSignal, { once: true });
  try {
    let probe;
    try {
      probe = await openWireProbe({
        comm: flags.comm,
        ...(flags.port !== undefined && { port: flags.port }),
        buffer: flags.perfBuffer ? "perf" : "auto",
        signal: stop.signal,
      });
    } catch (e) {
      if (!(e instanceof WireUnavailableError)) throw e;
      io.stderr(
        `earthworm probe: eBPF is unavailable (${e.reason}): ${e.message}`,
      );
      return 1;
    }
    const aggregator = new WireAggregator({
      node: flags.node,
      monoToWallOffsetMs: probe.monoToWallOffsetMs,
    });
    io.stderr(
      `earthworm probe: following "${flags.comm}" to port ${probe.endpoint.port} (${probe.buffer} buffer, ${probe.adopted} existing connections adopted; ${
        probe.endpoint.source === "flag" ? "port given" : probe.endpoint.detail
      })`,
    );
    let count = 0;
    const print = (json: Record<string, unknown>) => {
      io.stdout(flags.json ? JSON.stringify(json) : eventLine(json));
      count++;
    };
    const offsetMs = probe.monoToWallOffsetMs;
    const exact = flags.uprobes
      ? traceLeases(flags.comm, offsetMs, stop.signal, print, io)
      : Promise.resolve();
    for await (const ev of probe.events()) {
      print(eventJson(ev, offsetMs, aggregator));
    }
    const drops = probe.drops();
    await probe.close();
    await exact;
    io.stderr(`earthworm probe: ${count} events, ${drops} dropped`);
    return 0;
  } finally {
    clearTimeout(timer);
    io.signal?.removeEventListener("abort", onSignal);
    removeSignals();
  }
}
