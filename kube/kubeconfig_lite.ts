/**
 * Reads a kubeconfig straight into a {@linkcode RestConfig} when it only uses
 * what Deno's own TLS client can do (server, CA, client certificate, bearer
 * token), so an agent started with `--kubeconfig` costs no
 * `@kubernetes/client-node` import (about 70 MB of resident memory). Anything
 * else (exec plugins, auth providers, proxies, several files in
 * `$KUBECONFIG`) returns null, and the caller falls back to client-node.
 * Finding and checking the file is `kubeconfig_file.ts`'s job, so both paths
 * report a bad kubeconfig the same way.
 *
 * @module
 */

import { type InputFileKind, readInputText } from "../core/input_file.ts";
import { tokenFileReader } from "../core/token_file.ts";
import {
  checkReferencedFiles,
  type Kubeconfig,
  type KubeconfigOptions,
  readKubeconfig,
  resolvePath,
} from "./kubeconfig_file.ts";
import type { RestConfig } from "./rest_client.ts";

/** PEM files a kubeconfig points at (CA, client certificate and key). */
const PEM_FILE: InputFileKind = {
  what: "certificate file",
  maxBytes: 1024 * 1024,
  expected: "a PEM file",
  tooLargeFix: "point the kubeconfig at the PEM file itself",
};

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

/**
 * Returns the REST configuration of a checked kubeconfig (see
 * `kubeconfig_file.ts`), or null when it needs more than a CA, a client
 * certificate or a token, or spans several files: client-node then loads it.
 */
export async function simpleRestConfig(
  kc: Kubeconfig,
): Promise<RestConfig | null> {
  if (kc.files.length !== 1) return null;
  const cluster = kc.cluster.body;
  const user = kc.user?.body ?? {};
  if (!onlyKeys(cluster, CLUSTER_KEYS)) return null;
  if (!onlyKeys(user, USER_KEYS)) return null;

  const file = kc.files[0]!;
  const read = async (v: unknown) =>
    typeof v === "string"
      ? await readInputText(resolvePath(file, v), PEM_FILE)
      : undefined;
  const pem = async (data: unknown, fileField: unknown) => {
    if (data !== undefined) return base64Text(data) ?? null;
    return await read(fileField);
  };
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
  const config: RestConfig = { server: kc.cluster.server.replace(/\/+$/, "") };
  if (ca !== undefined) config.caCerts = [ca];
  if (cert !== undefined && key !== undefined) {
    config.cert = cert;
    config.key = key;
  }
  if (typeof user.token === "string") {
    const header = { Authorization: `Bearer ${user.token}` };
    config.authHeaders = () => Promise.resolve(header);
  } else if (typeof user.tokenFile === "string") {
    const token = tokenFileReader(resolvePath(file, user.tokenFile));
    config.authHeaders = async () => ({
      Authorization: `Bearer ${await token()}`,
    });
  }
  return config;
}

/**
 * Reads the kubeconfig (`kubeconfig`, else `$KUBECONFIG` or
 * `~/.kube/config`) and returns the REST configuration of its context
 * (`context`, else the current one), or null when that takes client-node.
 * A kubeconfig that cannot be used throws an InputError.
 */
export async function readSimpleKubeconfig(
  opts: KubeconfigOptions = {},
): Promise<RestConfig | null> {
  const kc = await readKubeconfig(opts);
  if (kc === "in-cluster") return null;
  await checkReferencedFiles(kc);
  return await simpleRestConfig(kc);
}
