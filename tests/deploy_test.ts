/**
 * The install: `deploy/earthworm.yaml` read as data (least privilege, the
 * DaemonSet's security context, probes, limits) and then applied to a real
 * kube-apiserver, where an agent started from the release bundle with the
 * ServiceAccount's own token watches every Lease, wins the election and
 * authenticates a follower's wire reports; `kubectl auth can-i` and a rules
 * review show the ServiceAccount can do that and nothing more.
 */
import assert from "node:assert/strict";
import {
  ALLOWED_GRANTS,
  DEFAULT_AUTHENTICATED_RESOURCES,
  DOCKERFILE_PATH,
  grants,
  type K8sObject,
  loadManifest,
  MANIFEST_PATH,
  manifestGrants,
  only,
  type PolicyRule,
  SERVICE_ACCOUNT,
} from "./deploy/manifest.ts";
import { VERSION } from "../cli/version.ts";
import {
  type Cluster,
  clusterBinDir,
  clusterPrereq,
  startCluster,
} from "./cluster/harness.ts";
import { type EarthwormProcess, startEarthworm } from "./earthworm_process.ts";
import { eventually } from "./wait.ts";
import type { HeartsResponse } from "../core/api_types.ts";
import { LEADER_ADDRESS_ANNOTATION } from "../kube/lease_lock.ts";
import { inClusterMissing, startInClusterAgent } from "./deploy/in_cluster.ts";

const ROOT = new URL("..", import.meta.url).pathname;

/** The capabilities the eBPF side needs (see the comments in the manifest). */
const CAPABILITIES = [
  "BPF",
  "NET_ADMIN",
  "PERFMON",
  "SYS_PTRACE",
];

function agentContainer(docs: K8sObject[]): K8sObject {
  const ds = only(docs, "DaemonSet", "earthworm");
  const containers = ds.spec.template.spec.containers as K8sObject[];
  assert.equal(containers.length, 1, "one container, the agent");
  return containers[0]!;
}

Deno.test("the manifest grants exactly the allow-listed RBAC, to Earthworm's ServiceAccount only", () => {
  const docs = loadManifest();
  assert.deepEqual(
    docs.map((d) => d.kind).sort(),
    [
      "ClusterRole",
      "ClusterRole",
      "ClusterRoleBinding",
      "ClusterRoleBinding",
      "DaemonSet",
      "Namespace",
      "Role",
      "Role",
      "RoleBinding",
      "RoleBinding",
      "Service",
      "ServiceAccount",
    ],
  );
  assert.deepEqual(manifestGrants(docs), ALLOWED_GRANTS);
  for (const d of docs) {
    const namespaced = !["Namespace", "ClusterRole", "ClusterRoleBinding"]
      .includes(d.kind);
    assert.equal(
      d.metadata.namespace,
      namespaced ? "earthworm" : undefined,
      `${d.kind} ${d.metadata.name}`,
    );
    if (d.kind === "ClusterRole" || d.kind === "Role") {
      for (const r of d.rules as PolicyRule[]) {
        for (const field of [r.apiGroups, r.resources, r.verbs]) {
          assert.ok(!field?.includes("*"), `${d.metadata.name}: no wildcards`);
        }
        assert.equal(r.nonResourceURLs, undefined);
      }
      assert.equal(d.aggregationRule, undefined, "no aggregated roles");
    }
    if (d.kind === "ClusterRoleBinding" || d.kind === "RoleBinding") {
      assert.deepEqual(d.subjects, [{
        kind: "ServiceAccount",
        name: "earthworm",
        namespace: "earthworm",
      }]);
      const roleKind = d.roleRef.kind;
      assert.equal(roleKind, d.kind === "RoleBinding" ? "Role" : "ClusterRole");
      only(docs, roleKind, d.roleRef.name); // bound only to roles defined here
    }
  }
  // The rule flattening itself: a name-limited rule is not a wildcard.
  assert.deepEqual(
    grants("ns:x", [{
      apiGroups: [""],
      resources: ["pods"],
      resourceNames: ["a"],
      verbs: ["get"],
    }]),
    ["ns:x core/pods/a get"],
  );
});

Deno.test("a widened rule, anywhere in the manifest, fails the allow-list comparison", () => {
  const text = Deno.readTextFileSync(MANIFEST_PATH);
  const widenings = [
    text.replace(
      'verbs: ["get", "list", "watch", "update", "patch"]',
      'verbs: ["get", "list", "watch", "update", "patch", "delete"]',
    ),
    text.replace('    resourceNames: ["earthworm-leader"]\n', ""),
    text.replace(
      'resources: ["tokenreviews"]',
      'resources: ["tokenreviews", "subjectaccessreviews"]',
    ),
    text.replace(
      'resources: ["pods"]\n    verbs: ["get"]',
      'resources: ["pods"]\n    verbs: ["get", "list"]',
    ),
    `${text}---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: extra\nrules:\n  - apiGroups: [""]\n    resources: ["secrets"]\n    verbs: ["get"]\n`,
  ];
  for (const widened of widenings) {
    assert.notEqual(widened, text, "the widening applies to the manifest");
    assert.notDeepEqual(manifestGrants(loadManifest(widened)), ALLOWED_GRANTS);
  }
});

Deno.test("the DaemonSet adds only the eBPF capabilities, never privileged, read-only everywhere it can be", () => {
  const docs = loadManifest();
  const ds = only(docs, "DaemonSet", "earthworm");
  const pod = ds.spec.template.spec;
  const c = agentContainer(docs);
  const sc = c.securityContext;

  assert.equal(sc.privileged, false);
  assert.equal(sc.allowPrivilegeEscalation, false);
  assert.equal(sc.readOnlyRootFilesystem, true);
  assert.equal(
    sc.runAsUser,
    0,
    "bpf(2) needs the capabilities in the effective set",
  );
  assert.deepEqual(sc.capabilities.drop, ["ALL"]);
  assert.deepEqual([...sc.capabilities.add].sort(), CAPABILITIES);
  assert.equal(pod.securityContext?.seccompProfile?.type, "RuntimeDefault");
  assert.equal(pod.hostPID, true, "the /proc scan needs the host's processes");
  assert.notEqual(pod.hostNetwork, true);
  assert.notEqual(pod.hostIPC, true);
  assert.equal(pod.serviceAccountName, "earthworm");
  assert.equal(pod.initContainers, undefined);

  // Every node: one toleration matching every taint.
  assert.deepEqual(pod.tolerations, [{ operator: "Exists" }]);

  // No host mounts at all: the cgroup v2 hierarchy is reached through the
  // kubelet's /proc/<pid>/root (a hostPath of /sys/fs/cgroup would leave its
  // submounts writable on a hybrid host).
  const volumes = new Map<string, K8sObject>(
    (pod.volumes as K8sObject[]).map((v) => [v.name, v]),
  );
  const hostPaths = [...volumes.values()].filter((v) => v.hostPath);
  assert.deepEqual(hostPaths, []);
  for (const m of c.volumeMounts as K8sObject[]) {
    const v = volumes.get(m.name);
    assert.ok(v, `mount ${m.name} has a volume`);
    if (v.hostPath || v.projected) {
      assert.equal(m.readOnly, true, `${m.mountPath} is read-only`);
    }
  }
  const tokenMount = (c.volumeMounts as K8sObject[]).find((m) =>
    m.mountPath === "/var/run/secrets/earthworm"
  );
  assert.ok(
    tokenMount,
    "the wire token is mounted at /var/run/secrets/earthworm",
  );
  const token = volumes.get(tokenMount.name)!.projected.sources[0]
    .serviceAccountToken;
  assert.equal(token.audience, "earthworm");
  assert.equal(token.path, "token");

  // Downward API.
  const env = Object.fromEntries(
    (c.env as K8sObject[]).map((
      e,
    ) => [e.name, e.valueFrom?.fieldRef?.fieldPath]),
  );
  assert.deepEqual(env, {
    NODE_NAME: "spec.nodeName",
    POD_NAME: "metadata.name",
    POD_NAMESPACE: "metadata.namespace",
    POD_IP: "status.podIP",
  });

  // Command, image, probes, resources, shutdown.
  assert.deepEqual(c.args, ["agent", "--port", "8080"]);
  assert.equal(c.image, `ghcr.io/earthworm-dev/earthworm:${VERSION}`);
  assert.equal(c.ports[0].containerPort, 8080);
  assert.equal(c.livenessProbe.httpGet.path, "/healthz");
  assert.equal(c.readinessProbe.httpGet.path, "/readyz");
  const mib = (q: string) => {
    const m = /^(\d+)(Mi|Gi)$/.exec(q);
    assert.ok(m, `memory quantity "${q}" in Mi or Gi`);
    return Number(m[1]) * (m[2] === "Gi" ? 1024 : 1);
  };
  const { requests, limits } = c.resources;
  assert.ok(limits.memory && limits.cpu && requests.memory && requests.cpu);
  assert.ok(mib(requests.memory) <= mib(limits.memory));
  assert.ok(
    pod.terminationGracePeriodSeconds >= 15,
    "room to release the Lease within the 10 s renew deadline",
  );

  const svc = only(docs, "Service", "earthworm");
  assert.equal(svc.spec.type, "ClusterIP");
  assert.equal(svc.spec.ports[0].port, 8080);
  assert.deepEqual(svc.spec.selector, ds.spec.selector.matchLabels);
  for (const [k, v] of Object.entries(ds.spec.selector.matchLabels)) {
    assert.equal(ds.spec.template.metadata.labels[k], v, `pod label ${k}`);
  }
  assert.equal(
    only(docs, "Namespace", "earthworm").metadata.labels[
      "pod-security.kubernetes.io/enforce"
    ],
    "privileged",
  );
});

Deno.test("the README installs this manifest and the Dockerfile builds the image it names", () => {
  const readme = Deno.readTextFileSync(`${ROOT}README.md`);
  assert.match(readme, /kubectl apply -f deploy\/earthworm\.yaml/);
  assert.match(readme, /kubectl delete -f deploy\/earthworm\.yaml/);
  assert.ok(MANIFEST_PATH.endsWith("deploy/earthworm.yaml"));
  const docker = Deno.readTextFileSync(DOCKERFILE_PATH);
  const deno = JSON.parse(Deno.readTextFileSync(`${ROOT}deno.json`));
  assert.equal(deno.version, VERSION);
  // Docker only copies the root filesystem that deploy/build_image.sh, the
  // image build without Docker, assembles (tests/image_test.ts builds that).
  assert.match(docker, /^FROM debian:12 AS build$/m);
  assert.match(docker, /^RUN bash deploy\/build_image\.sh --rootfs \/rootfs$/m);
  assert.match(docker, /^FROM scratch$/m);
  assert.match(docker, /^COPY --from=build \/rootfs\/ \/$/m);
  assert.match(docker, /^ENTRYPOINT \["\/earthworm"\]$/m);
  assert.match(docker, /^CMD \["agent"\]$/m);
});

// ---------------------------------------------------------------------------
// On a real control plane

const req = clusterPrereq();

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function kubectlRun(
  cluster: Cluster,
  args: string[],
  opts: { stdin?: string; kubeconfig?: string } = {},
): Promise<Run> {
  const child = new Deno.Command(`${clusterBinDir()}/kubectl`, {
    args: ["--kubeconfig", opts.kubeconfig ?? cluster.kubeconfigPath, ...args],
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
}

/** Average CPU use of a process since it started, in millicores. */
function cpuMillicores(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  // Fields after the parenthesised command name; utime is field 14.
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(f[11]) + Number(f[12]);
  const startTicks = Number(f[19]);
  const uptime = Number(Deno.readTextFileSync("/proc/uptime").split(" ")[0]);
  const hz = 100; // USER_HZ on Linux
  return (ticks / hz) / (uptime - startTicks / hz) * 1000;
}

function rssKiB(pid: number): { rss: number; hwm: number } {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kib = (field: string) =>
    Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN);
  return { rss: kib("VmRSS"), hwm: kib("VmHWM") };
}

async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url);
  if (!res.ok) {
    throw new Error(`GET ${url}: HTTP ${res.status}: ${await res.text()}`);
  }
  return await res.json() as T;
}

/** A kubeconfig that authenticates with `token` and trusts the cluster's CA. */
function tokenKubeconfig(cluster: Cluster, token: string): string {
  const ca = btoa(Deno.readTextFileSync(`${cluster.dir}/certs/ca.crt`));
  return JSON.stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{
      name: "test",
      cluster: { server: cluster.server, "certificate-authority-data": ca },
    }],
    users: [{ name: "earthworm", user: { token } }],
    contexts: [{
      name: "test",
      context: { cluster: "test", user: "earthworm", namespace: "earthworm" },
    }],
    "current-context": "test",
  });
}

/** `kubectl auth can-i` questions and the only acceptable answers. */
const CAN_I: [
  verb: string,
  resource: string,
  namespace: string | null,
  expected: "yes" | "no",
][] = [
  // What the agent needs.
  ["list", "leases", "*", "yes"],
  ["watch", "leases", "kube-node-lease", "yes"],
  ["get", "leases", "kube-system", "yes"],
  ["create", "leases", "earthworm", "yes"],
  ["get", "leases/earthworm-leader", "earthworm", "yes"],
  ["update", "leases/earthworm-leader", "earthworm", "yes"],
  ["watch", "leases/earthworm-leader", "earthworm", "yes"],
  ["create", "tokenreviews.authentication.k8s.io", null, "yes"],
  ["get", "pods", "earthworm", "yes"],
  // Other Leases: never written.
  ["update", "leases/kwok-node-0", "kube-node-lease", "no"],
  ["update", "leases/kube-controller-manager", "kube-system", "no"],
  ["patch", "leases/other", "earthworm", "no"],
  ["update", "leases/other", "earthworm", "no"],
  ["delete", "leases/earthworm-leader", "earthworm", "no"],
  ["delete", "leases", "kube-node-lease", "no"],
  ["deletecollection", "leases", "earthworm", "no"],
  ["create", "leases", "kube-system", "no"],
  ["create", "leases", "default", "no"],
  // Secrets, other namespaces, workloads, RBAC, the node proxy.
  ["get", "secrets", "earthworm", "no"],
  ["list", "secrets", "*", "no"],
  ["get", "configmaps", "kube-system", "no"],
  ["list", "pods", "*", "no"],
  ["list", "pods", "earthworm", "no"],
  ["watch", "pods", "earthworm", "no"],
  ["get", "pods", "kube-system", "no"],
  ["update", "pods", "earthworm", "no"],
  ["create", "pods/exec", "earthworm", "no"],
  ["patch", "daemonsets.apps", "earthworm", "no"],
  ["delete", "daemonsets.apps/earthworm", "earthworm", "no"],
  ["create", "serviceaccounts/token", "earthworm", "no"],
  ["update", "nodes", null, "no"],
  ["get", "nodes/proxy", null, "no"],
  ["create", "namespaces", null, "no"],
  ["update", "roles.rbac.authorization.k8s.io", "earthworm", "no"],
  ["bind", "clusterroles.rbac.authorization.k8s.io", null, "no"],
  ["escalate", "roles.rbac.authorization.k8s.io", "earthworm", "no"],
  ["impersonate", "serviceaccounts", "kube-system", "no"],
  ["create", "subjectaccessreviews.authorization.k8s.io", null, "no"],
  ["create", "certificatesigningrequests.certificates.k8s.io", null, "no"],
];

Deno.test({
  name:
    "cluster: deploy/earthworm.yaml applies, and an agent from the bundle with its ServiceAccount token leads with least privilege",
  ignore: req.ignore,
  async fn(t) {
    req.check();
    const cluster = await startCluster();
    const work = await Deno.makeTempDir({ prefix: "earthworm-deploy-" });
    const agents: EarthwormProcess[] = [];
    try {
      const kubectl = (
        args: string[],
        opts?: { stdin?: string; kubeconfig?: string },
      ) => kubectlRun(cluster, args, opts);
      const docs = loadManifest();

      await t.step("the manifest passes server-side validation", async () => {
        // Namespaced objects validate only once their namespace exists,
        // which a user's single apply creates first.
        const ns = only(docs, "Namespace", "earthworm");
        const created = await kubectl(["apply", "-f", "-"], {
          stdin: JSON.stringify(ns),
        });
        assert.equal(created.code, 0, created.stderr);
        const dry = await kubectl([
          "apply",
          "--dry-run=server",
          "--validate=strict",
          "-f",
          MANIFEST_PATH,
        ]);
        assert.equal(dry.code, 0, dry.stderr);
        const lines = dry.stdout.trim().split("\n");
        assert.equal(lines.length, docs.length, dry.stdout);
        for (const l of lines) assert.match(l, /\(server dry run\)$/);
        const none = await kubectl([
          "get",
          "daemonsets",
          "-n",
          "earthworm",
          "-o",
          "name",
        ]);
        assert.equal(none.stdout.trim(), "", "a dry run creates nothing");
      });

      await t.step("the manifest applies for real", async () => {
        const applied = await kubectl(["apply", "-f", MANIFEST_PATH]);
        assert.equal(applied.code, 0, applied.stderr);
        for (const d of docs) {
          const args = ["get", d.kind, d.metadata.name, "-o", "name"];
          if (d.metadata.namespace) args.push("-n", d.metadata.namespace);
          const got = await kubectl(args);
          assert.equal(
            got.code,
            0,
            `${d.kind} ${d.metadata.name}: ${got.stderr}`,
          );
        }
      });

      await t.step(
        "the README's patches for 5.8-5.10 and 5.4-5.7 kernels and for exact pairing pass server-side validation",
        async () => {
          const readme = await Deno.readTextFile(`${ROOT}README.md`);
          const patches = [
            ...readme.matchAll(
              /kubectl -n earthworm patch daemonset earthworm --type json -p '([^']+)'/g,
            ),
          ].map((m) => m[1]!);
          const expected = [
            ["SYS_RESOURCE"],
            ["SYS_RESOURCE", "SYS_ADMIN"],
            ["SYS_ADMIN"],
          ];
          assert.equal(
            patches.length,
            expected.length,
            "README shows the patches for old kernels and exact pairing",
          );
          for (const [i, patch] of patches.entries()) {
            const out = await kubectl([
              "-n",
              "earthworm",
              "patch",
              "daemonset",
              "earthworm",
              "--dry-run=server",
              "--type",
              "json",
              "-p",
              patch,
              "-o",
              "json",
            ]);
            assert.equal(out.code, 0, out.stderr);
            const patched = JSON.parse(out.stdout).spec.template.spec
              .containers[0].securityContext.capabilities.add;
            assert.deepEqual(
              [...patched].sort(),
              [...CAPABILITIES, ...expected[i]!].sort(),
            );
          }
        },
      );

      const nodes = await cluster.createNodes(200);
      await t.step(
        "the DaemonSet wants a pod on every node, control-plane and tainted ones too",
        async () => {
          const extra = ["control-plane", "drained"].map((name) => ({
            apiVersion: "v1",
            kind: "Node",
            metadata: {
              name,
              labels: name === "control-plane"
                ? { "node-role.kubernetes.io/control-plane": "" }
                : {},
            },
            spec: {
              taints: name === "control-plane"
                ? [{
                  key: "node-role.kubernetes.io/control-plane",
                  effect: "NoSchedule",
                }]
                : [{
                  key: "example.com/maintenance",
                  value: "true",
                  effect: "NoExecute",
                }],
            },
          }));
          const made = await kubectl(["create", "-f", "-"], {
            stdin: JSON.stringify({
              apiVersion: "v1",
              kind: "List",
              items: extra,
            }),
          });
          assert.equal(made.code, 0, made.stderr);
          // Kubelets label their node with its OS; these simulated ones do not.
          const labelled = await kubectl([
            "label",
            "nodes",
            "--all",
            "kubernetes.io/os=linux",
          ]);
          assert.equal(labelled.code, 0, labelled.stderr);
          const total = nodes.length + extra.length;
          const status = await eventually(
            "the DaemonSet to want every node",
            60_000,
            async () => {
              const out = await kubectl([
                "get",
                "daemonset",
                "earthworm",
                "-n",
                "earthworm",
                "-o",
                "json",
              ]);
              const s = JSON.parse(out.stdout).status ?? {};
              return s.desiredNumberScheduled === total &&
                  s.currentNumberScheduled > 0
                ? s
                : undefined;
            },
          );
          assert.equal(status.desiredNumberScheduled, total);
          // Pods passed admission (Pod Security included) with the spec as written.
          const pods = JSON.parse(
            (await kubectl(["get", "pods", "-n", "earthworm", "-o", "json"]))
              .stdout,
          ).items as K8sObject[];
          assert.ok(pods.length > 0);
          const sc = pods[0]!.spec.containers[0].securityContext;
          assert.deepEqual([...sc.capabilities.add].sort(), CAPABILITIES);
          assert.equal(pods[0]!.spec.serviceAccountName, "earthworm");
          // kubectl resolves daemonset/earthworm to a pod; nothing runs pods
          // here (no scheduler, no kubelet), so forwarding stops at that pod.
          const pf = await kubectl([
            "port-forward",
            "-n",
            "earthworm",
            "daemonset/earthworm",
            "0:8080",
            "--pod-running-timeout=2s",
          ]);
          assert.notEqual(pf.code, 0);
          assert.match(
            pf.stderr,
            /pod is not running|timed out waiting for the condition/,
          );
          assert.doesNotMatch(pf.stderr, /not implemented|cannot attach/);
        },
      );

      // The release artefact, alone in an empty directory.
      const built = await new Deno.Command(Deno.execPath(), {
        args: [
          "bundle",
          "--platform",
          "deno",
          "--minify",
          "-o",
          `${work}/earthworm.js`,
          "main.ts",
        ],
        cwd: ROOT,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(built.code, 0, new TextDecoder().decode(built.stderr));
      const runDirs = ["a", "b"].map((n) => `${work}/run-${n}`);
      for (const dir of runDirs) {
        await Deno.mkdir(dir);
        await Deno.copyFile(`${work}/earthworm.js`, `${dir}/earthworm.js`);
      }
      const apiToken =
        (await kubectl(["create", "token", "earthworm", "-n", "earthworm"]))
          .stdout.trim();
      // The follower's wire token is its pod's projected token: bound to
      // the DaemonSet's pod for nodes[1], scheduled there as the scheduler
      // would, so the TokenReview names that node.
      const followerPod = await eventually(
        `the DaemonSet's pod for ${nodes[1]}`,
        60_000,
        async () =>
          (JSON.parse(
            (await kubectl(["get", "pods", "-n", "earthworm", "-o", "json"]))
              .stdout,
          ).items as K8sObject[]).find((p) =>
            JSON.stringify(p.spec.affinity ?? {}).includes(`"${nodes[1]}"`)
          ),
      );
      const bound = await kubectl(["create", "-f", "-"], {
        stdin: JSON.stringify({
          apiVersion: "v1",
          kind: "Binding",
          metadata: { name: followerPod.metadata.name, namespace: "earthworm" },
          target: { apiVersion: "v1", kind: "Node", name: nodes[1] },
        }),
      });
      assert.equal(bound.code, 0, bound.stderr);
      const wireToken = (await kubectl([
        "create",
        "token",
        "earthworm",
        "-n",
        "earthworm",
        "--audience",
        "earthworm",
        "--bound-object-kind",
        "Pod",
        "--bound-object-name",
        followerPod.metadata.name,
      ])).stdout.trim();
      assert.ok(apiToken && wireToken, "TokenRequest gave tokens");
      const saKubeconfig = `${work}/earthworm.kubeconfig`;
      await Deno.writeTextFile(
        saKubeconfig,
        tokenKubeconfig(cluster, apiToken),
      );
      const wireTokenFile = `${work}/wire-token`;
      await Deno.writeTextFile(wireTokenFile, wireToken);

      const agentArgs = [
        "--port",
        "0",
        "--host",
        "127.0.0.1",
        "--token-file",
        wireTokenFile,
        "--no-ebpf", // the probe's own tests load it; here: RBAC and the bundle
      ];
      const startAgent = (name: string, node: string, dir: string) =>
        startEarthworm(["agent", ...agentArgs, "--kubeconfig", saKubeconfig], {
          entry: `${dir}/earthworm.js`,
          cwd: dir,
          env: { POD_NAME: name, NODE_NAME: node, POD_NAMESPACE: "earthworm" },
        });

      await t.step(
        "the bundle's agent, with the ServiceAccount's token, watches every Lease and wins the election",
        async () => {
          const leader = await startAgent(
            "earthworm-a",
            nodes[0]!,
            runDirs[0]!,
          );
          agents.push(leader);
          const hearts = await eventually(
            "the leader to see every node's Lease",
            60_000,
            async () => {
              const h = await getJson<HeartsResponse>(
                `${leader.url}/api/v1/hearts`,
              );
              return h.hearts.filter((x) => x.kind === "node").length >=
                  nodes.length
                ? h
                : undefined;
            },
          );
          assert.ok(hearts.source.connected);
          const ids = new Set(hearts.hearts.map((h) => h.id));
          for (const n of nodes) assert.ok(ids.has(`kube-node-lease/${n}`), n);
          assert.ok(ids.has("earthworm/earthworm-leader"));
          const lease = JSON.parse(
            (await kubectl([
              "get",
              "lease",
              "earthworm-leader",
              "-n",
              "earthworm",
              "-o",
              "json",
            ])).stdout,
          );
          assert.equal(lease.spec.holderIdentity, "earthworm-a");
          assert.equal(
            lease.metadata.annotations[LEADER_ADDRESS_ANNOTATION],
            leader.url,
          );
          assert.equal((await fetch(`${leader.url}/readyz`)).status, 200);
          await (await fetch(`${leader.url}/readyz`)).body?.cancel();
        },
      );

      // The follower runs as its pod would (in-cluster configuration) where
      // a private mount namespace is available, else from a kubeconfig too.
      const inCluster = inClusterMissing();
      const followerMode = inCluster === null
        ? "in-cluster mode"
        : `kubeconfig mode (in-cluster mode ${inCluster})`;
      const memory = new Map<string, number[]>();
      const sample = (label: string, p: EarthwormProcess) => {
        const list = memory.get(label) ?? [];
        list.push(rssKiB(p.child.pid).rss);
        memory.set(label, list);
      };
      const report = (label: string, p: EarthwormProcess) => {
        const xs = [...(memory.get(label) ?? [])].sort((a, b) => a - b);
        const mib = (k: number) => `${(k / 1024).toFixed(0)} MiB`;
        console.error(
          `memory, ${label}, ${nodes.length + 2} nodes: VmRSS median ${
            mib(xs[Math.floor(xs.length / 2)]!)
          } over ${xs.length} samples, peak VmHWM ${
            mib(rssKiB(p.child.pid).hwm)
          }, CPU ${cpuMillicores(p.child.pid).toFixed(0)}m on average`,
        );
      };

      await t.step(
        "a follower hands the API to the leader, whose TokenReview accepts its wire report",
        async () => {
          const leader = agents[0]!;
          const env = {
            POD_NAME: "earthworm-b",
            NODE_NAME: nodes[1]!,
            POD_NAMESPACE: "earthworm",
          };
          const follower = inCluster === null
            ? await startInClusterAgent({
              bundle: `${runDirs[1]}/earthworm.js`,
              cwd: runDirs[1]!,
              server: cluster.server,
              ca: Deno.readTextFileSync(`${cluster.dir}/certs/ca.crt`),
              token: apiToken,
              args: agentArgs,
              env,
            })
            : await startAgent(env.POD_NAME, env.NODE_NAME, runDirs[1]!);
          agents.push(follower);
          const viaFollower = await eventually(
            "the follower to answer for the leader",
            30_000,
            async () => {
              sample("leader (kubeconfig mode)", leader);
              sample(`follower (${followerMode})`, follower);
              const h = await getJson<HeartsResponse>(
                `${follower.url}/api/v1/hearts`,
              );
              return h.hearts.length > nodes.length ? h : undefined;
            },
          );
          assert.ok(viaFollower.hearts.length > nodes.length);
          // Reports are re-sent every 30 s; the first one the follower can
          // address reaches the leader within that.
          const wire = await eventually(
            "the follower's wire report to pass TokenReview",
            45_000,
            async () => {
              sample("leader (kubeconfig mode)", leader);
              sample(`follower (${followerMode})`, follower);
              const h = await getJson<HeartsResponse>(
                `${leader.url}/api/v1/hearts`,
              );
              return h.source.wire?.reason?.includes(
                  "2 of 2 agents run lease-only",
                )
                ? h.source.wire
                : undefined;
            },
          );
          assert.equal(wire.available, false);
          assert.match(wire.reason ?? "", /eBPF disabled by --no-ebpf/);
          const metrics = await (await fetch(`${leader.url}/metrics`)).text();
          assert.match(
            metrics,
            /earthworm_wire_available\{reason="2 of 2 agents run lease-only[^"]*"\} 0/,
          );
          // As the REST client writes a refusal ("HTTP 403: …"), or the API
          // server's "forbidden": a bare 403 also matches ports and times.
          assert.doesNotMatch(
            leader.stderr(),
            /HTTP 403\b|Forbidden|forbidden/,
          );
          report("leader (kubeconfig mode)", leader);
          report(`follower (${followerMode})`, follower);
        },
      );

      await t.step(
        "on SIGTERM the leader releases the Lease within the grace period and the follower takes over",
        async () => {
          const [leader, follower] = agents as [
            EarthwormProcess,
            EarthwormProcess,
          ];
          const grace = only(docs, "DaemonSet", "earthworm").spec.template.spec
            .terminationGracePeriodSeconds;
          const stopTimed = async (p: EarthwormProcess) => {
            const started = performance.now();
            assert.equal(await p.stop(), 0);
            const ms = performance.now() - started;
            assert.ok(ms < grace * 1000, `exited in ${ms.toFixed(0)} ms`);
            assert.match(p.stderr(), /released the lease/);
            return ms;
          };
          const leaseNow = async () =>
            JSON.parse(
              (await kubectl([
                "get",
                "lease",
                "earthworm-leader",
                "-n",
                "earthworm",
                "-o",
                "json",
              ])).stdout,
            );
          const exitMs = await stopTimed(leader);
          const takeover = await eventually(
            "the follower to take over",
            20_000,
            async () => {
              const lease = await leaseNow();
              return lease.spec.holderIdentity === "earthworm-b"
                ? lease
                : undefined;
            },
          );
          assert.equal(
            takeover.metadata.annotations[LEADER_ADDRESS_ANNOTATION],
            follower.url,
          );
          // The new leader lists and watches every Lease itself.
          const label = `leader (${followerMode})`;
          await eventually(
            "the new leader to see every node",
            60_000,
            async () => {
              sample(label, follower);
              const h = await getJson<HeartsResponse>(
                `${follower.url}/api/v1/hearts`,
              );
              return h.hearts.filter((x) => x.kind === "node").length >=
                  nodes.length
                ? h
                : undefined;
            },
          );
          for (let i = 0; i < 40; i++) {
            sample(label, follower);
            await new Promise((r) => setTimeout(r, 250));
          }
          report(label, follower);
          const lastMs = await stopTimed(follower);
          assert.equal((await leaseNow()).spec.holderIdentity ?? "", "");
          console.error(
            `leaders exited ${exitMs.toFixed(0)} ms and ${
              lastMs.toFixed(0)
            } ms after SIGTERM, releasing the Lease`,
          );
        },
      );

      await t.step(
        "kubectl auth can-i: what the ServiceAccount may and may not do",
        async () => {
          const rows: string[] = [];
          const wrong: string[] = [];
          for (const [verb, resource, ns, expected] of CAN_I) {
            const args = [
              "auth",
              "can-i",
              verb,
              resource,
              "--as",
              SERVICE_ACCOUNT,
            ];
            if (ns === "*") args.push("--all-namespaces");
            else if (ns !== null) args.push("-n", ns);
            const out = await kubectl(args);
            const answer = out.stdout.trim();
            assert.ok(
              answer === "yes" || answer === "no",
              `kubectl ${args.join(" ")}: ${out.stderr}`,
            );
            rows.push(
              `${verb.padEnd(18)} ${resource.padEnd(48)} ${
                (ns ?? "(cluster)").padEnd(16)
              } ${answer}`,
            );
            if (answer !== expected) {
              wrong.push(
                `${verb} ${resource} in ${
                  ns ?? "(cluster)"
                }: ${answer}, expected ${expected}`,
              );
            }
          }
          console.error(`can-i as ${SERVICE_ACCOUNT}:\n${rows.join("\n")}`);
          assert.deepEqual(wrong, [], "RBAC differs from what Earthworm needs");
        },
      );

      await t.step(
        "the ServiceAccount's effective rules, by its own token, are the allow-list and the defaults",
        async () => {
          // A rules review with the real token counts every binding in the
          // cluster, so a grant added anywhere else fails here as well.
          const saConfig = `${work}/earthworm.kubeconfig`;
          for (
            const ns of [
              "earthworm",
              "kube-node-lease",
              "kube-system",
              "default",
            ]
          ) {
            const allowed = new Set(
              ALLOWED_GRANTS.filter((g) =>
                g.startsWith("cluster ") || g.startsWith(`ns:${ns} `)
              ).map((g) => g.replace(/^\S+ /, "")),
            );
            for (const r of DEFAULT_AUTHENTICATED_RESOURCES) {
              allowed.add(`${r}/* create`);
            }
            const out = await kubectl([
              "create",
              "--validate=false",
              "-o",
              "json",
              "-f",
              "-",
            ], {
              kubeconfig: saConfig,
              stdin: JSON.stringify({
                apiVersion: "authorization.k8s.io/v1",
                kind: "SelfSubjectRulesReview",
                spec: { namespace: ns },
              }),
            });
            assert.equal(out.code, 0, out.stderr);
            const status = JSON.parse(out.stdout).status;
            assert.equal(status.incomplete, false);
            const effective = grants("x", status.resourceRules).map((g) =>
              g.replace(/^x /, "")
            );
            const extra = effective.filter((g) => !allowed.has(g));
            assert.deepEqual(
              extra,
              [],
              `grants beyond the allow-list in ${ns}`,
            );
            const writesElection = effective.includes(
              "coordination.k8s.io/leases/earthworm-leader update",
            );
            assert.equal(writesElection, ns === "earthworm");
          }
          // The wire token (audience "earthworm") is no key to the API server.
          const replay = await kubectl(["get", "leases", "-n", "earthworm"], {
            kubeconfig: await (async () => {
              const p = `${work}/wire.kubeconfig`;
              await Deno.writeTextFile(p, tokenKubeconfig(cluster, wireToken));
              return p;
            })(),
          });
          assert.notEqual(replay.code, 0);
          assert.match(replay.stderr, /Unauthorized|must be logged in/);
        },
      );
    } finally {
      for (const a of agents) await a.stop().catch(() => {});
      await cluster.stop();
      await Deno.remove(work, { recursive: true }).catch(() => {});
    }
  },
});
