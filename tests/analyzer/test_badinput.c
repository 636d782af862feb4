/* SPDX-License-Identifier: BSD-3-Clause */
/* Bad input: clear messages naming the problem, or warnings; never a crash. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "an_testutil.h"
#include "mscope_analyzer.h"

#define T0 1000000

static void
simple_chain(const char *dir, const char *run_f)
{
	enum { N = 8 };
	uint32_t wire[N], flow[N] = { 0 };
	int64_t src[N], fd[N], ft[N];

	for (int k = 0; k < N; k++) {
		wire[k] = 10 + k;
		src[k] = T0 + 1000 * k;
		fd[k] = src[k] + 100;
		ft[k] = src[k] + 200;
	}
	tu_source(dir, "source", N, wire, flow, src, 1);
	if (run_f == NULL) {
		tu_node(dir, "f", N, wire, flow, fd, ft, NULL, 1);
		return;
	}
	/* f from another run */
	struct mscope_trace_writer *w = tu_open(dir, "f.mst", "f", MSCOPE_ROLE_RXQ, run_f);
	tu_flows(w, 1);
	struct mscope_rx_burst rx = { .tsc = T0 + 100, .n = 1, .qdepth = -1, .wire_id = wire,
		.flow = flow };
	cr_assert_eq(mscope_writer_rx(w, &rx), 0);
	cr_assert_eq(mscope_writer_close(w), 0);
}

Test(badinput, missing_directory)
{
	struct mscope_an_error err;
	struct mscope_analysis *an = mscope_an_open("/nonexistent/mscope-dir", NULL, &err);
	cr_assert_null(an);
	cr_assert(strstr(err.text, "/nonexistent/mscope-dir") != NULL, "%s", err.text);
}

Test(badinput, empty_directory)
{
	char *dir = tu_mkdir();
	struct mscope_an_error err;
	cr_assert_null(mscope_an_open(dir, NULL, &err));
	cr_assert(strstr(err.text, "no trace files") != NULL, "%s", err.text);
	tu_rmdir(dir);
}

Test(badinput, mixed_runs)
{
	char *dir = tu_mkdir();
	struct mscope_an_error err;
	struct mscope_an_opts o;

	simple_chain(dir, "run2");
	cr_assert_null(mscope_an_open(dir, NULL, &err));
	cr_assert(strstr(err.text, "different runs") != NULL, "%s", err.text);
	cr_assert(strstr(err.text, "run2") != NULL, "%s", err.text);
	/* choosing one run works, and says what it skipped */
	mscope_an_opts_init(&o);
	o.run_id = "run1";
	struct mscope_analysis *an = mscope_an_open(dir, &o, &err);
	cr_assert_not_null(an, "%s", err.text);
	cr_assert(has_warning(an, "skipped"));
	mscope_an_close(an);
	tu_rmdir(dir);
}

Test(badinput, corrupt_file)
{
	char *dir = tu_mkdir();
	struct mscope_an_error err;
	char path[512];

	simple_chain(dir, NULL);
	snprintf(path, sizeof(path), "%s/zzz.mst", dir);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs("this is not a trace file at all, just text", f);
	fclose(f);
	cr_assert_null(mscope_an_open(dir, NULL, &err));
	cr_assert(strstr(err.text, "zzz.mst") != NULL, "%s", err.text);
	tu_rmdir(dir);
}

Test(badinput, truncated_file_is_a_warning)
{
	char *dir = tu_mkdir();
	struct mscope_an_error err;
	char path[512], cmd[700];

	simple_chain(dir, NULL);
	/* cut the NF trace in its last frame */
	snprintf(path, sizeof(path), "%s/f.mst", dir);
	snprintf(cmd, sizeof(cmd), "truncate -s -3 '%s'", path);
	cr_assert_eq(system(cmd), 0);
	struct mscope_analysis *an = mscope_an_open(dir, NULL, &err);
	cr_assert_not_null(an, "%s", err.text);
	cr_assert(has_warning(an, "f.mst"));
	cr_assert_eq(mscope_an_diagnose(an, &err), 0, "%s", err.text);
	mscope_an_close(an);
	tu_rmdir(dir);
}

Test(badinput, collector_losses_warn)
{
	char *dir = tu_mkdir();
	struct mscope_an_error err;
	enum { N = 4 };
	uint32_t wire[N] = { 1, 2, 3, 4 }, flow[N] = { 0 };
	int64_t src[N] = { T0, T0 + 10, T0 + 20, T0 + 30 };

	tu_source(dir, "source", N, wire, flow, src, 1);
	struct mscope_trace_writer *w = tu_open(dir, "f.mst", "f", MSCOPE_ROLE_RXQ, NULL);
	tu_flows(w, 1);
	struct mscope_rx_burst rx = { .tsc = T0 + 100, .n = 2, .qdepth = -1, .wire_id = wire,
		.flow = flow };
	cr_assert_eq(mscope_writer_rx(w, &rx), 0);
	struct mscope_loss l = { .tsc = T0 + 150, .records = 1, .packets = 2 };
	cr_assert_eq(mscope_writer_loss(w, &l), 0);
	uint64_t seq[2] = { 0, 1 };
	struct mscope_tx_burst tx = { .tsc = T0 + 200, .offered = 2, .accepted = 2,
		.wire_id = wire, .rx_seq = seq };
	cr_assert_eq(mscope_writer_tx(w, &tx), 0);
	cr_assert_eq(mscope_writer_close(w), 0);

	struct mscope_analysis *an = mscope_an_open(dir, NULL, &err);
	cr_assert_not_null(an, "%s", err.text);
	cr_assert(has_warning(an, "lost 1 records (2 packets)"));
	/* the two packets the source sent that no NF saw are reported */
	cr_assert(has_warning(an, "seen at no NF"));
	cr_assert_eq(mscope_an_diagnose(an, &err), 0, "%s", err.text);
	json_t *doc = mscope_an_json(an);
	cr_assert_eq(json_integer_value(json_object_get(json_object_get(doc, "summary"),
		"trace_losses")), 2);
	json_decref(doc);
	mscope_an_close(an);
	tu_rmdir(dir);
}

/* A source trace whose second half goes back in time (two runs of a writer
 * glued together): timestamps are clamped and the analysis warns. */
Test(badinput, non_monotonic_timestamps)
{
	char *dir = tu_mkdir(), *d2 = tu_mkdir();
	struct mscope_an_error err;
	char a[512], b[512], cmd[1600];
	enum { N = 4 };
	uint32_t wire[N] = { 1, 2, 3, 4 }, wire2[N] = { 5, 6, 7, 8 }, flow[N] = { 0 };
	int64_t t1[N] = { T0 + 5000, T0 + 5010, T0 + 5020, T0 + 5030 };
	int64_t t2[N] = { T0, T0 + 10, T0 + 20, T0 + 30 };

	tu_source(dir, "source", N, wire, flow, t1, 1);
	tu_source(d2, "source", N, wire2, flow, t2, 1);
	snprintf(a, sizeof(a), "%s/source.mst", dir);
	snprintf(b, sizeof(b), "%s/source.mst", d2);
	/* skip the second file's header (a zstd skippable frame: 8 + size bytes) */
	snprintf(cmd, sizeof(cmd),
		"python3 -c \"import struct,sys; d=open('%s','rb').read(); n=struct.unpack('<I', d[4:8])[0]; open('%s','ab').write(d[8+n:])\"",
		b, a);
	cr_assert_eq(system(cmd), 0);
	tu_node(dir, "f", N, wire, flow, (int64_t[]){ T0 + 6000, T0 + 6000, T0 + 6000, T0 + 6000 },
		(int64_t[]){ T0 + 6100, T0 + 6100, T0 + 6100, T0 + 6100 }, NULL, 1);
	struct mscope_analysis *an = mscope_an_open(dir, NULL, &err);
	cr_assert_not_null(an, "%s", err.text);
	/* the reader now stops at the glued file's seek table (the part before
	 * it is analysed, with a warning); an older reader went on, and the
	 * loader clamped the timestamps */
	cr_assert(has_warning(an, "decreasing timestamps") ||
		has_warning(an, "analysing the part before it"));
	cr_assert_eq(mscope_an_diagnose(an, &err), 0, "%s", err.text);
	mscope_an_close(an);
	tu_rmdir(dir);
	tu_rmdir(d2);
}

Test(badinput, duplicate_node)
{
	char *dir = tu_mkdir();
	struct mscope_an_error err;
	char cmd[700];

	simple_chain(dir, NULL);
	snprintf(cmd, sizeof(cmd), "cp '%s/f.mst' '%s/f-copy.mst'", dir, dir);
	cr_assert_eq(system(cmd), 0);
	cr_assert_null(mscope_an_open(dir, NULL, &err));
	cr_assert(strstr(err.text, "two traces for node f:p0q0") != NULL, "%s", err.text);
	tu_rmdir(dir);
}

Test(badinput, missing_upstream_file)
{
	/* source -> A -> f, but A's trace is missing: f's arrivals cannot be
	 * matched; the analysis approximates them and says so. */
	char *dir = tu_mkdir();
	struct mscope_an_error err;
	enum { N = 8 };
	uint32_t wire[N], wout[N], flow[N] = { 0 };
	int64_t src[N], fd[N], ft[N];

	for (int k = 0; k < N; k++) {
		wire[k] = 10 + k;
		wout[k] = 90 + k;
		src[k] = T0 + 1000 * k;
		fd[k] = src[k] + 300;
		ft[k] = src[k] + 400;
	}
	tu_source(dir, "source", N, wire, flow, src, 1);
	tu_node(dir, "f", N, wout, flow, fd, ft, NULL, 1);
	struct mscope_analysis *an = mscope_an_open(dir, NULL, &err);
	cr_assert_not_null(an, "%s", err.text);
	cr_assert(has_warning(an, "approximated"));
	cr_assert(has_warning(an, "seen at no NF"));
	cr_assert_eq(mscope_an_diagnose(an, &err), 0, "%s", err.text);
	json_t *doc = mscope_an_json(an);
	cr_assert_str_eq(json_string_value(json_object_get(json_object_get(doc, "summary"),
		"arrivals")), "approximated");
	json_decref(doc);
	mscope_an_close(an);
	tu_rmdir(dir);
}

Test(badinput, bad_topology_and_filter)
{
	char *dir = tu_mkdir();
	struct mscope_an_error err;
	struct mscope_an_opts o;
	struct mscope_an_filter f;
	char path[512];

	simple_chain(dir, NULL);
	snprintf(path, sizeof(path), "%s/topo.json", dir);
	FILE *fp = fopen(path, "w");
	fputs("{\"nfs\": [{\"name\": 3}]}", fp);
	fclose(fp);
	mscope_an_opts_init(&o);
	o.topology = path;
	cr_assert_null(mscope_an_open(dir, &o, &err));
	cr_assert(strstr(err.text, "nfs[0].name") != NULL, "%s", err.text);

	cr_assert_eq(mscope_an_filter_parse("proto=udp dport=53 src=10.1.0.0/16", &f, &err), 0);
	cr_assert_eq(f.proto, 17);
	cr_assert_eq(f.dport, 53);
	cr_assert_eq(f.src_len, 16);
	cr_assert_neq(mscope_an_filter_parse("dport=99999", &f, &err), 0);
	cr_assert(strstr(err.text, "99999") != NULL);
	cr_assert_neq(mscope_an_filter_parse("color=red", &f, &err), 0);
	int64_t ns;
	cr_assert_eq(mscope_an_parse_time("1.5ms", &ns), 0);
	cr_assert_eq(ns, 1500000);
	cr_assert_eq(mscope_an_parse_time("200", &ns), 0);
	cr_assert_eq(ns, 200000);
	cr_assert_neq(mscope_an_parse_time("3 parsecs", &ns), 0);
	tu_rmdir(dir);
}

/* Valid trace files with hostile content: few distinct wire IDs (collisions
 * everywhere), links to packets that do not exist, undefined flow
 * references, drops with and without rx links, zero-length bursts, equal
 * timestamps. The analysis must finish or fail cleanly, never crash. */
static uint64_t
rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void
hostile_node(const char *dir, const char *nf, int role, uint64_t *seed, int nrec)
{
	char file[64];
	uint64_t t = T0;
	uint64_t rxcount = 0;

	snprintf(file, sizeof(file), "%s.mst", nf);
	struct mscope_trace_writer *w = tu_open(dir, file, nf, role, NULL);
	tu_flows(w, 3);
	for (int r = 0; r < nrec; r++) {
		uint32_t wire[40], flow[40];
		uint64_t seq[40];
		uint32_t n = (uint32_t)(rnd(seed) % 33);
		t += rnd(seed) % 3 == 0 ? 0 : rnd(seed) % 5000;
		for (uint32_t i = 0; i < n; i++) {
			wire[i] = (uint32_t)(rnd(seed) % 7);
			flow[i] = (uint32_t)(rnd(seed) % 5);   /* 3, 4: undefined */
			seq[i] = rnd(seed) % 4 == 0 ? MSCOPE_NO_LINK :
				(rnd(seed) % 2 ? rnd(seed) % (rxcount + 5) : rnd(seed));
		}
		switch (rnd(seed) % 4) {
		case 0:
			if (role == MSCOPE_ROLE_RXQ && n) {
				struct mscope_rx_burst rx = { .tsc = t, .n = n, .qdepth =
					(int32_t)(rnd(seed) % 100) - 1, .wire_id = wire, .flow = flow };
				cr_assert_eq(mscope_writer_rx(w, &rx), 0, "%s", mscope_writer_error(w)->text);
				rxcount += n;
				break;
			}
			/* fall through */
		case 1: {
			struct mscope_tx_burst tx = { .tsc = t, .offered = n + 1, .accepted = n,
				.wire_id = wire, .rx_seq = seq, .flow = rnd(seed) % 2 ? flow : NULL };
			if (role == MSCOPE_ROLE_SOURCE)
				for (uint32_t i = 0; i < n; i++)
					seq[i] = MSCOPE_NO_LINK;
			cr_assert_eq(mscope_writer_tx(w, &tx), 0, "%s", mscope_writer_error(w)->text);
			break;
		}
		case 2: {
			struct mscope_drop d = { .tsc = t, .reason = (uint8_t)(rnd(seed) % 4), .n = n,
				.wire_id = wire, .flow = rnd(seed) % 2 ? flow : NULL,
				.rx_seq = rnd(seed) % 2 ? seq : NULL };
			if (n)
				cr_assert_eq(mscope_writer_drop(w, &d), 0, "%s", mscope_writer_error(w)->text);
			break;
		}
		default: {
			struct mscope_loss l = { .tsc = t, .records = 1, .packets = n };
			cr_assert_eq(mscope_writer_loss(w, &l), 0);
			break;
		}
		}
	}
	cr_assert_eq(mscope_writer_close(w), 0);
}

Test(badinput, hostile_valid_traces, .timeout = 50)
{
	for (uint64_t s0 = 1; s0 <= 12; s0++) {
		char *dir = tu_mkdir();
		uint64_t seed = s0 * 0x9e3779b97f4a7c15ull;
		struct mscope_an_error err;
		struct mscope_an_opts o;

		hostile_node(dir, "src", MSCOPE_ROLE_SOURCE, &seed, 300);
		hostile_node(dir, "a", MSCOPE_ROLE_RXQ, &seed, 300);
		hostile_node(dir, "b", MSCOPE_ROLE_RXQ, &seed, 300);
		hostile_node(dir, "c", MSCOPE_ROLE_RXQ, &seed, 300);
		mscope_an_opts_init(&o);
		o.percentile = 50 + (double)(s0 % 5) * 10;
		o.dag = s0 % 2 ? MSCOPE_AN_DAG_PAPER : MSCOPE_AN_DAG_OURS;
		o.threads = 1 + (int)(s0 % 2);
		struct mscope_analysis *an = mscope_an_open(dir, &o, &err);
		if (an != NULL) {
			if (mscope_an_diagnose(an, &err) == 0) {
				json_t *doc = mscope_an_json(an);
				cr_assert_not_null(doc);
				json_decref(doc);
				FILE *f = fopen("/dev/null", "w");
				cr_assert_eq(mscope_an_write_relations(an, f), 0);
				fclose(f);
				for (size_t v = 0; v < mscope_an_victim_count(an); v++) {
					struct mscope_an_victim vi;
					cr_assert_eq(mscope_an_victim(an, v, &vi), 0);
					for (size_t k = 0; k < vi.nculprits; k++)
						cr_assert(vi.culprits[k].score >= 0 &&
							vi.culprits[k].score < 1e12);
				}
			}
			mscope_an_close(an);
		} else {
			cr_assert(err.text[0] != '\0');
		}
		tu_rmdir(dir);
	}
}

/* No source trace at all (a user's uninstrumented traffic): arrivals at the
 * first NF are approximated from its rx bursts and queue depths, the report
 * says so, victims are identified by the first NF's rx, and a topology file
 * names the peak rate. */
Test(badinput, no_source_trace)
{
	char *dir = tu_mkdir();
	struct mscope_an_error err;
	struct mscope_an_opts o;
	char topo[512];
	enum { N = 64 };
	uint32_t wire[N], flow[N] = { 0 };
	uint64_t seq[N];

	for (int k = 0; k < N; k++) {
		wire[k] = 100 + k;
		seq[k] = (uint64_t)k;
	}
	/* bursts of 8 every 10 us, then one of 32 after a 200 us stall, queue depths */
	struct mscope_trace_writer *w = tu_open(dir, "f.mst", "f", MSCOPE_ROLE_RXQ, NULL);
	tu_flows(w, 1);
	uint64_t t = T0;
	for (int b = 0; b < 4; b++) {
		struct mscope_rx_burst rx = { .tsc = t, .n = 8, .qdepth = 0, .wire_id = &wire[8 * b],
			.flow = flow };
		cr_assert_eq(mscope_writer_rx(w, &rx), 0);
		struct mscope_tx_burst tx = { .tsc = t + 2000, .offered = 8, .accepted = 8,
			.wire_id = &wire[8 * b], .rx_seq = &seq[8 * b] };
		cr_assert_eq(mscope_writer_tx(w, &tx), 0);
		t += 10000;
	}
	t += 200000;
	struct mscope_rx_burst big = { .tsc = t, .n = 32, .qdepth = 12, .wire_id = &wire[32],
		.flow = flow };
	cr_assert_eq(mscope_writer_rx(w, &big), 0);
	struct mscope_tx_burst tx = { .tsc = t + 30000, .offered = 32, .accepted = 32,
		.wire_id = &wire[32], .rx_seq = &seq[32] };
	cr_assert_eq(mscope_writer_tx(w, &tx), 0);
	cr_assert_eq(mscope_writer_close(w), 0);

	snprintf(topo, sizeof(topo), "%s/topo.json", dir);
	FILE *fp = fopen(topo, "w");
	fputs("{\"nfs\": [{\"name\": \"f\", \"rate_mpps\": 1.5}], \"links\": [{\"from\": \"source\", \"to\": \"f\"}]}", fp);
	fclose(fp);
	mscope_an_opts_init(&o);
	o.topology = topo;
	o.percentile = 50;
	struct mscope_analysis *an = mscope_an_open(dir, &o, &err);
	cr_assert_not_null(an, "%s", err.text);
	cr_assert(has_warning(an, "approximated"));
	cr_assert_eq(mscope_an_diagnose(an, &err), 0, "%s", err.text);
	json_t *doc = mscope_an_json(an);
	json_t *sum = json_object_get(doc, "summary");
	cr_assert_str_eq(json_string_value(json_object_get(sum, "arrivals")), "approximated");
	json_t *node = json_array_get(json_object_get(doc, "nodes"), 0);
	cr_assert_str_eq(json_string_value(json_object_get(node, "peak_rate_from")), "topology");
	cr_assert_float_eq(json_real_value(json_object_get(node, "peak_rate_mpps")), 1.5, 1e-9);
	json_decref(doc);
	cr_assert_gt(mscope_an_victim_count(an), 0);
	for (size_t i = 0; i < mscope_an_victim_count(an); i++) {
		struct mscope_an_victim v;
		cr_assert_eq(mscope_an_victim(an, i, &v), 0);
		/* identity: the first NF's rx (wire ID, burst TSC) */
		cr_assert(v.wire_id >= 100 && v.wire_id < 100 + N);
		cr_assert(v.tsc == (v.wire_id < 132 ? T0 + 10000 * ((v.wire_id - 100) / 8) : t),
			"wire %u tsc %llu", v.wire_id, (unsigned long long)v.tsc);
		/* the culprit of input with no source trace is called "source" */
		for (size_t k = 0; k < v.nculprits; k++)
			if (v.culprits[k].kind == MSCOPE_AN_SOURCE)
				cr_assert_str_eq(v.culprits[k].nf, "source");
	}
	mscope_an_close(an);
	tu_rmdir(dir);
}
