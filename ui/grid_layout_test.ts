import assert from "node:assert/strict";
import { type GridMetrics, gridWindow } from "./grid_layout.ts";

const M: GridMetrics = {
  width: 1000,
  viewportHeight: 600,
  scrollTop: 0,
  minCardWidth: 300,
  rowHeight: 140,
  gap: 10,
  overscan: 1,
};

Deno.test("grid fits as many columns as the width allows", () => {
  assert.equal(gridWindow(10, M).columns, 3);
  assert.equal(gridWindow(10, { ...M, width: 200 }).columns, 1);
});

Deno.test("grid renders only the rows in view plus overscan among thousands", () => {
  const w = gridWindow(6000, { ...M, scrollTop: 150 * 100 + 20 });
  assert.equal(w.rows, 2000);
  assert.equal(w.start, 99 * 3);
  assert.equal(w.end, (100 + 5 + 1) * 3);
  assert.equal(w.offsetTop, 99 * 150);
  assert.equal(w.totalHeight, 2000 * 150 - 10);
  assert.ok(w.end - w.start < 30, "a screenful of cards, not thousands");
});

Deno.test("grid window never runs past the last item", () => {
  const w = gridWindow(7, { ...M, scrollTop: 0 });
  assert.deepEqual([w.start, w.end, w.rows], [0, 7, 3]);
  assert.deepEqual(gridWindow(0, M), {
    columns: 3,
    rows: 0,
    start: 0,
    end: 0,
    offsetTop: 0,
    totalHeight: 0,
    // 600 px show 5 rows of 150 px at most (4 + a partial one each end) and
    // 1 more above and below.
    capacity: 7 * 3,
  });
});

Deno.test("the rendered items of any scroll position have distinct slots", () => {
  const base = {
    width: 1260,
    viewportHeight: 713,
    minCardWidth: 290,
    rowHeight: 150,
    gap: 10,
    overscan: 1,
  };
  for (let scrollTop = 0; scrollTop < 9000; scrollTop += 37) {
    const w = gridWindow(5000, { ...base, scrollTop });
    const slots = new Set<number>();
    for (let i = w.start; i < w.end; i++) slots.add(i % w.capacity);
    assert.equal(slots.size, w.end - w.start, `at scrollTop ${scrollTop}`);
  }
});
