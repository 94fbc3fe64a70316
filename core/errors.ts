/**
 * Errors that callers catch: bad flags ({@linkcode UsageError}) and bad input
 * files ({@linkcode InputError}) end a command with a one-line message and
 * exit code 2; {@linkcode WireUnavailableError} says why eBPF cannot run, and
 * the agent then runs lease-only with that reason.
 *
 * @module
 */

/** A command line that cannot be run as given. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** An input file that cannot be used: the message names the file, the place and the fix. */
export class InputError extends Error {
  override name = "InputError";
}

/** Exit code for usage and input errors. */
export const EXIT_USAGE = 2;

/** Why eBPF is unavailable. */
export type WireUnavailableReason =
  | "unsupported-os"
  | "no-libbpf"
  | "no-btf"
  | "old-kernel"
  | "no-permission"
  | "no-cgroup2"
  | "no-kubelet"
  | "load-failed";

/** eBPF cannot run on this machine; `message` says why and what to do. */
export class WireUnavailableError extends Error {
  override name = "WireUnavailableError";
  /** Machine-readable reason. */
  readonly reason: WireUnavailableReason;

  constructor(reason: WireUnavailableReason, message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.reason = reason;
  }
}
