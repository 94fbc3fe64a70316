/**
 * Reads recorded Lease files and validates them into Lease snapshots.
 *
 * Accepted shapes, in YAML or JSON, one or several documents (`---`):
 * - the output of `kubectl get leases -A -o yaml` (a `List`, or a `LeaseList`
 *   from the API), whose `items` are Leases;
 * - the seed format `items: [ {metadata, spec} ]` without `kind`, where the
 *   same Lease may appear many times as successive snapshots;
 * - a single Lease per document, or a top-level sequence of Leases.
 *
 * Every problem becomes an {@linkcode InputError} with one line that names the
 * file, the place (line and column for syntax errors; the nearest line plus
 * the field path such as `items[3].spec.renewTime` for wrong fields, see
 * `lease_validation.ts`) and the fix. Files are read through the guard of
 * `core/input_file.ts`: regular files only (a named pipe would block), at
 * most {@linkcode MAX_LEASE_FILE_BYTES}, checked before reading; the loaded tree is walked with a node budget so a YAML alias
 * bomb ("billion laughs") is rejected instead of hanging the program. Leases
 * without `spec.renewTime` are valid here; the timeline decides what to do
 * with them.
 *
 * @module
 */

import yaml from "js-yaml";
import type { InputError } from "../core/errors.ts";
import { type InputFileKind, readInputText } from "../core/input_file.ts";
import {
  fileError,
  leasesFromDocuments,
  type LeaseSnapshot,
  type ParsedFile,
} from "./lease_validation.ts";

export type { LeaseSnapshot, ParsedFile } from "./lease_validation.ts";

/** Largest lease file read, in bytes (64 MiB). */
export const MAX_LEASE_FILE_BYTES = 64 * 1024 * 1024;

/** Lease files and replays for the file guard of `core/input_file.ts`. */
export const LEASE_FILE: InputFileKind = {
  what: "lease file",
  maxBytes: MAX_LEASE_FILE_BYTES,
  expected: 'a file such as the output of "kubectl get leases -A -o yaml"',
  tooLargeFix: "record fewer snapshots or split the file",
  stdin: true,
};

/**
 * Reads `path` as UTF-8 text, at most `limit` bytes; `-` reads standard
 * input. Missing, unreadable, empty, binary, oversized files, directories,
 * pipes and devices become an {@linkcode InputError}.
 */
export function readLeaseText(
  path: string,
  limit: number = MAX_LEASE_FILE_BYTES,
): Promise<string> {
  return readInputText(path, { ...LEASE_FILE, maxBytes: limit });
}

/**
 * Parses `text` (YAML or JSON, one or several documents) read from `file`.
 * Syntax errors name the line and column; alias bombs are rejected.
 */
export function parseLeaseDocuments(text: string, file: string): ParsedFile {
  const lines = new WeakMap<object, number>();
  const open: number[] = [];
  let documents: unknown[];
  try {
    documents = yaml.loadAll(text, undefined, {
      filename: file,
      schema: yaml.CORE_SCHEMA,
      json: true,
      // Undocumented but stable in js-yaml 4: reports each node as it is
      // composed, which lets field errors name a line.
      listener(event: "open" | "close", state: ListenerState) {
        if (event === "open") open.push(state.line + 1);
        else {
          const line = open.pop();
          const result = state.result;
          if (
            line !== undefined && result !== null && typeof result === "object"
          ) {
            if (!lines.has(result)) lines.set(result, line);
          }
        }
      },
    });
  } catch (err) {
    throw describeYamlError(file, err);
  }
  checkNodeBudget(documents, file, lines, Math.max(100_000, text.length));
  return { file, documents, lines };
}

interface ListenerState {
  line: number;
  result: unknown;
}

function describeYamlError(file: string, err: unknown): InputError {
  const e = err as {
    name?: string;
    reason?: string;
    mark?: { line: number; column: number };
  };
  if (e?.name !== "YAMLException") {
    const message = err instanceof Error ? err.message : String(err);
    return fileError(file, "", `${message.split("\n")[0]}`);
  }
  const place = e.mark
    ? `line ${e.mark.line + 1}, column ${e.mark.column + 1}`
    : "";
  const reason = (e.reason ?? "invalid YAML").split("\n")[0];
  return fileError(
    file,
    place,
    `invalid YAML: ${reason}: fix the syntax there (indentation, quotes, brackets)`,
  );
}

/**
 * Walks every value of `documents`, counting values reached through shared
 * references again, and throws once more than `budget` values were visited:
 * js-yaml loads `*alias` as a shared reference, so a billion-laughs file is
 * small in memory but explodes when anything traverses it.
 */
export function checkNodeBudget(
  documents: unknown[],
  file: string,
  lines: WeakMap<object, number>,
  budget: number,
): void {
  const seen = new WeakSet<object>();
  let firstShared: object | undefined;
  const stack: unknown[] = [...documents];
  let visited = 0;
  while (stack.length > 0) {
    const value = stack.pop();
    if (++visited > budget) {
      const line = firstShared ? lines.get(firstShared) : undefined;
      throw fileError(
        file,
        line === undefined ? "" : `line ${line}`,
        `the YAML expands to more than ${budget} values through aliases (*name), ` +
          `like a "billion laughs" attack: remove the anchors (&name) and aliases, ` +
          `or write the values out`,
      );
    }
    if (value === null || typeof value !== "object") continue;
    if (seen.has(value)) firstShared ??= value;
    else seen.add(value);
    if (Array.isArray(value)) {
      for (const v of value) stack.push(v);
    } else {
      for (const v of Object.values(value)) stack.push(v);
    }
  }
}

/** Reads, parses and validates the Lease file at `path` (`-` for stdin). */
export async function readLeaseFile(path: string): Promise<LeaseSnapshot[]> {
  const text = await readLeaseText(path);
  const name = path === "-" ? "standard input" : path;
  return leasesFromDocuments(parseLeaseDocuments(text, name));
}
