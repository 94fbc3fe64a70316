/**
 * Finds the metric names a PromQL expression reads, for the tests that check
 * the alert rules and the Grafana dashboard against the metrics Earthworm
 * exposes. A small scanner, not a parser: it drops strings, label matchers,
 * ranges, label lists (`by`, `without`, `on`, `ignoring`, `group_*`),
 * numbers, durations and Grafana variables, then keeps the identifiers that
 * are neither keywords nor followed by `(` (functions and aggregations).
 *
 * @module
 */

const KEYWORDS = new Set([
  "and",
  "or",
  "unless",
  "bool",
  "offset",
  "by",
  "without",
  "on",
  "ignoring",
  "group_left",
  "group_right",
  "inf",
  "nan",
]);

/** The metric names `expr` selects, sorted and without repeats. */
export function metricNames(expr: string): string[] {
  const s = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, " ")
    .replace(/\[[^\]]*\]/g, " ")
    .replace(
      /\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g,
      " ",
    )
    .replace(/\$\{?\w+\}?/g, " ")
    .replace(/(?<![\w:])\d+(\.\d+)?([eE][+-]?\d+)?[a-z]*/g, " ");
  const names = new Set<string>();
  for (const m of s.matchAll(/[a-zA-Z_:][\w:]*/g)) {
    const word = m[0];
    if (KEYWORDS.has(word.toLowerCase())) continue;
    if (s.slice(m.index + word.length).trimStart().startsWith("(")) continue;
    names.add(word);
  }
  return [...names].sort();
}

/**
 * The metric of a Grafana `label_values(metric, label)` variable query, or
 * none for `label_values(label)`.
 */
export function labelValuesMetrics(query: string): string[] {
  const m = /label_values\(\s*([^,()]+(?:\{[^}]*\})?)\s*,/.exec(query);
  return m ? metricNames(m[1]!) : [];
}

/** Metric names in Prometheus text exposition (`# TYPE` lines). */
export function exposedNames(text: string): string[] {
  return [...text.matchAll(/^# TYPE (\S+) \S+$/gm)].map((m) => m[1]!).sort();
}
