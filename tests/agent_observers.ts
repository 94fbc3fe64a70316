/**
 * Observers of running `earthworm agent` processes for end-to-end tests and
 * benchmarks: a poller that records each agent's `earthworm_leader` gauge
 * over time (and finds leaderships that provably overlapped), and an event
 * stream client that reconnects and resends `Last-Event-ID` the way a
 * browser's EventSource does.
 *
 * @module
 */

import type { Cluster } from "./cluster/harness.ts";
import { type EarthwormProcess, startEarthworm } from "./earthworm_process.ts";
import { readFullSse, type SseMessage } from "./sse_client.ts";
import { StreamMirror } from "../core/stream_codec.ts";
import { freePorts } from "./wait.ts";

/** One reading of an agent's `earthworm_leader` gauge. */
export interface RoleSample {
  identity: string;
  /** When the request was sent and the answer read (epoch ms). */
  sent: number;
  received: number;
  /** The gauge, or null when the agent did not answer. */
  leader: 0 | 1 | null;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

/** Polls agents' /metrics and records who says it leads. */
export class RolePoller {
  /** Every sample, in the order they were read. */
  readonly samples: RoleSample[] = [];
  readonly #loops = new Map<
    string,
    { stop: AbortController; done: Promise<void> }
  >();

  /** Starts polling the agent at `url` every `periodMs`. */
  watch(identity: string, url: string, periodMs = 50): void {
    const stop = new AbortController();
    const done = (async () => {
      while (!stop.signal.aborted) {
        const sent = Date.now();
        let leader: 0 | 1 | null = null;
        try {
          const res = await fetch(`${url}/metrics`, {
            signal: AbortSignal.any([stop.signal, AbortSignal.timeout(2_000)]),
          });
          const text = await res.text();
          const m = /^earthworm_leader\{[^}]*\} ([01])$/m.exec(text);
          if (res.ok && m) leader = m[1] === "1" ? 1 : 0;
        } catch {
          // not answering: unknown
        }
        if (stop.signal.aborted) break;
        this.samples.push({ identity, sent, received: Date.now(), leader });
        await sleep(periodMs, stop.signal);
      }
    })();
    this.#loops.set(identity, { stop, done });
  }

  /** Stops polling one agent (e.g. after killing it). */
  forget(identity: string): void {
    this.#loops.get(identity)?.stop.abort();
  }

  /** The agent's latest gauge reading (null: none yet, or no answer). */
  latest(identity: string): 0 | 1 | null {
    return this.samples.findLast((s) => s.identity === identity)?.leader ??
      null;
  }

  /** When the agent was first read as leading among requests sent at or after `t`. */
  firstLeadingAfter(identity: string, t: number): number | undefined {
    return this.samples.find((s) =>
      s.identity === identity && s.sent >= t && s.leader === 1
    )?.received;
  }

  /** Stops every poll loop. */
  async close(): Promise<void> {
    for (const l of this.#loops.values()) l.stop.abort();
    await Promise.all([...this.#loops.values()].map((l) => l.done));
  }
}

/** A span during which one agent certainly led. */
export interface Leadership {
  identity: string;
  start: number;
  end: number;
}

/**
 * Leaderships from role samples: for each run of consecutive "leading"
 * readings of one agent, the span from the first reading's answer to the
 * last reading's request, during which the agent led for certain (assuming
 * it did not stop and start again between two readings). A run of one
 * reading proves no span.
 */
export function leaderIntervals(samples: RoleSample[]): Leadership[] {
  const out: Leadership[] = [];
  const open = new Map<string, { first: RoleSample; last: RoleSample }>();
  const close = (identity: string) => {
    const run = open.get(identity);
    if (run) {
      out.push({ identity, start: run.first.received, end: run.last.sent });
      open.delete(identity);
    }
  };
  for (const s of samples) {
    if (s.leader === 1) {
      const run = open.get(s.identity);
      if (run) run.last = s;
      else open.set(s.identity, { first: s, last: s });
    } else close(s.identity);
  }
  for (const identity of [...open.keys()]) close(identity);
  return out.filter((l) => l.end > l.start);
}

/** Descriptions of pairs of leaderships of different agents that overlap. */
export function overlappingLeaders(intervals: Leadership[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < intervals.length; i++) {
    for (let j = i + 1; j < intervals.length; j++) {
      const a = intervals[i]!;
      const b = intervals[j]!;
      if (a.identity !== b.identity && a.start < b.end && b.start < a.end) {
        out.push(
          `${a.identity} led ${a.start}..${a.end} while ${b.identity} led ${b.start}..${b.end}`,
        );
      }
    }
  }
  return out;
}

/** A message read by {@linkcode StreamFollower}. */
export interface StreamMessage extends SseMessage {
  /** When it was read (epoch ms) and `performance.now()` then. */
  at: number;
  perf: number;
  /** Index of the connection in `connects`. */
  connection: number;
  /** The base URL it came through. */
  url: string;
}

/** One accepted connection of {@linkcode StreamFollower}. */
export interface StreamConnect {
  at: number;
  url: string;
  servedBy: string | null;
  /** The `Last-Event-ID` it was opened with. */
  lastEventId: string | undefined;
}

/**
 * Follows `GET /api/v1/stream` like EventSource: reconnects after the stream
 * ends or fails (after `reconnectMs`, also after an HTTP error) and resends
 * the last event id it saw.
 */
export class StreamFollower {
  /** Base URL to (re)connect to; may be changed, then call reconnect(). */
  url: string;
  readonly received: StreamMessage[] = [];
  readonly connects: StreamConnect[] = [];
  /** Failed attempts: HTTP status or error message. */
  readonly failures: { at: number; url: string; error: string }[] = [];
  /** Called for every message as it arrives. */
  onMessage: ((m: StreamMessage) => void) | undefined;
  readonly #stop = new AbortController();
  #current = new AbortController();
  #lastEventId: string | undefined;
  #mirror = new StreamMirror();
  readonly #done: Promise<void>;

  /** Connects to `url` right away. */
  constructor(url: string, readonly reconnectMs = 500) {
    this.url = url;
    this.#done = this.#run();
  }

  async #run(): Promise<void> {
    const stop = this.#stop.signal;
    while (!stop.aborted) {
      this.#current = new AbortController();
      const url = this.url;
      const headers: Record<string, string> = {};
      if (this.#lastEventId !== undefined) {
        headers["last-event-id"] = this.#lastEventId;
      }
      try {
        const res = await fetch(`${url}/api/v1/stream`, {
          headers,
          signal: AbortSignal.any([stop, this.#current.signal]),
        });
        const type = res.headers.get("content-type") ?? "";
        if (!res.ok || !type.startsWith("text/event-stream")) {
          this.failures.push({
            at: Date.now(),
            url,
            error: `HTTP ${res.status}: ${(await res.text()).slice(0, 200)}`,
          });
        } else {
          const connection = this.connects.length;
          this.connects.push({
            at: Date.now(),
            url,
            servedBy: res.headers.get("x-earthworm-served-by"),
            lastEventId: this.#lastEventId,
          });
          for await (const msg of readFullSse(res, this.#mirror)) {
            if (msg.event === "comment" || msg.event === "ping") continue;
            const m: StreamMessage = {
              ...msg,
              at: Date.now(),
              perf: performance.now(),
              connection,
              url,
            };
            this.received.push(m);
            if (m.id !== undefined) this.#lastEventId = m.id;
            this.onMessage?.(m);
          }
        }
      } catch (err) {
        if (!stop.aborted) {
          this.failures.push({
            at: Date.now(),
            url,
            error: err instanceof Error ? err.message : String(err),
          });
        }
      }
      await sleep(this.reconnectMs, stop);
    }
  }

  /** Number of beats read on one connection. */
  beatsIn(connection: number): number {
    return this.received.filter((m) =>
      m.connection === connection && m.event === "beat"
    ).length;
  }

  /** Drops the current connection; the follower reconnects to `url`. */
  reconnect(): void {
    this.#current.abort();
  }

  /** Stops following. */
  async close(): Promise<void> {
    this.#stop.abort();
    await this.#done;
  }
}

/** An `earthworm agent` process of a test or bench run. */
export interface AgentProcess {
  identity: string;
  address: string;
  proc: EarthwormProcess;
}

/**
 * Starts `earthworm agent` against `cluster` (admin kubeconfig, no eBPF) on
 * a free port it knows in advance, so its `--address` is right from the
 * start; `extra` adds flags such as election timings.
 */
export async function startAgent(
  cluster: Cluster,
  identity: string,
  extra: string[] = [],
): Promise<AgentProcess> {
  const [port] = freePorts(1);
  const address = `http://127.0.0.1:${port}`;
  const proc = await startEarthworm([
    "agent",
    "--kubeconfig",
    cluster.kubeconfigPath,
    "--host",
    "127.0.0.1",
    "--port",
    String(port),
    "--identity",
    identity,
    "--address",
    address,
    "--election-namespace",
    "earthworm",
    "--no-ebpf",
    ...extra,
  ], { timeoutMs: 60_000 });
  if (proc.url !== address) {
    await proc.stop();
    throw new Error(`Agent ${identity} listens on ${proc.url}, not ${address}`);
  }
  return { identity, address, proc };
}
