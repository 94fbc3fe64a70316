import assert from "node:assert/strict";
import { microTime } from "./lease_types.ts";

Deno.test("microTime writes six fractional digits like a Kubernetes MicroTime", () => {
  assert.equal(
    microTime(Date.parse("2026-01-01T00:00:01.234Z")),
    "2026-01-01T00:00:01.234000Z",
  );
  assert.equal(microTime(0.9), "1970-01-01T00:00:00.000000Z");
});
