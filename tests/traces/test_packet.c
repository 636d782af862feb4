/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Wire IDs and 5-tuple parsing: real packets from the shared pcaps (read with
 * libpcap, checked against an independent offset-based parse), hand-built
 * VLAN/QinQ and IPv6 frames with extension headers, and every truncation.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <pcap/pcap.h>
#include <stdlib.h>

#include "mscope_trace.h"

static const char *
data_dir(void)
{
	const char *d = getenv("MSCOPE_DATA");

	cr_assert_not_null(d, "MSCOPE_DATA not set (run through meson test)");
	return d;
}

struct pcap_counts {
	size_t pkts, ipv4, tcp, udp, checked;
};

static void
scan_pcap(const char *name, struct pcap_counts *c, uint32_t *ids, size_t max_ids)
{
	char path[1024], errbuf[PCAP_ERRBUF_SIZE];
	struct pcap_pkthdr *ph;
	const u_char *data;
	pcap_t *p;
	int rc;

	snprintf(path, sizeof(path), "%s/%s", data_dir(), name);
	p = pcap_open_offline(path, errbuf);
	cr_assert_not_null(p, "%s: %s", path, errbuf);
	cr_assert_eq(pcap_datalink(p), DLT_EN10MB);
	memset(c, 0, sizeof(*c));
	while ((rc = pcap_next_ex(p, &ph, &data)) == 1) {
		struct mscope_flow_key k;
		/* an exact-size copy so ASan sees any over-read */
		uint8_t *pkt = malloc(ph->caplen ? ph->caplen : 1);

		memcpy(pkt, data, ph->caplen);
		mscope_flow_parse(pkt, ph->caplen, &k);
		if (c->pkts < max_ids)
			ids[c->pkts] = mscope_wire_id(pkt, ph->caplen, ph->len);
		c->pkts++;
		/* independent parse of untagged IPv4 */
		if (ph->caplen >= 34 && pkt[12] == 0x08 && pkt[13] == 0x00 && (pkt[14] >> 4) == 4) {
			const unsigned ihl = (pkt[14] & 15) * 4u;
			const int first_frag = ((pkt[20] & 0x1f) | pkt[21]) == 0;

			c->ipv4++;
			cr_assert_eq(k.family, 4);
			cr_assert_eq(k.proto, pkt[23]);
			cr_assert_eq(memcmp(k.src, pkt + 26, 4), 0);
			cr_assert_eq(memcmp(k.dst, pkt + 30, 4), 0);
			if ((pkt[23] == 6 || pkt[23] == 17) && first_frag &&
			    ph->caplen >= 14 + ihl + 4) {
				cr_assert_eq(k.sport, pkt[14 + ihl] << 8 | pkt[15 + ihl]);
				cr_assert_eq(k.dport, pkt[16 + ihl] << 8 | pkt[17 + ihl]);
				c->checked++;
			}
		}
		if (k.family == 4 || k.family == 6) {
			c->tcp += k.proto == 6;
			c->udp += k.proto == 17;
		}
		free(pkt);
	}
	cr_assert_eq(rc, PCAP_ERROR_BREAK, "%s: %s", path, pcap_geterr(p));
	pcap_close(p);
}

static int
cmp_u32(const void *a, const void *b)
{
	const uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

Test(packet, real_pcaps_parse)
{
	static uint32_t ids[8192];
	struct pcap_counts c;

	scan_pcap("pcapplusplus_example.pcap", &c, ids, 8192);
	/* MANIFEST.md: 4,631 packets; TCP 4,492, UDP 139 */
	cr_assert_eq(c.pkts, 4631);
	cr_assert_eq(c.tcp, 4492);
	cr_assert_eq(c.udp, 139);
	cr_assert_gt(c.checked, 4000);

	scan_pcap("ndpi_gnutella.pcap", &c, ids, 8192);
	cr_assert_eq(c.pkts, 3905);
	cr_assert_eq(c.tcp, 2149);
	cr_assert_eq(c.udp, 1692);
}

/* Distinct packets get distinct IDs (up to the rare 32-bit collision). */
Test(packet, real_pcaps_wire_ids_spread)
{
	static uint32_t ids[8192];
	struct pcap_counts c;
	size_t dup = 0;

	scan_pcap("pcapplusplus_example.pcap", &c, ids, 8192);
	qsort(ids, c.pkts, 4, cmp_u32);
	for (size_t i = 1; i < c.pkts; i++)
		dup += ids[i] == ids[i - 1];
	/* the capture holds a few byte-identical retransmissions; nothing more */
	cr_assert_lt(dup, 40, "%zu duplicate wire IDs among %zu packets", dup, c.pkts);
}

Test(packet, wire_id_properties)
{
	uint8_t a[128], b[128];

	for (int i = 0; i < 128; i++)
		a[i] = (uint8_t)(i * 37 + 1);
	memcpy(b, a, sizeof(b));
	/* fixed by the format: the same in every process and build */
	cr_assert_eq(mscope_wire_id(a, 128, 128), mscope_wire_id(b, 128, 128));
	/* format version 2 (version 1 had another wire ID, 0xcc5c1576 here) */
	cr_assert_eq(mscope_wire_id(a, 128, 128), 0x111f4f64u,
		     "wire id changed: 0x%08x (files from older writers would not match)",
		     mscope_wire_id(a, 128, 128));
	/* only the first 64 bytes count ... */
	b[64] ^= 1;
	b[127] ^= 0x80;
	cr_assert_eq(mscope_wire_id(a, 128, 128), mscope_wire_id(b, 128, 128));
	cr_assert_eq(mscope_wire_id(a, 128, 1500), mscope_wire_id(a, 64, 1500));
	/* ... every one of them does, and so does the total length */
	for (int i = 0; i < 64; i++)
		for (int bit = 0; bit < 8; bit++) {
			memcpy(b, a, sizeof(b));
			b[i] ^= (uint8_t)(1 << bit);
			cr_assert_neq(mscope_wire_id(a, 128, 128), mscope_wire_id(b, 128, 128),
				      "byte %d bit %d", i, bit);
		}
	cr_assert_neq(mscope_wire_id(a, 128, 128), mscope_wire_id(a, 128, 129));
	/* short segments: trailing zero bytes are not the same as absent ones */
	memset(b, 0, sizeof(b));
	cr_assert_neq(mscope_wire_id(b, 20, 60), mscope_wire_id(b, 21, 60));
	cr_assert_eq(mscope_wire_id(NULL, 0, 60), mscope_wire_id(b, 0, 60));
}

/*
 * The wire ID written down a second time, from the definition in
 * docs/trace-format.md and mscope_trace.h, without the library's tables or
 * helpers: the keys are the first 64 bytes of the xxh3 default secret (read
 * as little-endian words here), the avalanche is xxHash64's. If the library
 * and this disagree, one of them no longer says what format 2 says.
 */
static const uint8_t ref_secret[64] = {
	0xb8, 0xfe, 0x6c, 0x39, 0x23, 0xa4, 0x4b, 0xbe, 0x7c, 0x01, 0x81, 0x2c, 0xf7, 0x21, 0xad, 0x1c,
	0xde, 0xd4, 0x6d, 0xe9, 0x83, 0x90, 0x97, 0xdb, 0x72, 0x40, 0xa4, 0xa4, 0xb7, 0xb3, 0x67, 0x1f,
	0xcb, 0x79, 0xe6, 0x4e, 0xcc, 0xc0, 0xe5, 0x78, 0x82, 0x5a, 0xd0, 0x7d, 0xcc, 0xff, 0x72, 0x21,
	0xb8, 0x08, 0x46, 0x74, 0xf7, 0x43, 0x24, 0x8e, 0xe0, 0x35, 0x90, 0xe6, 0x81, 0x3a, 0x26, 0x4c,
};

static uint64_t
ref_le64(const uint8_t *p)
{
	return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
	       (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
}

static uint32_t
ref_mix(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xC2B2AE3D27D4EB4FULL;
	h ^= h >> 29;
	h *= 0x165667B19E3779F9ULL;
	h ^= h >> 32;
	return (uint32_t)h ^ (uint32_t)(h >> 32);
}

static uint32_t
ref_wire_id(const uint8_t *data, uint32_t seg_len, uint32_t pkt_len)
{
	uint8_t buf[64];
	const uint32_t n = data == NULL ? 0 : seg_len < 64 ? seg_len : 64;
	uint64_t h = ((uint64_t)n << 32 | pkt_len) * 0x9E3779B185EBCA87ULL;

	memset(buf, 0, sizeof(buf));
	for (uint32_t i = 0; i < n; i++)
		buf[i] = data[i];
	for (int i = 0; i < 8; i++) {
		const uint64_t w = ref_le64(buf + 8 * i);
		const uint64_t a = w ^ ref_le64(ref_secret + 8 * i);

		h += (uint64_t)(uint32_t)a * (a >> 32) + w;
	}
	return ref_mix(h);
}

/* Format 2's wire ID, pinned by its definition rather than by the code. */
Test(packet, wire_id_definition)
{
	uint8_t a[128], z[128];
	uint64_t x = 0x243F6A8885A308D3ULL;

	for (int i = 0; i < 128; i++)
		a[i] = (uint8_t)(i * 37 + 1);
	memset(z, 0, sizeof(z));
	/* the published pieces are the documented ones */
	for (int i = 0; i < 8; i++)
		cr_assert_eq(mscope_wire_keys[i], ref_le64(ref_secret + 8 * i), "key %d", i);
	cr_assert_eq(mscope_wire_mix(0x0123456789abcdefULL), ref_mix(0x0123456789abcdefULL));
	/* known answers, computed by hand from the formula (same in every build) */
	cr_assert_eq(ref_wire_id(a, 128, 128), 0x111f4f64u, "0x%08x", ref_wire_id(a, 128, 128));
	cr_assert_eq(ref_wire_id(a, 20, 60), 0xf9282fbcu, "0x%08x", ref_wire_id(a, 20, 60));
	cr_assert_eq(ref_wire_id(a, 63, 1514), 0x00ff8e84u, "0x%08x", ref_wire_id(a, 63, 1514));
	cr_assert_eq(ref_wire_id(z, 64, 64), 0x6e5ef470u, "0x%08x", ref_wire_id(z, 64, 64));
	cr_assert_eq(ref_wire_id(NULL, 0, 60), 0x55d3cd9cu, "0x%08x", ref_wire_id(NULL, 0, 60));
	/* the library says the same, for these and for every segment length */
	cr_assert_eq(mscope_wire_id(a, 128, 128), 0x111f4f64u);
	cr_assert_eq(mscope_wire_id(a, 20, 60), 0xf9282fbcu);
	cr_assert_eq(mscope_wire_id(a, 63, 1514), 0x00ff8e84u);
	cr_assert_eq(mscope_wire_id(z, 64, 64), 0x6e5ef470u);
	cr_assert_eq(mscope_wire_id(NULL, 0, 60), 0x55d3cd9cu);
	for (int round = 0; round < 64; round++) {
		for (int i = 0; i < 128; i++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			a[i] = (uint8_t)(x >> 24);
		}
		/* high bits of every word set in some rounds: the 32x32 product's top */
		if (round % 4 == 0)
			memset(a, 0xff, 64);
		for (uint32_t seg = 0; seg <= 128; seg++) {
			const uint32_t len = seg + (uint32_t)(x % 1500) + (round == 1 ? 0xffff0000u : 0);

			cr_assert_eq(mscope_wire_id(a, seg, len), ref_wire_id(a, seg, len),
				     "round %d seg %u len %u: 0x%08x, definition says 0x%08x", round, seg,
				     len, mscope_wire_id(a, seg, len), ref_wire_id(a, seg, len));
		}
	}
}

/* Frame builders */
static size_t
eth(uint8_t *p, const uint16_t *tags, int ntags, uint16_t type)
{
	size_t n = 12;

	memset(p, 0x11, 12);
	for (int i = 0; i < ntags; i++) {
		p[n++] = (uint8_t)(tags[i] >> 8);
		p[n++] = (uint8_t)tags[i];
		p[n++] = 0x00;
		p[n++] = (uint8_t)(10 + i); /* VLAN id */
	}
	p[n++] = (uint8_t)(type >> 8);
	p[n++] = (uint8_t)type;
	return n;
}

static size_t
ipv4_udp(uint8_t *p, uint16_t frag)
{
	memset(p, 0, 28);
	p[0] = 0x46; /* with 4 bytes of options */
	p[6] = (uint8_t)(frag >> 8);
	p[7] = (uint8_t)frag;
	p[9] = 17;
	memcpy(p + 12, "\x0a\x00\x00\x01", 4);
	memcpy(p + 16, "\xc0\xa8\x01\x02", 4);
	p[24] = 0x12; p[25] = 0x34; /* sport 4660 */
	p[26] = 0x00; p[27] = 0x35; /* dport 53 */
	return 32;
}

/* Check parse at every truncation: never crash, never read past len. */
static void
parse_all_lengths(const uint8_t *frame, size_t len)
{
	for (size_t l = 0; l <= len; l++) {
		uint8_t *copy = malloc(l ? l : 1);
		struct mscope_flow_key k;

		memcpy(copy, frame, l);
		cr_assert_eq(mscope_flow_parse(copy, (uint32_t)l, &k), 0);
		free(copy);
	}
}

Test(packet, vlan_and_qinq)
{
	static const uint16_t t1[] = { 0x8100 }, t2[] = { 0x88a8, 0x8100 },
			      t3[] = { 0x9100, 0x8100, 0x8100 };
	const uint16_t *tags[] = { NULL, t1, t2, t3 };
	uint8_t f[128];
	char buf[128];

	for (int nt = 0; nt < 4; nt++) {
		struct mscope_flow_key k;
		size_t n = eth(f, tags[nt], nt, 0x0800);

		n += ipv4_udp(f + n, 0);
		mscope_flow_parse(f, (uint32_t)n, &k);
		cr_assert_eq(k.family, 4, "%d tags", nt);
		cr_assert_eq(k.proto, 17);
		cr_assert_eq(k.sport, 4660);
		cr_assert_eq(k.dport, 53);
		cr_assert_str_eq(mscope_flow_format(&k, buf, sizeof(buf)),
				 "udp 10.0.0.1:4660 > 192.168.1.2:53");
		parse_all_lengths(f, n);
	}
	{
		/* a non-first fragment has addresses but no ports */
		struct mscope_flow_key k;
		size_t n = eth(f, t1, 1, 0x0800);

		n += ipv4_udp(f + n, 0x0010);
		mscope_flow_parse(f, (uint32_t)n, &k);
		cr_assert_eq(k.family, 4);
		cr_assert_eq(k.sport, 0);
		cr_assert_eq(k.dport, 0);
	}
	{
		/* not IP: ARP */
		struct mscope_flow_key k;
		size_t n = eth(f, t1, 1, 0x0806);

		memset(f + n, 0xee, 28);
		mscope_flow_parse(f, (uint32_t)n + 28, &k);
		cr_assert_eq(k.family, 0);
		cr_assert_str_eq(mscope_flow_format(&k, buf, sizeof(buf)), "non-ip");
	}
}

/* IPv6 with hop-by-hop, routing and a fragment header before TCP. */
static size_t
ipv6_tcp(uint8_t *p, int with_ext, uint16_t frag_off)
{
	size_t n = 40;

	memset(p, 0, 40);
	p[0] = 0x60;
	memcpy(p + 8, "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01", 16);
	memcpy(p + 24, "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x02", 16);
	if (!with_ext) {
		p[6] = 6;
	} else {
		p[6] = 0;                 /* hop-by-hop, 8 bytes */
		memset(p + n, 0, 8);
		p[n] = 43;
		n += 8;
		memset(p + n, 0, 24);     /* routing, 24 bytes */
		p[n] = 44;
		p[n + 1] = 2;
		n += 24;
		memset(p + n, 0, 8);      /* fragment */
		p[n] = 60;
		p[n + 2] = (uint8_t)(frag_off >> 8);
		p[n + 3] = (uint8_t)frag_off;
		n += 8;
		memset(p + n, 0, 16);     /* destination options, 16 bytes */
		p[n] = 6;
		p[n + 1] = 1;
		n += 16;
	}
	memset(p + n, 0, 20);
	p[n] = 0xc3; p[n + 1] = 0x50;     /* sport 50000 */
	p[n + 2] = 0x01; p[n + 3] = 0xbb; /* dport 443 */
	return n + 20;
}

Test(packet, ipv6_extension_headers)
{
	static const uint16_t t1[] = { 0x8100 };
	uint8_t f[256];
	char buf[128];

	for (int ext = 0; ext < 2; ext++) {
		struct mscope_flow_key k;
		size_t n = eth(f, t1, ext, 0x86dd);

		n += ipv6_tcp(f + n, ext, 0);
		mscope_flow_parse(f, (uint32_t)n, &k);
		cr_assert_eq(k.family, 6);
		cr_assert_eq(k.proto, 6, "ext %d: proto %u", ext, k.proto);
		cr_assert_eq(k.sport, 50000);
		cr_assert_eq(k.dport, 443);
		cr_assert_str_eq(mscope_flow_format(&k, buf, sizeof(buf)),
				 "tcp [2001:db8::1]:50000 > [2001:db8::2]:443");
		parse_all_lengths(f, n);
	}
	{
		/* a non-first fragment: protocol known, ports not */
		struct mscope_flow_key k;
		size_t n = eth(f, NULL, 0, 0x86dd);

		n += ipv6_tcp(f + n, 1, 0x0100);
		mscope_flow_parse(f, (uint32_t)n, &k);
		cr_assert_eq(k.family, 6);
		cr_assert_eq(k.proto, 60);
		cr_assert_eq(k.sport, 0);
	}
}

Test(packet, format_and_reasons)
{
	struct mscope_flow_key k = { .family = 4, .proto = 1 };
	char buf[128], tiny[8];

	memcpy(k.src, "\x01\x02\x03\x04", 4);
	memcpy(k.dst, "\x05\x06\x07\x08", 4);
	cr_assert_str_eq(mscope_flow_format(&k, buf, sizeof(buf)), "icmp 1.2.3.4 > 5.6.7.8");
	k.proto = 47;
	cr_assert_str_eq(mscope_flow_format(&k, buf, sizeof(buf)), "proto47 1.2.3.4 > 5.6.7.8");
	k.proto = 6;
	k.sport = 1;
	k.dport = 2;
	cr_assert_str_eq(mscope_flow_format(&k, tiny, sizeof(tiny)), "tcp 1.2");
	cr_assert_str_eq(mscope_drop_reason_name(MSCOPE_DROP_QUEUE_FULL), "queue_full");
	cr_assert_str_eq(mscope_drop_reason_name(MSCOPE_DROP_TX_REFUSED), "tx_refused");
	cr_assert_str_eq(mscope_drop_reason_name(MSCOPE_DROP_NF), "nf");
	cr_assert_str_eq(mscope_drop_reason_name(MSCOPE_DROP_UNKNOWN), "unknown");
	cr_assert_str_eq(mscope_drop_reason_name(200), "invalid");
}
