/**
 * Geometry of the overview's virtual grid: how many columns fit and which
 * rows are visible, so only the cards on screen are rendered and only they
 * own a chart.
 *
 * @module
 */

/** Sizes of the grid, in CSS pixels. */
export interface GridMetrics {
  width: number;
  viewportHeight: number;
  scrollTop: number;
  minCardWidth: number;
  rowHeight: number;
  gap: number;
  /** Extra rows rendered above and below the viewport. */
  overscan: number;
}

/** Which items to render and how tall the whole grid is. */
export interface GridWindow {
  columns: number;
  rows: number;
  /** Index of the first rendered item. */
  start: number;
  /** Index after the last rendered item. */
  end: number;
  /** Offset of the first rendered row from the top of the grid. */
  offsetTop: number;
  totalHeight: number;
  /**
   * The most items a window of these sizes holds, wherever it is scrolled:
   * item `i` can render in slot `i % capacity`, and no two rendered items
   * share a slot.
   */
  capacity: number;
}

/** Computes the visible window of a grid of `count` items. */
export function gridWindow(count: number, m: GridMetrics): GridWindow {
  const columns = Math.max(
    1,
    Math.floor((m.width + m.gap) / (m.minCardWidth + m.gap)),
  );
  const rows = Math.ceil(count / columns);
  const pitch = m.rowHeight + m.gap;
  const firstRow = Math.max(0, Math.floor(m.scrollTop / pitch) - m.overscan);
  const lastRow = Math.min(
    rows,
    Math.ceil((m.scrollTop + m.viewportHeight) / pitch) + m.overscan,
  );
  return {
    columns,
    rows,
    start: Math.min(count, firstRow * columns),
    end: Math.min(count, lastRow * columns),
    offsetTop: firstRow * pitch,
    totalHeight: Math.max(0, rows * pitch - m.gap),
    capacity: (Math.ceil(m.viewportHeight / pitch) + 1 + 2 * m.overscan) *
      columns,
  };
}
