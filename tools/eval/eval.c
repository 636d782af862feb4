/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mscope eval: simulate scenarios with known faults, diagnose every fault's
 * window, and score the diagnosis against the ground truth (method.md §5),
 * side by side with baselines:
 *   ours     mscope analyze, peak rates estimated from the traces (the default)
 *   rates    the same with the configured peak rates (--rate from truth.json)
 *   paper    the paper's DAG variant (--dag=paper)
 *   excess   source share spread by each flow's excess over its average rate
 *            (--source-flows excess) instead of by its packets
 *   local    blame the NF where the victims waited longest (per-NF counters)
 *   nm-1ms, nm-10ms  NetMedic-style (netmedic.c), with 1 ms and 10 ms windows
 * Per fault: the rank of the true culprit. Per victim: the share of the
 * fault's labelled victims whose own top culprit is the fault's culprit.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "commands.h"
#include "eval.h"
#include "runner.h"

#define MAX_CULPRITS 256
#define MAX_FAULTS 64

enum method { M_OURS, M_RATES, M_PAPER, M_EXCESS, M_LOCAL, M_NM1, M_NM10, NMETHOD };
static const char *const method_name[NMETHOD] = {
	"ours", "rates", "paper", "excess", "local", "nm-1ms", "nm-10ms",
};
static const double nm_window_us[2] = { 1000, 10000 };

struct eopts {
	const char *json_out;
	const char *explain;
	const char *keep;
	int jobs;
	double tail_us;
	double threshold_us;
	double rank_threshold_us; /* < 0: auto */
	double rank_quantile;     /* of normal-operation latency, for auto */
	int no_baselines;
	int no_variants;
	int quiet;
	struct ev_runner run;
};

struct ecase {
	char *path;
	char *name;
	int recorded; /* a directory with traces and truth.json */
};

static void
seterr(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
}

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: mscope eval [OPTIONS] SCENARIO.json... | DIR...\n\n"
		"Simulate each scenario, diagnose each injected fault's window and score\n"
		"the diagnosis against the ground truth; baselines side by side.\n"
		"A DIR holds scenario files (*.json), or is a recorded run (trace files\n"
		"and truth.json, e.g. from the chain launcher): then it is analysed as is.\n\n"
		"output:\n"
		"  --json FILE         results per fault and per group as JSON\n"
		"  --explain CASE      run one case (scenario name, optionally NAME#FAULT)\n"
		"                      and print truth, culprits, peak rates, victims' queues\n"
		"  --keep DIR          keep every run (traces, analyses, logs) under DIR\n"
		"  -q, --quiet         no line per case\n"
		"method:\n"
		"  --tail US           aftermath after a fault's end when no victims are\n"
		"                      labelled (default: max(1000, fault length))\n"
		"  --threshold US      victims whose own culprits are scored: end-to-end\n"
		"                      latency above US (default 50, the simulator's victim\n"
		"                      threshold); 0: the analyzer's default (p99)\n"
		"  --rank-threshold same|auto[:Q]|US  victims whose culprits are ranked:\n"
		"                      same (default) = --threshold; auto = max(--threshold,\n"
		"                      quantile Q (default 0.99) of the end-to-end latency of\n"
		"                      packets outside every fault window)\n"
		"  --no-baselines      no local-only and NetMedic baselines\n"
		"  --no-variants       no rates/paper/excess variants of mscope\n"
		"  -j, --jobs N        cases run in parallel (default 2)\n"
		"  --subprocess        run `mscope sim/analyze` as programs, not in-process\n"
		"  -h, --help\n");
}

/* ----------------------------------------------------------- cases */

static int
has_suffix(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);

	return a >= b && !strcmp(s + a - b, suf);
}

static char *
base_name(const char *path)
{
	const char *b = strrchr(path, '/');
	char *s;
	size_t n;

	while (b && !b[1] && b > path) {
		/* trailing slash: take the component before it */
		const char *e = b;

		while (e > path && e[-1] != '/')
			e--;
		n = (size_t)(b - e);
		s = strndup(e, n);
		return s;
	}
	s = strdup(b ? b + 1 : path);
	if (s && has_suffix(s, ".json"))
		s[strlen(s) - 5] = '\0';
	return s;
}

static int
add_case(struct ecase **v, size_t *n, const char *path, int recorded)
{
	struct ecase *nv = realloc(*v, (*n + 1) * sizeof(**v));

	if (!nv)
		return -1;
	*v = nv;
	nv[*n].path = strdup(path);
	nv[*n].name = base_name(path);
	nv[*n].recorded = recorded;
	if (!nv[*n].path || !nv[*n].name)
		return -1;
	(*n)++;
	return 0;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
collect(char **args, int nargs, struct ecase **cases, size_t *n)
{
	for (int i = 0; i < nargs; i++) {
		struct stat st;
		char p[PATH_MAX];

		if (stat(args[i], &st) < 0) {
			fprintf(stderr, "mscope eval: %s: %s\n", args[i], strerror(errno));
			return 1;
		}
		if (!S_ISDIR(st.st_mode)) {
			if (add_case(cases, n, args[i], 0) < 0)
				return 1;
			continue;
		}
		snprintf(p, sizeof(p), "%s/truth.json", args[i]);
		if (access(p, R_OK) == 0) {
			if (add_case(cases, n, args[i], 1) < 0)
				return 1;
			continue;
		}
		{
			DIR *d = opendir(args[i]);
			struct dirent *de;
			char **names = NULL;
			size_t nn = 0;

			if (!d) {
				fprintf(stderr, "mscope eval: %s: %s\n", args[i], strerror(errno));
				return 1;
			}
			while ((de = readdir(d))) {
				char **x;

				if (!has_suffix(de->d_name, ".json") || de->d_name[0] == '.')
					continue;
				x = realloc(names, (nn + 1) * sizeof(*x));
				if (!x)
					break;
				names = x;
				names[nn++] = strdup(de->d_name);
			}
			closedir(d);
			qsort(names, nn, sizeof(*names), cmp_str);
			for (size_t k = 0; k < nn; k++) {
				snprintf(p, sizeof(p), "%s/%s", args[i], names[k]);
				if (add_case(cases, n, p, 0) < 0)
					return 1;
				free(names[k]);
			}
			free(names);
			if (!nn) {
				fprintf(stderr, "mscope eval: %s: no scenarios (*.json) and no truth.json\n",
					args[i]);
				return 1;
			}
		}
	}
	return 0;
}

/* ----------------------------------------------------------- truth */

struct victim {
	uint32_t wire;
	uint64_t tsc;
	int dropped;
};

struct fault {
	int id;
	char kind[32];
	double start_us, end_us;
	double from_us, to_us;     /* analysis window */
	struct ev_culprit culprit;
	struct victim *v;
	size_t nv, capv;
	size_t ndropped;
	int injected;              /* a recorded run may fail to inject a fault */
	size_t nstray;             /* labelled victims outside the analysed window */
};

/* Largest gap between a fault's labelled victims (ingress times) that still
 * counts as one aftermath. */
#define AFTERMATH_GAP_US 1000.0

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

struct truth {
	json_t *root;
	double tsc_hz;
	uint64_t start_tsc;
	double duration_us;
	char topology[32];
	struct fault f[MAX_FAULTS];
	size_t nf;
	const char *rate_nf[EV_MAX_RATES];
	double rate_mpps[EV_MAX_RATES];
	size_t nrates;
};

static double
num(const json_t *o, const char *k, double dflt)
{
	const json_t *v = json_object_get(o, k);

	return json_is_number(v) ? json_number_value(v) : dflt;
}

static void
topology_label(const json_t *root, char *out, size_t len)
{
	const json_t *nfs = json_object_get(root, "nfs");
	const json_t *links = json_object_get(root, "links");
	size_t n = json_array_size(nfs), i;
	int chain = 1;
	json_t *l;

	/* a chain: every NF has at most one way in and one way out */
	for (size_t k = 0; k < n && chain; k++) {
		const char *name = json_string_value(json_object_get(json_array_get(nfs, k), "name"));
		int in = 0, outn = 0;

		json_array_foreach(links, i, l) {
			const char *f = json_string_value(json_object_get(l, "from"));
			const char *t = json_string_value(json_object_get(l, "to"));

			if (name && f && !strcmp(f, name))
				outn++;
			if (name && t && !strcmp(t, name))
				in++;
		}
		if (in > 1 || outn > 1)
			chain = 0;
	}
	snprintf(out, len, "%s%zu", chain ? "chain" : "dag", n);
}

static int
cmp_victim(const void *a, const void *b)
{
	const struct victim *x = a, *y = b;

	if (x->wire != y->wire)
		return x->wire < y->wire ? -1 : 1;
	return (x->tsc > y->tsc) - (x->tsc < y->tsc);
}

static int
load_victims(struct truth *t, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0, lineno = 0;
	ssize_t len;

	if (!f)
		return 0; /* recorded runs have none */
	while ((len = getline(&line, &cap, f)) > 0) {
		json_error_t je;
		json_t *o;
		struct fault *fl = NULL;
		int id;

		lineno++;
		if (len <= 1)
			continue;
		o = json_loads(line, 0, &je);
		if (!o || !json_is_integer(json_object_get(o, "fault")) ||
		    !json_is_integer(json_object_get(o, "wire_id")) ||
		    !json_is_integer(json_object_get(o, "tsc"))) {
			json_decref(o);
			seterr(err, errlen, "%s:%zu: bad victim line", path, lineno);
			free(line);
			fclose(f);
			return -1;
		}
		id = (int)json_integer_value(json_object_get(o, "fault"));
		for (size_t i = 0; i < t->nf; i++)
			if (t->f[i].id == id)
				fl = &t->f[i];
		if (fl) {
			if (fl->nv == fl->capv) {
				size_t nc = fl->capv ? 2 * fl->capv : 256;
				struct victim *nv = realloc(fl->v, nc * sizeof(*nv));

				if (!nv) {
					json_decref(o);
					free(line);
					fclose(f);
					seterr(err, errlen, "out of memory");
					return -1;
				}
				fl->v = nv;
				fl->capv = nc;
			}
			fl->v[fl->nv].wire = (uint32_t)json_integer_value(json_object_get(o, "wire_id"));
			fl->v[fl->nv].tsc = (uint64_t)json_integer_value(json_object_get(o, "tsc"));
			fl->v[fl->nv].dropped = json_is_true(json_object_get(o, "dropped"));
			fl->ndropped += fl->v[fl->nv].dropped;
			fl->nv++;
		}
		json_decref(o);
	}
	free(line);
	fclose(f);
	return 0;
}

static void
truth_free(struct truth *t)
{
	for (size_t i = 0; i < t->nf; i++)
		free(t->f[i].v);
	json_decref(t->root);
	memset(t, 0, sizeof(*t));
}

static int
load_truth(const char *rundir, const struct eopts *o, struct truth *t, char *err, size_t errlen)
{
	char path[PATH_MAX];
	json_error_t je;
	const json_t *faults, *nfs, *fj;
	const char *vfile = "victims.jsonl";
	size_t i;

	memset(t, 0, sizeof(*t));
	snprintf(path, sizeof(path), "%s/truth.json", rundir);
	t->root = json_load_file(path, 0, &je);
	if (!t->root) {
		seterr(err, errlen, "%s:%d: %s", path, je.line, je.text);
		return -1;
	}
	t->tsc_hz = num(t->root, "tsc_hz", 1e9);
	t->start_tsc = (uint64_t)num(t->root, "start_tsc", 0);
	t->duration_us = num(t->root, "duration_us", 0);
	topology_label(t->root, t->topology, sizeof(t->topology));
	nfs = json_object_get(t->root, "nfs");
	json_array_foreach(nfs, i, fj) {
		const char *n = json_string_value(json_object_get(fj, "name"));
		double r = num(fj, "rate_mpps", 0);

		if (n && r > 0 && t->nrates < EV_MAX_RATES) {
			t->rate_nf[t->nrates] = n;
			t->rate_mpps[t->nrates++] = r;
		}
	}
	faults = json_object_get(t->root, "faults");
	if (!json_is_array(faults)) {
		seterr(err, errlen, "%s: no \"faults\" array", path);
		return -1;
	}
	json_array_foreach(faults, i, fj) {
		struct fault *f;
		const json_t *k = json_object_get(fj, "kind");
		char cerr[256];

		if (t->nf == MAX_FAULTS)
			break;
		f = &t->f[t->nf];
		memset(f, 0, sizeof(*f));
		f->id = json_is_integer(json_object_get(fj, "id")) ?
			(int)json_integer_value(json_object_get(fj, "id")) : (int)i;
		snprintf(f->kind, sizeof(f->kind), "%s", json_is_string(k) ? json_string_value(k) : "?");
		f->start_us = num(fj, "start_us", -1);
		f->end_us = num(fj, "end_us", -1);
		if (f->start_us < 0 || f->end_us < f->start_us) {
			seterr(err, errlen, "%s: faults[%zu]: bad start_us/end_us", path, i);
			return -1;
		}
		if (ev_culprit_from_truth(json_object_get(fj, "culprit"), &f->culprit,
				cerr, sizeof(cerr)) < 0) {
			seterr(err, errlen, "%s: faults[%zu].%s", path, i, cerr);
			return -1;
		}
		f->injected = !json_is_false(json_object_get(fj, "injected"));
		if (json_is_string(json_object_get(fj, "victims_file")))
			vfile = json_string_value(json_object_get(fj, "victims_file"));
		t->nf++;
	}
	if (strchr(vfile, '/'))
		vfile = strrchr(vfile, '/') + 1;
	snprintf(path, sizeof(path), "%s/%s", rundir, vfile);
	if (load_victims(t, path, err, errlen) < 0)
		return -1;
	/* analysis windows: the fault plus its aftermath. With labelled victims
	 * the window covers them (packets already queued when the fault began
	 * count too); else a tail after the end. */
	for (size_t k = 0; k < t->nf; k++) {
		struct fault *f = &t->f[k];
		double len = f->end_us - f->start_us;
		double tail = o->tail_us > 0 ? o->tail_us : (len > 1000 ? len : 1000);

		f->from_us = f->start_us;
		f->to_us = f->end_us + tail;
		if (f->nv) {
			double *us = malloc(f->nv * sizeof(*us));
			double lo = f->start_us, hi = f->end_us;
			size_t j;

			if (!us) {
				seterr(err, errlen, "out of memory");
				return -1;
			}
			for (j = 0; j < f->nv; j++)
				us[j] = ((double)f->v[j].tsc - (double)t->start_tsc) * 1e6 / t->tsc_hz;
			qsort(us, f->nv, sizeof(*us), cmp_double);
			/* The aftermath is the run of victims contiguous with the
			 * fault (gaps below AFTERMATH_GAP_US): a few stray victims
			 * far away (timing shifted by the fault, a coincidence in
			 * another queue) must not stretch the window over
			 * milliseconds of unrelated queuing. */
			for (j = f->nv; j-- > 0; )
				if (us[j] < lo && lo - us[j] <= AFTERMATH_GAP_US)
					lo = us[j];
			for (j = 0; j < f->nv; j++)
				if (us[j] > hi && us[j] - hi <= AFTERMATH_GAP_US)
					hi = us[j];
			for (j = 0; j < f->nv; j++)
				if (us[j] < lo || us[j] > hi)
					f->nstray++;
			free(us);
			f->from_us = lo;
			f->to_us = hi + 50;
		}
		if (f->from_us < 0)
			f->from_us = 0;
		if (t->duration_us > 0 && f->to_us > t->duration_us)
			f->to_us = t->duration_us;
		if (f->nv)
			qsort(f->v, f->nv, sizeof(*f->v), cmp_victim);
	}
	return 0;
}

/* ----------------------------------------------------------- relations */

struct relation {
	uint32_t wire;
	uint64_t tsc;
	int has_top;
	struct ev_culprit top;
	char local_nf[64]; /* where it waited longest */
	double local_wait;
};

struct relations {
	struct relation *r;
	size_t n, cap;
};

static int
cmp_relation(const void *a, const void *b)
{
	const struct relation *x = a, *y = b;

	if (x->wire != y->wire)
		return x->wire < y->wire ? -1 : 1;
	return (x->tsc > y->tsc) - (x->tsc < y->tsc);
}

static void
nf_of(const json_t *q, char *out, size_t len)
{
	const json_t *nf = json_object_get(q, "nf");
	const char *s;

	if (json_is_string(q))
		s = json_string_value(q);
	else if (json_is_string(nf))
		s = json_string_value(nf);
	else
		s = json_string_value(json_object_get(q, "node"));
	snprintf(out, len, "%s", s ? s : "?");
	/* node ids are "nf:p0q0": the NF is what is blamed */
	if (!json_is_string(nf) && strchr(out, ':'))
		*strchr(out, ':') = '\0';
}

static int
load_relations(const char *path, struct relations *rs, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0, lineno = 0;
	ssize_t len;

	memset(rs, 0, sizeof(*rs));
	if (!f) {
		seterr(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	while ((len = getline(&line, &cap, f)) > 0) {
		json_error_t je;
		json_t *o, *cs, *qa;
		struct relation *r;
		size_t i;
		json_t *q;

		lineno++;
		if (len <= 1)
			continue;
		o = json_loads(line, 0, &je);
		if (!o) {
			seterr(err, errlen, "%s:%zu: %s", path, lineno, je.text);
			free(line);
			fclose(f);
			return -1;
		}
		if (rs->n == rs->cap) {
			size_t nc = rs->cap ? 2 * rs->cap : 1024;
			struct relation *nr = realloc(rs->r, nc * sizeof(*nr));

			if (!nr) {
				json_decref(o);
				free(line);
				fclose(f);
				seterr(err, errlen, "out of memory");
				return -1;
			}
			rs->r = nr;
			rs->cap = nc;
		}
		r = &rs->r[rs->n];
		memset(r, 0, sizeof(*r));
		r->wire = (uint32_t)json_integer_value(json_object_get(o, "wire_id"));
		r->tsc = (uint64_t)json_integer_value(json_object_get(o, "tsc"));
		cs = json_object_get(o, "culprits");
		if (json_array_size(cs) > 0) {
			json_t *root = json_pack("{sO}", "culprits", cs);

			if (root && ev_culprits_from_analysis(root, &r->top, 1, NULL, 0) == 1)
				r->has_top = 1;
			json_decref(root);
		}
		qa = json_object_get(o, "queued_at");
		r->local_wait = -1;
		json_array_foreach(qa, i, q) {
			double w = num(q, "wait_us", 0);

			if (w > r->local_wait) {
				r->local_wait = w;
				nf_of(q, r->local_nf, sizeof(r->local_nf));
			}
		}
		rs->n++;
		json_decref(o);
	}
	free(line);
	fclose(f);
	qsort(rs->r, rs->n, sizeof(*rs->r), cmp_relation);
	return 0;
}

static const struct relation *
find_relation(const struct relations *rs, uint32_t wire, uint64_t tsc)
{
	struct relation key = { .wire = wire, .tsc = tsc };

	return bsearch(&key, rs->r, rs->n, sizeof(key), cmp_relation);
}

/* ----------------------------------------------------------- scoring */

struct mresult {
	int ran;
	int rank;           /* 0 = not found */
	int rank_nf_kind;   /* the same scoring NF and kind only */
	int rules;
	size_t vict_ok, vict_seen, vict_n; /* per victim; vict_n < 0 if n/a */
	int has_victims;
	char top[3][160];
	char error[256];
};

static void
culprit_text(const struct ev_culprit *c, char *buf, size_t len)
{
	char fl[96] = "*";

	if (c->has_flow && !ev_flowset_is_any(&c->flow)) {
		const struct ev_flowset *s = &c->flow;
		char sp[16] = "*", dp[16] = "*", src[24] = "*", dst[24] = "*", pr[8] = "*";

		if (s->proto)
			snprintf(pr, sizeof(pr), "%s", s->proto == 6 ? "tcp" : s->proto == 17 ? "udp" : "ip");
		if (s->src_len)
			snprintf(src, sizeof(src), "%u.%u.%u.%u/%u", s->src >> 24, s->src >> 16 & 255,
				s->src >> 8 & 255, s->src & 255, s->src_len);
		if (s->dst_len)
			snprintf(dst, sizeof(dst), "%u.%u.%u.%u/%u", s->dst >> 24, s->dst >> 16 & 255,
				s->dst >> 8 & 255, s->dst & 255, s->dst_len);
		if (s->sport_lo || s->sport_hi != 65535)
			snprintf(sp, sizeof(sp), s->sport_lo == s->sport_hi ? "%u" : "%u-%u",
				s->sport_lo, s->sport_hi);
		if (s->dport_lo || s->dport_hi != 65535)
			snprintf(dp, sizeof(dp), s->dport_lo == s->dport_hi ? "%u" : "%u-%u",
				s->dport_lo, s->dport_hi);
		snprintf(fl, sizeof(fl), "%s %s:%s > %s:%s", pr, src, sp, dst, dp);
	}
	snprintf(buf, len, "%s/%s %s", c->nf, ev_kind_name(c->kind), fl);
}

static void
fill_top(struct mresult *m, const struct ev_culprit *list, int n)
{
	for (int i = 0; i < 3; i++)
		m->top[i][0] = '\0';
	for (int i = 0; i < n && i < 3; i++)
		culprit_text(&list[i], m->top[i], sizeof(m->top[i]));
}

static void
score_victims(struct mresult *m, const struct fault *f, const struct relations *rs, int local)
{
	m->has_victims = f->nv > 0;
	m->vict_n = f->nv;
	for (size_t j = 0; j < f->nv; j++) {
		const struct relation *r = find_relation(rs, f->v[j].wire, f->v[j].tsc);

		if (!r)
			continue;
		m->vict_seen++;
		if (local) {
			struct ev_culprit c = { .kind = EV_KIND_PROCESSING };

			snprintf(c.nf, sizeof(c.nf), "%s", r->local_nf);
			if (r->local_wait >= 0 && ev_culprit_matches(&c, &f->culprit, EV_MATCH_NF_KIND))
				m->vict_ok++;
		} else if (r->has_top && ev_culprit_matches(&r->top, &f->culprit, EV_MATCH_NF_KIND)) {
			m->vict_ok++;
		}
	}
}

/* Local-only: NFs ranked by the total wait of the analyzer's victims there. */
static int
local_ranking(const struct relations *rs, struct ev_culprit *out, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < rs->n; i++) {
		const struct relation *r = &rs->r[i];
		size_t k;

		if (r->local_wait < 0)
			continue;
		for (k = 0; k < n && strcmp(out[k].nf, r->local_nf); k++)
			;
		if (k == n) {
			if (n == max)
				continue;
			memset(&out[n], 0, sizeof(out[n]));
			snprintf(out[n].nf, sizeof(out[n].nf), "%s", r->local_nf);
			out[n].kind = EV_KIND_PROCESSING;
			ev_flowset_any(&out[n].flow);
			n++;
		}
		out[k].score += r->local_wait > 0 ? r->local_wait : 1;
	}
	/* insertion sort by score, ties by name: deterministic */
	for (size_t i = 1; i < n; i++) {
		struct ev_culprit c = out[i];
		size_t j = i;

		while (j > 0 && (out[j - 1].score < c.score ||
				(out[j - 1].score == c.score && strcmp(out[j - 1].nf, c.nf) > 0))) {
			out[j] = out[j - 1];
			j--;
		}
		out[j] = c;
	}
	return (int)n;
}

static void
others_of(const struct truth *t, size_t fi, struct ev_culprit *others, size_t *n)
{
	const struct fault *f = &t->f[fi];

	*n = 0;
	for (size_t k = 0; k < t->nf; k++)
		if (k != fi && t->f[k].start_us < f->to_us && f->from_us < t->f[k].to_us)
			others[(*n)++] = t->f[k].culprit;
}

static json_t *
mresult_json(const struct mresult *m)
{
	json_t *o = json_object(), *top = json_array();

	if (!m->ran) {
		json_object_set_new(o, "error", json_string(m->error[0] ? m->error : "not run"));
		json_decref(top);
		return o;
	}
	json_object_set_new(o, "rank", json_integer(m->rank));
	json_object_set_new(o, "rank_nf_kind", json_integer(m->rank_nf_kind ? m->rank_nf_kind :
		m->rank));
	json_object_set_new(o, "rules", json_integer(m->rules));
	if (m->has_victims) {
		json_object_set_new(o, "victims_correct", json_integer((json_int_t)m->vict_ok));
		json_object_set_new(o, "victims_diagnosed", json_integer((json_int_t)m->vict_seen));
		json_object_set_new(o, "victims", json_integer((json_int_t)m->vict_n));
	}
	for (int i = 0; i < 3; i++)
		if (m->top[i][0])
			json_array_append_new(top, json_string(m->top[i]));
	json_object_set_new(o, "top", top);
	return o;
}

static int
mkdir_p(const char *path)
{
	char tmp[PATH_MAX];

	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(tmp, 0755) < 0 && errno != EEXIST ? -1 : 0;
}

static int
rm_rf(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;

	if (!d)
		return unlink(path);
	while ((de = readdir(d))) {
		char p[PATH_MAX];

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(p, sizeof(p), "%s/%s", path, de->d_name);
		rm_rf(p);
	}
	closedir(d);
	return rmdir(path);
}

/* What one analysis run of a variant is for. */
enum { RUN_RANK = 1, RUN_VICTIMS = 2, RUN_KEEP_REL = 4 };

/* One analysis run of a variant for fault fi with victim threshold `thr`:
 * RUN_RANK scores the rules (rank), RUN_VICTIMS the labelled victims' own
 * top culprits; RUN_KEEP_REL hands the relations to the caller. */
static void
run_variant(const struct eopts *o, const char *rundir, const char *work, const struct truth *t,
		size_t fi, int method, double thr, int what, const char *suffix,
		struct mresult *m, struct relations *keep_rel)
{
	const struct fault *f = &t->f[fi];
	struct ev_analysis_req q = { 0 };
	char jpath[PATH_MAX], rpath[PATH_MAX], err[512];
	struct ev_culprit list[MAX_CULPRITS], others[MAX_FAULTS];
	struct relations rs = { 0 };
	size_t nothers;
	json_error_t je;
	json_t *doc;
	int n;

	snprintf(jpath, sizeof(jpath), "%s/f%d-%s%s.json", work, f->id, method_name[method], suffix);
	snprintf(rpath, sizeof(rpath), "%s/f%d-%s%s.rel.jsonl", work, f->id, method_name[method],
		suffix);
	q.rundir = rundir;
	q.json_out = jpath;
	q.rel_out = what & (RUN_VICTIMS | RUN_KEEP_REL) ? rpath : NULL;
	q.from_us = f->from_us;
	q.to_us = f->to_us;
	q.dag_paper = method == M_PAPER;
	q.src_excess = method == M_EXCESS;
	q.threshold_us = thr;
	if (method == M_RATES) {
		for (size_t i = 0; i < t->nrates; i++) {
			q.rate_nf[i] = t->rate_nf[i];
			q.rate_mpps[i] = t->rate_mpps[i];
		}
		q.nrates = t->nrates;
	}
	if (ev_run_analyze(&o->run, &q, err, sizeof(err)) < 0) {
		snprintf(m->error, sizeof(m->error), "%s", err);
		m->ran = 0;
		return;
	}
	if (what & RUN_RANK) {
		doc = json_load_file(jpath, 0, &je);
		if (!doc) {
			snprintf(m->error, sizeof(m->error), "%s:%d: %s", jpath, je.line, je.text);
			m->ran = 0;
			return;
		}
		n = ev_culprits_from_analysis(doc, list, MAX_CULPRITS, err, sizeof(err));
		json_decref(doc);
		if (n < 0) {
			snprintf(m->error, sizeof(m->error), "%s: %s", jpath, err);
			m->ran = 0;
			return;
		}
		others_of(t, fi, others, &nothers);
		m->rules = n;
		m->rank = ev_rank(list, (size_t)n, &f->culprit, others, nothers, EV_MATCH_STRICT);
		m->rank_nf_kind = ev_rank(list, (size_t)n, &f->culprit, others, nothers,
			EV_MATCH_NF_KIND);
		fill_top(m, list, n);
		m->ran = 1;
	}
	if (q.rel_out && load_relations(rpath, &rs, err, sizeof(err)) < 0) {
		snprintf(m->error, sizeof(m->error), "%s", err);
		m->ran = 0;
		return;
	}
	if (what & RUN_VICTIMS)
		score_victims(m, f, &rs, 0);
	if (keep_rel)
		*keep_rel = rs;
	else
		free(rs.r);
}

static void
run_local(const struct truth *t, size_t fi, const struct relations *rs, struct mresult *m)
{
	struct ev_culprit list[MAX_CULPRITS], others[MAX_FAULTS];
	size_t nothers;
	int n = local_ranking(rs, list, MAX_CULPRITS);

	memset(m, 0, sizeof(*m));
	others_of(t, fi, others, &nothers);
	m->ran = 1;
	m->rules = n;
	m->rank = ev_rank(list, (size_t)n, &t->f[fi].culprit, others, nothers, EV_MATCH_NF_KIND);
	fill_top(m, list, n);
	score_victims(m, &t->f[fi], rs, 1);
}

static void
run_netmedic(const struct nm_model *nm, const struct truth *t, size_t fi, int w,
		struct mresult *m)
{
	struct ev_culprit list[MAX_CULPRITS], others[MAX_FAULTS];
	double ex[2 * MAX_FAULTS];
	size_t nothers;
	char err[256];
	int n;

	memset(m, 0, sizeof(*m));
	for (size_t k = 0; k < t->nf; k++) {
		ex[2 * k] = t->f[k].from_us;
		ex[2 * k + 1] = t->f[k].to_us;
	}
	n = nm_diagnose(nm, nm_window_us[w], ex, t->nf, t->f[fi].from_us, t->f[fi].to_us,
		list, MAX_CULPRITS, err, sizeof(err));
	if (n < 0) {
		snprintf(m->error, sizeof(m->error), "netmedic: %s", err);
		return;
	}
	others_of(t, fi, others, &nothers);
	m->ran = 1;
	m->rules = n;
	m->rank = ev_rank(list, (size_t)n, &t->f[fi].culprit, others, nothers, EV_MATCH_NF_KIND);
	fill_top(m, list, n);
}

/* Run one case in `work`; returns {"case", "topology", "faults": [...]} or
 * {"case", "error"}. */
static json_t *
run_case(const struct eopts *o, const struct ecase *c, const char *work, int only_fault)
{
	char rundir[PATH_MAX], err[512];
	struct truth t;
	json_t *res = json_object(), *faults = json_array();
	struct nm_model *nm = NULL;
	struct timespec t0, t1;
	double thr_rank;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	json_object_set_new(res, "case", json_string(c->name));
	if (c->recorded) {
		snprintf(rundir, sizeof(rundir), "%s", c->path);
	} else {
		snprintf(rundir, sizeof(rundir), "%s/run", work);
		if (ev_run_sim(&o->run, c->path, rundir, err, sizeof(err)) < 0) {
			json_object_set_new(res, "error", json_string(err));
			json_decref(faults);
			return res;
		}
	}
	if (load_truth(rundir, o, &t, err, sizeof(err)) < 0) {
		json_object_set_new(res, "error", json_string(err));
		json_decref(faults);
		truth_free(&t);
		return res;
	}
	json_object_set_new(res, "topology", json_string(t.topology));
	/* the traces once more, for NetMedic and the latency of normal operation */
	nm = nm_load(rundir, t.start_tsc, err, sizeof(err));
	if (!nm)
		json_object_set_new(res, "netmedic_error", json_string(err));
	thr_rank = o->rank_threshold_us > 0 ? o->rank_threshold_us : o->threshold_us;
	if (o->rank_threshold_us < 0 && nm) {
		double ex[2 * MAX_FAULTS], base;

		for (size_t k = 0; k < t.nf; k++) {
			ex[2 * k] = t.f[k].from_us;
			ex[2 * k + 1] = t.f[k].to_us;
		}
		base = nm_latency_quantile(nm, ex, t.nf, o->rank_quantile);
		if (base > 0) {
			json_object_set_new(res, "baseline_latency_us", json_real(base));
			if (base > thr_rank)
				thr_rank = base;
		}
	}
	json_object_set_new(res, "rank_threshold_us", json_real(thr_rank));
	for (size_t fi = 0; fi < t.nf; fi++) {
		struct fault *f = &t.f[fi];
		struct mresult mr[NMETHOD];
		struct relations rs = { 0 }, rsv = { 0 };
		json_t *fj = json_object(), *ms = json_object();
		int two = thr_rank > o->threshold_us + 1e-6;
		char ct[256];

		if (only_fault >= 0 && f->id != only_fault) {
			json_decref(fj);
			json_decref(ms);
			continue;
		}
		memset(mr, 0, sizeof(mr));
		/* The rules are ranked over the victims of the rank threshold
		 * (what is abnormal here); labelled victims are looked up in a
		 * run at the simulator's victim threshold, so that they are all
		 * diagnosed. One run does both when the two agree. */
		if (two) {
			run_variant(o, rundir, work, &t, fi, M_OURS, thr_rank, RUN_RANK | RUN_KEEP_REL,
				"", &mr[M_OURS], &rs);
			run_variant(o, rundir, work, &t, fi, M_OURS, o->threshold_us, RUN_VICTIMS,
				"-v", &mr[M_OURS], &rsv);
		} else {
			run_variant(o, rundir, work, &t, fi, M_OURS, thr_rank,
				RUN_RANK | RUN_VICTIMS | RUN_KEEP_REL, "", &mr[M_OURS], &rs);
		}
		if (!o->no_variants) {
			run_variant(o, rundir, work, &t, fi, M_RATES, thr_rank, RUN_RANK, "",
				&mr[M_RATES], NULL);
			run_variant(o, rundir, work, &t, fi, M_PAPER, thr_rank,
				two ? RUN_RANK : RUN_RANK | RUN_VICTIMS, "", &mr[M_PAPER], NULL);
			if (two)
				run_variant(o, rundir, work, &t, fi, M_PAPER, o->threshold_us,
					RUN_VICTIMS, "-v", &mr[M_PAPER], NULL);
			run_variant(o, rundir, work, &t, fi, M_EXCESS, thr_rank, RUN_RANK, "",
				&mr[M_EXCESS], NULL);
		}
		if (!o->no_baselines) {
			if (mr[M_OURS].ran) {
				run_local(&t, fi, &rs, &mr[M_LOCAL]);
				/* local-only per victim: where each labelled victim waited longest */
				if (two) {
					struct mresult lv = { 0 };

					score_victims(&lv, f, &rsv, 1);
					mr[M_LOCAL].vict_ok = lv.vict_ok;
					mr[M_LOCAL].vict_seen = lv.vict_seen;
					mr[M_LOCAL].vict_n = lv.vict_n;
				}
			}
			if (nm) {
				run_netmedic(nm, &t, fi, 0, &mr[M_NM1]);
				run_netmedic(nm, &t, fi, 1, &mr[M_NM10]);
			}
		}
		free(rs.r);
		free(rsv.r);
		culprit_text(&f->culprit, ct, sizeof(ct));
		json_object_set_new(fj, "case", json_string(c->name));
		json_object_set_new(fj, "fault", json_integer(f->id));
		json_object_set_new(fj, "kind", json_string(f->kind));
		json_object_set_new(fj, "topology", json_string(t.topology));
		json_object_set_new(fj, "overlap", json_boolean(t.nf > 1));
		json_object_set_new(fj, "truth", json_string(ct));
		json_object_set_new(fj, "start_us", json_real(f->start_us));
		json_object_set_new(fj, "end_us", json_real(f->end_us));
		json_object_set_new(fj, "from_us", json_real(f->from_us));
		json_object_set_new(fj, "to_us", json_real(f->to_us));
		json_object_set_new(fj, "labelled", json_boolean(f->injected &&
			(f->nv > 0 || c->recorded)));
		json_object_set_new(fj, "injected", json_boolean(f->injected));
		json_object_set_new(fj, "victims", json_integer((json_int_t)f->nv));
		json_object_set_new(fj, "dropped", json_integer((json_int_t)f->ndropped));
		json_object_set_new(fj, "victims_outside_window", json_integer((json_int_t)f->nstray));
		json_object_set_new(fj, "rank_threshold_us", json_real(thr_rank));
		for (int m = 0; m < NMETHOD; m++)
			if (mr[m].ran || mr[m].error[0])
				json_object_set_new(ms, method_name[m], mresult_json(&mr[m]));
		json_object_set_new(fj, "methods", ms);
		json_array_append_new(faults, fj);
	}
	nm_free(nm);
	truth_free(&t);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	json_object_set_new(res, "seconds", json_real((double)(t1.tv_sec - t0.tv_sec) +
		(double)(t1.tv_nsec - t0.tv_nsec) / 1e9));
	json_object_set_new(res, "faults", faults);
	return res;
}

/* ----------------------------------------------------------- the table */

struct acc {
	size_t cases, top1, top3, ranksum, vok, vn, vseen, errors;
	size_t top1_nk; /* top-1 on NF and kind only */
};

struct group {
	char name[48];
	size_t faults, noeffect;
	struct acc a[NMETHOD];
};

static struct group *
group_get(struct group *g, size_t *ng, const char *name)
{
	for (size_t i = 0; i < *ng; i++)
		if (!strcmp(g[i].name, name))
			return &g[i];
	memset(&g[*ng], 0, sizeof(g[0]));
	snprintf(g[*ng].name, sizeof(g[0].name), "%s", name);
	return &g[(*ng)++];
}

static void
acc_add(struct group *g, const json_t *fj)
{
	const json_t *ms = json_object_get(fj, "methods");
	int labelled = json_is_true(json_object_get(fj, "labelled"));

	if (!labelled) {
		g->noeffect++;
		return;
	}
	g->faults++;
	for (int m = 0; m < NMETHOD; m++) {
		const json_t *r = json_object_get(ms, method_name[m]);
		struct acc *a = &g->a[m];
		int rank, rules;

		if (!r)
			continue;
		a->cases++;
		if (json_object_get(r, "error")) {
			a->errors++;
			a->ranksum += 10;
			continue;
		}
		rank = (int)json_integer_value(json_object_get(r, "rank"));
		rules = (int)json_integer_value(json_object_get(r, "rules"));
		a->top1 += rank == 1;
		a->top1_nk += json_integer_value(json_object_get(r, "rank_nf_kind")) == 1;
		a->top3 += rank >= 1 && rank <= 3;
		/* a miss counts as one past the end of the list */
		a->ranksum += (size_t)(rank >= 1 ? rank : rules + 1);
		if (json_object_get(r, "victims")) {
			a->vok += (size_t)json_integer_value(json_object_get(r, "victims_correct"));
			a->vseen += (size_t)json_integer_value(json_object_get(r, "victims_diagnosed"));
			a->vn += (size_t)json_integer_value(json_object_get(r, "victims"));
		}
	}
}

static void
pct(char *buf, size_t len, size_t a, size_t b)
{
	if (!b)
		snprintf(buf, len, "%s", "-");
	else
		snprintf(buf, len, "%.1f", 100.0 * (double)a / (double)b);
}

static int
best_nm(const struct group *all)
{
	return all->a[M_NM10].top1 > all->a[M_NM1].top1 ? M_NM10 : M_NM1;
}

static void
print_table(FILE *out, const struct group *g, size_t ng, int nmw)
{
	fprintf(out, "\n%-16s %5s | %-30s | %-11s | %-17s | %-5s | %-17s | %-11s\n", "", "",
		"mscope (ours)", "conf. rates", "paper DAG", "excss", "local-only",
		method_name[nmw]);
	fprintf(out, "%-16s %5s | %5s %5s %5s %5s %6s | %5s %5s | %5s %5s %5s | %5s | %5s %5s %5s | %5s %5s\n",
		"kind/topology", "cases", "top1", "nf+k", "top3", "rank", "vict", "top1", "vict",
		"top1", "top3", "vict", "top1", "top1", "top3", "vict", "top1", "top3");
	for (size_t i = 0; i < ng; i++) {
		const struct group *x = &g[i];
		const struct acc *o = &x->a[M_OURS], *r = &x->a[M_RATES], *p = &x->a[M_PAPER];
		const struct acc *e = &x->a[M_EXCESS], *l = &x->a[M_LOCAL], *n = &x->a[nmw];
		char b[16][16], nk[16];

		if (!x->faults)
			continue;
		pct(nk, 16, o->top1_nk, o->cases);
		pct(b[0], 16, o->top1, o->cases);
		pct(b[1], 16, o->top3, o->cases);
		if (o->cases)
			snprintf(b[2], 16, "%.2f", (double)o->ranksum / (double)o->cases);
		else
			snprintf(b[2], 16, "-");
		pct(b[3], 16, o->vok, o->vn);
		pct(b[4], 16, r->top1, r->cases);
		pct(b[5], 16, r->vok, r->vn);
		pct(b[6], 16, p->top1, p->cases);
		pct(b[7], 16, p->top3, p->cases);
		pct(b[8], 16, p->vok, p->vn);
		pct(b[9], 16, e->top1, e->cases);
		pct(b[10], 16, l->top1, l->cases);
		pct(b[11], 16, l->top3, l->cases);
		pct(b[12], 16, l->vok, l->vn);
		pct(b[13], 16, n->top1, n->cases);
		pct(b[14], 16, n->top3, n->cases);
		fprintf(out, "%-16s %5zu | %5s %5s %5s %5s %6s | %5s %5s | %5s %5s %5s | %5s | %5s %5s %5s | %5s %5s\n",
			x->name, x->faults, b[0], nk, b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8],
			b[9], b[10], b[11], b[12], b[13], b[14]);
	}
	fprintf(out, "top1/top3: %% of faults whose true culprit is ranked 1st / in the first 3"
		" (each culprit counted once;\n  other faults' culprits in the same window skipped);"
		" nf+k: top-1 on NF and kind only, not the flow;\n "
		" rank: mean rank (a miss = list length + 1);\n  vict: %% of labelled victims whose"
		" own top culprit is the fault's (NF and kind).\n  conf. rates: peak rates from"
		" truth.json instead of estimated; excss: source share by flows' excess rate;\n"
		"  local-only and NetMedic are scored on NF and kind only (they cannot name flows).\n");
}

static json_t *
groups_json(const struct group *g, size_t ng)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < ng; i++) {
		json_t *o = json_object(), *ms = json_object();

		json_object_set_new(o, "group", json_string(g[i].name));
		json_object_set_new(o, "faults", json_integer((json_int_t)g[i].faults));
		json_object_set_new(o, "no_effect", json_integer((json_int_t)g[i].noeffect));
		for (int m = 0; m < NMETHOD; m++) {
			const struct acc *a = &g[i].a[m];
			json_t *x;

			if (!a->cases)
				continue;
			x = json_object();
			json_object_set_new(x, "cases", json_integer((json_int_t)a->cases));
			json_object_set_new(x, "errors", json_integer((json_int_t)a->errors));
			json_object_set_new(x, "top1", json_real((double)a->top1 / (double)a->cases));
			json_object_set_new(x, "top3", json_real((double)a->top3 / (double)a->cases));
			json_object_set_new(x, "top1_nf_kind",
				json_real((double)a->top1_nk / (double)a->cases));
			json_object_set_new(x, "mean_rank", json_real((double)a->ranksum / (double)a->cases));
			if (a->vn) {
				json_object_set_new(x, "victim_accuracy",
					json_real((double)a->vok / (double)a->vn));
				json_object_set_new(x, "victim_coverage",
					json_real((double)a->vseen / (double)a->vn));
			}
			json_object_set_new(ms, method_name[m], x);
		}
		json_object_set_new(o, "methods", ms);
		json_array_append_new(arr, o);
	}
	return arr;
}

static const char *const kinds[] = { "burst", "interrupt", "bug", "slow" };

static size_t
build_groups(const json_t *results, struct group *g)
{
	size_t ng = 0, i, k;
	json_t *c, *fj;

	/* fixed order: per kind (chains, DAGs, all), overlapping, total */
	for (size_t q = 0; q < 4; q++) {
		char n[48];

		snprintf(n, sizeof(n), "%s/chain", kinds[q]);
		group_get(g, &ng, n);
		snprintf(n, sizeof(n), "%s/dag", kinds[q]);
		group_get(g, &ng, n);
		group_get(g, &ng, kinds[q]);
	}
	group_get(g, &ng, "overlapping");
	group_get(g, &ng, "other kinds");
	group_get(g, &ng, "all");
	json_array_foreach(results, i, c) {
		json_array_foreach(json_object_get(c, "faults"), k, fj) {
			const char *kind = json_string_value(json_object_get(fj, "kind"));
			const char *topo = json_string_value(json_object_get(fj, "topology"));
			int known = 0;
			char n[48];

			for (size_t q = 0; q < 4; q++)
				known |= kind && !strcmp(kind, kinds[q]);
			if (known) {
				snprintf(n, sizeof(n), "%s/%s", kind,
					topo && !strncmp(topo, "chain", 5) ? "chain" : "dag");
				acc_add(group_get(g, &ng, n), fj);
				acc_add(group_get(g, &ng, kind), fj);
			} else {
				acc_add(group_get(g, &ng, "other kinds"), fj);
			}
			if (json_is_true(json_object_get(fj, "overlap")))
				acc_add(group_get(g, &ng, "overlapping"), fj);
			acc_add(group_get(g, &ng, "all"), fj);
		}
	}
	return ng;
}

/* ----------------------------------------------------------- explain */

static void
explain_case(const struct ecase *c, const char *work, const json_t *res, int only_fault)
{
	char path[PATH_MAX], rundir[PATH_MAX];
	json_error_t je;
	json_t *truth, *fj;
	size_t i;

	if (c->recorded)
		snprintf(rundir, sizeof(rundir), "%s", c->path);
	else
		snprintf(rundir, sizeof(rundir), "%s/run", work);
	printf("case %s (%s)\nrun directory: %s\nanalyses: %s/f<ID>-<method>.json\n", c->name,
		c->path, rundir, work);
	if (json_object_get(res, "error")) {
		printf("error: %s\n", json_string_value(json_object_get(res, "error")));
		return;
	}
	snprintf(path, sizeof(path), "%s/truth.json", rundir);
	truth = json_load_file(path, 0, &je);
	json_array_foreach(json_object_get(res, "faults"), i, fj) {
		int id = (int)json_integer_value(json_object_get(fj, "fault"));
		const json_t *ms = json_object_get(fj, "methods");
		json_t *an, *tf = NULL, *x;
		const char *mk;
		size_t k;

		if (only_fault >= 0 && id != only_fault)
			continue;
		json_array_foreach(json_object_get(truth, "faults"), k, x)
			if (json_integer_value(json_object_get(x, "id")) == id)
				tf = x;
		printf("\n== fault %d: %s  truth %s\n", id,
			json_string_value(json_object_get(fj, "kind")),
			json_string_value(json_object_get(fj, "truth")));
		if (tf) {
			char *s = json_dumps(tf, JSON_COMPACT);

			printf("   %s\n", s ? s : "");
			free(s);
		}
		printf("   window analysed: %.0f .. %.0f us; labelled victims %lld (%lld dropped, %lld"
			" outside the window)\n   victims ranked: latency above %.1f us (normal-operation quantile"
			" %.1f us); victims scored: above the --threshold\n",
			json_number_value(json_object_get(fj, "from_us")),
			json_number_value(json_object_get(fj, "to_us")),
			json_integer_value(json_object_get(fj, "victims")),
			json_integer_value(json_object_get(fj, "dropped")),
			json_integer_value(json_object_get(fj, "victims_outside_window")),
			json_number_value(json_object_get(res, "rank_threshold_us")),
			json_number_value(json_object_get(res, "baseline_latency_us")));
		json_object_foreach((json_t *)ms, mk, x) {
			json_t *t;
			size_t q;

			if (json_object_get(x, "error")) {
				printf("   %-8s error: %s\n", mk,
					json_string_value(json_object_get(x, "error")));
				continue;
			}
			printf("   %-8s rank %lld of %lld", mk,
				json_integer_value(json_object_get(x, "rank")),
				json_integer_value(json_object_get(x, "rules")));
			if (json_object_get(x, "victims"))
				printf("; victims correct %lld, diagnosed %lld of %lld",
					json_integer_value(json_object_get(x, "victims_correct")),
					json_integer_value(json_object_get(x, "victims_diagnosed")),
					json_integer_value(json_object_get(x, "victims")));
			printf("\n");
			json_array_foreach(json_object_get(x, "top"), q, t)
				printf("            %zu. %s\n", q + 1, json_string_value(t));
		}
		/* ours in full: the rules and the node table */
		snprintf(path, sizeof(path), "%s/f%d-ours.json", work, id);
		an = json_load_file(path, 0, &je);
		if (an) {
			json_t *cu, *nd;
			size_t q;

			printf("   -- ours: culprits (first 10)\n");
			json_array_foreach(json_object_get(an, "culprits"), q, cu) {
				char *s;

				if (q == 10)
					break;
				s = json_dumps(cu, JSON_COMPACT | JSON_REAL_PRECISION(4));
				printf("   %s\n", s ? s : "");
				free(s);
			}
			printf("   -- ours: nodes (peak rate estimated vs configured)\n");
			json_array_foreach(json_object_get(an, "nodes"), q, nd) {
				const char *nf = json_string_value(json_object_get(nd, "nf"));
				double conf = 0;
				json_t *tn;
				size_t r;

				json_array_foreach(json_object_get(truth, "nfs"), r, tn)
					if (nf && !strcmp(nf, json_string_value(json_object_get(tn, "name")) ?
							json_string_value(json_object_get(tn, "name")) : ""))
						conf = num(tn, "rate_mpps", 0);
				if (json_is_true(json_object_get(nd, "is_source")) ||
				    !strcmp(json_string_value(json_object_get(nd, "role")) ?
					json_string_value(json_object_get(nd, "role")) : "", "source"))
					continue;
				printf("   %-14s peak %8.3f Mpps (%s), configured %8.3f; packets %lld,"
					" victims %lld, drops %lld, wait p99 %.1f us, qlen max %lld\n",
					json_string_value(json_object_get(nd, "id")) ?
					json_string_value(json_object_get(nd, "id")) : "?",
					num(nd, "peak_rate_mpps", 0),
					json_string_value(json_object_get(nd, "peak_rate_from")) ?
					json_string_value(json_object_get(nd, "peak_rate_from")) : "?",
					conf, json_integer_value(json_object_get(nd, "packets")),
					json_integer_value(json_object_get(nd, "victims")),
					json_integer_value(json_object_get(nd, "drops")),
					num(nd, "wait_p99_us", 0),
					json_integer_value(json_object_get(nd, "qlen_max")));
			}
			json_decref(an);
		}
		/* where the labelled victims queued, and their own top culprits */
		snprintf(path, sizeof(path), "%s/f%d-ours-v.rel.jsonl", work, id);
		if (access(path, R_OK) != 0)
			snprintf(path, sizeof(path), "%s/f%d-ours.rel.jsonl", work, id);
		{
			struct relations rs;
			char err[256];
			struct truth t;
			struct eopts o = { 0 };

			if (load_relations(path, &rs, err, sizeof(err)) == 0 &&
			    load_truth(rundir, &o, &t, err, sizeof(err)) == 0) {
				char names[64][96];
				size_t cnt[64] = { 0 }, cntq[64] = { 0 }, nn = 0, missing = 0;

				for (size_t fi = 0; fi < t.nf; fi++) {
					if (t.f[fi].id != id)
						continue;
					for (size_t j = 0; j < t.f[fi].nv; j++) {
						const struct relation *r = find_relation(&rs,
							t.f[fi].v[j].wire, t.f[fi].v[j].tsc);
						char key[96];
						size_t z;

						if (!r) {
							missing++;
							continue;
						}
						for (int pass = 0; pass < 2; pass++) {
							if (pass == 0)
								snprintf(key, sizeof(key), "waited longest at %s",
									r->local_nf[0] ? r->local_nf : "?");
							else if (r->has_top)
								culprit_text(&r->top, key, sizeof(key));
							else
								snprintf(key, sizeof(key), "(no culprit)");
							for (z = 0; z < nn && strcmp(names[z], key); z++)
								;
							if (z == nn && nn < 64)
								snprintf(names[nn++], sizeof(names[0]), "%s", key);
							if (z < nn)
								(pass ? cnt : cntq)[z]++;
						}
					}
				}
				printf("   -- labelled victims: %zu not diagnosed by ours\n", missing);
				for (size_t z = 0; z < nn; z++)
					if (cntq[z])
						printf("      %6zu %s\n", cntq[z], names[z]);
				printf("   -- their own top culprit (ours)\n");
				for (size_t z = 0; z < nn; z++)
					if (cnt[z])
						printf("      %6zu %s\n", cnt[z], names[z]);
				truth_free(&t);
				free(rs.r);
			}
		}
	}
	json_decref(truth);
}

/* ----------------------------------------------------------- main */

static int
parse_us(const char *s, double *v)
{
	char *end;

	errno = 0;
	*v = strtod(s, &end);
	if (errno || end == s || *v < 0)
		return -1;
	if (!strcmp(end, "ms"))
		*v *= 1000;
	else if (!strcmp(end, "s"))
		*v *= 1e6;
	else if (*end && strcmp(end, "us"))
		return -1;
	return 0;
}

static int
write_result(const char *path, json_t *res)
{
	return json_dump_file(res, path, JSON_COMPACT);
}

int
cmd_eval(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "explain", required_argument, NULL, 'e' },
		{ "help", no_argument, NULL, 'h' },
		{ "jobs", required_argument, NULL, 'j' },
		{ "json", required_argument, NULL, 'J' },
		{ "keep", required_argument, NULL, 'k' },
		{ "no-baselines", no_argument, NULL, 'B' },
		{ "no-variants", no_argument, NULL, 'V' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "rank-threshold", required_argument, NULL, 'R' },
		{ "subprocess", no_argument, NULL, 'S' },
		{ "tail", required_argument, NULL, 't' },
		{ "threshold", required_argument, NULL, 'T' },
		{ NULL, 0, NULL, 0 },
	};
	struct eopts o = { .jobs = 2, .threshold_us = 50, .rank_threshold_us = 0,
		.rank_quantile = 0.99 };
	struct ecase *cases = NULL;
	size_t ncases = 0, done = 0, next = 0, running = 0;
	char self[PATH_MAX], tmproot[PATH_MAX];
	pid_t *pids = NULL;
	json_t *results = NULL;
	int only_fault = -1, rc = 0, c;
	struct timespec t0, t1;

	while ((c = getopt_long(argc, argv, "hj:q", lopts, NULL)) != -1) {
		switch (c) {
		case 'e': o.explain = optarg; break;
		case 'h': usage(stdout); return 0;
		case 'j':
			o.jobs = atoi(optarg);
			if (o.jobs < 1 || o.jobs > 64) {
				fprintf(stderr, "mscope eval: --jobs: must be 1..64\n");
				return 2;
			}
			break;
		case 'J': o.json_out = optarg; break;
		case 'k': o.keep = optarg; break;
		case 'B': o.no_baselines = 1; break;
		case 'V': o.no_variants = 1; break;
		case 'q': o.quiet = 1; break;
		case 'R':
			if (!strcmp(optarg, "auto"))
				o.rank_threshold_us = -1;
			else if (!strncmp(optarg, "auto:", 5)) {
				o.rank_threshold_us = -1;
				o.rank_quantile = atof(optarg + 5);
				if (o.rank_quantile <= 0 || o.rank_quantile > 1) {
					fprintf(stderr, "mscope eval: --rank-threshold auto:Q: Q in (0, 1]\n");
					return 2;
				}
			}
			else if (!strcmp(optarg, "same"))
				o.rank_threshold_us = 0;
			else if (parse_us(optarg, &o.rank_threshold_us) < 0 || o.rank_threshold_us <= 0) {
				fprintf(stderr, "mscope eval: --rank-threshold: auto, same or a duration\n");
				return 2;
			}
			break;
		case 'S': o.run.subprocess = 1; break;
		case 't':
			if (parse_us(optarg, &o.tail_us) < 0) {
				fprintf(stderr, "mscope eval: --tail: bad duration '%s'\n", optarg);
				return 2;
			}
			break;
		case 'T':
			if (parse_us(optarg, &o.threshold_us) < 0) {
				fprintf(stderr, "mscope eval: --threshold: bad duration '%s'\n", optarg);
				return 2;
			}
			break;
		default: usage(stderr); return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	{
		ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

		if (n <= 0) {
			fprintf(stderr, "mscope eval: cannot find the mscope program\n");
			return 1;
		}
		self[n] = '\0';
		o.run.self = self;
	}
	if (collect(argv + optind, argc - optind, &cases, &ncases))
		return 1;
	if (o.explain) {
		char name[256], *hash;
		size_t k;

		snprintf(name, sizeof(name), "%s", o.explain);
		hash = strchr(name, '#');
		if (hash) {
			*hash = '\0';
			only_fault = atoi(hash + 1);
		}
		for (k = 0; k < ncases && strcmp(cases[k].name, name); k++)
			;
		if (k == ncases) {
			fprintf(stderr, "mscope eval: --explain: no case named '%s' among the inputs\n",
				name);
			return 1;
		}
		for (size_t i = 0; i < ncases; i++)
			if (i != k) {
				free(cases[i].path);
				free(cases[i].name);
			}
		cases[0] = cases[k];
		ncases = 1;
	}
	if (o.keep) {
		if (mkdir_p(o.keep) < 0) {
			fprintf(stderr, "mscope eval: %s: %s\n", o.keep, strerror(errno));
			return 1;
		}
		snprintf(tmproot, sizeof(tmproot), "%s", o.keep);
	} else {
		const char *tmp = getenv("TMPDIR");

		snprintf(tmproot, sizeof(tmproot), "%s/mscope-eval-XXXXXX", tmp && *tmp ? tmp : "/tmp");
		if (!mkdtemp(tmproot)) {
			fprintf(stderr, "mscope eval: %s: %s\n", tmproot, strerror(errno));
			return 1;
		}
	}
	if (!o.quiet && !o.explain)
		fprintf(stderr, "mscope eval: %zu cases, %d jobs, simulator %s, analyzer %s\n",
			ncases, o.jobs,
			o.run.subprocess ? "subprocess" : "in-process",
			o.run.subprocess ? "subprocess" : "in-process");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	results = json_array();
	pids = calloc(ncases, sizeof(*pids));
	if (!results || !pids) {
		fprintf(stderr, "mscope eval: out of memory\n");
		return 1;
	}
	/* one child per case: cases are independent, and a crash in one
	 * (simulator or analyzer) is reported, not fatal */
	while (done < ncases) {
		if (next < ncases && running < (size_t)o.jobs) {
			char work[PATH_MAX];
			pid_t pid;

			snprintf(work, sizeof(work), "%s/%s", tmproot, cases[next].name);
			rm_rf(work);
			if (mkdir_p(work) < 0) {
				fprintf(stderr, "mscope eval: %s: %s\n", work, strerror(errno));
				rc = 1;
				break;
			}
			fflush(NULL);
			pid = fork();
			if (pid < 0) {
				fprintf(stderr, "mscope eval: fork: %s\n", strerror(errno));
				rc = 1;
				break;
			}
			if (pid == 0) {
				char rp[PATH_MAX];
				json_t *res = run_case(&o, &cases[next], work, only_fault);

				snprintf(rp, sizeof(rp), "%s/result.json", work);
				_exit(write_result(rp, res) == 0 ? 0 : 1);
			}
			pids[next++] = pid;
			running++;
			continue;
		}
		{
			int st;
			pid_t pid = wait(&st);
			size_t k;
			char work[PATH_MAX], rp[PATH_MAX];
			json_error_t je;
			json_t *res;

			if (pid < 0) {
				if (errno == EINTR)
					continue;
				break;
			}
			for (k = 0; k < next && pids[k] != pid; k++)
				;
			if (k == next)
				continue;
			running--;
			done++;
			snprintf(work, sizeof(work), "%s/%s", tmproot, cases[k].name);
			snprintf(rp, sizeof(rp), "%s/result.json", work);
			res = json_load_file(rp, 0, &je);
			if (!res) {
				res = json_object();
				json_object_set_new(res, "case", json_string(cases[k].name));
				json_object_set_new(res, "error", json_string(WIFSIGNALED(st) ?
					"evaluation crashed" : "no result"));
			}
			json_object_set_new(res, "index", json_integer((json_int_t)k));
			if (!o.quiet && !o.explain) {
				const json_t *e = json_object_get(res, "error");
				json_t *fj;
				size_t q;

				fprintf(stderr, "[%zu/%zu] %-40s", done, ncases, cases[k].name);
				if (e)
					fprintf(stderr, " ERROR %s", json_string_value(e));
				json_array_foreach(json_object_get(res, "faults"), q, fj) {
					const json_t *r = json_object_get(json_object_get(fj, "methods"),
						"ours");

					fprintf(stderr, " %s:%s", json_string_value(json_object_get(fj, "kind")),
						!r || json_object_get(r, "error") ? "err" :
						json_integer_value(json_object_get(r, "rank")) == 1 ? "ok" :
						"MISS");
				}
				fprintf(stderr, "\n");
			}
			if (o.explain)
				explain_case(&cases[k], work, res, only_fault);
			else if (!o.keep)
				rm_rf(work);
			json_array_append_new(results, res);
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (!o.keep && !o.explain)
		rmdir(tmproot);
	if (o.explain) {
		printf("\n(kept in %s)\n", tmproot);
	} else {
		struct group g[32];
		size_t ng = build_groups(results, g);
		const struct group *all = &g[ng - 1];
		int nmw = best_nm(all);
		size_t errors = 0, k;
		json_t *x;

		for (size_t i = 0; i < ng; i++)
			if (!strcmp(g[i].name, "all"))
				all = &g[i];
		nmw = best_nm(all);
		json_array_foreach(results, k, x)
			if (json_object_get(x, "error")) {
				errors++;
				fprintf(stderr, "mscope eval: %s: %s\n",
					json_string_value(json_object_get(x, "case")),
					json_string_value(json_object_get(x, "error")));
			}
		printf("mscope eval: %zu cases (%zu failed to run), %zu faults scored, %zu without"
			" labelled victims; %.1f s\n", ncases, errors, all->faults, all->noeffect,
			(double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
		print_table(stdout, g, ng, nmw);
		if (o.json_out) {
			json_t *doc = json_object(), *faults = json_array(), *fj;
			size_t q;

			json_array_foreach(results, k, x) {
				json_array_foreach(json_object_get(x, "faults"), q, fj)
					json_array_append(faults, fj);
				if (json_object_get(x, "error")) {
					json_t *e = json_object();

					json_object_set(e, "case", json_object_get(x, "case"));
					json_object_set(e, "error", json_object_get(x, "error"));
					json_array_append_new(faults, e);
				}
			}
			json_object_set_new(doc, "cases", json_integer((json_int_t)ncases));
			json_object_set_new(doc, "case_errors", json_integer((json_int_t)errors));
			json_object_set_new(doc, "netmedic_reported", json_string(method_name[nmw]));
			json_object_set_new(doc, "threshold_us", json_real(o.threshold_us));
			json_object_set_new(doc, "groups", groups_json(g, ng));
			json_object_set_new(doc, "faults", faults);
			if (json_dump_file(doc, o.json_out, JSON_INDENT(1) | JSON_REAL_PRECISION(6)) < 0) {
				fprintf(stderr, "mscope eval: %s: cannot write\n", o.json_out);
				rc = 1;
			}
			json_decref(doc);
		}
		if (errors && !rc)
			rc = 1;
	}
	json_decref(results);
	for (size_t i = 0; i < ncases; i++) {
		free(cases[i].path);
		free(cases[i].name);
	}
	free(cases);
	free(pids);
	return rc;
}
