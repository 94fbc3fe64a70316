// SPDX-License-Identifier: (MIT OR GPL-2.0-only)
/*
 * Test helper: a tc ingress filter that drops DROP_PERCENT % of the data
 * segments sent to TCP port DROP_PORT, to make TCP retransmit (this kernel
 * has no sch_netem). Ingress, not egress: a segment dropped at the sender's
 * egress counts as never sent and is sent again without a retransmission.
 * Built by tests/probe_test.ts with
 *   clang -O2 -target bpf -DDROP_PORT=6443 -DDROP_PERCENT=30 -c drop.bpf.c
 * and attached with `tc filter add dev lo ingress bpf direct-action`.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#ifndef DROP_PORT
#define DROP_PORT 6443
#endif
#ifndef DROP_PERCENT
#define DROP_PERCENT 30
#endif

SEC("tc")
int drop_some(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	struct tcphdr *th;
	__u32 payload;

	if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end || ip->protocol != IPPROTO_TCP)
		return TC_ACT_OK;
	th = (void *)ip + ip->ihl * 4;
	if ((void *)(th + 1) > end || th->dest != bpf_htons(DROP_PORT))
		return TC_ACT_OK;
	payload = skb->len - sizeof(*eth) - ip->ihl * 4 - th->doff * 4;
	if (payload == 0)
		return TC_ACT_OK; /* keep handshakes and ACKs: only data is lost */
	if (bpf_get_prandom_u32() % 100 < DROP_PERCENT)
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}
