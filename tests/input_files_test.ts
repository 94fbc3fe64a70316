/**
 * End-to-end tests of the input files every command reads (lease files,
 * replays, kubeconfigs) when they are not what they should be: named pipes,
 * devices, huge files, out-of-range values, far-apart dates. The real program
 * runs in a child process with a timeout, so a hang fails the test instead of
 * hanging it.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { HeartsResponse } from "../core/api_types.ts";
import { runEarthworm, startEarthworm } from "./earthworm_process.ts";
import { assertOneLineError } from "./one_line_error.ts";

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "earthworm-inputs-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function mkfifo(path: string): Promise<void> {
  const out = await new Deno.Command("mkfifo", { args: [path] }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
}

Deno.test("a named pipe given as lease file, replay or kubeconfig is refused with one line instead of hanging", async () => {
  await withDir(async (dir) => {
    const fifo = `${dir}/leases.fifo`;
    await mkfifo(fifo);
    const cases: [string[], string][] = [
      [["parse-leases", fifo], "lease file"],
      [["mock", "--port", "0", "--replay", fifo], "lease file"],
      [["watch", "--port", "0", "--kubeconfig", fifo], "kubeconfig"],
      [
        ["agent", "--port", "0", "--no-ebpf", "--kubeconfig", fifo],
        "kubeconfig",
      ],
    ];
    for (const [args, what] of cases) {
      const r = await runEarthworm(args, { timeoutMs: 20_000 });
      assertOneLineError(
        r,
        `Cannot read ${what} "${fifo}"`,
        "it is a named pipe (FIFO), not a regular file",
      );
    }
  });
});

Deno.test("a named pipe is refused with a pointer to standard input where the command reads it", async () => {
  await withDir(async (dir) => {
    const fifo = `${dir}/leases.fifo`;
    await mkfifo(fifo);
    const r = await runEarthworm(["parse-leases", fifo], { timeoutMs: 20_000 });
    assertOneLineError(r, 'pipe it to standard input and pass "-"');
  });
});

Deno.test("a device or an oversized file given as kubeconfig is refused before it is read", async () => {
  const zero = await runEarthworm(
    ["watch", "--port", "0", "--kubeconfig", "/dev/zero"],
    { timeoutMs: 20_000 },
  );
  assertOneLineError(
    zero,
    'Cannot read kubeconfig "/dev/zero"',
    "it is a character device, not a regular file",
  );
  await withDir(async (dir) => {
    const path = `${dir}/config`;
    const file = await Deno.open(path, { create: true, write: true });
    await file.truncate(4 * 1024 * 1024 + 1);
    file.close();
    const r = await runEarthworm(
      ["agent", "--port", "0", "--no-ebpf", "--kubeconfig", path],
      { timeoutMs: 20_000 },
    );
    assertOneLineError(
      r,
      `Cannot read kubeconfig "${path}"`,
      "larger than the 4 MiB limit",
    );
  });
});

Deno.test("a lease duration above the 32-bit range of the Lease API is rejected", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/leases.yaml`;
    await Deno.writeTextFile(
      path,
      `items:
- metadata: {name: a, namespace: kube-node-lease}
  spec: {leaseDurationSeconds: 2147483648, renewTime: "2024-05-01T10:00:00Z"}
`,
    );
    const r = await runEarthworm(["parse-leases", path], { timeoutMs: 20_000 });
    assertOneLineError(
      r,
      `"${path}"`,
      "items[0].spec.leaseDurationSeconds",
      "at most 2147483647",
    );
  });
});

Deno.test("a replay whose dates are millennia apart plays with the silence shortened, and keeps running", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/far.yaml`;
    await Deno.writeTextFile(
      path,
      `items:
- metadata: {name: old, namespace: kube-node-lease}
  spec: {holderIdentity: old, leaseDurationSeconds: 40, renewTime: "1970-01-01T00:00:00.000000Z", acquireTime: "1970-01-01T00:00:00Z"}
- metadata: {name: new, namespace: kube-node-lease}
  spec: {holderIdentity: new, leaseDurationSeconds: 40, renewTime: "9999-12-31T23:59:59.999999Z", acquireTime: "1970-01-01T00:00:00Z"}
`,
    );
    // At 1000× speed a 5-minute gap lasts 0.3 s: several rounds of the loop
    // pass while the test watches.
    const ew = await startEarthworm([
      "mock",
      "--port",
      "0",
      "--speed",
      "1000",
      "--replay",
      path,
    ]);
    try {
      let body: HeartsResponse | undefined;
      for (let i = 0; i < 50; i++) {
        body = await (await fetch(`${ew.url}/api/v1/hearts`))
          .json() as HeartsResponse;
        if (body.hearts.filter((h) => h.beats >= 2).length === 2) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.deepEqual(
        body?.hearts.map((h) => [h.id, h.beats >= 2]).sort(),
        [["kube-node-lease/new", true], ["kube-node-lease/old", true]],
      );
      assert.equal(ew.child.pid > 0, true);
    } finally {
      assert.equal(await ew.stop(), 0, ew.stderr());
    }
    assert.doesNotMatch(ew.stderr(), /TimeoutOverflowWarning|Invalid time/);
    assert.match(
      ew.stderr(),
      /WARN .*replay: .*silent for 2932896 days .*as 5 minutes/,
    );
  });
});
