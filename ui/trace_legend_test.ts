import assert from "node:assert/strict";
import { setLang } from "./i18n.ts";
import { gridStepMs, sweepDuration } from "./TraceLegend.tsx";

Deno.test("the legend's time scale matches the cardiograms: 10 s grid lines on 2 and 3 min sweeps", () => {
  assert.equal(gridStepMs(2 * 60_000), 10_000);
  assert.equal(gridStepMs(3 * 60_000), 10_000);
  assert.equal(gridStepMs(20_000), 5_000); // at least four divisions
  assert.equal(sweepDuration(0), "0 s");
  assert.equal(sweepDuration(10_000), "10 s");
  assert.equal(sweepDuration(120_000), "2 min");
  setLang("es");
  try {
    assert.equal(sweepDuration(2_500), "2,5 s");
  } finally {
    setLang("en");
  }
});
