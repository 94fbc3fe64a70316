import assert from "node:assert/strict";
import type { Timeline } from "../sim/timeline.ts";
import { configureLogger } from "../core/log.ts";
import { InputError, UsageError } from "../core/errors.ts";
import { PARSE_LEASES_HELP, parseLeasesCommand } from "./parse_leases.ts";

const fixture = (name: string) =>
  new URL(`../tests/testdata/${name}`, import.meta.url).pathname;

async function quietly<T>(fn: () => Promise<T>): Promise<T> {
  configureLogger({ level: "error" });
  try {
    return await fn();
  } finally {
    configureLogger({ level: "info" });
  }
}

Deno.test("parse-leases writes the timeline to the file given with --output", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const out = `${dir}/t.json`;
    const code = await quietly(() =>
      parseLeasesCommand([fixture("leases_multi_doc.yaml"), "--output", out])
    );
    assert.equal(code, 0);
    const timeline = JSON.parse(await Deno.readTextFile(out)) as Timeline;
    assert.equal(timeline.source, fixture("leases_multi_doc.yaml"));
    assert.deepEqual(
      timeline.events.map((e) => e.offsetMs),
      [0, 3000, 5997, 10000, 13000, 15997, 20000, 23000, 26396],
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("parse-leases turns bad arguments into usage errors", async () => {
  const cases: [string[], string][] = [
    [[], "Missing the lease file"],
    [["a.yaml", "b.yaml"], "reads one file, got 2"],
    [["a.yaml", "--nodes", "3"], 'Unknown flag "--nodes"'],
    [
      ["a.yaml", "-o", ""],
      'Flag "--output" of "earthworm parse-leases" needs a file name',
    ],
  ];
  for (const [args, part] of cases) {
    await assert.rejects(
      parseLeasesCommand(args),
      (err: unknown) => err instanceof UsageError && err.message.includes(part),
      part,
    );
  }
});

Deno.test("parse-leases turns a bad file into an input error", async () => {
  await assert.rejects(
    parseLeasesCommand([fixture("bad_duration_string.yaml")]),
    (err: unknown) =>
      err instanceof InputError &&
      err.message.includes("items[1].spec.leaseDurationSeconds"),
  );
});

Deno.test("the parse-leases help names the accepted inputs and the flag", () => {
  assert.match(
    PARSE_LEASES_HELP,
    /^Usage: earthworm parse-leases FILE \[-o OUT\]/,
  );
  for (
    const part of [
      "kubectl get leases -A -o yaml",
      "---",
      "items: [",
      "-o, --output OUT",
    ]
  ) {
    assert.ok(PARSE_LEASES_HELP.includes(part), part);
  }
});
