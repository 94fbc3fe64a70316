// SPDX-License-Identifier: (MIT OR GPL-2.0-only)
/*
 * Earthworm's wire probe: follows the TCP connections that one process
 * (the kubelet) holds to the API server port and reports request/response
 * exchanges, smoothed RTT, retransmits, resets and state changes.
 *
 * - cgroup/connect4+6 attribute a socket to the process at connect() time,
 *   when the caller's comm is still the process that asked for it.
 * - cgroup_skb egress+ingress see every segment of followed sockets: they
 *   learn the tuple from the SYN, adopt connections that user space found in
 *   /proc (opened before the agent started) and delimit exchanges.
 * - raw tracepoints (no tracefs needed) report retransmits, resets and state
 *   changes; they only know the socket, so they find it through its tuple.
 *
 * An exchange is what the client sends (new data, retransmits excluded)
 * until the first segment of the server's answer. It is reported when that
 * segment arrives, so the leader knows a renewal's latency about as soon as
 * the kubelet does: latency = first answer byte - first request byte, bytes
 * received = the answer's first segment (with GRO usually all of a small
 * answer such as a Lease). The rest of the answer, and anything the server
 * sends while no request is pending (watch events, HTTP/2 PINGs and
 * SETTINGS), belongs to no exchange. A request the connection gives up on
 * (it leaves ESTABLISHED first) is reported unanswered.
 * - HTTP/1.1: one request at a time, so an exchange is one request and its
 *   response, exactly.
 * - HTTP/2 (what a real kubelet speaks): streams share the connection, so an
 *   exchange is a burst of client frames and the first server bytes after
 *   it; those may belong to another stream (a watch event) and the latency
 *   then reads short: this model is "inferred", and the agent uses the exact
 *   one of gotls.bpf.c wherever the kubelet's Go TLS layer can be traced.
 *   A TLS segment too small to carry a request (MIN_TLS_REQUEST: HTTP/2
 *   WINDOW_UPDATE, PING, SETTINGS and RST_STREAM frames, alone or a few
 *   together) never starts an exchange, so the next request is never folded
 *   into an unanswered control frame; and a small server segment (the same
 *   frames from the server) is never taken for an answer.
 *
 * TLS: a Lease update only travels in application data records (0x17), or
 * in plain TCP (a payload that does not start with a TLS record header).
 * The first record headers of each segment are read, and TLS handshake legs
 * are never reported: a request that starts with a handshake (0x16),
 * change_cipher_spec (0x14) or alert (0x15) record, and in TLS 1.3 the
 * client's Finished flight, which is sent as application data: once the
 * server sent encrypted records during a handshake (TLS 1.3; TLS 1.2 sends
 * none before the client's first request), the client's next application
 * data record is its Finished. A request the client sends right behind its
 * Finished, before the server answered it (with session tickets or
 * anything), joins that handshake leg and is not reported either: the
 * server's next bytes may be the tickets, and a wrong latency is worse than
 * none.
 *
 * Only followed connections produce events: everything else returns after
 * a port comparison, the first thing each program reads. A socket to that
 * port that is not followed (another process talking to the API server) is
 * marked as such in its socket storage on its first packet, so the next
 * ones cost one lookup instead of a parse and two map lookups.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>
#include "heartbeat.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

/* Load-time settings, written by user space into .rodata before loading. */
const volatile char target_comm[WIRE_COMM_LEN] = "kubelet";
const volatile __u16 target_port = 6443;
/* The verifier treats frozen .rodata as constants and prunes the unused path,
 * so one object serves ring buffer (5.8+) and perf buffer kernels. */
const volatile bool use_ringbuf = true;

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6

enum phase { PHASE_IDLE, PHASE_REQUEST };

/*
 * Smallest TCP payload of a TLS segment that can carry an HTTP/2 request or
 * answer: control frames are 9 + 4 to 9 + 8 bytes (SETTINGS 9 + 6 per
 * parameter), plus 22 (TLS 1.3) to 29 (TLS 1.2 GCM) bytes of record overhead.
 */
#define MIN_TLS_REQUEST 80

/* TLS record content types (RFC 8446, 5.1). */
#define TLS_CHANGE_CIPHER_SPEC 20
#define TLS_ALERT 21
#define TLS_HANDSHAKE 22
#define TLS_APPLICATION_DATA 23

#define SEQ_TX 1
#define SEQ_RX 2

/* Per-connection state, keyed by socket cookie. */
struct conn {
	struct wire_tuple t;
	__u32 pid;
	char comm[WIRE_COMM_LEN];
	__u64 start_ns;
	__u64 first_rx_ns;
	__u64 last_rx_ns;
	__u64 bytes_sent;
	__u64 bytes_received;
	__u32 snd_max; /* end of the highest data segment sent */
	__u32 rcv_max; /* end of the highest data segment received */
	__u32 srtt_us;
	__u32 total_retrans;
	__u32 retrans_events;
	__u32 retrans_at_start;
	__u32 resets;
	__u8 phase;
	__u8 has_tuple;
	__u8 origin;
	__u8 seq_known;
	__u8 skip;   /* the request in progress is a TLS handshake leg or alert */
	__u8 tls_hs; /* enum tls_hs */
};

/* Where a TLS handshake on the connection stands, as seen from its records. */
enum tls_hs {
	HS_NONE,      /* no handshake in progress (or plain TCP) */
	HS_CLEAR,     /* the client started one; the server sent no encrypted record yet */
	HS_ENCRYPTED, /* TLS 1.3: the client's next application data record is its Finished */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct conn);
} conns SEC(".maps");

/* Tuple -> owner. User space inserts connections found in /proc with cookie 0. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct wire_tuple);
	__type(value, struct wire_owner);
} tuples SEC(".maps");

/*
 * Sockets to the target port that are not followed (other processes talking
 * to the API server, or every HTTPS client when it listens on 443): the
 * adoption generation + 1 at which the socket was found in neither map, so
 * its later packets cost one lookup in the socket itself.
 */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u32);
} unfollowed SEC(".maps");

/*
 * Adoption generation: user space bumps it a syscall after it inserts
 * connections to adopt, so sockets judged unfollowed before look again.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} adoption SEC(".maps");

/* Ring buffer; user space turns it into a perf event array on 5.4-5.7. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} events SEC(".maps");

/* Events lost because the buffer was full. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

/* Packet headers, parsed by hand so no CO-RE bitfield access is needed. */
struct ew_ip4 {
	__u8 ver_ihl;
	__u8 tos;
	__u16 tot_len;
	__u16 id;
	__u16 frag;
	__u8 ttl;
	__u8 protocol;
	__u16 check;
	__u8 saddr[4];
	__u8 daddr[4];
};

struct ew_ip6 {
	__u32 ver_tc_flow;
	__u16 payload_len;
	__u8 nexthdr;
	__u8 hop_limit;
	__u8 saddr[16];
	__u8 daddr[16];
};

struct ew_tcp {
	__u16 source;
	__u16 dest;
	__u32 seq;
	__u32 ack_seq;
	__u8 doff_res;
	__u8 flags;
	__u16 window;
	__u16 check;
	__u16 urg_ptr;
};

struct pkt {
	struct wire_tuple t;
	__u32 seq;
	__u32 hdr;     /* offset of the TCP payload */
	__u32 payload; /* its length */
};

static __always_inline bool seq_after(__u32 a, __u32 b)
{
	return (__s32)(a - b) > 0;
}

static __always_inline void count_drop(void)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&drops, &zero);

	if (n)
		*n += 1;
}

static __always_inline void emit(void *ctx, struct wire_event *ev)
{
	if (use_ringbuf) {
		struct wire_event *slot = bpf_ringbuf_reserve(&events, sizeof(*slot), 0);

		if (!slot) {
			count_drop();
			return;
		}
		__builtin_memcpy(slot, ev, sizeof(*slot));
		bpf_ringbuf_submit(slot, 0);
		return;
	}
	if (bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, ev, sizeof(*ev)))
		count_drop();
}

static __always_inline void fill(struct wire_event *ev, struct conn *c, __u64 cookie, __u8 type)
{
	ev->ts_ns = bpf_ktime_get_ns();
	ev->cookie = cookie;
	__builtin_memcpy(ev->laddr, c->t.laddr, 16);
	__builtin_memcpy(ev->raddr, c->t.raddr, 16);
	ev->lport = c->t.lport;
	ev->rport = c->t.rport;
	ev->pid = c->pid;
	__builtin_memcpy(ev->comm, c->comm, WIRE_COMM_LEN);
	ev->srtt_us = c->srtt_us;
	ev->total_retrans = c->total_retrans;
	ev->resets = c->resets;
	ev->origin = c->origin;
	ev->type = type;
}

static __always_inline void emit_simple(void *ctx, struct conn *c, __u64 cookie, __u8 type,
					__u8 old_state, __u8 new_state)
{
	struct wire_event ev = {};

	fill(&ev, c, cookie, type);
	ev.old_state = old_state;
	ev.new_state = new_state;
	emit(ctx, &ev);
}

/* Reports the exchange in progress (unless it is a handshake leg) and forgets it. */
static __always_inline void end_exchange(void *ctx, struct conn *c, __u64 cookie)
{
	struct wire_event ev = {};

	if (c->phase == PHASE_IDLE)
		return;
	c->phase = PHASE_IDLE;
	if (c->skip)
		return;
	fill(&ev, c, cookie, WIRE_EV_EXCHANGE);
	ev.start_ns = c->start_ns;
	ev.first_rx_ns = c->first_rx_ns;
	ev.last_rx_ns = c->last_rx_ns;
	ev.bytes_sent = c->bytes_sent;
	ev.bytes_received = c->bytes_received;
	ev.retrans = c->retrans_events - c->retrans_at_start;
	emit(ctx, &ev);
}

static __always_inline bool comm_matches(void)
{
	char comm[WIRE_COMM_LEN] = {};

	bpf_get_current_comm(comm, sizeof(comm));
	for (int i = 0; i < WIRE_COMM_LEN; i++) {
		if (comm[i] != target_comm[i])
			return false;
		if (comm[i] == 0)
			return true;
	}
	return true;
}

/* connect() runs in the caller's context: the only moment comm is reliable. */
static __always_inline int on_connect(struct bpf_sock_addr *ctx)
{
	struct conn c = {};
	__u64 cookie;

	if (ctx->protocol != IPPROTO_TCP)
		return 1;
	if (bpf_ntohs((__u16)ctx->user_port) != target_port)
		return 1;
	if (!comm_matches())
		return 1;
	cookie = bpf_get_socket_cookie(ctx);
	c.pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(c.comm, sizeof(c.comm));
	c.origin = WIRE_ORIGIN_CONNECT;
	bpf_map_update_elem(&conns, &cookie, &c, BPF_ANY);
	return 1;
}

SEC("cgroup/connect4")
int ew_connect4(struct bpf_sock_addr *ctx)
{
	return on_connect(ctx);
}

SEC("cgroup/connect6")
int ew_connect6(struct bpf_sock_addr *ctx)
{
	return on_connect(ctx);
}

static __always_inline void map_v4(__u8 *dst, const __u8 *v4)
{
	__builtin_memset(dst, 0, 10);
	dst[10] = 0xff;
	dst[11] = 0xff;
	__builtin_memcpy(dst + 12, v4, 4);
}

static __always_inline bool parse(struct __sk_buff *skb, bool egress, struct pkt *p)
{
	struct ew_tcp th;
	__u32 off, hdr;

	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct ew_ip4 ip;

		if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)) || ip.protocol != IPPROTO_TCP)
			return false;
		off = (ip.ver_ihl & 0x0f) * 4;
		map_v4(egress ? p->t.laddr : p->t.raddr, ip.saddr);
		map_v4(egress ? p->t.raddr : p->t.laddr, ip.daddr);
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ew_ip6 ip6;

		if (bpf_skb_load_bytes(skb, 0, &ip6, sizeof(ip6)) || ip6.nexthdr != IPPROTO_TCP)
			return false;
		off = sizeof(ip6);
		__builtin_memcpy(egress ? p->t.laddr : p->t.raddr, ip6.saddr, 16);
		__builtin_memcpy(egress ? p->t.raddr : p->t.laddr, ip6.daddr, 16);
	} else {
		return false;
	}
	if (bpf_skb_load_bytes(skb, off, &th, sizeof(th)))
		return false;
	p->t.lport = bpf_ntohs(egress ? th.source : th.dest);
	p->t.rport = bpf_ntohs(egress ? th.dest : th.source);
	if (p->t.rport != target_port)
		return false;
	hdr = off + (th.doff_res >> 4) * 4;
	p->hdr = hdr;
	p->payload = skb->len > hdr ? skb->len - hdr : 0;
	p->seq = bpf_ntohl(th.seq);
	return true;
}

/* TLS records a segment's payload starts with. */
struct records {
	__u8 first; /* content type of the first, 0 if the payload is not a TLS record header */
	__u8 app;   /* one of the first few is application data */
};

#define SCAN_RECORDS 3

/*
 * Reads the headers (type 20-23, version 3.0-3.4, length) of the first
 * records of a segment, so that SH+CCS+encrypted records written in one go
 * are seen. A payload that does not start with a header (plain TCP, or a
 * segment continuing a record) reads as no record.
 */
static __always_inline struct records tls_records(struct __sk_buff *skb, const struct pkt *p)
{
	struct records r = {};
	__u32 off = p->hdr, end = p->hdr + p->payload;

#pragma unroll
	for (int i = 0; i < SCAN_RECORDS; i++) {
		__u8 h[5];

		if (off + sizeof(h) > end || bpf_skb_load_bytes(skb, off, h, sizeof(h)))
			break;
		if (h[0] < TLS_CHANGE_CIPHER_SPEC || h[0] > TLS_APPLICATION_DATA || h[1] != 3 ||
		    h[2] > 4)
			break;
		if (i == 0)
			r.first = h[0];
		if (h[0] == TLS_APPLICATION_DATA)
			r.app = 1;
		off += sizeof(h) + ((__u32)h[3] << 8 | h[4]);
	}
	return r;
}

/* A request segment: follows the handshake; true when it is part of a handshake leg. */
static __always_inline bool tls_request(struct conn *c, struct records r)
{
	if (r.first == TLS_HANDSHAKE || r.first == TLS_CHANGE_CIPHER_SPEC) {
		if (c->tls_hs == HS_NONE)
			c->tls_hs = HS_CLEAR;
	}
	if (c->tls_hs == HS_ENCRYPTED && r.app) {
		c->tls_hs = HS_NONE; /* the client's TLS 1.3 Finished */
		return true;
	}
	if (r.first == 0 || r.first == TLS_APPLICATION_DATA) {
		if (c->tls_hs == HS_CLEAR && r.first != 0)
			c->tls_hs = HS_NONE; /* TLS 1.2: the first request */
		return false;
	}
	return true;
}

/* A connection user space found in /proc: follow it from its first packet on. */
static __always_inline struct conn *adopt(struct __sk_buff *skb, __u64 cookie, struct pkt *p)
{
	struct wire_owner *o = bpf_map_lookup_elem(&tuples, &p->t);
	struct conn c = {};

	if (!o || o->cookie != 0)
		return NULL;
	c.t = p->t;
	c.has_tuple = 1;
	c.pid = o->pid;
	__builtin_memcpy(c.comm, o->comm, WIRE_COMM_LEN);
	c.origin = WIRE_ORIGIN_ADOPTED;
	if (bpf_map_update_elem(&conns, &cookie, &c, BPF_NOEXIST))
		return NULL;
	o->cookie = cookie;
	return bpf_map_lookup_elem(&conns, &cookie);
}

static __always_inline void refresh(struct __sk_buff *skb, struct conn *c)
{
	struct bpf_sock *sk = skb->sk;
	struct bpf_tcp_sock *tp;

	if (!sk)
		return;
	sk = bpf_sk_fullsock(sk);
	if (!sk)
		return;
	tp = bpf_tcp_sock(sk);
	if (!tp)
		return;
	c->srtt_us = tp->srtt_us >> 3; /* the kernel keeps srtt scaled by 8 */
	c->total_retrans = tp->total_retrans;
}

static __always_inline void on_packet(struct __sk_buff *skb, bool egress)
{
	struct pkt p = {};
	struct records r;
	struct conn *c;
	struct bpf_sock *sk = skb->sk;
	__u32 zero = 0, gen = 0, *g = bpf_map_lookup_elem(&adoption, &zero), *seen;
	__u64 cookie, now;
	__u32 end;
	bool leg;

	/* Read before the maps, so an adoption after it is seen next time. */
	if (g)
		gen = *g;
	if (sk)
		sk = bpf_sk_fullsock(sk);
	if (sk) {
		seen = bpf_sk_storage_get(&unfollowed, sk, 0, 0);
		if (seen && *seen == gen + 1)
			return;
	}
	if (!parse(skb, egress, &p))
		return;
	cookie = bpf_get_socket_cookie(skb);
	c = bpf_map_lookup_elem(&conns, &cookie);
	if (!c) {
		c = adopt(skb, cookie, &p);
		if (!c) {
			if (sk) {
				seen = bpf_sk_storage_get(&unfollowed, sk, 0,
							  BPF_SK_STORAGE_GET_F_CREATE);
				if (seen)
					*seen = gen + 1;
			}
			return;
		}
		refresh(skb, c);
		emit_simple(skb, c, cookie, WIRE_EV_TRACK, 0, 0);
	} else if (!c->has_tuple) {
		/* First segment (the SYN) of a connection seen at connect(). */
		struct wire_owner o = { .cookie = cookie, .pid = c->pid };

		c->t = p.t;
		c->has_tuple = 1;
		__builtin_memcpy(o.comm, c->comm, WIRE_COMM_LEN);
		bpf_map_update_elem(&tuples, &p.t, &o, BPF_ANY);
		refresh(skb, c);
		emit_simple(skb, c, cookie, WIRE_EV_TRACK, 0, 0);
	} else {
		refresh(skb, c);
	}
	if (p.payload == 0)
		return;
	now = bpf_ktime_get_ns();
	end = p.seq + p.payload;
	if (egress) {
		/* Retransmitted data is neither a new request nor new bytes. */
		if ((c->seq_known & SEQ_TX) && !seq_after(end, c->snd_max))
			return;
		c->snd_max = end;
		c->seq_known |= SEQ_TX;
		r = tls_records(skb, &p);
		leg = tls_request(c, r);
		if (c->phase == PHASE_IDLE) {
			/* An HTTP/2 control frame needs no answer: no exchange. */
			if (!leg && r.first == TLS_APPLICATION_DATA && p.payload < MIN_TLS_REQUEST)
				return;
			c->phase = PHASE_REQUEST;
			c->start_ns = now;
			c->first_rx_ns = 0;
			c->last_rx_ns = 0;
			c->bytes_sent = 0;
			c->bytes_received = 0;
			c->retrans_at_start = c->retrans_events;
			c->skip = leg;
		} else if (leg) {
			c->skip = 1;
		}
		c->bytes_sent += p.payload;
		return;
	}
	if ((c->seq_known & SEQ_RX) && !seq_after(end, c->rcv_max))
		return;
	c->rcv_max = end;
	c->seq_known |= SEQ_RX;
	r = tls_records(skb, &p);
	if (c->tls_hs == HS_CLEAR && r.app)
		c->tls_hs = HS_ENCRYPTED;
	/* Not an answer: pushed by the server (watch events, HTTP/2 frames) or
	 * the rest of an answer already reported. */
	if (c->phase == PHASE_IDLE)
		return;
	/* A server control frame (WINDOW_UPDATE, PING, SETTINGS ack) is not the
	 * answer; during a handshake leg any record counts. */
	if (!c->skip && r.first == TLS_APPLICATION_DATA && p.payload < MIN_TLS_REQUEST)
		return;
	/* The first segment of the answer: the exchange is known now. */
	c->first_rx_ns = now;
	c->last_rx_ns = now;
	c->bytes_received = p.payload;
	end_exchange(skb, c, cookie);
}

/*
 * These run on every packet of every pod, so the first test is the only
 * work an unrelated packet costs: the socket's remote port (skb->sk's
 * skc_dport, big endian in the upper half on LE hosts; both hooks run with
 * a full socket), compared before anything else is read or zeroed.
 */
static __always_inline bool to_target_port(struct __sk_buff *skb)
{
	return bpf_ntohl(skb->remote_port) == target_port;
}

SEC("cgroup_skb/egress")
int ew_egress(struct __sk_buff *skb)
{
	if (to_target_port(skb))
		on_packet(skb, true);
	return 1;
}

SEC("cgroup_skb/ingress")
int ew_ingress(struct __sk_buff *skb)
{
	if (to_target_port(skb))
		on_packet(skb, false);
	return 1;
}

/*
 * Tuple of a kernel socket, or false when it is not to the target port. The
 * tracepoints fire for every socket of the host: the remote port is read
 * (one probe read) and compared before anything else.
 */
static __always_inline bool sock_tuple(const struct sock *sk, struct wire_tuple *t)
{
	__u16 family;

	t->rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (t->rport != target_port)
		return false;
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	/* inet_sport, not skc_num: releasing the port zeroes skc_num before
	 * the transition to TCP_CLOSE is traced. */
	t->lport = bpf_ntohs(BPF_CORE_READ((const struct inet_sock *)sk, inet_sport));
	if (family == AF_INET) {
		__u32 l = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__u32 r = BPF_CORE_READ(sk, __sk_common.skc_daddr);

		map_v4(t->laddr, (__u8 *)&l);
		map_v4(t->raddr, (__u8 *)&r);
		return true;
	}
	if (family == AF_INET6) {
		BPF_CORE_READ_INTO(&t->laddr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO(&t->raddr, sk, __sk_common.skc_v6_daddr);
		return true;
	}
	return false;
}

static __always_inline struct conn *conn_of_sock(const struct sock *sk, __u64 *cookie,
						 struct wire_tuple *t)
{
	struct wire_owner *o;

	if (!sk || !sock_tuple(sk, t))
		return NULL;
	o = bpf_map_lookup_elem(&tuples, t);
	if (!o || !o->cookie)
		return NULL;
	*cookie = o->cookie;
	return bpf_map_lookup_elem(&conns, cookie);
}

static __always_inline void refresh_sock(const struct sock *sk, struct conn *c)
{
	const struct tcp_sock *tp = (const struct tcp_sock *)sk;

	c->srtt_us = BPF_CORE_READ(tp, srtt_us) >> 3;
	c->total_retrans = BPF_CORE_READ(tp, total_retrans);
}

SEC("raw_tp/tcp_retransmit_skb")
int BPF_PROG(ew_retransmit, const struct sock *sk)
{
	struct wire_tuple t = {};
	__u64 cookie = 0;
	struct conn *c = conn_of_sock(sk, &cookie, &t);

	if (!c)
		return 0;
	refresh_sock(sk, c);
	c->retrans_events += 1;
	emit_simple(ctx, c, cookie, WIRE_EV_RETRANS, 0, 0);
	return 0;
}

static __always_inline void on_reset(void *ctx, const struct sock *sk, __u8 dir)
{
	struct wire_tuple t = {};
	__u64 cookie = 0;
	struct conn *c = conn_of_sock(sk, &cookie, &t);

	if (!c)
		return;
	c->resets += 1;
	emit_simple(ctx, c, cookie, WIRE_EV_RESET, 0, dir);
}

/* sk is NULL when the reset answers a packet without a socket. */
SEC("raw_tp/tcp_send_reset")
int BPF_PROG(ew_send_reset, const struct sock *sk)
{
	on_reset(ctx, sk, WIRE_RESET_SENT);
	return 0;
}

SEC("raw_tp/tcp_receive_reset")
int BPF_PROG(ew_receive_reset, const struct sock *sk)
{
	on_reset(ctx, sk, WIRE_RESET_RECEIVED);
	return 0;
}

SEC("raw_tp/inet_sock_set_state")
int BPF_PROG(ew_state, const struct sock *sk, int oldstate, int newstate)
{
	struct wire_tuple t = {};
	__u64 cookie = 0;
	struct conn *c = conn_of_sock(sk, &cookie, &t);

	/* Protocol after the port: most sockets fail the port test first. */
	if (!c || BPF_CORE_READ_BITFIELD_PROBED(sk, sk_protocol) != IPPROTO_TCP)
		return 0;
	refresh_sock(sk, c);
	/* Leaving ESTABLISHED ends the exchange in progress: it got no answer. */
	if (newstate != TCP_ESTABLISHED)
		end_exchange(ctx, c, cookie);
	emit_simple(ctx, c, cookie, WIRE_EV_STATE, oldstate, newstate);
	if (newstate == TCP_CLOSE) {
		bpf_map_delete_elem(&tuples, &t);
		bpf_map_delete_elem(&conns, &cookie);
	}
	return 0;
}
