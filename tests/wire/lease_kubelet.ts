/**
 * Test helper: a kubelet's node-lease heartbeat against a real
 * kube-apiserver. Run it through a binary named like the process to
 * impersonate (the kernel's comm is the executable's name). Like the
 * kubelet, it keeps ONE keep-alive HTTPS connection, creates the Lease
 * `kube-node-lease/<node>` if missing, and every `--interval` ms stamps
 * `spec.renewTime` with its clock just before it sends the PUT, reusing the
 * resourceVersion of the last answer.
 *
 * stdin commands, one per line: `reconnect` opens a new connection, closes
 * the old one and renews on the new one. stdout lines: `open <localPort>`,
 * `renew <localPort> <status> <renewTime>`, `error <message>`.
 *
 * Usage: <name> run --allow-net --allow-read tests/wire/lease_kubelet.ts
 *   --port 6443 --ca ca.crt --cert admin.crt --key admin.key --node NAME
 *   [--interval 1000] [--lease-seconds 4]
 *
 * @module
 */

import { parseArgs } from "node:util";
import { microTime } from "../../core/lease_types.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    port: { type: "string" },
    ca: { type: "string" },
    cert: { type: "string" },
    key: { type: "string" },
    node: { type: "string" },
    interval: { type: "string", default: "1000" },
    "lease-seconds": { type: "string", default: "4" },
  },
  strict: true,
});
for (const name of ["port", "ca", "cert", "key", "node"] as const) {
  if (!values[name]) throw new Error(`Missing --${name}`);
}
const port = Number(values.port);
const node = values.node!;
const interval = Number(values.interval);
const leaseSeconds = Number(values["lease-seconds"]);
const tls = {
  hostname: "127.0.0.1",
  port,
  caCerts: [Deno.readTextFileSync(values.ca!)],
  cert: Deno.readTextFileSync(values.cert!),
  key: Deno.readTextFileSync(values.key!),
};
const enc = new TextEncoder();
const dec = new TextDecoder();
const LEASES = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases";

function say(line: string) {
  Deno.stdout.writeSync(enc.encode(line + "\n"));
}

/** One HTTP/1.1 keep-alive connection; requests go one at a time. */
class Conn {
  #conn: Deno.TlsConn;
  #buf = new Uint8Array(0);
  readonly localPort: number;

  private constructor(conn: Deno.TlsConn) {
    this.#conn = conn;
    this.localPort = (conn.localAddr as Deno.NetAddr).port;
  }

  static async open(): Promise<Conn> {
    const c = new Conn(await Deno.connectTls(tls));
    say(`open ${c.localPort}`);
    return c;
  }

  async #fill(): Promise<void> {
    const chunk = new Uint8Array(65536);
    const n = await this.#conn.read(chunk);
    if (n === null) throw new Error("connection closed by the API server");
    const merged = new Uint8Array(this.#buf.length + n);
    merged.set(this.#buf);
    merged.set(chunk.subarray(0, n), this.#buf.length);
    this.#buf = merged;
  }

  async #line(): Promise<string> {
    let end: number;
    while ((end = this.#buf.indexOf(10)) < 0) await this.#fill();
    const line = dec.decode(this.#buf.subarray(0, end)).replace(/\r$/, "");
    this.#buf = this.#buf.slice(end + 1);
    return line;
  }

  async #bytes(n: number): Promise<Uint8Array> {
    while (this.#buf.length < n) await this.#fill();
    const out = this.#buf.slice(0, n);
    this.#buf = this.#buf.slice(n);
    return out;
  }

  async request(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: string }> {
    const payload = body === undefined ? "" : JSON.stringify(body);
    await this.#conn.write(enc.encode(
      `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n` +
        `User-Agent: kubelet/v1.34.4 (linux/amd64) earthworm-test\r\n` +
        `Accept: application/json\r\n` +
        (body === undefined
          ? ""
          : `Content-Type: application/json\r\nContent-Length: ${
            enc.encode(payload).length
          }\r\n`) +
        "\r\n" + payload,
    ));
    const status = Number((await this.#line()).split(" ")[1]);
    const headers = new Map<string, string>();
    for (let l = await this.#line(); l !== ""; l = await this.#line()) {
      const i = l.indexOf(":");
      headers.set(l.slice(0, i).toLowerCase(), l.slice(i + 1).trim());
    }
    let text = "";
    if (/chunked/i.test(headers.get("transfer-encoding") ?? "")) {
      for (;;) {
        const size = parseInt(await this.#line(), 16);
        if (size === 0) {
          while ((await this.#line()) !== "");
          break;
        }
        text += dec.decode(await this.#bytes(size));
        await this.#line();
      }
    } else {
      text = dec.decode(
        await this.#bytes(Number(headers.get("content-length") ?? "0")),
      );
    }
    return { status, body: text };
  }

  close() {
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
  }
}

interface LeaseJson {
  metadata: { resourceVersion?: string };
  spec: Record<string, unknown>;
}

let conn = await Conn.open();
let lease: LeaseJson | undefined;
{
  const got = await conn.request("GET", `${LEASES}/${node}`);
  if (got.status === 200) lease = JSON.parse(got.body);
  else if (got.status !== 404) {
    throw new Error(`GET lease answered ${got.status}: ${got.body}`);
  }
}
if (!lease) {
  const now = Date.now();
  const created = await conn.request("POST", LEASES, {
    apiVersion: "coordination.k8s.io/v1",
    kind: "Lease",
    metadata: { name: node, namespace: "kube-node-lease" },
    spec: {
      holderIdentity: node,
      leaseDurationSeconds: leaseSeconds,
      renewTime: microTime(now),
    },
  });
  if (created.status !== 201) {
    throw new Error(`POST lease answered ${created.status}: ${created.body}`);
  }
  lease = JSON.parse(created.body);
}

let reconnect = false;
(async () => {
  for await (
    const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())
  ) {
    if (chunk.split("\n").some((l) => l.trim() === "reconnect")) {
      reconnect = true;
    }
  }
})();

for (;;) {
  if (reconnect) {
    reconnect = false;
    const old = conn;
    conn = await Conn.open();
    old.close();
  }
  const renewTime = microTime(Date.now());
  lease!.spec = {
    ...lease!.spec,
    holderIdentity: node,
    leaseDurationSeconds: leaseSeconds,
    renewTime,
  };
  const res = await conn.request("PUT", `${LEASES}/${node}`, lease);
  say(`renew ${conn.localPort} ${res.status} ${renewTime}`);
  if (res.status === 200) lease = JSON.parse(res.body);
  else say(`error ${res.body.replaceAll("\n", " ")}`);
  await new Promise((r) => setTimeout(r, interval));
}
