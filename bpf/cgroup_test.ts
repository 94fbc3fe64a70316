import assert from "node:assert/strict";
import { cgroup2Mounts, detectCgroup2, pickCgroup2 } from "./cgroup.ts";

const hybrid =
  `25 30 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
27 25 0:24 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,name=systemd`;
const unified =
  `35 24 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot`;

Deno.test("a hybrid host's cgroup v2 root is /sys/fs/cgroup/unified", () => {
  assert.deepEqual(cgroup2Mounts(hybrid), ["/sys/fs/cgroup/unified"]);
  assert.equal(pickCgroup2(cgroup2Mounts(hybrid)), "/sys/fs/cgroup/unified");
});

Deno.test("a unified host's cgroup v2 root is /sys/fs/cgroup", () => {
  assert.equal(pickCgroup2(cgroup2Mounts(unified)), "/sys/fs/cgroup");
});

Deno.test("an unusual mount point is used when it is the only cgroup2 mount", () => {
  const text =
    `40 1 0:40 / /mnt/cg\\040two rw - cgroup2 none rw\n41 1 0:41 / /x rw - tmpfs t rw`;
  assert.equal(pickCgroup2(cgroup2Mounts(text)), "/mnt/cg two");
  assert.equal(pickCgroup2(cgroup2Mounts("")), null);
});

Deno.test("the cgroup v2 root is reached through the kubelet's or init's /proc/<pid>/root, else through this process's mounts", async () => {
  const proc = await Deno.makeTempDir({ prefix: "earthworm-cg-" });
  try {
    await Deno.mkdir(`${proc}/1/root/sys/fs/cgroup/unified`, {
      recursive: true,
    });
    await Deno.mkdir(`${proc}/self`, { recursive: true });
    await Deno.writeTextFile(`${proc}/1/mountinfo`, hybrid);
    await Deno.writeTextFile(`${proc}/self/mountinfo`, unified);
    assert.equal(
      detectCgroup2([], proc),
      `${proc}/1/root/sys/fs/cgroup/unified`,
    );
    // The followed process's view comes first.
    await Deno.mkdir(`${proc}/77/root/sys/fs/cgroup`, { recursive: true });
    await Deno.writeTextFile(`${proc}/77/mountinfo`, unified);
    assert.equal(detectCgroup2([77], proc), `${proc}/77/root/sys/fs/cgroup`);
    await Deno.remove(`${proc}/77`, { recursive: true });
    // Init's mounts unreadable (no CAP_SYS_PTRACE): this process's own view.
    await Deno.remove(`${proc}/1`, { recursive: true });
    await Deno.mkdir(`${proc}/sys/fs/cgroup`, { recursive: true });
    assert.equal(detectCgroup2([], proc), "/sys/fs/cgroup");
  } finally {
    await Deno.remove(proc, { recursive: true });
  }
});

Deno.test("on this machine the detected hierarchy is a directory", () => {
  const found = detectCgroup2();
  if (found !== null) assert.ok(Deno.statSync(found).isDirectory);
});
