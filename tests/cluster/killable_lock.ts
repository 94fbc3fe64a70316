/**
 * An election lock that stops working on `kill()`, like a candidate process
 * that vanished: every later call throws and its watch ends. Used by the
 * election test and bench to kill a leader without a process per candidate.
 *
 * @module
 */

import type { LeaseLock } from "../../kube/lease_lock.ts";

/** `lock`, until `kill()`. */
export function killable(lock: LeaseLock): LeaseLock & { kill(): void } {
  let dead = false;
  const killed = new AbortController();
  const check = () => {
    if (dead) throw new Error("candidate was killed");
  };
  return {
    get: (s) => (check(), lock.get(s)),
    create: (r, s) => (check(), lock.create(r, s)),
    update: (r, s) => (check(), lock.update(r, s)),
    // Followers watch the Lease; a killed candidate's watch ends with it.
    watch: (
      w,
      s,
    ) => (check(), lock.watch!(w, AbortSignal.any([s, killed.signal]))),
    describe: () => lock.describe(),
    kill: () => {
      dead = true;
      killed.abort();
    },
  };
}
