/* SPDX-License-Identifier: BSD-3-Clause */
/* Flow aggregates: formatting and membership. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "af_private.h"
#include "mscope_autofocus.h"

const char *
mscope_af_proto_name(int proto)
{
	switch (proto) {
	case 1: return "icmp";
	case 2: return "igmp";
	case 6: return "tcp";
	case 17: return "udp";
	case 33: return "dccp";
	case 41: return "ipv6";
	case 47: return "gre";
	case 50: return "esp";
	case 51: return "ah";
	case 58: return "icmp6";
	case 89: return "ospf";
	case 132: return "sctp";
	case 136: return "udplite";
	default: return NULL;
	}
}

void
mscope_af_prefix_any(struct mscope_af_prefix *p)
{
	memset(p, 0, sizeof(*p));
	p->sport_hi = UINT16_MAX;
	p->dport_hi = UINT16_MAX;
	p->proto = -1;
}

static int
ports_any(uint16_t lo, uint16_t hi)
{
	return lo == 0 && hi == UINT16_MAX;
}

int
mscope_af_prefix_is_any(const struct mscope_af_prefix *p)
{
	return p->family == 0 && p->proto < 0 && ports_any(p->sport_lo, p->sport_hi) &&
		ports_any(p->dport_lo, p->dport_hi);
}

/* Whether the first `len` bits of a and b agree. */
static int
prefix_eq(const uint8_t *a, const uint8_t *b, unsigned int len)
{
	unsigned int full = len / 8, rest = len % 8;

	if (memcmp(a, b, full))
		return 0;
	if (rest) {
		uint8_t mask = (uint8_t)(0xff << (8 - rest));
		if ((a[full] ^ b[full]) & mask)
			return 0;
	}
	return 1;
}

int
mscope_af_prefix_contains(const struct mscope_af_prefix *p, const struct mscope_flow_key *k)
{
	if (mscope_af_prefix_is_any(p))
		return 1;
	if (k == NULL || (k->family != 4 && k->family != 6))
		return 0;
	if (p->family && p->family != k->family)
		return 0;
	if (p->family && (!prefix_eq(p->src, k->src, p->src_len) ||
			!prefix_eq(p->dst, k->dst, p->dst_len)))
		return 0;
	if (p->proto >= 0 && p->proto != k->proto)
		return 0;
	if (!ports_any(p->sport_lo, p->sport_hi) || !ports_any(p->dport_lo, p->dport_hi)) {
		/* Port-less protocols only sit in "any port". */
		if (!af_proto_has_ports(k->proto))
			return 0;
		if (k->sport < p->sport_lo || k->sport > p->sport_hi ||
				k->dport < p->dport_lo || k->dport > p->dport_hi)
			return 0;
	}
	return 1;
}

/* Append to buf at *pos, never past len - 1; always NUL-terminates. */
static void
put(char *buf, size_t len, size_t *pos, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void
put(char *buf, size_t len, size_t *pos, const char *fmt, ...)
{
	va_list ap;
	int r;

	if (*pos >= len)
		return;
	va_start(ap, fmt);
	r = vsnprintf(buf + *pos, len - *pos, fmt, ap);
	va_end(ap);
	if (r < 0)
		return;
	*pos += (size_t)r;
	if (*pos >= len)
		*pos = len;
}

static void
put_addr(char *buf, size_t len, size_t *pos, int family, const uint8_t *a,
		unsigned int plen, int star, int bracket)
{
	char s[INET6_ADDRSTRLEN];

	if (family == 0 || star) {
		put(buf, len, pos, "*");
		return;
	}
	if (!inet_ntop(family == 4 ? AF_INET : AF_INET6, a, s, sizeof(s)))
		snprintf(s, sizeof(s), "?");
	if (plen == (family == 4 ? 32u : 128u))
		put(buf, len, pos, bracket && family == 6 ? "[%s]" : "%s", s);
	else
		put(buf, len, pos, bracket && family == 6 ? "[%s/%u]" : "%s/%u", s, plen);
}

static void
put_port(char *buf, size_t len, size_t *pos, uint16_t lo, uint16_t hi)
{
	if (ports_any(lo, hi))
		put(buf, len, pos, ":*");
	else if (lo == hi)
		put(buf, len, pos, ":%u", lo);
	else
		put(buf, len, pos, ":%u-%u", lo, hi);
}

char *
mscope_af_prefix_format(const struct mscope_af_prefix *p, char *buf, size_t len)
{
	size_t pos = 0;
	int ports, src_star, dst_star;
	const char *name;

	if (len == 0)
		return buf;
	buf[0] = '\0';
	if (mscope_af_prefix_is_any(p)) {
		put(buf, len, &pos, "*");
		return buf;
	}
	if (p->proto < 0)
		put(buf, len, &pos, "* ");
	else if ((name = mscope_af_proto_name(p->proto)) != NULL)
		put(buf, len, &pos, "%s ", name);
	else
		put(buf, len, &pos, "proto%d ", p->proto);
	ports = p->proto < 0 || af_proto_has_ports(p->proto);
	/* A /0 reads "*" when the other side's prefix already shows the family. */
	src_star = p->src_len == 0 && p->dst_len > 0;
	dst_star = p->dst_len == 0 && p->src_len > 0;
	put_addr(buf, len, &pos, p->family, p->src, p->src_len, src_star, ports);
	if (ports)
		put_port(buf, len, &pos, p->sport_lo, p->sport_hi);
	put(buf, len, &pos, " > ");
	put_addr(buf, len, &pos, p->family, p->dst, p->dst_len, dst_star, ports);
	if (ports)
		put_port(buf, len, &pos, p->dport_lo, p->dport_hi);
	return buf;
}
