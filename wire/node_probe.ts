/**
 * What a node's agent reports about the kubelet's heartbeat traffic: the
 * TCP-level probe's exchanges (RTT, retransmits, resets, and an inferred
 * request/answer timing), and, wherever the kubelet's Go TLS layer can be
 * traced, each Lease renewal as one exact HTTP/2 exchange: its own request
 * and its own response, found by stream id. The exact probe follows one
 * kubelet process, so a restarted kubelet (a new pid) is followed by opening
 * it again. Both probes come in through interfaces, so this module needs no
 * BPF and runs on fakes in tests.
 *
 * @module
 */

import type { WireExchange } from "../core/api_types.ts";
import { AsyncQueue } from "../core/async_queue.ts";
import { type Clock, sleepUnlessAborted } from "../core/clock.ts";
import { getLogger } from "../core/log.ts";
import type { RawWireEvent } from "../core/wire_types.ts";
import {
  H2ExchangeTracker,
  type H2Record,
  type LeaseExchange,
} from "./h2_exchange.ts";
import { monoToIso, WireAggregator } from "./wire_aggregator.ts";
import type { OpenedProbe } from "./wire_reporter.ts";

const log = getLogger("wire");

/** At most one retransmit or reset signal per connection this often. */
const SIGNAL_EVERY_MS = 1000;
/** How often unanswered renewals are looked for... */
const PENDING_CHECK_MS = 500;
/** ...and how long one waits before it is reported as pending. */
const PENDING_AFTER_NS = 1_000_000_000n;

/** The TCP-level probe (bpf/wire_probe.ts) as the node probe uses it. */
export interface TcpProbe {
  readonly buffer: "ring" | "perf";
  readonly monoToWallOffsetMs: number;
  readonly adopted: number;
  readonly endpoint: { port: number; detail: string };
  events(): AsyncIterable<RawWireEvent>;
  health(): Promise<string | null>;
  close(): Promise<void>;
}

/** The exact probe (bpf/gotls_probe.ts) on one kubelet process. */
export interface ExactProbe {
  readonly pid: number;
  records(): AsyncIterable<H2Record>;
  /** `local->remote` of the TCP socket under a tls.Conn, or null when unknown. */
  socketOf(conn: string): Promise<string | null>;
  close(): Promise<void>;
}

/** Settings of {@linkcode NodeProbe.open}. */
export interface NodeProbeOptions {
  node: string;
  tcp: TcpProbe;
  /** Opens the exact probe on process `pid`; throws with the reason when it cannot. */
  openExact?: (pid: number) => Promise<ExactProbe>;
  /** Why exact identification is off when `openExact` is absent. */
  exactOff?: string;
  /** The kubelet's pid now, or null when none runs. */
  kubeletPid: () => Promise<number | null>;
  clock: Clock;
  /** How often the kubelet's pid is checked, to follow a restart. Default 5 s. */
  checkMs?: number;
}

/** How the node's renewals are identified on the wire now. */
export interface PairingMode {
  mode: "exact" | "inferred";
  /** Why not exact. */
  reason?: string;
}

/** Exchanges of one node's kubelet, inferred and (where possible) exact. */
export class NodeProbe implements OpenedProbe {
  readonly #opts: NodeProbeOptions;
  readonly #out = new AsyncQueue<WireExchange>(65_536);
  readonly #stop = new AbortController();
  #exact: ExactProbe | null = null;
  #exactDone: Promise<void> = Promise.resolve();
  #exactPid: number | null = null;
  #mode: PairingMode;
  #tcpDone: Promise<void>;
  #watch: Promise<void>;
  #closing: Promise<void> | null = null;
  /** Latest smoothed RTT per TCP connection, lent to exact exchanges. */
  #srtt = new Map<string, number>();
  /** Last signal sent per connection and kind, and what happened since. */
  #signals = new Map<string, { at: number; carry: number }>();

  private constructor(opts: NodeProbeOptions) {
    this.#opts = opts;
    this.#mode = {
      mode: "inferred",
      reason: opts.exactOff ?? "the Go TLS probe is starting",
    };
    this.#tcpDone = this.#pumpTcp();
    this.#watch = this.#followKubelet();
  }

  /** Starts following the TCP probe and, when it can, the kubelet's Go TLS layer. */
  static async open(opts: NodeProbeOptions): Promise<NodeProbe> {
    const probe = new NodeProbe(opts);
    await probe.#attachExact();
    return probe;
  }

  /** Whether renewals are identified exactly now, and why not. */
  get pairing(): PairingMode {
    return { ...this.#mode };
  }

  /** Fields the agent logs once the probe runs. */
  get details(): Record<string, unknown> {
    return {
      buffer: this.#opts.tcp.buffer,
      adopted: this.#opts.tcp.adopted,
      port: this.#opts.tcp.endpoint.port,
      found: this.#opts.tcp.endpoint.detail,
      pairing: this.#mode.mode,
      ...(this.#mode.reason !== undefined && { why: this.#mode.reason }),
    };
  }

  /** Exchanges in arrival order; ends when the probe closes. One consumer. */
  exchanges(): AsyncIterable<WireExchange> {
    return this.#out;
  }

  /** The TCP probe's health: null while the kubelet holds an API connection. */
  health(): Promise<string | null> {
    return this.#opts.tcp.health();
  }

  /** Detaches both probes. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#stop.abort();
      await this.#watch;
      await this.#closeExact();
      await this.#opts.tcp.close();
      await this.#tcpDone;
      this.#out.close();
    })();
    return this.#closing;
  }

  async #pumpTcp(): Promise<void> {
    const tcp = this.#opts.tcp;
    const aggregator = new WireAggregator({
      node: this.#opts.node,
      monoToWallOffsetMs: tcp.monoToWallOffsetMs,
    });
    for await (const ev of tcp.events()) {
      if (ev.srttUs > 0) this.#srtt.set(ev.conn, ev.srttUs);
      const x = aggregator.add(ev);
      if (x) this.#out.push({ ...x, confidence: "inferred" });
      const signal = ev.kind === "retransmit"
        ? "retransmit"
        : ev.kind === "reset"
        ? "reset"
        : ev.kind === "state" && ev.newState === "CLOSE"
        ? "closed"
        : null;
      if (signal) this.#signal(ev, signal, tcp.monoToWallOffsetMs);
    }
    this.#out.close();
  }

  /**
   * Reports news of the kubelet's connection for diagnosis: at most one
   * signal per connection and kind a second, carrying the count since.
   */
  #signal(
    ev: RawWireEvent,
    signal: "retransmit" | "reset" | "closed",
    offsetMs: number,
  ): void {
    const key = `${ev.conn}|${signal}`;
    const now = this.#opts.clock.now();
    const last = this.#signals.get(key) ?? { at: -Infinity, carry: 0 };
    last.carry++;
    this.#signals.set(key, last);
    if (signal !== "closed" && now - last.at < SIGNAL_EVERY_MS) return;
    const count = last.carry;
    last.at = now;
    last.carry = 0;
    this.#out.push({
      node: this.#opts.node,
      conn: ev.conn,
      at: monoToIso(ev.tsNs, offsetMs),
      latencyMs: 0,
      bytesSent: 0,
      bytesReceived: 0,
      srttUs: ev.srttUs,
      retransmits: signal === "retransmit" ? count : 0,
      resets: signal === "reset" ? count : 0,
      confidence: "inferred",
      signal,
    });
  }

  async #attachExact(): Promise<void> {
    const { openExact } = this.#opts;
    if (!openExact) return;
    const pid = await this.#opts.kubeletPid();
    this.#exactPid = pid;
    if (pid === null) {
      this.#setMode({
        mode: "inferred",
        reason: "no kubelet process to trace",
      });
      return;
    }
    try {
      const exact = await openExact(pid);
      this.#exact = exact;
      this.#exactDone = this.#pumpExact(exact);
      this.#setMode({ mode: "exact" });
    } catch (err) {
      this.#setMode({
        mode: "inferred",
        reason: `the kubelet's Go TLS layer cannot be traced: ${
          err instanceof Error ? err.message : String(err)
        }`,
      });
    }
  }

  #setMode(mode: PairingMode): void {
    if (
      mode.mode === this.#mode.mode && mode.reason === this.#mode.reason
    ) return;
    this.#mode = mode;
    if (mode.mode === "exact") {
      log.info("renewals are identified exactly (Go TLS uprobes)", {
        pid: this.#exactPid,
      });
    } else {
      log.warn("renewals are inferred from TCP timing", {
        reason: mode.reason,
      });
    }
  }

  async #closeExact(): Promise<void> {
    const exact = this.#exact;
    this.#exact = null;
    await exact?.close();
    await this.#exactDone;
  }

  /** Reattaches the exact probe when the kubelet restarts (a new pid). */
  async #followKubelet(): Promise<void> {
    if (!this.#opts.openExact) return;
    const every = this.#opts.checkMs ?? 5000;
    while (
      await sleepUnlessAborted(this.#opts.clock, every, this.#stop.signal)
    ) {
      const pid = await this.#opts.kubeletPid();
      if (pid === this.#exactPid) continue;
      log.info("the kubelet restarted: following its new process", {
        from: this.#exactPid,
        to: pid,
      });
      await this.#closeExact();
      if (this.#stop.signal.aborted) return;
      await this.#attachExact();
    }
  }

  async #pumpExact(exact: ExactProbe): Promise<void> {
    const tracker = new H2ExchangeTracker();
    const sockets = new Map<string, Promise<string | null>>();
    const emit = async (lx: LeaseExchange) => {
      let socket = sockets.get(lx.conn);
      if (!socket) {
        socket = exact.socketOf(lx.conn);
        sockets.set(lx.conn, socket);
      }
      this.#out.push(this.#toWire(lx, await socket));
    };
    // Renewals sent and not answered within a second: reported as pending,
    // so the leader knows a request is out even while nothing comes back.
    const stop = new AbortController();
    const offset = this.#opts.tcp.monoToWallOffsetMs;
    const watching = (async () => {
      while (
        await sleepUnlessAborted(
          this.#opts.clock,
          PENDING_CHECK_MS,
          stop.signal,
        )
      ) {
        const nowNs = BigInt(
          Math.round((this.#opts.clock.now() - offset) * 1e6),
        );
        for (const lx of tracker.waiting(nowNs, PENDING_AFTER_NS)) {
          await emit(lx);
        }
      }
    })();
    try {
      for await (const record of exact.records()) {
        for (const lx of tracker.push(record)) await emit(lx);
      }
    } catch (err) {
      this.#setMode({
        mode: "inferred",
        reason: `the Go TLS probe stopped: ${
          err instanceof Error ? err.message : String(err)
        }`,
      });
    } finally {
      stop.abort();
      await watching;
    }
  }

  #toWire(lx: LeaseExchange, socket: string | null): WireExchange {
    const offset = this.#opts.tcp.monoToWallOffsetMs;
    const end = lx.endNs ?? lx.answerNs;
    const nowNs = BigInt(Math.round((this.#opts.clock.now() - offset) * 1e6));
    const x: WireExchange = {
      node: this.#opts.node,
      conn: socket ?? `tls.Conn ${lx.conn} of pid ${lx.pid}`,
      at: monoToIso(lx.startNs, offset),
      latencyMs: end !== null
        ? nsToMs(end - lx.startNs)
        : lx.outcome === "pending"
        ? nsToMs(nowNs - lx.startNs)
        : 0,
      bytesSent: lx.requestBytes,
      bytesReceived: lx.responseBytes,
      srttUs: socket === null ? 0 : this.#srtt.get(socket) ?? 0,
      // TCP retransmits and resets come from the TCP probe's signals; an
      // HTTP/2 stream reset (the kubelet's client giving up, the server
      // refusing) is no network fault: it shows as a renewal without an
      // answer.
      retransmits: 0,
      resets: 0,
      confidence: "exact",
      lease: `${lx.namespace}/${lx.name}`,
    };
    if (lx.resourceVersion !== null) x.resourceVersion = lx.resourceVersion;
    if (lx.status !== null) x.status = lx.status;
    if (lx.outcome === "pending") x.signal = "pending";
    return x;
  }
}

function nsToMs(ns: bigint): number {
  return Math.round(Number(ns) / 1000) / 1000;
}
