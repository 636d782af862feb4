/* SPDX-License-Identifier: BSD-3-Clause */
/* Document access shared by the renderers, and the strict schema check. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "mscope_report.h"
#include "report_private.h"

const char *
rp_str(const json_t *o, const char *key, const char *def)
{
	const json_t *v = json_is_object(o) ? json_object_get(o, key) : NULL;

	return json_is_string(v) ? json_string_value(v) : def;
}

double
rp_num(const json_t *o, const char *key, double def)
{
	const json_t *v = json_is_object(o) ? json_object_get(o, key) : NULL;

	return json_is_number(v) ? json_number_value(v) : def;
}

const json_t *
rp_arr(const json_t *o, const char *key)
{
	const json_t *v = json_is_object(o) ? json_object_get(o, key) : NULL;

	return json_is_array(v) ? v : NULL;
}

const json_t *
rp_obj(const json_t *o, const char *key)
{
	const json_t *v = json_is_object(o) ? json_object_get(o, key) : NULL;

	return json_is_object(v) ? v : NULL;
}

void
rp_time_unit(const json_t *doc, struct rp_time *tu)
{
	double end = rp_num(rp_obj(doc, "summary"), "end_us", NAN);
	const json_t *c = rp_arr(doc, "culprits");
	size_t i;
	const json_t *v;

	json_array_foreach(c, i, v) {
		double e = rp_num(v, "end_us", NAN);
		if (isfinite(e) && (!isfinite(end) || e > end))
			end = e;
	}
	if (isfinite(end) && fabs(end) >= 100e6) {
		tu->div = 1e6;
		tu->unit = "s";
		tu->prec = 3;
	} else {
		tu->div = 1e3;
		tu->unit = "ms";
		tu->prec = 3;
	}
}

void
rp_time_range(const struct rp_time *tu, double a, double b, char *buf, size_t len)
{
	if (!isfinite(a) || !isfinite(b))
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%.*f-%.*f", tu->prec, a / tu->div, tu->prec, b / tu->div);
}

void
rp_count(double v, char *buf, size_t len)
{
	char raw[64], tmp[96];
	size_t n, o = 0;

	if (!isfinite(v) || fabs(v) >= 1e18) {
		snprintf(buf, len, "-");
		return;
	}
	snprintf(raw, sizeof(raw), "%.0f", fabs(v));
	n = strlen(raw);
	if (v <= -0.5)
		tmp[o++] = '-';
	for (size_t i = 0; i < n; i++) {
		if (i && (n - i) % 3 == 0)
			tmp[o++] = ',';
		tmp[o++] = raw[i];
	}
	tmp[o] = '\0';
	snprintf(buf, len, "%s", tmp);
}

/* ------------------------------------------------------------ groups */

static double
add_known(double acc, double v)
{
	if (!isfinite(v))
		return acc;
	return isfinite(acc) ? acc + v : v;
}

static int
cmp_group(const void *a, const void *b)
{
	const struct rp_group *x = a, *y = b;
	double sx = isfinite(x->share) ? x->share : -1, sy = isfinite(y->share) ? y->share : -1;

	if (sx != sy)
		return sx > sy ? -1 : 1;
	return x->rules[0] < y->rules[0] ? -1 : x->rules[0] > y->rules[0];
}

struct rp_group *
rp_groups(const json_t *cul, size_t *n)
{
	/* victims of a group: the analyzer's "cluster_victims" of its rules, or
	 * unknown (a sum could count a victim twice). */
	size_t i, ng = 0, nc = json_is_array(cul) ? json_array_size(cul) : 0;
	struct rp_group *g = nc ? calloc(nc, sizeof(*g)) : NULL;
	const json_t *c;

	*n = 0;
	if (!g)
		return NULL;
	json_array_foreach(cul, i, c) {
		const char *nf = rp_str(c, "nf", "-"), *kind = rp_str(c, "kind", "-");
		const char *flow = rp_str(c, "flow", "*");
		size_t j;

		for (j = 0; j < ng; j++)
			if (!strcmp(g[j].nf, nf) && !strcmp(g[j].kind, kind) && !strcmp(g[j].flow, flow))
				break;
		if (j == ng) {
			g[ng].nf = nf;
			g[ng].kind = kind;
			g[ng].flow = flow;
			g[ng].share = g[ng].score = g[ng].victims = NAN;
			g[ng].t0 = INFINITY;
			g[ng].t1 = -INFINITY;
			g[ng].rules = malloc(nc * sizeof(*g[ng].rules));
			if (!g[ng].rules) {
				rp_groups_free(g, ng);
				return NULL;
			}
			ng++;
		}
		g[j].rules[g[j].n++] = i;
		g[j].share = add_known(g[j].share, rp_num(c, "share", NAN));
		g[j].score = add_known(g[j].score, rp_num(c, "score", NAN));
		g[j].victims = add_known(g[j].victims, rp_num(c, "victims", NAN));
		g[j].t0 = fmin(g[j].t0, rp_num(c, "start_us", INFINITY));
		g[j].t1 = fmax(g[j].t1, rp_num(c, "end_us", -INFINITY));
	}
	for (size_t j = 0; j < ng; j++) {
		const json_t *first = json_array_get(cul, g[j].rules[0]);
		if (!isfinite(g[j].t0) || !isfinite(g[j].t1))
			g[j].t0 = g[j].t1 = NAN;
		/* One victim can be in several rules of a root cause (it queued at
		 * two NFs): prefer the analyzer's distinct count when it gives one. */
		if (g[j].n > 1)
			g[j].victims = rp_num(first, "cluster_victims", NAN);
	}
	qsort(g, ng, sizeof(*g), cmp_group);
	*n = ng;
	return g;
}

void
rp_groups_free(struct rp_group *g, size_t n)
{
	for (size_t i = 0; g && i < n; i++)
		free(g[i].rules);
	free(g);
}

/* ------------------------------------------------------------ check */

struct chk {
	char *err;
	size_t len;
	int bad;
};

static void
fail(struct chk *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
fail(struct chk *c, const char *fmt, ...)
{
	va_list ap;

	if (c->bad++ || !c->err || !c->len)
		return;
	va_start(ap, fmt);
	vsnprintf(c->err, c->len, fmt, ap);
	va_end(ap);
}

enum ftype { T_STR, T_NUM, T_INT, T_OBJ, T_ARR, T_STR_OR_NUM };

struct field {
	const char *name;
	enum ftype type;
};

static const char *
type_name(enum ftype t)
{
	switch (t) {
	case T_STR: return "a string";
	case T_NUM: return "a number";
	case T_INT: return "an integer";
	case T_OBJ: return "an object";
	case T_ARR: return "an array";
	default: return "a string or a number";
	}
}

static int
type_ok(const json_t *v, enum ftype t)
{
	switch (t) {
	case T_STR: return json_is_string(v);
	case T_NUM: return json_is_number(v);
	case T_INT: return json_is_integer(v);
	case T_OBJ: return json_is_object(v);
	case T_ARR: return json_is_array(v);
	default: return json_is_string(v) || json_is_number(v);
	}
}

/* Known fields must have their type when present (others are free). */
static void
check_fields(struct chk *c, const json_t *o, const char *where, const struct field *f, size_t nf)
{
	for (size_t i = 0; i < nf && !c->bad; i++) {
		const json_t *v = json_object_get(o, f[i].name);
		if (v && !json_is_null(v) && !type_ok(v, f[i].type))
			fail(c, "%s.%s: expected %s", where, f[i].name, type_name(f[i].type));
	}
}

static void
check_list(struct chk *c, const json_t *doc, const char *name, const struct field *f, size_t nf)
{
	const json_t *a = json_object_get(doc, name), *v;
	char where[96];
	size_t i;

	if (!a || c->bad)
		return;
	if (!json_is_array(a)) {
		fail(c, "%s: expected an array", name);
		return;
	}
	json_array_foreach(a, i, v) {
		snprintf(where, sizeof(where), "%s[%zu]", name, i);
		if (!json_is_object(v)) {
			fail(c, "%s: expected an object", where);
			return;
		}
		check_fields(c, v, where, f, nf);
		if (c->bad)
			return;
	}
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

int
mscope_report_check(const json_t *doc, char *err, size_t len)
{
	static const struct field summary[] = {
		{ "victims", T_NUM }, { "drops", T_NUM }, { "packets", T_NUM },
		{ "start_us", T_NUM }, { "end_us", T_NUM }, { "nodes", T_NUM },
		{ "trace_losses", T_NUM }, { "unresolved_ids", T_NUM },
		{ "arrivals", T_STR }, { "dag", T_STR }, { "warnings", T_ARR },
	};
	static const struct field node[] = {
		{ "id", T_STR }, { "nf", T_STR }, { "port", T_NUM }, { "queue", T_NUM },
		{ "peak_rate_mpps", T_NUM }, { "peak_rate_from", T_STR },
		{ "packets", T_NUM }, { "victims", T_NUM }, { "drops", T_NUM },
		{ "wait_p50_us", T_NUM }, { "wait_p99_us", T_NUM }, { "qlen_p50", T_NUM },
		{ "qlen_p99", T_NUM }, { "qlen_max", T_NUM }, { "series", T_OBJ },
	};
	static const struct field edge[] = {
		{ "from", T_STR }, { "to", T_STR }, { "packets", T_NUM },
	};
	static const struct field culprit[] = {
		{ "rank", T_NUM }, { "nf", T_STR }, { "kind", T_STR }, { "flow", T_STR },
		{ "victim_nf", T_STR }, { "victim_flow", T_STR }, { "score", T_NUM },
		{ "share", T_NUM }, { "victims", T_NUM }, { "start_us", T_NUM },
		{ "end_us", T_NUM }, { "cluster_victims", T_NUM },
	};
	static const struct field period[] = {
		{ "node", T_STR }, { "start_us", T_NUM }, { "end_us", T_NUM },
		{ "victims", T_NUM },
	};
	struct chk c = { err, len, 0 };
	const json_t *v, *nodes, *x;
	size_t i;

	if (err && len)
		err[0] = '\0';
	if (!json_is_object(doc)) {
		fail(&c, "document: expected a JSON object");
		goto out;
	}
	v = json_object_get(doc, "version");
	if (!json_is_integer(v)) {
		fail(&c, "version: missing or not an integer");
		goto out;
	}
	if (json_integer_value(v) != 1) {
		fail(&c, "version: %lld is not supported (expected 1)",
				(long long)json_integer_value(v));
		goto out;
	}
	v = json_object_get(doc, "summary");
	if (v && !json_is_object(v))
		fail(&c, "summary: expected an object");
	else if (v)
		check_fields(&c, v, "summary", summary, N(summary));
	check_list(&c, doc, "nodes", node, N(node));
	check_list(&c, doc, "edges", edge, N(edge));
	check_list(&c, doc, "culprits", culprit, N(culprit));
	check_list(&c, doc, "periods", period, N(period));
	nodes = json_object_get(doc, "nodes");
	json_array_foreach(nodes, i, x) {
		const json_t *s = json_object_get(x, "series");
		if (c.bad)
			break;
		if (!s)
			continue;
		if (json_object_get(s, "t_us") && !json_is_array(json_object_get(s, "t_us")))
			fail(&c, "nodes[%zu].series.t_us: expected an array", i);
		else if (json_object_get(s, "qlen") && !json_is_array(json_object_get(s, "qlen")))
			fail(&c, "nodes[%zu].series.qlen: expected an array", i);
	}
out:
	if (c.bad) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}
