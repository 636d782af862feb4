/* SPDX-License-Identifier: BSD-3-Clause */
/* Long runs and the scenario parser's limits: victims found side by side with
 * the main run (re-runs copied from it, stopped when back in its state) are
 * those of full re-runs; an extreme slow-down stays extreme (issue 16 defect
 * 8); `--dry-run --json` prints a scenario that loads back to itself. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "mscope_sim.h"

static struct mscope_sim_scenario *
load_file(const char *rel)
{
	char path[4096], err[512];
	const char *src = getenv("MSCOPE_SRC");

	snprintf(path, sizeof(path), "%s/%s", src ? src : ".", rel);
	struct mscope_sim_scenario *s = mscope_sim_load(path, err, sizeof(err));
	cr_assert_not_null(s, "%s", err);
	return s;
}

static struct mscope_sim_scenario *
load_text(const char *text, char *err, size_t len)
{
	json_error_t je;
	json_t *root = json_loads(text, 0, &je);

	cr_assert_not_null(root, "test JSON: %s", je.text);
	struct mscope_sim_scenario *s = mscope_sim_load_json(root, "t", NULL, err, len);
	json_decref(root);
	return s;
}

static char *
tmpdir(void)
{
	char *d = strdup("/tmp/mscope-test-long.XXXXXX");

	cr_assert_not_null(mkdtemp(d));
	return d;
}

static void
rm_rf(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char p[4096];

	while (d && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		unlink(p);
	}
	if (d)
		closedir(d);
	rmdir(dir);
}

/* Every packet's fate in one run, by stream and index. */
struct fates {
	uint64_t *out[65];          /* out_tsc; UINT64_MAX dropped */
	uint64_t n[65], cap[65];
};

static void
on_packet(void *arg, const struct mscope_sim_packet *p)
{
	struct fates *f = arg;
	unsigned s = p->stream;

	if (p->index >= f->cap[s]) {
		uint64_t nc = f->cap[s] ? f->cap[s] * 2 : 4096;
		while (nc <= p->index)
			nc *= 2;
		f->out[s] = realloc(f->out[s], nc * sizeof(uint64_t));
		cr_assert_not_null(f->out[s]);
		f->cap[s] = nc;
	}
	f->out[s][p->index] = p->dropped ? UINT64_MAX : p->out_tsc;
	if (p->index >= f->n[s])
		f->n[s] = p->index + 1;
}

static void
fates_free(struct fates *f)
{
	for (int i = 0; i < 65; i++)
		free(f->out[i]);
}

/* Victims of fault i by the definition, from full runs: with all faults and
 * without fault i. *near counts packets within 1 ns of the threshold (the
 * outcomes are in ns, the simulator compares in ps). */
static uint64_t
expected_victims(const struct fates *all, const struct fates *wo, unsigned skip, uint64_t thr_ns,
		uint64_t *near)
{
	uint64_t v = 0;

	for (unsigned s = 0; s < 65; s++) {
		if (s == skip)
			continue;
		uint64_t m = all->n[s] < wo->n[s] ? all->n[s] : wo->n[s];
		for (uint64_t i = 0; i < m; i++) {
			uint64_t fo = all->out[s][i], w = wo->out[s][i];
			if (w == UINT64_MAX || fo == 0 || w == 0)
				continue;
			if (fo == UINT64_MAX) {
				v++;
				continue;
			}
			if (fo + 1 >= w + thr_ns && fo <= w + thr_ns + 1)
				(*near)++;
			v += fo > w + thr_ns;
		}
	}
	return v;
}

static void
check_against_full_reruns(struct mscope_sim_scenario *s, double horizon_us)
{
	char err[512], p[4096];
	struct fates all = { 0 };
	struct mscope_sim_opts o = MSCOPE_SIM_OPTS_DEFAULT;
	unsigned nf = mscope_sim_fault_count(s);

	cr_assert_eq(mscope_sim_outcomes(s, &o, on_packet, &all, NULL, err, sizeof(err)), 0, "%s",
		err);
	char *dir = tmpdir();
	struct mscope_sim_stats st;
	o.victim_horizon_us = horizon_us;
	cr_assert_eq(mscope_sim_run(s, &o, dir, &st, err, sizeof(err)), 0, "%s", err);
	snprintf(p, sizeof(p), "%s/truth.json", dir);
	json_t *truth = json_load_file(p, 0, NULL);
	cr_assert_not_null(truth);
	json_t *faults = json_object_get(truth, "faults");
	cr_assert_eq(json_array_size(faults), nf);
	for (unsigned i = 0; i < nf; i++) {
		struct fates wo = { 0 };
		struct mscope_sim_opts d = MSCOPE_SIM_OPTS_DEFAULT;
		d.disabled_faults = 1ULL << i;
		cr_assert_eq(mscope_sim_outcomes(s, &d, on_packet, &wo, NULL, err, sizeof(err)), 0);
		const json_t *f = json_array_get(faults, i);
		int burst = !strcmp(json_string_value(json_object_get(f, "kind")), "burst");
		uint64_t near = 0;
		uint64_t want = expected_victims(&all, &wo, burst ? 1 + i : 99, 50000, &near);
		uint64_t got = (uint64_t)json_integer_value(json_object_get(f, "victims"));
		cr_assert_gt(want, 0, "fault %u: no victims at all: a weak test", i);
		if (horizon_us > 0)
			cr_assert(got <= want + near && got * 10 >= want * 9,
				"fault %u: %llu victims with a horizon, %llu without", i,
				(unsigned long long)got, (unsigned long long)want);
		else
			cr_assert(got + near >= want && got <= want + near,
				"fault %u: %llu victims side by side, %llu from full re-runs (%llu near "
				"the threshold)", i, (unsigned long long)got, (unsigned long long)want,
				(unsigned long long)near);
		fates_free(&wo);
	}
	/* the re-runs did not each simulate the whole run */
	cr_assert_lt(st.rerun_hops, st.hops * nf * 3 / 4, "re-runs: %llu hops, main run %llu",
		(unsigned long long)st.rerun_hops, (unsigned long long)st.hops);
	json_decref(truth);
	fates_free(&all);
	rm_rf(dir);
	free(dir);
}

Test(long, victims_side_by_side_equal_full_reruns, .timeout = 120)
{
	struct mscope_sim_scenario *s = load_file("tools/scenarios/long3-chain.json");

	cr_assert_eq(mscope_sim_fault_count(s), 4);
	check_against_full_reruns(s, 0);
	mscope_sim_free(s);
}

Test(long, victim_horizon_finds_nearly_all, .timeout = 120)
{
	struct mscope_sim_scenario *s = load_file("tools/scenarios/long3-chain.json");

	check_against_full_reruns(s, 200000);
	mscope_sim_free(s);
}

/* The bytes do not depend on the thread count (re-runs on workers or not). */
Test(long, same_bytes_any_thread_count, .timeout = 120)
{
	struct mscope_sim_scenario *s = load_file("tools/scenarios/long3-chain.json");
	struct mscope_sim_opts a = MSCOPE_SIM_OPTS_DEFAULT, b = MSCOPE_SIM_OPTS_DEFAULT;
	char err[512], pa[4096], pb[4096];
	char *da = tmpdir(), *db = tmpdir();

	a.threads = 1;
	b.threads = 3;
	cr_assert_eq(mscope_sim_run(s, &a, da, NULL, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(mscope_sim_run(s, &b, db, NULL, err, sizeof(err)), 0, "%s", err);
	static const char *files[] = { "truth.json", "victims.jsonl", "vpn1.mst", "source.mst" };
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(pa, sizeof(pa), "%s/%s", da, files[i]);
		snprintf(pb, sizeof(pb), "%s/%s", db, files[i]);
		FILE *x = fopen(pa, "rb"), *y = fopen(pb, "rb");
		cr_assert(x && y);
		int cx, cy;
		long n = 0;
		do {
			cx = fgetc(x);
			cy = fgetc(y);
			n++;
		} while (cx == cy && cx != EOF);
		cr_assert_eq(cx, cy, "%s differs at byte %ld", files[i], n);
		cr_assert_gt(n, 10);
		fclose(x);
		fclose(y);
	}
	rm_rf(da);
	rm_rf(db);
	free(da);
	free(db);
	mscope_sim_free(s);
}

/* Issue 16 defect 8: a slow-down whose service time does not fit 64 bits of
 * ps is refused naming the field; the most extreme accepted one (and two of
 * them overlapping, saturated) stays a slow-down with victims. */
Test(long, extreme_slowdown_stays_extreme, .timeout = 60)
{
	char err[512];
	const char *base = "{\"duration_ms\": 2, \"nfs\": [{\"name\": \"fw1\", \"type\": \"fw\", "
		"\"rate_mpps\": %s}], \"links\": [{\"from\": \"source\", \"to\": \"fw1\"}], "
		"\"traffic\": {\"synthetic\": {\"flows\": 10, \"rate_mpps\": 0.5, \"arrival\": "
		"\"cbr\"}}, \"faults\": [%s]}";
	char text[2048];

	snprintf(text, sizeof(text), base, "1", "{\"kind\": \"slow\", \"nf\": \"fw1\", "
		"\"at_us\": 100, \"duration_us\": 500, \"factor\": 1e-15}");
	cr_assert_null(load_text(text, err, sizeof(err)));
	cr_assert(strstr(err, "faults[0].factor") != NULL, "%s", err);
	snprintf(text, sizeof(text), base, "1e-300", "");
	cr_assert_null(load_text(text, err, sizeof(err)));
	cr_assert(strstr(err, "nfs[0].rate_mpps") != NULL, "%s", err);

	snprintf(text, sizeof(text), base, "1", "{\"kind\": \"slow\", \"nf\": \"fw1\", "
		"\"at_us\": 100, \"duration_us\": 500, \"factor\": 1e-6}, {\"kind\": \"bug\", "
		"\"nf\": \"fw1\", \"match\": {}, \"slowdown\": 1e6, \"at_us\": 100, "
		"\"duration_us\": 500}");
	struct mscope_sim_scenario *s = load_text(text, err, sizeof(err));
	cr_assert_not_null(s, "%s", err);
	char *dir = tmpdir();
	struct mscope_sim_stats st;
	struct mscope_sim_opts o = MSCOPE_SIM_OPTS_DEFAULT;
	cr_assert_eq(mscope_sim_run(s, &o, dir, &st, err, sizeof(err)), 0, "%s", err);
	/* 1 us / 1e-6 = 1 s, x 1e6 when both act: one packet takes ~1e6 s */
	cr_assert_geq(st.end_tsc - MSCOPE_SIM_START_TSC, 900000000000000ULL);  /* jitter 5% */
	cr_assert_gt(st.victims, 500, "victims: %llu", (unsigned long long)st.victims);
	rm_rf(dir);
	mscope_sim_free(s);

	/* at 1 packet/s both together would take 1e24 ps: saturated at 2^62 ps (53 days) */
	snprintf(text, sizeof(text), base, "1e-6", "{\"kind\": \"slow\", \"nf\": \"fw1\", "
		"\"at_us\": 0, \"duration_us\": 500, \"factor\": 1e-6}, {\"kind\": \"bug\", "
		"\"nf\": \"fw1\", \"match\": {}, \"slowdown\": 1e6, \"at_us\": 0, "
		"\"duration_us\": 500}");
	s = load_text(text, err, sizeof(err));
	cr_assert_not_null(s, "%s", err);
	o.no_victims = 1;
	cr_assert_eq(mscope_sim_run(s, &o, dir, &st, err, sizeof(err)), 0, "%s", err);
	cr_assert_geq(st.end_tsc - MSCOPE_SIM_START_TSC, (1ULL << 62) / 1000);
	rm_rf(dir);
	free(dir);
	mscope_sim_free(s);
}

/* --dry-run --json: every default filled in; printed and loaded again, the
 * scenario is the same. */
Test(long, scenario_json_round_trip)
{
	struct mscope_sim_scenario *s = load_file("tools/scenarios/long3-chain.json");
	char err[512];
	json_t *a = mscope_sim_scenario_json(s);

	cr_assert_not_null(a);
	const json_t *nf = json_array_get(json_object_get(a, "nfs"), 1);
	cr_assert_str_eq(json_string_value(json_object_get(nf, "name")), "fw1");
	cr_assert_eq(json_integer_value(json_object_get(nf, "queue")), 1024);
	cr_assert_float_eq(json_number_value(json_object_get(nf, "jitter")), 0.05, 1e-12);
	cr_assert_eq(json_array_size(json_object_get(nf, "rules")), 2);
	const json_t *syn = json_object_get(json_object_get(a, "traffic"), "synthetic");
	cr_assert_str_eq(json_string_value(json_object_get(syn, "arrival")), "poisson");
	cr_assert_float_eq(json_number_value(json_object_get(syn, "alpha")), 1.2, 1e-12);
	cr_assert_eq(json_integer_value(json_object_get(json_object_get(a, "recording"),
		"segment_seconds")), 1);
	struct mscope_sim_scenario *t = mscope_sim_load_json(a, "x", NULL, err, sizeof(err));
	cr_assert_not_null(t, "%s", err);
	json_t *b = mscope_sim_scenario_json(t);
	cr_assert(json_equal(a, b), "%s\n---\n%s", json_dumps(a, 0), json_dumps(b, 0));
	json_decref(a);
	json_decref(b);
	mscope_sim_free(t);
	mscope_sim_free(s);
}
