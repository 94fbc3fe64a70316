/**
 * Finds where the cgroup v2 hierarchy is mounted: `/sys/fs/cgroup` on a
 * unified host, `/sys/fs/cgroup/unified` on a hybrid one (systemd's legacy
 * layout), elsewhere wherever `/proc/self/mountinfo` says.
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

/** The cgroup v2 root of this machine, or null when none is mounted. */
export function detectCgroup2(): string | null {
  try {
    return pickCgroup2(
      cgroup2Mounts(Deno.readTextFileSync("/proc/self/mountinfo")),
    );
  } catch {
    return null;
  }
}
