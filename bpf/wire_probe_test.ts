import assert from "node:assert/strict";
import { WireUnavailableError } from "../core/errors.ts";
import { missingCapabilities, openWireProbe } from "./wire_probe.ts";

Deno.test("a missing libbpf makes the probe unavailable with the reason and the fix", async () => {
  const err = await openWireProbe({ libbpfPath: "/nonexistent/libbpf.so.1" })
    .then(
      () => null,
      (e) => e,
    );
  assert.ok(err instanceof WireUnavailableError, String(err));
  if (err.reason === "no-libbpf") {
    assert.match(
      err.message,
      /Cannot load "\/nonexistent\/libbpf.so.1": install libbpf 1.x/,
    );
  } else {
    // A laptop without BTF or Linux stops earlier, with its own reason.
    assert.ok(
      ["no-btf", "unsupported-os", "old-kernel"].includes(err.reason),
      err.reason,
    );
  }
});

Deno.test("invalid probe settings are rejected before anything loads", async () => {
  await assert.rejects(
    openWireProbe({ comm: "a-very-long-process-name" }),
    /1 to 15 bytes/,
  );
  await assert.rejects(
    openWireProbe({ port: 70000 }),
    /Port 70000 is not a TCP port/,
  );
});

Deno.test("missing capabilities are named: BPF and PERFMON on 5.8+, SYS_ADMIN before, NET_ADMIN always", () => {
  const bit = (...n: number[]) => n.reduce((a, b) => a | (1n << BigInt(b)), 0n);
  assert.deepEqual(missingCapabilities(bit(12, 38, 39), true), []);
  assert.deepEqual(missingCapabilities(bit(12, 21), true), []);
  assert.deepEqual(missingCapabilities(bit(12, 21), false), []);
  assert.deepEqual(missingCapabilities(0n, true), [
    "CAP_BPF",
    "CAP_PERFMON",
    "CAP_NET_ADMIN",
  ]);
  assert.deepEqual(missingCapabilities(bit(38, 39), false), [
    "CAP_SYS_ADMIN",
    "CAP_NET_ADMIN",
  ]);
});
