/**
 * Resident memory of the ways the image could ship the program, each run as
 * the image runs it: the image's Deno runtime, `--cached-only`, and a
 * read-only DENO_DIR (the image's root filesystem is read-only, so Deno keeps
 * its module-analysis and code caches in memory and every start is a first
 * start). A script that prints figures, not part of `deno task bench`:
 *
 *   sudo deno run -A tests/bench/image_memory.ts [--seconds 30] [--nodes 200] [--no-cluster]
 *
 * Candidates:
 * - `bundle`: the single-file bundle (`deno task bundle`);
 * - `source`: main.ts and the modules it imports, as written, with the npm
 *   packages cached in DENO_DIR (TypeScript transpiled at each start);
 * - `split`: `deno bundle --code-splitting`, npm packages inlined;
 * - `image`: what deploy/build_image.sh ships without `deno compile`: split,
 *   npm packages left as imports of the cached DENO_DIR.
 *
 * Workloads, run side by side for each candidate, then measured after
 * `--seconds`: `mock --nodes N` (a leader-sized hub in one process);
 * `agent --no-ebpf` against an API server that refuses connections (an idle
 * follower); and, when the control plane of tests/cluster/ is built, a leader
 * and a follower agent on it with N kwok nodes. Figures: VmRSS (anonymous
 * and file-backed parts) and VmHWM from /proc/PID/status, Pss from
 * /proc/PID/smaps_rollup.
 *
 * Needs root: each process gets its read-only DENO_DIR bind mount in a
 * private mount namespace, gone when the process ends.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { clusterBinDir, startCluster } from "../cluster/harness.ts";
import type { Cluster } from "../cluster/harness.ts";
import { collectLines } from "../earthworm_process.ts";
import { sleep, until } from "../wait.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const args = parseArgs({
  args: Deno.args,
  options: {
    seconds: { type: "string", default: "30" },
    nodes: { type: "string", default: "200" },
    "no-cluster": { type: "boolean", default: false },
  },
});
const SECONDS = Number(args.values.seconds);
const NODES = Number(args.values.nodes);

if (Deno.uid() !== 0) {
  console.error("image_memory: needs root for the read-only DENO_DIR mounts");
  Deno.exit(2);
}

async function run(cmd: string, argv: string[], env = {}): Promise<string> {
  const out = await new Deno.Command(cmd, {
    args: argv,
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error(`${cmd} ${argv.join(" ")} failed`);
  return new TextDecoder().decode(out.stdout);
}

interface Candidate {
  name: string;
  entry: string;
  denoDir: string;
}

/** Builds the four candidates under `dir`; returns them and the runtime. */
async function candidates(
  dir: string,
): Promise<{ deno: string; list: Candidate[] }> {
  const rootfs = `${dir}/rootfs`;
  await run("bash", [`${ROOT}deploy/build_image.sh`, "--rootfs", rootfs], {
    DENO: Deno.execPath(),
    EARTHWORM_IMAGE_MODE: "runtime",
  });
  const app = `${rootfs}/opt/earthworm/app`;
  const npmDir = `${rootfs}/opt/earthworm/deno_dir`;
  const empty = `${dir}/empty-deno-dir`;
  await Deno.mkdir(empty);
  const bundle = ["bundle", "--quiet", "--platform", "deno", "--minify"];
  await run(Deno.execPath(), [
    ...bundle,
    "-o",
    `${dir}/bundle/earthworm.js`,
    `${ROOT}main.ts`,
  ]);
  await run(Deno.execPath(), [
    ...bundle,
    "--code-splitting",
    "--outdir",
    `${dir}/split`,
    `${ROOT}main.ts`,
  ]);
  // The source tree: every local module main.ts reaches, and the image's
  // deno.json and deno.lock (only the npm packages the program uses).
  const info = JSON.parse(
    await run(Deno.execPath(), ["info", "--json", `${ROOT}main.ts`]),
  ) as { modules: { specifier: string }[] };
  const prefix = `file://${ROOT}`;
  for (const m of info.modules) {
    if (!m.specifier.startsWith(prefix)) continue;
    const rel = decodeURIComponent(m.specifier.slice(prefix.length));
    const to = `${dir}/source/${rel}`;
    await Deno.mkdir(to.slice(0, to.lastIndexOf("/")), { recursive: true });
    await Deno.copyFile(`${ROOT}${rel}`, to);
  }
  for (const f of ["deno.json", "deno.lock"]) {
    await Deno.copyFile(`${app}/${f}`, `${dir}/source/${f}`);
  }
  return {
    deno: `${rootfs}/usr/local/bin/deno`,
    list: [
      {
        name: "bundle",
        entry: `${dir}/bundle/earthworm.js`,
        denoDir: empty,
      },
      { name: "source", entry: `${dir}/source/main.ts`, denoDir: npmDir },
      { name: "split", entry: `${dir}/split/main.js`, denoDir: empty },
      { name: "image", entry: `${app}/main.js`, denoDir: npmDir },
    ],
  };
}

interface Proc {
  pid: number;
  url: string;
  lines: string[];
  stop(): Promise<void>;
}

/** Starts `deno run` of a candidate with its DENO_DIR mounted read-only. */
async function start(
  deno: string,
  c: Candidate,
  argv: string[],
): Promise<Proc> {
  const child = new Deno.Command("unshare", {
    args: [
      "--mount",
      "--propagation",
      "private",
      "sh",
      "-c",
      'mount --bind "$0" "$0" && mount -o remount,ro,bind "$0" && exec "$@"',
      c.denoDir,
      deno,
      "run",
      "--allow-all",
      "--cached-only",
      c.entry,
      ...argv,
    ],
    env: { NO_COLOR: "1", DENO_DIR: c.denoDir, DENO_NO_UPDATE_CHECK: "1" },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  const reading = collectLines(child.stderr, lines);
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch { /* gone */ }
    await child.status;
    await reading;
  };
  try {
    const url = await until(`${c.name} ${argv[0]} to listen`, 60_000, () => {
      const m = lines.map((l) => /listening on (http:\/\/[^\s/]+)/.exec(l))
        .find((m) => m);
      return m?.[1];
    });
    return { pid: child.pid, url, lines, stop };
  } catch (err) {
    await stop();
    throw new Error(`${err}: ${lines.join("\n")}`);
  }
}

function memory(pid: number) {
  const kib = (file: string, field: string) =>
    Number(
      new RegExp(`^${field}:\\s+(\\d+)`, "m").exec(
        Deno.readTextFileSync(`/proc/${pid}/${file}`),
      )?.[1] ?? NaN,
    );
  return {
    rss: kib("status", "VmRSS"),
    anon: kib("status", "RssAnon"),
    file: kib("status", "RssFile"),
    hwm: kib("status", "VmHWM"),
    pss: kib("smaps_rollup", "Pss"),
  };
}

type Row = { candidate: string; workload: string } & ReturnType<typeof memory>;

const dir = await Deno.makeTempDir({ prefix: "earthworm-image-memory-" });
let cluster: Cluster | undefined;
const rows: Row[] = [];
try {
  const { deno, list } = await candidates(dir);
  const kubeconfig = `${dir}/unreachable.kubeconfig`;
  Deno.writeTextFileSync(
    kubeconfig,
    JSON.stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [{
        name: "none",
        cluster: {
          server: "https://127.0.0.1:1",
          "certificate-authority": "/etc/ssl/certs/ca-certificates.crt",
        },
      }],
      users: [{ name: "none", user: { token: "none" } }],
      contexts: [{ name: "none", context: { cluster: "none", user: "none" } }],
      "current-context": "none",
    }),
  );
  const bin = clusterBinDir();
  const haveCluster = !args.values["no-cluster"] &&
    ["kube-apiserver", "etcd", "kwok", "kubectl"].every((b) => {
      try {
        return Deno.statSync(`${bin}/${b}`).isFile;
      } catch {
        return false;
      }
    });
  if (haveCluster) {
    cluster = await startCluster();
    await cluster.createNodes(NODES);
  } else {
    console.error(
      `image_memory: no leader/follower on a control plane (${
        args.values["no-cluster"] ? "--no-cluster" : `none built in ${bin}`
      })`,
    );
  }
  const agent = (name: string, lease: string, kc: string) => [
    "agent",
    "--no-ebpf",
    "--host",
    "127.0.0.1",
    "--port",
    "0",
    "--identity",
    name,
    "--kubeconfig",
    kc,
    "--election-namespace",
    "default",
    "--election-lease",
    lease,
  ];
  for (const c of list) {
    console.error(`image_memory: ${c.name}`);
    const procs: [string, Proc][] = [];
    try {
      procs.push([
        `mock --nodes ${NODES}`,
        await start(deno, c, [
          "mock",
          "--host",
          "127.0.0.1",
          "--port",
          "0",
          "--nodes",
          String(NODES),
        ]),
      ]);
      procs.push([
        "idle agent (no API server)",
        await start(deno, c, agent(`${c.name}-idle`, "none", kubeconfig)),
      ]);
      if (cluster) {
        const lease = `bench-${c.name}`;
        const kc = cluster.kubeconfigPath;
        const leader = await start(deno, c, agent(`${c.name}-1`, lease, kc));
        procs.push([`leader (${NODES} kwok nodes)`, leader]);
        await until(`${c.name} leader`, 60_000, async () => {
          const m = await (await fetch(`${leader.url}/metrics`)).text();
          return /^earthworm_leader\{[^}]*\} 1$/m.test(m);
        });
        const follower = await start(deno, c, agent(`${c.name}-2`, lease, kc));
        procs.push(["follower", follower]);
        await until(`${c.name} follower ready`, 60_000, async () => {
          const r = await fetch(`${follower.url}/readyz`);
          await r.body?.cancel();
          return r.ok;
        });
      }
      await sleep(SECONDS * 1000);
      for (const [workload, p] of procs) {
        rows.push({ candidate: c.name, workload, ...memory(p.pid) });
      }
    } finally {
      // Followers first, so the leader releases its Lease last.
      for (const [, p] of procs.reverse()) await p.stop();
    }
  }
} finally {
  await cluster?.stop();
  await Deno.remove(dir, { recursive: true });
}

const mib = (k: number) => (k / 1024).toFixed(1);
console.log(
  `After ${SECONDS} s, MiB (Deno's caches read-only, as in the image):\n`,
);
console.log(
  "| candidate | workload | VmRSS | anonymous | file-backed | Pss | peak (VmHWM) |",
);
console.log("| --- | --- | ---: | ---: | ---: | ---: | ---: |");
for (const r of rows) {
  console.log(
    `| ${r.candidate} | ${r.workload} | ${mib(r.rss)} | ${mib(r.anon)} | ${
      mib(r.file)
    } | ${mib(r.pss)} | ${mib(r.hwm)} |`,
  );
}
