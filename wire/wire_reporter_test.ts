import assert from "node:assert/strict";
import { FakeClock } from "../core/clock.ts";
import { HeartHub } from "../server/heart_hub.ts";
import { runWireReporter, type WireTarget } from "./wire_reporter.ts";

Deno.test("a lease-only agent's reason reaches a leader found after the probe state was known, within a second", async () => {
  const clock = new FakeClock();
  const hub = new HeartHub({
    clock,
    source: { kind: "cluster", name: "test" },
  });
  let target: WireTarget = null;
  const controller = new AbortController();
  let stateKnown!: () => void;
  const known = new Promise<void>((r) => stateKnown = r);
  const running = runWireReporter({
    node: "node-1",
    comm: "kubelet",
    port: 6443,
    disabled: true,
    target: () => target,
    token: () => Promise.resolve("unused"),
    clock,
    signal: controller.signal,
    onState: () => stateKnown(),
  });
  try {
    await known;
    await clock.advance(0);
    assert.equal(hub.probes().size, 0, "no leader yet");
    target = { hub };
    await clock.advance(1000);
    assert.deepEqual(hub.probes().get("node-1"), {
      available: false,
      reason: "eBPF disabled by --no-ebpf",
    });
  } finally {
    controller.abort();
    await running;
  }
});
