import assert from "node:assert/strict";
import { type FetchApp, serveApp } from "./http_server.ts";

/** Sends `request` on a raw connection and reads until the server closes it. */
async function raw(port: number, request: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  let text = "";
  try {
    await conn.write(new TextEncoder().encode(request));
    const buf = new Uint8Array(65536);
    while (true) {
      const n = await conn.read(buf).catch(() => null);
      if (n === null) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
  } finally {
    conn.close();
  }
  return text;
}

async function serving(
  app: FetchApp,
  fn: (port: number, stop: () => void) => Promise<void>,
) {
  const ac = new AbortController();
  const server = await serveApp(app, {
    host: "127.0.0.1",
    port: 0,
    signal: ac.signal,
    drainMs: 2000,
  });
  try {
    await fn(server.port, () => ac.abort());
  } finally {
    ac.abort();
    await server.finished;
  }
}

Deno.test("the request target is taken as a path, the peer's address is passed on", async () => {
  const seen: string[] = [];
  await serving({
    fetch(req, env) {
      seen.push(`${new URL(req.url).pathname} ${env.remoteAddr}`);
      return new Response("ok");
    },
  }, async (port) => {
    const answer = await raw(
      port,
      "GET //other.example/x?y=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    );
    assert.match(answer, /^HTTP\/1\.1 200/);
  });
  assert.deepEqual(seen, ["//other.example/x 127.0.0.1"]);
});

Deno.test("an answer that leaves the request body unread closes the connection", async () => {
  await serving({
    fetch: () => new Response("no", { status: 413 }),
  }, async (port) => {
    // Keep-alive is asked for, but the rest of the body is not worth reading.
    const answer = await raw(
      port,
      "POST /x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n" +
        "x".repeat(1000),
    );
    assert.match(answer, /^HTTP\/1\.1 413/);
    assert.match(answer, /\r\nconnection: close\r\n/i);
  });
});

Deno.test("on shutdown an event stream ends with its last chunk and a slow answer gets its grace", async () => {
  let finishSlow!: () => void;
  await serving({
    fetch(req) {
      if (new URL(req.url).pathname === "/slow") {
        return new Promise((resolve) =>
          finishSlow = () => resolve(new Response("done"))
        );
      }
      const body = new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(new TextEncoder().encode("data: 1\n\n"));
        },
      });
      return new Response(body, {
        headers: { "content-type": "text/event-stream" },
      });
    },
  }, async (port, stop) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(
      new TextEncoder().encode(
        "GET /stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
      ),
    );
    const buf = new Uint8Array(4096);
    let stream = "";
    while (!stream.includes("data: 1")) {
      stream += new TextDecoder().decode(
        buf.subarray(0, (await conn.read(buf)) ?? 0),
      );
    }
    const slow = raw(port, "GET /slow HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    while (!finishSlow) await new Promise((r) => setTimeout(r, 5));
    stop();
    while (true) {
      const n = await conn.read(buf).catch(() => null);
      if (n === null) break;
      stream += new TextDecoder().decode(buf.subarray(0, n));
    }
    conn.close();
    assert.ok(stream.endsWith("\r\n0\r\n\r\n"), JSON.stringify(stream));
    finishSlow();
    assert.match(await slow, /^HTTP\/1\.1 200[^]*done/);
  });
});
