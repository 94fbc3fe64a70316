/**
 * Benchmark helper: plain-TCP request/response traffic as fast as it goes.
 *   server: deno run --allow-net tests/wire/pingpong.ts server PORT
 *   client: <name> run --allow-net tests/wire/pingpong.ts client PORT CONNECTIONS
 * The server answers every 64-byte request with 128 bytes; each client
 * connection sends the next request when the answer is in. Prints "ready"
 * (the server: "ready PORT"; PORT 0 picks a free port).
 *
 * @module
 */

const [mode, portText, connText] = Deno.args;
const port = Number(portText);
const REQUEST = 64;
const RESPONSE = 128;

async function readFull(conn: Deno.Conn, buf: Uint8Array): Promise<boolean> {
  let got = 0;
  while (got < buf.length) {
    const n = await conn.read(buf.subarray(got));
    if (n === null) return false;
    got += n;
  }
  return true;
}

async function serve(conn: Deno.Conn) {
  const req = new Uint8Array(REQUEST);
  const res = new Uint8Array(RESPONSE).fill(7);
  try {
    while (await readFull(conn, req)) await conn.write(res);
  } catch {
    // client went away
  } finally {
    try {
      conn.close();
    } catch {
      // already closed
    }
  }
}

async function ping(conn: Deno.Conn) {
  const req = new Uint8Array(REQUEST).fill(1);
  const res = new Uint8Array(RESPONSE);
  while (true) {
    await conn.write(req);
    if (!(await readFull(conn, res))) return;
  }
}

if (mode === "server") {
  const listener = Deno.listen({ hostname: "127.0.0.1", port });
  console.log(`ready ${(listener.addr as Deno.NetAddr).port}`);
  for await (const conn of listener) serve(conn);
} else if (mode === "client") {
  const conns = await Promise.all(
    Array.from(
      { length: Number(connText ?? "1") },
      () => Deno.connect({ hostname: "127.0.0.1", port }),
    ),
  );
  console.log("ready");
  await Promise.all(conns.map((c) => ping(c).catch(() => {})));
} else {
  throw new Error(`Unknown mode "${mode}": use server or client`);
}
