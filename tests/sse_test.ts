import assert from "node:assert/strict";
import type { Lease } from "../core/lease_types.ts";
import { createApp } from "../server/api.ts";
import type {
  BeatEvent,
  SnapshotEvent,
  StreamSnapshot,
} from "../core/api_types.ts";
import { systemClock } from "../core/clock.ts";
import { HeartHub } from "../server/heart_hub.ts";
import { serveApp } from "../server/http_server.ts";
import { collectFullSse, collectSse } from "./sse_client.ts";

function lease(name: string, renewMs: number, pad = ""): Lease {
  return {
    metadata: { namespace: "kube-node-lease", name },
    spec: {
      holderIdentity: name + pad,
      leaseDurationSeconds: 40,
      renewTime: new Date(renewMs).toISOString(),
    },
  };
}

async function withServer(
  fn: (ctx: { hub: HeartHub; url: string }) => Promise<void>,
  opts: {
    keepAliveMs?: number;
    events?: { capacity?: number; maxQueue?: number };
  } = {},
) {
  const hub = new HeartHub({
    clock: systemClock,
    source: { kind: "mock", name: "sse test" },
    events: opts.events ?? {},
  });
  hub.source(true, undefined, Date.now());
  hub.resync([lease("n1", Date.now())], Date.now());
  const ac = new AbortController();
  const server = await serveApp(
    createApp({ hub, stream: { keepAliveMs: opts.keepAliveMs ?? 15_000 } }),
    {
      host: "127.0.0.1",
      port: 0,
      signal: ac.signal,
    },
  );
  try {
    await fn({ hub, url: server.url });
  } finally {
    hub.events.closeAll();
    ac.abort();
    await server.finished;
  }
}

let renew = Date.now();
function beat(hub: HeartHub, name = "n1", pad = "") {
  renew += 10_000;
  hub.event({ type: "MODIFIED", object: lease(name, renew, pad) }, Date.now());
}

let holders = 0;
/**
 * A beat by a new holder padded to `pad.length` bytes (so the heart goes
 * out in full), sent as a batch of its own: a stream message of that size.
 */
function bigBatch(hub: HeartHub, pad: string) {
  beat(hub, "n1", `${pad}${holders++}`);
  hub.batcher.flush();
}

async function until(cond: () => boolean, ms = 5000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

Deno.test("stream starts with a snapshot, then beats with increasing ids", async () => {
  await withServer(async ({ hub, url }) => {
    const res = await fetch(`${url}/api/v1/stream`);
    assert.match(res.headers.get("content-type")!, /text\/event-stream/);
    const pending = collectFullSse(
      res,
      (m) => m.filter((x) => x.event === "beat").length >= 3,
    );
    await until(() => hub.events.subscribers === 1);
    for (let i = 0; i < 3; i++) beat(hub);
    const msgs = await pending;
    assert.equal(msgs[0]!.event, "snapshot");
    const snap = JSON.parse(msgs[0]!.data) as SnapshotEvent;
    assert.equal(snap.hearts[0]!.holder, "n1");
    assert.deepEqual(snap.hearts.map((h) => h.id), ["kube-node-lease/n1"]);
    const beats = msgs.filter((m) => m.event === "beat");
    const ids = msgs.map((m) => Number(m.id));
    assert.deepEqual(ids, [...ids].sort((a, b) => a - b));
    assert.equal((JSON.parse(beats[2]!.data) as BeatEvent).heart.beats, 3);
    assert.deepEqual(
      JSON.parse(beats[2]!.data).heart,
      hub.heart("kube-node-lease/n1"),
      "the compact events rebuild the heart as the server has it",
    );
  });
});

Deno.test("an aborted client is unsubscribed at once", async () => {
  await withServer(async ({ hub, url }) => {
    const ac = new AbortController();
    const res = await fetch(`${url}/api/v1/stream`, { signal: ac.signal });
    await collectSse(res, (m) => m.length >= 1);
    assert.equal(hub.events.subscribers, 1);
    ac.abort();
    await until(() => hub.events.subscribers === 0);
  });
});

Deno.test("a client reconnecting with Last-Event-ID gets exactly what it missed", async () => {
  await withServer(async ({ hub, url }) => {
    const first = await fetch(`${url}/api/v1/stream`);
    const pending = collectSse(
      first,
      (m) => m.some((x) => x.event === "batch"),
    );
    await until(() => hub.events.subscribers === 1);
    beat(hub);
    const seen = await pending;
    const lastId = seen.at(-1)!.id!;
    beat(hub);
    hub.batcher.flush();
    beat(hub); // missed while disconnected, in two batches
    hub.batcher.flush();
    const again = await fetch(`${url}/api/v1/stream`, {
      headers: { "Last-Event-ID": lastId },
    });
    const missed = hub.events.lastId - Number(lastId);
    assert.equal(missed, 2);
    const resumed = await collectSse(again, (m) => m.length >= missed);
    assert.ok(!resumed.some((m) => m.event === "snapshot"));
    const beats = resumed.flatMap((m) =>
      (JSON.parse(m.data).e as unknown[][]).filter((e) => e[0] === "b")
    );
    assert.equal(beats.length, 2);
    assert.deepEqual(
      resumed.map((m) => Number(m.id)),
      Array.from({ length: missed }, (_, i) => Number(lastId) + 1 + i),
    );
  });
});

Deno.test("a client whose Last-Event-ID is no longer held gets a fresh snapshot", async () => {
  await withServer(async ({ hub, url }) => {
    const old = hub.events.lastId;
    for (let i = 0; i < 10; i++) {
      beat(hub);
      hub.batcher.flush();
    }
    const res = await fetch(`${url}/api/v1/stream`, {
      headers: { "Last-Event-ID": String(old) },
    });
    const msgs = await collectSse(res, (m) => m.length >= 1);
    assert.equal(msgs[0]!.event, "snapshot");
    assert.equal(Number(msgs[0]!.id), hub.events.lastId);
    const bogus = await fetch(`${url}/api/v1/stream?lastEventId=12`);
    assert.equal(
      (await collectSse(bogus, (m) => m.length >= 1))[0]!.event,
      "snapshot",
    );
  }, { events: { capacity: 5 } });
});

Deno.test("an idle stream sends ping events without an id, so a client can tell quiet from lost", async () => {
  await withServer(async ({ url }) => {
    const res = await fetch(`${url}/api/v1/stream`);
    const msgs = await collectSse(
      res,
      (m) => m.filter((x) => x.event === "ping").length >= 2,
      5000,
    );
    const pings = msgs.filter((m) => m.event === "ping");
    for (const ping of pings) {
      assert.equal(ping.id, undefined, "a ping moves no Last-Event-ID");
      assert.ok(Date.parse(JSON.parse(ping.data).serverTime) > 0);
    }
    assert.equal(msgs[0]!.event, "snapshot");
  }, { keepAliveMs: 50 });
});

Deno.test("a stalled client is disconnected instead of buffered without bound", async () => {
  await withServer(async ({ hub, url }) => {
    const { port } = new URL(url);
    const conn = await Deno.connect({
      hostname: "127.0.0.1",
      port: Number(port),
    });
    try {
      await conn.write(
        new TextEncoder().encode(
          "GET /api/v1/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        ),
      );
      await until(() => hub.events.subscribers === 1);
      // Never read: fill the socket buffers, then the bounded queue (the
      // client is owed a snapshot), then the queue again.
      const pad = "x".repeat(4000);
      for (let i = 0; i < 40_000 && hub.events.subscribers > 0; i++) {
        bigBatch(hub, pad);
        if (i % 500 === 0) await new Promise((r) => setTimeout(r, 1));
      }
      await until(() => hub.events.subscribers === 0, 10_000);
      assert.equal(hub.events.lagged, 1, "owed a snapshot first");
      assert.equal(hub.events.dropped, 1);
    } finally {
      conn.close();
    }
  }, { events: { maxQueue: 200 } });
});

/**
 * Server-side TCP sockets of `port` in state ESTABLISHED, read from
 * /proc/net/tcp{,6} so the test sees what the kernel holds for the server.
 */
function establishedOn(port: number): number {
  const hex = port.toString(16).toUpperCase().padStart(4, "0");
  let n = 0;
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text = "";
    try {
      text = Deno.readTextFileSync(file);
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[1]?.endsWith(`:${hex}`) && f[3] === "01") n++;
    }
  }
  return n;
}

Deno.test("HEAD on the stream answers its headers without subscribing", async () => {
  await withServer(async ({ hub, url }) => {
    for (let i = 0; i < 50; i++) {
      const res = await fetch(`${url}/api/v1/stream`, { method: "HEAD" });
      assert.equal(res.status, 200);
      assert.match(res.headers.get("content-type")!, /text\/event-stream/);
      assert.equal(await res.text(), "");
    }
    // Give a leaked subscription every chance to show.
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(hub.events.subscribers, 0);
  });
});

Deno.test("a client dropped for falling behind loses its socket at once, before it reads", async () => {
  await withServer(async ({ hub, url }) => {
    const port = Number(new URL(url).port);
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    try {
      await conn.write(
        new TextEncoder().encode(
          "GET /api/v1/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        ),
      );
      await until(() => hub.events.subscribers === 1);
      assert.equal(establishedOn(port), 1);
      // Slowly enough that every buffer on the way fills before the
      // client's queue overflows, as with a reader that stopped for good.
      const pad = "x".repeat(4000);
      for (let i = 0; i < 40_000 && hub.events.subscribers > 0; i++) {
        bigBatch(hub, pad);
        if (i % 50 === 0) await new Promise((r) => setTimeout(r, 2));
      }
      await until(() => hub.events.subscribers === 0, 10_000);
      assert.equal(hub.events.dropped, 1);
      // The client has not read a byte: the server must not wait for it.
      await until(() => establishedOn(port) === 0, 2_000);
    } finally {
      conn.close();
    }
  }, { events: { maxQueue: 1000 } });
});

Deno.test("a resume backlog larger than a client may queue gets a fresh snapshot instead", async () => {
  await withServer(async ({ hub, url }) => {
    const from = hub.events.lastId;
    for (let i = 0; i < 50; i++) {
      beat(hub);
      hub.batcher.flush();
    }
    const res = await fetch(`${url}/api/v1/stream`, {
      headers: { "Last-Event-ID": String(from) },
    });
    const msgs = await collectSse(res, (m) => m.length >= 1);
    assert.equal(msgs[0]!.event, "snapshot", "not 50 batches past the limit");
    assert.equal(Number(msgs[0]!.id), hub.events.lastId);
  }, { events: { maxQueue: 20 } });
});

Deno.test("new streams share one serialised snapshot while no event happened", async () => {
  await withServer(async ({ hub, url }) => {
    let builds = 0;
    const hearts = hub.hearts.bind(hub);
    hub.hearts = (now?: number) => {
      builds++;
      return hearts(now);
    };
    const first: string[] = [];
    for (let i = 0; i < 20; i++) {
      const res = await fetch(`${url}/api/v1/stream`);
      const [snap] = await collectSse(res, (m) => m.length >= 1);
      assert.equal(snap!.event, "snapshot");
      first.push(JSON.stringify(JSON.parse(snap!.data).hearts));
    }
    assert.equal(builds, 1, "one serialisation for 20 streams");
    assert.equal(new Set(first).size, 1);
    beat(hub);
    const res = await fetch(`${url}/api/v1/stream`);
    const msgs = await collectSse(res, (m) => m.length >= 1);
    const snap = JSON.parse(msgs[0]!.data) as StreamSnapshot;
    // Either a new snapshot, or the cached one followed by the beat.
    if (Number(msgs[0]!.id) === hub.events.lastId) {
      assert.equal(snap.hearts[0]![8], 1, "beats");
    } else {
      const more = await collectSse(
        await fetch(`${url}/api/v1/stream`),
        (m) => m.some((x) => x.event === "batch"),
      );
      assert.equal(more.at(-1)!.id, String(hub.events.lastId));
    }
    assert.ok(
      Date.parse(snap.generatedAt) > Date.now() - 1000,
      "generatedAt is the time of sending, not of the cached serialisation",
    );
  });
});

Deno.test("clients that leave release their subscriptions and queued bytes", async () => {
  await withServer(async ({ hub, url }) => {
    const clients = await Promise.all(
      Array.from({ length: 50 }, async () => {
        const ac = new AbortController();
        const res = await fetch(`${url}/api/v1/stream`, { signal: ac.signal });
        return { ac, res };
      }),
    );
    await until(() => hub.events.subscribers === 50);
    for (let i = 0; i < 20; i++) beat(hub, "n1", "y".repeat(2000));
    for (const c of clients) c.ac.abort();
    await until(() => hub.events.subscribers === 0);
    assert.equal(hub.events.queuedBytes, 0);
  });
});

Deno.test("a client that falls behind gets a fresh snapshot on the same connection when it reads again, not a disconnection", async () => {
  await withServer(async ({ hub, url }) => {
    const port = Number(new URL(url).port);
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    try {
      await conn.write(
        new TextEncoder().encode(
          "GET /api/v1/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        ),
      );
      await until(() => hub.events.subscribers === 1);
      // Not reading: the socket's buffers fill, then the client's queue.
      const pad = "x".repeat(4000);
      for (let i = 0; i < 40_000 && hub.events.lagged === 0; i++) {
        bigBatch(hub, pad);
        if (i % 50 === 0) await new Promise((r) => setTimeout(r, 2));
      }
      assert.equal(hub.events.lagged, 1);
      const lastBefore = hub.events.lastId;
      // Reading again: what was buffered, then a snapshot that catches up.
      const decoder = new TextDecoder();
      let text = "";
      const buf = new Uint8Array(64 * 1024);
      const snapshots = () => text.split("event: snapshot\n").length - 1;
      const deadline = Date.now() + 10_000;
      while (snapshots() < 2) {
        assert.ok(Date.now() < deadline, "no second snapshot came");
        const n = await conn.read(buf);
        if (n === null) assert.fail("the server closed the stream");
        text += decoder.decode(buf.subarray(0, n));
      }
      const second = text.slice(
        text.lastIndexOf("id: ", text.lastIndexOf("event: snapshot")),
      );
      assert.ok(Number(second.slice(4, second.indexOf("\n"))) >= lastBefore);
      // And it goes on live on the same connection.
      beat(hub);
      hub.batcher.flush();
      while (
        !text.slice(text.lastIndexOf("event: snapshot")).includes(
          "event: batch",
        )
      ) {
        assert.ok(Date.now() < deadline, "no batch after the snapshot");
        const n = await conn.read(buf);
        if (n === null) assert.fail("the server closed the stream");
        text += decoder.decode(buf.subarray(0, n));
      }
      assert.equal(hub.events.subscribers, 1);
      assert.equal(hub.events.dropped, 0);
    } finally {
      conn.close();
    }
  }, { events: { maxQueue: 1000 } });
});
