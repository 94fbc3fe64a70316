import assert from "node:assert/strict";
import {
  describeRequestFailure,
  KubeApiError,
  KubeRestClient,
} from "./rest_client.ts";
import { InputError } from "../core/errors.ts";
import { inClusterRestConfig } from "./kubeconfig.ts";

/** Serves `handler` on a free local port for the duration of `fn`. */
async function withServer(
  handler: (req: Request) => Response | Promise<Response>,
  fn: (client: KubeRestClient, url: string) => Promise<void>,
): Promise<void> {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    handler,
  );
  const url = `http://127.0.0.1:${server.addr.port}`;
  const client = new KubeRestClient({
    server: url,
    authHeaders: () => Promise.resolve({ Authorization: "Bearer t0ken" }),
  });
  try {
    await fn(client, url);
  } finally {
    client.close();
    await server.shutdown();
  }
}

Deno.test("rest client sends the auth header and parses JSON", async () => {
  await withServer(
    (req) =>
      Response.json({
        auth: req.headers.get("authorization"),
        path: new URL(req.url).pathname,
      }),
    async (client) => {
      const body = await client.request<{ auth: string; path: string }>(
        "GET",
        "/api/v1/x",
      );
      assert.deepEqual(body, { auth: "Bearer t0ken", path: "/api/v1/x" });
    },
  );
});

Deno.test("rest client turns a Status answer into KubeApiError with code and reason", async () => {
  await withServer(
    () =>
      Response.json({
        kind: "Status",
        reason: "Conflict",
        message: "the object has been modified",
      }, { status: 409 }),
    async (client) => {
      const err = await client.request("PUT", "/x", {}).catch((e) => e);
      assert.ok(err instanceof KubeApiError);
      assert.equal(err.code, 409);
      assert.equal(err.reason, "Conflict");
      assert.match(
        err.message,
        /PUT \/x: HTTP 409: the object has been modified/,
      );
    },
  );
});

/** A response that sends one line and then nothing until the client goes away. */
function hangingStream(): Response {
  return new Response(
    new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new TextEncoder().encode('{"type":"ADDED"}\n'));
      },
    }),
  );
}

for (const own of [false, true]) {
  const via = own ? "on a connection of its own" : "through fetch";
  Deno.test(`rest client streams JSON lines split across chunks and resolves when the server ends (${via})`, async () => {
    await withServer(
      () => {
        const enc = new TextEncoder();
        const body = new ReadableStream<Uint8Array>({
          start(c) {
            c.enqueue(enc.encode('{"type":"ADDED","n":1}\n{"type":"MOD'));
            c.enqueue(
              enc.encode('IFIED","n":2}\n\n{"type":"BOOKMARK","n":3}\n'),
            );
            c.close();
          },
        });
        return new Response(body);
      },
      async (client) => {
        const seen: unknown[] = [];
        let opened = 0;
        await client.stream("/w", {
          onLine: (v) => seen.push(v),
          signal: new AbortController().signal,
          idleMs: 5_000,
          onOpen: () => opened++,
          ownConnection: own,
        });
        assert.equal(opened, 1);
        assert.deepEqual(seen, [
          { type: "ADDED", n: 1 },
          { type: "MODIFIED", n: 2 },
          { type: "BOOKMARK", n: 3 },
        ]);
      },
    );
  });

  Deno.test(`rest client fails a stream that stays silent past the idle limit (${via})`, async () => {
    await withServer(hangingStream, async (client) => {
      const err = await client.stream("/w", {
        onLine: () => {},
        signal: new AbortController().signal,
        idleMs: 200,
        ownConnection: own,
      })
        .catch((e) => e);
      assert.equal(err?.name, "TimeoutError");
    });
  });

  Deno.test(`rest client stops a stream when its signal aborts or its callback throws (${via})`, async () => {
    await withServer(hangingStream, async (client) => {
      const stop = new AbortController();
      const run = client.stream("/w", {
        onLine: () => stop.abort(new Error("stopped")),
        signal: stop.signal,
        idleMs: 5_000,
        ownConnection: own,
      });
      await assert.rejects(run, /stopped/);
      await assert.rejects(
        client.stream("/w", {
          onLine: () => {
            throw new RangeError("bad event");
          },
          signal: new AbortController().signal,
          idleMs: 5_000,
          ownConnection: own,
        }),
        RangeError,
      );
    });
  });

  Deno.test(`rest client turns a Status answer to a watch into KubeApiError (${via})`, async () => {
    await withServer(
      () =>
        Response.json({
          kind: "Status",
          reason: "Forbidden",
          message: 'leases is forbidden: User "x" cannot watch',
        }, { status: 403 }),
      async (client) => {
        const err = await client.stream("/w?watch=1", {
          onLine: () => {},
          signal: new AbortController().signal,
          idleMs: 5_000,
          onOpen: () => assert.fail("a refused watch is not open"),
          ownConnection: own,
        }).catch((e) => e);
        assert.ok(err instanceof KubeApiError, String(err));
        assert.equal(err.code, 403);
        assert.equal(err.reason, "Forbidden");
        assert.match(
          err.message,
          /GET \/w\?watch=1: HTTP 403: leases is forbidden/,
        );
      },
    );
  });
}

Deno.test("a watch on its own connection sends the auth header under the server's path prefix, and keeps characters split between chunks", async () => {
  const seenRequests: string[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (req) => {
      seenRequests.push(
        `${new URL(req.url).pathname} ${req.headers.get("authorization")}`,
      );
      const bytes = new TextEncoder().encode('{"holder":"nœud-7"}\n');
      const cut = bytes.indexOf(0xc5) + 1; // inside the two bytes of "œ"
      return new Response(
        new ReadableStream<Uint8Array>({
          start(c) {
            c.enqueue(bytes.subarray(0, cut));
            c.enqueue(bytes.subarray(cut));
            c.close();
          },
        }),
      );
    },
  );
  const client = new KubeRestClient({
    server: `http://127.0.0.1:${server.addr.port}/prefix/`,
    authHeaders: () => Promise.resolve({ Authorization: "Bearer t0ken" }),
  });
  try {
    const seen: unknown[] = [];
    await client.stream("/apis/x?watch=1", {
      onLine: (v) => seen.push(v),
      signal: new AbortController().signal,
      idleMs: 5_000,
      ownConnection: true,
    });
    assert.deepEqual(seen, [{ holder: "nœud-7" }]);
    assert.deepEqual(seenRequests, ["/prefix/apis/x Bearer t0ken"]);
  } finally {
    client.close();
    await server.shutdown();
  }
});

Deno.test("in-cluster config reads the service account and the service address", async () => {
  const dir = Deno.makeTempDirSync();
  const env = ["KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"] as const;
  const saved = env.map((k) => Deno.env.get(k));
  try {
    Deno.writeTextFileSync(`${dir}/ca.crt`, "-----BEGIN CERTIFICATE-----\n");
    Deno.writeTextFileSync(`${dir}/token`, "abc\n");
    env.forEach((k) => Deno.env.delete(k));
    assert.throws(
      () => inClusterRestConfig(dir),
      /KUBERNETES_SERVICE_HOST is not set/,
    );
    Deno.env.set("KUBERNETES_SERVICE_HOST", "fd00::1");
    Deno.env.set("KUBERNETES_SERVICE_PORT", "6443");
    assert.throws(
      () => inClusterRestConfig(`${dir}/nowhere`),
      (err: Error) =>
        err instanceof InputError &&
        err.message ===
          `Cannot read the ServiceAccount CA "${dir}/nowhere/ca.crt": it does not exist: mount the ServiceAccount (automountServiceAccountToken: true) or pass --kubeconfig`,
    );
    const cfg = inClusterRestConfig(dir);
    assert.equal(cfg.server, "https://[fd00::1]:6443");
    assert.deepEqual(cfg.caCerts, ["-----BEGIN CERTIFICATE-----\n"]);
    assert.deepEqual(await cfg.authHeaders!(), { Authorization: "Bearer abc" });
  } finally {
    env.forEach((k, i) =>
      saved[i] === undefined ? Deno.env.delete(k) : Deno.env.set(k, saved[i]!)
    );
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("client-node's connections are kept on HTTP/1.1", async () => {
  const { http1Only } = await import("./kubeconfig.ts");
  const { KubeConfig } = await import("@kubernetes/client-node");
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: "c", server: "https://127.0.0.1:6443", caData: "" }],
    users: [{ name: "u", token: "t" }],
    contexts: [{ name: "x", cluster: "c", user: "u" }],
    currentContext: "x",
  });
  http1Only(kc);
  const opts = kc.createDispatcherOptions(kc.getCurrentCluster(), {});
  assert.equal(opts.type, "agent");
  assert.equal(
    (opts as { connect: { allowH2?: boolean } }).connect.allowH2,
    false,
  );
});

Deno.test("a failed request is described by the reason fetch keeps in its cause", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const client = new KubeRestClient({ server: `https://127.0.0.1:${port}` });
  try {
    const err = await client.request("GET", "/x").then(() => null, (e) => e);
    const refused = describeRequestFailure(err);
    assert.equal(refused.summary, "cannot reach the API server");
    assert.match(refused.detail, /^tcp connect error: Connection refused/);
  } finally {
    client.close();
  }
  const tls = describeRequestFailure(
    new TypeError("fetch failed", {
      cause: new Error(
        "error sending request for url (https://127.0.0.1:6443/x): client error (Connect): invalid peer certificate: Other(OtherError(CaUsedAsEndEntity))",
      ),
    }),
  );
  assert.equal(tls.summary, "cannot trust the API server");
  assert.equal(tls.detail, "invalid peer certificate: CaUsedAsEndEntity");
  assert.match(tls.fix ?? "", /CA that signed the API server's certificate/);
  const timeout = describeRequestFailure(
    new DOMException("Lease request timed out", "TimeoutError"),
  );
  assert.deepEqual(
    [timeout.summary, timeout.detail],
    ["cannot reach the API server", "Lease request timed out"],
  );
  const status = describeRequestFailure(
    new KubeApiError(500, "GET /x: HTTP 500: boom"),
  );
  assert.deepEqual(status, {
    summary: "request failed",
    detail: "GET /x: HTTP 500: boom",
  });
});

/** Frames `payloads` as a protobuf watch body: each a 4-byte big-endian length and its bytes. */
function framed(payloads: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(payloads.reduce((n, p) => n + 4 + p.length, 0));
  let at = 0;
  for (const p of payloads) {
    new DataView(out.buffer).setUint32(at, p.length);
    out.set(p, at + 4);
    at += 4 + p.length;
  }
  return out;
}

Deno.test("a watch on its own connection asks for protobuf and cuts the answer into frames however it is chunked", async () => {
  const payloads = [
    new Uint8Array([1, 2, 3]),
    new Uint8Array(0),
    new Uint8Array(3000).map((_, i) => i & 0xff),
    new Uint8Array([9]),
  ];
  const body = framed(payloads);
  // Chunk sizes that cut lengths and payloads everywhere, then all at once.
  for (const size of [1, 2, 3, 5, 7, 4096]) {
    const accepts: (string | null)[] = [];
    await withServer(
      (req) => {
        accepts.push(req.headers.get("accept"));
        return new Response(
          new ReadableStream<Uint8Array>({
            start(c) {
              for (let i = 0; i < body.length; i += size) {
                c.enqueue(body.slice(i, i + size));
              }
              c.close();
            },
          }),
          {
            headers: {
              "content-type":
                "application/vnd.kubernetes.protobuf;stream=watch",
            },
          },
        );
      },
      async (client) => {
        const seen: Uint8Array[] = [];
        await client.stream("/w", {
          onLine: () => assert.fail("a protobuf answer has no JSON lines"),
          onFrame: (f) => seen.push(f.slice()),
          signal: new AbortController().signal,
          idleMs: 5_000,
          ownConnection: true,
        });
        assert.deepEqual(seen, payloads, `chunks of ${size} bytes`);
      },
    );
    assert.deepEqual(accepts, [
      "application/vnd.kubernetes.protobuf, application/json",
    ]);
  }
});

Deno.test("a protobuf watch frame longer than 16 MiB ends the stream with an error that says so", async () => {
  await withServer(
    () =>
      new Response(new Uint8Array([0x7f, 0xff, 0xff, 0xff, 1, 2]), {
        headers: { "content-type": "application/vnd.kubernetes.protobuf" },
      }),
    async (client) => {
      const err = await client.stream("/w", {
        onLine: () => {},
        onFrame: () => assert.fail("no frame"),
        signal: new AbortController().signal,
        idleMs: 5_000,
        ownConnection: true,
      }).catch((e) => e);
      assert.match(String(err), /over the 16777216-byte limit/);
    },
  );
});

Deno.test("a watch that asks for protobuf still reads a JSON answer, and one through fetch asks for JSON only", async () => {
  for (const own of [true, false]) {
    const accepts: (string | null)[] = [];
    await withServer(
      (req) => {
        accepts.push(req.headers.get("accept"));
        return new Response('{"type":"ADDED"}\n', {
          headers: { "content-type": "application/json" },
        });
      },
      async (client) => {
        const seen: unknown[] = [];
        await client.stream("/w", {
          onLine: (v) => seen.push(v),
          onFrame: () => assert.fail("a JSON answer has no frames"),
          signal: new AbortController().signal,
          idleMs: 5_000,
          ownConnection: own,
        });
        assert.deepEqual(seen, [{ type: "ADDED" }]);
      },
    );
    assert.deepEqual(accepts, [
      own
        ? "application/vnd.kubernetes.protobuf, application/json"
        : "application/json",
    ]);
  }
});

Deno.test("getProtobufOrJson returns protobuf bytes or parsed JSON, as the server chose", async () => {
  await withServer(
    (req) =>
      new URL(req.url).pathname === "/pb"
        ? new Response(new Uint8Array([0x6b, 0x38, 0x73, 0]), {
          headers: { "content-type": "application/vnd.kubernetes.protobuf" },
        })
        : Response.json({ kind: "LeaseList" }),
    async (client) => {
      assert.deepEqual(await client.getProtobufOrJson("/pb"), {
        protobuf: new Uint8Array([0x6b, 0x38, 0x73, 0]),
      });
      assert.deepEqual(await client.getProtobufOrJson("/json"), {
        json: { kind: "LeaseList" },
      });
    },
  );
});
