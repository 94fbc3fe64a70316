import assert from "node:assert/strict";
import { cgroup2Mounts, pickCgroup2 } from "./cgroup.ts";

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
