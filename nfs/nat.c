/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mscope-nf-nat: source NAT (NAPT) with a real flow table.
 *
 * Outbound packets (any destination but the public address) get their source
 * address replaced by the public address and their source port (TCP, UDP) or
 * echo identifier (ICMP) by a port allocated from a range; the mapping is
 * endpoint independent (one per protocol, source address and port; RFC 4787
 * REQ-1). Inbound packets to the public address are translated back through
 * the mapping, or dropped when there is none. Other protocols get their source
 * address rewritten only. The IPv4 header checksum and the L4 checksum are
 * recomputed (rte_ipv4_cksum, rte_ipv4_udptcp_cksum); for a packet whose L4
 * segment is cut short in the buffer they are updated incrementally instead
 * (RFC 1624). Mappings idle for longer than the timeout are reused when the
 * port range runs out.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_hash.h>
#include <rte_icmp.h>
#include <rte_ip.h>
#include <rte_jhash.h>
#include <rte_tcp.h>
#include <rte_udp.h>

#include "common.h"

#define NB_MBUFS 8191
#define N_PCLASS 3 /* tcp, udp, icmp: the protocols with ports */

struct nat_key {
	uint32_t src;
	uint16_t sport;
	uint8_t proto;
	uint8_t pad;
};

struct nat_entry {
	struct nat_key key;
	uint16_t pub_port;
	uint64_t last_tsc;
	uint64_t packets;
	uint64_t bytes;
	bool used;
};

struct nat {
	uint32_t public_ip;
	uint16_t port_lo, port_hi;
	uint32_t max_flows;
	double idle_timeout_s;
	const char *flows_path;

	struct rte_hash *table;
	struct nat_entry *entries;
	uint32_t *free_stack;
	uint32_t n_free;
	uint32_t *rev[N_PCLASS];    /* public port -> entry index + 1, 0 if free */
	uint32_t cursor[N_PCLASS];
	uint64_t idle_cycles;

	uint64_t created, expired, exhausted, no_mapping, fragments, out_pkts, in_pkts,
		addr_only, non_ip, incremental;
};

enum { OPT_FLOWS = 2000, OPT_IDLE, OPT_MAX_FLOWS, OPT_PORTS, OPT_PUBLIC };

static const struct option nat_opts[] = {
	{ "flows", required_argument, NULL, OPT_FLOWS },
	{ "idle-timeout-s", required_argument, NULL, OPT_IDLE },
	{ "max-flows", required_argument, NULL, OPT_MAX_FLOWS },
	{ "ports", required_argument, NULL, OPT_PORTS },
	{ "public-ip", required_argument, NULL, OPT_PUBLIC },
	{ NULL, 0, NULL, 0 },
};

static void
usage(FILE *f)
{
	fprintf(f, "usage: mscope-nf-nat [EAL options] -- [options]\n\n"
		"A DPDK source NAT: rewrites source address and port through a flow table\n"
		"and fixes the IPv4 and L4 checksums; replies to the public address are\n"
		"translated back.\n\n"
		"NAT:\n"
		"  --public-ip ADDR           the public (translated) address (default 192.0.2.1)\n"
		"  --ports LO-HI              public port range (default 1024-65535)\n"
		"  --max-flows N              flow table size (default 65536)\n"
		"  --idle-timeout-s S         reuse mappings idle this long when ports run out\n"
		"                             (default 60)\n"
		"  --flows FILE               write the mappings as JSON at exit\n");
	nf_common_usage(f);
}

static int
own_opt(int c, const char *arg, void *st)
{
	struct nat *nat = st;
	uint32_t mask;
	uint64_t v;
	double d;

	switch (c) {
	case OPT_FLOWS:
		nat->flows_path = arg;
		return 0;
	case OPT_IDLE:
		if (nf_parse_double(arg, &d) || d < 0)
			break;
		nat->idle_timeout_s = d;
		return 0;
	case OPT_MAX_FLOWS:
		if (nf_parse_u64(arg, &v) || v < 16 || v > (1u << 24))
			break;
		nat->max_flows = (uint32_t)v;
		return 0;
	case OPT_PORTS: {
		unsigned int lo, hi;
		char extra;

		if (sscanf(arg, "%u-%u%c", &lo, &hi, &extra) != 2 || lo == 0 || hi > 65535 ||
				lo > hi)
			break;
		nat->port_lo = (uint16_t)lo;
		nat->port_hi = (uint16_t)hi;
		return 0;
	}
	case OPT_PUBLIC:
		if (nf_parse_prefix(arg, &nat->public_ip, &mask) || mask != UINT32_MAX)
			break;
		return 0;
	default:
		return -1;
	}
	fprintf(stderr, "mscope-nf-nat: bad value '%s' for --%s\n", arg,
		nat_opts[c - OPT_FLOWS].name);
	return -1;
}

static int
pclass(uint8_t proto)
{
	switch (proto) {
	case IPPROTO_TCP:
		return 0;
	case IPPROTO_UDP:
		return 1;
	case IPPROTO_ICMP:
		return 2;
	}
	return -1;
}

static void
nat_init(struct nat *nat, const struct nf_ctx *ctx)
{
	char name[RTE_HASH_NAMESIZE];
	struct rte_hash_parameters hp = {
		.name = name,
		.entries = nat->max_flows * 2,
		.key_len = sizeof(struct nat_key),
		.hash_func = rte_jhash,
		.socket_id = (int)rte_socket_id(),
	};

	snprintf(name, sizeof(name), "nat_%d", (int)getpid());
	nat->table = rte_hash_create(&hp);
	nat->entries = calloc(nat->max_flows, sizeof(*nat->entries));
	nat->free_stack = calloc(nat->max_flows, sizeof(*nat->free_stack));
	if (!nat->table || !nat->entries || !nat->free_stack)
		rte_exit(EXIT_FAILURE, "mscope-nf-nat: cannot allocate a %u-flow table\n",
			nat->max_flows);
	for (int c = 0; c < N_PCLASS; c++) {
		nat->rev[c] = calloc(65536, sizeof(uint32_t));
		if (!nat->rev[c])
			rte_exit(EXIT_FAILURE, "mscope-nf-nat: out of memory\n");
		nat->cursor[c] = nat->port_lo;
	}
	for (uint32_t i = 0; i < nat->max_flows; i++)
		nat->free_stack[i] = nat->max_flows - 1 - i;
	nat->n_free = nat->max_flows;
	nat->idle_cycles = (uint64_t)(nat->idle_timeout_s * (double)ctx->tsc_hz);
}

static void
release(struct nat *nat, uint32_t idx)
{
	struct nat_entry *e = &nat->entries[idx];

	rte_hash_del_key(nat->table, &e->key);
	nat->rev[pclass(e->key.proto)][e->pub_port] = 0;
	e->used = false;
	nat->free_stack[nat->n_free++] = idx;
	nat->expired++;
}

/* Free every mapping idle for longer than the timeout. Rare: only when the
 * table or a port range is full. */
static void
expire_idle(struct nat *nat, uint64_t now)
{
	for (uint32_t i = 0; i < nat->max_flows; i++)
		if (nat->entries[i].used && now - nat->entries[i].last_tsc > nat->idle_cycles)
			release(nat, i);
}

static int
alloc_port(struct nat *nat, int c)
{
	uint32_t range = (uint32_t)nat->port_hi - nat->port_lo + 1;

	for (uint32_t k = 0; k < range; k++) {
		uint32_t p = nat->cursor[c];

		nat->cursor[c] = p == nat->port_hi ? nat->port_lo : p + 1;
		if (nat->rev[c][p] == 0)
			return (int)p;
	}
	return -1;
}

static struct nat_entry *
lookup_or_create(struct nat *nat, const struct nat_key *k, uint64_t now)
{
	void *data;
	uint32_t idx;
	int port, c = pclass(k->proto);

	if (rte_hash_lookup_data(nat->table, k, &data) >= 0)
		return &nat->entries[(uintptr_t)data];
	if (nat->n_free == 0)
		expire_idle(nat, now);
	port = nat->n_free ? alloc_port(nat, c) : -1;
	if (port < 0) {
		expire_idle(nat, now);
		port = nat->n_free ? alloc_port(nat, c) : -1;
		if (port < 0)
			return NULL;
	}
	idx = nat->free_stack[nat->n_free - 1];
	if (rte_hash_add_key_data(nat->table, k, (void *)(uintptr_t)idx) < 0)
		return NULL;
	nat->n_free--;
	nat->entries[idx] = (struct nat_entry){ .key = *k, .pub_port = (uint16_t)port,
		.used = true };
	nat->rev[c][port] = idx + 1;
	nat->created++;
	return &nat->entries[idx];
}

/* RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), over 16-bit words as stored. */
static uint16_t
cksum_adjust(uint16_t ck, const void *old, const void *new, size_t len)
{
	const uint16_t *o = old, *n = new;
	uint32_t sum = (uint16_t)~ck;

	for (size_t i = 0; i < len / 2; i++)
		sum += (uint16_t)~o[i] + (uint32_t)n[i];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static uint16_t
load16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static void
store16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, sizeof(v));
}

/*
 * Rewrite one address (src or dst) and one port (sport/dport or ICMP id) of
 * the packet, then fix the checksums. Headers may sit at any alignment
 * (VLAN tags, odd offsets): fields are accessed by offset and memcpy.
 */
static void
rewrite(struct nat *nat, struct rte_mbuf *m, const struct nf_pkt *p, bool dst,
		uint32_t new_addr, int new_port)
{
	uint8_t *d = rte_pktmbuf_mtod(m, uint8_t *);
	uint8_t *ip = d + p->l3_off;
	struct rte_ipv4_hdr *iph = (struct rte_ipv4_hdr *)ip;
	uint32_t ihl = (uint32_t)(iph->version_ihl & 0xf) * 4;
	uint32_t tot = rte_be_to_cpu_16(iph->total_length);
	uint32_t avail = rte_pktmbuf_data_len(m) - p->l3_off;
	uint8_t proto = iph->next_proto_id;
	size_t addr_off = dst ? offsetof(struct rte_ipv4_hdr, dst_addr) :
		offsetof(struct rte_ipv4_hdr, src_addr);
	rte_be32_t old_addr, na = rte_cpu_to_be_32(new_addr);
	uint8_t *l4 = p->l4_off ? d + p->l4_off : NULL;
	uint32_t l4_len = tot > ihl ? tot - ihl : 0;
	bool whole = l4 && tot >= ihl && tot <= avail;
	int port_off = -1, ck_off = -1;

	memcpy(&old_addr, ip + addr_off, 4);
	memcpy(ip + addr_off, &na, 4);
	iph->hdr_checksum = 0;
	iph->hdr_checksum = rte_ipv4_cksum(iph);
	if (!l4)
		return;
	switch (proto) {
	case IPPROTO_TCP:
		if (avail - ihl >= sizeof(struct rte_tcp_hdr)) {
			port_off = dst ? offsetof(struct rte_tcp_hdr, dst_port) :
				offsetof(struct rte_tcp_hdr, src_port);
			ck_off = offsetof(struct rte_tcp_hdr, cksum);
		}
		break;
	case IPPROTO_UDP:
		if (avail - ihl >= sizeof(struct rte_udp_hdr)) {
			port_off = dst ? offsetof(struct rte_udp_hdr, dst_port) :
				offsetof(struct rte_udp_hdr, src_port);
			/* UDP checksum 0 means "none": leave it so. */
			if (load16(l4 + offsetof(struct rte_udp_hdr, dgram_cksum)) != 0)
				ck_off = offsetof(struct rte_udp_hdr, dgram_cksum);
		}
		break;
	case IPPROTO_ICMP:
		if (avail - ihl >= sizeof(struct rte_icmp_hdr)) {
			port_off = offsetof(struct rte_icmp_hdr, icmp_ident);
			ck_off = offsetof(struct rte_icmp_hdr, icmp_cksum);
		}
		break;
	}
	if (port_off >= 0 && new_port >= 0) {
		uint16_t np = rte_cpu_to_be_16((uint16_t)new_port), op = load16(l4 + port_off);

		store16(l4 + port_off, np);
		if (ck_off >= 0 && !whole)
			store16(l4 + ck_off, cksum_adjust(load16(l4 + ck_off), &op, &np, 2));
	}
	if (ck_off < 0)
		return;
	if (whole && proto != IPPROTO_ICMP) {
		store16(l4 + ck_off, 0);
		store16(l4 + ck_off, rte_ipv4_udptcp_cksum(iph, l4));
	} else if (whole) {
		store16(l4 + ck_off, 0);
		store16(l4 + ck_off, (uint16_t)~rte_raw_cksum(l4, l4_len));
	} else {
		nat->incremental++;
		/* The pseudo-header covers the addresses (not for ICMP). */
		if (proto != IPPROTO_ICMP)
			store16(l4 + ck_off, cksum_adjust(load16(l4 + ck_off), &old_addr, &na, 4));
	}
}

static void
process(struct nf_ctx *ctx, struct rte_mbuf **pkts, struct nf_pkt *meta, uint16_t n,
		uint16_t *out, void *arg)
{
	struct nat *nat = arg;
	uint64_t now = rte_rdtsc();

	for (uint16_t i = 0; i < n; i++) {
		struct nf_pkt *p = &meta[i];
		int c = pclass(p->t.proto);
		struct nat_key k;
		struct nat_entry *e;

		if (!p->t.is_ip) {
			nat->non_ip++;
			continue;
		}
		if (c >= 0 && !p->l4_off) {
			/* A later fragment: no port to translate by. */
			nat->fragments++;
			out[i] = NF_DROP;
			continue;
		}
		if (p->t.dst == nat->public_ip) {
			uint32_t idx;
			uint16_t dport = c == 2 ? 0 : p->t.dport;

			if (c == 2) {
				const struct rte_icmp_hdr *ic = rte_pktmbuf_mtod_offset(pkts[i],
					const struct rte_icmp_hdr *, p->l4_off);

				if (rte_pktmbuf_data_len(pkts[i]) >= p->l4_off + sizeof(*ic))
					dport = rte_be_to_cpu_16(ic->icmp_ident);
			}
			idx = c >= 0 ? nat->rev[c][dport] : 0;
			if (idx == 0) {
				nat->no_mapping++;
				out[i] = NF_DROP;
				continue;
			}
			e = &nat->entries[idx - 1];
			e->last_tsc = now;
			e->packets++;
			e->bytes += rte_pktmbuf_pkt_len(pkts[i]);
			rewrite(nat, pkts[i], p, true, e->key.src, e->key.sport);
			p->t.dst = e->key.src;
			if (c != 2)
				p->t.dport = e->key.sport;
			nat->in_pkts++;
			continue;
		}
		if (c < 0) {
			rewrite(nat, pkts[i], p, false, nat->public_ip, -1);
			p->t.src = nat->public_ip;
			nat->addr_only++;
			continue;
		}
		memset(&k, 0, sizeof(k));
		k.src = p->t.src;
		k.proto = p->t.proto;
		k.sport = p->t.sport;
		if (c == 2) {
			const struct rte_icmp_hdr *ic = rte_pktmbuf_mtod_offset(pkts[i],
				const struct rte_icmp_hdr *, p->l4_off);

			if (rte_pktmbuf_data_len(pkts[i]) >= p->l4_off + sizeof(*ic))
				k.sport = rte_be_to_cpu_16(ic->icmp_ident);
		}
		e = lookup_or_create(nat, &k, now);
		if (!e) {
			nat->exhausted++;
			out[i] = NF_DROP;
			continue;
		}
		e->last_tsc = now;
		e->packets++;
		e->bytes += rte_pktmbuf_pkt_len(pkts[i]);
		rewrite(nat, pkts[i], p, false, nat->public_ip, e->pub_port);
		p->t.src = nat->public_ip;
		if (c != 2)
			p->t.sport = e->pub_port;
		nat->out_pkts++;
	}
}

static const char *
ip_str(uint32_t a, char *buf)
{
	struct in_addr in = { .s_addr = htonl(a) };

	return inet_ntop(AF_INET, &in, buf, INET_ADDRSTRLEN);
}

static void
write_flows(const struct nat *nat, const char *name)
{
	json_t *arr = json_array(), *j;
	char a[INET_ADDRSTRLEN], pub[INET_ADDRSTRLEN];

	ip_str(nat->public_ip, pub);
	for (uint32_t i = 0; i < nat->max_flows; i++) {
		const struct nat_entry *e = &nat->entries[i];

		if (!e->used)
			continue;
		json_array_append_new(arr, json_pack("{s:i, s:s, s:i, s:s, s:i, s:I, s:I}",
			"proto", e->key.proto, "src", ip_str(e->key.src, a), "sport", e->key.sport,
			"public_src", pub, "public_sport", e->pub_port,
			"packets", (json_int_t)e->packets, "bytes", (json_int_t)e->bytes));
	}
	j = json_pack("{s:s, s:o}", "nf", name, "mappings", arr);
	if (json_dump_file(j, nat->flows_path, JSON_INDENT(1)) != 0)
		fprintf(stderr, "mscope-nf-nat: cannot write %s\n", nat->flows_path);
	json_decref(j);
}

int
main(int argc, char **argv)
{
	struct nf_common o;
	struct nf_ctx ctx;
	struct nat nat;
	uint32_t mask;
	int ret;

	if (nf_help_requested(argc, argv)) {
		usage(stdout);
		return 0;
	}
	ret = nf_eal_init(argc, argv);
	argc -= ret;
	argv += ret;
	nf_common_init(&o, "mscope-nf-nat");
	memset(&nat, 0, sizeof(nat));
	nf_parse_prefix("192.0.2.1", &nat.public_ip, &mask);
	nat.port_lo = 1024;
	nat.port_hi = 65535;
	nat.max_flows = 65536;
	nat.idle_timeout_s = 60;
	nf_getopt(&o, argc, argv, nat_opts, own_opt, &nat, usage);

	nf_setup(&ctx, &o, NB_MBUFS);
	nat_init(&nat, &ctx);
	nf_loop(&ctx, process, &nat);

	json_object_set_new(ctx.extra, "nat", json_pack(
		"{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
		"flows_active", (json_int_t)(nat.max_flows - nat.n_free),
		"flows_created", (json_int_t)nat.created, "flows_expired", (json_int_t)nat.expired,
		"translated_out", (json_int_t)nat.out_pkts, "translated_in", (json_int_t)nat.in_pkts,
		"address_only", (json_int_t)nat.addr_only, "non_ip", (json_int_t)nat.non_ip,
		"dropped_exhausted", (json_int_t)nat.exhausted,
		"dropped_no_mapping", (json_int_t)nat.no_mapping,
		"dropped_fragments", (json_int_t)nat.fragments,
		"incremental_cksum", (json_int_t)nat.incremental));
	if (nat.flows_path)
		write_flows(&nat, o.name);
	rte_hash_free(nat.table);
	nf_teardown(&ctx);
	for (int c = 0; c < N_PCLASS; c++)
		free(nat.rev[c]);
	free(nat.entries);
	free(nat.free_stack);
	return 0;
}
