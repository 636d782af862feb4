/* SPDX-License-Identifier: BSD-3-Clause */
/* Scenario files: parse and validate (jansson), read the pcap (libpcap).
 * Every error names the JSON field it is about, e.g. "faults[1].nf". */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <pcap/pcap.h>

#include "sim_private.h"

/* Lowest rate (Mpps) anywhere: one packet a second. With the highest
 * slow-down (1e6) or the lowest slow factor (1e-6) a service time then still
 * fits in SIM_MAX_SERVICE_PS; lower rates, or values a double cannot turn
 * into 64-bit picoseconds, are refused rather than silently wrapped. */
#define MIN_RATE_MPPS 1e-6
#define MAX_RATE_MPPS 1000.0

struct perr {
	char *buf;
	size_t len;
	const char *name;        /* file or scenario name for messages */
};

__attribute__((format(printf, 3, 4))) static void
fail(const struct perr *pe, const char *field, const char *fmt, ...)
{
	char text[384];
	va_list ap;

	if (pe->buf == NULL || pe->len == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (field != NULL && *field)
		snprintf(pe->buf, pe->len, "%s: %s: %s", pe->name, field, text);
	else
		snprintf(pe->buf, pe->len, "%s: %s", pe->name, text);
}

/* Field path helpers: "nfs[2]" + ".rate_mpps". */
static const char *
path(char *buf, size_t len, const char *parent, const char *child)
{
	if (parent == NULL || !*parent)
		snprintf(buf, len, "%s", child);
	else
		snprintf(buf, len, "%s.%s", parent, child);
	return buf;
}

static const char *
path_idx(char *buf, size_t len, const char *parent, size_t i)
{
	snprintf(buf, len, "%s[%zu]", parent, i);
	return buf;
}

/* A number field. required: error if absent. Returns 1 found, 0 absent, -1 error. */
static int
get_num(const struct perr *pe, const json_t *obj, const char *parent, const char *key,
		int required, double lo, double hi, double *out)
{
	char p[160];
	const json_t *v = json_object_get(obj, key);

	path(p, sizeof(p), parent, key);
	if (v == NULL || json_is_null(v)) {
		if (required) {
			fail(pe, p, "missing (a number is required)");
			return -1;
		}
		return 0;
	}
	if (!json_is_number(v)) {
		fail(pe, p, "must be a number");
		return -1;
	}
	double d = json_number_value(v);
	if (!isfinite(d) || d < lo || d > hi) {
		fail(pe, p, "%g is out of range [%g, %g]", d, lo, hi);
		return -1;
	}
	*out = d;
	return 1;
}

/* Strictly positive number. */
static int
get_pos(const struct perr *pe, const json_t *obj, const char *parent, const char *key,
		int required, double hi, double *out)
{
	char p[160];
	int rc = get_num(pe, obj, parent, key, required, 0, hi, out);

	if (rc == 1 && *out <= 0) {
		fail(pe, path(p, sizeof(p), parent, key), "must be greater than 0");
		return -1;
	}
	return rc;
}

static int
get_int(const struct perr *pe, const json_t *obj, const char *parent, const char *key,
		int required, long long lo, long long hi, long long *out)
{
	char p[160];
	const json_t *v = json_object_get(obj, key);

	path(p, sizeof(p), parent, key);
	if (v == NULL || json_is_null(v)) {
		if (required) {
			fail(pe, p, "missing (an integer is required)");
			return -1;
		}
		return 0;
	}
	long long x;
	if (json_is_integer(v)) {
		x = json_integer_value(v);
	} else if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)) &&
			fabs(json_real_value(v)) < 9e15) {
		x = (long long)json_real_value(v);
	} else {
		fail(pe, p, "must be an integer");
		return -1;
	}
	if (x < lo || x > hi) {
		fail(pe, p, "%lld is out of range [%lld, %lld]", x, lo, hi);
		return -1;
	}
	*out = x;
	return 1;
}

static int
get_str(const struct perr *pe, const json_t *obj, const char *parent, const char *key,
		int required, const char **out)
{
	char p[160];
	const json_t *v = json_object_get(obj, key);

	path(p, sizeof(p), parent, key);
	if (v == NULL || json_is_null(v)) {
		if (required) {
			fail(pe, p, "missing (a string is required)");
			return -1;
		}
		return 0;
	}
	if (!json_is_string(v)) {
		fail(pe, p, "must be a string");
		return -1;
	}
	*out = json_string_value(v);
	return 1;
}

int
sim_parse_proto(const char *s, uint8_t *proto)
{
	static const struct { const char *name; uint8_t num; } names[] = {
		{ "tcp", 6 }, { "udp", 17 }, { "icmp", 1 }, { "icmp6", 58 },
		{ "ipv6-icmp", 58 }, { "sctp", 132 }, { "gre", 47 }, { "esp", 50 },
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcasecmp(s, names[i].name)) {
			*proto = names[i].num;
			return 0;
		}
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (*s && !*end && !errno && v >= 0 && v <= 255) {
		*proto = (uint8_t)v;
		return 0;
	}
	return -1;
}

static int
get_proto(const struct perr *pe, const json_t *obj, const char *parent, int required,
		uint8_t *out)
{
	char p[160];
	const json_t *v = json_object_get(obj, "proto");

	path(p, sizeof(p), parent, "proto");
	if (v == NULL || json_is_null(v)) {
		if (required) {
			fail(pe, p, "missing (\"tcp\", \"udp\", ... or a protocol number)");
			return -1;
		}
		return 0;
	}
	if (json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) <= 255) {
		*out = (uint8_t)json_integer_value(v);
		return 1;
	}
	if (json_is_string(v) && sim_parse_proto(json_string_value(v), out) == 0)
		return 1;
	fail(pe, p, "must be \"tcp\", \"udp\", \"icmp\", ... or a number 0-255");
	return -1;
}

/* Address "a.b.c.d", "a.b.c.d/len", or IPv6 with optional "/len". */
static int
parse_addr(const char *s, int allow_prefix, uint8_t *family, uint8_t addr[16], uint8_t *plen)
{
	char buf[64];
	const char *slash = strchr(s, '/');
	size_t n = slash ? (size_t)(slash - s) : strlen(s);

	if (n == 0 || n >= sizeof(buf) || (slash && !allow_prefix))
		return -1;
	memcpy(buf, s, n);
	buf[n] = 0;
	memset(addr, 0, 16);
	int max;
	if (inet_pton(AF_INET, buf, addr) == 1) {
		*family = 4;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, addr) == 1) {
		*family = 6;
		max = 128;
	} else {
		return -1;
	}
	long l = max;
	if (slash) {
		char *end;
		errno = 0;
		l = strtol(slash + 1, &end, 10);
		if (!slash[1] || *end || errno || l < 0 || l > max)
			return -1;
	}
	if (plen)
		*plen = (uint8_t)l;
	return 0;
}

static int
get_port_range(const struct perr *pe, const json_t *obj, const char *parent, const char *key,
		uint16_t *lo, uint16_t *hi)
{
	char p[160];
	const json_t *v = json_object_get(obj, key);

	path(p, sizeof(p), parent, key);
	if (v == NULL || json_is_null(v))
		return 0;
	long a = -1, b = -1;
	if (json_is_integer(v)) {
		a = b = (long)json_integer_value(v);
	} else if (json_is_string(v)) {
		const char *s = json_string_value(v);
		char *end;
		a = strtol(s, &end, 10);
		if (end == s)
			a = -1;
		else if (*end == '-')
			b = strtol(end + 1, &end, 10);
		else
			b = a;
		if (*end)
			a = -1;
	} else if (json_is_array(v) && json_array_size(v) == 2 &&
			json_is_integer(json_array_get(v, 0)) && json_is_integer(json_array_get(v, 1))) {
		a = (long)json_integer_value(json_array_get(v, 0));
		b = (long)json_integer_value(json_array_get(v, 1));
	}
	if (a < 0 || b < a || b > 65535) {
		fail(pe, p, "must be a port 0-65535, \"lo-hi\" or [lo, hi]");
		return -1;
	}
	*lo = (uint16_t)a;
	*hi = (uint16_t)b;
	return 1;
}

static int
parse_match(const struct perr *pe, const json_t *v, const char *p, struct sim_match *m)
{
	char q[160];
	const char *s;
	int rc;

	memset(m, 0, sizeof(*m));
	if (!json_is_object(v)) {
		fail(pe, p, "must be an object with src, dst, sport, dport, proto");
		return -1;
	}
	if ((rc = get_str(pe, v, p, "src", 0, &s)) < 0)
		return -1;
	if (rc == 1) {
		if (parse_addr(s, 1, &m->src_family, m->src, &m->src_plen) < 0) {
			fail(pe, path(q, sizeof(q), p, "src"), "\"%s\" is not an address or prefix", s);
			return -1;
		}
		m->fields |= M_SRC;
	}
	if ((rc = get_str(pe, v, p, "dst", 0, &s)) < 0)
		return -1;
	if (rc == 1) {
		if (parse_addr(s, 1, &m->dst_family, m->dst, &m->dst_plen) < 0) {
			fail(pe, path(q, sizeof(q), p, "dst"), "\"%s\" is not an address or prefix", s);
			return -1;
		}
		m->fields |= M_DST;
	}
	if ((rc = get_port_range(pe, v, p, "sport", &m->sport_lo, &m->sport_hi)) < 0)
		return -1;
	if (rc == 1)
		m->fields |= M_SPORT;
	if ((rc = get_port_range(pe, v, p, "dport", &m->dport_lo, &m->dport_hi)) < 0)
		return -1;
	if (rc == 1)
		m->fields |= M_DPORT;
	if ((rc = get_proto(pe, v, p, 0, &m->proto)) < 0)
		return -1;
	if (rc == 1)
		m->fields |= M_PROTO;
	return 0;
}

static int
prefix_eq(const uint8_t *a, const uint8_t *b, unsigned plen)
{
	unsigned bytes = plen / 8, bits = plen % 8;

	if (memcmp(a, b, bytes))
		return 0;
	if (bits) {
		uint8_t mask = (uint8_t)(0xff << (8 - bits));
		if ((a[bytes] ^ b[bytes]) & mask)
			return 0;
	}
	return 1;
}

int
sim_match(const struct sim_match *m, const struct mscope_flow_key *k)
{
	if ((m->fields & M_PROTO) && k->proto != m->proto)
		return 0;
	if ((m->fields & M_SPORT) && (k->sport < m->sport_lo || k->sport > m->sport_hi))
		return 0;
	if ((m->fields & M_DPORT) && (k->dport < m->dport_lo || k->dport > m->dport_hi))
		return 0;
	if ((m->fields & M_SRC) &&
			(k->family != m->src_family || !prefix_eq(k->src, m->src, m->src_plen)))
		return 0;
	if ((m->fields & M_DST) &&
			(k->family != m->dst_family || !prefix_eq(k->dst, m->dst, m->dst_plen)))
		return 0;
	return 1;
}

struct type_default {
	const char *type;
	enum nf_kind kind;
	double rate_mpps;
};

/* Peak rates of the paper's Click NFs are in this range; types only pick defaults. */
static const struct type_default type_defaults[] = {
	{ "nat", NF_NAT, 1.2 },
	{ "vpn", NF_VPN, 0.8 },
	{ "firewall", NF_PLAIN, 1.0 },
	{ "fw", NF_PLAIN, 1.0 },
	{ "monitor", NF_PLAIN, 1.5 },
	{ "lb", NF_PLAIN, 2.0 },
};

static int
find_nf(const struct mscope_sim_scenario *s, const char *name)
{
	for (unsigned i = 0; i < s->n_nfs; i++)
		if (!strcmp(s->nfs[i].name, name))
			return (int)i;
	return -1;
}

static int
valid_name(const char *n)
{
	size_t len = strlen(n);

	if (len == 0 || len > 63 || n[0] == '.' || n[0] == '-')
		return 0;
	for (const char *c = n; *c; c++)
		if (!isalnum((unsigned char)*c) && *c != '_' && *c != '-' && *c != '.')
			return 0;
	return 1;
}

/* Launcher-only fields (tools/mscope-chain) are validated here too, so that
 * one parser decides what a scenario is, and kept to be printed back by
 * `mscope sim --dry-run --json`. The simulator itself ignores them. */

/* An array of at most 4096 strings, copied into `into` under `key`. */
static int
keep_strings(const struct perr *pe, const json_t *obj, const char *parent, const char *key,
		json_t *into)
{
	char p[160];
	const json_t *v = json_object_get(obj, key);
	size_t i;
	const json_t *x;

	if (v == NULL || json_is_null(v))
		return 0;
	path(p, sizeof(p), parent, key);
	if (!json_is_array(v) || json_array_size(v) > 4096) {
		fail(pe, p, "must be an array of at most 4096 strings");
		return -1;
	}
	json_array_foreach(v, i, x) {
		if (!json_is_string(x) || json_string_length(x) > 4095) {
			fail(pe, p, "[%zu]: must be a string of at most 4095 bytes", i);
			return -1;
		}
	}
	json_object_set_new(into, key, json_deep_copy(v));
	return 0;
}

static int
parse_launch_nf(const struct perr *pe, const json_t *o, const char *p, struct sim_nf *nf)
{
	const char *str;
	double d;
	int rc;

	nf->launch = json_object();
	if (nf->launch == NULL) {
		fail(pe, NULL, "out of memory");
		return -1;
	}
	if ((rc = get_str(pe, o, p, "program", 0, &str)) < 0)
		return -1;
	if (rc == 1) {
		char q[160];
		if (!*str || strlen(str) > 4095) {
			fail(pe, path(q, sizeof(q), p, "program"), "must be 1-4095 bytes");
			return -1;
		}
		json_object_set_new(nf->launch, "program", json_string(str));
	}
	if (keep_strings(pe, o, p, "args", nf->launch) < 0 ||
			keep_strings(pe, o, p, "eal_args", nf->launch) < 0 ||
			keep_strings(pe, o, p, "rules", nf->launch) < 0)
		return -1;
	if ((rc = get_num(pe, o, p, "byte_ns", 0, 0, 1e6, &d)) < 0)
		return -1;
	if (rc == 1)
		json_object_set_new(nf->launch, "byte_ns", json_real(d));
	return 0;
}

/* traffic.timing, .once, .count (the real source's options). */
static int
parse_launch_traffic(const struct perr *pe, const json_t *t, struct sim_traffic *tr)
{
	const char *str;
	long long ll;
	int rc;

	tr->launch = json_object();
	if (tr->launch == NULL) {
		fail(pe, NULL, "out of memory");
		return -1;
	}
	if ((rc = get_str(pe, t, "traffic", "timing", 0, &str)) < 0)
		return -1;
	if (rc == 1) {
		if (strcmp(str, "pcap") && strcmp(str, "cbr") && strcmp(str, "poisson")) {
			fail(pe, "traffic.timing", "\"%.80s\": must be \"pcap\", \"cbr\" or "
				"\"poisson\"", str);
			return -1;
		}
		json_object_set_new(tr->launch, "timing", json_string(str));
	}
	const json_t *once = json_object_get(t, "once");
	if (once != NULL && !json_is_null(once)) {
		if (!json_is_boolean(once)) {
			fail(pe, "traffic.once", "must be true or false");
			return -1;
		}
		json_object_set_new(tr->launch, "once", json_boolean(json_is_true(once)));
	}
	if ((rc = get_int(pe, t, "traffic", "count", 0, 1, 1000000000000LL, &ll)) < 0)
		return -1;
	if (rc == 1)
		json_object_set_new(tr->launch, "count", json_integer(ll));
	return 0;
}

/* A byte size as the collector reads it: an integer, or "N" with a k, M or G
 * suffix (powers of 1024, optional "B" or "iB"). */
static int
size_value(const json_t *v, double *out)
{
	if (json_is_integer(v)) {
		*out = (double)json_integer_value(v);
		return 0;
	}
	if (!json_is_string(v))
		return -1;
	const char *s = json_string_value(v);
	char *end;
	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	double x = (double)strtoull(s, &end, 10);
	if (errno)
		return -1;
	if (*end) {
		const char *sfx = strchr("kKmMgG", *end);
		if (sfx == NULL)
			return -1;
		x *= (double)(1ULL << (10 * (1 + (sfx - "kKmMgG") / 2)));
		end++;
		if (*end && strcmp(end, "B") && strcmp(end, "b") && strcmp(end, "iB"))
			return -1;
	}
	*out = x;
	return 0;
}

/* "recording": the collector's rotation settings for real runs, passed by the
 * launcher as MSCOPE_SEGMENT_SECONDS, _BYTES, MSCOPE_SEGMENTS, MSCOPE_BUDGET. */
static int
parse_recording(const struct perr *pe, const json_t *root, struct mscope_sim_scenario *s)
{
	const json_t *r = json_object_get(root, "recording");
	const char *key;
	const json_t *v;
	char p[160];

	if (r == NULL || json_is_null(r))
		return 0;
	if (!json_is_object(r)) {
		fail(pe, "recording", "must be an object (segment_seconds, segment_bytes, "
			"segments, budget)");
		return -1;
	}
	s->recording = json_object();
	if (s->recording == NULL) {
		fail(pe, NULL, "out of memory");
		return -1;
	}
	json_object_foreach((json_t *)r, key, v) {
		long long ll;
		double d;
		path(p, sizeof(p), "recording", key);
		if (json_is_null(v))
			continue;
		if (!strcmp(key, "segment_seconds") || !strcmp(key, "segments")) {
			int sec = key[7] == '_';
			if (get_int(pe, r, "recording", key, 1, 1, sec ? 2678400 : 1000000, &ll) < 0)
				return -1;
			json_object_set_new(s->recording, key, json_integer(ll));
		} else if (!strcmp(key, "segment_bytes") || !strcmp(key, "budget")) {
			double lo = key[0] == 'b' ? 262144 : 65536;
			if (size_value(v, &d) < 0 || d < lo || d > 0x1p50) {
				fail(pe, p, "must be a size of at least %gk and at most 1P: an integer "
					"or \"N\" with a k, M or G suffix", lo / 1024);
				return -1;
			}
			json_object_set(s->recording, key, (json_t *)v);
		} else {
			fail(pe, p, "unknown (segment_seconds, segment_bytes, segments or budget)");
			return -1;
		}
	}
	return 0;
}

static int
parse_nfs(const struct perr *pe, const json_t *root, struct mscope_sim_scenario *s,
		double default_jitter)
{
	const json_t *arr = json_object_get(root, "nfs");
	char p[64], q[160];

	if (arr == NULL) {
		fail(pe, "nfs", "missing (an array of NFs is required)");
		return -1;
	}
	if (!json_is_array(arr) || json_array_size(arr) == 0) {
		fail(pe, "nfs", "must be a non-empty array");
		return -1;
	}
	if (json_array_size(arr) > 4096) {
		fail(pe, "nfs", "at most 4096 NFs");
		return -1;
	}
	s->nfs = calloc(json_array_size(arr), sizeof(*s->nfs));
	if (s->nfs == NULL) {
		fail(pe, NULL, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < json_array_size(arr); i++) {
		const json_t *o = json_array_get(arr, i);
		struct sim_nf *nf = &s->nfs[i];
		const char *str;
		double d;
		long long ll;
		int rc;

		path_idx(p, sizeof(p), "nfs", i);
		if (!json_is_object(o)) {
			fail(pe, p, "must be an object");
			return -1;
		}
		if (get_str(pe, o, p, "name", 1, &str) < 0)
			return -1;
		if (!valid_name(str) || !strcmp(str, "source")) {
			fail(pe, path(q, sizeof(q), p, "name"),
				"\"%s\" is not a valid NF name (1-63 of A-Z a-z 0-9 _ - ., "
				"not \"source\"; it names the trace file)", str);
			return -1;
		}
		if (find_nf(s, str) >= 0) {
			fail(pe, path(q, sizeof(q), p, "name"), "duplicate NF name \"%s\"", str);
			return -1;
		}
		snprintf(nf->name, sizeof(nf->name), "%s", str);
		if (get_str(pe, o, p, "type", 1, &str) < 0)
			return -1;
		if (!*str || strlen(str) >= sizeof(nf->type)) {
			fail(pe, path(q, sizeof(q), p, "type"), "must be 1-31 characters");
			return -1;
		}
		snprintf(nf->type, sizeof(nf->type), "%s", str);
		nf->kind = NF_PLAIN;
		nf->rate_mpps = 1.0;
		for (size_t t = 0; t < sizeof(type_defaults) / sizeof(type_defaults[0]); t++)
			if (!strcasecmp(str, type_defaults[t].type)) {
				nf->kind = type_defaults[t].kind;
				nf->rate_mpps = type_defaults[t].rate_mpps;
			}
		if ((rc = get_num(pe, o, p, "rate_mpps", 0, MIN_RATE_MPPS, MAX_RATE_MPPS, &d)) < 0)
			return -1;
		if (rc == 1)
			nf->rate_mpps = d;
		nf->queue = 1024;
		if ((rc = get_int(pe, o, p, "queue", 0, 1, 1 << 24, &ll)) < 0)
			return -1;
		if (rc == 1)
			nf->queue = (uint32_t)ll;
		nf->jitter = default_jitter;
		if ((rc = get_num(pe, o, p, "jitter", 0, 0, 0.9, &d)) < 0)
			return -1;
		if (rc == 1)
			nf->jitter = d;
		nf->vpn_port = 4500;
		if ((rc = get_int(pe, o, p, "encap_port", 0, 1, 65535, &ll)) < 0)
			return -1;
		if (rc == 1)
			nf->vpn_port = (uint16_t)ll;
		s->n_nfs++;
		if (parse_launch_nf(pe, o, p, nf) < 0)
			return -1;
	}
	/* NAT public and VPN tunnel addresses: one documentation /24 per role. */
	unsigned nat = 0, vpn = 0;
	for (unsigned i = 0; i < s->n_nfs; i++) {
		struct sim_nf *nf = &s->nfs[i];
		if (nf->kind == NF_NAT) {
			uint8_t a[4] = { 198, 51, (uint8_t)(100 + nat / 250), (uint8_t)(1 + nat % 250) };
			memcpy(nf->addr, a, 4);
			nat++;
		} else if (nf->kind == NF_VPN) {
			uint8_t a[4] = { 192, 0, 2, (uint8_t)(1 + vpn % 250) };
			memcpy(nf->addr, a, 4);
			vpn++;
		}
	}
	return 0;
}

static int
parse_links(const struct perr *pe, const json_t *root, struct mscope_sim_scenario *s)
{
	const json_t *arr = json_object_get(root, "links");
	char p[64], q[160];

	if (arr == NULL) {
		fail(pe, "links", "missing (an array of links is required)");
		return -1;
	}
	if (!json_is_array(arr) || json_array_size(arr) == 0) {
		fail(pe, "links", "must be a non-empty array");
		return -1;
	}
	if (json_array_size(arr) > 65535) {
		fail(pe, "links", "at most 65535 links");
		return -1;
	}
	s->links = calloc(json_array_size(arr), sizeof(*s->links));
	if (s->links == NULL) {
		fail(pe, NULL, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < json_array_size(arr); i++) {
		const json_t *o = json_array_get(arr, i);
		struct sim_link *l = &s->links[i];
		const char *from, *to;

		path_idx(p, sizeof(p), "links", i);
		if (!json_is_object(o)) {
			fail(pe, p, "must be an object");
			return -1;
		}
		if (get_str(pe, o, p, "from", 1, &from) < 0 || get_str(pe, o, p, "to", 1, &to) < 0)
			return -1;
		if (!strcmp(from, "source")) {
			l->from = -1;
		} else if ((l->from = find_nf(s, from)) < 0) {
			fail(pe, path(q, sizeof(q), p, "from"), "no NF named \"%s\"", from);
			return -1;
		}
		if ((l->to = find_nf(s, to)) < 0) {
			fail(pe, path(q, sizeof(q), p, "to"), "no NF named \"%s\"%s", to,
				!strcmp(to, "source") ? " (\"source\" has no input)" : "");
			return -1;
		}
		if (l->from == l->to) {
			fail(pe, path(q, sizeof(q), p, "to"), "a link from \"%s\" to itself", to);
			return -1;
		}
		const json_t *m = json_object_get(o, "match");
		if (m != NULL && !json_is_null(m)) {
			if (parse_match(pe, m, path(q, sizeof(q), p, "match"), &l->match) < 0)
				return -1;
			l->has_match = 1;
		}
		l->json = json_deep_copy(o);
		s->n_links++;
	}
	int has_source = 0;
	for (unsigned i = 0; i < s->n_links; i++)
		has_source |= s->links[i].from < 0;
	if (!has_source) {
		fail(pe, "links", "no link from \"source\": traffic cannot enter the graph");
		return -1;
	}
	/* Kahn's algorithm: a cycle would circulate packets forever. */
	unsigned *indeg = calloc(s->n_nfs, sizeof(*indeg));
	unsigned *stack = calloc(s->n_nfs, sizeof(*stack));
	if (indeg == NULL || stack == NULL) {
		free(indeg);
		free(stack);
		fail(pe, NULL, "out of memory");
		return -1;
	}
	for (unsigned i = 0; i < s->n_links; i++)
		if (s->links[i].from >= 0)
			indeg[s->links[i].to]++;
	unsigned top = 0, seen = 0;
	for (unsigned i = 0; i < s->n_nfs; i++)
		if (indeg[i] == 0)
			stack[top++] = i;
	while (top) {
		unsigned v = stack[--top];
		seen++;
		for (unsigned i = 0; i < s->n_links; i++)
			if (s->links[i].from == (int)v && --indeg[s->links[i].to] == 0)
				stack[top++] = (unsigned)s->links[i].to;
	}
	int cyc = -1;
	for (unsigned i = 0; i < s->n_nfs && seen < s->n_nfs; i++)
		if (indeg[i]) {
			cyc = (int)i;
			break;
		}
	free(indeg);
	free(stack);
	if (cyc >= 0) {
		fail(pe, "links", "the links form a cycle through \"%s\"", s->nfs[cyc].name);
		return -1;
	}
	return 0;
}

static int
cmp_idx_time(const void *a, const void *b, void *arg)
{
	const uint64_t *t = arg;
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	if (t[x] != t[y])
		return t[x] < t[y] ? -1 : 1;
	return x < y ? -1 : x > y;
}

static void
pcap_clear(struct sim_pcap *pc)
{
	free(pc->t_ps);
	free(pc->len);
	free(pc->caplen);
	free(pc->head);
	memset(pc, 0, sizeof(*pc));
}

/* Read the whole capture: timestamps, lengths and the first SIM_HEAD bytes. */
static int
load_pcap(const struct perr *pe, const char *file, double rate_mpps, struct sim_pcap *pc)
{
	char ebuf[PCAP_ERRBUF_SIZE];
	pcap_t *p = pcap_open_offline_with_tstamp_precision(file, PCAP_TSTAMP_PRECISION_NANO, ebuf);
	if (p == NULL) {
		fail(pe, "traffic.pcap", "%s", ebuf);
		return -1;
	}
	int dlt = pcap_datalink(p);
	if (dlt != DLT_EN10MB && dlt != DLT_RAW && dlt != DLT_IPV4 && dlt != DLT_IPV6) {
		fail(pe, "traffic.pcap", "%s: link type %s not supported (Ethernet or raw IP)",
			file, pcap_datalink_val_to_name(dlt) ? pcap_datalink_val_to_name(dlt) : "?");
		pcap_close(p);
		return -1;
	}
	size_t cap = 0;
	uint64_t *ts = NULL;
	struct pcap_pkthdr *h;
	const u_char *data;
	int rc;
	memset(pc, 0, sizeof(*pc));
	while ((rc = pcap_next_ex(p, &h, &data)) == 1) {
		if (pc->n == cap) {
			size_t nc = cap ? cap * 2 : 4096;
			if (nc > (size_t)50e6) {
				fail(pe, "traffic.pcap", "%s: more than 50 million packets", file);
				goto err;
			}
			uint64_t *t2 = realloc(ts, nc * sizeof(*t2));
			uint32_t *l2 = t2 ? realloc(pc->len, nc * sizeof(*l2)) : NULL;
			if (t2)
				ts = t2;
			if (l2)
				pc->len = l2;
			uint8_t *c2 = l2 ? realloc(pc->caplen, nc) : NULL;
			if (c2)
				pc->caplen = c2;
			uint8_t *h2 = c2 ? realloc(pc->head, nc * SIM_HEAD) : NULL;
			if (h2 == NULL) {
				fail(pe, NULL, "out of memory reading %s", file);
				goto err;
			}
			pc->head = h2;
			cap = nc;
		}
		uint8_t *hd = pc->head + pc->n * SIM_HEAD;
		uint32_t off = 0, len = h->len;
		memset(hd, 0, SIM_HEAD);
		if (dlt != DLT_EN10MB) {
			/* Raw IP: give it the Ethernet header the NFs would see. */
			int v6 = (dlt == DLT_IPV6) || (h->caplen > 0 && (data[0] >> 4) == 6);
			static const uint8_t eth[12] = { 2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2 };
			memcpy(hd, eth, 12);
			hd[12] = v6 ? 0x86 : 0x08;
			hd[13] = v6 ? 0xdd : 0x00;
			off = 14;
			len += 14;
		}
		uint32_t c = h->caplen < SIM_HEAD - off ? h->caplen : SIM_HEAD - off;
		memcpy(hd + off, data, c);
		pc->caplen[pc->n] = (uint8_t)(c + off);
		pc->len[pc->n] = len < 60 ? 60 : len;
		ts[pc->n] = (uint64_t)h->ts.tv_sec * 1000000000ULL + (uint64_t)h->ts.tv_usec;
		pc->n++;
	}
	if (rc == -1) {
		fail(pe, "traffic.pcap", "%s: %s", file, pcap_geterr(p));
		goto err;
	}
	pcap_close(p);
	p = NULL;
	if (pc->n == 0) {
		fail(pe, "traffic.pcap", "%s: no packets", file);
		goto err;
	}
	/* Captures are not always in time order: sort, stable. */
	uint64_t *idx = malloc(pc->n * sizeof(*idx));
	uint64_t *t = malloc(pc->n * sizeof(*t));
	uint32_t *l = malloc(pc->n * sizeof(*l));
	uint8_t *c = malloc(pc->n);
	uint8_t *hd = malloc(pc->n * SIM_HEAD);
	if (!idx || !t || !l || !c || !hd) {
		free(idx), free(t), free(l), free(c), free(hd);
		fail(pe, NULL, "out of memory reading %s", file);
		goto err;
	}
	for (uint64_t i = 0; i < pc->n; i++)
		idx[i] = i;
	qsort_r(idx, pc->n, sizeof(*idx), cmp_idx_time, ts);
	uint64_t t0 = ts[idx[0]], span = ts[idx[pc->n - 1]] - t0;
	/* Native mean gap, or 1 us for a capture without time spread. */
	double gap = (pc->n > 1 && span > 0) ? (double)span / (double)(pc->n - 1) : 1000.0;
	double k = 1.0;
	if (rate_mpps > 0) {
		double want = 1000.0 / rate_mpps;       /* ns */
		k = want / gap;
		gap = want;
	}
	if (span == 0)
		k = 0;
	if ((double)span * k * 1000.0 > 0x1p62) {
		free(idx), free(t), free(l), free(c), free(hd);
		fail(pe, "traffic.pcap", "%s: the capture spans %.0f s: too long to replay", file,
			(double)span * 1e-9);
		goto err;
	}
	for (uint64_t i = 0; i < pc->n; i++) {
		uint64_t j = idx[i];
		double rel = span == 0 ? gap * (double)i : (double)(ts[j] - t0) * k;
		t[i] = (uint64_t)llround(rel * 1000.0);
		l[i] = pc->len[j];
		c[i] = pc->caplen[j];
		memcpy(hd + i * SIM_HEAD, pc->head + j * SIM_HEAD, SIM_HEAD);
	}
	pc->period_ps = t[pc->n - 1] + (uint64_t)llround(gap * 1000.0);
	free(idx);
	free(ts);
	free(pc->len);
	free(pc->caplen);
	free(pc->head);
	pc->t_ps = t;
	pc->len = l;
	pc->caplen = c;
	pc->head = hd;
	return 0;
err:
	if (p)
		pcap_close(p);
	free(ts);
	pcap_clear(pc);
	return -1;
}

static int
parse_traffic(const struct perr *pe, const json_t *root, const char *base_dir,
		struct mscope_sim_scenario *s)
{
	const json_t *t = json_object_get(root, "traffic");
	struct sim_traffic *tr = &s->traffic;
	double d;
	long long ll;
	int rc;

	if (t == NULL) {
		fail(pe, "traffic", "missing ({\"synthetic\": {...}} or {\"pcap\": FILE})");
		return -1;
	}
	if (!json_is_object(t)) {
		fail(pe, "traffic", "must be an object");
		return -1;
	}
	const json_t *syn = json_object_get(t, "synthetic");
	const json_t *pcap = json_object_get(t, "pcap");
	if ((syn == NULL) == (pcap == NULL)) {
		fail(pe, "traffic", "needs exactly one of \"synthetic\" and \"pcap\"");
		return -1;
	}
	if (parse_launch_traffic(pe, t, tr) < 0)
		return -1;
	if (pcap != NULL) {
		const char *f;
		tr->kind = T_PCAP;
		if (get_str(pe, t, "traffic", "pcap", 1, &f) < 0)
			return -1;
		if (!*f) {
			fail(pe, "traffic.pcap", "empty file name");
			return -1;
		}
		if (f[0] == '/' || base_dir == NULL || !*base_dir)
			snprintf(tr->path, sizeof(tr->path), "%s", f);
		else
			snprintf(tr->path, sizeof(tr->path), "%s/%s", base_dir, f);
		/* As the launcher always did: a relative capture not found there may be
		 * in $MSCOPE_DATA (the shared data directory). */
		const char *data = getenv("MSCOPE_DATA");
		if (f[0] != '/' && data && *data && access(tr->path, F_OK) < 0) {
			char alt[sizeof(tr->path)];
			snprintf(alt, sizeof(alt), "%s/%s", data, f);
			if (access(alt, F_OK) == 0)
				memcpy(tr->path, alt, sizeof(alt));
		}
		tr->rate_mpps = 0;
		if ((rc = get_num(pe, t, "traffic", "rate_mpps", 0, MIN_RATE_MPPS, MAX_RATE_MPPS,
				&d)) < 0)
			return -1;
		if (rc == 1)
			tr->rate_mpps = d;
		return load_pcap(pe, tr->path, tr->rate_mpps, &tr->pcap);
	}
	const char *p = "traffic.synthetic";
	if (!json_is_object(syn)) {
		fail(pe, p, "must be an object");
		return -1;
	}
	tr->kind = T_SYNTH;
	if (get_int(pe, syn, p, "flows", 1, 1, 10000000, &ll) < 0)
		return -1;
	tr->flows = (uint32_t)ll;
	if (get_num(pe, syn, p, "rate_mpps", 1, MIN_RATE_MPPS, MAX_RATE_MPPS, &tr->rate_mpps) < 0)
		return -1;
	const char *arr = "poisson";
	if (get_str(pe, syn, p, "arrival", 0, &arr) < 0)
		return -1;
	if (!strcmp(arr, "poisson")) {
		tr->arrival = A_POISSON;
	} else if (!strcmp(arr, "onoff")) {
		tr->arrival = A_ONOFF;
	} else if (!strcmp(arr, "cbr")) {
		tr->arrival = A_CBR;
	} else {
		fail(pe, "traffic.synthetic.arrival", "\"%s\": must be \"poisson\", \"onoff\" or \"cbr\"",
			arr);
		return -1;
	}
	tr->on_us = 100;
	tr->off_us = 100;
	if (get_pos(pe, syn, p, "on_us", 0, 1e9, &tr->on_us) < 0 ||
			get_pos(pe, syn, p, "off_us", 0, 1e9, &tr->off_us) < 0)
		return -1;
	tr->alpha = 1.2;
	/* Flow weights are u^(-1/alpha): below 0.1 they overflow a double. */
	if (get_num(pe, syn, p, "alpha", 0, 0.1, 100, &tr->alpha) < 0)
		return -1;
	tr->udp_share = 0.2;
	if (get_num(pe, syn, p, "udp_share", 0, 0, 1, &tr->udp_share) < 0)
		return -1;
	tr->size = 0;
	if ((rc = get_int(pe, syn, p, "size", 0, 60, 9000, &ll)) < 0)
		return -1;
	if (rc == 1)
		tr->size = (uint32_t)ll;
	return 0;
}

static int
parse_flow(const struct perr *pe, const json_t *v, const char *p, struct mscope_flow_key *k)
{
	char q[160];
	const char *s;
	uint8_t fam2;

	memset(k, 0, sizeof(*k));
	if (v == NULL) {
		fail(pe, p, "missing (an object with src, dst, sport, dport, proto)");
		return -1;
	}
	if (!json_is_object(v)) {
		fail(pe, p, "must be an object with src, dst, sport, dport, proto");
		return -1;
	}
	if (get_str(pe, v, p, "src", 1, &s) < 0)
		return -1;
	if (parse_addr(s, 0, &k->family, k->src, NULL) < 0) {
		fail(pe, path(q, sizeof(q), p, "src"), "\"%s\" is not an IP address", s);
		return -1;
	}
	if (get_str(pe, v, p, "dst", 1, &s) < 0)
		return -1;
	if (parse_addr(s, 0, &fam2, k->dst, NULL) < 0 || fam2 != k->family) {
		fail(pe, path(q, sizeof(q), p, "dst"), "\"%s\" is not an IP address of src's family", s);
		return -1;
	}
	if (get_proto(pe, v, p, 1, &k->proto) < 0)
		return -1;
	int ports = k->proto == 6 || k->proto == 17 || k->proto == 132;
	long long ll;
	int rc;
	if ((rc = get_int(pe, v, p, "sport", ports, 0, 65535, &ll)) < 0)
		return -1;
	k->sport = rc == 1 ? (uint16_t)ll : 0;
	if ((rc = get_int(pe, v, p, "dport", ports, 0, 65535, &ll)) < 0)
		return -1;
	k->dport = rc == 1 ? (uint16_t)ll : 0;
	return 0;
}

/* A fault that stretches NF nf's service times by `stretch`: the longest one
 * (jitter included) must fit in SIM_MAX_SERVICE_PS. */
static int
check_service(const struct perr *pe, const struct mscope_sim_scenario *s, int nf, double stretch,
		const char *field)
{
	const struct sim_nf *n = &s->nfs[nf];
	double ps = 1e6 / n->rate_mpps * (1 + n->jitter) * stretch;

	if (!(ps <= (double)SIM_MAX_SERVICE_PS)) {
		fail(pe, field, "makes %s's service time %g ps, more than %g ps (about 53 days)",
			n->name, ps, (double)SIM_MAX_SERVICE_PS);
		return -1;
	}
	return 0;
}

static int
parse_faults(const struct perr *pe, const json_t *root, struct mscope_sim_scenario *s)
{
	const json_t *arr = json_object_get(root, "faults");
	char p[64], q[160];

	if (arr == NULL || json_is_null(arr))
		return 0;
	if (!json_is_array(arr)) {
		fail(pe, "faults", "must be an array");
		return -1;
	}
	if (json_array_size(arr) > MSCOPE_SIM_MAX_FAULTS) {
		fail(pe, "faults", "at most %d faults", MSCOPE_SIM_MAX_FAULTS);
		return -1;
	}
	s->faults = calloc(json_array_size(arr) + 1, sizeof(*s->faults));
	if (s->faults == NULL) {
		fail(pe, NULL, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < json_array_size(arr); i++) {
		const json_t *o = json_array_get(arr, i);
		struct sim_fault *f = &s->faults[i];
		const char *kind, *nf;
		double at, dur;

		path_idx(p, sizeof(p), "faults", i);
		if (!json_is_object(o)) {
			fail(pe, p, "must be an object");
			return -1;
		}
		if (get_str(pe, o, p, "kind", 1, &kind) < 0)
			return -1;
		if (!strcmp(kind, "burst")) {
			f->kind = F_BURST;
		} else if (!strcmp(kind, "interrupt")) {
			f->kind = F_INTERRUPT;
		} else if (!strcmp(kind, "bug")) {
			f->kind = F_BUG;
		} else if (!strcmp(kind, "slow")) {
			f->kind = F_SLOW;
		} else {
			fail(pe, path(q, sizeof(q), p, "kind"),
				"\"%s\": must be \"burst\", \"interrupt\", \"bug\" or \"slow\"", kind);
			return -1;
		}
		/* (a duration under 1 ps would be none at all) */
		if (get_num(pe, o, p, "at_us", 1, 0, 1e10, &at) < 0 ||
				get_num(pe, o, p, "duration_us", 1, 1e-6, 1e10, &dur) < 0)
			return -1;
		f->at_ps = (uint64_t)llround(at * 1e6);
		f->end_ps = f->at_ps + (uint64_t)llround(dur * 1e6);
		f->nf = -1;
		f->size = 64;
		f->json = json_deep_copy(o);
		s->n_faults++;
		if (f->kind == F_BURST) {
			long long ll;
			int rc;
			if (parse_flow(pe, json_object_get(o, "flow"), path(q, sizeof(q), p, "flow"),
					&f->flow) < 0)
				return -1;
			if (get_num(pe, o, p, "rate_mpps", 1, MIN_RATE_MPPS, MAX_RATE_MPPS,
					&f->rate_mpps) < 0)
				return -1;
			if ((rc = get_int(pe, o, p, "size", 0, 60, 9000, &ll)) < 0)
				return -1;
			if (rc == 1)
				f->size = (uint32_t)ll;
			f->culprit_flow = json_deep_copy(json_object_get(o, "flow"));
			continue;
		}
		if (get_str(pe, o, p, "nf", 1, &nf) < 0)
			return -1;
		if ((f->nf = find_nf(s, nf)) < 0) {
			fail(pe, path(q, sizeof(q), p, "nf"), "no NF named \"%s\"", nf);
			return -1;
		}
		if (f->kind == F_BUG) {
			const json_t *m = json_object_get(o, "match");
			path(q, sizeof(q), p, "match");
			if (m == NULL) {
				fail(pe, q,
					"missing (which packets trigger the bug)");
				return -1;
			}
			if (parse_match(pe, m, q, &f->match) < 0)
				return -1;
			if (get_num(pe, o, p, "slowdown", 1, 1, 1e6, &f->slowdown) < 0 ||
					check_service(pe, s, f->nf, f->slowdown,
						path(q, sizeof(q), p, "slowdown")) < 0)
				return -1;
			f->culprit_flow = json_deep_copy(m);
		} else if (f->kind == F_SLOW) {
			if (get_num(pe, o, p, "factor", 1, 1e-6, 1, &f->factor) < 0 ||
					check_service(pe, s, f->nf, 1 / f->factor,
						path(q, sizeof(q), p, "factor")) < 0)
				return -1;
		}
	}
	return 0;
}

struct mscope_sim_scenario *
mscope_sim_load_json(const json_t *root, const char *name, const char *base_dir,
		char *err, size_t errlen)
{
	struct perr pe = { err, errlen, name ? name : "scenario" };
	struct mscope_sim_scenario *s;
	double d, jitter = 0.05;
	long long ll;
	const char *str;
	int rc;

	if (err && errlen)
		err[0] = 0;
	if (!json_is_object(root)) {
		fail(&pe, NULL, "the scenario must be a JSON object");
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		fail(&pe, NULL, "out of memory");
		return NULL;
	}
	snprintf(s->name, sizeof(s->name), "%s", name ? name : "scenario");
	/* A name taken from the file name follows the rule of names too. */
	for (char *c = s->name; *c; c++)
		if ((!isalnum((unsigned char)*c) && *c != '_' && *c != '-' && *c != '.') ||
				(c == s->name && (*c == '.' || *c == '-')))
			*c = '_';
	if (!s->name[0])
		snprintf(s->name, sizeof(s->name), "scenario");
	if ((rc = get_str(&pe, root, NULL, "name", 0, &str)) < 0)
		goto err;
	if (rc == 1) {
		/* It names the run (MSCOPE_RUN_ID of a real run): the collector's rule. */
		if (!valid_name(str)) {
			fail(&pe, "name", "\"%.80s\" is not 1-63 of A-Z a-z 0-9 _ - . (not starting "
				"with . or -)", str);
			goto err;
		}
		snprintf(s->name, sizeof(s->name), "%s", str);
	}
	s->seed = 1;
	if ((rc = get_int(&pe, root, NULL, "seed", 0, 0, LLONG_MAX, &ll)) < 0)
		goto err;
	if (rc == 1)
		s->seed = (uint64_t)ll;
	if (get_num(&pe, root, NULL, "duration_ms", 1, 1e-6, 3.6e6, &d) < 0)
		goto err;
	s->duration_ps = (uint64_t)llround(d * 1e9);
	s->victim_threshold_us = 50;
	if (get_pos(&pe, root, NULL, "victim_threshold_us", 0, 1e9, &s->victim_threshold_us) < 0)
		goto err;
	s->poll_ns = 50;
	if ((rc = get_int(&pe, root, NULL, "poll_ns", 0, 0, 1000000, &ll)) < 0)
		goto err;
	if (rc == 1)
		s->poll_ns = (uint32_t)ll;
	if (get_num(&pe, root, NULL, "jitter", 0, 0, 0.9, &jitter) < 0)
		goto err;
	s->jitter = jitter;
	if (parse_nfs(&pe, root, s, jitter) < 0 || parse_links(&pe, root, s) < 0 ||
			parse_traffic(&pe, root, base_dir, s) < 0 || parse_faults(&pe, root, s) < 0 ||
			parse_recording(&pe, root, s) < 0)
		goto err;
	return s;
err:
	mscope_sim_free(s);
	return NULL;
}

struct mscope_sim_scenario *
mscope_sim_load(const char *file, char *err, size_t errlen)
{
	json_error_t je;
	json_t *root = json_load_file(file, JSON_REJECT_DUPLICATES, &je);

	if (root == NULL) {
		if (err && errlen)
			snprintf(err, errlen, "%s: line %d column %d: %s", file, je.line, je.column,
				je.text);
		return NULL;
	}
	/* Name: file name without directory and ".json"; pcap paths relative to its dir. */
	const char *base = strrchr(file, '/');
	char name[64], dir[1024];
	snprintf(name, sizeof(name), "%s", base ? base + 1 : file);
	size_t nl = strlen(name);
	if (nl > 5 && !strcmp(name + nl - 5, ".json"))
		name[nl - 5] = 0;
	if (base) {
		snprintf(dir, sizeof(dir), "%.*s", (int)(base - file), file);
		if (!dir[0])
			snprintf(dir, sizeof(dir), "/");
	} else {
		snprintf(dir, sizeof(dir), ".");
	}
	struct mscope_sim_scenario *s = mscope_sim_load_json(root, name, dir, err, errlen);
	json_decref(root);
	/* Messages name the file, not the scenario. */
	if (s == NULL && err && errlen && !strncmp(err, name, strlen(name))) {
		char tmp[1024];
		snprintf(tmp, sizeof(tmp), "%s%s", file, err + strlen(name));
		snprintf(err, errlen, "%s", tmp);
	}
	return s;
}

void
mscope_sim_free(struct mscope_sim_scenario *s)
{
	if (s == NULL)
		return;
	for (unsigned i = 0; i < s->n_links; i++)
		json_decref(s->links[i].json);
	for (unsigned i = 0; i < s->n_faults; i++) {
		json_decref(s->faults[i].culprit_flow);
		json_decref(s->faults[i].json);
	}
	for (unsigned i = 0; s->nfs && i < s->n_nfs; i++)
		json_decref(s->nfs[i].launch);
	json_decref(s->traffic.launch);
	json_decref(s->recording);
	free(s->nfs);
	free(s->links);
	free(s->faults);
	pcap_clear(&s->traffic.pcap);
	free(s);
}

const char *
mscope_sim_name(const struct mscope_sim_scenario *s)
{
	return s->name;
}

uint64_t
mscope_sim_seed(const struct mscope_sim_scenario *s)
{
	return s->seed;
}

unsigned
mscope_sim_fault_count(const struct mscope_sim_scenario *s)
{
	return s->n_faults;
}

unsigned
mscope_sim_nf_count(const struct mscope_sim_scenario *s)
{
	return s->n_nfs;
}

const char *
mscope_sim_nf_name(const struct mscope_sim_scenario *s, unsigned i)
{
	return i < s->n_nfs ? s->nfs[i].name : NULL;
}
