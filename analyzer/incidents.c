/* SPDX-License-Identifier: BSD-3-Clause */
/* Incidents: the files of a recording grouped into node streams, scanned in
 * parallel (incidents_scan.c), then baselines and incidents (detection) and
 * the incidents document. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "an_internal.h"
#include "incidents_private.h"

void
mscope_inc_opts_init(struct mscope_inc_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->bin_us = 1000;
	o->to_ns = -1;
	o->k_mad = 8;
	o->factor = 3;
	o->min_excess_us = 20;
	o->gap_us = 10000;
	o->min_severity = 2;
	o->max_incidents = 100;
	o->margin_us = 20000;
}

double
inc_now_s(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A node's files in segment order (header field; files without it are
 * segment 0), then by name: `stem.000009.mst` before `stem.000010.mst`. */
struct seg_path {
	uint32_t segment;
	char *path;
};

static int
cmp_seg(const void *a, const void *b)
{
	const struct seg_path *x = a, *y = b;
	size_t lx = strlen(x->path), ly = strlen(y->path);

	if (x->segment != y->segment)
		return x->segment < y->segment ? -1 : 1;
	return lx != ly ? (lx < ly ? -1 : 1) : strcmp(x->path, y->path);
}

static int
sort_segments(struct inc_node *nd, const uint32_t *seg)
{
	struct seg_path *v = malloc(nd->npaths * sizeof(*v));

	if (v == NULL)
		return -1;
	for (size_t i = 0; i < nd->npaths; i++)
		v[i] = (struct seg_path){ seg[i], nd->paths[i] };
	qsort(v, nd->npaths, sizeof(*v), cmp_seg);
	for (size_t i = 0; i < nd->npaths; i++)
		nd->paths[i] = v[i].path;
	free(v);
	return 0;
}

static int
same_stream(const struct mscope_trace_header *a, const struct mscope_trace_header *b)
{
	return a->role == b->role && a->port == b->port && a->queue == b->queue &&
		a->pid == b->pid && !strcmp(a->nf_name, b->nf_name) &&
		!strcmp(a->run_id, b->run_id) && !strcmp(a->host, b->host);
}

/* First record time of a file (0 when it has none). */
static int
first_tsc(const char *path, uint64_t *t, struct mscope_an_error *err)
{
	struct mscope_trace_error te;
	struct mscope_trace_reader *r = mscope_reader_open(path, &te);
	struct mscope_record rec;
	int rc;

	*t = 0;
	if (r == NULL) {
		an_err(err, "%s: offset %llu: %s", te.file, (unsigned long long)te.offset, te.text);
		return -1;
	}
	while ((rc = mscope_reader_next(r, &rec, &te)) == 1) {
		if (rec.type == MSCOPE_REC_RX || rec.type == MSCOPE_REC_TX ||
				rec.type == MSCOPE_REC_DROP) {
			*t = rec.type == MSCOPE_REC_RX ? rec.u.rx.tsc : rec.type == MSCOPE_REC_TX ?
				rec.u.tx.tsc : rec.u.drop.tsc;
			break;
		}
	}
	mscope_reader_close(r);
	(void)rc;   /* a damaged first frame: the scan says so */
	return 0;
}

static int
add_file(struct mscope_inc_scan *s, const char *path, const struct mscope_trace_header *h,
		uint64_t size, struct mscope_an_error *err)
{
	struct inc_node *nd = NULL;
	uint32_t *seg;
	char **p;

	for (size_t i = 0; i < s->nnodes; i++)
		if (same_stream(&s->nodes[i].hdr, h)) {
			nd = &s->nodes[i];
			break;
		}
	if (nd == NULL) {
		struct inc_node *q = realloc(s->nodes, (s->nnodes + 1) * sizeof(*q));
		if (q == NULL)
			goto oom;
		s->nodes = q;
		nd = &s->nodes[s->nnodes++];
		memset(nd, 0, sizeof(*nd));
		nd->hdr = *h;
		nd->is_source = h->role == MSCOPE_ROLE_SOURCE;
		nd->hz = (double)h->tsc_hz;
		if (nd->is_source)
			snprintf(nd->id, sizeof(nd->id), "%s", h->nf_name[0] ? h->nf_name : "?");
		else
			snprintf(nd->id, sizeof(nd->id), "%s:p%uq%u", h->nf_name[0] ? h->nf_name : "?",
				h->port, h->queue);
	}
	p = realloc(nd->paths, (nd->npaths + 1) * sizeof(*p));
	if (p == NULL)
		goto oom;
	nd->paths = p;
	seg = realloc(nd->segs, (nd->npaths + 1) * sizeof(*seg));
	if (seg == NULL)
		goto oom;
	nd->segs = seg;
	nd->segs[nd->npaths] = h->segment;
	nd->paths[nd->npaths] = strdup(path);
	if (nd->paths[nd->npaths] == NULL)
		goto oom;
	nd->npaths++;
	nd->bytes += size;
	s->nfiles++;
	return 0;
oom:
	an_err(err, "out of memory");
	return -1;
}

/* Every *.mst of dir, grouped into node streams. */
static int
list_nodes(struct mscope_inc_scan *s, const char *dir, struct mscope_an_error *err)
{
	DIR *dp = opendir(dir);
	struct dirent *de;
	char run[64] = "";
	int any = 0, rc = -1;

	if (dp == NULL) {
		an_err(err, "%s: %s", dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(dp)) != NULL) {
		size_t l = strlen(de->d_name);
		char path[4200];
		struct stat st;
		struct mscope_trace_error te;
		struct mscope_trace_reader *r;
		struct mscope_trace_header h;

		if (l < 5 || strcmp(de->d_name + l - 4, ".mst"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (stat(path, &st) || !S_ISREG(st.st_mode))
			continue;
		any = 1;
		r = mscope_reader_open(path, &te);
		if (r == NULL) {
			an_err(err, "%s: offset %llu: %s", te.file, (unsigned long long)te.offset,
				te.text);
			goto out;
		}
		h = *mscope_reader_header(r);
		mscope_reader_close(r);
		h.nf_name[sizeof(h.nf_name) - 1] = h.run_id[sizeof(h.run_id) - 1] = '\0';
		h.host[sizeof(h.host) - 1] = '\0';
		if (h.tsc_hz == 0 || h.tsc_hz > 100000000000ULL) {
			an_err(err, "%s: header field tsc_hz is %llu", path,
				(unsigned long long)h.tsc_hz);
			goto out;
		}
		if (h.role != MSCOPE_ROLE_RXQ && h.role != MSCOPE_ROLE_SOURCE) {
			an_err(err, "%s: header field role is %u (neither rx queue nor source)", path,
				h.role);
			goto out;
		}
		if (s->opts.run_id && h.run_id[0] && strcmp(s->opts.run_id, h.run_id))
			continue;
		if (!s->opts.run_id && h.run_id[0]) {
			if (run[0] && strcmp(run, h.run_id)) {
				an_err(err, "%s: traces of different runs mixed ('%s', '%s'); "
					"choose one with --run", dir, run, h.run_id);
				goto out;
			}
			snprintf(run, sizeof(run), "%s", h.run_id);
		}
		if (add_file(s, path, &h, (uint64_t)st.st_size, err))
			goto out;
	}
	if (!any) {
		an_err(err, "%s: no trace files (*.mst)", dir);
		goto out;
	}
	if (s->nnodes == 0) {
		an_err(err, "%s: no trace files of run '%s'", dir, s->opts.run_id);
		goto out;
	}
	for (size_t i = 0; i < s->nnodes; i++) {
		if (sort_segments(&s->nodes[i], s->nodes[i].segs)) {
			an_err(err, "out of memory");
			goto out;
		}
	}
	rc = 0;
out:
	closedir(dp);
	return rc;
}

static int
cmp_node(const void *a, const void *b)
{
	const struct inc_node *x = a, *y = b;

	int c;

	if (x->is_source != y->is_source)
		return x->is_source ? -1 : 1;
	if ((c = strcmp(x->id, y->id)) != 0)
		return c;
	/* one NF's sources share a name: the same order whatever readdir gives */
	if (x->hdr.port != y->hdr.port)
		return x->hdr.port < y->hdr.port ? -1 : 1;
	if (x->hdr.queue != y->hdr.queue)
		return x->hdr.queue < y->hdr.queue ? -1 : 1;
	return x->hdr.pid < y->hdr.pid ? -1 : x->hdr.pid > y->hdr.pid;
}

/* Node ids as the analyzer gives them (analyzer/load.c node_ids): the
 * second source of a name is nf:srcpPqQ, then nf:srcpPqQ-PID; beyond that
 * it is one node recorded twice, an error. */
static int
node_ids(struct mscope_inc_scan *s, struct mscope_an_error *err)
{
	for (size_t i = 0; i < s->nnodes; i++) {
		struct inc_node *nd = &s->nodes[i];
		const char *nf = nd->hdr.nf_name[0] ? nd->hdr.nf_name : "?";

		for (int attempt = 0;; attempt++) {
			size_t j;
			for (j = 0; j < i; j++)
				if (!strcmp(s->nodes[j].id, nd->id))
					break;
			if (j == i)
				break;
			if (!nd->is_source || attempt == 2) {
				an_err(err, "two traces for node %s: %s and %s", nd->id,
					s->nodes[j].paths[0], nd->paths[0]);
				return -1;
			}
			if (attempt == 0)
				snprintf(nd->id, sizeof(nd->id), "%s:srcp%uq%u", nf,
					nd->hdr.port, nd->hdr.queue);
			else
				snprintf(nd->id, sizeof(nd->id), "%s:srcp%uq%u-%u", nf,
					nd->hdr.port, nd->hdr.queue, nd->hdr.pid);
		}
	}
	return 0;
}

struct pool {
	struct mscope_inc_scan *s;
	int (*fn)(void *ctx, struct inc_node *nd);
	void *ctx;
	size_t next, done;
	pthread_mutex_t mu;
};

static void *
worker(void *arg)
{
	struct pool *p = arg;

	for (;;) {
		size_t i;

		pthread_mutex_lock(&p->mu);
		i = p->next++;
		pthread_mutex_unlock(&p->mu);
		if (i >= p->s->nnodes)
			break;
		p->fn(p->ctx, &p->s->nodes[i]);
		pthread_mutex_lock(&p->mu);
		p->done++;
		pthread_mutex_unlock(&p->mu);
	}
	return NULL;
}

int
inc_for_nodes(struct mscope_inc_scan *s, int (*fn)(void *ctx, struct inc_node *nd),
		void *ctx, void (*tick)(struct mscope_inc_scan *s), struct mscope_an_error *err)
{
	struct pool p = { .s = s, .fn = fn, .ctx = ctx };
	pthread_t th[16];
	int nth = s->threads, started = 0;

	for (size_t i = 0; i < s->nnodes; i++)
		s->nodes[i].err[0] = '\0';
	pthread_mutex_init(&p.mu, NULL);
	if ((size_t)nth > s->nnodes)
		nth = (int)s->nnodes;
	for (int i = 1; i < nth; i++)
		if (pthread_create(&th[started], NULL, worker, &p) == 0)
			started++;
	if (tick && started) {
		/* this thread reports; the workers work */
		for (;;) {
			struct timespec ts = { 0, 200000000 };
			size_t d;

			pthread_mutex_lock(&p.mu);
			d = p.done;
			pthread_mutex_unlock(&p.mu);
			if (d >= s->nnodes)
				break;
			tick(s);
			nanosleep(&ts, NULL);
		}
	} else {
		worker(&p);
	}
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	pthread_mutex_destroy(&p.mu);
	if (tick)
		tick(s);
	for (size_t i = 0; i < s->nnodes; i++)
		if (s->nodes[i].err[0]) {
			an_err(err, "%s", s->nodes[i].err);
			return -1;
		}
	return 0;
}

static void
report_progress(struct mscope_inc_scan *s)
{
	uint64_t done = 0, total = 0;

	for (size_t i = 0; i < s->nnodes; i++) {
		done += __atomic_load_n(&s->nodes[i].bytes_done, __ATOMIC_RELAXED);
		total += s->nodes[i].is_source ? 0 : s->nodes[i].bytes;
	}
	s->opts.progress(s->opts.progress_ctx, done, total);
}

static int
run_scan(struct mscope_inc_scan *s, struct mscope_an_error *err)
{
	double c0 = inc_now_s(CLOCK_PROCESS_CPUTIME_ID), w0 = inc_now_s(CLOCK_MONOTONIC);
	int rc = inc_for_nodes(s, inc_scan_node, s, s->opts.progress ? report_progress : NULL,
		err);

	s->cpu_s = inc_now_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
	s->wall_s = inc_now_s(CLOCK_MONOTONIC) - w0;
	if (rc)
		return -1;
	/* one bin width for all nodes */
	s->shift = 0;
	for (size_t i = 0; i < s->nnodes; i++)
		if (s->nodes[i].shift > s->shift)
			s->shift = s->nodes[i].shift;
	for (size_t i = 0; i < s->nnodes; i++)
		while (s->nodes[i].bins && s->nodes[i].shift < s->shift)
			inc_halve(&s->nodes[i]);
	return 0;
}

struct mscope_inc_scan *
inc_scan_open(const char *dir, const struct mscope_inc_opts *o, struct mscope_an_error *err)
{
	struct mscope_inc_scan *s = calloc(1, sizeof(*s));
	uint64_t origin = UINT64_MAX;

	if (s == NULL) {
		an_err(err, "out of memory");
		return NULL;
	}
	if (o)
		s->opts = *o;
	else
		mscope_inc_opts_init(&s->opts);
	if (!(s->opts.bin_us >= 1)) {
		an_err(err, "bin width %g us is below 1 us", s->opts.bin_us);
		goto fail;
	}
	snprintf(s->dir, sizeof(s->dir), "%s", dir);
	s->threads = s->opts.threads > 0 ? (s->opts.threads > 16 ? 16 : s->opts.threads) : 2;
	if (list_nodes(s, dir, err))
		goto fail;
	s->opts.run_id = NULL;    /* the caller's string is not kept */
	qsort(s->nodes, s->nnodes, sizeof(*s->nodes), cmp_node);
	if (node_ids(s, err))
		goto fail;
	for (size_t i = 0; i < s->nnodes; i++) {
		uint64_t t;

		if (first_tsc(s->nodes[i].paths[0], &t, err))
			goto fail;
		if (t && t < origin)
			origin = t;
	}
	if (origin == UINT64_MAX)
		origin = 0;
	s->origin_tsc = origin;
	s->hz = s->nodes[0].hz;
	for (size_t i = 0; i < s->nnodes; i++)
		if (!s->nodes[i].is_source) {
			s->hz = s->nodes[i].hz;
			break;
		}
	s->t0_tsc = origin + (uint64_t)((double)s->opts.from_ns * s->hz / 1e9);
	s->t1_tsc = s->opts.to_ns < 0 ? UINT64_MAX :
		origin + (uint64_t)((double)s->opts.to_ns * s->hz / 1e9);
	if (s->t1_tsc < s->t0_tsc) {
		an_err(err, "scan window ends (%lld ns) before it starts (%lld ns)",
			(long long)s->opts.to_ns, (long long)s->opts.from_ns);
		goto fail;
	}
	s->bin_ticks = s->opts.bin_us * s->hz / 1e6;
	return s;
fail:
	mscope_inc_free(s);
	return NULL;
}

int
inc_scan_run(struct mscope_inc_scan *s, struct mscope_an_error *err)
{
	uint64_t last = 0;

	if (run_scan(s, err))
		return -1;
	for (size_t i = 0; i < s->nnodes; i++)
		if (s->nodes[i].nbins) {
			uint64_t t = (uint64_t)s->nodes[i].nbins;
			if (t > last)
				last = t;
		}
	s->last_tsc = last;   /* number of bins */
	return 0;
}

struct mscope_inc_scan *
mscope_inc_scan(const char *dir, const struct mscope_inc_opts *o, struct mscope_an_error *err)
{
	struct mscope_inc_scan *s = inc_scan_open(dir, o, err);

	if (s && inc_scan_run(s, err)) {
		mscope_inc_free(s);
		return NULL;
	}
	return s;
}

double
inc_bin_us(const struct mscope_inc_scan *s)
{
	return s->bin_ticks * (double)(1u << s->shift) * 1e6 / s->hz;
}

double
inc_bin_start_us(const struct mscope_inc_scan *s, int64_t b)
{
	return (double)(s->t0_tsc - s->origin_tsc) * 1e6 / s->hz + (double)b * inc_bin_us(s);
}

void
mscope_inc_stats(const struct mscope_inc_scan *s, struct mscope_inc_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->nodes = s->nnodes;
	st->files = s->nfiles;
	for (size_t i = 0; i < s->nnodes; i++) {
		if (!s->nodes[i].is_source) {
			st->bytes += s->nodes[i].bytes;
			st->hops += s->nodes[i].hops;
		}
	}
	st->cpu_s = s->cpu_s;
	st->wall_s = s->wall_s;
	st->bin_us = inc_bin_us(s);
	st->start_us = inc_bin_start_us(s, 0);
	st->end_us = inc_bin_start_us(s, (int64_t)s->last_tsc);
	st->threads = s->threads;
}

/* ------------------------------------------------------------ detection */

static int
cmp_float(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;

	return (x > y) - (x < y);
}

/* Median and MAD of v[0..n) (sorted in place). */
static void
med_mad(float *v, size_t n, double *med, double *mad)
{
	*med = *mad = 0;
	if (n == 0)
		return;
	qsort(v, n, sizeof(*v), cmp_float);
	*med = v[n / 2];
	for (size_t i = 0; i < n; i++)
		v[i] = fabsf(v[i] - (float)*med);
	qsort(v, n, sizeof(*v), cmp_float);
	*mad = v[n / 2];
}

static void
baselines(struct mscope_inc_scan *s, float *tmp)
{
	const struct mscope_inc_opts *o = &s->opts;

	for (size_t k = 0; k < s->nnodes; k++) {
		struct inc_node *nd = &s->nodes[k];
		double dmed, dmad;
		size_t n = 0;

		if (nd->is_source)
			continue;
		for (uint32_t b = 0; b < nd->nbins; b++)
			if (nd->bins[b].n)
				tmp[n++] = nd->bins[b].p99_us;
		med_mad(tmp, n, &nd->med_us, &nd->mad_us);
		nd->thr_us = fmax(fmax(nd->med_us + o->k_mad * 1.4826 * nd->mad_us,
			o->factor * nd->med_us), nd->med_us + o->min_excess_us);
		n = 0;
		for (uint32_t b = 0; b < nd->nbins; b++)
			tmp[n++] = (float)nd->bins[b].drops;
		med_mad(tmp, n, &dmed, &dmad);
		nd->dthr = fmax(1, dmed + o->k_mad * 1.4826 * dmad + (dmad == 0 && dmed > 0 ?
			dmed : 0));
	}
}

static int
cmp_sev(const void *a, const void *b)
{
	const struct inc_incident *x = a, *y = b;

	return (x->severity < y->severity) - (x->severity > y->severity);
}

static int
cmp_time(const void *a, const void *b)
{
	const struct inc_incident *x = a, *y = b;

	return (x->start_us > y->start_us) - (x->start_us < y->start_us);
}

/* Merge hit into incident cur. */
static void
absorb(struct inc_incident *cur, const struct inc_incident *x)
{
	cur->start_us = fmin(cur->start_us, x->start_us);
	if (x->end_us > cur->end_us) {
		cur->end_us = x->end_us;
		cur->b1 = x->b1;
	}
	cur->b0 = cur->b0 < x->b0 ? cur->b0 : x->b0;
	cur->severity += x->severity;
	cur->drops += x->drops;
	if (x->peak_us > cur->peak_us) {
		cur->peak_us = x->peak_us;
		cur->peak_node = x->peak_node;
	}
	cur->nnodes = cur->nnodes > x->nnodes ? cur->nnodes : x->nnodes;
}

int
mscope_inc_detect(struct mscope_inc_scan *s, const struct mscope_inc_opts *o,
		struct mscope_an_error *err)
{
	uint32_t nb = (uint32_t)s->last_tsc;
	float *tmp = malloc((size_t)(nb ? nb : 1) * sizeof(*tmp));
	double bw = inc_bin_us(s), base = inc_bin_start_us(s, 0);
	struct inc_incident *hits = NULL;
	size_t nh = 0, cap = 0, n = 0;

	if (o) {
		s->opts.k_mad = o->k_mad;
		s->opts.factor = o->factor;
		s->opts.min_excess_us = o->min_excess_us;
		s->opts.gap_us = o->gap_us;
		s->opts.min_severity = o->min_severity;
		s->opts.max_incidents = o->max_incidents;
		s->opts.margin_us = o->margin_us;
	}
	if (tmp == NULL)
		goto oom;
	baselines(s, tmp);
	free(tmp);
	for (size_t i = 0; i < s->ninc; i++)
		json_decref(s->inc[i].doc);
	free(s->inc);
	s->inc = NULL;
	s->ninc = s->ndropped = 0;
	/* every bin where some node stands out, stretched back by the longest
	 * residence that ended in it (the packets were held since then) */
	for (uint32_t b = 0; b < nb; b++) {
		struct inc_incident x;

		memset(&x, 0, sizeof(x));
		x.peak_node = -1;
		x.start_us = base + b * bw;
		for (size_t k = 0; k < s->nnodes; k++) {
			const struct inc_node *nd = &s->nodes[k];
			const struct inc_bin *bn;
			int out = 0;

			if (nd->is_source || b >= nd->nbins)
				continue;
			bn = &nd->bins[b];
			if (bn->n && bn->p99_us > nd->thr_us) {
				out = 1;
				x.severity += bn->p99_us / nd->thr_us - 1;
			}
			if (bn->drops >= nd->dthr) {
				out = 1;
				x.severity += bn->drops;
			}
			if (!out)
				continue;
			x.nnodes++;
			x.drops += bn->drops;
			x.start_us = fmin(x.start_us, base + b * bw - bn->max_us);
			if (x.peak_node < 0 || bn->max_us > x.peak_us) {
				x.peak_us = bn->max_us;
				x.peak_node = (int)k;
			}
		}
		if (x.nnodes == 0)
			continue;
		x.start_us = fmax(x.start_us, base);
		x.end_us = base + (b + 1) * bw;
		x.b0 = x.b1 = b;
		if (nh == cap) {
			void *p = realloc(hits, (cap = cap ? 2 * cap : 64) * sizeof(*hits));
			if (p == NULL)
				goto oom;
			hits = p;
		}
		hits[nh++] = x;
	}
	if (nh > 1)
		qsort(hits, nh, sizeof(*hits), cmp_time);
	for (size_t i = 0; i < nh; i++) {
		if (n && hits[i].start_us <= hits[n - 1].end_us + s->opts.gap_us)
			absorb(&hits[n - 1], &hits[i]);
		else
			hits[n++] = hits[i];
	}
	{   /* a lone bin just over its threshold is the tail of normal operation */
		size_t m = 0;
		for (size_t i = 0; i < n; i++)
			if (hits[i].severity >= s->opts.min_severity)
				hits[m++] = hits[i];
		s->nweak = n - m;
		n = m;
	}
	if (s->opts.max_incidents && n > s->opts.max_incidents) {
		qsort(hits, n, sizeof(*hits), cmp_sev);
		s->ndropped = n - s->opts.max_incidents;
		n = s->opts.max_incidents;
		qsort(hits, n, sizeof(*hits), cmp_time);
	}
	s->inc = hits;
	s->ninc = n;
	return 0;
oom:
	free(hits);
	an_err(err, "out of memory");
	return -1;
}

size_t
mscope_inc_count(const struct mscope_inc_scan *s)
{
	return s->ninc;
}

size_t
mscope_inc_dropped(const struct mscope_inc_scan *s)
{
	return s->ndropped;
}

int
mscope_inc_get(const struct mscope_inc_scan *s, size_t i, struct mscope_incident *inc)
{
	const struct inc_incident *x;

	if (i >= s->ninc)
		return -1;
	x = &s->inc[i];
	memset(inc, 0, sizeof(*inc));
	inc->start_us = x->start_us;
	inc->end_us = x->end_us;
	inc->severity = x->severity;
	inc->drops = x->drops;
	inc->peak_us = x->peak_us;
	inc->peak_node = x->peak_node >= 0 ? s->nodes[x->peak_node].id : "";
	inc->nnodes = x->nnodes;
	return 0;
}

void
mscope_inc_free(struct mscope_inc_scan *s)
{
	if (s == NULL)
		return;
	inc_cut_cleanup(s);
	for (size_t i = 0; i < s->nnodes; i++) {
		for (size_t j = 0; j < s->nodes[i].npaths; j++)
			free(s->nodes[i].paths[j]);
		free(s->nodes[i].paths);
		free(s->nodes[i].segs);
		free(s->nodes[i].bins);
	}
	free(s->nodes);
	for (size_t i = 0; i < s->ninc; i++) {
		json_decref(s->inc[i].doc);
		free(s->inc[i].diag_err);
	}
	free(s->inc);
	free(s->shard_t);
	free(s);
}
