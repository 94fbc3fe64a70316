/**
 * Errors that end a command with a one-line message and exit code 2: bad
 * flags ({@linkcode UsageError}) and bad input files ({@linkcode InputError}).
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
