/**
 * Validation of loaded Lease documents: finds the Leases in a `List`, a
 * `LeaseList`, the seed format `items: [ {metadata, spec} ]`, a single Lease
 * or a sequence of Leases, checks each field's type and copies only the
 * fields Earthworm reads. Every problem is an {@linkcode InputError} with one
 * line naming the file, the place (the nearest line plus the field path,
 * such as `line 12, items[3].spec.renewTime`) and the fix.
 *
 * @module
 */

import type { InputError } from "../core/errors.ts";
import { inputFileError } from "../core/input_file.ts";
import type { Lease } from "../core/lease_types.ts";

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
  return inputFileError("lease file", file, place, message);
}

/** Quotes a file name or value for a one-line message. */
export function quote(text: string): string {
  return JSON.stringify(text);
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

/** Largest value of the Lease API's int32 fields (`leaseDurationSeconds`, `leaseTransitions`). */
export const MAX_INT32 = 2_147_483_647;

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
  if (v > MAX_INT32) {
    fail(
      w,
      `expected a whole number of at most ${MAX_INT32}, got ${
        describeValue(v)
      }: the Lease API stores it as a 32-bit integer`,
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

/**
 * Parses an RFC 3339 time (`2024-05-01T10:00:00.123456Z`, any fraction, `Z`
 * or an offset) to epoch milliseconds, or undefined when it is not one or
 * falls outside the years 0000-9999 in UTC.
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
  // Date.UTC would read years 0-99 as 1900-1999.
  const date = new Date(0);
  date.setUTCFullYear(y, mo - 1, d);
  date.setUTCHours(h, mi, Math.min(s, 59), 0);
  if (date.getUTCDate() !== d) return undefined;
  const base = date.getTime();
  const fraction = m[7] ? Math.floor(Number(`0${m[7]}`) * 1000) : 0;
  const zone = m[8] ?? "Z";
  let offset = 0;
  if (zone !== "Z" && zone !== "z") {
    const sign = zone.startsWith("-") ? -1 : 1;
    offset = sign *
      (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6))) * 60_000;
  }
  const ms = base + (s === 60 ? 1000 : 0) + fraction - offset;
  // An offset can carry a time out of the years 0000-9999, which RFC 3339
  // cannot write in UTC.
  return ms < MIN_RFC3339_MS || ms > MAX_RFC3339_MS ? undefined : ms;
}

/** 0000-01-01T00:00:00Z, the earliest time RFC 3339 can write. */
const MIN_RFC3339_MS = -62_167_219_200_000;
/** 9999-12-31T23:59:59.999Z, the latest time RFC 3339 can write (to the millisecond). */
const MAX_RFC3339_MS = 253_402_300_799_999;

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
