/**
 * The pinned helm of `tests/helm/build.sh` for the chart tests: where it is,
 * the prerequisite `helm: ` tests gate on, and a runner that keeps helm's
 * cache, config and data out of the user's home.
 *
 * @module
 */

import yaml from "js-yaml";
import { type Prereq, prereq } from "../prereq.ts";
import type { K8sObject } from "../deploy/manifest.ts";

/** Pinned version; keep in step with build.sh. */
export const HELM_VERSION = "v3.22.0";

const ROOT = new URL("../../", import.meta.url).pathname;

/** The chart's directory. */
export const CHART_DIR = `${ROOT}deploy/chart`;

/** The helm binary: `$EARTHWORM_HELM`, else build.sh's cached build. */
export function helmPath(): string {
  const explicit = Deno.env.get("EARTHWORM_HELM");
  if (explicit) return explicit;
  const bin = Deno.env.get("EARTHWORM_HELM_BIN");
  if (bin) return `${bin}/helm`;
  const cache = Deno.env.get("EARTHWORM_CACHE") ??
    `${Deno.env.get("HOME") ?? "/root"}/.cache/earthworm`;
  return `${cache}/helm/${HELM_VERSION}/bin/helm`;
}

/** Why helm cannot run here, or null when it can. */
export function helmMissing(): string | null {
  try {
    if (Deno.statSync(helmPath()).isFile) return null;
  } catch {
    // not built
  }
  return `"${helmPath()}" does not exist: run bash tests/helm/build.sh (needs Go) or set EARTHWORM_HELM`;
}

/** Prerequisite of `helm: ` tests: skips on laptops without helm, fails under CI. */
export function helmPrereq(): Prereq {
  return prereq(`helm ${HELM_VERSION}`, helmMissing());
}

/** A finished helm run. */
export interface HelmRun {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs helm with `args`. Its cache, config and data directories are `home`
 * (a fresh temporary directory when absent, removed afterwards).
 */
export async function runHelm(
  args: string[],
  opts: { home?: string; stdin?: string } = {},
): Promise<HelmRun> {
  const home = opts.home ??
    await Deno.makeTempDir({ prefix: "earthworm-helm-" });
  try {
    const child = new Deno.Command(helmPath(), {
      args,
      cwd: ROOT,
      env: {
        HELM_CACHE_HOME: `${home}/cache`,
        HELM_CONFIG_HOME: `${home}/config`,
        HELM_DATA_HOME: `${home}/data`,
      },
      stdin: opts.stdin === undefined ? "null" : "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    if (opts.stdin !== undefined) {
      const w = child.stdin.getWriter();
      await w.write(new TextEncoder().encode(opts.stdin));
      await w.close();
    }
    const out = await child.output();
    const d = new TextDecoder();
    return {
      code: out.code,
      stdout: d.decode(out.stdout),
      stderr: d.decode(out.stderr),
    };
  } finally {
    if (opts.home === undefined) {
      await Deno.remove(home, { recursive: true }).catch(() => {});
    }
  }
}

/**
 * `helm template earthworm deploy/chart` in `namespace` with `values` (as a
 * values file); throws with helm's message when it fails.
 */
export async function renderChart(
  values: Record<string, unknown> = {},
  namespace = "earthworm",
): Promise<{ text: string; docs: K8sObject[] }> {
  const out = await runHelm([
    "template",
    "earthworm",
    CHART_DIR,
    "--namespace",
    namespace,
    "--values",
    "-",
  ], { stdin: JSON.stringify(values) });
  if (out.code !== 0) {
    throw new Error(`helm template failed (exit ${out.code}): ${out.stderr}`);
  }
  const docs = yaml.loadAll(out.stdout).filter((d): d is K8sObject =>
    d !== null && typeof d === "object"
  );
  return { text: out.stdout, docs };
}
