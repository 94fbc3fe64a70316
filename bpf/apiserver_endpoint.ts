/**
 * Finds the API server endpoint the kubelet talks to, so the probe follows
 * the right port with no flag on managed clusters (443, load balancers) as on
 * kubeadm ones (6443): first the `server` of the kubeconfig named on the
 * kubelet's command line (read through `/proc/<pid>/root`, the kubelet's own
 * file system view), else the remote port of the kubelet's own established
 * outgoing connections.
 *
 * @module
 */

import yaml from "js-yaml";
import { WireUnavailableError } from "../core/errors.ts";
import { type ProcessSockets, processSockets } from "./proc_scan.ts";
import { formatAddress } from "./wire_event.ts";

/** Where the kubelet's API server is, and how that was found. */
export interface ApiserverEndpoint {
  /** Remote TCP port of the API server as the kubelet connects to it. */
  port: number;
  /** `flag`: given by the operator; `kubeconfig`: the kubelet's kubeconfig; `connections`: its sockets. */
  source: "flag" | "kubeconfig" | "connections";
  /** The kubeconfig and server, or the connection that told. */
  detail: string;
}

type Dict = Record<string, unknown>;

function dict(v: unknown): Dict | undefined {
  return v !== null && typeof v === "object" && !Array.isArray(v)
    ? v as Dict
    : undefined;
}

/** The value of `--name=value` or `--name value` in a command line. */
export function flagValue(args: string[], name: string): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === `--${name}` || a === `-${name}`) return args[i + 1];
    for (const prefix of [`--${name}=`, `-${name}=`]) {
      if (a.startsWith(prefix)) return a.slice(prefix.length);
    }
  }
  return undefined;
}

/** The server URL of a kubeconfig's current context (else its only cluster). */
export function kubeconfigServer(text: string): string | undefined {
  const doc = dict(yaml.load(text));
  if (!doc) return undefined;
  const clusters = Array.isArray(doc.clusters) ? doc.clusters.map(dict) : [];
  const current = doc["current-context"];
  let clusterName: unknown;
  if (typeof current === "string" && Array.isArray(doc.contexts)) {
    const ctx = doc.contexts.map(dict).find((c) => c?.name === current);
    clusterName = dict(ctx?.context)?.cluster;
  }
  const entry = clusterName === undefined
    ? (clusters.length === 1 ? clusters[0] : undefined)
    : clusters.find((c) => c?.name === clusterName);
  const server = dict(entry?.cluster)?.server;
  return typeof server === "string" ? server : undefined;
}

/** The TCP port of a server URL (443 for https and 80 for http when not given). */
export function serverPort(server: string): number | undefined {
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    return undefined;
  }
  if (url.port) return Number(url.port);
  if (url.protocol === "https:") return 443;
  if (url.protocol === "http:") return 80;
  return undefined;
}

async function readText(path: string): Promise<string | null> {
  try {
    return await Deno.readTextFile(path);
  } catch {
    return null;
  }
}

/** The kubelet's kubeconfig server port, read through the process's root. */
async function fromKubeconfig(
  pid: number,
  procRoot: string,
): Promise<ApiserverEndpoint | null> {
  const cmdline = await readText(`${procRoot}/${pid}/cmdline`);
  if (cmdline === null) return null;
  const args = cmdline.split("\0").filter((a) => a !== "");
  const path = flagValue(args, "kubeconfig");
  if (!path) return null;
  const base = path.startsWith("/")
    ? `${procRoot}/${pid}/root`
    : `${procRoot}/${pid}/cwd/`;
  const text = await readText(`${base}${path}`);
  if (text === null) return null;
  let server: string | undefined;
  try {
    server = kubeconfigServer(text);
  } catch {
    return null; // not YAML: fall back to the connections
  }
  const port = server === undefined ? undefined : serverPort(server);
  if (port === undefined) return null;
  return {
    port,
    source: "kubeconfig",
    detail: `server ${server} in the kubelet's kubeconfig ${path}`,
  };
}

/**
 * The API server port among a process's established outgoing connections:
 * connections accepted on its own listening ports (the kubelet serves 10250)
 * are not outgoing; of the rest, the port with most connections (the API
 * server's long-lived one), 6443 and 443 first on a tie.
 */
export function fromConnections(p: ProcessSockets): ApiserverEndpoint | null {
  const counts = new Map<number, number>();
  const example = new Map<number, string>();
  for (const row of p.established) {
    if (p.listening.has(row.lport)) continue;
    counts.set(row.rport, (counts.get(row.rport) ?? 0) + 1);
    if (!example.has(row.rport)) {
      example.set(row.rport, `${formatAddress(row.raddr)}:${row.rport}`);
    }
  }
  const rank = (port: number) => port === 6443 ? 2 : port === 443 ? 1 : 0;
  const best =
    [...counts.entries()].sort((a, b) =>
      b[1] - a[1] || rank(b[0]) - rank(a[0]) || a[0] - b[0]
    )[0];
  if (!best) return null;
  return {
    port: best[0],
    source: "connections",
    detail: `the ${p.comm} process (pid ${p.pid}) is connected to ${
      example.get(best[0])
    }`,
  };
}

/**
 * Finds the API server endpoint of the process named `comm`. Throws
 * {@linkcode WireUnavailableError} (`no-kubelet`) when no such process runs,
 * or when it has neither a readable kubeconfig nor an outgoing connection.
 */
export async function discoverApiserver(
  comm: string,
  procRoot = "/proc",
): Promise<ApiserverEndpoint> {
  const processes = await processSockets(comm, procRoot);
  if (processes.length === 0) {
    throw new WireUnavailableError(
      "no-kubelet",
      `No process named "${comm}" runs on this node, so the API server port is unknown: the probe retries; set --comm if the kubelet runs under another name, or --apiserver-port`,
    );
  }
  for (const p of processes) {
    const found = await fromKubeconfig(p.pid, procRoot);
    if (found) return found;
  }
  for (const p of processes) {
    const found = fromConnections(p);
    if (found) return found;
  }
  throw new WireUnavailableError(
    "no-kubelet",
    `The ${comm} process (pid ${
      processes.map((p) => p.pid).join(", ")
    }) has no readable kubeconfig and no connection to an API server yet: the probe retries; set --apiserver-port to skip the discovery`,
  );
}
