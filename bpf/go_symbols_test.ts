import assert from "node:assert/strict";
import { GoBinary, GoBinaryError } from "./go_symbols.ts";
import { prereq } from "../tests/prereq.ts";
import { onPath } from "../tests/prereq.ts";

// The fixture: tests/wire/h2echo (standard library only, uses crypto/tls),
// built here twice from the same source: stripped like a release kubelet,
// and with its symbol table so `go tool objdump` can disassemble it.
const SOURCE = new URL("../tests/wire/h2echo/", import.meta.url).pathname;
const go = prereq(
  "a Go toolchain",
  onPath("go") ? null : "Go is not installed: install Go 1.22+",
);
const TLS_METHODS = [
  "crypto/tls.(*Conn).Read",
  "crypto/tls.(*Conn).Write",
  "crypto/tls.(*Conn).Close",
];

async function run(cmd: string, args: string[], cwd = "."): Promise<string> {
  const out = await new Deno.Command(cmd, {
    args,
    cwd,
    stdout: "piped",
    stderr: "piped",
    env: { CGO_ENABLED: "0" },
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(
      `${cmd} ${args.join(" ")} failed: ${
        new TextDecoder().decode(out.stderr)
      }`,
    );
  }
  return text;
}

let built: Promise<{ dir: string; stripped: string; full: string }> | null =
  null;

/** Builds both fixtures once per test run. */
function fixtures() {
  built ??= (async () => {
    const dir = await Deno.makeTempDir({ prefix: "earthworm-gosym-" });
    const stripped = `${dir}/h2echo`, full = `${dir}/h2echo-full`;
    await run("go", [
      "build",
      "-trimpath",
      "-ldflags=-s -w",
      "-o",
      stripped,
      ".",
    ], SOURCE);
    await run("go", ["build", "-trimpath", "-o", full, "."], SOURCE);
    return { dir, stripped, full };
  })();
  return built;
}

/** RET addresses per function, from `go tool objdump`. */
function objdumpRets(text: string): Map<string, number[]> {
  const rets = new Map<string, number[]>();
  let current: number[] = [];
  for (const line of text.split("\n")) {
    if (line.startsWith("TEXT ")) {
      current = [];
      rets.set(line.slice(5, line.lastIndexOf("(SB)")), current);
      continue;
    }
    const m = /^\s+\S+\s+0x([0-9a-f]+)\s+c3\s+RET\b/.exec(line);
    if (m) current.push(parseInt(m[1]!, 16));
  }
  return rets;
}

Deno.test({
  name:
    "a stripped Go binary still yields crypto/tls methods, the Go version and file offsets",
  ignore: go.ignore,
  async fn() {
    go.check();
    const { stripped } = await fixtures();
    using bin = GoBinary.open(stripped);
    assert.equal(bin.arch, "amd64");
    assert.ok(!bin.sections.has(".symtab"), "-s removed the symbol table");
    const version = (await run("go", ["env", "GOVERSION"])).trim();
    assert.equal(bin.goVersion, version);
    assert.ok(bin.functionCount > 1000);
    const text = bin.sections.get(".text")!;
    for (const name of TLS_METHODS) {
      const fn = bin.func(name);
      assert.ok(fn, `${name} is in the pclntab`);
      assert.ok(fn.entry >= text.addr && fn.end <= text.addr + text.size);
      // The bytes at the file offset are the function's: Go's stack check,
      // CMPQ SP, 16(R14) or (a larger frame) LEAQ -n(SP), R12.
      const off = bin.fileOffset(fn.entry);
      const bytes = [...Deno.readFileSync(stripped).subarray(off, off + 3)];
      assert.ok(
        ["49,3b,66", "4c,8d,64", "4c,8d,a4"].includes(
          bytes.map((b) => b.toString(16)).join(","),
        ),
        `${name}: ${bytes}`,
      );
    }
    assert.equal(bin.func("no/such.Function"), null);
  },
});

Deno.test({
  name:
    "RETs found from the pcsp table are exactly those go tool objdump lists, in every function",
  ignore: go.ignore,
  async fn() {
    go.check();
    const { full } = await fixtures();
    const want = objdumpRets(await run("go", ["tool", "objdump", full]));
    using bin = GoBinary.open(full);
    const all = bin.functions();
    const count = new Map<string, number>();
    for (const f of all) count.set(f.name, (count.get(f.name) ?? 0) + 1);
    let compared = 0;
    for (const fn of all) {
      // objdump names ABI wrappers apart; the pclntab gives them their target's name.
      if (count.get(fn.name)! > 1 || !want.has(fn.name)) continue;
      let rets: number[];
      try {
        rets = bin.returns(fn);
      } catch (e) {
        // Frameless functions and those that never return are refused, never guessed.
        assert.ok(e instanceof GoBinaryError, String(e));
        assert.match(
          e.message,
          /allocates no frame|No RET found|does not start with a Go stack check/,
        );
        if (/No RET found/.test(e.message)) {
          assert.deepEqual(want.get(fn.name), [], fn.name);
        }
        continue;
      }
      assert.deepEqual(
        rets.map((a) => a.toString(16)),
        want.get(fn.name)!.map((a) => a.toString(16)),
        fn.name,
      );
      compared++;
    }
    assert.ok(compared > 3000, `compared ${compared} functions`);
    for (const name of TLS_METHODS) {
      const fn = bin.func(name)!;
      assert.deepEqual(bin.returns(fn), want.get(name), name);
    }
  },
});

Deno.test({
  name:
    "the frame start of Read and Write is right after PUSHQ BP, past the stack check",
  ignore: go.ignore,
  async fn() {
    go.check();
    const { full } = await fixtures();
    using bin = GoBinary.open(full);
    for (const name of TLS_METHODS) {
      const fn = bin.func(name)!;
      const dis = await run("go", [
        "tool",
        "objdump",
        "-s",
        `^${name.replace(/[().*]/g, "\\$&")}$`,
        full,
      ]);
      const push = /0x([0-9a-f]+)\s+55\s+PUSHQ BP/.exec(dis);
      assert.ok(push, `${name} pushes BP`);
      assert.equal(bin.frameStart(fn), parseInt(push[1]!, 16) + 1, name);
      assert.equal(bin.framePush(fn), parseInt(push[1]!, 16), name);
    }
  },
});

Deno.test({
  name:
    "stripped and unstripped builds of one source have the same functions and RETs",
  ignore: go.ignore,
  async fn() {
    go.check();
    const { stripped, full } = await fixtures();
    using a = GoBinary.open(stripped);
    using b = GoBinary.open(full);
    for (const name of TLS_METHODS) {
      const fa = a.func(name)!, fb = b.func(name)!;
      assert.deepEqual(fa, fb);
      assert.deepEqual(a.returns(fa), b.returns(fb));
      assert.equal(a.fileOffset(fa.entry), b.fileOffset(fb.entry));
    }
  },
});

Deno.test("a file that is not a Go ELF executable is refused with the reason", async () => {
  assert.throws(
    () => GoBinary.fromBytes(new TextEncoder().encode("#!/bin/sh\n".repeat(8))),
    /Not an ELF file/,
  );
  // An ELF executable without a pclntab: the C compiler's, or a truncated header.
  const cc = "/bin/true";
  const elf = await Deno.readFile(cc).catch(() => null);
  if (elf) {
    assert.throws(
      () => GoBinary.fromBytes(elf),
      /no \.gopclntab section: not a Go executable/,
    );
  }
  assert.throws(
    () => GoBinary.open("/nonexistent/kubelet"),
    /Cannot open "\/nonexistent\/kubelet"/,
  );
});

Deno.test({
  name: "the fixture build directory is removed",
  ignore: go.ignore,
  async fn() {
    if (built) await Deno.remove((await built).dir, { recursive: true });
  },
});
