/**
 * The agent's wire side: opens the eBPF probe through the opener it is given
 * (or records why it cannot), and hands batches of exchanges, plus the
 * probe's state, to the current leader: in process when this agent leads,
 * else by an authenticated `POST /api/v1/wire`. Batches leave at most once
 * per flush interval (the feed coalesces what comes in between). A failed
 * delivery drops the batch: wire data is a live view, and a backlog would
 * only grow while the leader is away. A leader that answers 429 (past its
 * per-node bound) with `Retry-After` is left alone until then: the batches
 * meanwhile are held (the newest {@linkcode MAX_HELD_EXCHANGES}) and go in
 * one report when the wait is over.
 *
 * @module
 */

import type { WireExchange } from "../core/api_types.ts";
import type { Clock } from "../core/clock.ts";
import { WireUnavailableError } from "../core/errors.ts";
import { getLogger } from "../core/log.ts";
import type { ProbeState, WireReportSink } from "../core/wire_types.ts";
import { sleepUnlessAborted } from "../core/clock.ts";
import { feedWireExchanges, type WireEventSource } from "./wire_feed.ts";

const log = getLogger("wire");

/** Most exchanges held while a leader asks the agent to wait. */
export const MAX_HELD_EXCHANGES = 2000;

/** Longest `Retry-After` honoured, in seconds (a longer one is cut to this). */
const MAX_RETRY_AFTER_S = 60;

/** Where reports go right now. */
export type WireTarget = { sink: WireReportSink } | { url: string } | null;

/** A running probe as the reporter uses it. */
export interface OpenedProbe extends WireEventSource {
  /** Fields logged once it runs (buffer kind, adopted connections). */
  readonly details?: Record<string, unknown>;
  /** Null while it follows a kubelet connection to the API server, else why not. */
  health?(): Promise<string | null>;
  /** How the node's renewals are identified now: exactly, or inferred and why. */
  readonly pairing?: { mode: "exact" | "inferred"; reason?: string };
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
  /** While no kubelet runs to follow, how often the probe is tried again. Default 30 s. */
  reopenMs?: number;
  /** How often the probe's health is checked; two failed checks reopen it. Default 30 s. */
  healthIntervalMs?: number;
  /** Timeout of one POST to the leader. Default 5 s. */
  postTimeoutMs?: number;
  /** Called with the probe state when it is first known and when it changes. */
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
  /** Exchanges held while the leader asked to wait, and until when. */
  let held: WireExchange[] = [];
  let holdUntil = 0;
  let resend: Promise<void> | undefined;
  const hold = (exchanges: WireExchange[]): void => {
    held = held.length === 0 ? exchanges : held.concat(exchanges);
    if (held.length > MAX_HELD_EXCHANGES) {
      held = held.slice(held.length - MAX_HELD_EXCHANGES);
    }
    // One report with the state and what was held goes when the wait ends.
    resend ??= (async () => {
      const wait = holdUntil - opts.clock.now();
      const slept = await sleepUnlessAborted(opts.clock, wait, opts.signal);
      resend = undefined;
      if (slept) await send([]);
    })();
  };
  /** Resolves true when the report reached a leader. */
  const send = async (fresh: WireExchange[]): Promise<boolean> => {
    const target = opts.target();
    if (target === null) return false;
    if ("sink" in target) {
      target.sink.wireReport(opts.node, state, held.concat(fresh));
      held = [];
      return true;
    }
    if (opts.clock.now() < holdUntil) {
      hold(fresh);
      return false;
    }
    const exchanges = held.length === 0 ? fresh : held.concat(fresh);
    held = [];
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
      const retryAfter = Number(res.headers.get("retry-after"));
      if (res.status === 429 && retryAfter > 0) {
        holdUntil = opts.clock.now() +
          Math.min(retryAfter, MAX_RETRY_AFTER_S) * 1000;
        if (failures++ === 0) {
          log.warn(
            "the leader asks this agent to send fewer wire reports: holding exchanges until it allows",
            { leader: target.url, retryAfterSeconds: retryAfter },
          );
        }
        hold(exchanges);
        return false;
      }
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

  const clock = opts.clock;
  const signal = opts.signal;
  let known = false;
  let status: Promise<void> | undefined;
  /** Records the state; a change goes to the leader at once. */
  const setState = (next: ProbeState): void => {
    const changed = next.available !== state.available ||
      next.reason !== state.reason || next.pairing !== state.pairing ||
      next.pairingReason !== state.pairingReason;
    for (const key of ["reason", "pairing", "pairingReason"] as const) {
      if (next[key] === undefined) delete state[key];
    }
    Object.assign(state, next);
    if (!changed && known) return;
    if (!next.available) {
      log.warn("running lease-only", { reason: next.reason });
    }
    if (known) void send([]);
    else status = statusLoop();
    known = true;
    opts.onState?.({ ...state });
  };

  // A follower may not know the leader yet when the probe state is first
  // known: retry soon until a leader has it, so it does not wait a whole
  // status interval.
  const statusLoop = async () => {
    while (!signal.aborted) {
      const delivered = await send([]);
      const wait = delivered
        ? opts.statusIntervalMs ?? 30_000
        : opts.statusRetryMs ?? 1000;
      if (!await sleepUnlessAborted(clock, wait, signal)) return;
    }
  };

  if (!opts.openProbe) {
    setState({
      available: false,
      reason: opts.disabledReason ?? "eBPF disabled",
    });
    await status;
    await resend;
    return;
  }
  try {
    while (!signal.aborted) {
      let probe: OpenedProbe;
      try {
        probe = await opts.openProbe();
      } catch (err) {
        const retry = err instanceof WireUnavailableError &&
          err.reason === "no-kubelet";
        setState({
          available: false,
          reason: err instanceof WireUnavailableError
            ? err.message
            : `eBPF probe failed: ${
              err instanceof Error ? err.message : String(err)
            }`,
        });
        // No kubelet yet (a node still booting): try again. Anything else
        // (no BTF, no permission) will not pass by waiting.
        if (!retry) break;
        if (!await sleepUnlessAborted(clock, opts.reopenMs ?? 30_000, signal)) {
          break;
        }
        continue;
      }
      log.info("wire probe running", probe.details ?? {});
      const reopen = await follow(probe, setState);
      await probe.close();
      if (signal.aborted) break;
      if (!reopen) {
        setState({
          available: false,
          reason: "The eBPF probe stopped reading events: see the agent's log",
        });
        break;
      }
    }
  } finally {
    await status;
    await resend;
  }

  /**
   * Feeds the probe's exchanges to the leader while checking, every health
   * interval, that it follows a kubelet connection. Resolves true when it
   * followed none for two checks in a row: the caller opens it again, which
   * finds the API server endpoint again.
   */
  async function follow(
    probe: OpenedProbe,
    setState: (s: ProbeState) => void,
  ): Promise<boolean> {
    const health = async () => await probe.health?.() ?? null;
    /** Running: how its renewals are identified. */
    const running = (): ProbeState => {
      const p = probe.pairing;
      if (!p) return { available: true };
      return {
        available: true,
        pairing: p.mode,
        ...(p.reason !== undefined && { pairingReason: p.reason }),
      };
    };
    const first = await health();
    setState(
      first === null ? running() : {
        available: false,
        reason: first,
      },
    );
    const feedStop = new AbortController();
    let reopen = false;
    const watchdog = (async () => {
      let misses = first === null ? 0 : 1;
      const every = opts.healthIntervalMs ?? 30_000;
      while (await sleepUnlessAborted(clock, every, feedStop.signal)) {
        const reason = await health();
        if (reason === null) {
          misses = 0;
          setState(running());
          continue;
        }
        setState({ available: false, reason });
        if (++misses >= 2) {
          reopen = true;
          feedStop.abort();
        }
      }
    })();
    try {
      await feedWireExchanges(probe, {
        ...(opts.flushIntervalMs !== undefined &&
          { flushIntervalMs: opts.flushIntervalMs }),
        onBatch: async (batch) => {
          await send(batch);
        },
        clock,
        signal: AbortSignal.any([signal, feedStop.signal]),
      });
    } finally {
      feedStop.abort();
      await watchdog;
    }
    return reopen && !signal.aborted;
  }
}
