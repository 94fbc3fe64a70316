import assert from "node:assert/strict";
import { checkBundle } from "./build.ts";

Deno.test("committed UI bundle matches a fresh build of the sources", async () => {
  const result = await checkBundle();
  assert.ok(
    result.fresh,
    `ui/dist/app.js is stale (${result.committedBytes} bytes committed, ` +
      `${result.rebuiltBytes} rebuilt): run "deno task build:ui" and commit it`,
  );
  assert.ok(
    result.rebuiltBytes > 50_000,
    "the bundle contains Preact and Chart.js",
  );
});
