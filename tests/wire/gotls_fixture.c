// SPDX-License-Identifier: MIT
/*
 * Writes one struct gotls_record (bpf/gotls.h) as the probe emits it, the
 * header and then data_len bytes of data, with distinct field values, to
 * stdout: the fixture tests/testdata/gotls_record_frame.bin, and the check
 * that the TypeScript decoder still matches the C layout.
 *   cc -I bpf tests/wire/gotls_fixture.c -o /tmp/fixture && /tmp/fixture > out.bin
 */
#include <linux/types.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include "gotls.h"

_Static_assert(sizeof(struct gotls_record) == GOTLS_RECORD_HEADER + GOTLS_CAPTURE_MAX,
	       "struct gotls_record must be its header plus the capture");
_Static_assert(offsetof(struct gotls_record, data) == GOTLS_RECORD_HEADER,
	       "data must follow the header");

int main(void)
{
	struct gotls_record r;
	const __u8 data[5] = { 0x88, 0x5f, 0x8b, 0x1d, 0x75 };

	memset(&r, 0, sizeof(r));
	r.ts_ns = 1000000123456789ULL;
	r.conn = 0xc000123450ULL;
	r.pid = 4242;
	r.seq = 77;
	r.stream_id = 0x80000007; /* the reserved bit is reported as sent */
	r.length = 300;
	r.offset = 11;
	r.data_len = sizeof(data);
	r.kind = GOTLS_PAYLOAD;
	r.dir = GOTLS_READ;
	r.type = H2_HEADERS;
	r.flags = 0x04;
	memcpy(r.data, data, sizeof(data));
	fwrite(&r, GOTLS_RECORD_HEADER + r.data_len, 1, stdout);
	return 0;
}
