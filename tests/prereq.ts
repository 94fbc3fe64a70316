/**
 * Prerequisites of tests that need something a laptop may lack (root, a
 * kernel with BTF, Go and the built control plane, Chromium, helm,
 * promtool). On a laptop a missing prerequisite skips the test with its
 * reason; under `CI=true` the test runs anyway and fails with that reason, so
 * CI never skips silently.
 *
 * Name such tests with a prefix (`ebpf: `, `cluster: `, `browser: `,
 * `image: `, `cc: `, `helm: `, `promtool: `) so `.ci/run` can check that
 * none of them was ignored; it lists `compile: ` skips without failing (no
 * Deno runtime to embed here).
 *
 * @module
 */

/** Whether this run is CI (`CI=true`). */
export const IN_CI: boolean = Deno.env.get("CI") === "true";

/** A checked prerequisite. */
export interface Prereq {
  /** Pass as `ignore` to `Deno.test`. */
  ignore: boolean;
  /** Call first in the test body: throws the reason when the prerequisite is missing. */
  check(): void;
}

const reported = new Set<string>();

/**
 * Describes prerequisite `what`: `reason` is null when it is present, else
 * why it is missing and how to provide it.
 */
export function prereq(what: string, reason: string | null): Prereq {
  if (reason !== null && !IN_CI && !reported.has(what)) {
    reported.add(what);
    console.error(`skipping tests that need ${what}: ${reason}`);
  }
  return {
    ignore: reason !== null && !IN_CI,
    check() {
      if (reason !== null) {
        throw new Error(`${what} is required (CI=true): ${reason}`);
      }
    },
  };
}

/** Returns null when `path` is an executable file, else a reason. */
export function executableMissing(path: string, hint: string): string | null {
  try {
    const info = Deno.statSync(path);
    if (info.isFile && ((info.mode ?? 0o111) & 0o111) !== 0) return null;
    return `"${path}" is not an executable file: ${hint}`;
  } catch {
    return `"${path}" does not exist: ${hint}`;
  }
}

/** Returns null when running as root, else a reason. */
export function rootMissing(): string | null {
  return Deno.uid() === 0 ? null : "needs root (run the tests with sudo)";
}

/** Whether `cmd` is an executable on PATH. */
export function onPath(cmd: string): boolean {
  return (Deno.env.get("PATH") ?? "").split(":").some((dir) => {
    try {
      return Deno.statSync(`${dir}/${cmd}`).isFile;
    } catch {
      return false;
    }
  });
}
