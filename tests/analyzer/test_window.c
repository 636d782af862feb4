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

/* ---- the windowed read equals the whole read, on small frames and a node
 * rotated into segment files */

static struct mscope_trace_writer *
open_seg(const char *dir, const char *file, const char *nf, int role, unsigned seg,
		uint64_t seq0)
{
	struct mscope_trace_header h;
	struct mscope_trace_error err;
	struct mscope_writer_opts wo = { .frame_bytes = 2048, .rx_seq_start = seq0 };
	struct mscope_trace_writer *w;
	char path[512];

	memset(&h, 0, sizeof(h));
	h.role = (uint8_t)role;
	h.pid = 7;
	h.segment = seg;
	h.tsc_hz = 1000000000ULL;
	h.anchor_realtime_ns = 1700000000000000000LL;
	snprintf(h.nf_name, sizeof(h.nf_name), "%s", nf);
	snprintf(h.host, sizeof(h.host), "testhost");
	snprintf(h.run_id, sizeof(h.run_id), "r");
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	w = mscope_writer_open(path, &h, &wo, &err);
	cr_assert_not_null(w, "%s", err.text);
	return w;
}

/* source -> a -> b, 60000 packets over ~60 ms, 16 flows; a stalls 300 us at
 * 40 ms and 52 ms, a burst of one flow comes at ~48 ms; b's trace is rotated
 * every 15000 packets (4 segments, the first deleted). Frames of 2 KiB:
 * hundreds per file. */
static int early_clock;   /* a's trace starts with a clock record 1 ms before any packet */

static void
rotated_chain(const char *dir)
{
	enum { N = 60000 };
	uint32_t *wire = calloc(N, 4), *flow = calloc(N, 4);
	int64_t *src = calloc(N, 8), *ad = calloc(N, 8), *ae = calloc(N, 8);
	int64_t *bd = calloc(N, 8), *be = calloc(N, 8);
	uint64_t x = 12345;
	int64_t t = T0, afree = 0, bfree = 0;

	for (int i = 0; i < N; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		t += (int64_t)(x % 1600) + ((i >= 48000 && i < 48400) ? 0 : 200);
		src[i] = t;
		wire[i] = 100000 + (uint32_t)i;
		flow[i] = (i >= 48000 && i < 48400) ? 15 : (uint32_t)(x >> 20) % 15;
		/* a: 0.9 us per packet, stalls */
		int64_t s = src[i] + 100 > afree ? src[i] + 100 : afree;
		if ((s >= T0 + 40000 * US && s < T0 + 40300 * US))
			s = T0 + 40300 * US;
		if ((s >= T0 + 52000 * US && s < T0 + 52300 * US))
			s = T0 + 52300 * US;
		ad[i] = s;
		ae[i] = s + 900;
		afree = ae[i];
		s = ae[i] + 50 > bfree ? ae[i] + 50 : bfree;
		bd[i] = s;
		be[i] = s + 900;
		bfree = be[i];
	}
	tu_keys = NULL;
	struct mscope_trace_writer *w = open_seg(dir, "source.mst", "source", MSCOPE_ROLE_SOURCE, 0, 0);
	tu_flows(w, 16);
	for (int i = 0; i < N; i++) {
		uint64_t seq = MSCOPE_NO_LINK;
		struct mscope_tx_burst tx = { .tsc = (uint64_t)src[i], .offered = 1, .accepted = 1,
			.wire_id = &wire[i], .rx_seq = &seq, .flow = &flow[i] };
		cr_assert_eq(mscope_writer_tx(w, &tx), 0);
	}
	cr_assert_eq(mscope_writer_close(w), 0);
	/* a and b: one rx and one tx record per packet, in time order */
	for (int node = 0; node < 2; node++) {
		const int64_t *d = node ? bd : ad, *e = node ? be : ae;
		int seg = -1;
		w = NULL;
		for (int i = 0; i < N; i++) {
			if (node == 1 && i % 15000 == 0) {
				char file[64];
				if (w)
					cr_assert_eq(mscope_writer_close(w), 0);
				seg++;
				snprintf(file, sizeof(file), "b-p0q0-7.%06d.mst", seg);
				w = open_seg(dir, file, "b", MSCOPE_ROLE_RXQ, (unsigned)seg,
					(uint64_t)i);
				tu_flows(w, 16);
			} else if (node == 0 && w == NULL) {
				w = open_seg(dir, "a.mst", "a", MSCOPE_ROLE_RXQ, 0, 0);
				if (early_clock) {
					/* as a collector writes when its NF starts */
					struct mscope_clock c = { .tsc = 0,
						.realtime_ns = 1700000000000000000LL };
					cr_assert_eq(mscope_writer_clock(w, &c), 0);
				}
				tu_flows(w, 16);
			}
			struct mscope_rx_burst rx = { .tsc = (uint64_t)d[i], .n = 1, .qdepth = -1,
				.wire_id = &wire[i], .flow = &flow[i] };
			uint64_t seq = (uint64_t)i;
			struct mscope_tx_burst tx = { .tsc = (uint64_t)e[i], .offered = 1,
				.accepted = 1, .wire_id = &wire[i], .rx_seq = &seq, .flow = &flow[i] };
			cr_assert_eq(mscope_writer_rx(w, &rx), 0, "%s", mscope_writer_error(w)->text);
			cr_assert_eq(mscope_writer_tx(w, &tx), 0, "%s", mscope_writer_error(w)->text);
		}
		cr_assert_eq(mscope_writer_close(w), 0);
	}
	/* the ring buffer deleted b's oldest segment */
	char path[600];
	snprintf(path, sizeof(path), "%s/b-p0q0-7.000000.mst", dir);
	cr_assert_eq(unlink(path), 0);
	free(wire);
	free(flow);
	free(src);
	free(ad);
	free(ae);
	free(bd);
	free(be);
}

static json_int_t last_frames[2];   /* read, in the files: of the last analyse_window() */

static json_t *
analyse_window(const char *dir, int64_t from, int64_t to, int64_t ctx, int no_index)
{
	struct mscope_an_opts o;
	struct mscope_an_error err;
	struct mscope_analysis *an;
	json_t *doc, *sum;

	mscope_an_opts_init(&o);
	o.from_ns = from;
	o.to_ns = to;
	o.context_ns = ctx;
	o.no_index = no_index;
	o.threads = 2;
	an = mscope_an_open(dir, &o, &err);
	cr_assert_not_null(an, "%s", err.text);
	cr_assert_eq(mscope_an_diagnose(an, &err), 0, "%s", err.text);
	doc = mscope_an_json(an);
	mscope_an_close(an);
	sum = json_object_get(doc, "summary");
	last_frames[0] = json_integer_value(json_object_get(sum, "frames_read"));
	last_frames[1] = json_integer_value(json_object_get(sum, "frames_total"));
	json_object_del(sum, "warnings");
	json_object_del(sum, "frames_read");
	json_object_del(sum, "frames_total");
	return doc;
}

Test(window, index_equals_whole_read_with_segments, .timeout = 60)
{
	char *dir = tu_mkdir();
	static const int64_t w[][3] = {
		{ 39900 * US, 40600 * US, 1000 * US },  /* a's first stall */
		{ 47500 * US, 48800 * US, 500 * US },   /* the burst */
		{ 51900 * US, 52800 * US, 2000 * US },  /* a's second stall */
	};

	rotated_chain(dir);
	for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++) {
		json_t *whole = analyse_window(dir, w[i][0], w[i][1], w[i][2], 1);
		json_t *win = analyse_window(dir, w[i][0], w[i][1], w[i][2], 0);
		json_t *s = json_object_get(win, "summary");
		char *a = json_dumps(whole, JSON_SORT_KEYS), *b = json_dumps(win, JSON_SORT_KEYS);

		cr_assert_gt(json_integer_value(json_object_get(s, "victims")), 0, "window %zu", i);
		cr_assert_gt(json_array_size(json_object_get(win, "culprits")), 0);
		cr_assert_str_eq(a, b, "window %zu: the windowed read differs from the whole read", i);
		free(a);
		free(b);
		json_decref(whole);
		json_decref(win);
	}
	/* and the windowed read read less: its region is a part of the run */
	json_t *win = analyse_window(dir, w[0][0], w[0][1], w[0][2], 0);
	json_t *s = json_object_get(win, "summary");
	cr_assert_lt(json_integer_value(json_object_get(s, "packets")), 40000);
	cr_assert_gt(last_frames[1], 100);
	cr_assert_lt(last_frames[0], last_frames[1], "read %lld of %lld frames",
		(long long)last_frames[0], (long long)last_frames[1]);
	cr_assert_gt(json_real_value(json_object_get(s, "region_start_us")), 20000);
	json_decref(win);
	tu_rmdir(dir);
}

/* A collector writes a clock record when its NF starts, long before traffic:
 * the run (and so --from/--to) still starts at the first packet. */
Test(window, run_starts_at_the_first_packet, .timeout = 60)
{
	char *plain = tu_mkdir(), *clocked = tu_mkdir();

	rotated_chain(plain);
	early_clock = 1;
	rotated_chain(clocked);
	early_clock = 0;
	for (int no_index = 0; no_index < 2; no_index++) {
		json_t *a = analyse_window(plain, 39900 * US, 40600 * US, 1000 * US, no_index);
		json_t *b = analyse_window(clocked, 39900 * US, 40600 * US, 1000 * US, no_index);
		char *sa = json_dumps(json_object_get(a, "culprits"), JSON_SORT_KEYS);
		char *sb = json_dumps(json_object_get(b, "culprits"), JSON_SORT_KEYS);

		cr_assert_gt(json_integer_value(json_object_get(json_object_get(b, "summary"),
			"victims")), 0);
		cr_assert_str_eq(sa, sb, "an early clock record moved the window (no_index %d)",
			no_index);
		free(sa);
		free(sb);
		json_decref(a);
		json_decref(b);
	}
	tu_rmdir(plain);
	tu_rmdir(clocked);
}
