/* SPDX-License-Identifier: (MIT OR GPL-2.0-only) */
/*
 * Shared between gotls.bpf.c (kernel) and bpf/gotls_event.ts (user space):
 * the record the Go TLS probe emits for each HTTP/2 frame of interest that
 * crosses crypto/tls.(*Conn).Write or Read in a traced process. Keep
 * gotls_event.ts in step: its test checks the size and every offset.
 */
#ifndef EARTHWORM_GOTLS_H
#define EARTHWORM_GOTLS_H

/* Most payload bytes one record carries. */
#define GOTLS_CAPTURE_MAX 256
/* Payload bytes captured per frame type (the rest is not needed). */
#define GOTLS_CAPTURE_DATA 256   /* sent DATA that starts like a Lease: its body */
#define GOTLS_CAPTURE_HEADERS 16 /* server HEADERS: :status is the first field */
#define GOTLS_CAPTURE_RST 4      /* error code */
#define GOTLS_CAPTURE_GOAWAY 8   /* last stream id, error code */

/* Direction of the plaintext, seen from the traced process. */
enum gotls_dir {
	GOTLS_WRITE = 0, /* (*Conn).Write: sent */
	GOTLS_READ = 1,  /* (*Conn).Read: received */
};

/* Record kinds. */
enum gotls_kind {
	GOTLS_FRAME = 1,   /* a frame header, with its payload's first bytes in this call */
	GOTLS_PAYLOAD = 2, /* more captured payload of the last frame, from a later call */
	GOTLS_CLOSE = 3,   /* (*Conn).Close: the connection ends */
};

/* HTTP/2 frame types (RFC 9113, 6). Only these are reported. */
#define H2_DATA 0x0
#define H2_HEADERS 0x1
#define H2_RST_STREAM 0x3
#define H2_GOAWAY 0x7
#define H2_CONTINUATION 0x9

/*
 * One record: GOTLS_RECORD_HEADER bytes, then data_len bytes of data.
 * ts_ns is CLOCK_MONOTONIC: for a sent frame, the entry of the Write that
 * carried its header's first byte; for a received frame, the return of the
 * Read that completed its header.
 */
struct gotls_record {
	__u64 ts_ns;                  /*  0 */
	__u64 conn;                   /*  8 address of the tls.Conn */
	__u32 pid;                    /* 16 tgid */
	__u32 seq;                    /* 20 calls seen on this connection and direction */
	__u32 stream_id;              /* 24 */
	__u32 length;                 /* 28 frame payload length */
	__u32 offset;                 /* 32 offset of data in the frame payload */
	__u16 data_len;               /* 36 bytes of data that follow the header */
	__u8 kind;                    /* 38 enum gotls_kind */
	__u8 dir;                     /* 39 enum gotls_dir */
	__u8 type;                    /* 40 frame type */
	__u8 flags;                   /* 41 frame flags */
	__u8 _pad[6];                 /* 42 */
	__u8 data[GOTLS_CAPTURE_MAX]; /* 48 */
};

#define GOTLS_RECORD_HEADER 48

/* Indexes of the per-CPU stats array. */
enum gotls_stat {
	GOTLS_STAT_CALLS = 0,      /* Write and Read calls walked */
	GOTLS_STAT_FRAMES = 1,     /* frame headers parsed */
	GOTLS_STAT_RECORDS = 2,    /* records emitted */
	GOTLS_STAT_SYNCED = 3,     /* a direction found the frame boundaries */
	GOTLS_STAT_DESYNC = 4,     /* an invalid frame header: sync lost */
	GOTLS_STAT_OVERFLOW = 5,   /* a call held more frames than one walk can parse */
	GOTLS_STAT_READ_MISS = 6,  /* a Read returned without its entry recorded */
	GOTLS_STAT_UNSYNCED = 7,   /* calls skipped while looking for frame boundaries */
	GOTLS_STAT_MAX = 8,
};

#endif /* EARTHWORM_GOTLS_H */
