import assert from "node:assert/strict";
import type { HeartsResponse } from "../server/api_types.ts";
import { runEarthworm, startEarthworm } from "./earthworm_process.ts";

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
    assert.equal(body.source.wire?.available, false);
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
