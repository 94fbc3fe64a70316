/**
 * The program is one artefact: the single-file bundle of main.ts runs with
 * nothing else on disk (UI and eBPF object embedded), and `deno compile`
 * builds the binary where a Deno runtime (DENORT_BIN) is at hand.
 */
import assert from "node:assert/strict";
import type { HeartsResponse } from "../core/api_types.ts";
import { startEarthworm } from "./earthworm_process.ts";

const ROOT = new URL("..", import.meta.url).pathname;

async function deno(args: string[], cwd = ROOT) {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd,
    env: { NO_COLOR: "1" },
    stdin: "null",
  }).output();
  const d = new TextDecoder();
  return {
    code: out.code,
    stdout: d.decode(out.stdout),
    stderr: d.decode(out.stderr),
  };
}

Deno.test("the single-file bundle runs mock mode with nothing else on disk", async () => {
  const dir = await Deno.makeTempDir({ prefix: "earthworm-bundle-" });
  try {
    const built = await deno([
      "bundle",
      "--platform",
      "deno",
      "--minify",
      "-o",
      `${dir}/earthworm.js`,
      "main.ts",
    ]);
    assert.equal(built.code, 0, built.stderr);
    const run = `${dir}/run`;
    await Deno.mkdir(run);
    await Deno.rename(`${dir}/earthworm.js`, `${run}/earthworm.js`);
    const entries = [...Deno.readDirSync(run)].map((e) => e.name);
    assert.deepEqual(entries, ["earthworm.js"]);
    const size = Deno.statSync(`${run}/earthworm.js`).size;
    console.error(`bundle: ${(size / 1e6).toFixed(2)} MB`);
    const ew = await startEarthworm(["mock", "--port", "0", "--nodes", "3"], {
      entry: `${run}/earthworm.js`,
      cwd: run,
    });
    try {
      const hearts = await (await fetch(`${ew.url}/api/v1/hearts`))
        .json() as HeartsResponse;
      assert.equal(hearts.hearts.filter((h) => h.kind === "node").length, 3);
      const page = await (await fetch(`${ew.url}/`)).text();
      assert.match(page, /src="\/app.js"/);
      const app = await (await fetch(`${ew.url}/app.js`)).text();
      assert.equal(app, await Deno.readTextFile(`${ROOT}ui/dist/app.js`));
    } finally {
      assert.equal(await ew.stop(), 0);
    }
    // The eBPF object travels inside, inlined as base64 bytes.
    const embedded = await Deno.readFile(`${ROOT}bpf/heartbeat.bpf.o`);
    const bundle = await Deno.readTextFile(`${run}/earthworm.js`);
    const b64 = btoa(String.fromCharCode(...embedded.subarray(0, 3000)));
    assert.ok(
      bundle.includes(b64.slice(0, 4000 - (4000 % 4))),
      "the bundle embeds bpf/heartbeat.bpf.o",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const denort = Deno.env.get("DENORT_BIN");
Deno.test({
  name: "compile: deno compile builds the earthworm binary",
  ignore: !denort,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "earthworm-compile-" });
    try {
      const built = await deno([
        "task",
        "compile",
        "--output",
        `${dir}/earthworm`,
      ]);
      assert.equal(built.code, 0, built.stderr);
      const out = await new Deno.Command(`${dir}/earthworm`, {
        args: ["--version"],
        cwd: dir,
      }).output();
      assert.match(new TextDecoder().decode(out.stdout), /^earthworm \d/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
if (!denort) {
  console.error(
    "skipping the deno compile test: DENORT_BIN is not set, and deno compile cannot download its runtime here",
  );
}
