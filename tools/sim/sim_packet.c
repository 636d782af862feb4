/* SPDX-License-Identifier: BSD-3-Clause */
/* Synthetic packet bytes: the simulator builds real Ethernet/IP/L4 headers so
 * that wire IDs come from the same function (mscope_wire_id) as in the
 * collector, and rewrites them as a NAT or a VPN gateway would. */
#include <string.h>

#include "sim_private.h"

static const uint8_t mac_dst[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x01 };
static const uint8_t mac_src[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x02 };

static inline void
wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void
wr32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* RFC 1071 Internet checksum of an IPv4 header whose checksum field is 0. */
uint16_t
sim_ip_csum(const uint8_t *hdr, unsigned len)
{
	uint32_t sum = 0;

	for (unsigned i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(hdr[i] << 8 | hdr[i + 1]);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* Write an Ethernet + IPv4/IPv6 + TCP/UDP frame of total length `len` into
 * head (its first SIM_HEAD bytes; the payload is zeros but for a counter). */
void
sim_build_frame(uint8_t *head, uint8_t *caplen, const struct mscope_flow_key *k,
		uint32_t len, uint16_t ipid, uint32_t tcpseq, uint32_t tcpack)
{
	uint8_t buf[128];
	unsigned l3 = 14, l4;

	memset(buf, 0, sizeof(buf));
	memcpy(buf, mac_dst, 6);
	memcpy(buf + 6, mac_src, 6);
	if (k->family == 6) {
		wr16(buf + 12, 0x86dd);
		uint8_t *ip = buf + l3;
		wr32(ip, 0x60000000u | (uint32_t)(sim_mix64(k->sport ^ ((uint64_t)k->dport << 16)) &
				0xfffff));
		wr16(ip + 4, (uint16_t)(len - 14 - 40));
		ip[6] = k->proto;
		ip[7] = 64;
		memcpy(ip + 8, k->src, 16);
		memcpy(ip + 24, k->dst, 16);
		l4 = l3 + 40;
	} else {
		wr16(buf + 12, 0x0800);
		uint8_t *ip = buf + l3;
		ip[0] = 0x45;
		wr16(ip + 2, (uint16_t)(len - 14));
		wr16(ip + 4, ipid);
		wr16(ip + 6, k->proto == 6 ? 0x4000 : 0);
		ip[8] = 64;
		ip[9] = k->proto;
		memcpy(ip + 12, k->src, 4);
		memcpy(ip + 16, k->dst, 4);
		wr16(ip + 10, sim_ip_csum(ip, 20));
		l4 = l3 + 20;
	}
	uint8_t *t = buf + l4;
	if (k->proto == 6) {
		wr16(t, k->sport);
		wr16(t + 2, k->dport);
		wr32(t + 4, tcpseq);
		wr32(t + 8, tcpack);
		t[12] = 0x50;
		t[13] = 0x18;              /* PSH|ACK */
		wr16(t + 14, 502);
		/* payload counter: keeps IPv6 frames distinct too */
		wr16(t + 20, ipid);
	} else if (k->proto == 17 || k->proto == 132) {
		wr16(t, k->sport);
		wr16(t + 2, k->dport);
		wr16(t + 4, (uint16_t)(len - l4));
		wr16(t + 8, ipid);
	} else {
		t[0] = 8;                  /* ICMP echo request */
		wr16(t + 4, (uint16_t)tcpack);
		wr16(t + 6, ipid);
	}
	memcpy(head, buf, SIM_HEAD);
	*caplen = (uint8_t)(len < SIM_HEAD ? len : SIM_HEAD);
}

/* Offset of the IP header behind Ethernet and VLAN tags; *ver = 4 or 6. -1 if not IP. */
static int
l3_offset(const uint8_t *h, unsigned caplen, int *ver)
{
	unsigned off = 12;

	for (int tags = 0; tags < 4 && off + 2 <= caplen; tags++) {
		uint16_t et = (uint16_t)(h[off] << 8 | h[off + 1]);
		if (et == 0x8100 || et == 0x88a8 || et == 0x9100) {
			off += 4;
			continue;
		}
		if (et == 0x0800 && off + 2 + 20 <= caplen) {
			*ver = 4;
			return (int)off + 2;
		}
		if (et == 0x86dd && off + 2 + 40 <= caplen) {
			*ver = 6;
			return (int)off + 2;
		}
		return -1;
	}
	return -1;
}

/* Source NAT of an IPv4 packet: src address and (TCP/UDP) source port, IP
 * checksum recomputed. Other packets pass unchanged. @return 1 if rewritten. */
int
sim_nat_rewrite(uint8_t *head, unsigned caplen, const uint8_t addr[4], uint16_t port)
{
	int ver;
	int l3 = l3_offset(head, caplen, &ver);

	if (l3 < 0 || ver != 4)
		return 0;
	uint8_t *ip = head + l3;
	unsigned ihl = (ip[0] & 0x0f) * 4u;
	memcpy(ip + 12, addr, 4);
	if (ihl >= 20 && l3 + ihl <= caplen) {
		ip[10] = ip[11] = 0;
		wr16(ip + 10, sim_ip_csum(ip, ihl));
	}
	int first_frag = ((ip[6] & 0x1f) | ip[7]) == 0;
	if ((ip[9] == 6 || ip[9] == 17) && first_frag && l3 + ihl + 2 <= caplen)
		wr16(ip + ihl, port);
	return 1;
}

/* ESP-in-UDP (or OpenVPN data channel) encapsulation of the whole frame's IP
 * packet: new outer Ethernet/IPv4/UDP header; the first bytes of the
 * "ciphertext" derive from the inner packet so that frames stay distinct. */
void
sim_vpn_encap(uint8_t *head, uint8_t *caplen, uint32_t *len, const uint8_t src[4],
		const uint8_t dst[4], uint16_t port, uint16_t ipid, uint32_t spi, uint32_t seq,
		uint64_t inner_hash)
{
	uint8_t buf[SIM_HEAD];
	uint32_t inner = *len > 14 ? *len - 14 : 0;
	/* 8 IV + payload + pad to 4 with 2 trailer bytes + 16 ICV */
	uint32_t esp = 8 + ((inner + 2 + 3) & ~3u) + 16;
	uint32_t total = 14 + 20 + 8 + 8 + esp;

	memset(buf, 0, sizeof(buf));
	memcpy(buf, mac_dst, 6);
	memcpy(buf + 6, mac_src, 6);
	wr16(buf + 12, 0x0800);
	uint8_t *ip = buf + 14;
	ip[0] = 0x45;
	wr16(ip + 2, (uint16_t)(total - 14 > 0xffff ? 0xffff : total - 14));
	wr16(ip + 4, ipid);
	ip[8] = 64;
	ip[9] = 17;
	memcpy(ip + 12, src, 4);
	memcpy(ip + 16, dst, 4);
	wr16(ip + 10, sim_ip_csum(ip, 20));
	uint8_t *u = ip + 20;
	wr16(u, port);
	wr16(u + 2, port);
	wr16(u + 4, (uint16_t)(total - 34 > 0xffff ? 0xffff : total - 34));
	uint8_t *e = u + 8;
	if (port == 1194) {
		wr32(e, 0x48000000u | (spi & 0xffffff));   /* P_DATA_V2, peer id */
	} else {
		wr32(e, spi);
	}
	wr32(e + 4, seq);
	uint64_t c = sim_mix64(inner_hash);
	for (unsigned i = 50; i < SIM_HEAD; i++) {
		buf[i] = (uint8_t)c;
		c = (c >> 8) | (c << 56);
		if (i == 57)
			c = sim_mix64(c);
	}
	memcpy(head, buf, SIM_HEAD);
	*len = total;
	*caplen = SIM_HEAD;
}
