/**
 * Prerequisite of tests that load the real eBPF probe: root, kernel BTF,
 * libbpf and setpriv (to run an agent without privileges). The same checks
 * as tests/probe_test.ts minus the tools only that test uses.
 *
 * @module
 */

import { onPath, type Prereq, prereq, rootMissing } from "../prereq.ts";

/** Why the eBPF probe cannot load here, or null when it can. */
export function ebpfMissing(): string | null {
  const root = rootMissing();
  if (root) return root;
  try {
    Deno.statSync("/sys/kernel/btf/vmlinux");
  } catch {
    return "the kernel has no BTF (/sys/kernel/btf/vmlinux)";
  }
  try {
    Deno.dlopen("libbpf.so.1", {}).close();
  } catch {
    return "libbpf.so.1 is missing: apt-get install libbpf1";
  }
  if (!onPath("setpriv")) {
    return '"setpriv" is not installed: apt-get install util-linux';
  }
  return null;
}

/** Prerequisite of `ebpf: ` tests that load the probe. */
export function ebpfPrereq(): Prereq {
  return prereq("root, kernel BTF, libbpf and setpriv", ebpfMissing());
}
