/**
 * The real node of the test cluster (tests/cluster/node.sh): a kubelet with
 * containerd, a CNI bridge and locally built images registers, renews its
 * Lease, runs pods that reach the API server through the `kubernetes`
 * Service, serves port-forwards, and leaves nothing behind when stopped.
 */
import assert from "node:assert/strict";
import { clusterBinDir, startCluster } from "./cluster/harness.ts";
import {
  nodeImagesDir,
  PAUSE_IMAGE,
  PROBE_IMAGE,
  type RealNode,
  realNodePrereq,
  startRealNode,
} from "./cluster/node.ts";
import { until } from "./wait.ts";
import { LineProcess } from "./line_process.ts";

const req = realNodePrereq();

/** The state letter of /proc/PID/stat ("T" when stopped), or undefined when gone. */
function processState(pid: number): string | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0];
  } catch {
    return undefined;
  }
}

/** What of the node is still on this machine: an empty list when nothing. */
async function remains(
  dir: string,
  node: RealNode,
  veths: string[],
  cgroupRoot: string,
): Promise<string[]> {
  const found: string[] = [];
  for (const line of Deno.readTextFileSync("/proc/mounts").split("\n")) {
    if (line.includes(`${dir}/`)) found.push(`mount: ${line}`);
  }
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name) || Number(entry.name) === Deno.pid) continue;
    let cmdline = "";
    try {
      cmdline = Deno.readTextFileSync(`/proc/${entry.name}/cmdline`);
    } catch {
      continue; // exited meanwhile
    }
    if (cmdline.includes(`${dir}/`)) {
      found.push(`process ${entry.name}: ${cmdline.replaceAll("\0", " ")}`);
    }
  }
  for (const link of [node.bridge, ...veths]) {
    try {
      Deno.statSync(`/sys/class/net/${link}`);
      found.push(`network interface: ${link}`);
    } catch {
      // gone, as it should be
    }
  }
  const run = async (cmd: string, args: string[]) =>
    new TextDecoder().decode(
      (await new Deno.Command(cmd, { args, stdin: "null" }).output()).stdout,
    );
  const routes = await run("ip", ["-4", "route", "show"]);
  if (routes.includes(node.podCidr)) found.push(`route: ${node.podCidr}`);
  for (const rule of (await run("iptables-save", [])).split("\n")) {
    if (rule.includes(dir)) found.push(`iptables: ${rule}`);
  }
  const hierarchies = [...Deno.readDirSync("/sys/fs/cgroup")]
    .filter((e) => e.isDirectory)
    .map((e) => `/sys/fs/cgroup/${e.name}`);
  for (const h of ["/sys/fs/cgroup", ...hierarchies]) {
    try {
      Deno.statSync(`${h}${cgroupRoot}`);
      found.push(`cgroup: ${h}${cgroupRoot}`);
    } catch {
      // gone
    }
  }
  return found;
}

Deno.test({
  name:
    "cluster: a real kubelet joins the test cluster, runs pods from local images and leaves nothing behind",
  ignore: req.ignore,
  async fn(t) {
    req.check();
    const cluster = await startCluster();
    const kubectlBin = `${clusterBinDir()}/kubectl`;
    const kubectl = cluster.kubectl;
    const json = async (args: string[]) =>
      JSON.parse(await kubectl([...args, "-o", "json"]));
    let node: RealNode | undefined;
    let veths: string[] = [];
    const port = new URL(cluster.server).port;
    try {
      node = await startRealNode(cluster);
      const n = node;
      const renewTime = async () =>
        (await kubectl([
          "-n",
          "kube-node-lease",
          "get",
          "lease",
          n.name,
          "-o",
          "jsonpath={.spec.renewTime}",
        ])).trim();
      const nodeReady = async () => {
        const conditions: { type: string; status: string }[] =
          (await json(["get", "node", n.name])).status?.conditions ?? [];
        return conditions.find((c) => c.type === "Ready")?.status === "True";
      };
      const podStatus = async (name: string) =>
        (await json(["get", "pod", name])).status ?? {};

      await t.step(
        "the kubelet registers its node and the node becomes Ready",
        async () => {
          const got = await json(["get", "node", n.name]);
          assert.equal(got.metadata.labels["earthworm.dev/real-node"], "true");
          assert.equal(got.status.nodeInfo.kubeletVersion, "v1.34.4");
          assert.match(
            got.status.nodeInfo.containerRuntimeVersion,
            /^containerd:\/\//,
          );
          assert.deepEqual(
            got.status.addresses.find((a: { type: string }) =>
              a.type === "InternalIP"
            )?.address,
            n.nodeIp,
          );
          assert.ok(await nodeReady(), "the node is Ready");
          assert.ok(n.readyMs < 60_000, `Ready after ${n.readyMs} ms`);
        },
      );

      await t.step(
        "the kubelet renews its Lease in kube-node-lease about every 10 s",
        async () => {
          await using watch = new LineProcess(kubectlBin, [
            "--kubeconfig",
            cluster.kubeconfigPath,
            "-n",
            "kube-node-lease",
            "get",
            "leases",
            `--field-selector=metadata.name=${n.name}`,
            "--watch",
            "-o",
            'jsonpath={.spec.holderIdentity} {.spec.leaseDurationSeconds} {.spec.renewTime}{"\\n"}',
          ]);
          // The current state, then two renewals: three distinct renewTimes.
          const seen = await watch.waitFor(
            "two Lease renewals",
            40_000,
            (lines) => {
              const distinct = new Map<string, number>();
              for (const { at, text } of lines) {
                const [holder, duration, renew] = text.split(" ");
                assert.equal(holder, n.name);
                assert.equal(duration, "40");
                if (renew && !distinct.has(renew)) distinct.set(renew, at);
              }
              return distinct.size >= 3 ? [...distinct] : undefined;
            },
          );
          for (let i = seen.length - 2; i < seen.length; i++) {
            const [renew, at] = seen[i] ?? ["", 0];
            const [prevRenew, prevAt] = seen[i - 1] ?? ["", 0];
            const renewGap = Date.parse(renew) - Date.parse(prevRenew);
            const observedGap = at - prevAt;
            assert.ok(
              renewGap >= 9_000 && renewGap <= 12_500,
              `renewTime advanced ${renewGap} ms`,
            );
            assert.ok(
              observedGap >= 8_000 && observedGap <= 13_500,
              `renewals observed ${observedGap} ms apart`,
            );
          }
        },
      );

      await t.step("the harness imports an OCI image archive", async () => {
        const images = await nodeImagesDir();
        assert.deepEqual(await n.importImage(`${images}/probe.tar`), [
          PROBE_IMAGE,
        ]);
      });

      await until("the default ServiceAccount", 30_000, async () => {
        try {
          await kubectl(["get", "serviceaccount", "default"]);
          return true;
        } catch {
          return false;
        }
      }, 200);
      const pod = (name: string, image: string, args: string[], extra = {}) =>
        JSON.stringify({
          apiVersion: "v1",
          kind: "Pod",
          metadata: { name },
          spec: {
            terminationGracePeriodSeconds: 1,
            containers: [{
              name: "main",
              image,
              imagePullPolicy: "IfNotPresent",
              args,
            }],
            ...extra,
          },
        });

      await t.step(
        "a pod from the locally built pause image runs on the node, in the pod network",
        async () => {
          await kubectl(["apply", "-f", "-"], pod("pause", PAUSE_IMAGE, []));
          const status = await until("pod pause to run", 60_000, async () => {
            const s = await podStatus("pause");
            return s.phase === "Running" ? s : undefined;
          }, 200);
          const spec = (await json(["get", "pod", "pause"])).spec;
          assert.equal(spec.nodeName, n.name);
          assert.equal(status.containerStatuses?.[0]?.image, PAUSE_IMAGE);
          const prefix = n.podCidr.replace(/\.0\/24$/, ".");
          assert.ok(
            String(status.podIP).startsWith(prefix),
            `pod IP ${status.podIP} in ${n.podCidr}`,
          );
          // Every sandbox runs the local pause image too.
          const ctr = await new Deno.Command("ctr", {
            args: [
              "--address",
              n.containerdAddress,
              "-n",
              "k8s.io",
              "containers",
              "ls",
            ],
            stdin: "null",
          }).output();
          const containers = new TextDecoder().decode(ctr.stdout);
          assert.equal(
            containers.split("\n").filter((l) => l.includes(PAUSE_IMAGE))
              .length,
            2,
            `one sandbox and one container of ${PAUSE_IMAGE}:\n${containers}`,
          );
        },
      );

      await t.step(
        "a pod reaches the API server at 10.96.0.1:443 as its ServiceAccount, trusting the ServiceAccount CA",
        async () => {
          await kubectl(
            ["apply", "-f", "-"],
            pod("whoami", PROBE_IMAGE, ["whoami"], { restartPolicy: "Never" }),
          );
          const phase = await until(
            "pod whoami to finish",
            60_000,
            async () => {
              const p = (await podStatus("whoami")).phase;
              return p === "Succeeded" || p === "Failed" ? p : undefined;
            },
            200,
          );
          const logs = await kubectl(["logs", "whoami"]);
          assert.equal(phase, "Succeeded", `probe whoami: ${logs}`);
          assert.deepEqual(JSON.parse(logs), {
            server: "10.96.0.1:443",
            remoteAddr: "10.96.0.1:443",
            gitVersion: "v1.34.4",
            username: "system:serviceaccount:default:default",
          });
        },
      );

      await t.step(
        "kubectl port-forward reaches a pod through the kubelet",
        async () => {
          await kubectl(
            ["apply", "-f", "-"],
            pod("serve", PROBE_IMAGE, ["serve", "8080"]),
          );
          await until("pod serve to run", 60_000, async () => {
            const s = await podStatus("serve");
            return s.containerStatuses?.[0]?.ready === true;
          }, 200);
          await using forward = new LineProcess(kubectlBin, [
            "--kubeconfig",
            cluster.kubeconfigPath,
            "port-forward",
            "--address",
            "127.0.0.1",
            "pod/serve",
            "0:8080",
          ]);
          const local = await forward.waitFor(
            "kubectl port-forward to listen",
            30_000,
            (lines) =>
              lines.map((l) =>
                /Forwarding from 127\.0\.0\.1:(\d+)/.exec(l.text)?.[1]
              ).find((p) => p !== undefined),
          );
          const res = await fetch(`http://127.0.0.1:${local}/`);
          assert.equal((await res.text()).trim(), "earthworm-probe serve");
        },
      );

      await t.step(
        "a kubelet frozen with SIGSTOP renews nothing until SIGCONT",
        async () => {
          const pid = n.kubeletPid();
          const pausedAt = Date.now();
          n.pauseKubelet();
          let last = "";
          try {
            await until(
              "the kubelet to stop",
              5_000,
              () => processState(pid) === "T",
            );
            // A renewal sent just before the freeze may still land; none
            // may carry a later renewTime (the kubelet stamps it on this
            // host's clock when it sends). Wait past one and a half renew
            // intervals since the last one.
            await until(
              "15 s since the last renewal",
              30_000,
              async () => {
                last = await renewTime();
                assert.ok(
                  Date.parse(last) <= pausedAt,
                  `renewed at ${last}, frozen since ${
                    new Date(pausedAt).toISOString()
                  }`,
                );
                return Date.now() - Date.parse(last) > 15_000;
              },
              500,
            );
          } finally {
            n.resumeKubelet();
          }
          await until(
            "a renewal after SIGCONT",
            15_000,
            async () => (await renewTime()) !== last,
            200,
          );
          assert.notEqual(processState(pid), "T");
        },
      );

      await t.step(
        "a restarted kubelet is a new process that renews the Lease and keeps the node Ready",
        async () => {
          const before = n.kubeletPid();
          const renewed = await renewTime();
          const after = await n.restartKubelet();
          assert.notEqual(after, before);
          assert.ok(["Z", undefined].includes(processState(before)));
          await until(
            "a renewal by the new kubelet",
            20_000,
            async () => (await renewTime()) !== renewed,
            200,
          );
          assert.ok(await nodeReady(), "the node stays Ready");
        },
      );

      veths = [...Deno.readDirSync(`/sys/class/net/${n.bridge}/brif`)].map((
        e,
      ) => e.name);
    } finally {
      await cluster.stop();
    }

    await t.step(
      "after the harness stops nothing is left mounted, routed, in iptables or running",
      async () => {
        assert.ok(node, "the node started");
        assert.ok(veths.length >= 2, `pods were attached: ${veths}`);
        assert.deepEqual(
          await remains(cluster.dir, node, veths, `/earthworm-${port}`),
          [],
        );
      },
    );
  },
});
