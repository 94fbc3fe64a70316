/**
 * The agent's wire side: opens the embedded eBPF probe (or records why it
 * cannot), and hands batches of exchanges, plus the probe's state, to the
 * current leader: in process when this agent leads, else by an authenticated
 * `POST /api/v1/wire`. A failed delivery drops the batch: wire data is a
 * live view, and a backlog would only grow while the leader is away.
 *
 * @module
 */

import type { WireExchange } from "../core/api_types.ts";
import type { Clock } from "../core/clock.ts";
import type { HeartHub } from "../server/heart_hub.ts";
import { getLogger } from "../core/log.ts";

const log = getLogger("wire");

/** Probe state as reported to the leader. */
export interface ProbeState {
  available: boolean;
  reason?: string;
}

/** Where reports go right now. */
export type WireTarget = { hub: HeartHub } | { url: string } | null;

/** Settings of {@linkcode runWireReporter}. */
export interface WireReporterOptions {
  node: string;
  comm: string;
  port: number;
  /** The leader: this agent's hub when it leads, else the leader's base URL; null when unknown. */
  target: () => WireTarget;
  /** The bearer token to present to a remote leader. */
  token: () => Promise<string>;
  clock: Clock;
  signal: AbortSignal;
  /** How often the probe state is re-sent (a new leader learns it). Default 30 s. */
  statusIntervalMs?: number;
  /** Until the state reached a leader, how often it is retried. Default 1 s. */
  statusRetryMs?: number;
  /** Longest time an exchange waits before it is sent. Default 1 s. */
  flushIntervalMs?: number;
  /** Do not load the probe (`--no-ebpf`): report lease-only with that reason. */
  disabled?: boolean;
  /** Called once the probe opened or failed. */
  onState?: (state: ProbeState) => void;
}

/** Runs until `signal` aborts. */
export async function runWireReporter(
  opts: WireReporterOptions,
): Promise<void> {
  const state: ProbeState = {
    available: false,
    reason: "the probe is starting",
  };
  let failures = 0;
  /** Resolves true when the report reached a leader. */
  const send = async (exchanges: WireExchange[]): Promise<boolean> => {
    const target = opts.target();
    if (target === null) return false;
    if ("hub" in target) {
      target.hub.wireReport(opts.node, state, exchanges);
      return true;
    }
    try {
      const res = await fetch(new URL("/api/v1/wire", target.url), {
        method: "POST",
        headers: {
          "content-type": "application/json",
          authorization: `Bearer ${await opts.token()}`,
        },
        body: JSON.stringify({ node: opts.node, probe: state, exchanges }),
        signal: AbortSignal.any([opts.signal, AbortSignal.timeout(5000)]),
      });
      await res.body?.cancel();
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      if (failures > 0) {
        log.info("wire reports reach the leader again", { leader: target.url });
      }
      failures = 0;
      return true;
    } catch (err) {
      if (opts.signal.aborted) return false;
      if (failures++ === 0) {
        log.warn(
          "cannot send wire report to the leader: dropping batches until it answers",
          {
            leader: target.url,
            error: err instanceof Error ? err.message : String(err),
          },
        );
      }
      return false;
    }
  };

  const { openWireProbe, WireUnavailableError } = await import(
    "../bpf/wire_probe.ts"
  );
  const { feedWireExchanges } = await import("./wire_feed.ts");
  let probe: Awaited<ReturnType<typeof openWireProbe>> | undefined;
  if (opts.disabled) {
    state.reason = "eBPF disabled by --no-ebpf";
  } else {
    try {
      probe = await openWireProbe({
        comm: opts.comm,
        port: opts.port,
        signal: opts.signal,
      });
      state.available = true;
      delete state.reason;
      log.info("wire probe running", {
        buffer: probe.buffer,
        adopted: probe.adopted,
      });
    } catch (err) {
      state.reason = err instanceof WireUnavailableError
        ? err.message
        : `eBPF probe failed: ${
          err instanceof Error ? err.message : String(err)
        }`;
      log.warn("running lease-only", { reason: state.reason });
    }
  }
  opts.onState?.({ ...state });

  // A follower may not know the leader yet when the probe state is first
  // known: retry soon until a leader has it, so it does not wait a whole
  // status interval.
  const statusLoop = (async () => {
    while (!opts.signal.aborted) {
      const delivered = await send([]);
      try {
        await opts.clock.sleep(
          delivered
            ? opts.statusIntervalMs ?? 30_000
            : opts.statusRetryMs ?? 1000,
          opts.signal,
        );
      } catch {
        return;
      }
    }
  })();
  try {
    if (probe) {
      await feedWireExchanges(probe, {
        node: opts.node,
        ...(opts.flushIntervalMs !== undefined &&
          { flushIntervalMs: opts.flushIntervalMs }),
        onBatch: async (batch) => {
          await send(batch);
        },
        clock: opts.clock,
        signal: opts.signal,
      });
    }
  } finally {
    await probe?.close();
    await statusLoop;
  }
}

/** Reads a token file, re-reading it at most once a minute (projected tokens rotate). */
export function tokenFileReader(
  path: string,
  clock: Clock,
): () => Promise<string> {
  let token = "";
  let readAt = -Infinity;
  return async () => {
    if (clock.now() - readAt > 60_000) {
      try {
        token = (await Deno.readTextFile(path)).trim();
      } catch (err) {
        throw new Error(
          `Cannot read the agent token "${path}": ${
            err instanceof Error ? err.message : String(err)
          }: mount the projected ServiceAccount token there`,
        );
      }
      readAt = clock.now();
    }
    return token;
  };
}
