/**
 * End-to-end tests of how `earthworm watch` and `earthworm agent` take their
 * kubeconfig, listen address and API server: a kubeconfig that cannot be used
 * ends the command with one line naming the file, the place and the fix
 * (exit code 2); a server that cannot be reached or trusted is a runtime
 * condition, reported with its cause while the command keeps running.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { HeartsResponse } from "../core/api_types.ts";
import {
  collectLines,
  runEarthworm,
  startEarthworm,
} from "./earthworm_process.ts";
import { assertOneLineError } from "./one_line_error.ts";
import { onPath, prereq } from "./prereq.ts";
import { until } from "./wait.ts";

const TIMEOUT_MS = 30_000;

/** Deno's cache, so a child with another HOME does not download again. */
function denoDir(): string {
  const env = Deno.env.get("DENO_DIR");
  if (env) return env;
  const cache = Deno.env.get("XDG_CACHE_HOME") ??
    `${Deno.env.get("HOME")}/.cache`;
  return `${cache}/deno`;
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "earthworm-kubeconfig-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A kubeconfig with one context "main" on cluster "main". */
function kubeconfig(
  cluster: Record<string, unknown> | null,
  extra: Record<string, unknown> = {},
): string {
  return JSON.stringify(
    {
      apiVersion: "v1",
      kind: "Config",
      clusters: cluster ? [{ name: "main", cluster }] : [],
      users: [{ name: "admin", user: { token: "t" } }],
      contexts: [{ name: "main", context: { cluster: "main", user: "admin" } }],
      "current-context": "main",
      ...extra,
    },
    null,
    2,
  );
}

/** A port nobody listens on. */
function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

const COMMANDS: [string, string[]][] = [
  ["watch", ["watch", "--port", "0"]],
  ["agent", ["agent", "--port", "0", "--no-ebpf"]],
];

for (const [name, command] of COMMANDS) {
  Deno.test(`${name}: a kubeconfig that cannot be used ends with one line naming the file, the place and the fix`, async () => {
    await withDir(async (dir) => {
      const write = async (file: string, text: string) => {
        await Deno.writeTextFile(`${dir}/${file}`, text);
        return `${dir}/${file}`;
      };
      const cases: [string, string, ...string[]][] = [
        [
          "a missing file",
          `${dir}/missing`,
          "it does not exist: check the path given to --kubeconfig",
        ],
        ["a directory", dir, "it is a directory: pass a kubeconfig file"],
        [
          "garbage YAML",
          await write("garbage", "clusters: [\n  a: b\n"),
          "line 3, column 1: invalid YAML",
          "fix the syntax there",
        ],
        [
          "a list instead of a mapping",
          await write("list", "- a\n- b\n"),
          "expected a kubeconfig mapping (clusters, contexts, users), got a list",
        ],
        [
          "an empty file",
          await write("empty", ""),
          "the file is empty",
        ],
        [
          "a context without its cluster",
          await write("nocluster", kubeconfig(null)),
          'contexts[0].context.cluster: context "main" names cluster "main", which is not under clusters',
          "--context",
        ],
        [
          "a cluster without a server",
          await write("noserver", kubeconfig({})),
          'clusters[0].cluster.server: cluster "main" has no server',
          "add the API server's URL",
        ],
        [
          "a bad server URL",
          await write("badurl", kubeconfig({ server: "ht!tp://bad url" })),
          'clusters[0].cluster.server: expected a URL such as "https://127.0.0.1:6443", got "ht!tp://bad url"',
        ],
        [
          "a server URL that is not HTTP",
          await write("ftp", kubeconfig({ server: "ftp://10.0.0.1" })),
          'got "ftp://10.0.0.1"',
        ],
        [
          "no current context",
          await write(
            "nocurrent",
            kubeconfig({ server: "https://127.0.0.1:6443" }, {
              "current-context": "",
            }),
          ),
          "it sets no current-context",
          'pass --context with one of "main"',
        ],
      ];
      for (const [what, path, ...parts] of cases) {
        const r = await runEarthworm([...command, "--kubeconfig", path], {
          timeoutMs: TIMEOUT_MS,
        });
        try {
          assertOneLineError(r, `Cannot read kubeconfig "${path}"`, ...parts);
        } catch (err) {
          throw new Error(`${what}: ${(err as Error).message}`);
        }
      }
      const good = await write(
        "good",
        kubeconfig({ server: "https://127.0.0.1:6443" }),
      );
      assertOneLineError(
        await runEarthworm(
          [...command, "--kubeconfig", good, "--context", "nope"],
          { timeoutMs: TIMEOUT_MS },
        ),
        `Cannot read kubeconfig "${good}"`,
        'it has no context "nope": pass one of "main" to --context',
      );
    });
  });

  Deno.test(`${name}: no kubeconfig at all ends with one line and the fix instead of trying localhost:8080`, async () => {
    await withDir(async (home) => {
      const r = await runEarthworm(command, {
        timeoutMs: TIMEOUT_MS,
        env: {
          HOME: home,
          DENO_DIR: denoDir(),
          KUBECONFIG: "",
          KUBERNETES_SERVICE_HOST: "",
        },
      });
      assertOneLineError(
        r,
        `No kubeconfig found: KUBECONFIG is not set and "${home}/.kube/config" does not exist`,
        "pass --kubeconfig FILE or set KUBECONFIG",
      );
      const missing = `${home}/nowhere`;
      const fromEnv = await runEarthworm(command, {
        timeoutMs: TIMEOUT_MS,
        env: {
          HOME: home,
          DENO_DIR: denoDir(),
          KUBECONFIG: missing,
          KUBERNETES_SERVICE_HOST: "",
        },
      });
      assertOneLineError(
        fromEnv,
        `Cannot read kubeconfig "${missing}"`,
        "it does not exist: check the KUBECONFIG variable",
      );
    });
  });
}

Deno.test("a listen address that is not an IP address or host name names the --host flag", async () => {
  for (const command of [["mock"], ["watch"]]) {
    for (const host of ["999.1.1.1", "1.2.3", "bad host", "::zz"]) {
      const r = await runEarthworm(
        [...command, "--port", "0", "--host", host],
        {
          timeoutMs: TIMEOUT_MS,
        },
      );
      assertOneLineError(
        r,
        `Flag "--host" must be an IP address or host name to listen on, got "${host}"`,
      );
    }
  }
  // A well-formed name that does not resolve is found out when listening.
  const r = await runEarthworm(
    ["mock", "--port", "0", "--host", "no-such-host.invalid"],
    { timeoutMs: TIMEOUT_MS },
  );
  assert.equal(r.code, 1, r.stderr);
  assert.match(
    r.stderr,
    /^earthworm: Cannot listen on no-such-host\.invalid:0: the host name does not resolve: check --host\n$/,
  );
});

Deno.test("watch of several kubeconfigs refuses a context none of them defines with one line naming them", async () => {
  await withDir(async (dir) => {
    const server = { server: `https://127.0.0.1:${closedPort()}` };
    await Deno.writeTextFile(`${dir}/a`, kubeconfig(server));
    await Deno.writeTextFile(`${dir}/b`, kubeconfig(server));
    const r = await runEarthworm([
      "watch",
      "--port",
      "0",
      "--kubeconfig",
      `${dir}/a`,
      "--kubeconfig",
      `${dir}/b`,
      "--context",
      "nope",
    ], { timeoutMs: TIMEOUT_MS });
    assertOneLineError(
      r,
      `Context "nope" is defined in none of the kubeconfigs (${dir}/a, ${dir}/b)`,
      "kubectl config get-contexts",
    );
  });
});

Deno.test("watch of two unreachable kubeconfigs with the same context name shows each cluster down under its own name", async () => {
  await withDir(async (dir) => {
    const ports = [closedPort(), closedPort()];
    for (const [i, port] of ports.entries()) {
      await Deno.writeTextFile(
        `${dir}/${i}`,
        kubeconfig({ server: `https://127.0.0.1:${port}` }),
      );
    }
    const ew = await startEarthworm([
      "watch",
      "--port",
      "0",
      "--kubeconfig",
      `${dir}/0`,
      "--kubeconfig",
      `${dir}/1`,
    ]);
    try {
      const body = await until(
        "both clusters down with a reason",
        20_000,
        async () => {
          const b = await (await fetch(`${ew.url}/api/v1/hearts`))
            .json() as HeartsResponse;
          return b.source.clusters?.every((c) => c.reason) && b;
        },
      );
      assert.deepEqual(
        body.source.clusters!.map((c) => [c.name, c.server, c.connected]),
        ports.map((port, i) => [
          i === 0 ? "main" : "main-2",
          `https://127.0.0.1:${port}`,
          false,
        ]),
      );
      assert.match(
        body.source.reason!,
        /cluster "main": .*refused.*cluster "main-2": /i,
      );
    } finally {
      assert.equal(await ew.stop(), 0, ew.stderr());
    }
  });
});

Deno.test("watch with a kubeconfig whose server is unreachable still starts and shows the source as down", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/config`;
    await Deno.writeTextFile(
      path,
      kubeconfig({ server: `https://127.0.0.1:${closedPort()}` }),
    );
    const ew = await startEarthworm([
      "watch",
      "--port",
      "0",
      "--kubeconfig",
      path,
    ]);
    try {
      let body: HeartsResponse | undefined;
      for (let i = 0; i < 100; i++) {
        body = await (await fetch(`${ew.url}/api/v1/hearts`))
          .json() as HeartsResponse;
        if (body.source.reason) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(body?.source.connected, false);
      assert.match(body?.source.reason ?? "", /refused/i);
      assert.deepEqual(body?.hearts, []);
    } finally {
      assert.equal(await ew.stop(), 0, ew.stderr());
    }
  });
});

const openssl = prereq(
  "openssl",
  onPath("openssl") ? null : '"openssl" is not installed',
);

/** Writes a self-signed certificate that is its own CA (basicConstraints CA:TRUE). */
async function selfSignedCa(
  dir: string,
): Promise<{ cert: string; key: string }> {
  const out = await new Deno.Command("openssl", {
    args: [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      `${dir}/key.pem`,
      "-out",
      `${dir}/cert.pem`,
      "-subj",
      "/CN=127.0.0.1",
      "-addext",
      "subjectAltName=IP:127.0.0.1",
      "-days",
      "1",
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  return {
    cert: await Deno.readTextFile(`${dir}/cert.pem`),
    key: await Deno.readTextFile(`${dir}/key.pem`),
  };
}

/**
 * Runs the agent against `server` for a few seconds of fast election retries
 * and returns its stderr lines.
 */
async function agentLines(
  dir: string,
  cluster: Record<string, unknown>,
): Promise<string[]> {
  const path = `${dir}/config`;
  await Deno.writeTextFile(path, kubeconfig(cluster));
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("../main.ts", import.meta.url).pathname,
      "agent",
      "--port",
      "0",
      "--no-ebpf",
      "--kubeconfig",
      path,
      "--lease-duration",
      "2",
      "--renew-deadline",
      "1",
      "--retry-period",
      "0.2",
    ],
    env: { NO_COLOR: "1", KUBERNETES_SERVICE_HOST: "" },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  const reading = collectLines(child.stderr, lines);
  // About fifteen election attempts.
  await new Promise((r) => setTimeout(r, 4_000));
  child.kill("SIGTERM");
  const killer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  await child.status;
  clearTimeout(killer);
  await reading;
  return lines;
}

Deno.test({
  name:
    "agent: an API server it cannot trust is reported once at warn level with the TLS reason",
  ignore: openssl.ignore,
  async fn() {
    openssl.check();
    await withDir(async (dir) => {
      const { cert, key } = await selfSignedCa(dir);
      const server = Deno.serve({
        hostname: "127.0.0.1",
        port: 0,
        cert,
        key,
        onListen: () => {},
      }, () => Response.json({}));
      try {
        const lines = await agentLines(dir, {
          server: `https://127.0.0.1:${server.addr.port}`,
          "certificate-authority-data": btoa(cert),
        });
        const warns = lines.filter((l) => / WARN .*leader-election: /.test(l));
        assert.equal(warns.length, 1, lines.join("\n"));
        assert.match(
          warns[0]!,
          /cannot trust the API server: invalid peer certificate: CaUsedAsEndEntity/,
        );
        assert.ok(
          !lines.some((l) => /leader is now identity= /.test(l)),
          lines.join("\n"),
        );
      } finally {
        await server.shutdown();
      }
    });
  },
});

Deno.test("agent: an API server it cannot reach is reported once at warn level with the connection reason", async () => {
  await withDir(async (dir) => {
    const lines = await agentLines(dir, {
      server: `https://127.0.0.1:${closedPort()}`,
    });
    const warns = lines.filter((l) => / WARN .*leader-election: /.test(l));
    assert.equal(warns.length, 1, lines.join("\n"));
    assert.match(
      warns[0]!,
      /cannot reach the API server: tcp connect error: Connection refused/,
    );
  });
});
