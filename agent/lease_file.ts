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
 * the field path such as `items[3].spec.renewTime` for wrong fields) and the
 * fix. Files are limited to {@linkcode MAX_LEASE_FILE_BYTES}, checked before
 * reading, and the loaded tree is walked with a node budget so a YAML alias
 * bomb ("billion laughs") is rejected instead of hanging the program. Leases
 * without `spec.renewTime` are valid here; the timeline decides what to do
 * with them.
 *
 * @module
 */

import yaml from "js-yaml";
import { InputError } from "../cli/errors.ts";
import type { Lease } from "./lease_types.ts";

/** Largest lease file read, in bytes (64 MiB). */
export const MAX_LEASE_FILE_BYTES = 64 * 1024 * 1024;

/** One validated Lease as it appeared in a file, with where it came from. */
export interface LeaseSnapshot {
  /** The Lease, reduced to the fields Earthworm reads. */
  lease: Lease;
  /** Where it is in the file, e.g. `line 12, items[3]`. */
  place: string;
  /** Index among all snapshots of the file (file order). */
  index: number;
}

/** Parsed documents of a file, with the line of each mapping and sequence. */
export interface ParsedFile {
  /** Name of the file in messages. */
  file: string;
  /** The YAML/JSON documents, in order (null for empty documents). */
  documents: unknown[];
  /** 1-based line where each loaded mapping or sequence starts. */
  lines: WeakMap<object, number>;
}

/** Builds the one-line error for `file` at `place` (may be empty). */
export function fileError(
  file: string,
  place: string,
  message: string,
): InputError {
  const where = place === "" ? "" : `${place}: `;
  return new InputError(
    `Cannot read lease file ${quote(file)}: ${where}${message}`,
  );
}

/** Quotes a file name or value for a one-line message. */
export function quote(text: string): string {
  return JSON.stringify(text);
}

/**
 * Reads `path` as UTF-8 text, at most `limit` bytes; `-` reads standard
 * input. Missing, unreadable, empty, binary, oversized files and directories
 * become an {@linkcode InputError}.
 */
export async function readLeaseText(
  path: string,
  limit: number = MAX_LEASE_FILE_BYTES,
): Promise<string> {
  const name = path === "-" ? "standard input" : path;
  let bytes: Uint8Array;
  try {
    if (path === "-") {
      bytes = await readStream(Deno.stdin.readable, name, limit);
    } else {
      const info = await Deno.stat(path);
      if (info.isDirectory) {
        throw fileError(
          name,
          "",
          'it is a directory: pass a file, such as the output of "kubectl get leases -A -o yaml"',
        );
      }
      if (info.isFile && info.size > limit) throw tooLarge(name, limit);
      const file = await Deno.open(path, { read: true });
      bytes = await readStream(file.readable, name, limit);
    }
  } catch (err) {
    throw err instanceof InputError ? err : describeReadError(name, err);
  }
  if (bytes.length === 0) {
    throw fileError(
      name,
      "",
      'the file is empty: pass the output of "kubectl get leases -A -o yaml"',
    );
  }
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(
      bytes,
    );
  } catch {
    throw fileError(
      name,
      "",
      "it is not UTF-8 text: pass a YAML or JSON file of Leases",
    );
  }
}

async function readStream(
  stream: ReadableStream<Uint8Array>,
  name: string,
  limit: number,
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of stream) {
    total += chunk.length;
    // Leaving the loop early cancels the stream, which closes the file.
    if (total > limit) throw tooLarge(name, limit);
    chunks.push(chunk);
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

function tooLarge(name: string, limit: number): InputError {
  return fileError(
    name,
    "",
    `it is larger than the ${
      formatBytes(limit)
    } limit: record fewer snapshots or split the file`,
  );
}

function formatBytes(n: number): string {
  if (n >= 1024 * 1024 && n % (1024 * 1024) === 0) {
    return `${n / (1024 * 1024)} MiB`;
  }
  return `${n} bytes`;
}

/** Turns an error from opening or reading `name` into a one-line InputError. */
export function describeReadError(name: string, err: unknown): InputError {
  if (err instanceof Deno.errors.NotFound) {
    return fileError(name, "", "it does not exist: check the path");
  }
  if (err instanceof Deno.errors.PermissionDenied) {
    return fileError(
      name,
      "",
      "permission denied: make the file readable (chmod a+r) or run as its owner",
    );
  }
  if (err instanceof Deno.errors.NotCapable) {
    return fileError(
      name,
      "",
      "Deno is not allowed to read it: run with --allow-read",
    );
  }
  const message = err instanceof Error ? err.message : String(err);
  return fileError(
    name,
    "",
    `${message.split("\n")[0]}: check that it is a readable file`,
  );
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

/** Returns the 1-based line of `value` in `parsed`, if known. */
function lineOf(parsed: ParsedFile, value: unknown): number | undefined {
  return value !== null && typeof value === "object"
    ? parsed.lines.get(value)
    : undefined;
}

/** A place in a parsed file: the field path and the nearest value with a line. */
export interface Where {
  /** The file being validated. */
  parsed: ParsedFile;
  /** `document N` in files with several documents, else empty. */
  doc: string;
  /** Field path such as `items[3].spec`. */
  path: string;
  /** The nearest enclosing mapping or sequence (its line is reported). */
  near: unknown;
}

/** The place of the top of document `index` of `parsed`. */
export function documentWhere(parsed: ParsedFile, index: number): Where {
  return {
    parsed,
    doc: parsed.documents.length > 1 ? `document ${index + 1}` : "",
    path: "",
    near: parsed.documents[index],
  };
}

/** The place of field or index `key` (holding `value`) below `where`. */
export function at(where: Where, key: string | number, value: unknown): Where {
  const path = typeof key === "number"
    ? `${where.path}[${key}]`
    : where.path === ""
    ? key
    : `${where.path}.${key}`;
  const near = value !== null && typeof value === "object" &&
      where.parsed.lines.has(value)
    ? value
    : where.near;
  return { ...where, path, near };
}

/** Describes `where` for a message: `line 12, items[3].spec`. */
export function placeOf(where: Where): string {
  const line = lineOf(where.parsed, where.near);
  const parts: string[] = [];
  if (line !== undefined) parts.push(`line ${line}`);
  else if (where.doc !== "") parts.push(where.doc);
  if (where.path !== "") parts.push(where.path);
  return parts.join(", ");
}

/** Throws an InputError about `where`. */
export function fail(where: Where, message: string): never {
  throw fileError(where.parsed.file, placeOf(where), message);
}

const FIX_EXPORT = 'export Leases with "kubectl get leases -A -o yaml"';

/**
 * Finds and validates every Lease in `parsed`, in file order. Throws when the
 * file holds no Lease at all, when a document is not a Lease container, or
 * when a field has the wrong type.
 */
export function leasesFromDocuments(parsed: ParsedFile): LeaseSnapshot[] {
  const out: LeaseSnapshot[] = [];
  parsed.documents.forEach((doc, i) => {
    const where = documentWhere(parsed, i);
    for (const item of leaseItems(doc, where)) {
      const lease = validateLease(item.value, item.where);
      out.push({ lease, place: placeOf(item.where), index: out.length });
    }
  });
  if (out.length === 0) {
    throw fileError(
      parsed.file,
      "",
      `it holds no Lease objects: ${FIX_EXPORT}`,
    );
  }
  return out;
}

function leaseItems(
  doc: unknown,
  where: Where,
): { value: unknown; where: Where }[] {
  if (doc === null || doc === undefined) return [];
  if (Array.isArray(doc)) {
    return doc.map((value, i) => ({ value, where: at(where, i, value) }));
  }
  if (typeof doc !== "object") {
    fail(
      where,
      `expected Leases or a List of Leases, got ${
        describeValue(doc)
      }: ${FIX_EXPORT}`,
    );
  }
  const obj = doc as Record<string, unknown>;
  if ("items" in obj) {
    const kind = obj.kind;
    if (
      kind !== undefined && kind !== "List" && kind !== "LeaseList"
    ) {
      fail(
        at(where, "kind", kind),
        `expected a List of Leases, got kind ${
          typeof kind === "string" ? quote(kind) : describeValue(kind)
        }: ${FIX_EXPORT}`,
      );
    }
    const items = obj.items;
    if (items === null) return [];
    if (!Array.isArray(items)) {
      fail(
        at(where, "items", items),
        `expected a list of Leases, got ${describeValue(items)}`,
      );
    }
    const base = at(where, "items", items);
    return items.map((value, i) => ({ value, where: at(base, i, value) }));
  }
  if ("events" in obj && "version" in obj) {
    fail(
      where,
      'this is already a beat timeline: pass it to "earthworm mock --replay" as it is',
    );
  }
  return [{ value: doc, where }];
}

/**
 * Validates one Lease object at `where` and returns a copy holding only the
 * fields Earthworm reads (so nothing else, such as aliased payloads, is kept).
 */
export function validateLease(value: unknown, where: Where): Lease {
  if (!isRecord(value)) {
    fail(where, `expected a Lease mapping, got ${describeValue(value)}`);
  }
  const kind = value.kind;
  if (kind !== undefined && kind !== "Lease") {
    fail(
      at(where, "kind", kind),
      `expected kind "Lease", got ${
        typeof kind === "string" ? quote(kind) : describeValue(kind)
      }: ${FIX_EXPORT}`,
    );
  }
  const apiVersion = value.apiVersion;
  if (
    apiVersion !== undefined &&
    !(typeof apiVersion === "string" &&
      apiVersion.startsWith("coordination.k8s.io/"))
  ) {
    fail(
      at(where, "apiVersion", apiVersion),
      `expected "coordination.k8s.io/v1", got ${
        describeValue(apiVersion)
      }: ${FIX_EXPORT}`,
    );
  }
  const metaWhere = at(where, "metadata", value.metadata);
  if (value.metadata === undefined || value.metadata === null) {
    fail(
      metaWhere,
      "the Lease has no metadata: add metadata.name and metadata.namespace",
    );
  }
  if (!isRecord(value.metadata)) {
    fail(
      metaWhere,
      `expected a mapping with name and namespace, got ${
        describeValue(value.metadata)
      }`,
    );
  }
  const meta = value.metadata;
  const name = requiredName(meta, "name", metaWhere);
  const namespace = requiredName(meta, "namespace", metaWhere);
  const lease: Lease = {
    apiVersion: "coordination.k8s.io/v1",
    kind: "Lease",
    metadata: { name, namespace },
  };
  const uid = optionalString(meta, "uid", metaWhere);
  if (uid !== undefined) lease.metadata.uid = uid;
  const created = optionalTime(meta, "creationTimestamp", metaWhere);
  if (created) lease.metadata.creationTimestamp = created;
  const rv = meta.resourceVersion;
  if (typeof rv === "string" || typeof rv === "number") {
    lease.metadata.resourceVersion = String(rv);
  }
  const specWhere = at(where, "spec", value.spec);
  if (value.spec === undefined || value.spec === null) return lease;
  if (!isRecord(value.spec)) {
    fail(specWhere, `expected a mapping, got ${describeValue(value.spec)}`);
  }
  const spec = value.spec;
  lease.spec = {};
  const holder = spec.holderIdentity;
  if (holder !== undefined) {
    if (holder !== null && typeof holder !== "string") {
      fail(
        at(specWhere, "holderIdentity", holder),
        `expected a string, got ${
          describeValue(holder)
        }: quote the holder's name`,
      );
    }
    lease.spec.holderIdentity = holder;
  }
  const duration = optionalCount(spec, "leaseDurationSeconds", specWhere, 1);
  if (duration !== undefined) lease.spec.leaseDurationSeconds = duration;
  const transitions = optionalCount(spec, "leaseTransitions", specWhere, 0);
  if (transitions !== undefined) lease.spec.leaseTransitions = transitions;
  const acquire = optionalTime(spec, "acquireTime", specWhere);
  if (acquire !== undefined) lease.spec.acquireTime = acquire;
  const renew = optionalTime(spec, "renewTime", specWhere);
  if (renew !== undefined) lease.spec.renewTime = renew;
  return lease;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function requiredName(
  obj: Record<string, unknown>,
  key: string,
  where: Where,
): string {
  const v = obj[key];
  const w = at(where, key, v);
  if (v === undefined || v === null || v === "") {
    fail(w, `the Lease has no ${key}: add metadata.${key}`);
  }
  if (typeof v !== "string") {
    fail(w, `expected a string, got ${describeValue(v)}: quote it`);
  }
  return v;
}

function optionalString(
  obj: Record<string, unknown>,
  key: string,
  where: Where,
): string | undefined {
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") {
    fail(at(where, key, v), `expected a string, got ${describeValue(v)}`);
  }
  return v;
}

function optionalCount(
  obj: Record<string, unknown>,
  key: string,
  where: Where,
  min: number,
): number | null | undefined {
  const v = obj[key];
  if (v === undefined || v === null) return v;
  const w = at(where, key, v);
  if (typeof v === "string" && /^\s*\d+\s*$/.test(v)) {
    fail(
      w,
      `expected a whole number, got the string ${
        quote(v)
      }: write ${v.trim()} without quotes`,
    );
  }
  if (typeof v !== "number" || !Number.isInteger(v) || v < min) {
    fail(
      w,
      `expected a whole number of at least ${min}, got ${describeValue(v)}`,
    );
  }
  return v;
}

function optionalTime(
  obj: Record<string, unknown>,
  key: string,
  where: Where,
): string | null | undefined {
  const v = obj[key];
  if (v === undefined || v === null) return v;
  const w = at(where, key, v);
  if (typeof v !== "string" || parseRfc3339(v) === undefined) {
    fail(
      w,
      `expected an RFC 3339 time such as "2024-05-01T10:00:00.000000Z", got ${
        describeValue(v)
      }`,
    );
  }
  return v;
}

/** Reads, parses and validates the Lease file at `path` (`-` for stdin). */
export async function readLeaseFile(path: string): Promise<LeaseSnapshot[]> {
  const text = await readLeaseText(path);
  const name = path === "-" ? "standard input" : path;
  return leasesFromDocuments(parseLeaseDocuments(text, name));
}

/**
 * Parses an RFC 3339 time (`2024-05-01T10:00:00.123456Z`, any fraction, `Z`
 * or an offset) to epoch milliseconds, or undefined when it is not one.
 */
export function parseRfc3339(text: string): number | undefined {
  const m =
    /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/
      .exec(text);
  if (!m) return undefined;
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  if (mo < 1 || mo > 12 || h > 23 || mi > 59 || s > 60) return undefined;
  const base = Date.UTC(y, mo - 1, d, h, mi, Math.min(s, 59));
  if (new Date(base).getUTCDate() !== d) return undefined;
  const fraction = m[7] ? Math.floor(Number(`0${m[7]}`) * 1000) : 0;
  const zone = m[8] ?? "Z";
  let offset = 0;
  if (zone !== "Z" && zone !== "z") {
    const sign = zone.startsWith("-") ? -1 : 1;
    offset = sign *
      (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6))) * 60_000;
  }
  return base + (s === 60 ? 1000 : 0) + fraction - offset;
}

/** Describes a loaded value for a message: `the string "40"`, `a list`. */
export function describeValue(value: unknown): string {
  if (value === null) return "null";
  if (value === undefined) return "nothing";
  if (Array.isArray(value)) return "a list";
  switch (typeof value) {
    case "string": {
      const short = value.length > 40 ? `${value.slice(0, 40)}…` : value;
      return `the string ${quote(short)}`;
    }
    case "number":
    case "boolean":
      return `the ${typeof value} ${String(value)}`;
    case "object":
      return "a mapping";
    default:
      return typeof value;
  }
}
