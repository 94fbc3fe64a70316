// SPDX-License-Identifier: (MIT OR GPL-2.0-only)
/*
 * Baseline of tests/bench/wire_overhead.ts: cgroup_skb programs that do
 * nothing, attached where the wire probe attaches, so the cost of the hook
 * itself can be told from the probe's. Built by the bench with
 *   clang -O2 -g -target bpf -c empty_skb.bpf.c
 */
#define SEC(name) __attribute__((section(name), used))

char LICENSE[] SEC("license") = "Dual MIT/GPL";

struct __sk_buff;

SEC("cgroup_skb/egress")
int empty_egress(struct __sk_buff *skb)
{
	return 1;
}

SEC("cgroup_skb/ingress")
int empty_ingress(struct __sk_buff *skb)
{
	return 1;
}
