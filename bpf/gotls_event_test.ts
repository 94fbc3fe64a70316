import assert from "node:assert/strict";
import {
  decodeGoTlsRecord,
  GOTLS_CAPTURE_MAX,
  GOTLS_RECORD_HEADER,
  GOTLS_RECORD_OFFSETS,
} from "./gotls_event.ts";

// Written by tests/wire/gotls_fixture.c from struct gotls_record (bpf/gotls.h).
const fixture = Deno.readFileSync(
  new URL("../tests/testdata/gotls_record_frame.bin", import.meta.url),
);

Deno.test("fixture written by the C struct is its header plus five data bytes", () => {
  assert.equal(fixture.length, GOTLS_RECORD_HEADER + 5);
  assert.equal(GOTLS_RECORD_OFFSETS.data, GOTLS_RECORD_HEADER);
  assert.equal(GOTLS_RECORD_OFFSETS.flags + 1 + 6, GOTLS_RECORD_HEADER);
});

Deno.test("decoder reads every field of a record at its C offset", () => {
  assert.deepEqual(decodeGoTlsRecord(fixture), {
    kind: "payload",
    tsNs: 1000000123456789n,
    pid: 4242,
    conn: "c000123450",
    dir: "read",
    seq: 77,
    type: 1,
    flags: 4,
    streamId: 7,
    length: 300,
    offset: 11,
    data: new Uint8Array([0x88, 0x5f, 0x8b, 0x1d, 0x75]),
  });
});

Deno.test("decoder rejects short records, unknown kinds and overlong data with a fix", () => {
  assert.throws(
    () => decodeGoTlsRecord(fixture.subarray(0, 40)),
    /40 bytes, expected at least 48: rebuild/,
  );
  const bad = fixture.slice();
  bad[GOTLS_RECORD_OFFSETS.kind] = 9;
  assert.throws(() => decodeGoTlsRecord(bad), /unknown kind 9: rebuild/);
  const long = fixture.slice();
  new DataView(long.buffer).setUint16(
    GOTLS_RECORD_OFFSETS.dataLen,
    GOTLS_CAPTURE_MAX + 1,
    true,
  );
  assert.throws(() => decodeGoTlsRecord(long), /claims 257 data bytes/);
});
