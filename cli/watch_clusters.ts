/**
 * Which clusters `earthworm watch` watches, from its repeatable
 * `--kubeconfig` and `--context` flags:
 *
 * - each `--context` is taken from the first kubeconfig given that defines
 *   it (from the default kubeconfig when none is given);
 * - each kubeconfig given that none of the `--context` flags names a
 *   context of adds its current context;
 * - a cluster is named after its context; a name taken already (two
 *   kubeconfigs whose contexts have the same name) gets `-2`, `-3`, ….
 *
 * @module
 */

import { UsageError } from "../core/errors.ts";

/** What is known of one kubeconfig given (or of the default one). */
export interface KubeconfigContexts {
  /** The `--kubeconfig` path; undefined for the default kubeconfig. */
  path: string | undefined;
  /** The names of its contexts. */
  contexts: readonly string[];
  /** Its current context (undefined when it sets none). */
  current: string | undefined;
}

/** One cluster to watch. */
export interface WatchTarget {
  /** Unique name, shown with its hearts. */
  name: string;
  /** The `--kubeconfig` it is read from; undefined for the default kubeconfig. */
  kubeconfig: string | undefined;
  /** The context of that kubeconfig. */
  context: string;
}

/**
 * Chooses the clusters to watch from the kubeconfigs (in the order given)
 * and the `--context` flags. Throws a UsageError for a context no
 * kubeconfig defines, a context given twice, or a kubeconfig that would add
 * its current context but sets none.
 */
export function chooseWatchTargets(
  kubeconfigs: readonly KubeconfigContexts[],
  contexts: readonly string[],
): WatchTarget[] {
  const wanted = new Map<KubeconfigContexts, string[]>();
  const seen = new Set<string>();
  for (const context of contexts) {
    if (seen.has(context)) {
      throw new UsageError(
        `Context "${context}" is given twice with --context: give each once`,
      );
    }
    seen.add(context);
    const from = kubeconfigs.find((k) => k.contexts.includes(context));
    if (!from) {
      const where = kubeconfigs.map((k) => k.path ?? "the default kubeconfig")
        .join(", ");
      throw new UsageError(
        `Context "${context}" is defined in none of the kubeconfigs (${where}): list theirs with "kubectl config get-contexts"`,
      );
    }
    wanted.set(from, [...wanted.get(from) ?? [], context]);
  }
  const chosen: { kubeconfig: string | undefined; context: string }[] = [];
  for (const k of kubeconfigs) {
    const named = wanted.get(k);
    if (named) {
      for (const context of named) chosen.push({ kubeconfig: k.path, context });
    } else {
      if (k.current === undefined) {
        throw new UsageError(
          `Kubeconfig ${
            k.path ?? "(default)"
          } sets no current-context: name one of its contexts with --context`,
        );
      }
      chosen.push({ kubeconfig: k.path, context: k.current });
    }
  }
  const names = new Set<string>();
  return chosen.map((c) => {
    let name = c.context;
    for (let n = 2; names.has(name); n++) name = `${c.context}-${n}`;
    names.add(name);
    return { name, ...c };
  });
}
