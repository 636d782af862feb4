/* SPDX-License-Identifier: BSD-3-Clause */
/* Windows (--from/--to): the victims of a window are judged against the
 * window's own packets; with no victims the report says which threshold
 * judged that. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "an_testutil.h"
#include "mscope_analyzer.h"

#define T0 1000000
#define US 1000

/* source -> f, one packet per us; f stalls over [s0, s1) (us from T0) and
 * over [s2, s3): packets arriving then wait for its end. */
static void
two_stalls(const char *dir, int n, int64_t s0, int64_t s1, int64_t s2, int64_t s3)
{
	uint32_t *wire = calloc((size_t)n, sizeof(*wire)), *flow = calloc((size_t)n, 4);
	int64_t *src = calloc((size_t)n, 8), *deq = calloc((size_t)n, 8), *tx = calloc((size_t)n, 8);

	for (int i = 0; i < n; i++) {
		int64_t t = (int64_t)i * US;
		wire[i] = 1000 + (uint32_t)i;
		src[i] = T0 + t;
		deq[i] = src[i] + 100;
		if (t >= s0 * US && t < s1 * US)
			deq[i] = T0 + s1 * US;
		if (t >= s2 * US && t < s3 * US)
			deq[i] = T0 + s3 * US;
		if (i && deq[i] < deq[i - 1])
			deq[i] = deq[i - 1];
		tx[i] = deq[i] + 100;
	}
	tu_source(dir, "source", (size_t)n, wire, flow, src, 1);
	tu_node(dir, "f", (size_t)n, wire, flow, deq, tx, NULL, 1);
	free(wire);
	free(flow);
	free(src);
	free(deq);
	free(tx);
}

static json_t *
analyse(const char *dir, int64_t from_ns, int64_t to_ns, double threshold_us)
{
	struct mscope_an_opts o;
	struct mscope_an_error err;
	struct mscope_analysis *an;
	json_t *doc;

	mscope_an_opts_init(&o);
	o.from_ns = from_ns;
	o.to_ns = to_ns;
	o.threshold_us = threshold_us;
	o.threads = 1;
	an = mscope_an_open(dir, &o, &err);
	cr_assert_not_null(an, "%s", err.text);
	cr_assert_eq(mscope_an_diagnose(an, &err), 0, "%s", err.text);
	doc = mscope_an_json(an);
	cr_assert_not_null(doc);
	mscope_an_close(an);
	return doc;
}

static double
sum_real(json_t *doc, const char *key)
{
	return json_real_value(json_object_get(json_object_get(doc, "summary"), key));
}

static json_int_t
sum_int(json_t *doc, const char *key)
{
	return json_integer_value(json_object_get(json_object_get(doc, "summary"), key));
}

static const char *
sum_str(json_t *doc, const char *key)
{
	return json_string_value(json_object_get(json_object_get(doc, "summary"), key));
}

/* A 50 us stall at 100 us and a 10 us one at 1500 us: the run's p99 is set
 * by the first; the window around the second has victims of its own. */
Test(window, percentile_of_the_window)
{
	char *dir = tu_mkdir();
	json_t *run, *win;

	two_stalls(dir, 2000, 100, 150, 1500, 1510);
	run = analyse(dir, 0, -1, 0);
	cr_assert_gt(sum_real(run, "latency_threshold_us"), 20);
	cr_assert(strstr(sum_str(run, "latency_threshold_from"), "p99 of the 2000 packets") != NULL,
		"%s", sum_str(run, "latency_threshold_from"));
	win = analyse(dir, 1400 * US, 1600 * US, 0);
	cr_assert_lt(sum_real(win, "latency_threshold_us"), 10.5);
	cr_assert_gt(sum_real(win, "latency_threshold_us"), 5);
	cr_assert(strstr(sum_str(win, "latency_threshold_from"), "that entered in the window")
		!= NULL, "%s", sum_str(win, "latency_threshold_from"));
	cr_assert_geq(sum_int(win, "victims"), 1);
	/* every victim of the window entered in it */
	cr_assert_gt(json_array_size(json_object_get(win, "culprits")), 0);
	json_decref(run);
	json_decref(win);
	tu_rmdir(dir);
}

/* An explicit threshold still wins, and says so. */
Test(window, threshold_overrides)
{
	char *dir = tu_mkdir();
	json_t *win;

	two_stalls(dir, 2000, 100, 150, 1500, 1510);
	win = analyse(dir, 1400 * US, 1600 * US, 30);
	cr_assert_eq(sum_int(win, "victims"), 0);
	cr_assert_str_eq(sum_str(win, "latency_threshold_from"), "--threshold");
	cr_assert_eq(sum_real(win, "latency_threshold_us"), 30);
	json_decref(win);
	tu_rmdir(dir);
}
