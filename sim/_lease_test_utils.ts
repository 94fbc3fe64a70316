/**
 * Helpers shared by the Lease file tests of this folder.
 *
 * @module
 */

import assert from "node:assert/strict";
import { InputError } from "../core/errors.ts";
import { parseLeaseDocuments } from "./lease_file.ts";
import { leasesFromDocuments, type LeaseSnapshot } from "./lease_validation.ts";

/** Path of fixture `name` under `tests/testdata/`. */
export function fixture(name: string): string {
  return new URL(`../tests/testdata/${name}`, import.meta.url).pathname;
}

/** Parses `text` as the file `f.yaml` and returns its Lease snapshots. */
export function parse(text: string): LeaseSnapshot[] {
  return leasesFromDocuments(parseLeaseDocuments(text, "f.yaml"));
}

/** Asserts that `fn` throws a one-line InputError whose message matches all `parts`. */
export function assertInputError(
  fn: () => unknown,
  ...parts: (string | RegExp)[]
): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(
    caught instanceof InputError,
    `expected an InputError, got ${caught}`,
  );
  assert.ok(!caught.message.includes("\n"), `not one line: ${caught.message}`);
  for (const part of parts) {
    if (typeof part === "string") {
      assert.ok(
        caught.message.includes(part),
        `"${part}" not in: ${caught.message}`,
      );
    } else assert.match(caught.message, part);
  }
}
