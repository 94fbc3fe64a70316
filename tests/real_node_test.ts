/**
 * Earthworm on a real node: the image the project builds
 * (`deploy/build_image.sh`), imported into the real node's containerd, and
 * `deploy/earthworm.yaml` applied unchanged to the test cluster, whose API
 * server is not on port 6443. The agent must run under its securityContext,
 * lead, follow the real kubelet's connection (found, not assumed), pair its
 * beats with their exchanges, serve the UI through `kubectl port-forward`,
 * follow a kubelet restart, and leave no BPF program behind when deleted.
 *
 * @module
 */

import assert from "node:assert/strict";
import { launchChromium } from "../ui/dev_browser.ts";
import type { Beat, HeartsResponse } from "../core/api_types.ts";
import { clusterBinDir, run, startCluster } from "./cluster/harness.ts";
import { realNodeMissing, startRealNode } from "./cluster/node.ts";
import { LineProcess } from "./line_process.ts";
import { executableMissing, onPath, prereq } from "./prereq.ts";
import { until } from "./wait.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const MANIFEST = `${ROOT}deploy/earthworm.yaml`;

const req = prereq(
  "a real node (root, containerd, Go, the control plane), the image tools and Chromium",
  realNodeMissing() ??
    (onPath("skopeo") ? null : '"skopeo" is not installed') ??
    (onPath("bpftool") ? null : '"bpftool" is not installed') ??
    executableMissing("/usr/bin/chromium", "apt-get install chromium"),
);

/** BPF programs of Earthworm loaded on this machine (names from the two objects). */
async function earthwormPrograms(): Promise<string[]> {
  const out = await new Deno.Command("bpftool", {
    args: ["prog", "list", "--json"],
    stdout: "piped",
  }).output();
  const progs = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    name?: string;
  }[];
  return progs.map((p) => p.name ?? "").filter((n) =>
    n.startsWith("ew_") || n.startsWith("gotls_")
  );
}

/** The agent's own process on this host (hostPID), found by its command line. */
function agentPid(): number | undefined {
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const cmd = Deno.readTextFileSync(`/proc/${entry.name}/cmdline`);
      if (cmd.includes("/opt/earthworm/") && cmd.includes("\0agent\0")) {
        return Number(entry.name);
      }
    } catch {
      // gone
    }
  }
  return undefined;
}

function rssMiB(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

function cpuTicks(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]); // utime + stime
}

Deno.test({
  name:
    "cluster: the project's image and the unchanged manifest run on a real kubelet: wire data found, beats paired, UI through port-forward, kubelet restart followed, nothing left after delete",
  ignore: req.ignore,
  sanitizeResources: false, // the cluster harness's child processes
  sanitizeOps: false,
}, async (t) => {
  req.check();
  const dir = await Deno.makeTempDir({ prefix: "earthworm-real-node-" });
  const archive = `${dir}/earthworm.oci.tar`;
  const built = await run("bash", [
    `${ROOT}deploy/build_image.sh`,
    "-o",
    archive,
  ], { DENO: Deno.execPath() });
  assert.equal(built.trim(), archive);
  const imageBytes = (await Deno.stat(archive)).size;
  const cluster = await startCluster();
  const figures: Record<string, unknown> = {
    imageMB: Math.round(imageBytes / 1e5) / 10,
  };
  try {
    const node = await startRealNode(cluster);
    assert.notEqual(
      new URL(cluster.server).port,
      "6443",
      "the API server is not on the port a probe might assume",
    );
    await node.importImage(archive);
    const kubectlBin = `${clusterBinDir()}/kubectl`;
    const kubectl = cluster.kubectl;
    const nodeHeart = `kube-node-lease/${node.name}`;

    const appliedAt = Date.now();
    await kubectl(["apply", "-f", MANIFEST]);

    await t.step(
      "the pod becomes Ready under its securityContext",
      async () => {
        await until("the agent pod to be Ready", 180_000, async () => {
          const pods = JSON.parse(
            await kubectl(["-n", "earthworm", "get", "pods", "-o", "json"]),
          ).items as {
            status?: { conditions?: { type: string; status: string }[] };
          }[];
          return pods.length === 1 &&
            pods[0]!.status?.conditions?.some((c) =>
              c.type === "Ready" && c.status === "True"
            );
        }, 500);
        figures.applyToReadyS = (Date.now() - appliedAt) / 1000;
      },
    );

    await using forward = new LineProcess(kubectlBin, [
      "--kubeconfig",
      cluster.kubeconfigPath,
      "-n",
      "earthworm",
      "port-forward",
      "--address",
      "127.0.0.1",
      "daemonset/earthworm",
      "0:8080",
    ]);
    const port = await forward.waitFor(
      "kubectl port-forward to listen",
      30_000,
      (lines) =>
        lines.map((l) => /Forwarding from 127\.0\.0\.1:(\d+)/.exec(l.text)?.[1])
          .find((p) => p !== undefined),
    );
    const url = `http://127.0.0.1:${port}`;
    const hearts = async () =>
      await (await fetch(`${url}/api/v1/hearts`)).json() as HeartsResponse;
    const beats = async () =>
      (await (await fetch(`${url}/api/v1/hearts/${nodeHeart}/beats`))
        .json() as { beats: Beat[] }).beats;

    await t.step(
      "one agent leads and draws the real node's heart",
      async () => {
        const h = await until("the node heart", 60_000, async () => {
          const h = await hearts();
          return h.hearts.some((x) => x.id === nodeHeart) ? h : undefined;
        }, 500);
        figures.applyToFirstHeartS = (Date.now() - appliedAt) / 1000;
        assert.equal(h.source.connected, true);
      },
    );

    await t.step(
      "wire data is available and the node's beats carry their wire latency",
      async () => {
        const h = await until(
          "the probe state to reach the leader",
          60_000,
          async () => {
            const h = await hearts();
            return h.source.wire?.available === true ? h : undefined;
          },
          500,
        );
        assert.equal(h.source.wire?.reason, undefined);
        const paired = await until(
          "a beat paired with its exchange",
          90_000,
          async () =>
            (await beats()).find((b) => b.wireLatencyMs !== undefined),
          1000,
        );
        figures.applyToFirstPairedBeatS = (Date.now() - appliedAt) / 1000;
        assert.equal(
          paired.wireConfidence,
          "exact",
          `paired ${paired.wireConfidence}: ${
            (await hearts()).source.wire?.pairing
          }`,
        );
        assert.match(
          (await hearts()).source.wire?.pairing ?? "",
          /exactly on 1 of 1 nodes/,
        );
        const logs = await kubectl([
          "-n",
          "earthworm",
          "logs",
          "daemonset/earthworm",
        ]);
        assert.match(
          logs,
          /"adopted":[1-9]/,
          "the kubelet's connection adopted",
        );
        assert.match(
          logs,
          new RegExp(`"port":${new URL(cluster.server).port}`),
          "the API server port found from the kubelet",
        );
      },
    );

    await t.step("the agent's memory and CPU on the node", async () => {
      const pid = agentPid();
      assert.ok(pid, "the agent's process is visible to the host");
      const t0 = cpuTicks(pid);
      const start = Date.now();
      await new Promise((r) => setTimeout(r, 20_000));
      const ticks = cpuTicks(pid) - t0;
      figures.agentRssMiB = Math.round(rssMiB(pid) * 10) / 10;
      figures.agentCpuPercent =
        Math.round(ticks / 100 / ((Date.now() - start) / 1000) * 1000) / 10;
    });

    await t.step(
      "Chromium shows the real node's cardiogram through the port-forward",
      async () => {
        const browser = await launchChromium();
        try {
          const page = await browser.newPage({
            viewport: { width: 1280, height: 800 },
          });
          await page.goto(`${url}/#/heart/${nodeHeart}`);
          await page.waitForSelector("canvas", { timeout: 30_000 });
          await page.waitForFunction(
            (id: string) => document.body.innerText.includes(id.split("/")[1]!),
            nodeHeart,
            { timeout: 30_000 },
          );
          const shot = `${ROOT}dist/screenshots/real-node.png`;
          await Deno.mkdir(`${ROOT}dist/screenshots`, { recursive: true });
          await page.screenshot({ path: shot });
          figures.screenshot = "dist/screenshots/real-node.png";
          assert.ok((await Deno.stat(shot)).size > 10_000);
        } finally {
          await browser.close();
        }
      },
    );

    await t.step(
      "a kubelet restart is followed without restarting the agent",
      async () => {
        const pidBefore = agentPid();
        const restartedAt = Date.now();
        await node.restartKubelet();
        const after = await until(
          "an exactly paired beat after the restart",
          90_000,
          async () =>
            (await beats()).find((b) =>
              Date.parse(b.observedAt) > restartedAt &&
              b.wireConfidence === "exact"
            ),
          1000,
        );
        assert.ok(after.wireLatencyMs! > 0);
        assert.equal(agentPid(), pidBefore, "the same agent process");
      },
    );

    await t.step(
      "kubectl delete -f leaves no Earthworm BPF program and no object",
      async () => {
        await kubectl(["delete", "-f", MANIFEST, "--wait=true"]);
        await until(
          "the agent to be gone",
          60_000,
          () => agentPid() === undefined,
          500,
        );
        await until(
          "its BPF programs to be unloaded",
          30_000,
          async () => (await earthwormPrograms()).length === 0,
          500,
        );
        const left = await kubectl([
          "get",
          "namespace,clusterrole,clusterrolebinding",
          "-o",
          "name",
        ]);
        assert.doesNotMatch(left, /earthworm/);
      },
    );
  } finally {
    console.error(`real node: ${JSON.stringify(figures)}`);
    await cluster.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
