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
import { tokenFileReader } from "../core/token_file.ts";
import type { RestConfig } from "./rest_client.ts";

const SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/**
 * Reads the in-cluster configuration (ServiceAccount token, CA and the
 * `KUBERNETES_SERVICE_HOST`/`_PORT` variables). The token is re-read every
 * minute because bound tokens rotate. This path costs no client-node import.
 */
export function inClusterRestConfig(dir = SA_DIR): RestConfig {
  const host = Deno.env.get("KUBERNETES_SERVICE_HOST");
  const port = Deno.env.get("KUBERNETES_SERVICE_PORT") ?? "443";
  if (!host) {
    throw new Error(
      "Not running in a cluster: KUBERNETES_SERVICE_HOST is not set; pass --kubeconfig instead",
    );
  }
  const ca = Deno.readTextFileSync(`${dir}/ca.crt`);
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
    throw new Error(
      `Kubeconfig context "${kc.getCurrentContext()}" names no cluster: pick another with --context`,
    );
  }
  const opts: Record<string, unknown> = {};
  await kc.applyToHTTPSOptions(opts);
  if (opts.rejectUnauthorized === false && cluster.server.startsWith("https")) {
    throw new Error(
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
 * Loads a kubeconfig with client-node (imported only here, on demand): the
 * given file, else `$KUBECONFIG`, `~/.kube/config` or the in-cluster config.
 */
export async function loadKubeConfig(
  opts: { kubeconfig?: string; context?: string } = {},
): Promise<KubeConfig> {
  const { KubeConfig } = await import("@kubernetes/client-node");
  const kc = new KubeConfig();
  try {
    if (opts.kubeconfig) kc.loadFromFile(opts.kubeconfig);
    else kc.loadFromDefault();
  } catch (err) {
    throw new Error(
      `Cannot read kubeconfig "${opts.kubeconfig ?? "(default)"}": ${
        err instanceof Error ? err.message : String(err)
      }`,
      { cause: err },
    );
  }
  if (opts.context !== undefined) {
    if (!kc.getContextObject(opts.context)) {
      const known = kc.getContexts().map((c) => c.name).join(", ");
      throw new Error(
        `Kubeconfig has no context "${opts.context}": use one of ${
          known || "(none)"
        }`,
      );
    }
    kc.setCurrentContext(opts.context);
  }
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
