/**
 * The agent's wire side: opens the eBPF probe through the opener it is given
 * (or records why it cannot), and hands batches of exchanges, plus the
 * probe's state, to the current leader: in process when this agent leads,
 * else by an authenticated `POST /api/v1/wire`. A failed delivery drops the
 * batch: wire data is a live view, and a backlog would only grow while the
 * leader is away.
 *
 * @module
 */

import type { WireExchange } from "../core/api_types.ts";
import type { Clock } from "../core/clock.ts";
import { WireUnavailableError } from "../core/errors.ts";
import { getLogger } from "../core/log.ts";
import type { ProbeState, WireReportSink } from "../core/wire_types.ts";
import { feedWireExchanges, type WireEventSource } from "./wire_feed.ts";

const log = getLogger("wire");

/** Where reports go right now. */
export type WireTarget = { sink: WireReportSink } | { url: string } | null;

/** A running probe as the reporter uses it. */
export interface OpenedProbe extends WireEventSource {
  /** Fields logged once it runs (buffer kind, adopted connections). */
  readonly details?: Record<string, unknown>;
  close(): Promise<void>;
}

/** Settings of {@linkcode runWireReporter}. */
export interface WireReporterOptions {
  node: string;
  /** The leader: this agent's hub when it leads, else the leader's base URL; null when unknown. */
  target: () => WireTarget;
  /** The bearer token to present to a remote leader. */
  token: () => Promise<string>;
  /**
   * Opens the probe; it throws {@linkcode WireUnavailableError} when eBPF
   * cannot run here. Absent: the agent runs lease-only with `disabledReason`.
   */
  openProbe?: () => Promise<OpenedProbe>;
  /** Why there is no probe when `openProbe` is absent. */
  disabledReason?: string;
  clock: Clock;
  signal: AbortSignal;
  /** How often the probe state is re-sent (a new leader learns it). Default 30 s. */
  statusIntervalMs?: number;
  /** Until the state reached a leader, how often it is retried. Default 1 s. */
  statusRetryMs?: number;
  /** Longest time an exchange waits before it is sent. Default 1 s. */
  flushIntervalMs?: number;
  /** Timeout of one POST to the leader. Default 5 s. */
  postTimeoutMs?: number;
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
    if ("sink" in target) {
      target.sink.wireReport(opts.node, state, exchanges);
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
        signal: AbortSignal.any([
          opts.signal,
          AbortSignal.timeout(opts.postTimeoutMs ?? 5000),
        ]),
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

  let probe: OpenedProbe | undefined;
  if (!opts.openProbe) {
    state.reason = opts.disabledReason ?? "eBPF disabled";
  } else {
    try {
      probe = await opts.openProbe();
      state.available = true;
      delete state.reason;
      log.info("wire probe running", probe.details ?? {});
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
