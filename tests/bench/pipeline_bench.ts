/**
 * Benchmarks of the lease pipeline with 5,000 simulated nodes, measured in
 * one run: the beat store's append rate (against a plain array push as the
 * baseline), hub ingest (lease event → beat → stream event), and SSE fan-out
 * over real sockets to 1, 10 and 50 clients. Rates are per-iteration work
 * divided by the reported time: each iteration is one beat of every node.
 *
 * Run with `deno task bench`.
 *
 * @module
 */

import type { Lease } from "../../core/lease_types.ts";
import { createApp } from "../../server/api.ts";
import { BeatStore, type StoredBeat } from "../../server/beat_store.ts";
import { systemClock } from "../../core/clock.ts";
import { HeartHub } from "../../server/heart_hub.ts";
import { serveApp } from "../../server/http_server.ts";

const NODES = 5000;
const names = Array.from({ length: NODES }, (_, i) => `node-${i}`);
const ids = names.map((n) => `kube-node-lease/${n}`);

let t = Date.now();
function beatAt(ms: number): StoredBeat {
  return {
    renewTime: ms - 10,
    observedAt: ms,
    intervalSeconds: 10,
    holder: "h",
    transition: false,
  };
}

const store = new BeatStore();
const plain = new Map<string, StoredBeat[]>(ids.map((id) => [id, []]));

Deno.bench("array push, 5,000 nodes (baseline)", {
  group: "store",
  baseline: true,
}, () => {
  t += 10_000;
  const b = beatAt(t);
  for (const id of ids) {
    const list = plain.get(id)!;
    list.push(b);
    if (list.length > 360) list.shift();
  }
});

Deno.bench("BeatStore.append, 5,000 nodes", { group: "store" }, () => {
  t += 10_000;
  const b = beatAt(t);
  for (const id of ids) store.append(id, b);
});

function leases(ms: number, pad = ""): Lease[] {
  const renewTime = new Date(ms).toISOString();
  return names.map((name) => ({
    metadata: { namespace: "kube-node-lease", name },
    spec: { holderIdentity: name + pad, leaseDurationSeconds: 40, renewTime },
  }));
}

const ingestHub = new HeartHub({
  clock: systemClock,
  source: { kind: "mock", name: "bench" },
});
ingestHub.source(true, undefined, Date.now());
ingestHub.resync(leases(Date.now()), Date.now());
let ingestT = Date.now();
Deno.bench("hub ingest: 5,000 lease events", {
  group: "ingest",
  baseline: true,
}, () => {
  ingestT += 10_000;
  const now = Date.now();
  for (const lease of leases(ingestT)) {
    ingestHub.event({ type: "MODIFIED", object: lease }, now);
  }
});

async function fanOut(clients: number) {
  const hub = new HeartHub({
    clock: systemClock,
    source: { kind: "mock", name: "bench" },
    events: { maxQueue: 100_000, capacity: 50_000 },
  });
  hub.source(true, undefined, Date.now());
  hub.resync(leases(Date.now()), Date.now());
  const ac = new AbortController();
  const server = await serveApp(createApp({ hub }), {
    host: "127.0.0.1",
    port: 0,
    signal: ac.signal,
  });
  const counts = new Array(clients).fill(0);
  const readers = await Promise.all(counts.map(async (_, i) => {
    const res = await fetch(`${server.url}/api/v1/stream`);
    const reader = res.body!.getReader();
    const dec = new TextDecoder();
    const marker = "\nevent: beat\n";
    (async () => {
      let carry = "";
      try {
        while (true) {
          const { value, done } = await reader.read();
          if (done) return;
          // Chunks may split a marker: keep the tail of the previous one.
          const text = carry + dec.decode(value, { stream: true });
          counts[i] += text.split(marker).length - 1;
          const last = text.lastIndexOf(marker);
          carry = text.slice(
            Math.max(last + marker.length, text.length - marker.length + 1),
          );
        }
      } catch { /* closed */ }
    })();
    return reader;
  }));
  while (hub.events.subscribers < clients) {
    await new Promise((r) => setTimeout(r, 5));
  }
  let ms = Date.now();
  return {
    async round() {
      const target = counts.map((c) => c + NODES);
      ms += 10_000;
      const now = Date.now();
      for (const lease of leases(ms)) {
        hub.event({ type: "MODIFIED", object: lease }, now);
      }
      while (counts.some((c, i) => c < target[i]!)) {
        await new Promise((r) => setTimeout(r, 1));
      }
    },
    async close() {
      for (const r of readers) await r.cancel().catch(() => {});
      hub.events.closeAll();
      ac.abort();
      await server.finished;
    },
  };
}

for (const clients of [1, 10, 50]) {
  Deno.bench(`SSE fan-out: 5,000 beats to ${clients} client(s)`, {
    group: "fan-out",
    baseline: clients === 1,
    n: 20,
    warmup: 2,
  }, async (b) => {
    const f = await fanOut(clients);
    b.start();
    await f.round();
    b.end();
    await f.close();
  });
}
