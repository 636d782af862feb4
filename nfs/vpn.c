/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mscope-nf-vpn: a VPN gateway. Encapsulation (default) strips the Ethernet
 * header, transforms the inner IPv4 packet with a keyed XOR keystream and
 * prepends (rte_pktmbuf_prepend) Ethernet + outer IPv4 + UDP + an 8-byte
 * tunnel header (SPI, sequence number), like ESP in UDP (RFC 3948) without
 * the cryptography. The outer UDP source port is a hash of the inner flow, so
 * flows stay distinguishable after the tunnel. Decapsulation reverses it.
 * A per-byte cost (--byte-ns) models the price of a real cipher.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <rte_byteorder.h>
#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_jhash.h>
#include <rte_udp.h>

#include "common.h"

#define NB_MBUFS 8191

struct tun_hdr {
	rte_be32_t spi;
	rte_be32_t seq;
} __rte_packed;

#define ENCAP_LEN (sizeof(struct rte_ether_hdr) + sizeof(struct rte_ipv4_hdr) + \
	sizeof(struct rte_udp_hdr) + sizeof(struct tun_hdr))

struct vpn {
	bool decap;
	uint32_t tun_src, tun_dst;
	uint16_t udp_port;
	uint32_t spi;
	uint64_t key;
	double byte_ns;
	double byte_cycles;
	struct rte_ether_addr src_mac, dst_mac;
	uint32_t seq;
	uint16_t ip_id;
	uint64_t packets, bytes, dropped_non_ip, dropped_headroom, dropped_not_tunnel;
};

enum { OPT_BYTE_NS = 2000, OPT_KEY, OPT_MODE, OPT_PEER_MAC, OPT_SPI, OPT_TUN_DST, OPT_TUN_SRC,
	OPT_UDP_PORT };

static const struct option vpn_opts[] = {
	{ "byte-ns", required_argument, NULL, OPT_BYTE_NS },
	{ "key", required_argument, NULL, OPT_KEY },
	{ "mode", required_argument, NULL, OPT_MODE },
	{ "peer-mac", required_argument, NULL, OPT_PEER_MAC },
	{ "spi", required_argument, NULL, OPT_SPI },
	{ "tunnel-dst", required_argument, NULL, OPT_TUN_DST },
	{ "tunnel-src", required_argument, NULL, OPT_TUN_SRC },
	{ "udp-port", required_argument, NULL, OPT_UDP_PORT },
	{ NULL, 0, NULL, 0 },
};

static void
usage(FILE *f)
{
	fprintf(f, "usage: mscope-nf-vpn [EAL options] -- [options]\n\n"
		"A DPDK VPN gateway: encapsulates IPv4 packets in an outer IPv4/UDP tunnel\n"
		"header and transforms the payload with a keyed XOR keystream (or the reverse).\n\n"
		"VPN:\n"
		"  --mode encap|decap         (default encap)\n"
		"  --tunnel-src ADDR          outer source address (default 203.0.113.1)\n"
		"  --tunnel-dst ADDR          outer destination address (default 203.0.113.2)\n"
		"  --udp-port P               outer UDP destination port (default 4500)\n"
		"  --spi N                    tunnel identifier (default 256)\n"
		"  --key STRING               keystream key (default \"mscope\")\n"
		"  --byte-ns N                extra cost per payload byte, ns (default 0)\n"
		"  --peer-mac MAC             outer destination MAC (default 02:00:00:00:00:02)\n");
	nf_common_usage(f);
}

static int
parse_addr(const char *s, uint32_t *a)
{
	uint32_t mask;

	return nf_parse_prefix(s, a, &mask) == 0 && mask == UINT32_MAX ? 0 : -1;
}

static int
own_opt(int c, const char *arg, void *st)
{
	struct vpn *vpn = st;
	uint64_t v;
	double d;

	switch (c) {
	case OPT_BYTE_NS:
		if (nf_parse_double(arg, &d) || d < 0 || d > 1e6)
			break;
		vpn->byte_ns = d;
		return 0;
	case OPT_KEY:
		/* FNV-1a (rte_jhash reads whole words past a string's end). */
		vpn->key = 0xcbf29ce484222325ULL;
		for (const char *c = arg; *c; c++)
			vpn->key = (vpn->key ^ (uint8_t)*c) * 0x100000001b3ULL;
		return 0;
	case OPT_MODE:
		if (strcmp(arg, "encap") && strcmp(arg, "decap"))
			break;
		vpn->decap = !strcmp(arg, "decap");
		return 0;
	case OPT_PEER_MAC:
		if (rte_ether_unformat_addr(arg, &vpn->dst_mac))
			break;
		return 0;
	case OPT_SPI:
		if (nf_parse_u64(arg, &v) || v > UINT32_MAX)
			break;
		vpn->spi = (uint32_t)v;
		return 0;
	case OPT_TUN_DST:
		if (parse_addr(arg, &vpn->tun_dst))
			break;
		return 0;
	case OPT_TUN_SRC:
		if (parse_addr(arg, &vpn->tun_src))
			break;
		return 0;
	case OPT_UDP_PORT:
		if (nf_parse_u64(arg, &v) || v == 0 || v > 65535)
			break;
		vpn->udp_port = (uint16_t)v;
		return 0;
	default:
		return -1;
	}
	fprintf(stderr, "mscope-nf-vpn: bad value '%s' for --%s\n", arg,
		vpn_opts[c - OPT_BYTE_NS].name);
	return -1;
}

/* splitmix64: a fast keystream, not a cipher. */
static inline uint64_t
splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* XOR every byte from `off` to the end of the packet, all segments. */
static uint32_t
transform(struct rte_mbuf *m, uint32_t off, uint64_t key, uint32_t seq)
{
	uint64_t st = key ^ ((uint64_t)seq << 32 | seq), ks = 0;
	uint32_t done = 0, k = 8;

	for (struct rte_mbuf *s = m; s; s = s->next) {
		uint8_t *d = rte_pktmbuf_mtod(s, uint8_t *);
		uint32_t len = rte_pktmbuf_data_len(s);

		for (uint32_t i = off; i < len; i++) {
			if (k == 8) {
				ks = splitmix(&st);
				k = 0;
			}
			d[i] ^= (uint8_t)(ks >> (8 * k++));
		}
		done += len > off ? len - off : 0;
		off = off > len ? off - len : 0;
	}
	return done;
}

static int
encap(struct vpn *vpn, struct rte_mbuf *m, struct nf_pkt *p)
{
	struct rte_ether_hdr *eth;
	struct rte_ipv4_hdr *ip;
	struct rte_udp_hdr *udp;
	struct tun_hdr *th;
	uint32_t inner_len, seq = vpn->seq++;
	uint16_t sport = (uint16_t)(49152 + (nf_tuple_hash(&p->t) & 0x3fff));
	uint8_t *h;

	if (!p->t.is_ip) {
		vpn->dropped_non_ip++;
		return -1;
	}
	if (rte_pktmbuf_headroom(m) + p->l3_off < ENCAP_LEN) {
		vpn->dropped_headroom++;
		return -1;
	}
	rte_pktmbuf_adj(m, p->l3_off);
	inner_len = rte_pktmbuf_pkt_len(m);
	transform(m, 0, vpn->key, seq);
	h = (uint8_t *)rte_pktmbuf_prepend(m, ENCAP_LEN);
	eth = (struct rte_ether_hdr *)h;
	ip = (struct rte_ipv4_hdr *)(eth + 1);
	udp = (struct rte_udp_hdr *)(ip + 1);
	th = (struct tun_hdr *)(udp + 1);
	eth->dst_addr = vpn->dst_mac;
	eth->src_addr = vpn->src_mac;
	eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	memset(ip, 0, sizeof(*ip));
	ip->version_ihl = RTE_IPV4_VHL_DEF;
	ip->total_length = rte_cpu_to_be_16((uint16_t)(inner_len + sizeof(*ip) + sizeof(*udp) +
		sizeof(*th)));
	ip->packet_id = rte_cpu_to_be_16(vpn->ip_id++);
	ip->time_to_live = 64;
	ip->next_proto_id = IPPROTO_UDP;
	ip->src_addr = rte_cpu_to_be_32(vpn->tun_src);
	ip->dst_addr = rte_cpu_to_be_32(vpn->tun_dst);
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	udp->src_port = rte_cpu_to_be_16(sport);
	udp->dst_port = rte_cpu_to_be_16(vpn->udp_port);
	udp->dgram_len = rte_cpu_to_be_16((uint16_t)(inner_len + sizeof(*udp) + sizeof(*th)));
	udp->dgram_cksum = 0; /* optional over IPv4; the payload is opaque anyway */
	th->spi = rte_cpu_to_be_32(vpn->spi);
	th->seq = rte_cpu_to_be_32(seq);
	p->t = (struct nf_tuple){ .src = vpn->tun_src, .dst = vpn->tun_dst, .sport = sport,
		.dport = vpn->udp_port, .proto = IPPROTO_UDP, .is_ip = 1 };
	p->l3_off = sizeof(*eth);
	p->l4_off = sizeof(*eth) + sizeof(*ip);
	vpn->bytes += inner_len;
	return 0;
}

static int
decap(struct vpn *vpn, struct rte_mbuf *m, struct nf_pkt *p)
{
	const struct tun_hdr *th;
	struct rte_ether_hdr *eth;
	uint32_t hdr;

	if (!p->t.is_ip || p->t.proto != IPPROTO_UDP || p->t.dport != vpn->udp_port ||
			!p->l4_off) {
		vpn->dropped_not_tunnel++;
		return -1;
	}
	hdr = p->l4_off + sizeof(struct rte_udp_hdr) + sizeof(*th);
	if (rte_pktmbuf_data_len(m) < hdr + sizeof(struct rte_ipv4_hdr)) {
		vpn->dropped_not_tunnel++;
		return -1;
	}
	th = rte_pktmbuf_mtod_offset(m, const struct tun_hdr *, p->l4_off +
		sizeof(struct rte_udp_hdr));
	if (rte_be_to_cpu_32(th->spi) != vpn->spi) {
		vpn->dropped_not_tunnel++;
		return -1;
	}
	transform(m, hdr, vpn->key, rte_be_to_cpu_32(th->seq));
	rte_pktmbuf_adj(m, (uint16_t)(hdr - sizeof(*eth)));
	eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	eth->dst_addr = vpn->dst_mac;
	eth->src_addr = vpn->src_mac;
	eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	nf_parse(m, p);
	vpn->bytes += rte_pktmbuf_pkt_len(m) - sizeof(*eth);
	return 0;
}

static void
process(struct nf_ctx *ctx, struct rte_mbuf **pkts, struct nf_pkt *meta, uint16_t n,
		uint16_t *out, void *arg)
{
	struct vpn *vpn = arg;
	uint64_t bytes = vpn->bytes;

	for (uint16_t i = 0; i < n; i++) {
		if ((vpn->decap ? decap : encap)(vpn, pkts[i], &meta[i]) < 0) {
			out[i] = NF_DROP;
			continue;
		}
		vpn->packets++;
	}
	ctx->burst_extra_cycles += (uint64_t)((double)(vpn->bytes - bytes) * vpn->byte_cycles);
}

int
main(int argc, char **argv)
{
	struct nf_common o;
	struct nf_ctx ctx;
	struct vpn vpn;
	int ret;

	if (nf_help_requested(argc, argv)) {
		usage(stdout);
		return 0;
	}
	ret = nf_eal_init(argc, argv);
	argc -= ret;
	argv += ret;
	nf_common_init(&o, "mscope-nf-vpn");
	memset(&vpn, 0, sizeof(vpn));
	parse_addr("203.0.113.1", &vpn.tun_src);
	parse_addr("203.0.113.2", &vpn.tun_dst);
	vpn.udp_port = 4500;
	vpn.spi = 256;
	own_opt(OPT_KEY, "mscope", &vpn);
	rte_ether_unformat_addr("02:00:00:00:00:02", &vpn.dst_mac);
	nf_getopt(&o, argc, argv, vpn_opts, own_opt, &vpn, usage);

	nf_setup(&ctx, &o, NB_MBUFS);
	vpn.byte_cycles = vpn.byte_ns * (double)ctx.tsc_hz / 1e9;
	if (o.n_links > 0)
		rte_eth_macaddr_get(o.links[0].port, &vpn.src_mac);

	nf_loop(&ctx, process, &vpn);

	json_object_set_new(ctx.extra, "vpn", json_pack("{s:s, s:I, s:I, s:I, s:I, s:I}",
		"mode", vpn.decap ? "decap" : "encap", "packets", (json_int_t)vpn.packets,
		"payload_bytes", (json_int_t)vpn.bytes,
		"dropped_non_ip", (json_int_t)vpn.dropped_non_ip,
		"dropped_headroom", (json_int_t)vpn.dropped_headroom,
		"dropped_not_tunnel", (json_int_t)vpn.dropped_not_tunnel));
	nf_teardown(&ctx);
	return 0;
}
