import assert from "node:assert/strict";
import { toLease } from "./lease_api.ts";

Deno.test("toLease keeps MicroTime strings exactly and turns Date objects into RFC 3339", () => {
  const lease = toLease({
    metadata: {
      name: "n1",
      namespace: "kube-node-lease",
      resourceVersion: "7",
      creationTimestamp: new Date("2026-01-01T00:00:00Z"),
    },
    spec: {
      holderIdentity: "n1",
      leaseDurationSeconds: 40,
      renewTime: "2026-01-01T00:00:10.123456Z",
      extra: 1,
    },
  });
  assert.deepEqual(lease, {
    metadata: {
      name: "n1",
      namespace: "kube-node-lease",
      resourceVersion: "7",
      creationTimestamp: "2026-01-01T00:00:00Z",
    },
    spec: {
      holderIdentity: "n1",
      leaseDurationSeconds: 40,
      acquireTime: null,
      renewTime: "2026-01-01T00:00:10.123456Z",
      leaseTransitions: null,
    },
  });
});
