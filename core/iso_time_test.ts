import assert from "node:assert/strict";
import { isoTime } from "./iso_time.ts";

Deno.test("isoTime writes exactly what toISOString writes", () => {
  const cases = [
    0,
    1,
    999,
    86_399_999,
    86_400_000,
    Date.parse("2026-03-01T10:00:00.123Z"),
    Date.parse("2026-12-31T23:59:59.999Z"),
    Date.parse("2028-02-29T12:34:56.789Z"),
    1.7,
    Date.parse("2026-03-01T10:00:00.123Z") + 0.9,
    253_402_300_799_999,
  ];
  let seed = 7;
  for (let i = 0; i < 2000; i++) {
    seed = (seed * 16807) % 2147483647;
    cases.push((seed / 2147483647) * 4_102_444_800_000);
  }
  for (const ms of cases) {
    assert.equal(isoTime(ms), new Date(ms).toISOString(), String(ms));
  }
});

Deno.test("isoTime falls back to toISOString outside years 1970 to 9999 and rejects invalid times", () => {
  for (const ms of [-1, -86_400_001.5, 253_402_300_800_000, 8.64e15]) {
    assert.equal(isoTime(ms), new Date(ms).toISOString());
  }
  assert.throws(() => isoTime(NaN), RangeError);
  assert.throws(() => isoTime(Infinity), RangeError);
});
