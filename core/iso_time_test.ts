import assert from "node:assert/strict";
import { isoTime, parseIsoTime } from "./iso_time.ts";

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

Deno.test("parseIsoTime reads what Date.parse reads, for every form Kubernetes writes", () => {
  let seed = 7;
  const random = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
  for (let i = 0; i < 20_000; i++) {
    // 1970 to 2400: leap years, centuries, month ends.
    const ms = Math.floor(random() * 13_569_465_600_000);
    const iso = new Date(ms).toISOString();
    const micros = `${iso.slice(0, 23)}${String(i % 1000).padStart(3, "0")}Z`;
    for (
      const text of [
        iso,
        micros,
        `${iso.slice(0, 19)}Z`,
        `${iso.slice(0, 21)}Z`,
        `${iso.slice(0, 22)}Z`,
        `${micros.slice(0, 26)}123Z`,
      ]
    ) assert.equal(parseIsoTime(text), Date.parse(text), text);
  }
});

Deno.test("parseIsoTime leaves other forms and impossible dates to Date.parse", () => {
  for (
    const text of [
      "2026-02-29T00:00:00Z",
      "2024-02-29T23:59:59.999999Z",
      "2026-04-31T00:00:00Z",
      "2026-13-01T00:00:00Z",
      "2026-01-01T24:00:00Z",
      "2026-01-01T10:00:00.Z",
      "2026-01-01T10:00:00+02:00",
      "2026-01-01t10:00:00Z",
      "1969-12-31T23:59:59Z",
      "2026-01-01T10:0a:00Z",
      "2026-01-01T10:00:00.12a4Z",
      "not a time",
      "",
    ]
  ) {
    const want = Date.parse(text);
    const got = parseIsoTime(text);
    assert.ok(
      Number.isNaN(want) ? Number.isNaN(got) : got === want,
      `${text}: ${got} vs ${want}`,
    );
  }
});
