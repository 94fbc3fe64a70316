/**
 * The Lease API's paths and objects: where Leases live on the API server,
 * and the conversion of what it (or client-node) returns into the plain
 * JSON shape of `core/lease_types.ts`.
 *
 * @module
 */

import type { Lease } from "../core/lease_types.ts";

/** Path of the Leases of `namespace`, or of every namespace when undefined. */
export function leasesPath(namespace: string | undefined): string {
  return namespace === undefined
    ? "/apis/coordination.k8s.io/v1/leases"
    : `/apis/coordination.k8s.io/v1/namespaces/${
      encodeURIComponent(namespace)
    }/leases`;
}

/** Path of the Lease `namespace/name`. */
export function leasePath(namespace: string, name: string): string {
  return `${leasesPath(namespace)}/${encodeURIComponent(name)}`;
}

/**
 * Field selector of the liveness read: a name no Lease can have (names are
 * DNS subdomains, without underscores), so the answer is an empty list.
 */
export const LIVENESS_FIELD_SELECTOR = "metadata.name=_earthworm_liveness_";

/**
 * Query of the liveness read: a Lease list from the API server's watch cache
 * (`resourceVersion=0`, so it answers while etcd is down) that matches
 * nothing. The cache ignores `limit` for such lists, so the selector is what
 * keeps the answer small with thousands of Leases.
 */
export function livenessQuery(): URLSearchParams {
  return new URLSearchParams({
    resourceVersion: "0",
    fieldSelector: LIVENESS_FIELD_SELECTOR,
    limit: "1",
  });
}

function str(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (v instanceof Date) return v.toISOString().replace(".000Z", "Z");
  return undefined;
}

function num(v: unknown): number | undefined {
  return typeof v === "number" ? v : undefined;
}

/**
 * Converts a Lease from the API (raw JSON or a client-node model whose
 * timestamps may be `Date`s) into the plain JSON shape of `lease_types.ts`.
 * MicroTime fields stay the exact strings the server sent, so equal renewals
 * compare equal.
 */
export function toLease(obj: unknown, fallbackNamespace = ""): Lease {
  const o = (obj ?? {}) as Record<string, Record<string, unknown> | undefined>;
  const m = o.metadata ?? {};
  const lease: Lease = {
    metadata: {
      name: str(m.name) ?? "",
      namespace: str(m.namespace) ?? fallbackNamespace,
    },
  };
  const rv = str(m.resourceVersion);
  if (rv !== undefined) lease.metadata.resourceVersion = rv;
  const uid = str(m.uid);
  if (uid !== undefined) lease.metadata.uid = uid;
  const created = str(m.creationTimestamp);
  if (created !== undefined) lease.metadata.creationTimestamp = created;
  const s = o.spec;
  if (s) {
    lease.spec = {
      holderIdentity: str(s.holderIdentity) ?? null,
      leaseDurationSeconds: num(s.leaseDurationSeconds) ?? null,
      acquireTime: str(s.acquireTime) ?? null,
      renewTime: str(s.renewTime) ?? null,
      leaseTransitions: num(s.leaseTransitions) ?? null,
    };
  }
  return lease;
}
