/**
 * Runs the agent the way its pod does: no kubeconfig, `KUBERNETES_SERVICE_HOST`
 * set, and the ServiceAccount's token and CA at
 * `/var/run/secrets/kubernetes.io/serviceaccount`. That path is fixed, so the
 * agent runs in a private mount namespace (`unshare -m`, root only) with a
 * tmpfs over `/run` holding those files; the host's `/run` is untouched.
 *
 * @module
 */

import type { EarthwormProcess } from "../earthworm_process.ts";

/** Why the in-cluster mode cannot be simulated here, or null. */
export function inClusterMissing(): string | null {
  if (Deno.uid() !== 0) return "needs root for a private mount namespace";
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    try {
      if (Deno.statSync(`${dir}/unshare`).isFile) return null;
    } catch {
      // not here
    }
  }
  return "unshare (util-linux) is not installed";
}

/** Settings of {@linkcode startInClusterAgent}. */
export interface InClusterAgentOptions {
  /** The bundle to run, alone in `cwd`. */
  bundle: string;
  cwd: string;
  /** API server base URL, e.g. `https://127.0.0.1:16443`. */
  server: string;
  /** PEM of the cluster CA. */
  ca: string;
  /** A token of the ServiceAccount. */
  token: string;
  /** Arguments after `agent`. */
  args: string[];
  /** Downward-API variables (POD_NAME, NODE_NAME, POD_NAMESPACE). */
  env: Record<string, string>;
  timeoutMs?: number;
}

/** Starts the agent in in-cluster mode and resolves once it listens. */
export async function startInClusterAgent(
  opts: InClusterAgentOptions,
): Promise<EarthwormProcess> {
  const url = new URL(opts.server);
  const files = await Deno.makeTempDir({ prefix: "earthworm-sa-" });
  await Deno.writeTextFile(`${files}/ca.crt`, opts.ca);
  await Deno.writeTextFile(`${files}/token`, opts.token);
  const sa = "/run/secrets/kubernetes.io/serviceaccount";
  const script = [
    "set -e",
    "mount -t tmpfs -o size=1m earthworm-test /run",
    `mkdir -p ${sa}`,
    `cp "$SA_FILES/ca.crt" "$SA_FILES/token" ${sa}/`,
    'exec "$DENO" run -A "$BUNDLE" agent "$@"',
  ].join("\n");
  const started = performance.now();
  const child = new Deno.Command("unshare", {
    args: [
      "-m",
      "--propagation",
      "private",
      "sh",
      "-c",
      script,
      "sh",
      ...opts.args,
    ],
    cwd: opts.cwd,
    env: {
      ...opts.env,
      NO_COLOR: "1",
      KUBERNETES_SERVICE_HOST: url.hostname,
      KUBERNETES_SERVICE_PORT: url.port || "443",
      SA_FILES: files,
      DENO: Deno.execPath(),
      BUNDLE: opts.bundle,
    },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let text = "";
  let listening: string | undefined;
  const decoder = new TextDecoder();
  const reading = (async () => {
    for await (const chunk of child.stderr) {
      text += decoder.decode(chunk, { stream: true });
      listening ??= /listening on (http:\/\/[^\s/"]+)/.exec(text)?.[1];
    }
  })();
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const cleanup = () => Deno.remove(files, { recursive: true }).catch(() => {});
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  while (!listening) {
    if (exited || Date.now() > deadline) {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
      await status;
      await reading;
      await cleanup();
      throw new Error(`The in-cluster agent did not start: ${text}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    url: listening,
    child,
    startupMs: performance.now() - started,
    stderr: () => text,
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch { /* gone */ }
      const timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
      }, 10_000);
      const s = await status;
      clearTimeout(timer);
      await reading;
      await cleanup();
      return s.code;
    },
  };
}
