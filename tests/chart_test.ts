/**
 * The Helm chart `deploy/chart`, the one source of the install: its default
 * render is `deploy/earthworm.yaml` byte for byte (comments included) and its
 * PrometheusRule is `deploy/prometheus/earthworm-rules.yaml`; every value
 * renders into the objects it names; `helm lint` passes; and on a real
 * control plane `helm install`, `upgrade` and `uninstall` create, change and
 * remove exactly those objects.
 */
import assert from "node:assert/strict";
import yaml from "js-yaml";
import {
  ALLOWED_GRANTS,
  type K8sObject,
  loadManifest,
  MANIFEST_PATH,
  manifestGrants,
  only,
} from "./deploy/manifest.ts";
import { VERSION } from "../cli/version.ts";
import {
  CHART_DIR,
  helmPath,
  helmPrereq,
  renderChart,
  runHelm,
} from "./helm/helm.ts";
import {
  type Cluster,
  clusterBinDir,
  clusterPrereq,
  startCluster,
} from "./cluster/harness.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const RULES_PATH = `${ROOT}deploy/prometheus/earthworm-rules.yaml`;
const CRD_PATH = `${ROOT}tests/testdata/prometheusrule_crd.yaml`;

/** The capabilities the eBPF side needs, as in tests/deploy_test.ts. */
const CAPABILITIES = ["BPF", "NET_ADMIN", "PERFMON", "SYS_PTRACE"];

/** Every value changed from its default. */
const CUSTOM_VALUES = {
  image: {
    repository: "registry.example.com/mirror/earthworm",
    tag: "0.2.0-rc.1",
    pullPolicy: "Always",
  },
  port: 9090,
  service: { port: 80 },
  watchNamespaces: ["kube-system", "kube-node-lease"],
  perHeartMetrics: true,
  extraCapabilities: ["SYS_RESOURCE", "SYS_ADMIN"],
  alerts: {
    webhooks: ["http://am-bridge.monitoring:8080/hook"],
    jsonWebhooks: ["https://hooks.example.com/earthworm"],
    externalUrl: "https://earthworm.example.com",
  },
  extraArgs: ["--retry-period", "4", "--lease-duration", "30"],
  resources: {
    requests: { cpu: "100m", memory: "256Mi" },
    // null removes a default: no CPU limit.
    limits: { cpu: null, memory: "1Gi" },
  },
  tolerations: [{
    key: "kwok.x-k8s.io/node",
    operator: "Exists",
    effect: "NoSchedule",
  }],
  nodeSelector: { "kubernetes.io/os": "linux", "example.com/pool": "system" },
  prometheusRule: { enabled: true, labels: { release: "prometheus" } },
};

const helmReq = helmPrereq();

async function render(args: string[]): Promise<
  { code: number; output: string }
> {
  const out = await new Deno.Command("bash", {
    args: [`${ROOT}deploy/render.sh`, ...args],
    env: { EARTHWORM_HELM: helmPath() },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const d = new TextDecoder();
  return {
    code: out.code,
    output: d.decode(out.stdout) + d.decode(out.stderr),
  };
}

Deno.test("the chart's version and appVersion are Earthworm's version", () => {
  const chart = yaml.load(
    Deno.readTextFileSync(`${CHART_DIR}/Chart.yaml`),
  ) as K8sObject;
  assert.equal(chart.apiVersion, "v2");
  assert.equal(chart.name, "earthworm");
  assert.equal(chart.version, VERSION);
  assert.equal(chart.appVersion, VERSION);
});

Deno.test({
  name:
    "helm: deploy/earthworm.yaml and deploy/prometheus/earthworm-rules.yaml are the chart's fresh render, byte for byte",
  ignore: helmReq.ignore,
  async fn() {
    helmReq.check();
    const check = await render(["--check"]);
    assert.equal(
      check.code,
      0,
      `the committed files differ from the chart's render (run bash deploy/render.sh):\n${check.output}`,
    );

    // A changed comment is a difference too.
    const dir = await Deno.makeTempDir({ prefix: "earthworm-render-" });
    try {
      await Deno.mkdir(`${dir}/prometheus`);
      const manifest = Deno.readTextFileSync(MANIFEST_PATH);
      const edited = manifest.replace(
        "# Create BPF maps and load programs",
        "# Create the BPF maps and load programs",
      );
      assert.notEqual(edited, manifest);
      await Deno.writeTextFile(`${dir}/earthworm.yaml`, edited);
      await Deno.copyFile(RULES_PATH, `${dir}/prometheus/earthworm-rules.yaml`);
      const stale = await render(["--check", "--out", dir]);
      assert.equal(stale.code, 1, stale.output);
      assert.match(stale.output, /^-\s+# Create the BPF maps/m);
      assert.match(stale.output, /differs from the chart's render/);
      assert.doesNotMatch(stale.output, /earthworm-rules\.yaml differs/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "helm: helm lint --strict passes with the default values and with every value changed",
  ignore: helmReq.ignore,
  async fn() {
    helmReq.check();
    for (const values of [{}, CUSTOM_VALUES]) {
      const out = await runHelm(["lint", CHART_DIR, "--strict", "-f", "-"], {
        stdin: JSON.stringify(values),
      });
      assert.equal(out.code, 0, out.stdout + out.stderr);
      assert.match(out.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
      assert.doesNotMatch(out.stdout, /\[(WARNING|ERROR)\]/);
    }
  },
});

Deno.test({
  name:
    "helm: every value renders into the objects it names, with RBAC narrowed to the watched namespaces",
  ignore: helmReq.ignore,
  async fn() {
    helmReq.check();
    const { docs } = await renderChart(CUSTOM_VALUES, "monitoring");
    const ds = only(docs, "DaemonSet", "earthworm");
    const pod = ds.spec.template.spec;
    const c = pod.containers[0];
    assert.equal(
      c.image,
      "registry.example.com/mirror/earthworm:0.2.0-rc.1",
    );
    assert.equal(c.imagePullPolicy, "Always");
    assert.deepEqual(c.args, [
      "agent",
      "--port",
      "9090",
      "--namespace",
      "kube-system",
      "--namespace",
      "kube-node-lease",
      "--per-heart-metrics",
      "--alert-webhook",
      "http://am-bridge.monitoring:8080/hook",
      "--alert-webhook-json",
      "https://hooks.example.com/earthworm",
      "--external-url",
      "https://earthworm.example.com",
      "--retry-period",
      "4",
      "--lease-duration",
      "30",
    ]);
    assert.deepEqual(c.ports, [{
      name: "http",
      containerPort: 9090,
      protocol: "TCP",
    }]);
    assert.equal(c.livenessProbe.httpGet.port, "http");
    assert.deepEqual(c.resources, {
      requests: { cpu: "100m", memory: "256Mi" },
      limits: { memory: "1Gi" },
    });
    assert.deepEqual(
      [...c.securityContext.capabilities.add].sort(),
      [...CAPABILITIES, "SYS_ADMIN", "SYS_RESOURCE"].sort(),
    );
    assert.deepEqual(c.securityContext.capabilities.drop, ["ALL"]);
    assert.equal(c.securityContext.privileged, false);
    assert.deepEqual(pod.tolerations, CUSTOM_VALUES.tolerations);
    assert.deepEqual(pod.nodeSelector, CUSTOM_VALUES.nodeSelector);
    const svc = only(docs, "Service", "earthworm");
    assert.deepEqual(svc.spec.ports, [{
      name: "http",
      port: 80,
      targetPort: "http",
      protocol: "TCP",
    }]);

    // Everything lands in the release namespace, and the ServiceAccount
    // bound everywhere is that namespace's.
    for (const d of docs) {
      if (["Namespace", "ClusterRole", "ClusterRoleBinding"].includes(d.kind)) {
        continue;
      }
      if (d.metadata.name === "earthworm-lease-reader") continue;
      assert.equal(d.metadata.namespace, "monitoring", `${d.kind}`);
    }
    assert.equal(only(docs, "Namespace").metadata.name, "monitoring");
    for (const d of docs.filter((d) => d.subjects)) {
      assert.deepEqual(d.subjects, [{
        kind: "ServiceAccount",
        name: "earthworm",
        namespace: "monitoring",
      }]);
    }
    // Leases are readable in the watched namespaces only.
    const leaseGrants = (scope: string) =>
      ["get", "list", "watch"].map((v) =>
        `${scope} coordination.k8s.io/leases/* ${v}`
      );
    assert.deepEqual(
      manifestGrants(docs),
      [
        ...ALLOWED_GRANTS.filter((g) =>
          !g.startsWith("cluster coordination.k8s.io/")
        ).map((g) => g.replace("ns:earthworm ", "ns:monitoring ")),
        ...leaseGrants("ns:kube-system"),
        ...leaseGrants("ns:kube-node-lease"),
      ].sort(),
    );
    assert.equal(
      docs.filter((d) => d.kind === "ClusterRole").map((d) => d.metadata.name)
        .join(),
      "earthworm-token-reviewer",
    );

    // The PrometheusRule carries the plain rule file's groups.
    const rule = only(docs, "PrometheusRule", "earthworm");
    assert.equal(rule.apiVersion, "monitoring.coreos.com/v1");
    assert.equal(rule.metadata.labels.release, "prometheus");
    assert.deepEqual(
      rule.spec,
      yaml.load(Deno.readTextFileSync(RULES_PATH)),
    );
  },
});

Deno.test({
  name:
    "helm: the default render leaves out the PrometheusRule and the optional flags",
  ignore: helmReq.ignore,
  async fn() {
    helmReq.check();
    const { docs } = await renderChart();
    assert.equal(docs.filter((d) => d.kind === "PrometheusRule").length, 0);
    const args: string[] = only(docs, "DaemonSet", "earthworm").spec.template
      .spec.containers[0].args;
    assert.ok(
      !args.includes("--namespace") && !args.includes("--per-heart-metrics"),
    );
    assert.deepEqual(
      docs.map((d) => `${d.kind}/${d.metadata.name}`),
      loadManifest().map((d) => `${d.kind}/${d.metadata.name}`),
    );
    const noNamespace = await renderChart({ createNamespace: false });
    assert.equal(
      noNamespace.docs.filter((d) => d.kind === "Namespace").length,
      0,
    );
  },
});

Deno.test({
  name:
    "helm: values outside the schema are refused, naming the value and what is allowed",
  ignore: helmReq.ignore,
  async fn() {
    helmReq.check();
    const cases: [Record<string, unknown>, RegExp][] = [
      [
        { extraCapabilities: ["SYS_MODULE"] },
        /extraCapabilities\/0.*SYS_RESOURCE/,
      ],
      [{ extraCapabilities: ["SYS_ADMIN", "SYS_ADMIN"] }, /extraCapabilities/],
      [{ port: "http" }, /\/port/],
      [{ port: 70000 }, /\/port/],
      [{ watchNamespaces: ["Kube_System"] }, /watchNamespaces\/0/],
      [{ perHeartMetrics: "yes" }, /perHeartMetrics/],
      [{ alerts: { webhooks: ["alertmanager:9093"] } }, /webhooks/],
      [{ tolerance: [] }, /additional properties 'tolerance' not allowed/],
      [{ image: { pullPolicy: "Sometimes" } }, /pullPolicy/],
    ];
    for (const [values, message] of cases) {
      const out = await runHelm(
        ["template", "earthworm", CHART_DIR, "-f", "-"],
        { stdin: JSON.stringify(values) },
      );
      assert.notEqual(out.code, 0, JSON.stringify(values));
      assert.match(out.stderr, message, JSON.stringify(values));
    }
  },
});

// ---------------------------------------------------------------------------
// On a real control plane

const clusterReq = clusterPrereq();

async function kubectl(
  cluster: Cluster,
  args: string[],
  stdin?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = new Deno.Command(`${clusterBinDir()}/kubectl`, {
    args: ["--kubeconfig", cluster.kubeconfigPath, ...args],
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
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

async function until<T>(
  what: string,
  timeoutMs: number,
  check: () => Promise<T | undefined>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const v = await check();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** `kind/name` (in `namespace`) exists: true, or false when NotFound. */
async function exists(
  cluster: Cluster,
  kind: string,
  name: string,
  namespace?: string,
): Promise<boolean> {
  const args = ["get", kind, name, "-o", "name"];
  if (namespace) args.push("-n", namespace);
  const out = await kubectl(cluster, args);
  if (out.code === 0) return true;
  assert.match(out.stderr, /NotFound|not found/, out.stderr);
  return false;
}

/** Helm's manifest text without its "# Source:" lines and first separator. */
function withoutSources(text: string): string {
  return text.replace(/^# Source: .*\n/gm, "").replace(/^---\n/, "");
}

Deno.test({
  name:
    "cluster: helm installs the chart as the README says, upgrades it to every non-default value, and uninstall removes it all",
  ignore: clusterReq.ignore || helmReq.ignore,
  async fn(t) {
    clusterReq.check();
    helmReq.check();
    const cluster = await startCluster();
    const home = await Deno.makeTempDir({ prefix: "earthworm-helm-home-" });
    const helm = (args: string[], stdin?: string) =>
      runHelm([...args, "--kubeconfig", cluster.kubeconfigPath], {
        home,
        ...(stdin === undefined ? {} : { stdin }),
      });
    const ok = (out: { code: number; stdout: string; stderr: string }) => {
      assert.equal(out.code, 0, out.stdout + out.stderr);
      return out.stdout;
    };
    try {
      const crd = await kubectl(cluster, ["apply", "-f", CRD_PATH]);
      assert.equal(crd.code, 0, crd.stderr);
      ok(
        await kubectl(cluster, [
          "wait",
          "--for=condition=Established",
          "crd/prometheusrules.monitoring.coreos.com",
          "--timeout=30s",
        ]),
      );
      // Three simulated nodes, one of them in the pool the custom
      // nodeSelector picks. Kubelets label nodes with their OS; these do not.
      const nodes = await cluster.createNodes(3);
      ok(
        await kubectl(cluster, [
          "label",
          "nodes",
          "--all",
          "kubernetes.io/os=linux",
        ]),
      );
      ok(
        await kubectl(cluster, [
          "label",
          "node",
          nodes[0]!,
          "example.com/pool=system",
        ]),
      );
      const desired = (want: number) =>
        until(`the DaemonSet to want ${want} nodes`, 30_000, async () => {
          const out = await kubectl(cluster, [
            "get",
            "daemonset",
            "earthworm",
            "-n",
            "earthworm",
            "-o",
            "json",
          ]);
          const ds = JSON.parse(out.stdout);
          return ds.metadata.generation === ds.status?.observedGeneration &&
              ds.status?.desiredNumberScheduled === want
            ? ds
            : undefined;
        });

      await t.step(
        "a non-default render in another namespace passes server-side validation",
        async () => {
          const { text, docs } = await renderChart(
            CUSTOM_VALUES,
            "monitoring",
          );
          // Namespaced objects validate only once their namespace exists.
          ok(
            await kubectl(
              cluster,
              ["apply", "-f", "-"],
              JSON.stringify(
                only(docs, "Namespace", "monitoring"),
              ),
            ),
          );
          const dry = ok(
            await kubectl(cluster, [
              "apply",
              "--dry-run=server",
              "--validate=strict",
              "-f",
              "-",
            ], text),
          );
          const lines = dry.trim().split("\n");
          assert.equal(lines.length, docs.length, dry);
          for (const l of lines) assert.match(l, /\(server dry run\)$/);
          assert.ok(lines.some((l) => l.startsWith("prometheusrule.")));
          ok(await kubectl(cluster, ["delete", "namespace", "monitoring"]));
        },
      );

      await t.step(
        "helm install, as the README shows, creates exactly deploy/earthworm.yaml",
        async () => {
          const readme = await Deno.readTextFile(`${ROOT}README.md`);
          const create = /^kubectl create namespace earthworm$/m.exec(readme);
          const install = /^helm install earthworm deploy\/chart( .*)?$/m
            .exec(readme);
          assert.ok(create && install, "README shows the helm install");
          ok(await kubectl(cluster, ["create", "namespace", "earthworm"]));
          const args = install[0].replace(/\s+#.*$/, "").split(/\s+/).slice(1)
            .map((a) => a === "deploy/chart" ? CHART_DIR : a);
          ok(await helm(args));

          const status = JSON.parse(
            ok(
              await helm([
                "status",
                "earthworm",
                "-n",
                "earthworm",
                "-o",
                "json",
              ]),
            ),
          );
          assert.equal(status.info.status, "deployed");
          const manifest = ok(
            await helm(["get", "manifest", "earthworm", "-n", "earthworm"]),
          );
          // The release is the committed manifest, after its header.
          const committed = Deno.readTextFileSync(MANIFEST_PATH);
          const body = committed.slice(committed.search(/^[^#\n]/m));
          assert.equal(withoutSources(manifest).trimEnd(), body.trimEnd());

          for (const d of loadManifest()) {
            const args = ["get", d.kind, d.metadata.name, "-o", "json"];
            if (d.metadata.namespace) args.push("-n", d.metadata.namespace);
            const got = JSON.parse(ok(await kubectl(cluster, args)));
            assert.equal(
              got.metadata.labels?.["app.kubernetes.io/managed-by"],
              "Helm",
              `${d.kind} ${d.metadata.name}`,
            );
            assert.equal(
              got.metadata.annotations?.["meta.helm.sh/release-name"],
              "earthworm",
            );
          }
          const ns = JSON.parse(
            ok(
              await kubectl(cluster, [
                "get",
                "namespace",
                "earthworm",
                "-o",
                "json",
              ]),
            ),
          );
          assert.equal(
            ns.metadata.labels["pod-security.kubernetes.io/enforce"],
            "privileged",
          );
          await desired(nodes.length);
        },
      );

      await t.step(
        "helm upgrade to every non-default value changes the DaemonSet, narrows the RBAC and adds the PrometheusRule",
        async () => {
          ok(
            await helm(
              ["upgrade", "earthworm", CHART_DIR, "-n", "earthworm", "-f", "-"],
              JSON.stringify(CUSTOM_VALUES),
            ),
          );
          const ds = await desired(1);
          const c = ds.spec.template.spec.containers[0];
          assert.equal(
            c.image,
            "registry.example.com/mirror/earthworm:0.2.0-rc.1",
          );
          assert.ok(c.args.includes("--per-heart-metrics"));
          assert.deepEqual(
            [...c.securityContext.capabilities.add].sort(),
            [...CAPABILITIES, "SYS_ADMIN", "SYS_RESOURCE"].sort(),
          );
          assert.equal(
            await exists(cluster, "clusterrole", "earthworm-lease-reader"),
            false,
          );
          for (const ns of CUSTOM_VALUES.watchNamespaces) {
            assert.ok(
              await exists(cluster, "role", "earthworm-lease-reader", ns),
            );
            assert.ok(
              await exists(
                cluster,
                "rolebinding",
                "earthworm-lease-reader",
                ns,
              ),
            );
          }
          assert.ok(
            await exists(cluster, "prometheusrule", "earthworm", "earthworm"),
          );
          const svc = JSON.parse(
            ok(
              await kubectl(cluster, [
                "get",
                "service",
                "earthworm",
                "-n",
                "earthworm",
                "-o",
                "json",
              ]),
            ),
          );
          assert.equal(svc.spec.ports[0].port, 80);
        },
      );

      await t.step(
        "helm uninstall removes every object, cluster-scoped ones and the namespace included",
        async () => {
          ok(await helm(["uninstall", "earthworm", "-n", "earthworm"]));
          const gone: [string, string, string?][] = [
            ["clusterrole", "earthworm-token-reviewer"],
            ["clusterrolebinding", "earthworm-token-reviewer"],
            ["clusterrole", "earthworm-lease-reader"],
            ["clusterrolebinding", "earthworm-lease-reader"],
            ["role", "earthworm-lease-reader", "kube-system"],
            ["rolebinding", "earthworm-lease-reader", "kube-node-lease"],
          ];
          for (const [kind, name, ns] of gone) {
            assert.equal(await exists(cluster, kind, name, ns), false, name);
          }
          await until(
            "namespace earthworm to be deleted",
            60_000,
            async () =>
              await exists(cluster, "namespace", "earthworm")
                ? undefined
                : true,
          );
          const releases = ok(await helm(["list", "-A", "-q"]));
          assert.equal(releases.trim(), "");
        },
      );
    } finally {
      await cluster.stop();
      await Deno.remove(home, { recursive: true }).catch(() => {});
    }
  },
});
