/**
 * Test helper: the check that a command failed on bad input the way
 * PRODUCT.md asks, with exit code 2 and one line on stderr, no stack trace.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { runEarthworm } from "./earthworm_process.ts";

/** Asserts exit code 2 and one stderr line holding every part. */
export function assertOneLineError(
  r: Awaited<ReturnType<typeof runEarthworm>>,
  ...parts: string[]
): void {
  assert.equal(r.timedOut, false, `the command hung: ${r.stderr}`);
  assert.equal(r.code, 2, `exit code, stderr: ${r.stderr}`);
  const lines = r.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, `one line expected:\n${r.stderr}`);
  const line = lines[0] ?? "";
  assert.ok(line.startsWith("earthworm: "), line);
  assert.doesNotMatch(r.stderr, /Stack backtrace|^\s+at |\bat \S+:\d+/m);
  for (const part of parts) {
    assert.ok(line.includes(part), `"${part}" not in: ${line}`);
  }
}
