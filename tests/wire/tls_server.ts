/**
 * Test helper: a TLS HTTP/1.1 server standing in for the API server. Answers
 * every request with a small JSON body after `--delay` ms.
 * Usage: deno run --allow-net --allow-read tests/wire/tls_server.ts --port 6443 --cert c.pem --key k.pem [--delay 0]
 * Prints "listening" on stdout when ready.
 *
 * @module
 */

import { parseArgs } from "node:util";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    port: { type: "string", default: "6443" },
    cert: { type: "string" },
    key: { type: "string" },
    delay: { type: "string", default: "0" },
  },
  strict: true,
});
if (!values.cert || !values.key) throw new Error("Missing --cert or --key");
const delay = Number(values.delay);

const server = Deno.serve({
  hostname: "127.0.0.1",
  port: Number(values.port),
  cert: Deno.readTextFileSync(values.cert),
  key: Deno.readTextFileSync(values.key),
  onListen: () => console.log("listening"),
}, async (req) => {
  await req.arrayBuffer();
  if (delay > 0) await new Promise((r) => setTimeout(r, delay));
  return Response.json({
    kind: "Lease",
    apiVersion: "coordination.k8s.io/v1",
    method: req.method,
  });
});
Deno.addSignalListener("SIGTERM", () => server.shutdown());
await server.finished;
