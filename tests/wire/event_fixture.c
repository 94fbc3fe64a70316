// SPDX-License-Identifier: MIT
/*
 * Writes one struct wire_event (bpf/heartbeat.h) with distinct field values
 * to stdout: the fixture tests/testdata/wire_event_exchange.bin, and the
 * check that the TypeScript decoder still matches the C layout.
 *   cc -I bpf tests/wire/event_fixture.c -o /tmp/fixture && /tmp/fixture > out.bin
 */
#include <linux/types.h>
#include <stdio.h>
#include <string.h>
#include "heartbeat.h"

_Static_assert(sizeof(struct wire_event) == 136, "struct wire_event must be 136 bytes");
_Static_assert(sizeof(struct wire_tuple) == 36, "struct wire_tuple must be 36 bytes");
_Static_assert(sizeof(struct wire_owner) == 32, "struct wire_owner must be 32 bytes");

int main(void)
{
	struct wire_event ev;
	const __u8 l[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 7 };
	const __u8 r[16] = { 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 };

	memset(&ev, 0, sizeof(ev));
	ev.ts_ns = 1000000123456789ULL;
	ev.cookie = 0x0102030405060708ULL;
	ev.start_ns = 1000000100000000ULL;
	ev.first_rx_ns = 1000000102500000ULL;
	ev.last_rx_ns = 1000000103000000ULL;
	ev.bytes_sent = 612;
	ev.bytes_received = 4097;
	memcpy(ev.laddr, l, 16);
	memcpy(ev.raddr, r, 16);
	ev.pid = 4242;
	ev.srtt_us = 1234;
	ev.total_retrans = 7;
	ev.retrans = 2;
	ev.resets = 1;
	ev.lport = 51234;
	ev.rport = 6443;
	ev.type = WIRE_EV_EXCHANGE;
	ev.origin = WIRE_ORIGIN_ADOPTED;
	ev.old_state = 1;
	ev.new_state = 4;
	strcpy(ev.comm, "kubelet");
	fwrite(&ev, sizeof(ev), 1, stdout);
	return 0;
}
