/* SPDX-License-Identifier: BSD-3-Clause */
/* A full simulation: the main run writing traces, one re-run per fault with
 * that fault left out to find its victims, and the JSON outputs
 * (topology.json, truth.json, victims.jsonl). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sim_engine.h"

static const char *const fault_names[] = { "burst", "interrupt", "bug", "slow" };
static const char *const out_files[] = { "truth.json", "topology.json", "victims.jsonl" };

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double
cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void
seterr(char *err, size_t errlen, const char *fmt, const char *a, const char *b)
{
	if (err && errlen)
		snprintf(err, errlen, fmt, a, b);
}

/* Microseconds as an integer when whole (the usual case), else a real. */
static json_t *
us_json(uint64_t ps)
{
	if (ps % 1000000 == 0)
		return json_integer((json_int_t)(ps / 1000000));
	return json_real((double)ps / 1e6);
}

static json_t *
links_json(const struct mscope_sim_scenario *s)
{
	json_t *arr = json_array();
	unsigned *pos = calloc(s->n_nfs + 1, sizeof(*pos));

	for (unsigned i = 0; pos && i < s->n_links; i++) {
		const struct sim_link *l = &s->links[i];
		unsigned from = l->from < 0 ? s->n_nfs : (unsigned)l->from;
		json_t *o = json_object();
		json_object_set_new(o, "from", json_string(l->from < 0 ? "source" :
				s->nfs[l->from].name));
		json_object_set_new(o, "to", json_string(s->nfs[l->to].name));
		if (l->has_match)
			json_object_set(o, "match", json_object_get(l->json, "match"));
		json_object_set_new(o, "tx_port", json_integer(1 + pos[from]++));
		json_array_append_new(arr, o);
	}
	free(pos);
	return arr;
}

static json_t *
nfs_json(const struct mscope_sim_scenario *s, const struct sim_result *r)
{
	json_t *arr = json_array();
	char file[96];

	for (unsigned i = 0; i < s->n_nfs; i++) {
		const struct sim_nf *nf = &s->nfs[i];
		snprintf(file, sizeof(file), "%s.mst", nf->name);
		json_t *o = json_pack("{s:s, s:s, s:f, s:I, s:f, s:s, s:i, s:i}", "name", nf->name,
			"type", nf->type, "rate_mpps", nf->rate_mpps, "queue", (json_int_t)nf->queue,
			"jitter", nf->jitter, "file", file, "port", 0, "queue_id", 0);
		if (r) {
			json_object_set_new(o, "packets", json_integer((json_int_t)r->nodes[i].hops));
			json_object_set_new(o, "drops", json_integer((json_int_t)r->nodes[i].drops));
			json_object_set_new(o, "max_queue",
				json_integer((json_int_t)r->nodes[i].max_qlen));
		}
		json_array_append_new(arr, o);
	}
	return arr;
}

static int
write_json(const char *dir, const char *name, json_t *doc, char *err, size_t errlen)
{
	char file[4096];

	snprintf(file, sizeof(file), "%s/%s", dir, name);
	int fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0) {
		seterr(err, errlen, "%s: %s", file, strerror(errno));
		return -1;
	}
	FILE *f = fdopen(fd, "w");
	if (f == NULL) {
		close(fd);
		seterr(err, errlen, "%s: %s", file, strerror(errno));
		return -1;
	}
	int rc = json_dumpf(doc, f, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
	fputc('\n', f);
	if (fclose(f) != 0 || rc < 0) {
		seterr(err, errlen, "%s: %s", file, rc < 0 ? "write failed" : strerror(errno));
		return -1;
	}
	return 0;
}

struct victim {
	uint64_t in_ps;
	uint32_t stream;
	uint32_t wire;
	uint64_t idx;
	uint64_t extra_ns;
	int dropped;
};

static int
cmp_victim(const void *a, const void *b)
{
	const struct victim *x = a, *y = b;

	if (x->in_ps != y->in_ps)
		return x->in_ps < y->in_ps ? -1 : 1;
	if (x->stream != y->stream)
		return x->stream < y->stream ? -1 : 1;
	return (x->idx > y->idx) - (x->idx < y->idx);
}

/* Packets worse off in `full` than in `without` (the same run minus one fault). */
static int
find_victims(const struct sim_result *full, const struct sim_result *without, uint64_t thr_ps,
		unsigned skip_stream, struct victim **out, size_t *n_out)
{
	size_t n = 0, cap = 0;
	struct victim *v = NULL;

	for (unsigned s = 0; s < full->n_streams; s++) {
		const struct sim_outv *a = &full->streams[s], *b = &without->streams[s];
		if (s == skip_stream)
			continue;
		uint64_t m = a->n < b->n ? a->n : b->n;
		for (uint64_t i = 0; i < m; i++) {
			uint64_t fo = a->out_ps[i], wo = b->out_ps[i];
			struct victim x = { a->in_ps[i], s, a->wire[i], i, 0, 0 };
			if (wo == SIM_DROPPED || fo == 0 || wo == 0)
				continue;
			if (fo == SIM_DROPPED)
				x.dropped = 1;
			else if (fo > wo + thr_ps)
				x.extra_ns = (fo - wo) / 1000;
			else
				continue;
			if (n == cap) {
				size_t nc = cap ? cap * 2 : 1024;
				struct victim *nv = realloc(v, nc * sizeof(*nv));
				if (nv == NULL) {
					free(v);
					return -1;
				}
				v = nv;
				cap = nc;
			}
			v[n++] = x;
		}
	}
	if (n)
		qsort(v, n, sizeof(*v), cmp_victim);
	*out = v;
	*n_out = n;
	return 0;
}

static int
prepare_dir(const char *dir, const struct mscope_sim_scenario *s, int overwrite,
		char *err, size_t errlen)
{
	struct stat st;
	char file[4096];

	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		seterr(err, errlen, "%s: %s", dir, strerror(errno));
		return -1;
	}
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		seterr(err, errlen, "%s: %s", dir, "not a directory");
		return -1;
	}
	if (!overwrite)
		return 0;
	for (size_t i = 0; i < sizeof(out_files) / sizeof(out_files[0]); i++) {
		snprintf(file, sizeof(file), "%s/%s", dir, out_files[i]);
		if (unlink(file) < 0 && errno != ENOENT) {
			seterr(err, errlen, "%s: %s", file, strerror(errno));
			return -1;
		}
	}
	(void)s;          /* trace files are unlinked by the engine as it opens them */
	return 0;
}

static json_t *
culprit_json(const struct mscope_sim_scenario *s, const struct sim_fault *f)
{
	json_t *c = json_object();

	if (f->kind == F_BURST) {
		json_object_set_new(c, "nf", json_string("source"));
		json_object_set_new(c, "kind", json_string("source"));
		json_object_set_new(c, "flow", sim_flow_json(&f->flow));
	} else {
		json_object_set_new(c, "nf", json_string(s->nfs[f->nf].name));
		json_object_set_new(c, "kind", json_string("processing"));
		if (f->kind == F_BUG)
			json_object_set(c, "flow", f->culprit_flow);
	}
	return c;
}

/* Victim re-runs: one per injected fault, independent of each other and of
 * the main run (no files), so they run on worker threads while the main run
 * writes the traces; each is compared with the main run as soon as both are
 * done, so at most one re-run result per thread is alive. */
struct fault_victims {
	struct victim *v;
	size_t n;
	uint64_t hops;
};

struct rerun_pool {
	const struct mscope_sim_scenario *s;
	struct sim_engine_opts eo;
	const struct sim_result *full;
	uint64_t thr_ps;
	unsigned *fault_of;          /* job -> fault index */
	unsigned n_jobs, next;
	struct fault_victims *res;   /* per job */
	int main_done, main_failed, failed;
	char err[512];
	pthread_mutex_t mu;
	pthread_cond_t cv;
};

static void *
rerun_worker(void *arg)
{
	struct rerun_pool *p = arg;

	for (;;) {
		pthread_mutex_lock(&p->mu);
		if (p->failed || p->main_failed || p->next >= p->n_jobs) {
			pthread_mutex_unlock(&p->mu);
			break;
		}
		unsigned k = p->next++;
		pthread_mutex_unlock(&p->mu);
		unsigned i = p->fault_of[k];
		struct sim_engine_opts ro = p->eo;
		struct sim_result without;
		char e[512];
		ro.outdir = NULL;
		ro.disabled |= 1ULL << i;
		int rc = sim_engine_run(p->s, &ro, &without, e, sizeof(e));
		pthread_mutex_lock(&p->mu);
		if (rc < 0 && !p->failed) {
			p->failed = 1;
			snprintf(p->err, sizeof(p->err), "%s", e);
		}
		while (rc == 0 && !p->main_done)
			pthread_cond_wait(&p->cv, &p->mu);
		int stop = p->failed || p->main_failed;
		pthread_mutex_unlock(&p->mu);
		if (!stop && find_victims(p->full, &without, p->thr_ps,
				p->s->faults[i].kind == F_BURST ? 1 + i : UINT32_MAX,
				&p->res[k].v, &p->res[k].n) < 0) {
			pthread_mutex_lock(&p->mu);
			if (!p->failed) {
				p->failed = 1;
				snprintf(p->err, sizeof(p->err), "out of memory");
			}
			stop = 1;
			pthread_mutex_unlock(&p->mu);
		}
		p->res[k].hops = without.hops;
		sim_result_free(&without);
		if (stop)
			break;
	}
	return NULL;
}

static unsigned
thread_count(const struct mscope_sim_opts *o)
{
	long n = o->threads > 0 ? o->threads : sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		n = 1;
	return n > 64 ? 64 : (unsigned)n;
}

int
mscope_sim_run(const struct mscope_sim_scenario *s, const struct mscope_sim_opts *opts,
		const char *outdir, struct mscope_sim_stats *stats, char *err, size_t errlen)
{
	const struct mscope_sim_opts def = MSCOPE_SIM_OPTS_DEFAULT;
	const struct mscope_sim_opts *o = opts ? opts : &def;
	struct sim_engine_opts eo = {
		.seed = o->override_seed ? o->seed : s->seed,
		.disabled = o->disabled_faults,
		.no_jitter = o->no_jitter,
		.outdir = outdir,
		.zstd_level = o->zstd_level,
		.overwrite = o->overwrite,
	};
	struct sim_result full;
	struct mscope_sim_stats st;
	double thr_us = o->victim_threshold_us > 0 ? o->victim_threshold_us : s->victim_threshold_us;
	char file[4096];
	int rc = -1;
	FILE *vf = NULL;
	json_t *faults = NULL;

	memset(&st, 0, sizeof(st));
	memset(&full, 0, sizeof(full));
	if (err && errlen)
		err[0] = 0;
	if (outdir && prepare_dir(outdir, s, o->overwrite, err, errlen) < 0)
		return -1;
	int victims = outdir != NULL && !o->no_victims;
	struct rerun_pool pool;
	pthread_t tids[64];
	unsigned n_threads = 0;
	memset(&pool, 0, sizeof(pool));
	pthread_mutex_init(&pool.mu, NULL);
	pthread_cond_init(&pool.cv, NULL);
	pool.s = s;
	pool.eo = eo;
	pool.full = &full;
	pool.thr_ps = (uint64_t)llround(thr_us * 1e6);
	pool.fault_of = calloc(s->n_faults + 1, sizeof(*pool.fault_of));
	pool.res = calloc(s->n_faults + 1, sizeof(*pool.res));
	if (pool.fault_of == NULL || pool.res == NULL) {
		seterr(err, errlen, "%s%s", "out of memory", "");
		goto out_pool;
	}
	for (unsigned i = 0; victims && i < s->n_faults; i++)
		if (!(eo.disabled >> i & 1))
			pool.fault_of[pool.n_jobs++] = i;
	unsigned want = thread_count(o);
	while (n_threads + 1 < want && n_threads < pool.n_jobs) {
		if (pthread_create(&tids[n_threads], NULL, rerun_worker, &pool) != 0)
			break;      /* fewer threads: the main thread does the rest */
		pthread_setname_np(tids[n_threads], "mscope-sim-rr");
		n_threads++;
	}

	double t0 = now_s(), c0 = cpu_s();
	eo.no_outcomes = pool.n_jobs == 0;   /* fates are needed only to find victims */
	eo.writer_thread = want > 1;
	int mrc = sim_engine_run(s, &eo, &full, err, errlen);
	st.sim_seconds = now_s() - t0;
	st.sim_cpu_seconds = cpu_s() - c0;
	pthread_mutex_lock(&pool.mu);
	pool.main_done = 1;
	pool.main_failed = mrc < 0;
	pthread_cond_broadcast(&pool.cv);
	pthread_mutex_unlock(&pool.mu);
	if (mrc == 0)
		rerun_worker(&pool);
	for (unsigned t = 0; t < n_threads; t++)
		pthread_join(tids[t], NULL);
	st.rerun_seconds = now_s() - t0 - st.sim_seconds;
	if (mrc < 0)
		goto out_pool;
	if (pool.failed) {
		seterr(err, errlen, "%s%s", pool.err, "");
		goto out_pool;
	}
	st.packets = full.packets;
	st.hops = full.hops;
	st.drops = full.drops;
	st.egress = full.egress;
	st.end_tsc = MSCOPE_SIM_START_TSC + full.end_ps / 1000;
	st.trace_bytes = full.trace_bytes;
	if (outdir == NULL) {
		rc = 0;
		goto out_pool;
	}
	if (victims) {
		snprintf(file, sizeof(file), "%s/victims.jsonl", outdir);
		int fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
		if (fd < 0 || (vf = fdopen(fd, "w")) == NULL) {
			seterr(err, errlen, "%s: %s", file, strerror(errno));
			if (fd >= 0)
				close(fd);
			goto out_pool;
		}
	}
	faults = json_array();
	for (unsigned i = 0, k = 0; i < s->n_faults; i++) {
		const struct sim_fault *f = &s->faults[i];
		/* A fault left out is no fault of this run: truth.json does not list it. */
		if (eo.disabled >> i & 1)
			continue;
		json_t *fj = json_object();
		json_object_set_new(fj, "id", json_integer(i));
		json_object_set_new(fj, "kind", json_string(fault_names[f->kind]));
		json_object_set_new(fj, "start_us", us_json(f->at_ps));
		json_object_set_new(fj, "end_us", us_json(f->end_ps));
		json_object_set_new(fj, "culprit", culprit_json(s, f));
		json_array_append_new(faults, fj);
		if (!victims)
			continue;
		const struct fault_victims *fv = &pool.res[k++];
		size_t ndrop = 0;
		for (size_t j = 0; j < fv->n; j++) {
			const struct victim *v = &fv->v[j];
			ndrop += v->dropped;
			fprintf(vf, "{\"fault\": %u, \"wire_id\": %u, \"tsc\": %llu, \"dropped\": %s, "
				"\"delay_ns\": %llu}\n", i, v->wire,
				(unsigned long long)(MSCOPE_SIM_START_TSC + v->in_ps / 1000),
				v->dropped ? "true" : "false", (unsigned long long)v->extra_ns);
		}
		st.rerun_hops += fv->hops;
		st.victims += fv->n;
		json_object_set_new(fj, "victims", json_integer((json_int_t)fv->n));
		json_object_set_new(fj, "victims_dropped", json_integer((json_int_t)ndrop));
		json_object_set_new(fj, "victims_file", json_string("victims.jsonl"));
	}
	if (vf) {
		int bad = ferror(vf);
		if (fclose(vf) != 0 || bad) {
			vf = NULL;
			snprintf(file, sizeof(file), "%s/victims.jsonl", outdir);
			seterr(err, errlen, "%s: %s", file, "write failed");
			goto out_pool;
		}
		vf = NULL;
	}

	json_t *topo = json_pack("{s:s, s:I, s:I, s:I, s:o, s:o, s:o}",
		"scenario", s->name, "seed", (json_int_t)eo.seed, "tsc_hz", (json_int_t)1000000000,
		"start_tsc", (json_int_t)MSCOPE_SIM_START_TSC,
		"source", json_pack("{s:s, s:s}", "name", "source", "file", "source.mst"),
		"nfs", nfs_json(s, NULL), "links", links_json(s));
	int wrc = write_json(outdir, "topology.json", topo, err, errlen);
	json_decref(topo);
	if (wrc < 0)
		goto out_pool;

	json_t *truth = json_pack("{s:s, s:I, s:I, s:I, s:o, s:I, s:f}",
		"scenario", s->name, "seed", (json_int_t)eo.seed, "tsc_hz", (json_int_t)1000000000,
		"start_tsc", (json_int_t)MSCOPE_SIM_START_TSC,
		"duration_us", us_json(s->duration_ps), "end_tsc", (json_int_t)st.end_tsc,
		"victim_threshold_us", thr_us);
	json_object_set_new(truth, "packets", json_pack("{s:I, s:I, s:I, s:I}",
		"sent", (json_int_t)full.packets, "delivered", (json_int_t)full.egress,
		"dropped", (json_int_t)full.drops, "hops", (json_int_t)full.hops));
	json_object_set_new(truth, "nfs", nfs_json(s, &full));
	json_object_set_new(truth, "links", links_json(s));
	json_object_set(truth, "faults", faults);
	wrc = write_json(outdir, "truth.json", truth, err, errlen);
	json_decref(truth);
	if (wrc < 0)
		goto out_pool;
	rc = 0;
out_pool:
	for (unsigned k = 0; pool.res && k < pool.n_jobs; k++)
		free(pool.res[k].v);
	free(pool.res);
	free(pool.fault_of);
	pthread_mutex_destroy(&pool.mu);
	pthread_cond_destroy(&pool.cv);
	if (vf)
		fclose(vf);
	json_decref(faults);
	sim_result_free(&full);
	if (stats)
		*stats = st;
	return rc;
}

int
mscope_sim_outcomes(const struct mscope_sim_scenario *s, const struct mscope_sim_opts *opts,
		mscope_sim_outcome_fn *fn, void *arg, struct mscope_sim_stats *stats,
		char *err, size_t errlen)
{
	const struct mscope_sim_opts def = MSCOPE_SIM_OPTS_DEFAULT;
	const struct mscope_sim_opts *o = opts ? opts : &def;
	struct sim_engine_opts eo = {
		.seed = o->override_seed ? o->seed : s->seed,
		.disabled = o->disabled_faults,
		.no_jitter = o->no_jitter,
	};
	struct sim_result r;
	double t0 = now_s(), c0 = cpu_s();

	if (err && errlen)
		err[0] = 0;
	if (sim_engine_run(s, &eo, &r, err, errlen) < 0) {
		sim_result_free(&r);
		return -1;
	}
	if (stats) {
		memset(stats, 0, sizeof(*stats));
		stats->sim_seconds = now_s() - t0;
		stats->sim_cpu_seconds = cpu_s() - c0;
		stats->packets = r.packets;
		stats->hops = r.hops;
		stats->drops = r.drops;
		stats->egress = r.egress;
		stats->end_tsc = MSCOPE_SIM_START_TSC + r.end_ps / 1000;
	}
	/* Merge the streams by ingress time (ties: stream order, as the source sent them). */
	uint64_t *cur = calloc(r.n_streams, sizeof(*cur));
	if (cur == NULL) {
		sim_result_free(&r);
		seterr(err, errlen, "%s%s", "out of memory", "");
		return -1;
	}
	for (;;) {
		int best = -1;
		for (unsigned k = 0; k < r.n_streams; k++)
			if (cur[k] < r.streams[k].n && (best < 0 ||
					r.streams[k].in_ps[cur[k]] < r.streams[best].in_ps[cur[best]]))
				best = (int)k;
		if (best < 0)
			break;
		const struct sim_outv *v = &r.streams[best];
		uint64_t i = cur[best]++;
		struct mscope_sim_packet p = {
			.stream = (uint32_t)best, .index = i, .wire_id = v->wire[i],
			.in_tsc = MSCOPE_SIM_START_TSC + v->in_ps[i] / 1000,
			.out_tsc = (v->out_ps[i] == SIM_DROPPED || v->out_ps[i] == 0) ? 0 :
				MSCOPE_SIM_START_TSC + v->out_ps[i] / 1000,
			.dropped = v->out_ps[i] == SIM_DROPPED,
			.drop_nf = v->out_ps[i] == SIM_DROPPED ? v->nf[i] : -1,
			.egress_nf = (v->out_ps[i] != SIM_DROPPED && v->nf[i] < (int32_t)s->n_nfs) ?
				v->nf[i] : -1,
		};
		fn(arg, &p);
	}
	free(cur);
	sim_result_free(&r);
	return 0;
}
