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

/* Victims. One re-run per injected fault, with that fault left out, goes side
 * by side with the main run: all of them advance STEP_PS of simulated time
 * (the re-runs on worker threads, the main run on this one), then every
 * packet whose fate is known in all of them is compared, in order of ingress,
 * and forgotten. Memory stays that of the packets in flight, however long the
 * run; each fault's victims go to a temporary file, copied into victims.jsonl
 * (grouped by fault) at the end.
 * A re-run is the main run until its fault starts: it begins as a copy of the
 * main run a step before that (GUARD_PS at least before), and it stops as soon
 * as it is in the same state as the main run again (after the fault's end):
 * from there on both do the same. So a fault costs what its aftermath lasts,
 * not the whole run. (A copy is refused when the fault may already have acted,
 * e.g. a service in progress ends after its start: that re-run then starts
 * from time 0, catching up.) */
#define STEP_PS (10ULL * 1000000000ULL)
#define GUARD_PS (1ULL * 1000000000ULL)

struct rerun {
	unsigned fault;
	uint64_t start_ps;          /* the step it begins at (a copy of the main run) */
	uint64_t end_ps;            /* its fault's end: from then on, check for the same state */
	unsigned skip;              /* its own burst stream (never its victims), or UINT32_MAX */
	struct sim_engine *e;
	struct sim_result res;
	int state;                  /* 2 not begun, 1 running, 0 drained or the same as the
	                               main run, -1 failed */
	char err[512];
	FILE *tmp;                  /* its victims.jsonl lines */
	uint64_t hops0;             /* hops copied from the main run when it began */
	uint64_t n, ndrop;
};

struct lockstep {
	struct rerun *rr;
	unsigned n;
	uint64_t until;
	unsigned next, done, gen;
	int quit;
	pthread_mutex_t mu;
	pthread_cond_t cv, cv_done;
};

/* Advance the re-runs not yet taken to ls->until (called with ls->mu held). */
static void
step_jobs(struct lockstep *ls)
{
	while (ls->next < ls->n) {
		struct rerun *r = &ls->rr[ls->next++];
		pthread_mutex_unlock(&ls->mu);
		if (r->state == 1 && r->e)
			r->state = sim_engine_advance(r->e, ls->until);
		pthread_mutex_lock(&ls->mu);
		if (++ls->done == ls->n)
			pthread_cond_broadcast(&ls->cv_done);
	}
}

static void *
step_worker(void *arg)
{
	struct lockstep *ls = arg;
	unsigned seen = 0;

	pthread_mutex_lock(&ls->mu);
	for (;;) {
		while (!ls->quit && ls->gen == seen)
			pthread_cond_wait(&ls->cv, &ls->mu);
		if (ls->quit)
			break;
		seen = ls->gen;
		step_jobs(ls);
	}
	pthread_mutex_unlock(&ls->mu);
	return NULL;
}

/* Fate of packet j of stream v (its arrays hold [base, n)); 0 if not known yet. */
static uint64_t
fate(const struct sim_outv *v, uint64_t j)
{
	return j >= v->base && j < v->n ? v->out_ps[j - v->base] : 0;
}

/* Compare, in order of ingress, every packet whose fate is known in the main
 * run and in every re-run still going; then forget them. */
static int
compare_known(struct sim_result *full, struct rerun *rr, unsigned n_rr, uint64_t thr_ps)
{
	unsigned ns = full->n_streams;
	uint64_t cur[MSCOPE_SIM_MAX_FAULTS + 1];

	for (unsigned s = 0; s < ns; s++)
		cur[s] = full->streams[s].base;
	for (;;) {
		int best = -1;
		for (unsigned s = 0; s < ns; s++) {
			const struct sim_outv *v = &full->streams[s];
			if (cur[s] < v->n && (best < 0 || v->in_ps[cur[s] - v->base] <
					full->streams[best].in_ps[cur[best] - full->streams[best].base]))
				best = (int)s;
		}
		if (best < 0)
			break;
		const struct sim_outv *a = &full->streams[best];
		uint64_t j = cur[best], fo = a->out_ps[j - a->base];
		if (fo == 0)
			break;
		int known = 1;
		/* (a re-run not begun yet: its fault starts after this packet left) */
		for (unsigned k = 0; k < n_rr && known; k++)
			if (rr[k].skip != (unsigned)best && rr[k].state == 1 &&
					fate(&rr[k].res.streams[best], j) == 0)
				known = 0;
		if (!known)
			break;
		for (unsigned k = 0; k < n_rr; k++) {
			struct rerun *r = &rr[k];
			if (r->skip == (unsigned)best || r->state == 2)
				continue;
			uint64_t wo = fate(&r->res.streams[best], j), extra = 0;
			int dropped = fo == SIM_DROPPED;
			/* dropped without the fault, or never left: not its victim */
			if (wo == SIM_DROPPED || wo == 0)
				continue;
			if (!dropped) {
				if (fo <= wo + thr_ps)
					continue;
				extra = (fo - wo) / 1000;
			}
			r->n++;
			r->ndrop += (uint64_t)dropped;
			if (fprintf(r->tmp, "{\"fault\": %u, \"wire_id\": %u, \"tsc\": %llu, \"dropped\": "
					"%s, \"delay_ns\": %llu}\n", r->fault, a->wire[j - a->base],
					(unsigned long long)(MSCOPE_SIM_START_TSC +
						a->in_ps[j - a->base] / 1000),
					dropped ? "true" : "false", (unsigned long long)extra) < 0)
				return -1;
		}
		cur[best]++;
	}
	for (unsigned s = 0; s < ns; s++) {
		sim_outv_retire(&full->streams[s], cur[s]);
		for (unsigned k = 0; k < n_rr; k++)
			if (rr[k].skip != s && rr[k].res.streams &&
					cur[s] <= rr[k].res.streams[s].n)
				sim_outv_retire(&rr[k].res.streams[s], cur[s]);
	}
	return 0;
}

/* Begin re-run r at step boundary t: a copy of the main run, or when that is
 * refused, a run from time 0 brought to t (forgetting, as it goes, the fates
 * of packets the main run already compared: they are no victims of a fault
 * that had not started). */
static int
begin_rerun(const struct mscope_sim_scenario *s, const struct sim_engine_opts *eo,
		struct sim_engine *me, struct rerun *r, uint64_t t, struct sim_result *full)
{
	int rc = t ? sim_engine_clone(me, r->fault, &r->res, r->err, sizeof(r->err), &r->e) : 1;

	if (rc < 0)
		return -1;
	if (rc == 1) {
		struct sim_engine_opts ro = *eo;
		ro.outdir = NULL;
		ro.writer_thread = 0;
		ro.no_outcomes = 0;
		ro.disabled |= 1ULL << r->fault;
		r->e = sim_engine_open(s, &ro, &r->res, r->err, sizeof(r->err));
		if (r->e == NULL)
			return -1;
		for (uint64_t u = STEP_PS; u <= t; u += STEP_PS) {
			if (sim_engine_advance(r->e, u) < 0)
				return -1;
			for (unsigned i = 0; i < full->n_streams; i++) {
				struct sim_outv *v = &r->res.streams[i];
				uint64_t upto = full->streams[i].base < v->n ? full->streams[i].base : v->n;
				if (upto > v->base)
					sim_outv_retire(v, upto);
			}
		}
	}
	r->hops0 = r->res.hops;
	r->state = 1;
	return 0;
}

/* The main run (writing the traces) and the victim re-runs side by side. */
static int
run_with_victims(const struct mscope_sim_scenario *s, const struct sim_engine_opts *eo,
		unsigned threads, uint64_t thr_ps, uint64_t horizon_ps, struct sim_result *full,
		struct rerun *rr,
		unsigned n_rr, double *main_cpu, char *err, size_t errlen)
{
	struct lockstep ls = { .rr = rr, .n = n_rr };
	pthread_t tids[64];
	unsigned n_threads = 0;
	int rc = -1, main_state = 1;

	pthread_mutex_init(&ls.mu, NULL);
	pthread_cond_init(&ls.cv, NULL);
	pthread_cond_init(&ls.cv_done, NULL);
	struct sim_engine *me = sim_engine_open(s, eo, full, err, errlen);
	if (me == NULL)
		goto out;
	for (unsigned k = 0; k < n_rr; k++) {
		const struct sim_fault *f = &s->faults[rr[k].fault];
		rr[k].start_ps = f->at_ps > GUARD_PS ? (f->at_ps - GUARD_PS) / STEP_PS * STEP_PS : 0;
		rr[k].end_ps = f->end_ps;
		rr[k].state = 2;
		rr[k].tmp = tmpfile();
		if (rr[k].tmp == NULL) {
			seterr(err, errlen, "cannot create a temporary file: %s%s", strerror(errno), "");
			goto out;
		}
	}
	while (n_threads + 1 < threads && n_threads < n_rr &&
			pthread_create(&tids[n_threads], NULL, step_worker, &ls) == 0) {
		pthread_setname_np(tids[n_threads], "mscope-sim-rr");
		n_threads++;
	}
	for (uint64_t t = STEP_PS;; t += STEP_PS) {
		int going = 0;
		/* re-runs whose fault starts in the coming step (after GUARD_PS) begin */
		for (unsigned k = 0; k < n_rr; k++)
			if (rr[k].state == 2 && rr[k].start_ps <= t - STEP_PS &&
					begin_rerun(s, eo, me, &rr[k], t - STEP_PS, full) < 0) {
				seterr(err, errlen, "%s%s", rr[k].err, "");
				goto out;
			}
		pthread_mutex_lock(&ls.mu);
		ls.until = t;
		ls.next = ls.done = 0;
		ls.gen++;
		pthread_cond_broadcast(&ls.cv);
		pthread_mutex_unlock(&ls.mu);
		if (main_state == 1) {
			double c0 = cpu_s();
			main_state = sim_engine_advance(me, t);
			*main_cpu += cpu_s() - c0;
		}
		pthread_mutex_lock(&ls.mu);
		step_jobs(&ls);
		while (ls.done < ls.n)
			pthread_cond_wait(&ls.cv_done, &ls.mu);
		pthread_mutex_unlock(&ls.mu);
		if (main_state < 0)
			goto out;
		going |= main_state;
		for (unsigned k = 0; k < n_rr; k++) {
			if (rr[k].state < 0) {
				seterr(err, errlen, "%s%s", rr[k].err, "");
				goto out;
			}
			going |= rr[k].state;
		}
		if (compare_known(full, rr, n_rr, thr_ps) < 0) {
			seterr(err, errlen, "%s%s", "writing victims to a temporary file failed", "");
			goto out;
		}
		/* a re-run back in the main run's state has nothing more to tell (nor,
		 * by choice, one past its horizon) */
		for (unsigned k = 0; k < n_rr; k++)
			if (rr[k].state == 1 && t > rr[k].end_ps && (t > rr[k].end_ps + horizon_ps ||
					sim_engine_same(me, rr[k].e))) {
				rr[k].state = 0;
				if (sim_engine_close(rr[k].e) < 0) {
					rr[k].e = NULL;
					seterr(err, errlen, "%s%s", rr[k].err, "");
					goto out;
				}
				rr[k].e = NULL;
			}
		/* nothing to do before the next event or re-run: skip ahead */
		uint64_t next = main_state == 1 ? sim_engine_next(me) : UINT64_MAX;
		for (unsigned k = 0; k < n_rr; k++) {
			if (rr[k].state == 1 && sim_engine_next(rr[k].e) < next)
				next = sim_engine_next(rr[k].e);
			if (rr[k].state == 2 && rr[k].start_ps < next)
				next = rr[k].start_ps;
			going |= rr[k].state == 2;
		}
		if (!going)
			break;
		if (next != UINT64_MAX && next / STEP_PS * STEP_PS > t)
			t = next / STEP_PS * STEP_PS;
	}
	rc = 0;
out:
	pthread_mutex_lock(&ls.mu);
	ls.quit = 1;
	pthread_cond_broadcast(&ls.cv);
	pthread_mutex_unlock(&ls.mu);
	for (unsigned i = 0; i < n_threads; i++)
		pthread_join(tids[i], NULL);
	for (unsigned k = 0; k < n_rr; k++)
		if (rr[k].e && sim_engine_close(rr[k].e) < 0 && rc == 0) {
			seterr(err, errlen, "%s%s", rr[k].err, "");
			rc = -1;
		}
	if (me && sim_engine_close(me) < 0)
		rc = -1;
	pthread_mutex_destroy(&ls.mu);
	pthread_cond_destroy(&ls.cv);
	pthread_cond_destroy(&ls.cv_done);
	return rc;
}

/* Copy fault k's victim lines into victims.jsonl. */
static int
copy_victims(FILE *from, FILE *to)
{
	char buf[65536];
	size_t n;

	if (fflush(from) != 0 || fseek(from, 0, SEEK_SET) != 0)
		return -1;
	while ((n = fread(buf, 1, sizeof(buf), from)) > 0)
		if (fwrite(buf, 1, n, to) != n)
			return -1;
	return ferror(from) ? -1 : 0;
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
	struct rerun *rr = NULL;
	unsigned n_rr = 0;

	memset(&st, 0, sizeof(st));
	memset(&full, 0, sizeof(full));
	if (err && errlen)
		err[0] = 0;
	if (outdir && prepare_dir(outdir, s, o->overwrite, err, errlen) < 0)
		return -1;
	int victims = outdir != NULL && !o->no_victims;
	rr = calloc(s->n_faults + 1, sizeof(*rr));
	if (rr == NULL) {
		seterr(err, errlen, "%s%s", "out of memory", "");
		goto out;
	}
	for (unsigned i = 0; victims && i < s->n_faults; i++)
		if (!(eo.disabled >> i & 1))
			rr[n_rr++] = (struct rerun){ .fault = i,
				.skip = s->faults[i].kind == F_BURST ? 1 + i : UINT32_MAX };
	unsigned want = thread_count(o);
	eo.writer_thread = want > 1;
	double t0 = now_s(), c0 = cpu_s();
	if (n_rr == 0) {
		eo.no_outcomes = 1;      /* fates are needed only to find victims */
		int mrc = sim_engine_run(s, &eo, &full, err, errlen);
		st.sim_seconds = now_s() - t0;
		st.sim_cpu_seconds = cpu_s() - c0;
		if (mrc < 0)
			goto out;
	} else {
		/* seconds: the whole side-by-side run; CPU seconds: the main run's share */
		uint64_t horizon = o->victim_horizon_us > 0 ?
			(uint64_t)llround(o->victim_horizon_us * 1e6) : UINT64_MAX / 2;
		int mrc = run_with_victims(s, &eo, want, (uint64_t)llround(thr_us * 1e6), horizon,
			&full, rr,
			n_rr, &st.sim_cpu_seconds, err, errlen);
		st.sim_seconds = now_s() - t0;
		if (mrc < 0)
			goto out;
	}
	st.packets = full.packets;
	st.hops = full.hops;
	st.drops = full.drops;
	st.egress = full.egress;
	st.end_tsc = MSCOPE_SIM_START_TSC + full.end_ps / 1000;
	st.trace_bytes = full.trace_bytes;
	if (outdir == NULL) {
		rc = 0;
		goto out;
	}
	if (victims) {
		snprintf(file, sizeof(file), "%s/victims.jsonl", outdir);
		int fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
		if (fd < 0 || (vf = fdopen(fd, "w")) == NULL) {
			seterr(err, errlen, "%s: %s", file, strerror(errno));
			if (fd >= 0)
				close(fd);
			goto out;
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
		const struct rerun *r = &rr[k++];
		if (copy_victims(r->tmp, vf) < 0) {
			seterr(err, errlen, "%s/victims.jsonl: %s", outdir, "write failed");
			goto out;
		}
		st.rerun_hops += r->res.hops - r->hops0;
		st.victims += r->n;
		json_object_set_new(fj, "victims", json_integer((json_int_t)r->n));
		json_object_set_new(fj, "victims_dropped", json_integer((json_int_t)r->ndrop));
		json_object_set_new(fj, "victims_file", json_string("victims.jsonl"));
	}
	if (vf) {
		int bad = ferror(vf);
		if (fclose(vf) != 0 || bad) {
			vf = NULL;
			snprintf(file, sizeof(file), "%s/victims.jsonl", outdir);
			seterr(err, errlen, "%s: %s", file, "write failed");
			goto out;
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
		goto out;

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
		goto out;
	rc = 0;
out:
	for (unsigned k = 0; rr && k < n_rr; k++) {
		if (rr[k].tmp)
			fclose(rr[k].tmp);
		sim_result_free(&rr[k].res);
	}
	free(rr);
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
