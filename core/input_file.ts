/**
 * The one guard for files a user names on the command line (lease files,
 * replays, kubeconfigs): only regular files are opened, so a named pipe
 * cannot block the program and a device such as `/dev/zero` cannot fill its
 * memory; the size is checked before reading and again while reading; the
 * text must be UTF-8. Every problem is an {@linkcode InputError} whose one
 * line names the kind of file, the file and the fix:
 * `Cannot read kubeconfig "x": it is a directory: pass a kubeconfig file`.
 *
 * @module
 */

import { InputError } from "./errors.ts";

/** What kind of file is read, for the messages and limits. */
export interface InputFileKind {
  /** The kind of file in messages: `lease file`, `kubeconfig`. */
  what: string;
  /** Largest size read, in bytes. */
  maxBytes: number;
  /** What to pass instead of a directory, empty or binary file: `a kubeconfig file`. */
  expected: string;
  /** The fix for an oversized file. */
  tooLargeFix: string;
  /** The fix for a file that does not exist (default: "check the path"). */
  missingFix?: string;
  /** Whether `-` reads standard input (and so is offered for pipes). */
  stdin?: boolean;
}

/** Builds the one-line error about `file` at `place` (may be empty). */
export function inputFileError(
  what: string,
  file: string,
  place: string,
  message: string,
): InputError {
  const where = place === "" ? "" : `${place}: `;
  return new InputError(
    `Cannot read ${what} ${JSON.stringify(file)}: ${where}${message}`,
  );
}

/** The name of `path` in messages (`standard input` for `-`). */
export function inputFileName(path: string, kind: InputFileKind): string {
  return kind.stdin && path === "-" ? "standard input" : path;
}

/**
 * Reads `path` as UTF-8 text within `kind.maxBytes`; `-` reads standard
 * input when `kind.stdin`. Missing, unreadable, empty, binary, oversized and
 * non-regular files (directories, pipes, devices, sockets) throw an
 * {@linkcode InputError}; a non-regular file is refused before it is opened.
 */
export async function readInputText(
  path: string,
  kind: InputFileKind,
): Promise<string> {
  const bytes = await readInputBytes(path, kind);
  const name = inputFileName(path, kind);
  if (bytes.length === 0) {
    throw inputFileError(
      kind.what,
      name,
      "",
      `the file is empty: pass ${kind.expected}`,
    );
  }
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(
      bytes,
    );
  } catch {
    throw inputFileError(
      kind.what,
      name,
      "",
      `it is not UTF-8 text: pass ${kind.expected}`,
    );
  }
}

/** Reads the bytes of `path` under the rules of {@linkcode readInputText}. */
export async function readInputBytes(
  path: string,
  kind: InputFileKind,
): Promise<Uint8Array> {
  const name = inputFileName(path, kind);
  try {
    if (kind.stdin && path === "-") {
      return await readLimited(Deno.stdin.readable, name, kind);
    }
    const info = await Deno.stat(path);
    const other = nonRegular(info);
    if (other !== undefined) {
      const fix = other === "a directory"
        ? `pass ${kind.expected}`
        : kind.stdin
        ? `pass ${kind.expected}, or pipe it to standard input and pass "-"`
        : `pass ${kind.expected}`;
      throw inputFileError(
        kind.what,
        name,
        "",
        other === "a directory"
          ? `it is a directory: ${fix}`
          : `it is ${other}, not a regular file: ${fix}`,
      );
    }
    if (info.size > kind.maxBytes) throw tooLarge(name, kind);
    const file = await Deno.open(path, { read: true });
    return await readLimited(file.readable, name, kind);
  } catch (err) {
    throw err instanceof InputError ? err : describeReadError(name, err, kind);
  }
}

/** Describes a file that is not a regular file, or undefined when it is one. */
function nonRegular(info: Deno.FileInfo): string | undefined {
  if (info.isFile) return undefined;
  if (info.isDirectory) return "a directory";
  if (info.isFifo) return "a named pipe (FIFO)";
  if (info.isCharDevice) return "a character device";
  if (info.isBlockDevice) return "a block device";
  if (info.isSocket) return "a socket";
  return "not a file";
}

async function readLimited(
  stream: ReadableStream<Uint8Array>,
  name: string,
  kind: InputFileKind,
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of stream) {
    total += chunk.length;
    // Leaving the loop early cancels the stream, which closes the file.
    if (total > kind.maxBytes) throw tooLarge(name, kind);
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

function tooLarge(name: string, kind: InputFileKind): InputError {
  return inputFileError(
    kind.what,
    name,
    "",
    `it is larger than the ${
      formatBytes(kind.maxBytes)
    } limit: ${kind.tooLargeFix}`,
  );
}

/** `64 MiB` for whole mebibytes, else `N bytes`. */
export function formatBytes(n: number): string {
  if (n >= 1024 * 1024 && n % (1024 * 1024) === 0) {
    return `${n / (1024 * 1024)} MiB`;
  }
  return `${n} bytes`;
}

/** Turns an error from opening or reading `name` into a one-line InputError. */
export function describeReadError(
  name: string,
  err: unknown,
  kind: Pick<InputFileKind, "what" | "missingFix">,
): InputError {
  const fail = (message: string) =>
    inputFileError(kind.what, name, "", message);
  if (err instanceof Deno.errors.NotFound) {
    return fail(`it does not exist: ${kind.missingFix ?? "check the path"}`);
  }
  if (err instanceof Deno.errors.PermissionDenied) {
    return fail(
      "permission denied: make the file readable (chmod a+r) or run as its owner",
    );
  }
  if (err instanceof Deno.errors.NotCapable) {
    return fail("Deno is not allowed to read it: run with --allow-read");
  }
  const message = err instanceof Error ? err.message : String(err);
  return fail(`${message.split("\n")[0]}: check that it is a readable file`);
}
