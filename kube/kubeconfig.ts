/**
 * Where a {@linkcode RestConfig} comes from: the in-cluster ServiceAccount
 * files (the agents' path: no client-node import, which would add about
 * 70 MB to every node's agent), or a kubeconfig loaded by
 * `@kubernetes/client-node` (contexts, exec plugins, auth providers; imported
 * on demand). Plain kubeconfigs are read without client-node by
 * `kubeconfig_lite.ts`.
 *
 * @module
 */

import type { KubeConfig } from "@kubernetes/client-node";
import { InputError } from "../core/errors.ts";
import { tokenFileReader } from "../core/token_file.ts";
import {
  checkReferencedFiles,
  type Kubeconfig,
  type KubeconfigOptions,
  readKubeconfig,
  SERVICE_ACCOUNT_DIR as SA_DIR,
} from "./kubeconfig_file.ts";
import { simpleRestConfig } from "./kubeconfig_lite.ts";
import type { RestConfig } from "./rest_client.ts";

/**
 * Reads the in-cluster configuration (ServiceAccount token, CA and the
 * `KUBERNETES_SERVICE_HOST`/`_PORT` variables). The token is re-read every
 * minute because bound tokens rotate. This path costs no client-node import.
 */
export function inClusterRestConfig(dir = SA_DIR): RestConfig {
  const host = Deno.env.get("KUBERNETES_SERVICE_HOST");
  const port = Deno.env.get("KUBERNETES_SERVICE_PORT") ?? "443";
  if (!host) {
    throw new InputError(
      "Not running in a cluster: KUBERNETES_SERVICE_HOST is not set: pass --kubeconfig instead",
    );
  }
  let ca: string;
  try {
    ca = Deno.readTextFileSync(`${dir}/ca.crt`);
  } catch (err) {
    const reason = err instanceof Deno.errors.NotFound
      ? "it does not exist"
      : err instanceof Error
      ? err.message.split("\n")[0]
      : String(err);
    throw new InputError(
      `Cannot read the ServiceAccount CA "${dir}/ca.crt": ${reason}: mount the ServiceAccount (automountServiceAccountToken: true) or pass --kubeconfig`,
    );
  }
  const token = tokenFileReader(`${dir}/token`, {
    hint: "is the ServiceAccount token mounted (automountServiceAccountToken)?",
  });
  return {
    server: `https://${host.includes(":") ? `[${host}]` : host}:${port}`,
    caCerts: [ca],
    authHeaders: async () => ({ Authorization: `Bearer ${await token()}` }),
  };
}

function pem(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (v instanceof Uint8Array) return new TextDecoder().decode(v);
  return undefined;
}

/**
 * Turns a loaded client-node `KubeConfig` (its current context) into a
 * {@linkcode RestConfig}. Authorization headers are asked from the KubeConfig
 * per request, so exec plugins and token files keep working.
 */
export async function restConfigFromKubeConfig(
  kc: KubeConfig,
): Promise<RestConfig> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) {
    throw new InputError(
      `Kubeconfig context "${kc.getCurrentContext()}" names no cluster: pick another with --context`,
    );
  }
  const opts: Record<string, unknown> = {};
  await kc.applyToHTTPSOptions(opts);
  if (opts.rejectUnauthorized === false && cluster.server.startsWith("https")) {
    throw new InputError(
      `Cluster "${cluster.name}" sets insecure-skip-tls-verify, which Earthworm does not support: set certificate-authority-data instead`,
    );
  }
  const config: RestConfig = {
    server: cluster.server.replace(/\/+$/, ""),
    authHeaders: async () => {
      const o: { headers?: Record<string, string> } = {};
      await kc.applyToHTTPSOptions(o);
      return o.headers ?? {};
    },
  };
  const ca = pem(opts.ca);
  if (ca) config.caCerts = [ca];
  const cert = pem(opts.cert);
  const key = pem(opts.key);
  if (cert && key) {
    config.cert = cert;
    config.key = key;
  }
  return config;
}

/**
 * Loads the kubeconfig with client-node (imported only here, on demand): the
 * given file, else `$KUBECONFIG`, `~/.kube/config` or the in-cluster
 * ServiceAccount. The files are found, read and checked first by
 * `kubeconfig_file.ts`, so a kubeconfig that cannot be used throws an
 * InputError naming the file, the field and the fix.
 */
export async function loadKubeConfig(
  opts: KubeconfigOptions = {},
): Promise<KubeConfig> {
  return await clientNodeConfig(await readKubeconfig(opts));
}

async function clientNodeConfig(
  found: Kubeconfig | "in-cluster",
): Promise<KubeConfig> {
  const { KubeConfig } = await import("@kubernetes/client-node");
  const kc = new KubeConfig();
  if (found === "in-cluster") {
    kc.loadFromCluster();
    http1Only(kc);
    return kc;
  }
  await checkReferencedFiles(found);
  kc.loadFromOptions({ clusters: [], contexts: [], users: [] });
  for (const file of found.files) {
    const one = new KubeConfig();
    try {
      one.loadFromString(file.text);
      one.makePathsAbsolute(file.dir);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      throw new InputError(
        `Cannot read kubeconfig ${JSON.stringify(file.path)}: ${
          message.split("\n")[0]
        }: fix the kubeconfig`,
      );
    }
    // The first file to define a name wins, as with kubectl.
    for (const c of one.clusters) if (!kc.getCluster(c.name)) kc.addCluster(c);
    for (const u of one.users) if (!kc.getUser(u.name)) kc.addUser(u);
    for (const c of one.contexts) {
      if (!kc.getContextObject(c.name)) kc.addContext(c);
    }
  }
  kc.setCurrentContext(found.context.name);
  http1Only(kc);
  return kc;
}

/**
 * Keeps client-node's connections on HTTP/1.1. Its undici offers HTTP/2 by
 * ALPN, and on Deno 2.9 a GOAWAY on a `node:http2` session (an API server
 * shutting down) can abort the whole process in nghttp2
 * (denoland/deno#36788). undici's connector takes `allowH2` from the
 * connect options, so each dispatcher client-node builds gets it.
 */
export function http1Only(kc: KubeConfig): void {
  const original = kc.createDispatcherOptions.bind(kc);
  kc.createDispatcherOptions = (cluster, agentOptions) => {
    const opts = original(cluster, agentOptions);
    if (opts.type === "agent" || opts.type === "proxy") {
      return { ...opts, connect: { ...opts.connect, allowH2: false } };
    }
    if (opts.type === "none") {
      return { type: "agent", connect: { allowH2: false } };
    }
    return opts;
  };
}

/**
 * The REST configuration of the kubeconfig (see {@linkcode loadKubeConfig}
 * for which one): read without client-node when it is plain
 * (`kubeconfig_lite.ts`), else through client-node.
 */
export async function kubeconfigRestConfig(
  opts: KubeconfigOptions = {},
): Promise<RestConfig> {
  const found = await readKubeconfig(opts);
  if (found === "in-cluster") return inClusterRestConfig();
  await checkReferencedFiles(found);
  return await simpleRestConfig(found) ??
    await restConfigFromKubeConfig(await clientNodeConfig(found));
}
