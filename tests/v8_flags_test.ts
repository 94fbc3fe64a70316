/**
 * Every launch of Earthworm passes the same V8 flags ({@linkcode V8_FLAGS}):
 * the tasks users run, the compile step (which bakes them into the binary)
 * and the image's launcher, as the tests' own launches do. A launch site that
 * drifts would run with the collector's default growth and hold several
 * times the memory the README quotes.
 */
import assert from "node:assert/strict";
import { MALLOC_ENV, V8_FLAGS } from "./earthworm_process.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const read = (path: string) => Deno.readTextFileSync(`${ROOT}${path}`);

Deno.test("every launch of earthworm passes the same V8 flags", () => {
  const tasks = (JSON.parse(read("deno.json")) as {
    tasks: Record<string, string>;
  }).tasks;
  for (const name of ["mock", "earthworm", "compile"]) {
    const task = tasks[name] ?? "";
    assert.ok(
      task.split(" ").includes(V8_FLAGS),
      `deno.json task "${name}" passes ${V8_FLAGS}: ${task}`,
    );
  }
  const launcher = read("deploy/launcher.c");
  const prefix = launcher.match(/PREFIX\[\] = \{([^}]*)\}/)?.[1] ?? "";
  assert.ok(
    prefix.includes(`"${V8_FLAGS}"`),
    `deploy/launcher.c runs deno with ${V8_FLAGS}: ${prefix}`,
  );
  const compile =
    read("deploy/build_image.sh").split("\n").find((l) =>
      l.includes('"$deno" compile')
    ) ?? "";
  assert.ok(
    compile.split(" ").includes(V8_FLAGS),
    `deploy/build_image.sh compiles with ${V8_FLAGS}: ${compile}`,
  );
});

Deno.test("every launch of earthworm runs with the same allocator settings", () => {
  const tasks = (JSON.parse(read("deno.json")) as {
    tasks: Record<string, string>;
  }).tasks;
  const image = read("deploy/build_image.sh");
  for (const [name, value] of Object.entries(MALLOC_ENV)) {
    for (const task of ["mock", "earthworm"]) {
      assert.ok(
        (tasks[task] ?? "").split(" ").includes(`${name}=${value}`),
        `deno.json task "${task}" sets ${name}=${value}`,
      );
    }
    assert.ok(
      image.includes(`--config.env ${name}=${value} `),
      `deploy/build_image.sh puts ${name}=${value} in the image's environment`,
    );
  }
});
