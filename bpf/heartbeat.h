/* SPDX-License-Identifier: (MIT OR GPL-2.0-only) */
/*
 * Shared between heartbeat.bpf.c (kernel) and bpf/wire_event.ts (user space):
 * the event record, the connection tuple the agent inserts for connections
 * opened before it started, and the event kinds. Keep wire_event.ts in step:
 * its test checks the size and every offset against these comments.
 */
#ifndef EARTHWORM_HEARTBEAT_H
#define EARTHWORM_HEARTBEAT_H

#define WIRE_COMM_LEN 16

/* Event kinds. */
enum wire_event_type {
	WIRE_EV_TRACK = 1,    /* a connection starts being followed */
	WIRE_EV_EXCHANGE = 2, /* a request got its answer's first segment, or none */
	WIRE_EV_RETRANS = 3,  /* a segment was retransmitted */
	WIRE_EV_RESET = 4,    /* a reset was sent or received */
	WIRE_EV_STATE = 5,    /* the TCP state changed */
};

/* How a connection came to be followed (event.origin). */
enum wire_origin {
	WIRE_ORIGIN_CONNECT = 1, /* seen at connect() time */
	WIRE_ORIGIN_ADOPTED = 2, /* opened before the agent, found in /proc */
};

/* event.detail for WIRE_EV_RESET. */
enum wire_reset_dir {
	WIRE_RESET_SENT = 1,
	WIRE_RESET_RECEIVED = 2,
};

/*
 * A connection seen from the local side. Addresses are 16 bytes, IPv4 as
 * IPv4-mapped IPv6 (::ffff:a.b.c.d); ports in host byte order. 36 bytes.
 */
struct wire_tuple {
	__u8 laddr[16];  /*  0 */
	__u8 raddr[16];  /* 16 */
	__u16 lport;     /* 32 */
	__u16 rport;     /* 34 */
};

/* Value of the tuple map: who owns the connection and its socket cookie. 32 bytes. */
struct wire_owner {
	__u64 cookie;              /*  0 0 until the first packet is seen */
	__u32 pid;                 /*  8 */
	char comm[WIRE_COMM_LEN];  /* 12 */
	__u32 _pad;                /* 28 */
};

/* One event, 136 bytes. Times are CLOCK_MONOTONIC nanoseconds. */
struct wire_event {
	__u64 ts_ns;               /*   0 when the event was emitted */
	__u64 cookie;              /*   8 socket cookie */
	__u64 start_ns;            /*  16 exchange: first request byte sent */
	__u64 first_rx_ns;         /*  24 exchange: first response byte, 0 if none */
	__u64 last_rx_ns;          /*  32 exchange: last response byte counted */
	__u64 bytes_sent;          /*  40 exchange: request bytes */
	__u64 bytes_received;      /*  48 exchange: response bytes counted (its first segment) */
	__u8 laddr[16];            /*  56 */
	__u8 raddr[16];            /*  72 */
	__u32 pid;                 /*  88 tgid of the owner */
	__u32 srtt_us;             /* 92 smoothed RTT, microseconds */
	__u32 total_retrans;       /* 96 connection's retransmits so far */
	__u32 retrans;             /* 100 exchange: retransmits during it */
	__u32 resets;              /* 104 connection's resets so far */
	__u16 lport;               /* 108 */
	__u16 rport;               /* 110 */
	__u8 type;                 /* 112 enum wire_event_type */
	__u8 origin;               /* 113 enum wire_origin */
	__u8 old_state;            /* 114 state events: TCP_* before */
	__u8 new_state;            /* 115 state events: TCP_* after; reset: direction */
	char comm[WIRE_COMM_LEN];  /* 116 */
	__u32 _pad;                /* 132 */
};

#endif /* EARTHWORM_HEARTBEAT_H */
