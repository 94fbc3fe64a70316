/**
 * Reads a kubeconfig straight into a {@linkcode RestConfig} when it only uses
 * what Deno's own TLS client can do (server, CA, client certificate, bearer
 * token), so an agent started with `--kubeconfig` costs no
 * `@kubernetes/client-node` import (about 70 MB of resident memory). Anything
 * else (exec plugins, auth providers, proxies, several files in
 * `$KUBECONFIG`) returns null, and the caller falls back to client-node.
 *
 * @module
 */

import yaml from "js-yaml";
import { tokenFileReader } from "../core/token_file.ts";
import type { RestConfig } from "./rest_client.ts";

type Dict = Record<string, unknown>;

const CLUSTER_KEYS = new Set([
  "server",
  "certificate-authority",
  "certificate-authority-data",
  "extensions",
]);
const USER_KEYS = new Set([
  "client-certificate",
  "client-certificate-data",
  "client-key",
  "client-key-data",
  "token",
  "tokenFile",
  "extensions",
]);

function dict(v: unknown): Dict | undefined {
  return v !== null && typeof v === "object" && !Array.isArray(v)
    ? v as Dict
    : undefined;
}

function named(list: unknown, name: string, field: string): Dict | undefined {
  if (!Array.isArray(list)) return undefined;
  const entry = list.map(dict).find((e) => e?.name === name);
  return dict(entry?.[field]);
}

function onlyKeys(d: Dict, allowed: Set<string>): boolean {
  return Object.keys(d).every((k) => allowed.has(k));
}

function base64Text(v: unknown): string | undefined {
  if (typeof v !== "string") return undefined;
  try {
    return atob(v.replace(/\s+/g, ""));
  } catch {
    return undefined;
  }
}

/** The kubeconfig file that client-node would read, or null when that takes client-node. */
function kubeconfigPath(explicit: string | undefined): string | null {
  if (explicit !== undefined) return explicit;
  const env = Deno.env.get("KUBECONFIG");
  if (env) return env.includes(":") ? null : env;
  const home = Deno.env.get("HOME");
  return home ? `${home}/.kube/config` : null;
}

/**
 * Returns the REST configuration of the kubeconfig's context (`context`, else
 * its current context), or null when the file is missing, malformed or needs
 * more than a CA, a client certificate or a token: client-node then loads it
 * (and reports any error).
 */
export async function readSimpleKubeconfig(
  opts: { kubeconfig?: string; context?: string } = {},
): Promise<RestConfig | null> {
  const path = kubeconfigPath(opts.kubeconfig);
  if (path === null) return null;
  let doc: Dict | undefined;
  try {
    doc = dict(yaml.load(await Deno.readTextFile(path)));
  } catch {
    return null;
  }
  if (!doc) return null;
  const contextName = opts.context ?? doc["current-context"];
  if (typeof contextName !== "string") return null;
  const context = named(doc.contexts, contextName, "context");
  if (!context || typeof context.cluster !== "string") return null;
  if (context.user !== undefined && typeof context.user !== "string") {
    return null;
  }
  const cluster = named(doc.clusters, context.cluster, "cluster");
  const user = typeof context.user === "string"
    ? named(doc.users, context.user, "user") ?? {}
    : {};
  if (!cluster || !onlyKeys(cluster, CLUSTER_KEYS)) return null;
  if (!onlyKeys(user, USER_KEYS)) return null;
  if (typeof cluster.server !== "string") return null;

  const dir = path.includes("/") ? path.slice(0, path.lastIndexOf("/")) : ".";
  const file = async (v: unknown) =>
    typeof v === "string"
      ? await Deno.readTextFile(v.startsWith("/") ? v : `${dir}/${v}`)
      : undefined;
  const pem = async (data: unknown, fileField: unknown) => {
    if (data !== undefined) return base64Text(data) ?? null;
    return await file(fileField);
  };
  try {
    const ca = await pem(
      cluster["certificate-authority-data"],
      cluster["certificate-authority"],
    );
    const cert = await pem(
      user["client-certificate-data"],
      user["client-certificate"],
    );
    const key = await pem(user["client-key-data"], user["client-key"]);
    if (ca === null || cert === null || key === null) return null;
    if ((cert === undefined) !== (key === undefined)) return null;
    const config: RestConfig = { server: cluster.server.replace(/\/+$/, "") };
    if (ca !== undefined) config.caCerts = [ca];
    if (cert !== undefined && key !== undefined) {
      config.cert = cert;
      config.key = key;
    }
    if (typeof user.token === "string") {
      const header = { Authorization: `Bearer ${user.token}` };
      config.authHeaders = () => Promise.resolve(header);
    } else if (typeof user.tokenFile === "string") {
      const tokenFile = user.tokenFile;
      const token = tokenFileReader(
        tokenFile.startsWith("/") ? tokenFile : `${dir}/${tokenFile}`,
      );
      config.authHeaders = async () => ({
        Authorization: `Bearer ${await token()}`,
      });
    }
    return config;
  } catch {
    return null;
  }
}
