import assert from "node:assert/strict";
import { InputError } from "./errors.ts";
import {
  describeReadError,
  type InputFileKind,
  readInputText,
} from "./input_file.ts";

const KIND: InputFileKind = {
  what: "test file",
  maxBytes: 100,
  expected: "a test file",
  tooLargeFix: "make it smaller",
};

async function rejection(path: string, kind = KIND): Promise<string> {
  const err = await readInputText(path, kind).then(() => undefined, (e) => e);
  assert.ok(err instanceof InputError, `${path}: ${err}`);
  return err.message;
}

Deno.test("a named pipe is refused before it is opened, so reading it cannot block", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const fifo = `${dir}/pipe`;
    const made = await new Deno.Command("mkfifo", { args: [fifo] }).output();
    assert.equal(made.code, 0);
    assert.equal(
      await rejection(fifo),
      `Cannot read test file "${fifo}": it is a named pipe (FIFO), not a regular file: pass a test file`,
    );
    assert.match(
      await rejection(fifo, { ...KIND, stdin: true }),
      /not a regular file: pass a test file, or pipe it to standard input and pass "-"$/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("devices and directories are refused, and so is a file over the size limit", async () => {
  assert.equal(
    await rejection("/dev/zero"),
    'Cannot read test file "/dev/zero": it is a character device, not a regular file: pass a test file',
  );
  const dir = await Deno.makeTempDir();
  try {
    assert.equal(
      await rejection(dir),
      `Cannot read test file "${dir}": it is a directory: pass a test file`,
    );
    await Deno.writeTextFile(`${dir}/big`, "x".repeat(101));
    assert.equal(
      await rejection(`${dir}/big`),
      `Cannot read test file "${dir}/big": it is larger than the 100 bytes limit: make it smaller`,
    );
    await Deno.writeTextFile(`${dir}/fits`, "x".repeat(100));
    assert.equal(await readInputText(`${dir}/fits`, KIND), "x".repeat(100));
    assert.equal(
      await rejection(`${dir}/missing`, { ...KIND, missingFix: "look again" }),
      `Cannot read test file "${dir}/missing": it does not exist: look again`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("read errors from the operating system and from Deno's sandbox name the fix", () => {
  const kind = { what: "lease file" };
  const denied = describeReadError(
    "x.yaml",
    new Deno.errors.PermissionDenied("EACCES"),
    kind,
  );
  assert.equal(
    denied.message,
    'Cannot read lease file "x.yaml": permission denied: make the file readable (chmod a+r) or run as its owner',
  );
  const sandboxed = describeReadError(
    "x.yaml",
    new Deno.errors.NotCapable("no"),
    kind,
  );
  assert.ok(sandboxed.message.endsWith("run with --allow-read"));
  const other = describeReadError("x.yaml", new Error("EIO\nmore"), kind);
  assert.equal(
    other.message,
    'Cannot read lease file "x.yaml": EIO: check that it is a readable file',
  );
});
