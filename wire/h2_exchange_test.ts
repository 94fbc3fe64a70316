import assert from "node:assert/strict";
import {
  decodeStatus,
  H2ExchangeTracker,
  type H2Record,
  matchLease,
} from "./h2_exchange.ts";

// The first 256 bytes of a Lease PUT body that the Go test kubelet
// (client-go, protobuf) sent, as the probe captured them.
const LEASE_PUT = Deno.readFileSync(
  new URL("../tests/testdata/lease_put_protobuf.bin", import.meta.url),
);
const LEASE_LENGTH = 303; // the whole body
const enc = new TextEncoder();

/** A frame record with neutral defaults. */
function rec(over: Partial<H2Record>): H2Record {
  return {
    kind: "frame",
    tsNs: 0n,
    pid: 7,
    conn: "c000100000",
    dir: "write",
    type: 0,
    flags: 0,
    streamId: 1,
    length: 0,
    offset: 0,
    data: new Uint8Array(0),
    ...over,
  };
}

const HEADERS = 1, DATA = 0, RST = 3, GOAWAY = 7;
const END_STREAM = 1, END_HEADERS = 4;

/** The records of one Lease PUT on `stream`, sent at `t` and answered 200 at `t + 5 ms`. */
function leasePut(stream: number, t: bigint, conn = "c000100000"): H2Record[] {
  return [
    rec({
      conn,
      tsNs: t,
      type: HEADERS,
      flags: END_HEADERS,
      streamId: stream,
      length: 17,
    }),
    rec({
      conn,
      tsNs: t + 100_000n,
      type: DATA,
      flags: END_STREAM,
      streamId: stream,
      length: LEASE_LENGTH,
      data: LEASE_PUT,
    }),
    rec({
      conn,
      tsNs: t + 5_000_000n,
      dir: "read",
      type: HEADERS,
      flags: END_HEADERS,
      streamId: stream,
      length: 40,
      data: new Uint8Array([0x88, 0x7f, 0x00, 0x9a]),
    }),
    rec({
      conn,
      tsNs: t + 5_400_000n,
      dir: "read",
      type: DATA,
      flags: END_STREAM,
      streamId: stream,
      length: 303,
    }),
  ];
}

function pushAll(t: H2ExchangeTracker, records: H2Record[]) {
  return records.flatMap((r) => t.push(r));
}

Deno.test("the captured kubelet Lease body names its namespace, name and resourceVersion", () => {
  const m = matchLease(LEASE_PUT);
  assert.ok(m);
  assert.equal(m.encoding, "protobuf");
  assert.equal(m.name, "gk-1");
  assert.equal(m.namespace, "kube-node-lease");
  assert.match(m.resourceVersion ?? "", /^\d+$/);
});

Deno.test("a Lease PUT and its 200 on the same stream make one exchange: request start, answer, end, bytes", () => {
  const t = new H2ExchangeTracker();
  const out = pushAll(t, leasePut(15, 1_000_000_000n));
  assert.equal(out.length, 1);
  assert.deepEqual(out[0], {
    pid: 7,
    conn: "c000100000",
    streamId: 15,
    namespace: "kube-node-lease",
    name: "gk-1",
    resourceVersion: matchLease(LEASE_PUT)!.resourceVersion,
    encoding: "protobuf",
    startNs: 1_000_000_000n,
    answerNs: 1_005_000_000n,
    endNs: 1_005_400_000n,
    status: 200,
    outcome: "answered",
    errorCode: null,
    requestBytes: 9 + 17 + 9 + LEASE_LENGTH,
    responseBytes: 9 + 40 + 9 + 303,
  });
  assert.equal(t.pendingStreams, 0);
});

Deno.test("watch, GET and PATCH streams interleaved with a renewal never become exchanges", () => {
  const t = new H2ExchangeTracker();
  const patch = enc.encode('{"data":{"beat":"1"}}');
  const configMap = new Uint8Array([
    0x6b,
    0x38,
    0x73,
    0x00,
    0x0a,
    0x0f,
    0x0a,
    0x02,
    0x76,
    0x31,
    0x12,
    0x09,
    ...enc.encode("ConfigMap"),
  ]);
  const records = [
    // A watch: HEADERS with END_STREAM (no body), then server DATA forever.
    rec({
      type: HEADERS,
      flags: END_STREAM | END_HEADERS,
      streamId: 9,
      length: 30,
    }),
    rec({
      dir: "read",
      type: HEADERS,
      flags: END_HEADERS,
      streamId: 9,
      length: 20,
      data: new Uint8Array([0x88]),
    }),
    rec({ dir: "read", type: DATA, streamId: 9, length: 224 }),
    // A PATCH with a JSON body that is no Lease.
    rec({ type: HEADERS, flags: END_HEADERS, streamId: 13, length: 21 }),
    rec({
      type: DATA,
      flags: END_STREAM,
      streamId: 13,
      length: patch.length,
      data: patch,
    }),
    ...leasePut(15, 2_000_000_000n).slice(0, 2),
    rec({
      dir: "read",
      type: HEADERS,
      flags: END_HEADERS,
      streamId: 13,
      length: 36,
      data: new Uint8Array([0x88]),
    }),
    rec({ dir: "read", type: DATA, streamId: 9, length: 1718 }),
    rec({
      dir: "read",
      type: DATA,
      flags: END_STREAM,
      streamId: 13,
      length: 204,
    }),
    // A protobuf POST of another kind.
    rec({ type: HEADERS, flags: END_HEADERS, streamId: 17, length: 12 }),
    rec({
      type: DATA,
      flags: END_STREAM,
      streamId: 17,
      length: configMap.length,
      data: configMap,
    }),
    ...leasePut(15, 2_000_000_000n).slice(2),
  ];
  const out = pushAll(t, records);
  assert.deepEqual(out.map((e) => e.streamId), [15]);
  assert.equal(t.pendingStreams, 0, "only Lease streams are followed");
});

Deno.test("a request body the probe did not copy (no Lease) never becomes an exchange", () => {
  const t = new H2ExchangeTracker();
  const out = pushAll(t, [
    rec({ type: HEADERS, flags: END_HEADERS, streamId: 13, length: 21 }),
    rec({ type: DATA, flags: END_STREAM, streamId: 13, length: 21 }),
    rec({
      dir: "read",
      type: HEADERS,
      flags: END_HEADERS,
      streamId: 13,
      length: 36,
      data: new Uint8Array([0x88]),
    }),
    rec({
      dir: "read",
      type: DATA,
      flags: END_STREAM,
      streamId: 13,
      length: 204,
    }),
  ]);
  assert.deepEqual(out, []);
  assert.equal(t.pendingStreams, 0);
});

Deno.test("concurrent Lease streams pair by stream id when answers come back in another order", () => {
  const t = new H2ExchangeTracker();
  const a = leasePut(21, 1_000n), b = leasePut(23, 2_000n);
  const out = pushAll(t, [
    a[0]!,
    b[0]!,
    a[1]!,
    b[1]!,
    b[2]!,
    b[3]!,
    a[2]!,
    a[3]!,
  ]);
  assert.deepEqual(out.map((e) => [e.streamId, e.startNs]), [[23, 2_000n], [
    21,
    1_000n,
  ]]);
});

Deno.test("streams are per connection: the same stream id on two connections is two exchanges", () => {
  const t = new H2ExchangeTracker();
  const out = pushAll(t, [
    ...leasePut(3, 10n, "c1"),
    ...leasePut(3, 20n, "c2"),
  ]);
  assert.deepEqual(out.map((e) => [e.conn, e.streamId]), [["c1", 3], [
    "c2",
    3,
  ]]);
});

Deno.test("a body whose first bytes straddle Writes is matched from the payload records that follow", () => {
  const t = new H2ExchangeTracker();
  const [headers, data, ...answer] = leasePut(5, 100n);
  const out = pushAll(t, [
    headers!,
    { ...data!, data: LEASE_PUT.subarray(0, 3) },
    { ...data!, kind: "payload", offset: 3, data: LEASE_PUT.subarray(3, 40) },
    { ...data!, kind: "payload", offset: 40, data: LEASE_PUT.subarray(40) },
    ...answer,
  ]);
  assert.equal(out.length, 1);
  assert.equal(out[0]!.name, "gk-1");
});

Deno.test("a status whose header block straddles Reads is decoded from its continuation", () => {
  const t = new H2ExchangeTracker();
  const [headers, data, answer, end] = leasePut(5, 100n);
  const literal = new Uint8Array([0x48, 0x03, ...enc.encode("409")]);
  const out = pushAll(t, [
    headers!,
    data!,
    { ...answer!, data: literal.subarray(0, 2) },
    { ...answer!, kind: "payload", offset: 2, data: literal.subarray(2) },
    end!,
  ]);
  assert.equal(out[0]!.status, 409);
});

Deno.test("a Lease outside kube-node-lease is ignored unless the namespace filter is off", () => {
  const body = enc.encode(
    '{"kind":"Lease","apiVersion":"coordination.k8s.io/v1","metadata":{"name":"kube-scheduler","namespace":"kube-system","resourceVersion":"42"},"spec":{}}',
  );
  const records = [
    rec({ type: HEADERS, flags: END_HEADERS, streamId: 1, length: 10 }),
    rec({
      type: DATA,
      flags: END_STREAM,
      streamId: 1,
      length: body.length,
      data: body,
    }),
    rec({
      dir: "read",
      type: HEADERS,
      flags: END_HEADERS | END_STREAM,
      streamId: 1,
      length: 1,
      data: new Uint8Array([0x88]),
    }),
  ];
  assert.deepEqual(pushAll(new H2ExchangeTracker(), records), []);
  const all = pushAll(new H2ExchangeTracker({ namespace: null }), records);
  assert.equal(all.length, 1);
  assert.deepEqual(
    [
      all[0]!.encoding,
      all[0]!.namespace,
      all[0]!.name,
      all[0]!.resourceVersion,
      all[0]!.endNs,
    ],
    ["json", "kube-system", "kube-scheduler", "42", 0n],
  );
});

Deno.test("reset, GOAWAY and close end pending Lease exchanges without an answer", () => {
  const t = new H2ExchangeTracker();
  const [h1, d1] = leasePut(1, 1n),
    [h3, d3] = leasePut(3, 2n),
    [h5, d5] = leasePut(5, 3n);
  pushAll(t, [h1!, d1!, h3!, d3!, h5!, d5!]);
  const reset = t.push(
    rec({
      dir: "read",
      type: RST,
      streamId: 1,
      tsNs: 7_000_000_000n,
      length: 4,
      data: new Uint8Array([0, 0, 0, 8]),
    }),
  );
  assert.deepEqual(
    reset.map((
      e,
    ) => [e.streamId, e.outcome, e.errorCode, e.status, e.answerNs]),
    [[1, "reset", 8, null, null]],
  );
  // Ended when the reset came: how long it waited without an answer.
  assert.ok(reset[0]!.endNs !== null && reset[0]!.endNs > reset[0]!.startNs);
  const goaway = t.push(rec({
    dir: "read",
    type: GOAWAY,
    streamId: 0,
    length: 8,
    data: new Uint8Array([0, 0, 0, 3, 0, 0, 0, 0]),
  }));
  assert.deepEqual(goaway.map((e) => [e.streamId, e.outcome, e.errorCode]), [[
    5,
    "refused",
    0,
  ]]);
  const closed = t.push(rec({ kind: "close", tsNs: 9n }));
  assert.deepEqual(closed.map((e) => [e.streamId, e.outcome]), [[3, "closed"]]);
  assert.equal(t.pendingStreams, 0);
});

Deno.test("the oldest unanswered streams are forgotten past the bound", () => {
  const t = new H2ExchangeTracker({ maxStreams: 2 });
  for (const s of [1, 3, 5]) pushAll(t, leasePut(s, BigInt(s)).slice(0, 2));
  assert.equal(t.pendingStreams, 2);
  assert.deepEqual(pushAll(t, leasePut(1, 1n).slice(2)), []);
});

Deno.test(":status decodes from static indexes and literals, plain or Huffman, and not from the dynamic table", () => {
  assert.equal(decodeStatus(new Uint8Array([0x88]), 0), 200);
  assert.equal(decodeStatus(new Uint8Array([0x8d]), 0), 404);
  assert.equal(
    decodeStatus(new Uint8Array([0x48, 0x03, ...enc.encode("409")]), 0),
    409,
  );
  // "409" Huffman-coded: 011010 00000 011111, padded with ones.
  assert.equal(
    decodeStatus(new Uint8Array([0x48, 0x83, 0x68, 0x0f, 0xff]), 0),
    409,
  );
  // Literal without indexing, name index 8.
  assert.equal(
    decodeStatus(new Uint8Array([0x08, 0x03, ...enc.encode("201")]), 0),
    201,
  );
  // A dynamic table size update first (to 4096), then :status 200.
  assert.equal(decodeStatus(new Uint8Array([0x3f, 0xe1, 0x1f, 0x88]), 0), 200);
  // PADDED (pad length) and PRIORITY (5 bytes) come before the block.
  assert.equal(
    decodeStatus(new Uint8Array([2, 0, 0, 0, 1, 16, 0x88, 0, 0]), 0x28),
    200,
  );
  assert.equal(
    decodeStatus(new Uint8Array([0xbe]), 0),
    null,
    "index 62: dynamic",
  );
  assert.equal(
    decodeStatus(new Uint8Array([0x48, 0x03, 0x34]), 0),
    null,
    "cut",
  );
  assert.equal(
    decodeStatus(new Uint8Array([0x41, 0x03, ...enc.encode("abc")]), 0),
    null,
    ":authority",
  );
});

Deno.test("bodies that are not Leases, or too short to tell, do not match", () => {
  assert.equal(matchLease(enc.encode('{"data":{"beat":"1"}}')), null);
  assert.equal(
    matchLease(enc.encode('{"kind":"Lease","apiVersion":"v1"}')),
    null,
  );
  assert.equal(matchLease(new Uint8Array([0x6b, 0x38])), null);
  const cut = matchLease(LEASE_PUT.subarray(0, 47)); // inside the name
  assert.deepEqual(cut, {
    namespace: null,
    name: null,
    resourceVersion: null,
    encoding: "protobuf",
  });
});
