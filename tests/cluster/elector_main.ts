/**
 * A stand-alone election candidate for the cluster tests: it campaigns on a
 * Lease of the test control plane and prints one JSON line per role change on
 * stdout. SIGTERM aborts it gracefully (the Lease is released); SIGKILL is
 * the abrupt stop. With `--watch`, the leader also runs the Lease watcher into
 * a HeartHub, which is what a leading agent does; followers never import
 * `@kubernetes/client-node`.
 *
 *   deno run -A tests/cluster/elector_main.ts STATE_DIR PORT IDENTITY LEASE_MS RENEW_MS RETRY_MS [--watch]
 *
 * @module
 */

import { KubeRestClient, type RestConfig } from "../../kube/rest_client.ts";
import { LeaderElector } from "../../kube/leader_election.ts";
import { RestLeaseLock } from "../../kube/lease_lock.ts";
import { configureLogger } from "../../core/log.ts";

configureLogger({ level: "warn" });

const [dir, port, identity, leaseMs, renewMs, retryMs, ...flags] = Deno.args;
if (!dir || !port || !identity || !leaseMs || !renewMs || !retryMs) {
  console.error(
    "usage: elector_main.ts STATE_DIR PORT IDENTITY LEASE_MS RENEW_MS RETRY_MS [--watch]",
  );
  Deno.exit(2);
}
const watch = flags.includes("--watch");

function emit(event: string, extra: Record<string, unknown> = {}): void {
  console.log(JSON.stringify({ t: Date.now(), id: identity, event, ...extra }));
}

const read = (f: string) => Deno.readTextFileSync(`${dir}/certs/${f}`);
const rest: RestConfig = {
  server: `https://127.0.0.1:${port}`,
  caCerts: [read("ca.crt")],
  cert: read("admin.crt"),
  key: read("admin.key"),
};
const client = new KubeRestClient(rest);
const stop = new AbortController();
Deno.addSignalListener("SIGTERM", () => stop.abort());

const elector = new LeaderElector({
  lock: new RestLeaseLock(client, "default", "earthworm-test-leader"),
  identity,
  address: `http://127.0.0.1:${
    9000 + Number(identity.replace(/\D/g, "") || 0)
  }`,
  leaseDurationMs: Number(leaseMs),
  renewDeadlineMs: Number(renewMs),
  retryPeriodMs: Number(retryMs),
  callbacks: {
    onStartedLeading(signal) {
      emit("leading");
      if (!watch) return;
      // Only the leader pays for the watcher and the hub.
      (async () => {
        const { watchLeases } = await import("../../kube/rest_lease_source.ts");
        const { HeartHub } = await import("../../server/heart_hub.ts");
        const { systemClock } = await import("../../core/clock.ts");
        const hub = new HeartHub({
          clock: systemClock,
          source: { kind: "cluster", name: rest.server },
        });
        const timer = setInterval(
          () => emit("hearts", { hearts: hub.size }),
          2_000,
        );
        try {
          await watchLeases({ rest, sink: hub, signal });
        } finally {
          clearInterval(timer);
        }
      })();
    },
    onStoppedLeading: () => emit("stopped"),
    onNewLeader: (leader, address) => emit("leader", { leader, address }),
  },
});

emit("started");
await elector.run(stop.signal);
client.close();
emit("exit");
