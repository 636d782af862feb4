/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Packet helpers: wire IDs, 5-tuple parsing and formatting.
 *
 * The wire ID is fixed by the format (files from different processes must
 * agree; version 2 defined it anew): see mscope_wire_id() below.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "mscope_trace.h"

#define WIRE_ID_BYTES 64

static const uint64_t P1 = 0x9E3779B185EBCA87ULL;

/* per-word keys of the wire ID (from the xxh3 default secret) */
const uint64_t mscope_wire_keys[8] = {
	0xbe4ba423396cfeb8ULL, 0x1cad21f72c81017cULL, 0xdb979083e96dd4deULL,
	0x1f67b3b7a4a44072ULL, 0x78e5c0cc4ee679cbULL, 0x2172ffcc7dd05a82ULL,
	0x8e2443f7744608b8ULL, 0x4c263a81e69035e0ULL,
};

static inline uint64_t
le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/*
 * Each 8-byte word w (little-endian, zero-padded) adds (lo * hi) + w, lo and
 * hi the 32-bit halves of w ^ key: the accumulation step of xxh3 (Yann
 * Collet, BSD-2), which an AVX-512 core does for all eight words in four
 * instructions. The lengths enter through an odd multiplier, and the sum
 * goes through the xxHash64 avalanche. The collector hashes on the NF's
 * core, so this must stay that cheap.
 */
uint32_t
mscope_wire_id(const void *data, uint32_t seg_len, uint32_t pkt_len)
{
	uint8_t buf[WIRE_ID_BYTES] = { 0 };
	uint32_t n = seg_len < WIRE_ID_BYTES ? seg_len : WIRE_ID_BYTES;
	uint64_t h;

	if (data == NULL)
		n = 0;
	if (n != 0)
		memcpy(buf, data, n);
	h = ((uint64_t)n << 32 | pkt_len) * P1;
	for (int i = 0; i < WIRE_ID_BYTES / 8; i++) {
		const uint64_t w = le64(buf + 8 * i), a = w ^ mscope_wire_keys[i];

		h += (a & 0xffffffffu) * (a >> 32) + w;
	}
	return mscope_wire_mix(h);
}

#define ETH_P_IPV4 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_P_VLAN 0x8100
#define ETH_P_QINQ 0x88A8
#define ETH_P_QINQ_OLD 0x9100
#define MAX_VLAN_TAGS 4
#define MAX_IPV6_EXT 8

static inline uint16_t
rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static int
has_ports(uint8_t proto)
{
	return proto == 6 || proto == 17 || proto == 132 || proto == 136 || proto == 33;
}

static void
parse_ports(const uint8_t *l4, uint32_t left, struct mscope_flow_key *key)
{
	if (!has_ports(key->proto) || left < 4)
		return;
	key->sport = rd16(l4);
	key->dport = rd16(l4 + 2);
}

static void
parse_ipv4(const uint8_t *p, uint32_t left, struct mscope_flow_key *key)
{
	uint32_t ihl;
	uint16_t frag;

	if (left < 20 || (p[0] >> 4) != 4)
		return;
	ihl = (uint32_t)(p[0] & 0x0f) * 4;
	if (ihl < 20)
		return;
	key->family = 4;
	key->proto = p[9];
	memcpy(key->src, p + 12, 4);
	memcpy(key->dst, p + 16, 4);
	frag = rd16(p + 6);
	if ((frag & 0x1fff) != 0 || ihl > left)
		return; /* a non-first fragment has no L4 header */
	parse_ports(p + ihl, left - ihl, key);
}

static int
is_ipv6_ext(uint8_t nh)
{
	return nh == 0 || nh == 43 || nh == 44 || nh == 60 || nh == 51;
}

static void
parse_ipv6(const uint8_t *p, uint32_t left, struct mscope_flow_key *key)
{
	uint8_t nh;
	uint32_t off = 40;

	if (left < 40 || (p[0] >> 4) != 6)
		return;
	key->family = 6;
	memcpy(key->src, p + 8, 16);
	memcpy(key->dst, p + 24, 16);
	nh = p[6];
	for (int i = 0; i < MAX_IPV6_EXT && is_ipv6_ext(nh); i++) {
		uint32_t len;

		if (left - off < 8) {
			key->proto = nh;
			return;
		}
		if (nh == 44) { /* fragment header: fixed 8 bytes */
			const uint16_t fo = rd16(p + off + 2);

			nh = p[off];
			off += 8;
			if ((fo & 0xfff8) != 0) {
				key->proto = nh; /* non-first fragment: no ports */
				return;
			}
			continue;
		}
		len = nh == 51 ? ((uint32_t)p[off + 1] + 2) * 4 : ((uint32_t)p[off + 1] + 1) * 8;
		nh = p[off];
		if (len > left - off) {
			key->proto = nh;
			return;
		}
		off += len;
	}
	key->proto = nh;
	if (is_ipv6_ext(nh))
		return; /* too many extension headers: give up on ports */
	parse_ports(p + off, left - off, key);
}

int
mscope_flow_parse(const void *frame, uint32_t len, struct mscope_flow_key *key)
{
	const uint8_t *p = frame;
	uint32_t off = 12;
	uint16_t type;

	memset(key, 0, sizeof(*key));
	if (p == NULL || len < 14)
		return 0;
	type = rd16(p + off);
	off += 2;
	for (int i = 0; i < MAX_VLAN_TAGS &&
	     (type == ETH_P_VLAN || type == ETH_P_QINQ || type == ETH_P_QINQ_OLD); i++) {
		if (len - off < 4)
			return 0;
		type = rd16(p + off + 2);
		off += 4;
	}
	if (type == ETH_P_IPV4)
		parse_ipv4(p + off, len - off, key);
	else if (type == ETH_P_IPV6)
		parse_ipv6(p + off, len - off, key);
	return 0;
}

static const char *
proto_name(uint8_t proto, char *buf, size_t len)
{
	switch (proto) {
	case 1: return "icmp";
	case 6: return "tcp";
	case 17: return "udp";
	case 58: return "icmp6";
	case 132: return "sctp";
	default:
		snprintf(buf, len, "proto%u", proto);
		return buf;
	}
}

char *
mscope_flow_format(const struct mscope_flow_key *key, char *buf, size_t len)
{
	char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN], pn[16];
	const char *proto;

	if (buf == NULL || len == 0)
		return buf;
	if (key == NULL || (key->family != 4 && key->family != 6)) {
		snprintf(buf, len, "non-ip");
		return buf;
	}
	proto = proto_name(key->proto, pn, sizeof(pn));
	inet_ntop(key->family == 4 ? AF_INET : AF_INET6, key->src, s, sizeof(s));
	inet_ntop(key->family == 4 ? AF_INET : AF_INET6, key->dst, d, sizeof(d));
	if (!has_ports(key->proto) && key->sport == 0 && key->dport == 0)
		snprintf(buf, len, "%s %s > %s", proto, s, d);
	else if (key->family == 4)
		snprintf(buf, len, "%s %s:%u > %s:%u", proto, s, key->sport, d, key->dport);
	else
		snprintf(buf, len, "%s [%s]:%u > [%s]:%u", proto, s, key->sport, d, key->dport);
	return buf;
}

const char *
mscope_drop_reason_name(uint8_t reason)
{
	switch (reason) {
	case MSCOPE_DROP_UNKNOWN: return "unknown";
	case MSCOPE_DROP_QUEUE_FULL: return "queue_full";
	case MSCOPE_DROP_TX_REFUSED: return "tx_refused";
	case MSCOPE_DROP_NF: return "nf";
	default: return "invalid";
	}
}
