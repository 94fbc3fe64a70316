/**
 * Test helper private to bpf/: raw wire events with neutral defaults.
 *
 * @module
 */

import type { RawWireEvent } from "../core/wire_types.ts";

/** A raw event with neutral defaults. */
export function rawEvent(over: Partial<RawWireEvent>): RawWireEvent {
  return {
    kind: "exchange",
    tsNs: 0n,
    cookie: 1n,
    local: "127.0.0.1:50000",
    remote: "127.0.0.1:6443",
    conn: "127.0.0.1:50000->127.0.0.1:6443",
    pid: 10,
    comm: "kubelet",
    origin: "connect",
    srttUs: 0,
    totalRetrans: 0,
    resets: 0,
    startNs: 0n,
    firstRxNs: 0n,
    lastRxNs: 0n,
    bytesSent: 0,
    bytesReceived: 0,
    retrans: 0,
    oldState: "",
    newState: "",
    resetDirection: null,
    ...over,
  };
}
