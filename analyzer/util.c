/* SPDX-License-Identifier: BSD-3-Clause */
/* Small helpers: errors, warnings, growth, selection, flows, filters. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sys/mman.h>
#include <time.h>

#include "an_internal.h"

/* Large randomly accessed tables: 2 MiB aligned and advised to use huge
 * pages (TLB misses, not cache misses, dominate random probes otherwise).
 * Freed with free(). */
void *
an_big_alloc(size_t bytes)
{
	const size_t huge = 2u << 20;
	void *p;

	if (bytes < huge)
		return malloc(bytes ? bytes : 1);
	bytes = (bytes + huge - 1) & ~(huge - 1);
	p = aligned_alloc(huge, bytes);
	if (p)
		madvise(p, bytes, MADV_HUGEPAGE);
	return p;
}

void
an_err(struct mscope_an_error *err, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(err->text, sizeof(err->text), fmt, ap);
	va_end(ap);
}

/* Length of the valid UTF-8 sequence at s (not a control character), or 0. */
static size_t
utf8_len(const unsigned char *s)
{
	unsigned char c = s[0];
	size_t n;
	uint32_t cp;

	if (c >= 0x20 && c < 0x7f)
		return 1;
	if (c < 0x80)
		return 0;                   /* control character */
	if (c >= 0xc2 && c <= 0xdf)
		n = 2, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4, cp = c & 0x07;
	else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	/* overlong forms, UTF-16 surrogates, beyond U+10FFFF */
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
			(cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

char *
an_escape(const char *in, bool *changed)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t len = strlen(in), o = 0;
	char *out = malloc(4 * len + 1);

	if (changed)
		*changed = false;
	if (out == NULL)
		return NULL;
	while (*s) {
		size_t n = utf8_len(s);
		if (n == 0) {
			snprintf(out + o, 5, "\\x%02x", *s);
			o += 4;
			s++;
			if (changed)
				*changed = true;
			continue;
		}
		memcpy(out + o, s, n);
		o += n;
		s += n;
	}
	out[o] = '\0';
	return out;
}

void
an_warn(struct mscope_analysis *an, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	if (s == NULL)
		return;
	/* names and paths inside come from files: keep the text valid UTF-8 */
	{
		char *c = an_escape(s, NULL);
		free(s);
		if (c == NULL)
			return;
		s = c;
	}
	if (an->nwarn + 2 > an->warn_cap) {
		size_t cap = an->warn_cap ? an->warn_cap * 2 : 16;
		char **w = realloc(an->warn, cap * sizeof(*w));
		if (w == NULL) {
			free(s);
			return;
		}
		an->warn = w;
		an->warn_cap = cap;
	}
	an->warn[an->nwarn++] = s;
	an->warn[an->nwarn] = NULL;
}

/* Grow *p to hold `need` elements (doubling). Returns the new pointer or NULL
 * (old block untouched) on overflow or allocation failure. */
void *
an_grow(void *p, size_t *cap, size_t need, size_t elem)
{
	size_t c = *cap ? *cap : 64;
	void *q;

	if (need <= *cap)
		return p;
	while (c < need) {
		if (c > SIZE_MAX / 2 / elem)
			return NULL;
		c *= 2;
	}
	q = realloc(p, c * elem);
	if (q == NULL)
		return NULL;
	*cap = c;
	return q;
}

/* Quickselect (Hoare) of the element of rank floor(pct/100*(n-1)); reorders v.
 * One body for both element types. */
#define AN_SELECT(name, type)						\
type									\
name(type *v, size_t n, double pct)					\
{									\
	size_t k, lo = 0, hi;						\
									\
	if (n == 0)							\
		return 0;						\
	if (pct < 0)							\
		pct = 0;						\
	if (pct > 100)							\
		pct = 100;						\
	k = (size_t)floor(pct / 100.0 * (double)(n - 1) + 1e-9);	\
	hi = n - 1;							\
	while (lo < hi) {						\
		type piv = v[lo + (hi - lo) / 2];			\
		size_t i = lo, j = hi;					\
									\
		while (i <= j) {					\
			while (v[i] < piv)				\
				i++;					\
			while (v[j] > piv)				\
				j--;					\
			if (i <= j) {					\
				type t = v[i];				\
				v[i] = v[j];				\
				v[j] = t;				\
				i++;					\
				if (j == 0)				\
					break;				\
				j--;					\
			}						\
		}							\
		if (k <= j)						\
			hi = j;						\
		else if (k >= i)					\
			lo = i;						\
		else							\
			break;						\
	}								\
	return v[k];							\
}

AN_SELECT(an_select, int64_t)
AN_SELECT(an_select_d, double)

uint32_t
an_hop_node(const struct mscope_analysis *an, uint32_t g)
{
	uint32_t lo = 0, hi = an->nnodes;

	/* last node with base <= g */
	while (hi - lo > 1) {
		uint32_t mid = (lo + hi) / 2;
		if (an->nodes[mid].base <= g)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

static uint64_t
flow_hash(const struct mscope_flow_key *k)
{
	uint64_t h = 1469598103934665603ULL;
	const uint8_t *p = (const uint8_t *)k;

	for (size_t i = 0; i < sizeof(*k); i++) {
		h ^= p[i];
		h *= 1099511628211ULL;
	}
	return h ^ (h >> 29);
}

/* Keys are compared bytewise: callers zero them before filling. */
uint32_t
an_flow_intern(struct mscope_analysis *an, const struct mscope_flow_key *k)
{
	uint32_t mask, i;

	if ((an->nflows + 1) * 2 > an->fh_cap) {
		uint32_t cap = an->fh_cap ? an->fh_cap * 2 : 1024;
		uint32_t *t = calloc(cap, sizeof(*t));

		if (t == NULL)
			return UINT32_MAX;
		for (uint32_t f = 0; f < an->nflows; f++) {
			i = (uint32_t)flow_hash(&an->flows[f]) & (cap - 1);
			while (t[i])
				i = (i + 1) & (cap - 1);
			t[i] = f + 1;
		}
		free(an->fh);
		an->fh = t;
		an->fh_cap = cap;
	}
	mask = an->fh_cap - 1;
	i = (uint32_t)flow_hash(k) & mask;
	while (an->fh[i]) {
		uint32_t f = an->fh[i] - 1;
		if (!memcmp(&an->flows[f], k, sizeof(*k)))
			return f;
		i = (i + 1) & mask;
	}
	if (an->nflows + 1 > an->flows_cap) {
		size_t cap = an->flows_cap;
		void *p = an_grow(an->flows, &cap, an->nflows + 1, sizeof(*an->flows));
		if (p == NULL)
			return UINT32_MAX;
		an->flows = p;
		an->flows_cap = (uint32_t)cap;
	}
	an->flows[an->nflows] = *k;
	an->fh[i] = an->nflows + 1;
	return an->nflows++;
}

const char *
an_flow_text(const struct mscope_analysis *an, uint32_t flow, char *buf, size_t len)
{
	if (flow >= an->nflows || an->flows[flow].family == 0) {
		snprintf(buf, len, "*");
		return buf;
	}
	return mscope_flow_format(&an->flows[flow], buf, len);
}

static bool
prefix_match(const uint8_t *a, const uint8_t *p, int len)
{
	int full = len / 8, rem = len % 8;

	if (memcmp(a, p, full))
		return false;
	if (rem) {
		uint8_t m = (uint8_t)(0xff << (8 - rem));
		if ((a[full] & m) != (p[full] & m))
			return false;
	}
	return true;
}

bool
an_filter_match(const struct mscope_an_filter *f, const struct mscope_flow_key *k)
{
	if (!f->set)
		return true;
	if (f->proto >= 0 && k->proto != f->proto)
		return false;
	if (f->sport >= 0 && k->sport != f->sport)
		return false;
	if (f->dport >= 0 && k->dport != f->dport)
		return false;
	if ((f->src_len >= 0 || f->dst_len >= 0) && k->family != f->family)
		return false;
	if (f->src_len >= 0 && !prefix_match(k->src, f->src, f->src_len))
		return false;
	if (f->dst_len >= 0 && !prefix_match(k->dst, f->dst, f->dst_len))
		return false;
	return true;
}

static int
parse_prefix(const char *v, struct mscope_an_filter *f, uint8_t *addr, int *len)
{
	char buf[80], *slash;
	int fam, max;
	long l;

	snprintf(buf, sizeof(buf), "%s", v);
	slash = strchr(buf, '/');
	if (slash)
		*slash++ = '\0';
	memset(addr, 0, 16);
	if (inet_pton(AF_INET, buf, addr) == 1) {
		fam = 4;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, addr) == 1) {
		fam = 6;
		max = 128;
	} else {
		return -1;
	}
	if (f->family && f->family != fam)
		return -1;
	f->family = (uint8_t)fam;
	if (slash) {
		char *end;
		errno = 0;
		l = strtol(slash, &end, 10);
		if (errno || *end || l < 0 || l > max)
			return -1;
	} else {
		l = max;
	}
	*len = (int)l;
	return 0;
}

int
mscope_an_filter_parse(const char *text, struct mscope_an_filter *f,
		struct mscope_an_error *err)
{
	char *dup, *tok, *save = NULL;
	int rc = 0;

	memset(f, 0, sizeof(*f));
	f->src_len = f->dst_len = -1;
	f->sport = f->dport = -1;
	f->proto = -1;
	dup = strdup(text);
	if (dup == NULL) {
		an_err(err, "out of memory");
		return -1;
	}
	for (tok = strtok_r(dup, " ,", &save); tok; tok = strtok_r(NULL, " ,", &save)) {
		char *eq = strchr(tok, '=');
		char *v, *end;
		long l;

		if (eq == NULL) {
			an_err(err, "flow filter: '%s' is not key=value", tok);
			rc = -1;
			break;
		}
		*eq = '\0';
		v = eq + 1;
		if (!strcmp(tok, "src") || !strcmp(tok, "dst")) {
			bool src = tok[0] == 's';
			if (parse_prefix(v, f, src ? f->src : f->dst,
					src ? &f->src_len : &f->dst_len)) {
				an_err(err, "flow filter: bad address or prefix '%s'", v);
				rc = -1;
				break;
			}
		} else if (!strcmp(tok, "sport") || !strcmp(tok, "dport")) {
			errno = 0;
			l = strtol(v, &end, 10);
			if (errno || *end || end == v || l < 0 || l > 65535) {
				an_err(err, "flow filter: bad port '%s'", v);
				rc = -1;
				break;
			}
			if (tok[0] == 's')
				f->sport = (int32_t)l;
			else
				f->dport = (int32_t)l;
		} else if (!strcmp(tok, "proto")) {
			if (!strcasecmp(v, "tcp"))
				f->proto = 6;
			else if (!strcasecmp(v, "udp"))
				f->proto = 17;
			else if (!strcasecmp(v, "icmp"))
				f->proto = 1;
			else {
				errno = 0;
				l = strtol(v, &end, 10);
				if (errno || *end || end == v || l < 0 || l > 255) {
					an_err(err, "flow filter: bad protocol '%s'", v);
					rc = -1;
					break;
				}
				f->proto = (int16_t)l;
			}
		} else {
			an_err(err, "flow filter: unknown key '%s' (src, dst, sport, dport, proto)", tok);
			rc = -1;
			break;
		}
		f->set = 1;
	}
	free(dup);
	return rc;
}

int
mscope_an_parse_time(const char *text, int64_t *ns)
{
	char *end;
	double v, mul = 1e3;

	errno = 0;
	v = strtod(text, &end);
	if (errno || end == text || !isfinite(v) || v < 0)
		return -1;
	if (*end == '\0' || !strcmp(end, "us"))
		mul = 1e3;
	else if (!strcmp(end, "ns"))
		mul = 1;
	else if (!strcmp(end, "ms"))
		mul = 1e6;
	else if (!strcmp(end, "s"))
		mul = 1e9;
	else
		return -1;
	if (v * mul > 9e18)
		return -1;
	*ns = (int64_t)(v * mul + 0.5);
	return 0;
}

struct pool;
static int fn_fail(struct pool *p, uint32_t k, void *scratch);

struct pool {
	struct mscope_analysis *an;
	int (*fn)(struct mscope_analysis *an, uint32_t k, void *scratch);
	size_t scratch;
	uint32_t next;
	int failed;
	pthread_mutex_t lock;
};

static void *
pool_worker(void *arg)
{
	struct pool *p = arg;
	void *scratch = p->scratch ? malloc(p->scratch) : NULL;

	if (p->scratch && scratch == NULL) {
		pthread_mutex_lock(&p->lock);
		p->failed = 1;
		pthread_mutex_unlock(&p->lock);
		return NULL;
	}
	for (;;) {
		uint32_t k;
		int stop;

		pthread_mutex_lock(&p->lock);
		k = p->next++;
		stop = p->failed;
		pthread_mutex_unlock(&p->lock);
		if (stop || k >= p->an->nnodes)
			break;
		if (fn_fail(p, k, scratch))
			break;
	}
	free(scratch);
	return NULL;
}

/* Run fn on every node, on opts.threads threads (default 2), each with its
 * own scratch buffer of `scratch` bytes. fn touches only its node's state.
 * @return 0, or -1 when an fn failed (or scratch could not be allocated). */
int
an_for_nodes(struct mscope_analysis *an,
		int (*fn)(struct mscope_analysis *an, uint32_t k, void *scratch), size_t scratch)
{
	struct pool p = { .an = an, .fn = fn, .scratch = scratch };
	pthread_t th[16];
	int nth = an->opts.threads > 0 ? an->opts.threads : 2, started = 0;

	if (nth > 16)
		nth = 16;
	if ((uint32_t)nth > an->nnodes)
		nth = an->nnodes ? (int)an->nnodes : 1;
	pthread_mutex_init(&p.lock, NULL);
	for (int t = 1; t < nth; t++)
		if (pthread_create(&th[started], NULL, pool_worker, &p) == 0)
			started++;
	pool_worker(&p);
	for (int t = 0; t < started; t++)
		pthread_join(th[t], NULL);
	pthread_mutex_destroy(&p.lock);
	return p.failed ? -1 : 0;
}

static int
fn_fail(struct pool *p, uint32_t k, void *scratch)
{
	if (p->fn(p->an, k, scratch) == 0)
		return 0;
	pthread_mutex_lock(&p->lock);
	p->failed = 1;
	pthread_mutex_unlock(&p->lock);
	return -1;
}

/* Wall-clock times: "HH:MM[:SS[.frac]]" on the day of day_ns (local time),
 * or "YYYY-MM-DD[T ]HH:MM[:SS[.frac]]" with an optional "Z" or "+HH:MM". */
int
mscope_an_parse_clock(const char *text, int64_t day_ns, int64_t *ns)
{
	struct tm tm;
	const char *p;
	int64_t frac = 0, scale = 100000000;
	time_t secs;
	bool utc = false;
	long off = 0;

	memset(&tm, 0, sizeof(tm));
	p = strptime(text, "%Y-%m-%dT%H:%M", &tm);
	if (p == NULL) {
		memset(&tm, 0, sizeof(tm));
		p = strptime(text, "%Y-%m-%d %H:%M", &tm);
	}
	if (p == NULL) {
		time_t day = (time_t)(day_ns / 1000000000);
		int h, m;
		struct tm d;
		int n = 0;

		if (sscanf(text, "%2d:%2d%n", &h, &m, &n) != 2 || n < 4 || h > 23 || m > 59)
			return -1;
		if (localtime_r(&day, &d) == NULL)
			return -1;
		memset(&tm, 0, sizeof(tm));
		tm.tm_year = d.tm_year;
		tm.tm_mon = d.tm_mon;
		tm.tm_mday = d.tm_mday;
		tm.tm_hour = h;
		tm.tm_min = m;
		p = text + n;
	}
	if (*p == ':') {
		if (!isdigit((unsigned char)p[1]) || !isdigit((unsigned char)p[2]))
			return -1;
		tm.tm_sec = (p[1] - '0') * 10 + (p[2] - '0');
		if (tm.tm_sec > 60)
			return -1;
		p += 3;
		if (*p == '.' || *p == ',') {
			p++;
			if (!isdigit((unsigned char)*p))
				return -1;
			for (; isdigit((unsigned char)*p); p++, scale /= 10)
				frac += (*p - '0') * scale;
		}
	}
	if (*p == 'Z') {
		utc = true;
		p++;
	} else if (*p == '+' || *p == '-') {
		int hh, mm, n = 0;
		if (sscanf(p + 1, "%2d:%2d%n", &hh, &mm, &n) != 2 || n != 5)
			return -1;
		utc = true;
		off = (hh * 3600L + mm * 60L) * (*p == '-' ? -1 : 1);
		p += 6;
	}
	if (*p != '\0')
		return -1;
	tm.tm_isdst = -1;
	secs = utc ? timegm(&tm) - off : mktime(&tm);
	if (secs == (time_t)-1)
		return -1;
	*ns = (int64_t)secs * 1000000000 + frac;
	return 0;
}
