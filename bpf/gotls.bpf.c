// SPDX-License-Identifier: (MIT OR GPL-2.0-only)
/*
 * Earthworm's Go TLS probe: uprobes on crypto/tls.(*Conn).Write, Read and
 * Close of a Go program (the kubelet) see the HTTP/2 plaintext of its
 * connection to the API server, walk its frames per connection and
 * direction, and report the frames a request/response pairing needs
 * (HEADERS, DATA, RST_STREAM, GOAWAY, CONTINUATION) with the first bytes
 * of their payload. SETTINGS, PING, WINDOW_UPDATE and PRIORITY frames are
 * walked over and never reported.
 *
 * Go's register ABI (Go 1.17+, amd64): arguments and results in RAX, RBX,
 * RCX, RDI...; R14 holds the running goroutine (g).
 * - Write(b): at the function's frame start (past the stack check, so a
 *   stack growth does not fire it twice) RAX is the *Conn, RBX/RCX the
 *   slice's pointer and length: the whole slice is sent.
 * - Read(b): its entry records the *Conn and buffer under the goroutine
 *   (not the thread: a goroutine blocked in Read may resume on another
 *   thread); a uprobe on each RET (uretprobes would corrupt Go stacks,
 *   which move) finds them again and reads the RAX bytes returned. A
 *   buffer on the goroutine's own stack moves with it when the stack grows
 *   during the Read: its address is shifted by how far the stack's top
 *   moved (runtime.copystack keeps offsets from the top).
 * - Close: forgets the connection, whose address Go may reuse.
 *
 * Frame sync: a frame's header and payload may straddle calls, so each
 * connection and direction carries the payload bytes still to come and a
 * partial 9-byte header. A direction is in sync from the client preface
 * ("PRI * HTTP/2.0...") on; on a connection opened before the probe, once
 * one call parses as whole valid frames ending exactly at its end. A header
 * that breaks the protocol's rules (type, flags, stream id, length) drops
 * sync until then. A call is walked by one program that parses up to
 * FRAMES_PER_PROG frames and tail-calls itself for more.
 *
 * Kernels: bpf_probe_read_user needs 5.5, the ring buffer 5.8 (user space
 * switches `events` to a perf event array on 5.5-5.7).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "gotls.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

/* The verifier treats frozen .rodata as constants and prunes the unused path,
 * so one object serves ring buffer (5.8+) and perf buffer kernels. */
const volatile bool use_ringbuf = true;

#define H2_PRIORITY 0x2
#define H2_SETTINGS 0x4
#define H2_PUSH_PROMISE 0x5
#define H2_PING 0x6
#define H2_WINDOW_UPDATE 0x8

#define H2_HEADER_LEN 9
#define H2_PREFACE_LEN 24
#define FRAMES_PER_PROG 48
/* A call longer than this is not walked (Go writes and reads at most a
 * 16 KiB TLS record's worth, or one frame, at a time). */
#define MAX_CALL (1 << 24)

/* Hides x's known range from clang so the mask that bounds it for the
 * verifier is not optimised away. */
#define bounded(x, mask) ({ __u32 _v = (x); asm volatile("" : "+r"(_v)); _v & (mask); })

/* Where a connection's plaintext stands in one direction. */
struct h2_state {
	__u64 hdr_ts;    /* call that carried a partial header's first byte */
	__u32 remaining; /* payload bytes of the current frame still to come */
	__u32 cap_left;  /* of those, bytes still to capture */
	__u32 cap_off;   /* payload offset of the next captured byte */
	__u32 length;    /* current frame: payload length */
	__u32 stream_id; /* current frame: stream */
	__u32 seq;       /* calls seen */
	__u8 type;       /* current frame: type */
	__u8 flags;      /* current frame: flags */
	__u8 synced;     /* frame boundaries known */
	__u8 hdr_len;    /* bytes of a partial header in hdr */
	/* 9 would do; 24 lets the verifier bound a read of up to 9 bytes at
	 * an offset of up to 8 (plus alignment). */
	__u8 hdr[24];
};

struct conn_key {
	__u64 conn;
	__u32 pid;
	__u32 dir;
};

struct read_key {
	__u64 g;
	__u32 pid;
	__u32 _pad;
};

struct read_args {
	__u64 conn;
	__u64 buf;
	__u64 stack_hi; /* top of the goroutine stack at entry, when buf is on it */
};

/* runtime.g starts with its stack bounds (g.stack.lo, g.stack.hi): the
 * layout of every Go release. */
struct go_stack {
	__u64 lo;
	__u64 hi;
};

/* The call being walked, shared with the tail-called walker. */
struct walk {
	struct conn_key key;
	__u64 buf;
	__u64 ts;
	__u32 len;
	__u32 pos;
	__u8 validating; /* looking for sync: check headers, report nothing */
	__u8 _pad[7];
	struct gotls_record rec;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct conn_key);
	__type(value, struct h2_state);
} states SEC(".maps");

/* Read's arguments between its entry and its RET, per goroutine. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct read_key);
	__type(value, struct read_args);
} reads SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct walk);
} scratch SEC(".maps");

/* Ring buffer; user space turns it into a perf event array on 5.4-5.7. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} events SEC(".maps");

/* Records lost because the buffer was full. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, GOTLS_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

int gotls_walk(struct pt_regs *ctx);

/* The walker tail-calls itself through this one-slot array (libbpf fills it). */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32)); /* sizes, not BTF types: the kernel refuses BTF here */
	__array(values, int(struct pt_regs *));
} walkers SEC(".maps") = {
	.values = { [0] = (void *)&gotls_walk },
};

static __always_inline void count(__u32 stat)
{
	__u64 *n = bpf_map_lookup_elem(&stats, &stat);

	if (n)
		*n += 1;
}

/*
 * Whether user space must be woken for the record: only for those that can
 * end an exchange (a response's END_STREAM, a reset, GOAWAY, a close). A
 * wakeup is an irq_work, a self-IPI that costs microseconds (tens in a VM);
 * the other records ride along with the next wakeup or poll timeout.
 */
static __always_inline bool wakes(const struct gotls_record *r)
{
	if (r->kind == GOTLS_CLOSE || r->type == H2_RST_STREAM || r->type == H2_GOAWAY)
		return true;
	return r->dir == GOTLS_READ && (r->type == H2_HEADERS || r->type == H2_DATA) &&
	       (r->flags & 0x01); /* END_STREAM */
}

/* Sends the record in w->rec with n data bytes. */
static __always_inline void emit(void *ctx, struct walk *w, __u32 n)
{
	__u32 zero = 0;
	__u64 *lost;
	long err;

	n = bounded(n, 0x1ff);
	if (n > GOTLS_CAPTURE_MAX)
		n = GOTLS_CAPTURE_MAX;
	w->rec.data_len = n;
	if (use_ringbuf)
		err = bpf_ringbuf_output(&events, &w->rec, GOTLS_RECORD_HEADER + n,
					 wakes(&w->rec) ? 0 : BPF_RB_NO_WAKEUP);
	else
		err = bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, &w->rec,
					    GOTLS_RECORD_HEADER + n);
	if (err) {
		lost = bpf_map_lookup_elem(&drops, &zero);
		if (lost)
			*lost += 1;
		return;
	}
	count(GOTLS_STAT_RECORDS);
}

/* Copies n payload bytes at user address src into the record. */
static __always_inline __u32 capture(struct walk *w, __u64 src, __u32 n)
{
	if (n > GOTLS_CAPTURE_MAX)
		n = GOTLS_CAPTURE_MAX;
	n = bounded(n, 0x1ff);
	if (n > GOTLS_CAPTURE_MAX)
		return 0;
	if (n && bpf_probe_read_user(w->rec.data, n, (void *)src))
		return 0;
	return n;
}

/* Payload bytes of a frame worth reporting; 0 for frames not reported. */
static __always_inline __u32 capture_size(__u8 type, __u8 dir)
{
	switch (type) {
	case H2_DATA:
		return dir == GOTLS_WRITE ? GOTLS_CAPTURE_DATA : 0;
	case H2_HEADERS:
		return dir == GOTLS_READ ? GOTLS_CAPTURE_HEADERS : 0;
	case H2_RST_STREAM:
		return GOTLS_CAPTURE_RST;
	case H2_GOAWAY:
		return GOTLS_CAPTURE_GOAWAY;
	default:
		return 0;
	}
}

/*
 * How a Lease body from a Go client starts: protobuf ("k8s\0", then a
 * runtime.Unknown whose TypeMeta is coordination.k8s.io/v1 Lease) or JSON
 * (encoding/json writes kind before apiVersion).
 */
#define LEASE_PB_LEN 37
#define LEASE_JSON_LEN 53
#define LEASE_WORDS 7 /* 8-byte words that cover the longer one */
static const union {
	char c[LEASE_WORDS * 8];
	__u64 w[LEASE_WORDS];
} lease_pb = { .c = "k8s\0\x0a\x1f\x0a\x16"
		    "coordination.k8s.io/v1"
		    "\x12\x05"
		    "Lease" },
  lease_json = { .c = "{\"kind\":\"Lease\",\"apiVersion\":\"coordination.k8s.io/v1\"" };

/* Bits of the bytes of word k (little endian) that lie below byte len. */
static __always_inline __u64 below(__u32 len, __u32 k)
{
	__u32 lo = k * 8;

	if (len >= lo + 8)
		return ~0ULL;
	if (len <= lo)
		return 0;
	return (1ULL << ((len - lo) * 8)) - 1;
}

/* Whether the first n bytes of a payload agree with a Lease's start
 * (compared a word at a time: the walker runs this for every sent DATA). */
static __always_inline bool lease_start(const __u8 *data, __u32 n)
{
	__u64 pb = 0, json = 0, d;

	for (int k = 0; k < LEASE_WORDS; k++) {
		if (k * 8 >= n)
			break;
		d = *(const __u64 *)(data + k * 8) & below(n, k);
		pb |= (d ^ lease_pb.w[k]) & below(n, k) & below(LEASE_PB_LEN, k);
		json |= (d ^ lease_json.w[k]) & below(n, k) & below(LEASE_JSON_LEN, k);
	}
	return !pb || !json;
}

/* The same for n bytes at payload offset off (a capture that straddled). */
static __always_inline bool lease_continues(const __u8 *data, __u32 off, __u32 n)
{
	__u8 pb = 0, json = 0; /* differences: OR-ed, not branched on (verifier states) */

	for (int i = 0; i < LEASE_JSON_LEN; i++) {
		__u32 at = bounded(off + i, 0x3f);

		if (i >= n || at >= LEASE_JSON_LEN)
			break;
		json |= data[i] ^ lease_json.c[at];
		if (at < LEASE_PB_LEN)
			pb |= data[i] ^ lease_pb.c[at];
	}
	return !pb || !json;
}

/*
 * Whether the n bytes captured in w->rec.data, at offset off of a frame's
 * payload, may be reported: anything but a sent DATA frame, and a sent
 * DATA frame only while its payload agrees with the start of a Lease. So
 * the probe copies to user space no request body but a Lease's (kubelet
 * requests carry pod status, certificate requests and more).
 */
static __always_inline bool payload_wanted(struct walk *w, __u32 off, __u32 n)
{
	if (w->rec.type != H2_DATA || w->key.dir != GOTLS_WRITE || !n)
		return true;
	if (off >= LEASE_JSON_LEN)
		return true;
	if (off == 0)
		return lease_start(w->rec.data, n);
	return lease_continues(w->rec.data, off, n);
}

static __always_inline bool reported(__u8 type)
{
	return type == H2_DATA || type == H2_HEADERS || type == H2_RST_STREAM ||
	       type == H2_GOAWAY || type == H2_CONTINUATION;
}

/*
 * Whether a frame header obeys RFC 9113: a known type, only its defined
 * flags (senders must leave the others unset), the reserved bit clear, a
 * stream id where one is required and none where it is forbidden, and the
 * fixed lengths. A peer that broke these would have the connection closed,
 * so a failure means the walk lost the frame boundaries.
 */
static __always_inline bool valid_header(__u8 type, __u8 flags, __u32 length, __u32 raw_stream)
{
	__u32 stream = raw_stream & 0x7fffffff;

	if (raw_stream & 0x80000000)
		return false;
	switch (type) {
	case H2_DATA:
		return stream && !(flags & ~0x09);
	case H2_HEADERS:
		return stream && !(flags & ~0x2d);
	case H2_PRIORITY:
		return stream && !flags && length == 5;
	case H2_RST_STREAM:
		return stream && !flags && length == 4;
	case H2_SETTINGS:
		return !stream && !(flags & ~0x01) && length % 6 == 0 &&
		       (!(flags & 0x01) || length == 0);
	case H2_PUSH_PROMISE:
		return stream && !(flags & ~0x0c) && length >= 4;
	case H2_PING:
		return !stream && !(flags & ~0x01) && length == 8;
	case H2_GOAWAY:
		return !stream && !flags && length >= 8;
	case H2_WINDOW_UPDATE:
		return !flags && length == 4;
	case H2_CONTINUATION:
		return stream && !(flags & ~0x04);
	default:
		return false;
	}
}

/*
 * Takes in the 9-byte header h of a frame whose payload starts at w->pos
 * (at most w->len - w->pos of it in this call), reports it if it is of
 * interest, and leaves in st what is still to come. False when the header
 * is invalid: sync is lost.
 */
static __always_inline bool frame(void *ctx, struct walk *w, struct h2_state *st, const __u8 *h,
				  __u64 ts)
{
	__u32 length = (__u32)h[0] << 16 | (__u32)h[1] << 8 | h[2];
	__u32 raw_stream = (__u32)h[5] << 24 | (__u32)h[6] << 16 | (__u32)h[7] << 8 | h[8];
	__u8 type = h[3], flags = h[4];
	__u32 avail = w->len - w->pos, take, want, n, got;

	count(GOTLS_STAT_FRAMES);
	if (!valid_header(type, flags, length, raw_stream)) {
		st->synced = 0;
		st->remaining = 0;
		st->hdr_len = 0;
		st->cap_left = 0;
		count(GOTLS_STAT_DESYNC);
		return false;
	}
	take = length < avail ? length : avail;
	st->remaining = length - take;
	st->cap_left = 0;
	if (reported(type)) {
		want = capture_size(type, w->key.dir);
		if (want > length)
			want = length;
		n = want < take ? want : take;
		w->rec.ts_ns = ts;
		w->rec.conn = w->key.conn;
		w->rec.pid = w->key.pid;
		w->rec.seq = st->seq;
		w->rec.stream_id = raw_stream;
		w->rec.length = length;
		w->rec.offset = 0;
		w->rec.kind = GOTLS_FRAME;
		w->rec.dir = w->key.dir;
		w->rec.type = type;
		w->rec.flags = flags;
		got = capture(w, w->buf + w->pos, n);
		if (got != n || !payload_wanted(w, 0, got))
			want = n = got = 0; /* report the header alone */
		emit(ctx, w, got);
		/* The rest of the capture comes with the next calls. */
		st->cap_left = want - n;
		st->cap_off = n;
		st->type = type;
		st->flags = flags;
		st->length = length;
		st->stream_id = raw_stream;
	}
	w->pos += take;
	return true;
}

/* Parses frames from w->pos on; tail-calls itself while the call has more. */
SEC("uprobe")
int gotls_walk(struct pt_regs *ctx)
{
	__u32 zero = 0;
	struct walk *w = bpf_map_lookup_elem(&scratch, &zero);
	struct h2_state *st;
	__u8 h[H2_HEADER_LEN];

	if (!w)
		return 0;
	st = bpf_map_lookup_elem(&states, &w->key);
	if (!st)
		return 0;
	for (int i = 0; i < FRAMES_PER_PROG; i++) {
		__u32 avail;

		if (w->pos >= w->len || w->pos >= MAX_CALL)
			break;
		avail = w->len - w->pos;
		if (avail < H2_HEADER_LEN) {
			if (w->validating)
				return 0; /* ends inside a header: not proof of sync */
			/* Keep the header's first bytes for the next call. */
			if (bpf_probe_read_user(st->hdr, bounded(avail, 0xf),
						(void *)(w->buf + w->pos)))
				goto lost;
			st->hdr_len = avail;
			st->hdr_ts = w->ts;
			w->pos = w->len;
			return 0;
		}
		if (bpf_probe_read_user(h, sizeof(h), (void *)(w->buf + w->pos)))
			goto lost;
		w->pos += H2_HEADER_LEN;
		if (w->validating) {
			__u32 length = (__u32)h[0] << 16 | (__u32)h[1] << 8 | h[2];
			__u32 raw_stream = (__u32)h[5] << 24 | (__u32)h[6] << 16 |
					   (__u32)h[7] << 8 | h[8];

			if (!valid_header(h[3], h[4], length, raw_stream))
				return 0;
			if (length > w->len - w->pos)
				return 0; /* ends inside a frame: not proof of sync */
			w->pos += length;
			continue;
		}
		if (!frame(ctx, w, st, h, w->ts))
			return 0;
	}
	if (w->pos < w->len && w->pos < MAX_CALL) {
		bpf_tail_call(ctx, &walkers, 0);
		/* Out of tail calls: the rest of this call is not walked. */
		count(GOTLS_STAT_OVERFLOW);
		goto lost;
	}
	if (w->validating) {
		/* Whole valid frames from start to end: the boundaries are known. */
		st->synced = 1;
		st->remaining = 0;
		st->hdr_len = 0;
		st->cap_left = 0;
		count(GOTLS_STAT_SYNCED);
	}
	return 0;
lost:
	st->synced = 0;
	st->remaining = 0;
	st->hdr_len = 0;
	st->cap_left = 0;
	return 0;
}

static const char preface[H2_PREFACE_LEN] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/* Whether the call starts with the client connection preface. */
static __always_inline bool starts_with_preface(__u64 buf, __u32 len)
{
	char b[H2_PREFACE_LEN];

	if (len < H2_PREFACE_LEN || bpf_probe_read_user(b, sizeof(b), (void *)buf))
		return false;
	for (int i = 0; i < H2_PREFACE_LEN; i++) {
		if (b[i] != preface[i])
			return false;
	}
	return true;
}

/*
 * Walks the len plaintext bytes at buf of one Write or Read: first what
 * the state carries over (the rest of a frame, a partial header), then
 * the frames, through the walker.
 */
static __always_inline void on_call(struct pt_regs *ctx, __u64 conn, __u32 dir, __u64 buf,
				    __u64 len, __u64 ts)
{
	__u32 zero = 0, take, n, need;
	struct h2_state fresh = {};
	struct h2_state *st;
	struct walk *w;

	if (len == 0 || len > MAX_CALL)
		return;
	count(GOTLS_STAT_CALLS);
	w = bpf_map_lookup_elem(&scratch, &zero);
	if (!w)
		return;
	w->key.conn = conn;
	w->key.pid = bpf_get_current_pid_tgid() >> 32;
	w->key.dir = dir;
	w->buf = buf;
	w->len = len;
	w->pos = 0;
	w->ts = ts;
	w->validating = 0;
	st = bpf_map_lookup_elem(&states, &w->key);
	if (!st) {
		bpf_map_update_elem(&states, &w->key, &fresh, BPF_NOEXIST);
		st = bpf_map_lookup_elem(&states, &w->key);
		if (!st)
			return;
	}
	st->seq += 1;
	if (!st->synced && starts_with_preface(buf, len)) {
		/* A new connection: frames start right after the preface. */
		st->synced = 1;
		st->remaining = 0;
		st->hdr_len = 0;
		st->cap_left = 0;
		w->pos = H2_PREFACE_LEN;
		count(GOTLS_STAT_SYNCED);
		if (dir == GOTLS_WRITE) {
			/* The client speaks first: the server's frames start at its
			 * first byte, unless this direction was seen already. */
			struct conn_key rk = w->key;

			fresh.synced = 1;
			rk.dir = GOTLS_READ;
			bpf_map_update_elem(&states, &rk, &fresh, BPF_NOEXIST);
		}
	}
	if (!st->synced) {
		count(GOTLS_STAT_UNSYNCED);
		w->validating = 1;
		bpf_tail_call(ctx, &walkers, 0);
		return;
	}
	/* The rest of the current frame's payload. */
	if (st->remaining && w->pos < w->len) {
		take = st->remaining < w->len ? st->remaining : w->len;
		if (st->cap_left) {
			n = st->cap_left < take ? st->cap_left : take;
			w->rec.ts_ns = ts;
			w->rec.conn = conn;
			w->rec.pid = w->key.pid;
			w->rec.seq = st->seq;
			w->rec.stream_id = st->stream_id;
			w->rec.length = st->length;
			w->rec.offset = st->cap_off;
			w->rec.kind = GOTLS_PAYLOAD;
			w->rec.dir = dir;
			w->rec.type = st->type;
			w->rec.flags = st->flags;
			if (capture(w, buf, n) == n && payload_wanted(w, st->cap_off, n)) {
				emit(ctx, w, n);
				st->cap_off += n;
				st->cap_left -= n;
			} else {
				st->cap_left = 0; /* not a Lease after all: stop */
			}
		}
		st->remaining -= take;
		if (!st->remaining)
			st->cap_left = 0;
		w->pos += take;
	}
	/* The rest of a header that straddles calls. */
	if (st->hdr_len && w->pos < w->len) {
		__u32 have = st->hdr_len;
		__u8 h[H2_HEADER_LEN];

		if (have >= H2_HEADER_LEN) /* never: a partial header has 1 to 8 bytes */
			return;
		need = H2_HEADER_LEN - have;
		if (need > w->len - w->pos)
			need = w->len - w->pos;
		need = bounded(need, 0xf);
		if (bpf_probe_read_user(&st->hdr[bounded(have, 0xf)], need, (void *)(buf + w->pos)))
			return;
		w->pos += need;
		st->hdr_len = have + need;
		if (st->hdr_len < H2_HEADER_LEN)
			return;
		st->hdr_len = 0;
		__builtin_memcpy(h, st->hdr, H2_HEADER_LEN);
		if (!frame(ctx, w, st, h, dir == GOTLS_WRITE ? st->hdr_ts : ts))
			return;
	}
	if (w->pos < w->len)
		bpf_tail_call(ctx, &walkers, 0);
}

static __always_inline __u64 go_g(struct pt_regs *ctx)
{
	return ctx->r14; /* Go ABIInternal, amd64: the current goroutine */
}

/* crypto/tls.(*Conn).Write(b []byte): RAX *Conn, RBX b.ptr, RCX b.len. */
SEC("uprobe")
int gotls_write(struct pt_regs *ctx)
{
	on_call(ctx, ctx->ax, GOTLS_WRITE, ctx->bx, ctx->cx, bpf_ktime_get_ns());
	return 0;
}

/* crypto/tls.(*Conn).Read(b []byte) at its frame start: remember c and b. */
SEC("uprobe")
int gotls_read_enter(struct pt_regs *ctx)
{
	struct read_key k = { .g = go_g(ctx), .pid = bpf_get_current_pid_tgid() >> 32 };
	struct read_args a = { .conn = ctx->ax, .buf = ctx->bx };
	struct go_stack s;

	if (!bpf_probe_read_user(&s, sizeof(s), (void *)k.g) && a.buf >= s.lo && a.buf < s.hi)
		a.stack_hi = s.hi;
	bpf_map_update_elem(&reads, &k, &a, BPF_ANY);
	return 0;
}

/* A RET of crypto/tls.(*Conn).Read: RAX holds n, the bytes read into b. */
SEC("uprobe")
int gotls_read_return(struct pt_regs *ctx)
{
	__u64 ts = bpf_ktime_get_ns();
	struct read_key k = { .g = go_g(ctx), .pid = bpf_get_current_pid_tgid() >> 32 };
	struct read_args *a = bpf_map_lookup_elem(&reads, &k);
	struct read_args args;
	long n = (long)ctx->ax;

	if (!a) {
		count(GOTLS_STAT_READ_MISS);
		return 0;
	}
	args = *a;
	bpf_map_delete_elem(&reads, &k);
	if (n <= 0)
		return 0;
	if (args.stack_hi) {
		struct go_stack s;

		if (bpf_probe_read_user(&s, sizeof(s), (void *)k.g))
			return 0;
		args.buf += s.hi - args.stack_hi; /* 0 unless the stack moved */
	}
	on_call(ctx, args.conn, GOTLS_READ, args.buf, n, ts);
	return 0;
}

/* crypto/tls.(*Conn).Close: RAX *Conn. */
SEC("uprobe")
int gotls_close(struct pt_regs *ctx)
{
	__u32 zero = 0;
	struct conn_key k = { .conn = ctx->ax, .pid = bpf_get_current_pid_tgid() >> 32 };
	struct walk *w = bpf_map_lookup_elem(&scratch, &zero);
	bool known;

	k.dir = GOTLS_WRITE;
	known = bpf_map_delete_elem(&states, &k) == 0;
	k.dir = GOTLS_READ;
	known = (bpf_map_delete_elem(&states, &k) == 0) || known;
	if (!known || !w)
		return 0;
	__builtin_memset(&w->rec, 0, GOTLS_RECORD_HEADER);
	w->rec.ts_ns = bpf_ktime_get_ns();
	w->rec.conn = k.conn;
	w->rec.pid = k.pid;
	w->rec.kind = GOTLS_CLOSE;
	emit(ctx, w, 0);
	return 0;
}
