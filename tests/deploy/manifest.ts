/**
 * Reads `deploy/earthworm.yaml` for the deploy tests and holds what the
 * ServiceAccount is allowed to do: the RBAC allow-list, as flat
 * (group, resource, name, verb) grants, that both the manifest check and the
 * effective-rules check on a real API server compare against.
 *
 * @module
 */

import yaml from "js-yaml";

/** Path of the manifest the README tells users to apply. */
export const MANIFEST_PATH =
  new URL("../../deploy/earthworm.yaml", import.meta.url)
    .pathname;

/** Path of the image recipe. */
export const DOCKERFILE_PATH =
  new URL("../../deploy/Dockerfile", import.meta.url)
    .pathname;

/** The ServiceAccount every agent runs as. */
export const SERVICE_ACCOUNT = "system:serviceaccount:earthworm:earthworm";

/** One Kubernetes object as parsed from YAML (loosely typed on purpose). */
// deno-lint-ignore no-explicit-any
export type K8sObject = Record<string, any>;

/** Parses every document of the manifest. */
export function loadManifest(
  text = Deno.readTextFileSync(MANIFEST_PATH),
): K8sObject[] {
  return yaml.loadAll(text).filter((d): d is K8sObject =>
    d !== null && typeof d === "object"
  );
}

/** The one object of `kind` (and `name`, if given); throws when not exactly one. */
export function only(
  docs: K8sObject[],
  kind: string,
  name?: string,
): K8sObject {
  const found = docs.filter((d) =>
    d.kind === kind && (name === undefined || d.metadata?.name === name)
  );
  if (found.length !== 1) {
    throw new Error(
      `Expected one ${kind}${
        name ? ` "${name}"` : ""
      } in the manifest, found ${found.length}`,
    );
  }
  return found[0]!;
}

/** A policy rule as RBAC writes it. */
export interface PolicyRule {
  apiGroups?: string[];
  resources?: string[];
  resourceNames?: string[];
  verbs?: string[];
  nonResourceURLs?: string[];
}

/**
 * Flattens rules into sorted `scope group/resource[/name] verb` strings,
 * one per grant, so two rule sets compare as sets of grants.
 */
export function grants(scope: string, rules: PolicyRule[]): string[] {
  const out = new Set<string>();
  for (const r of rules) {
    if (r.nonResourceURLs?.length) {
      for (const url of r.nonResourceURLs) {
        for (const v of r.verbs ?? []) out.add(`${scope} url:${url} ${v}`);
      }
      continue;
    }
    for (const g of r.apiGroups ?? [""]) {
      for (const res of r.resources ?? []) {
        const names = r.resourceNames?.length ? r.resourceNames : ["*"];
        for (const n of names) {
          for (const v of r.verbs ?? []) {
            out.add(`${scope} ${g || "core"}/${res}/${n} ${v}`);
          }
        }
      }
    }
  }
  return [...out].sort();
}

/**
 * Everything Earthworm's own roles may grant: scope `cluster` for
 * ClusterRoles, `ns:earthworm` for the Role. Widen this only together with
 * the code that needs it, and say why in deploy/earthworm.yaml.
 */
export const ALLOWED_GRANTS: readonly string[] = [
  // The leader lists and watches every Lease (hearts).
  "cluster coordination.k8s.io/leases/* get",
  "cluster coordination.k8s.io/leases/* list",
  "cluster coordination.k8s.io/leases/* watch",
  // The leader checks agents' wire-report tokens.
  "cluster authentication.k8s.io/tokenreviews/* create",
  // The node of an agent's pod, where the TokenReview does not name it.
  "ns:earthworm core/pods/* get",
  // The election Lease: create (cannot be limited by name), then only it;
  // followers watch it by name.
  "ns:earthworm coordination.k8s.io/leases/* create",
  "ns:earthworm coordination.k8s.io/leases/earthworm-leader get",
  "ns:earthworm coordination.k8s.io/leases/earthworm-leader list",
  "ns:earthworm coordination.k8s.io/leases/earthworm-leader watch",
  "ns:earthworm coordination.k8s.io/leases/earthworm-leader patch",
  "ns:earthworm coordination.k8s.io/leases/earthworm-leader update",
].sort();

/**
 * What every authenticated user may do anyway (the default
 * system:basic-user role): self reviews, which a rules review lists too.
 */
export const DEFAULT_AUTHENTICATED_RESOURCES: readonly string[] = [
  "authentication.k8s.io/selfsubjectreviews",
  "authorization.k8s.io/selfsubjectaccessreviews",
  "authorization.k8s.io/selfsubjectrulesreviews",
];

/** The grants of every Role and ClusterRole in the manifest. */
export function manifestGrants(docs: K8sObject[]): string[] {
  const all: string[] = [];
  for (const d of docs) {
    if (d.kind === "ClusterRole") all.push(...grants("cluster", d.rules ?? []));
    if (d.kind === "Role") {
      all.push(...grants(`ns:${d.metadata.namespace}`, d.rules ?? []));
    }
  }
  return [...new Set(all)].sort();
}
