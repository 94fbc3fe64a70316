import assert from "node:assert/strict";
import type { HeartsResponse } from "../core/api_types.ts";
import { INCIDENTS, nodeName } from "../sim/simulator.ts";
import { runEarthworm, startEarthworm } from "./earthworm_process.ts";
import { until } from "./wait.ts";

Deno.test("earthworm mock serves a simulated cluster and stops cleanly on SIGTERM", async () => {
  const ew = await startEarthworm([
    "mock",
    "--port",
    "0",
    "--nodes",
    "20",
    "--speed",
    "5",
  ]);
  try {
    assert.match(ew.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    console.error(`mock start-up: ${ew.startupMs.toFixed(0)} ms`);
    const body = await (await fetch(`${ew.url}/api/v1/hearts`))
      .json() as HeartsResponse;
    assert.equal(body.source.kind, "mock");
    assert.equal(body.source.timeScale, 5);
    assert.equal(body.hearts.filter((h) => h.kind === "node").length, 20);
    assert.ok(
      body.hearts.some((h) => h.id === "kube-system/kube-controller-manager"),
    );
    assert.equal(
      body.source.wire?.available,
      true,
      "the simulated kubelets report wire exchanges",
    );
    assert.ok(body.hearts.some((h) => h.wire && h.wire.srttUs !== null));
  } finally {
    assert.equal(await ew.stop(), 0);
  }
  assert.doesNotMatch(ew.stderr(), /error/i);
});

Deno.test("bad command lines end with one line and exit code 2", async () => {
  const cases: [string[], RegExp][] = [
    [
      ["mock", "--bogus"],
      /Unknown flag "--bogus" for "earthworm mock": run "earthworm mock --help"/,
    ],
    [
      ["mock", "--port", "http"],
      /Flag "--port" must be a whole number, got "http"/,
    ],
    [["mock", "--port", "70000"], /between 0 and 65535/],
    [["mock", "--speed", "0"], /Flag "--speed" must be between/],
    [["mock", "--port"], /Flag "--port" of "earthworm mock" needs a value/],
    [["mock", "stray"], /Unexpected argument 'stray'/],
    [["frobnicate"], /Unknown command "frobnicate"/],
  ];
  for (const [args, message] of cases) {
    const { code, stderr } = await runEarthworm(args);
    assert.equal(code, 2, args.join(" "));
    const lines = stderr.trim().split("\n");
    assert.equal(lines.length, 1, `one line for ${args.join(" ")}: ${stderr}`);
    assert.match(lines[0]!, message);
    assert.doesNotMatch(stderr, /\bat .*\.ts:\d+/);
  }
});

Deno.test("--help and --version answer on every command", async () => {
  const top = await runEarthworm(["--help"]);
  assert.equal(top.code, 0);
  for (const cmd of ["mock", "watch", "agent", "probe", "parse-leases"]) {
    assert.match(top.stdout, new RegExp(`^  ${cmd} `, "m"));
    const help = await runEarthworm([cmd, "--help"]);
    assert.equal(help.code, 0, `${cmd} --help: ${help.stderr}`);
    assert.match(help.stdout, new RegExp(`Usage: earthworm ${cmd}`));
  }
  const version = await runEarthworm(["--version"]);
  assert.match(version.stdout, /^earthworm \d+\.\d+\.\d+/);
});

Deno.test("a busy port is reported with the fix", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const { code, stderr } = await runEarthworm([
      "mock",
      "--port",
      String((listener.addr as Deno.NetAddr).port),
    ]);
    assert.equal(code, 1);
    assert.match(stderr, /the address is in use: pick another with --port/);
  } finally {
    listener.close();
  }
});

Deno.test("mock --replay plays a recorded Lease file through the same pipeline", async () => {
  const dir = await Deno.makeTempDir({ prefix: "earthworm-replay-" });
  try {
    const timeline = `${dir}/timeline.json`;
    const parsed = await runEarthworm([
      "parse-leases",
      "tests/testdata/leases_seed.yaml",
      "-o",
      timeline,
    ]);
    assert.equal(parsed.code, 0, parsed.stderr);
    for (const file of [timeline, "tests/testdata/leases_multi_doc.yaml"]) {
      const ew = await startEarthworm([
        "mock",
        "--port",
        "0",
        "--replay",
        file,
        "--speed",
        "50",
      ]);
      try {
        let body: HeartsResponse | undefined;
        for (let i = 0; i < 100; i++) {
          body = await (await fetch(`${ew.url}/api/v1/hearts`))
            .json() as HeartsResponse;
          if (body.hearts.some((h) => h.beats > 0)) break;
          await new Promise((r) => setTimeout(r, 100));
        }
        assert.equal(body!.source.kind, "replay");
        assert.equal(body!.source.name, file);
        assert.ok(body!.hearts.length > 0, `${file}: hearts`);
        assert.ok(
          body!.hearts.some((h) => h.beats > 0),
          `${file}: beats replayed`,
        );
      } finally {
        assert.equal(await ew.stop(), 0);
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("mock --replay with a bad file fails before listening, with one line and exit 2", async () => {
  for (
    const [file, message] of [
      ["tests/testdata/missing.yaml", /tests\/testdata\/missing\.yaml/],
      ["tests/testdata/bad_syntax.yaml", /bad_syntax\.yaml.*line \d+/],
      ["tests/testdata/bad_alias_bomb.yaml", /bad_alias_bomb\.yaml/],
    ] as const
  ) {
    const { code, stderr } = await runEarthworm([
      "mock",
      "--port",
      "0",
      "--replay",
      file,
    ]);
    assert.equal(code, 2, file);
    assert.equal(stderr.trim().split("\n").length, 1, stderr);
    assert.match(stderr, message);
    assert.doesNotMatch(stderr, /listening/);
  }
});

Deno.test("earthworm mock --alert-webhook posts the dead node's alert, with its cause, and its resolution", async () => {
  // A receiver on loopback standing in for Alertmanager (and a plain JSON one).
  const received: { path: string; body: Record<string, unknown> }[] = [];
  const receiver = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (req) => {
      received.push({
        path: new URL(req.url).pathname,
        body: await req.json(),
      });
      return new Response(null, { status: 200 });
    },
  );
  const base = `http://127.0.0.1:${receiver.addr.port}`;
  const ew = await startEarthworm([
    "mock",
    "--port",
    "0",
    "--speed",
    "20",
    "--alert-webhook",
    `${base}/alertmanager`,
    "--alert-webhook-json",
    `${base}/json`,
    "--external-url",
    "http://earthworm.example:8080/",
  ]);
  const dead = `kube-node-lease/${nodeName(INCIDENTS.death.node)}`;
  type Alert = {
    status: string;
    labels: Record<string, string>;
    annotations: Record<string, string>;
    generatorURL: string;
  };
  const alerts = () =>
    received.filter((r) => r.path === "/alertmanager").flatMap((r) =>
      r.body.alerts as Alert[]
    ).filter((a) => a.labels.heart === dead);
  try {
    const firing = await until(
      "a firing alert for the dead node with its cause",
      60_000,
      () => alerts().find((a) => a.status === "firing" && a.annotations.cause),
    );
    assert.equal(firing.annotations.cause, "kubelet");
    assert.equal(firing.labels.severity, "critical");
    assert.equal(
      firing.generatorURL,
      `http://earthworm.example:8080/#/heart/${dead}`,
    );
    await until(
      "the dead node's resolved alert",
      60_000,
      () => alerts().some((a) => a.status === "resolved"),
    );
    const plain = received.filter((r) => r.path === "/json").map((r) =>
      r.body as { kind: string; heart: { id: string } }
    ).filter((n) => n.heart.id === dead).map((n) => n.kind);
    assert.ok(plain.includes("expired"), `plain JSON kinds: ${plain}`);
    assert.ok(plain.includes("recovered"), `plain JSON kinds: ${plain}`);
  } finally {
    assert.equal(await ew.stop(), 0);
    await receiver.shutdown();
  }
});

Deno.test("a webhook URL that is not http(s) is refused with the flag's name", async () => {
  const { code, stderr } = await runEarthworm([
    "mock",
    "--alert-webhook",
    "alertmanager:9093",
  ]);
  assert.equal(code, 2);
  assert.match(
    stderr,
    /Flag "--alert-webhook" must be an http:\/\/ or https:\/\/ URL, got "alertmanager:9093"/,
  );
});

/** Sends `request` on a raw connection and reads until `done(text)` or the end. */
async function rawExchange(
  url: string,
  request: string,
  done: (text: string) => boolean,
  onProgress?: (text: string) => void,
): Promise<string> {
  const conn = await Deno.connect({
    hostname: "127.0.0.1",
    port: Number(new URL(url).port),
  });
  let text = "";
  try {
    await conn.write(new TextEncoder().encode(request));
    const buf = new Uint8Array(65536);
    const decoder = new TextDecoder();
    while (!done(text)) {
      const n = await conn.read(buf).catch(() => null);
      if (n === null) break;
      text += decoder.decode(buf.subarray(0, n), { stream: true });
      onProgress?.(text);
    }
  } finally {
    conn.close();
  }
  return text;
}

Deno.test("on SIGTERM an open stream ends with its final chunk, and the process exits 0", async () => {
  const ew = await startEarthworm(["mock", "--port", "0", "--nodes", "5"]);
  let stopping: Promise<number> | undefined;
  const text = await rawExchange(
    ew.url,
    "GET /api/v1/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    () => false,
    (t) => {
      if (!stopping && t.includes("event: snapshot")) stopping = ew.stop();
    },
  );
  assert.ok(stopping, "the snapshot came");
  assert.equal(await stopping, 0);
  assert.match(text, /^HTTP\/1\.1 200/);
  assert.match(text, /\r\ntransfer-encoding: chunked\r\n/i);
  assert.ok(
    text.endsWith("\r\n0\r\n\r\n"),
    `ends with the last chunk: ${JSON.stringify(text.slice(-40))}`,
  );
});

Deno.test("mock on loopback answers no other Host, so a rebound DNS name cannot read it", async () => {
  const ew = await startEarthworm(["mock", "--port", "0", "--nodes", "3"]);
  try {
    const ask = (host: string) =>
      rawExchange(
        ew.url,
        `GET /api/v1/hearts HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
        (t) => /\r\n\r\n/.test(t),
      );
    assert.match(await ask("attacker.example:8080"), /^HTTP\/1\.1 403/);
    const ok = await ask(new URL(ew.url).host);
    assert.match(ok, /^HTTP\/1\.1 200/);
    assert.match(
      ok,
      /\r\ncontent-security-policy: [^\r]*frame-ancestors 'none'/i,
    );
    assert.match(ok, /\r\nx-content-type-options: nosniff\r\n/i);
  } finally {
    assert.equal(await ew.stop(), 0);
  }
});
