/**
 * Test helper: a kubelet-like client. Run it through a binary named after the
 * process to impersonate (the kernel's comm is the executable's name). Holds
 * keep-alive TLS connections and sends a PUT on each every `--interval` ms.
 * Commands on stdin, one per line: `open` opens one more connection, `close`
 * closes the oldest. Prints `open <localPort>` / `closed <localPort>` and
 * `put <localPort> <status>` lines on stdout.
 * Usage: <name> run --allow-net --allow-read tests/wire/client.ts --port 6443 --ca ca.pem [--interval 100]
 *
 * @module
 */

import { parseArgs } from "node:util";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    port: { type: "string", default: "6443" },
    ca: { type: "string" },
    interval: { type: "string", default: "100" },
    quiet: { type: "boolean", default: false },
  },
  strict: true,
});
if (!values.ca) throw new Error("Missing --ca");
const caCerts = [Deno.readTextFileSync(values.ca)];
const port = Number(values.port);
const interval = Number(values.interval);
const enc = new TextEncoder();
const dec = new TextDecoder();

function say(line: string) {
  Deno.stdout.writeSync(enc.encode(line + "\n"));
}

class Conn {
  #conn: Deno.TlsConn;
  #buf = new Uint8Array(0);
  readonly localPort: number;
  closed = false;

  constructor(conn: Deno.TlsConn) {
    this.#conn = conn;
    this.localPort = (conn.localAddr as Deno.NetAddr).port;
  }

  async #fill(): Promise<void> {
    const chunk = new Uint8Array(16384);
    const n = await this.#conn.read(chunk);
    if (n === null) throw new Error("connection closed by server");
    const merged = new Uint8Array(this.#buf.length + n);
    merged.set(this.#buf);
    merged.set(chunk.subarray(0, n), this.#buf.length);
    this.#buf = merged;
  }

  async put(seq: number): Promise<number> {
    const body = JSON.stringify({
      spec: { renewTime: new Date().toISOString(), seq },
    });
    await this.#conn.write(enc.encode(
      `PUT /apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/node-1 HTTP/1.1\r\n` +
        `Host: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
    ));
    let end: number;
    while ((end = dec.decode(this.#buf).indexOf("\r\n\r\n")) < 0) {
      await this.#fill();
    }
    const head = dec.decode(this.#buf.subarray(0, end));
    const length = Number(/content-length: *(\d+)/i.exec(head)?.[1] ?? "0");
    while (this.#buf.length < end + 4 + length) await this.#fill();
    this.#buf = this.#buf.slice(end + 4 + length);
    return Number(head.split(" ")[1]);
  }

  close() {
    this.closed = true;
    this.#conn.close();
  }
}

const conns: Conn[] = [];
async function open() {
  const c = new Conn(
    await Deno.connectTls({ hostname: "127.0.0.1", port, caCerts }),
  );
  conns.push(c);
  say(`open ${c.localPort}`);
}

async function loop(c: Conn) {
  let seq = 0;
  while (!c.closed) {
    try {
      const status = await c.put(seq++);
      if (!values.quiet) say(`put ${c.localPort} ${status}`);
    } catch (e) {
      if (!c.closed) {
        say(`error ${c.localPort} ${e instanceof Error ? e.message : e}`);
        c.close();
      }
      return;
    }
    if (interval > 0) await new Promise((r) => setTimeout(r, interval));
  }
}

await open();
loop(conns[0]!);
for await (
  const line of Deno.stdin.readable.pipeThrough(new TextDecoderStream())
) {
  for (const cmd of line.split("\n").map((s) => s.trim()).filter(Boolean)) {
    if (cmd === "open") {
      await open();
      loop(conns[conns.length - 1]!);
    } else if (cmd === "close") {
      const c = conns.find((x) => !x.closed);
      if (c) {
        c.close();
        say(`closed ${c.localPort}`);
      }
    }
  }
}
for (const c of conns) if (!c.closed) c.close();
