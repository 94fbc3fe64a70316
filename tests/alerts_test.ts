/**
 * Earthworm's alerts and dashboard: `deploy/prometheus/earthworm-rules.yaml`
 * passes `promtool check rules` and its unit tests (each alert firing and
 * not firing), and every metric the rules and
 * `deploy/grafana/earthworm-dashboard.json` query is one that a running
 * `earthworm mock` (the hub's metrics) or `earthworm agent` (the agent's own)
 * exposes on /metrics, so renaming a metric fails here.
 */
import assert from "node:assert/strict";
import yaml from "js-yaml";
import {
  exposedNames,
  labelValuesMetrics,
  metricNames,
} from "./deploy/promql.ts";
import { onPath, prereq } from "./prereq.ts";
import { startEarthworm } from "./earthworm_process.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const RULES_PATH = `${ROOT}deploy/prometheus/earthworm-rules.yaml`;
const RULES_TEST_PATH = `${ROOT}deploy/prometheus/earthworm-rules.test.yaml`;
const DASHBOARD_PATH = `${ROOT}deploy/grafana/earthworm-dashboard.json`;

const promtoolReq = prereq(
  "promtool",
  onPath("promtool")
    ? null
    : "promtool is not installed: apt-get install prometheus (Debian) brings it",
);

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

function loadRules(): Rule[] {
  const file = yaml.load(Deno.readTextFileSync(RULES_PATH)) as {
    groups: { name: string; rules: Rule[] }[];
  };
  return file.groups.flatMap((g) => g.rules);
}

/** A Grafana panel, as far as these tests read it. */
interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  targets?: { expr: string; datasource?: { uid: string } }[];
  panels?: Panel[];
}

function loadDashboard(): {
  uid: string;
  panels: Panel[];
  templating: {
    list: { name: string; type: string; query: unknown; definition?: string }[];
  };
} {
  return JSON.parse(Deno.readTextFileSync(DASHBOARD_PATH));
}

function allPanels(panels: Panel[]): Panel[] {
  return panels.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);
}

/** Every metric name the rules and the dashboard query, with where. */
function queriedMetrics(): Map<string, string[]> {
  const used = new Map<string, string[]>();
  const add = (names: string[], where: string) => {
    for (const n of names) used.set(n, [...(used.get(n) ?? []), where]);
  };
  for (const r of loadRules()) {
    add(metricNames(r.expr), `rule ${r.alert ?? r.record}`);
  }
  const dash = loadDashboard();
  for (const p of allPanels(dash.panels)) {
    for (const t of p.targets ?? []) {
      add(metricNames(t.expr), `panel "${p.title}"`);
    }
  }
  for (const v of dash.templating.list) {
    if (v.type !== "query") continue;
    const q = typeof v.query === "string"
      ? v.query
      : (v.query as { query: string }).query;
    add(labelValuesMetrics(q), `variable $${v.name}`);
  }
  return used;
}

Deno.test("metric names are found in PromQL expressions and Grafana variable queries", () => {
  assert.deepEqual(
    metricNames(
      'max by (kind) (max_over_time(earthworm_hearts{kind="node", status=~"late|x{2}"}[5m])) > 0',
    ),
    ["earthworm_hearts"],
  );
  assert.deepEqual(
    metricNames(
      "sum(rate(a_total[$__rate_interval])) by (x) / on(y) group_left(z) b:ratio offset 5m > 1e3 and bool c",
    ),
    ["a_total", "b:ratio", "c"],
  );
  assert.deepEqual(
    metricNames("topk(10, max by (name) (d{kind='node'})) == 1"),
    ["d"],
  );
  assert.deepEqual(
    labelValuesMetrics('label_values(e{node=~"a.*"}, node)'),
    ["e"],
  );
  assert.deepEqual(labelValuesMetrics("label_values(node)"), []);
  assert.deepEqual(
    exposedNames("# HELP f x\n# TYPE f gauge\nf 1\n# TYPE g_total counter\n"),
    ["f", "g_total"],
  );
});

Deno.test({
  name:
    "promtool: the rule file passes promtool check rules and every unit test",
  ignore: promtoolReq.ignore,
  async fn() {
    promtoolReq.check();
    const run = async (args: string[]) => {
      const out = await new Deno.Command("promtool", {
        args,
        cwd: ROOT,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
      const d = new TextDecoder();
      return {
        code: out.code,
        text: d.decode(out.stdout) + d.decode(out.stderr),
      };
    };
    const version = await run(["--version"]);
    console.error(version.text.split("\n")[0]);
    const check = await run(["check", "rules", RULES_PATH]);
    assert.equal(check.code, 0, check.text);
    assert.match(
      check.text,
      new RegExp(`SUCCESS: ${loadRules().length} rules found`),
    );
    const test = await run(["test", "rules", RULES_TEST_PATH]);
    assert.equal(test.code, 0, test.text);
    assert.match(test.text, /SUCCESS/);
  },
});

Deno.test("every alert has a severity, a summary and a description, and promtool test cases where it fires and where it does not", () => {
  const rules = loadRules();
  const alerts = rules.map((r) => r.alert).filter((a): a is string => !!a);
  assert.deepEqual(alerts.sort(), [
    "EarthwormBlindToApiServer",
    "EarthwormLeaseHandoverFlapping",
    "EarthwormNoLeader",
    "EarthwormNodeHeartbeatExpired",
    "EarthwormNodeHeartbeatLate",
    "EarthwormWireProbeDown",
    "EarthwormWireRetransmits",
    "EarthwormWireSlow",
  ]);
  for (const r of rules) {
    assert.match(r.labels?.severity ?? "", /^(critical|warning|info)$/);
    assert.ok(r.annotations?.summary, `${r.alert}: summary`);
    assert.ok(r.annotations?.description, `${r.alert}: description`);
  }
  const tests = yaml.load(Deno.readTextFileSync(RULES_TEST_PATH)) as {
    rule_files: string[];
    tests: {
      alert_rule_test?: { alertname: string; exp_alerts?: unknown[] }[];
    }[];
  };
  assert.deepEqual(tests.rule_files, ["earthworm-rules.yaml"]);
  const cases = tests.tests.flatMap((t) => t.alert_rule_test ?? []);
  for (const alert of alerts) {
    const mine = cases.filter((c) => c.alertname === alert);
    assert.ok(
      mine.some((c) => (c.exp_alerts ?? []).length > 0),
      `${alert} has a case where it fires`,
    );
    assert.ok(
      mine.some((c) => (c.exp_alerts ?? []).length === 0),
      `${alert} has a case where it does not fire`,
    );
  }
});

Deno.test("the dashboard reads one Prometheus variable and has unique panel ids", () => {
  const dash = loadDashboard();
  assert.equal(dash.uid, "earthworm");
  const ds = dash.templating.list.find((v) => v.type === "datasource");
  assert.equal(ds?.name, "datasource");
  assert.equal(ds?.query, "prometheus");
  const panels = allPanels(dash.panels);
  const ids = panels.map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length, "unique panel ids");
  const queried = panels.filter((p) => p.type !== "row");
  assert.ok(queried.length >= 10);
  for (const p of queried) {
    assert.ok(p.targets?.length, `panel "${p.title}" has queries`);
    assert.equal(p.datasource?.uid, "${datasource}", p.title);
    for (const t of p.targets!) {
      assert.equal(t.datasource?.uid, "${datasource}", p.title);
    }
  }
});

Deno.test("the dashboard and the alert rules query only metrics a running earthworm mock or agent exposes; the rules only default ones", async () => {
  // An agent with an API server that refuses connections still serves its
  // own metrics (it never leads); the mock's leader serves the hub's.
  const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (closed.addr as Deno.NetAddr).port;
  closed.close();
  const dir = await Deno.makeTempDir({ prefix: "earthworm-metrics-" });
  const kubeconfig = `${dir}/kubeconfig`;
  await Deno.writeTextFile(
    kubeconfig,
    JSON.stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [{
        name: "none",
        cluster: { server: `http://127.0.0.1:${port}` },
      }],
      users: [{ name: "none", user: { token: "none" } }],
      contexts: [{ name: "none", context: { cluster: "none", user: "none" } }],
      "current-context": "none",
    }),
  );
  const mock = await startEarthworm(["mock", "--port", "0"]);
  const perHeartMock = await startEarthworm([
    "mock",
    "--port",
    "0",
    "--per-heart-metrics",
  ]);
  try {
    const agent = await startEarthworm([
      "agent",
      "--port",
      "0",
      "--host",
      "127.0.0.1",
      "--no-ebpf",
      "--kubeconfig",
      kubeconfig,
    ], { env: { POD_NAME: "metrics-test", NODE_NAME: "metrics-test" } });
    try {
      const byDefault = new Set<string>();
      for (const url of [mock.url, agent.url]) {
        const res = await fetch(`${url}/metrics`);
        assert.equal(res.status, 200);
        for (const n of exposedNames(await res.text())) byDefault.add(n);
      }
      const exposed = new Set(byDefault);
      const res = await fetch(`${perHeartMock.url}/metrics`);
      for (const n of exposedNames(await res.text())) exposed.add(n);
      const perHeartOnly = [...exposed].filter((n) => !byDefault.has(n));
      assert.deepEqual(perHeartOnly.sort(), [
        "earthworm_heart_seconds_since_beat",
        "earthworm_wire_srtt_seconds",
      ]);
      assert.ok(exposed.has("earthworm_hearts"), "the mock's hub metrics");
      assert.ok(exposed.has("earthworm_leader"), "the agent's own metrics");

      const used = queriedMetrics();
      const missing = [...used].filter(([n]) => !exposed.has(n)).map((
        [n, where],
      ) => `${n} (${where.join(", ")})`);
      assert.deepEqual(missing, [], "queried but not exposed");
      // An alert must not depend on a flag; a panel that shows per-heart
      // series says what turns them on.
      for (const [n, where] of used) {
        if (!perHeartOnly.includes(n)) continue;
        assert.deepEqual(where.filter((w) => w.startsWith("rule ")), [], n);
      }
      for (const p of allPanels(loadDashboard().panels)) {
        const exprs = (p.targets ?? []).map((t) => t.expr).join(" ");
        if (perHeartOnly.some((n) => metricNames(exprs).includes(n))) {
          assert.match(
            (p as { description?: string }).description ?? "",
            /--per-heart-metrics/,
            `panel "${p.title}" names the flag its series need`,
          );
        }
      }
      const foreign = [...used.keys()].filter((n) =>
        !n.startsWith("earthworm_")
      );
      assert.deepEqual(foreign, [], "only Earthworm's own metrics");
      // The rules and the dashboard between them use most of what is there.
      for (
        const n of [
          "earthworm_hearts",
          "earthworm_lease_transitions_total",
          "earthworm_source_connected",
          "earthworm_leader",
          "earthworm_wire_retransmits_total",
          "earthworm_wire_srtt_max_seconds",
          "earthworm_agent_wire_probe",
        ]
      ) {
        assert.ok(used.get(n)?.some((w) => w.startsWith("rule ")), n);
      }
    } finally {
      assert.equal(await agent.stop(), 0);
    }
  } finally {
    assert.equal(await perHeartMock.stop(), 0);
    assert.equal(await mock.stop(), 0);
    await Deno.remove(dir, { recursive: true });
  }
});
