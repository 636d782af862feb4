/* SPDX-License-Identifier: BSD-3-Clause */
/* Scoring a diagnosis against ground truth (method.md §5): flow-set
 * containment for culprit aggregates and the rank of the true culprit. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "eval.h"

static void
seterr(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (!err || !len)
		return;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
}

void
ev_flowset_any(struct ev_flowset *s)
{
	memset(s, 0, sizeof(*s));
	s->sport_hi = s->dport_hi = 65535;
}

int
ev_flowset_is_any(const struct ev_flowset *s)
{
	return s->src_len == 0 && s->dst_len == 0 && s->proto == 0 &&
		s->sport_lo == 0 && s->sport_hi == 65535 &&
		s->dport_lo == 0 && s->dport_hi == 65535;
}

static uint32_t
prefix_mask(unsigned len)
{
	return len == 0 ? 0 : len >= 32 ? UINT32_MAX : ~(UINT32_MAX >> len);
}

static int
prefix_contains(uint32_t oa, unsigned ol, uint32_t ia, unsigned il)
{
	if (ol > il)
		return 0;
	return ((oa ^ ia) & prefix_mask(ol)) == 0;
}

int
ev_flowset_contains(const struct ev_flowset *o, const struct ev_flowset *i)
{
	if (o->proto && o->proto != i->proto)
		return 0;
	return prefix_contains(o->src, o->src_len, i->src, i->src_len) &&
		prefix_contains(o->dst, o->dst_len, i->dst, i->dst_len) &&
		o->sport_lo <= i->sport_lo && i->sport_hi <= o->sport_hi &&
		o->dport_lo <= i->dport_lo && i->dport_hi <= o->dport_hi;
}

static int
is_wild(const char *s)
{
	return !*s || !strcmp(s, "*") || !strcasecmp(s, "any");
}

static int
parse_proto(const char *s, uint8_t *p)
{
	char *end;
	long v;

	if (is_wild(s)) {
		*p = 0;
		return 0;
	}
	if (!strcasecmp(s, "tcp"))
		*p = 6;
	else if (!strcasecmp(s, "udp"))
		*p = 17;
	else if (!strcasecmp(s, "icmp"))
		*p = 1;
	else if (!strcasecmp(s, "sctp"))
		*p = 132;
	else {
		errno = 0;
		v = strtol(s, &end, 10);
		if (errno || *end || v < 0 || v > 255)
			return -1;
		*p = (uint8_t)v;
	}
	return 0;
}

static int
parse_addr(const char *s, uint32_t *a, uint8_t *len)
{
	char buf[64], *slash, *end;
	struct in_addr in;
	long l = 32;

	if (is_wild(s)) {
		*a = 0;
		*len = 0;
		return 0;
	}
	snprintf(buf, sizeof(buf), "%s", s);
	slash = strchr(buf, '/');
	if (slash) {
		*slash++ = '\0';
		errno = 0;
		l = strtol(slash, &end, 10);
		if (errno || *end || l < 0 || l > 32)
			return -1;
	}
	/* "10.*" style wildcards: keep the leading octets as a prefix */
	if (!slash && strchr(buf, '*')) {
		unsigned oct[4] = { 0 };
		int k = 0;
		char *p = buf;

		while (k < 4 && *p && *p != '*') {
			oct[k++] = (unsigned)strtoul(p, &end, 10);
			if (*end != '.' || oct[k - 1] > 255)
				return -1;
			p = end + 1;
		}
		*a = oct[0] << 24 | oct[1] << 16 | oct[2] << 8 | oct[3];
		*len = (uint8_t)(8 * k);
		return 0;
	}
	if (inet_pton(AF_INET, buf, &in) != 1)
		return -1;
	*a = ntohl(in.s_addr) & prefix_mask((unsigned)l);
	*len = (uint8_t)l;
	return 0;
}

static int
parse_ports(const char *s, uint16_t *lo, uint16_t *hi)
{
	char *end;
	long a, b;

	if (is_wild(s)) {
		*lo = 0;
		*hi = 65535;
		return 0;
	}
	errno = 0;
	a = strtol(s, &end, 10);
	if (errno || end == s || a < 0 || a > 65535)
		return -1;
	b = a;
	if (*end == '-' || *end == ':') {
		const char *q = end + 1;

		b = strtol(q, &end, 10);
		if (errno || end == q || b < a || b > 65535)
			return -1;
	}
	if (*end)
		return -1;
	*lo = (uint16_t)a;
	*hi = (uint16_t)b;
	return 0;
}

/* "ADDR[:PORT]" where ADDR may contain '/' and PORT may be a range. IPv4 only:
 * the last ':' separates the port. */
static int
parse_endpoint(const char *s, uint32_t *a, uint8_t *len, uint16_t *lo, uint16_t *hi)
{
	char buf[96];
	char *colon;

	snprintf(buf, sizeof(buf), "%s", s);
	colon = strrchr(buf, ':');
	if (colon) {
		*colon = '\0';
		if (parse_ports(colon + 1, lo, hi) < 0)
			return -1;
	} else {
		*lo = 0;
		*hi = 65535;
	}
	return parse_addr(buf, a, len);
}

static int
parse_pairs(const char *text, struct ev_flowset *s)
{
	char buf[256], *save = NULL, *tok;
	int n = 0;

	snprintf(buf, sizeof(buf), "%s", text);
	for (tok = strtok_r(buf, " ,", &save); tok; tok = strtok_r(NULL, " ,", &save)) {
		char *eq = strchr(tok, '=');
		int rc;

		if (!eq)
			return -1;
		*eq++ = '\0';
		if (!strcmp(tok, "src"))
			rc = parse_addr(eq, &s->src, &s->src_len);
		else if (!strcmp(tok, "dst"))
			rc = parse_addr(eq, &s->dst, &s->dst_len);
		else if (!strcmp(tok, "sport"))
			rc = parse_ports(eq, &s->sport_lo, &s->sport_hi);
		else if (!strcmp(tok, "dport"))
			rc = parse_ports(eq, &s->dport_lo, &s->dport_hi);
		else if (!strcmp(tok, "proto"))
			rc = parse_proto(eq, &s->proto);
		else
			rc = -1;
		if (rc < 0)
			return -1;
		n++;
	}
	return n ? 0 : -1;
}

int
ev_flowset_parse(const char *text, struct ev_flowset *s)
{
	char buf[256], *gt, *left, *right, *sp;

	ev_flowset_any(s);
	while (isspace((unsigned char)*text))
		text++;
	if (is_wild(text))
		return 0;
	if (strchr(text, '='))
		return parse_pairs(text, s);
	snprintf(buf, sizeof(buf), "%s", text);
	for (char *e = buf + strlen(buf); e > buf && isspace((unsigned char)e[-1]); )
		*--e = '\0';
	gt = strstr(buf, ">");
	if (!gt)
		return -1;
	*gt = '\0';
	right = gt + 1;
	if (*right == ' ')
		right++;
	while (isspace((unsigned char)*right))
		right++;
	/* left = "PROTO SRC[:SPORT]" */
	left = buf;
	for (char *e = left + strlen(left); e > left && isspace((unsigned char)e[-1]); )
		*--e = '\0';
	sp = strchr(left, ' ');
	if (sp) {
		*sp = '\0';
		if (parse_proto(left, &s->proto) < 0)
			return -1;
		left = sp + 1;
		while (isspace((unsigned char)*left))
			left++;
	}
	if (parse_endpoint(left, &s->src, &s->src_len, &s->sport_lo, &s->sport_hi) < 0)
		return -1;
	if (parse_endpoint(right, &s->dst, &s->dst_len, &s->dport_lo, &s->dport_hi) < 0)
		return -1;
	return 0;
}

static int
json_ports(const json_t *v, uint16_t *lo, uint16_t *hi)
{
	if (json_is_integer(v)) {
		json_int_t p = json_integer_value(v);

		if (p < 0 || p > 65535)
			return -1;
		*lo = *hi = (uint16_t)p;
		return 0;
	}
	if (json_is_string(v))
		return parse_ports(json_string_value(v), lo, hi);
	return -1;
}

int
ev_flowset_from_json(const json_t *o, struct ev_flowset *s, char *err, size_t errlen)
{
	const json_t *v;

	ev_flowset_any(s);
	if (json_is_string(o)) {
		if (ev_flowset_parse(json_string_value(o), s) < 0) {
			seterr(err, errlen, "flow: cannot parse \"%s\"", json_string_value(o));
			return -1;
		}
		return 0;
	}
	if (!json_is_object(o)) {
		seterr(err, errlen, "flow: not an object");
		return -1;
	}
	if ((v = json_object_get(o, "src")) &&
	    (!json_is_string(v) || parse_addr(json_string_value(v), &s->src, &s->src_len) < 0)) {
		seterr(err, errlen, "flow.src: not an IPv4 address or prefix");
		return -1;
	}
	if ((v = json_object_get(o, "dst")) &&
	    (!json_is_string(v) || parse_addr(json_string_value(v), &s->dst, &s->dst_len) < 0)) {
		seterr(err, errlen, "flow.dst: not an IPv4 address or prefix");
		return -1;
	}
	if ((v = json_object_get(o, "sport")) && json_ports(v, &s->sport_lo, &s->sport_hi) < 0) {
		seterr(err, errlen, "flow.sport: not a port or range");
		return -1;
	}
	if ((v = json_object_get(o, "dport")) && json_ports(v, &s->dport_lo, &s->dport_hi) < 0) {
		seterr(err, errlen, "flow.dport: not a port or range");
		return -1;
	}
	if ((v = json_object_get(o, "proto"))) {
		int bad;

		if (json_is_integer(v)) {
			json_int_t p = json_integer_value(v);

			bad = p < 0 || p > 255;
			s->proto = (uint8_t)p;
		} else {
			bad = !json_is_string(v) || parse_proto(json_string_value(v), &s->proto) < 0;
		}
		if (bad) {
			seterr(err, errlen, "flow.proto: not a protocol");
			return -1;
		}
	}
	return 0;
}

int
ev_kind_parse(const char *s)
{
	if (!s)
		return -1;
	if (!strcmp(s, "processing"))
		return EV_KIND_PROCESSING;
	if (!strcmp(s, "source") || !strcmp(s, "input"))
		return EV_KIND_SOURCE;
	return -1;
}

const char *
ev_kind_name(int kind)
{
	return kind == EV_KIND_SOURCE ? "source" : "processing";
}

int
ev_culprit_matches(const struct ev_culprit *named, const struct ev_culprit *truth,
		enum ev_match_mode mode)
{
	if (named->kind != truth->kind)
		return 0;
	/* A source culprit is the traffic: analyzers may name it "source" or by
	 * the entry node; kind decides. */
	if (truth->kind != EV_KIND_SOURCE && strcmp(named->nf, truth->nf))
		return 0;
	if (mode == EV_MATCH_NF_KIND || !truth->has_flow)
		return 1;
	if (!named->has_flow || ev_flowset_is_any(&named->flow))
		return 0;
	/* The aggregate covers the true flow set, or (a bug's truth is a rule,
	 * a set of flows) lies inside it: it names flows that triggered it. */
	return ev_flowset_contains(&named->flow, &truth->flow) ||
		ev_flowset_contains(&truth->flow, &named->flow);
}

static int
same_culprit(const struct ev_culprit *a, const struct ev_culprit *b, enum ev_match_mode mode)
{
	if (a->kind != b->kind || strcmp(a->nf, b->nf))
		return 0;
	if (mode == EV_MATCH_NF_KIND)
		return 1;
	return a->has_flow == b->has_flow && !memcmp(&a->flow, &b->flow, sizeof(a->flow));
}

int
ev_rank(const struct ev_culprit *list, size_t n, const struct ev_culprit *truth,
		const struct ev_culprit *others, size_t n_others, enum ev_match_mode mode)
{
	int rank = 1;

	for (size_t i = 0; i < n; i++) {
		int skip = 0;

		if (ev_culprit_matches(&list[i], truth, mode))
			return rank;
		for (size_t k = 0; k < n_others && !skip; k++)
			skip = ev_culprit_matches(&list[i], &others[k], EV_MATCH_NF_KIND);
		/* the same culprit again (for another victim cluster) is not
		 * another answer */
		for (size_t k = 0; k < i && !skip; k++)
			skip = same_culprit(&list[k], &list[i], mode);
		if (!skip)
			rank++;
	}
	return 0;
}

/* The analyzer may give the flow as text or as a structured object. */
static void
named_flow(const json_t *c, struct ev_culprit *out)
{
	const json_t *f = json_object_get(c, "flow_set");

	if (!f)
		f = json_object_get(c, "flow");
	out->has_flow = 0;
	ev_flowset_any(&out->flow);
	if (!f)
		return;
	if (ev_flowset_from_json(f, &out->flow, NULL, 0) < 0) {
		ev_flowset_any(&out->flow);
		return;
	}
	out->has_flow = !ev_flowset_is_any(&out->flow);
}

int
ev_culprits_from_analysis(const json_t *root, struct ev_culprit *out, size_t max,
		char *err, size_t errlen)
{
	const json_t *arr = json_object_get(root, "culprits");
	size_t i, n = 0;
	json_t *c;
	long *clusters;
	int all_clustered = 1;

	if (!json_is_array(arr)) {
		seterr(err, errlen, "analysis: no \"culprits\" array");
		return -1;
	}
	clusters = calloc(max ? max : 1, sizeof(*clusters));
	if (!clusters) {
		seterr(err, errlen, "out of memory");
		return -1;
	}
	json_array_foreach(arr, i, c) {
		const json_t *nf = json_object_get(c, "nf");
		const json_t *kind = json_object_get(c, "kind");
		const json_t *score = json_object_get(c, "score");
		int k;

		if (n == max)
			break;
		if (!json_is_string(nf) || !json_is_string(kind) ||
		    (k = ev_kind_parse(json_string_value(kind))) < 0) {
			seterr(err, errlen, "analysis: culprits[%zu]: missing or bad nf/kind", i);
			free(clusters);
			return -1;
		}
		memset(&out[n], 0, sizeof(out[n]));
		snprintf(out[n].nf, sizeof(out[n].nf), "%s", json_string_value(nf));
		out[n].kind = k;
		out[n].score = json_is_number(score) ? json_number_value(score) : 0;
		named_flow(c, &out[n]);
		if (json_is_integer(json_object_get(c, "cluster")))
			clusters[n] = (long)json_integer_value(json_object_get(c, "cluster"));
		else
			all_clustered = 0;
		n++;
	}
	/* Rules list one culprit once per victim cluster, sorted by rule score;
	 * when they carry their culprit cluster's rank, the culprits' own order
	 * is by that rank (stable: insertion sort). */
	if (all_clustered && n > 1) {
		for (size_t a = 1; a < n; a++) {
			struct ev_culprit x = out[a];
			long cx = clusters[a];
			size_t b = a;

			while (b > 0 && clusters[b - 1] > cx) {
				out[b] = out[b - 1];
				clusters[b] = clusters[b - 1];
				b--;
			}
			out[b] = x;
			clusters[b] = cx;
		}
	}
	free(clusters);
	return (int)n;
}

int
ev_culprit_from_truth(const json_t *c, struct ev_culprit *out, char *err, size_t errlen)
{
	const json_t *nf = json_object_get(c, "nf");
	const json_t *kind = json_object_get(c, "kind");
	const json_t *flow = json_object_get(c, "flow");
	int k;

	memset(out, 0, sizeof(*out));
	if (!json_is_object(c)) {
		seterr(err, errlen, "culprit: not an object");
		return -1;
	}
	if (!json_is_string(nf)) {
		seterr(err, errlen, "culprit.nf: missing or not a string");
		return -1;
	}
	if (!json_is_string(kind) || (k = ev_kind_parse(json_string_value(kind))) < 0) {
		seterr(err, errlen, "culprit.kind: must be \"processing\" or \"source\"");
		return -1;
	}
	snprintf(out->nf, sizeof(out->nf), "%s", json_string_value(nf));
	out->kind = k;
	ev_flowset_any(&out->flow);
	if (flow && !json_is_null(flow)) {
		if (ev_flowset_from_json(flow, &out->flow, err, errlen) < 0)
			return -1;
		out->has_flow = 1;
	}
	return 0;
}
