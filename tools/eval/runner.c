/* SPDX-License-Identifier: BSD-3-Clause */
/* Running the simulator and the analyzer for `mscope eval`: in-process
 * through their libraries, or (--subprocess) as subprocesses of the mscope
 * program itself. Either way the results land in files (truth,
 * analysis JSON, relations), so every run can be kept and inspected. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runner.h"

#include "mscope_analyzer.h"
#include "mscope_sim.h"

static void
seterr(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
}

/* Run argv with stdout+stderr to `log`; @return exit status or -1. */
static int
spawn(char *const argv[], const char *log, char *err, size_t errlen)
{
	pid_t pid;
	int st;

	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		seterr(err, errlen, "fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		int nul = open("/dev/null", O_RDONLY);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		if (nul >= 0)
			dup2(nul, 0);
		execv(argv[0], argv);
		_exit(127);
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR) {
			seterr(err, errlen, "waitpid: %s", strerror(errno));
			return -1;
		}
	if (WIFSIGNALED(st)) {
		seterr(err, errlen, "%s %s killed by signal %d (see %s)", argv[0], argv[1],
			WTERMSIG(st), log);
		return -1;
	}
	return WEXITSTATUS(st);
}

static void
log_tail(const char *log, char *err, size_t errlen)
{
	char buf[4096] = "";
	FILE *f = fopen(log, "r");
	size_t n;
	char *line;

	if (!f)
		return;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	while (n && (buf[n - 1] == '\n'))
		buf[--n] = '\0';
	line = strrchr(buf, '\n');
	seterr(err, errlen, "%s", line ? line + 1 : buf);
}

int
ev_run_sim(const struct ev_runner *r, const char *scenario, const char *outdir,
		char *err, size_t errlen)
{
	if (!r->subprocess) {
		struct mscope_sim_scenario *s = mscope_sim_load(scenario, err, errlen);
		struct mscope_sim_opts o = MSCOPE_SIM_OPTS_DEFAULT;
		int rc;

		if (!s)
			return -1;
		o.overwrite = 1;
		rc = mscope_sim_run(s, &o, outdir, NULL, err, errlen);
		mscope_sim_free(s);
		return rc;
	}
	{
		char log[4096];
		char *argv[] = { (char *)r->self, "sim", (char *)scenario, "-o", (char *)outdir, NULL };
		int rc;

		snprintf(log, sizeof(log), "%s.log", outdir);
		rc = spawn(argv, log, err, errlen);
		if (rc < 0)
			return -1;
		if (rc != 0) {
			char tail[512] = "";

			log_tail(log, tail, sizeof(tail));
			seterr(err, errlen, "mscope sim %s: exit %d: %s", scenario, rc, tail);
			return -1;
		}
		return 0;
	}
}

static int
analyze_inproc(const struct ev_analysis_req *q, char *err, size_t errlen)
{
	struct mscope_an_opts o;
	struct mscope_an_error aerr = { { 0 } };
	struct mscope_an_rate *rates = NULL;
	struct mscope_analysis *an;
	json_t *doc;
	FILE *f;
	int rc = -1;

	mscope_an_opts_init(&o);
	o.dag = q->dag_paper ? MSCOPE_AN_DAG_PAPER : MSCOPE_AN_DAG_OURS;
	o.src_flows = q->src_excess ? MSCOPE_AN_FLOWS_EXCESS : MSCOPE_AN_FLOWS_PACKETS;
	o.from_ns = (int64_t)(q->from_us * 1000);
	o.to_ns = (int64_t)(q->to_us * 1000);
	if (q->threshold_us > 0)
		o.threshold_us = q->threshold_us;
	o.threads = 1;
	if (q->nrates) {
		rates = calloc(q->nrates, sizeof(*rates));
		if (!rates) {
			seterr(err, errlen, "out of memory");
			return -1;
		}
		for (size_t i = 0; i < q->nrates; i++) {
			snprintf(rates[i].name, sizeof(rates[i].name), "%s", q->rate_nf[i]);
			rates[i].mpps = q->rate_mpps[i];
		}
		o.rates = rates;
		o.nrates = q->nrates;
	}
	an = mscope_an_open(q->rundir, &o, &aerr);
	if (!an || mscope_an_diagnose(an, &aerr) < 0) {
		seterr(err, errlen, "analyze %s: %s", q->rundir, aerr.text);
		goto out;
	}
	doc = mscope_an_json(an);
	if (!doc || json_dump_file(doc, q->json_out, JSON_COMPACT) < 0) {
		json_decref(doc);
		seterr(err, errlen, "%s: cannot write analysis", q->json_out);
		goto out;
	}
	json_decref(doc);
	if (!q->rel_out) {
		rc = 0;
		goto out;
	}
	f = fopen(q->rel_out, "w");
	if (!f || mscope_an_write_relations(an, f) < 0) {
		if (f)
			fclose(f);
		seterr(err, errlen, "%s: cannot write relations", q->rel_out);
		goto out;
	}
	if (fclose(f) != 0) {
		seterr(err, errlen, "%s: cannot write relations", q->rel_out);
		goto out;
	}
	rc = 0;
out:
	mscope_an_close(an);
	free(rates);
	return rc;
}

int
ev_run_analyze(const struct ev_runner *r, const struct ev_analysis_req *q,
		char *err, size_t errlen)
{
	if (!r->subprocess)
		return analyze_inproc(q, err, errlen);
	{
		char from[64], to[64], thr[64], log[4096];
		char *argv[32 + 2 * EV_MAX_RATES];
		char rates[EV_MAX_RATES][128];
		int a = 0, rc;

		snprintf(from, sizeof(from), "%.3fus", q->from_us);
		snprintf(to, sizeof(to), "%.3fus", q->to_us);
		snprintf(log, sizeof(log), "%s.log", q->json_out);
		argv[a++] = (char *)r->self;
		argv[a++] = "analyze";
		argv[a++] = (char *)q->rundir;
		argv[a++] = "--json";
		argv[a++] = (char *)q->json_out;
		if (q->rel_out) {
			argv[a++] = "--relations";
			argv[a++] = (char *)q->rel_out;
		}
		argv[a++] = "--from";
		argv[a++] = from;
		argv[a++] = "--to";
		argv[a++] = to;
		argv[a++] = q->dag_paper ? "--dag=paper" : "--dag=ours";
		argv[a++] = q->src_excess ? "--source-flows=excess" : "--source-flows=packets";
		if (q->threshold_us > 0) {
			snprintf(thr, sizeof(thr), "--threshold=%.3fus", q->threshold_us);
			argv[a++] = thr;
		}
		for (size_t i = 0; i < q->nrates && i < EV_MAX_RATES; i++) {
			snprintf(rates[i], sizeof(rates[i]), "%s=%.6g", q->rate_nf[i], q->rate_mpps[i]);
			argv[a++] = "--rate";
			argv[a++] = rates[i];
		}
		argv[a] = NULL;
		/* stdout (the readable table) is not needed: it goes to the log */
		rc = spawn(argv, log, err, errlen);
		if (rc < 0)
			return -1;
		if (rc != 0) {
			char tail[512] = "";

			log_tail(log, tail, sizeof(tail));
			seterr(err, errlen, "mscope analyze %s: exit %d: %s", q->rundir, rc, tail);
			return -1;
		}
		return 0;
	}
}

