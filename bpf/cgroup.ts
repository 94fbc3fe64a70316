/**
 * Finds the host's cgroup v2 hierarchy: `/sys/fs/cgroup` on a unified host,
 * `/sys/fs/cgroup/unified` on a hybrid one (systemd's legacy layout),
 * elsewhere wherever mountinfo says. In a pod with `hostPID` it is reached
 * through the followed process's own view, `/proc/<kubelet pid>/root/...`
 * (or the host's init's), so the agent needs no host mount at all (a
 * read-only hostPath of `/sys/fs/cgroup` would leave its submounts writable
 * on a hybrid host); elsewhere through this process's own mounts.
 *
 * @module
 */

/** Mount points of cgroup2 file systems listed in mountinfo text. */
export function cgroup2Mounts(mountinfo: string): string[] {
  const mounts: string[] = [];
  for (const line of mountinfo.split("\n")) {
    // "<id> <parent> <maj:min> <root> <mount point> <options> [optional...] - <fstype> <source> <super options>"
    const sep = line.indexOf(" - ");
    if (sep < 0) continue;
    const fstype = line.slice(sep + 3).split(" ")[0];
    if (fstype !== "cgroup2") continue;
    const mountPoint = line.slice(0, sep).split(" ")[4];
    if (mountPoint) mounts.push(mountPoint.replace(/\\040/g, " "));
  }
  return mounts;
}

/** Picks the mount to attach to: the conventional places first, else the shortest path. */
export function pickCgroup2(mounts: string[]): string | null {
  for (const preferred of ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]) {
    if (mounts.includes(preferred)) return preferred;
  }
  return [...mounts].sort((a, b) => a.length - b.length)[0] ?? null;
}

/**
 * The cgroup v2 root as the processes `pids` see it (the kubelet's, reached
 * through `/proc/<pid>/root` in a hostPID pod), else as the host's init sees
 * it, else this process's own mount; null when none is found.
 */
export function detectCgroup2(
  pids: readonly number[] = [],
  proc = "/proc",
): string | null {
  const views: [string, string][] = [
    ...pids.map((p): [string, string] => [
      `${proc}/${p}/mountinfo`,
      `${proc}/${p}/root`,
    ]),
    [`${proc}/1/mountinfo`, `${proc}/1/root`],
    [`${proc}/self/mountinfo`, ""],
  ];
  for (const [mountinfo, prefix] of views) {
    let mount: string | null;
    try {
      mount = pickCgroup2(cgroup2Mounts(Deno.readTextFileSync(mountinfo)));
    } catch {
      continue; // not permitted (no CAP_SYS_PTRACE) or not there
    }
    if (mount === null) continue;
    const path = `${prefix}${mount}`;
    try {
      if (Deno.statSync(path).isDirectory) return path;
    } catch {
      // the host's root is not ours to enter: try our own mounts
    }
  }
  return null;
}
