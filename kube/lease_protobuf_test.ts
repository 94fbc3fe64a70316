import assert from "node:assert/strict";
import {
  decodeLease,
  decodeLeaseList,
  decodeWatchEvent,
  ProtobufError,
} from "./lease_protobuf.ts";
import { toLease } from "./lease_api.ts";

// Recorded from kube-apiserver v1.34 (tests/cluster) with curl, once with
// `Accept: application/vnd.kubernetes.protobuf` and once in JSON, for the
// same Leases: one with every spec field, a non-ASCII holder and labels and
// annotations to step over; one with an empty spec, deleted; a renewal that
// clears the holder; bookmarks; a watch from a resourceVersion too old.
const data = (name: string) =>
  Deno.readFileSync(new URL(`../tests/testdata/${name}`, import.meta.url));
const jsonLines = (name: string) =>
  new TextDecoder().decode(data(name)).trim().split("\n").map((l) =>
    JSON.parse(l)
  );

/** Cuts a protobuf watch body into its frames (4-byte big-endian lengths). */
function frames(body: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  for (let i = 0; i < body.length;) {
    const len = view.getUint32(i);
    out.push(body.subarray(i + 4, i + 4 + len));
    i += 4 + len;
  }
  return out;
}

Deno.test("protobuf watch events decode to the Leases the JSON stream carries", () => {
  const json = jsonLines("lease_watch.jsonl").filter((e) =>
    e.type !== "BOOKMARK"
  );
  const events = frames(data("lease_watch.pb")).map((f) => decodeWatchEvent(f));
  const changes = events.filter((e) => e.type !== "BOOKMARK");
  assert.deepEqual(
    changes.map((e) => e.type),
    ["ADDED", "ADDED", "MODIFIED", "DELETED"],
  );
  // Decoded Leases are marked as such: the watch loop takes them as they are.
  assert.deepEqual(
    changes,
    json.map((e) => ({ type: e.type, object: toLease(e.object), lease: true })),
  );
  // The renewal that cleared the holder, to the microsecond.
  assert.deepEqual(changes[2]!.object, {
    metadata: {
      name: "controller-a",
      namespace: "fixture",
      uid: "92133bc5-b4eb-4e4b-9f85-dd7c5a856cfa",
      resourceVersion: "74366",
      creationTimestamp: "2026-12-02T04:48:21Z",
    },
    spec: {
      holderIdentity: null,
      leaseDurationSeconds: 15,
      acquireTime: "2026-12-02T04:50:01.000001Z",
      renewTime: "2026-12-02T04:50:04.999999Z",
      leaseTransitions: 3,
    },
  });
  assert.equal(
    (changes[0]!.object as { spec: { holderIdentity: string } }).spec
      .holderIdentity,
    "nöde-1_7f3e",
  );
  // A bookmark carries only its resourceVersion.
  const bookmark = events.find((e) => e.type === "BOOKMARK")!;
  assert.match(
    (bookmark.object as { metadata: { resourceVersion: string } }).metadata
      .resourceVersion,
    /^\d+$/,
  );
  assert.equal(
    (bookmark.object as { metadata: { name: string } }).metadata.name,
    "",
  );
});

Deno.test("a protobuf watch's ERROR event decodes to the Status watch_loop reads", () => {
  const [json] = jsonLines("lease_watch_expired.jsonl");
  const [frame, ...rest] = frames(data("lease_watch_expired.pb"));
  assert.equal(rest.length, 0);
  const ev = decodeWatchEvent(frame!);
  assert.equal(ev.type, "ERROR");
  assert.deepEqual(ev.object, {
    code: json.object.code,
    reason: json.object.reason,
    message: json.object.message,
  });
  assert.equal((ev.object as { code: number }).code, 410);
});

Deno.test("a protobuf LeaseList decodes to the JSON list's Leases and resourceVersion", () => {
  const json = JSON.parse(new TextDecoder().decode(data("lease_list.json")));
  const page = decodeLeaseList(data("lease_list.pb"));
  // (Two requests: the list's resourceVersion is each one's latest.)
  assert.match(page.resourceVersion ?? "", /^\d+$/);
  assert.ok(
    Number(page.resourceVersion) >= Number(json.metadata.resourceVersion),
  );
  assert.equal(page.continue, undefined);
  assert.deepEqual(
    page.items,
    json.items.map((i: unknown) => toLease(i)),
  );
  assert.ok(page.items.length >= 1);
});

Deno.test("a Lease's bytes decode with or without its namespace", () => {
  const [frame] = frames(data("lease_watch.pb"));
  const ev = decodeWatchEvent(frame!, "fallback");
  assert.equal(
    (ev.object as { metadata: { namespace: string } }).metadata.namespace,
    "fixture",
  );
  // The object inside the frame is a whole encoded Lease: k8s\0 + Unknown.
  const start = frame!.indexOf(0x6b); // "k" of k8s\0
  assert.deepEqual(decodeLease(frame!.subarray(start)), ev.object);
});

Deno.test("truncated or foreign protobuf is rejected with a ProtobufError, never misread", () => {
  const [frame] = frames(data("lease_watch.pb"));
  for (const cut of [1, 7, 20, frame!.length - 1]) {
    assert.throws(
      () => decodeWatchEvent(frame!.subarray(0, cut)),
      ProtobufError,
      `cut at ${cut}`,
    );
  }
  assert.throws(
    () => decodeLeaseList(new TextEncoder().encode('{"kind":"LeaseList"}')),
    /does not start with k8s/,
  );
  assert.throws(() => decodeLeaseList(data("lease_list.pb").subarray(0, 4)));
  // A list of something else.
  const [error] = frames(data("lease_watch_expired.pb"));
  const status = error!.subarray(error!.indexOf(0x6b));
  assert.throws(() => decodeLeaseList(status), /expected a LeaseList/);
});
