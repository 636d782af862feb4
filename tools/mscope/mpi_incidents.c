/* SPDX-License-Identifier: BSD-3-Clause */
/* `mscope-mpi incidents`: the recording's time range split into one shard per
 * rank (each scans its shard through the time index, with a look-back), the
 * shards' bins exchanged so that every rank detects the same incidents, the
 * diagnoses spread over the ranks by estimated cost, and rank 0 gathering
 * them into the one report. Every step ends with a collective status, so a
 * rank that fails makes every rank stop, and rank 0 names it and its shard. */
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mpi_incidents.h"

struct status {
	int failed;
	char text[760];
};

static int rank, nranks;
static char where[96] = "(listing the traces)";   /* this rank's part, for messages */
static char crash_line[200];

static void
on_crash(int sig)
{
	ssize_t w = write(STDERR_FILENO, crash_line, strlen(crash_line));

	(void)w;
	signal(sig, SIG_DFL);
	raise(sig);
}

/* A rank that dies names its shard before mpirun reports the exit. */
static void
catch_crashes(void)
{
	static const int sigs[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT };

	snprintf(crash_line, sizeof(crash_line), "mscope incidents: rank %d %s: crashed\n",
		rank, where);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		signal(sigs[i], on_crash);
}

/* Wait for every rank sleeping, not spinning in MPI's busy poll: a rank done
 * with its shard leaves the CPU to the others (and to whatever else runs). */
static void
wait_all(void)
{
	MPI_Request req;
	int done = 0;

	MPI_Ibarrier(MPI_COMM_WORLD, &req);
	for (;;) {
		struct timespec ts = { 0, 1000000 };

		MPI_Test(&req, &done, MPI_STATUS_IGNORE);
		if (done)
			break;
		nanosleep(&ts, NULL);
	}
}

/*
 * Collective: every rank says whether it failed (msg != NULL); rank 0 prints
 * a line per failed rank. @return 1 on every rank when some rank failed.
 */
static int
failed(const char *msg)
{
	struct status me, *all = NULL;
	int any = 0;

	wait_all();
	memset(&me, 0, sizeof(me));
	if (msg) {
		me.failed = 1;
		snprintf(me.text, sizeof(me.text), "%s", msg);
	}
	if (rank == 0 && (all = calloc((size_t)nranks, sizeof(*all))) == NULL) {
		me.failed = 1;
		snprintf(me.text, sizeof(me.text), "out of memory");
	}
	MPI_Gather(&me, sizeof(me), MPI_BYTE, all, sizeof(me), MPI_BYTE, 0, MPI_COMM_WORLD);
	MPI_Allreduce(&me.failed, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
	if (rank == 0 && any) {
		for (int r = 0; all && r < nranks; r++)
			if (all[r].failed)
				fprintf(stderr, "mscope incidents: rank %d %s\n", r, all[r].text);
		if (all == NULL)
			fprintf(stderr, "mscope incidents: rank 0: %s\n", me.text);
	}
	free(all);
	return any;
}

/* The message of a rank: its part, then what went wrong. */
static const char *
msg(const char *text)
{
	static char buf[760];

	snprintf(buf, sizeof(buf), "%s: %s", where, text);
	return buf;
}

/* Whether every rank listed the same files and planned the same shards. */
static int
same_plan(const struct mscope_inc_scan *s)
{
	struct mscope_inc_stats st;
	unsigned long long h = 1469598103934665603ull, lo, hi;
	double v[2];

	mscope_inc_stats(s, &st);
	h = (h ^ st.nodes) * 1099511628211ull;
	h = (h ^ st.files) * 1099511628211ull;
	for (int k = 0; k < nranks; k++) {
		mscope_inc_shard_range(s, (unsigned)k, &v[0], &v[1]);
		for (int j = 0; j < 2; j++) {
			unsigned long long b;

			memcpy(&b, &v[j], sizeof(b));
			h = (h ^ b) * 1099511628211ull;
		}
	}
	MPI_Allreduce(&h, &lo, 1, MPI_UNSIGNED_LONG_LONG, MPI_MIN, MPI_COMM_WORLD);
	MPI_Allreduce(&h, &hi, 1, MPI_UNSIGNED_LONG_LONG, MPI_MAX, MPI_COMM_WORLD);
	return lo == hi;
}

/* Every rank's export, gathered on every rank, merged. */
static int
exchange_bins(struct mscope_inc_scan *s, struct mscope_an_error *err)
{
	void *mine = NULL;
	size_t len = 0, total = 0;
	unsigned long long ml;
	unsigned long long *lens = calloc((size_t)nranks, sizeof(*lens));
	int *counts = calloc((size_t)nranks, sizeof(*counts));
	int *displs = calloc((size_t)nranks, sizeof(*displs));
	const void **bufs = calloc((size_t)nranks, sizeof(*bufs));
	size_t *blens = calloc((size_t)nranks, sizeof(*blens));
	unsigned char *all = NULL;
	int rc = -1, bad = 0;

	err->text[0] = '\0';
	if (!lens || !counts || !displs || !bufs || !blens ||
			mscope_inc_shard_export(s, &mine, &len, err)) {
		snprintf(err->text, sizeof(err->text), "out of memory");
		bad = 1;
	}
	ml = bad ? 0 : len;
	if (failed(bad ? msg(err->text) : NULL))
		goto out;
	MPI_Allgather(&ml, 1, MPI_UNSIGNED_LONG_LONG, lens, 1, MPI_UNSIGNED_LONG_LONG,
		MPI_COMM_WORLD);
	for (int r = 0; r < nranks; r++) {
		if (lens[r] > (unsigned long long)(1u << 30) || total + lens[r] > (1ull << 31) - 1)
			bad = 1;   /* MPI counts are ints: bins beyond 2 GB need a bigger bin */
		counts[r] = (int)lens[r];
		displs[r] = (int)total;
		total += lens[r];
	}
	if (!bad && (all = malloc(total ? total : 1)) == NULL)
		bad = 1;
	if (failed(bad ? msg("the shards' bins exceed 2 GB, or out of memory: use a wider --bin")
			: NULL))
		goto out;
	MPI_Allgatherv(mine, (int)len, MPI_BYTE, all, counts, displs, MPI_BYTE, MPI_COMM_WORLD);
	for (int r = 0; r < nranks; r++) {
		bufs[r] = all + displs[r];
		blens[r] = lens[r];
	}
	rc = mscope_inc_shard_merge(s, bufs, blens, (size_t)nranks, err);
out:
	free(mine);
	free(all);
	free(lens);
	free(counts);
	free(displs);
	free(bufs);
	free(blens);
	return rc;
}

/* Incidents to ranks: most costly first, each to the least loaded rank
 * (the same on every rank). owner[i] = its rank. */
static int
assign(const struct mscope_inc_scan *s, int *owner)
{
	size_t n = mscope_inc_count(s);
	double *cost = malloc((n ? n : 1) * sizeof(*cost));
	double *load = calloc((size_t)nranks, sizeof(*load));
	unsigned char *done = calloc(n ? n : 1, 1);

	if (!cost || !load || !done) {
		free(cost);
		free(load);
		free(done);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		cost[i] = mscope_inc_cost(s, i) + 1;
	for (size_t k = 0; k < n; k++) {
		size_t best = n;
		int r = 0;

		for (size_t i = 0; i < n; i++)
			if (!done[i] && (best == n || cost[i] > cost[best]))
				best = i;
		for (int q = 1; q < nranks; q++)
			if (load[q] < load[r])
				r = q;
		done[best] = 1;
		owner[best] = r;
		load[r] += cost[best];
	}
	free(cost);
	free(load);
	free(done);
	return 0;
}

/* Diagnose this rank's incidents; rank 0 gathers the others' as JSON text. */
static int
diagnose_shared(struct mscope_inc_scan *s, struct mscope_an_opts *ao, int show,
		size_t *mine, double *wall, struct mscope_an_error *err)
{
	size_t n = mscope_inc_count(s);
	int *owner = calloc(n, sizeof(*owner));
	unsigned char *mask = calloc(n, 1);
	char *text = NULL, *all = NULL;
	size_t len = 0;
	int *counts = NULL, *displs = NULL, bad = 0, rc = -1, total = 0, tl;
	double t0 = MPI_Wtime(), p99;
	const char *fatal = NULL;

	*mine = 0;
	if (owner == NULL || mask == NULL || assign(s, owner)) {
		fatal = "out of memory";
		goto check;
	}
	for (size_t i = 0; i < n; i++)
		if (owner[i] == rank) {
			mask[i] = 1;
			(*mine)++;
		}
	mscope_inc_diagnose_only(s, mask);
	/* the victims' threshold: every rank that needs it measures the same
	 * window of normal operation (rank 0 for the report) */
	if (ao->threshold_us <= 0 && (*mine || rank == 0)) {
		if (mscope_inc_normal_latency(s, ao, &p99, err) == 0)
			ao->threshold_us = p99;
		else if (rank == 0)
			fprintf(stderr, "mscope incidents: warning: %s: victims above each "
				"incident's own p99 latency\n", err->text);
	}
	for (size_t i = 0; i < n; i++) {
		json_t *d;
		char *t, *p;

		if (owner[i] != rank)
			continue;
		if (show)
			fprintf(stderr, "\rdiagnosing incident %zu of %zu", i + 1, n);
		if (mscope_inc_diagnose(s, i, ao, &d, err) == 0)
			json_decref(d);
		else if (mscope_inc_diag_error(s, i) == NULL) {
			fatal = err->text;   /* its window could not be cut */
			break;
		}
		t = mscope_inc_diag_export(s, i);
		p = t ? realloc(text, len + strlen(t) + 32) : NULL;
		if (p == NULL) {
			free(t);
			fatal = "out of memory";
			break;
		}
		text = p;
		len += (size_t)sprintf(text + len, "%zu %s\n", i, t);
		free(t);
	}
	if (show)
		fprintf(stderr, "\r%40s\r", "");
	*wall = MPI_Wtime() - t0;
check:
	if (failed(fatal ? msg(fatal) : NULL))
		goto out;
	tl = len > (1u << 30) ? -1 : (int)len;
	if (rank == 0 && ((counts = calloc((size_t)nranks, sizeof(*counts))) == NULL ||
			(displs = calloc((size_t)nranks, sizeof(*displs))) == NULL))
		tl = -1;
	MPI_Gather(&tl, 1, MPI_INT, counts, 1, MPI_INT, 0, MPI_COMM_WORLD);
	for (int r = 0; rank == 0 && r < nranks; r++) {
		if (counts[r] < 0 || total > (1 << 30))
			bad = 1;
		displs[r] = total;
		total += counts[r] > 0 ? counts[r] : 0;
	}
	if (rank == 0 && !bad && (all = malloc((size_t)total + 1)) == NULL)
		bad = 1;
	if (failed(bad ? msg("the diagnoses exceed 1 GB, or out of memory") : tl < 0 ?
			msg("the diagnoses exceed 1 GB") : NULL))
		goto out;
	MPI_Gatherv(text, (int)len, MPI_BYTE, all, counts, displs, MPI_BYTE, 0, MPI_COMM_WORLD);
	if (rank == 0) {
		char *p = all, *end = all + total;

		*end = '\0';
		while (p < end) {
			char *nl = strchr(p, '\n'), *sp;
			size_t i = strtoul(p, &sp, 10);

			if (nl == NULL || *sp != ' ' || i >= n)
				break;
			*nl = '\0';
			if (owner[i] != 0 && mscope_inc_diag_import(s, i, sp + 1, err)) {
				bad = 1;
				break;
			}
			p = nl + 1;
		}
		if (p < end)
			bad = 1;
		for (size_t i = 0; i < n && !bad; i++)
			if (mscope_inc_diag_error(s, i))
				fprintf(stderr, "mscope incidents: incident %zu: %s\n", i + 1,
					mscope_inc_diag_error(s, i));
	}
	if (failed(bad ? msg("a diagnosis could not be read back") : NULL))
		goto out;
	rc = 0;
out:
	mscope_inc_diagnose_only(s, NULL);
	free(owner);
	free(mask);
	free(text);
	free(all);
	free(counts);
	free(displs);
	return rc;
}

/* Per-rank figures on stderr (MSCOPE_MPI_STATS set), for tools/bench-mpi. */
static void
print_stats(const struct mscope_inc_shard_stats *st, size_t ndiag, double diag_wall,
		double total_wall, double from_us, double to_us)
{
	struct timespec cpu;
	double me[10], *all = NULL;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
	me[0] = (double)st->hops;
	me[1] = st->cpu_s;
	me[2] = st->wall_s;
	me[3] = st->rescans;
	me[4] = (double)ndiag;
	me[5] = diag_wall;
	me[6] = total_wall;
	me[7] = (double)cpu.tv_sec + (double)cpu.tv_nsec / 1e9;
	me[8] = from_us;
	me[9] = to_us;
	if (rank == 0)
		all = calloc((size_t)nranks * 10, sizeof(*all));
	MPI_Gather(me, 10, MPI_DOUBLE, all, 10, MPI_DOUBLE, 0, MPI_COMM_WORLD);
	for (int r = 0; all && r < nranks; r++) {
		const double *x = all + 10 * r;

		fprintf(stderr, "rank %d: scan %.1f M hops in %.2f s wall, %.2f s CPU "
			"(%.2f M hops/s), look-back rescans %.0f; %.0f diagnoses in %.2f s; "
			"total %.2f s wall, %.2f s CPU; shard %.3f-%.3f s\n", r, x[0] / 1e6, x[2],
			x[1], x[2] > 0 ? x[0] / x[2] / 1e6 : 0, x[3], x[4], x[5], x[6], x[7],
			x[8] / 1e6, x[9] / 1e6);
	}
	free(all);
}

int
mpi_incidents(const char *dir, struct mscope_inc_opts *o, struct mscope_an_opts *ao,
		int diagnose, int show, struct mscope_inc_scan **out)
{
	struct mscope_an_error err;
	struct mscope_inc_scan *s;
	struct mscope_inc_shard_stats st;
	double from, to, t0 = MPI_Wtime(), diag_wall = 0;
	size_t ndiag = 0;
	int stats;

	*out = NULL;
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &nranks);
	show = show && rank == 0;
	if (!show)
		o->progress = NULL;
	catch_crashes();
	s = mscope_inc_scan_open(dir, o, &err);
	if (failed(s ? NULL : msg(err.text)))
		goto fail;
	if (failed(mscope_inc_shard_plan(s, (unsigned)nranks, &err) ? msg(err.text) : NULL))
		goto fail;
	if (failed(same_plan(s) ? NULL : msg("the ranks see different traces (another file "
			"system, or files changed during the run)")))
		goto fail;
	mscope_inc_shard_range(s, (unsigned)rank, &from, &to);
	snprintf(where, sizeof(where), "(shard %.3f-%.3f s)", from / 1e6, to / 1e6);
	catch_crashes();
	/* test hook: this rank dies here, before any report can exist */
	const char *crash = getenv("MSCOPE_TEST_MPI_CRASH_RANK");
	if (crash && atoi(crash) == rank)
		raise(SIGSEGV);
	if (failed(mscope_inc_scan_shard(s, (unsigned)rank, &err) ? msg(err.text) : NULL))
		goto fail;
	if (show)
		fprintf(stderr, "\r%40s\r", "");
	mscope_inc_shard_stats(s, &st);
	if (exchange_bins(s, &err) < 0) {
		/* exchange_bins() reported its own collective failures; a merge
		 * failure is every rank's (they merge the same buffers) */
		if (err.text[0] && rank == 0)
			fprintf(stderr, "mscope incidents: %s\n", err.text);
		goto fail;
	}
	if (mscope_inc_detect(s, o, &err)) {   /* same data on every rank: same result */
		if (rank == 0)
			fprintf(stderr, "mscope incidents: %s\n", err.text);
		goto fail;
	}
	if (diagnose && mscope_inc_count(s) &&
			diagnose_shared(s, ao, show, &ndiag, &diag_wall, &err))
		goto fail;
	stats = getenv("MSCOPE_MPI_STATS") != NULL;   /* rank 0's environment decides */
	MPI_Bcast(&stats, 1, MPI_INT, 0, MPI_COMM_WORLD);
	if (stats)
		print_stats(&st, ndiag, diag_wall, MPI_Wtime() - t0, from, to);
	if (rank == 0)
		*out = s;
	else
		mscope_inc_free(s);
	return 0;
fail:
	mscope_inc_free(s);
	return 1;
}
