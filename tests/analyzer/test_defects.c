/* SPDX-License-Identifier: BSD-3-Clause */
/* Defects of issue #16 (analyzer side), each reproduced with traces written
 * by the test: names that are not UTF-8, colliding source ids, empty files,
 * long paths, --run with traces of no run, what the collector could not
 * write. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <criterion/criterion.h>

#include "an_testutil.h"
#include "mscope_analyzer.h"

#define T0 1000000

/* A trace with a chosen header: name, role, port, queue, pid, run. */
static struct mscope_trace_writer *
open_hdr(const char *dir, const char *file, const char *nf, int role, unsigned port,
		unsigned queue, unsigned pid, const char *run)
{
	struct mscope_trace_header h;
	struct mscope_trace_error err;
	struct mscope_trace_writer *w;
	char *path;

	memset(&h, 0, sizeof(h));
	h.role = (uint8_t)role;
	h.port = (uint16_t)port;
	h.queue = (uint16_t)queue;
	h.pid = pid;
	h.tsc_hz = 1000000000ULL;
	h.anchor_realtime_ns = 1700000000000000000LL;
	snprintf(h.nf_name, sizeof(h.nf_name), "%s", nf);
	snprintf(h.host, sizeof(h.host), "testhost");
	snprintf(h.run_id, sizeof(h.run_id), "%s", run);
	snprintf(h.writer, sizeof(h.writer), "an-test");
	cr_assert(asprintf(&path, "%s/%s", dir, file) > 0);
	w = mscope_writer_open(path, &h, NULL, &err);
	cr_assert_not_null(w, "writer: %s", err.text);
	free(path);
	return w;
}

/* n packets sent by a source node, wire IDs w0.. one every 1 us from t0 */
static void
src_file(const char *dir, const char *file, const char *nf, unsigned port, unsigned queue,
		unsigned pid, const char *run, uint32_t w0, int n, int64_t t0)
{
	struct mscope_trace_writer *w = open_hdr(dir, file, nf, MSCOPE_ROLE_SOURCE, port,
		queue, pid, run);
	tu_flows(w, 1);
	for (int i = 0; i < n; i++) {
		uint32_t wire = w0 + (uint32_t)i, flow = 0;
		uint64_t seq = MSCOPE_NO_LINK;
		struct mscope_tx_burst tx = { .tsc = (uint64_t)(t0 + 1000 * i), .offered = 1,
			.accepted = 1, .wire_id = &wire, .rx_seq = &seq, .flow = &flow };
		cr_assert_eq(mscope_writer_tx(w, &tx), 0);
	}
	cr_assert_eq(mscope_writer_close(w), 0);
}

/* the rx queue node receiving those packets, 100 ns later, sent 200 ns later */
static void
rxq_file(const char *dir, const char *file, const char *nf, unsigned port, unsigned queue,
		const char *run, uint32_t w0, int n, int64_t t0)
{
	struct mscope_trace_writer *w = open_hdr(dir, file, nf, MSCOPE_ROLE_RXQ, port, queue,
		1, run);
	tu_flows(w, 1);
	for (int i = 0; i < n; i++) {
		uint32_t wire = w0 + (uint32_t)i, flow = 0;
		uint64_t seq = (uint64_t)i;
		struct mscope_rx_burst rx = { .tsc = (uint64_t)(t0 + 1000 * i + 100), .n = 1,
			.qdepth = -1, .wire_id = &wire, .flow = &flow };
		struct mscope_tx_burst tx = { .tsc = (uint64_t)(t0 + 1000 * i + 200), .offered = 1,
			.accepted = 1, .wire_id = &wire, .rx_seq = &seq, .flow = &flow };
		cr_assert_eq(mscope_writer_rx(w, &rx), 0);
		cr_assert_eq(mscope_writer_tx(w, &tx), 0);
	}
	cr_assert_eq(mscope_writer_close(w), 0);
}

/* Every string of a JSON document is present (json_string() of invalid
 * UTF-8 gives NULL and the key silently disappears). */
static void
check_nodes_json(struct mscope_analysis *an, size_t nnodes)
{
	json_t *doc = mscope_an_json(an), *nodes, *n;
	size_t i;
	char *text;

	cr_assert_not_null(doc);
	nodes = json_object_get(doc, "nodes");
	cr_assert_eq(json_array_size(nodes), nnodes);
	json_array_foreach(nodes, i, n) {
		cr_assert(json_is_string(json_object_get(n, "id")), "node %zu has no id", i);
		cr_assert(json_is_string(json_object_get(n, "nf")), "node %zu has no nf", i);
		cr_assert(json_is_string(json_object_get(n, "file")), "node %zu has no file", i);
	}
	text = json_dumps(doc, 0);
	cr_assert_not_null(text);
	free(text);
	json_decref(doc);
}

Test(defects, nf_name_not_utf8)
{
	char *dir = tu_mkdir();
	struct mscope_an_error err;
	struct mscope_analysis *an;

	src_file(dir, "source.mst", "source", 0, 0, 1, "run1", 10, 50, T0);
	rxq_file(dir, "a.mst", "a\xff", 0, 0, "run1", 10, 50, T0);
	an = mscope_an_open(dir, NULL, &err);
	cr_assert_not_null(an, "%s", err.text);
	cr_assert_geq(mscope_an_node_find(an, "a\\xff:p0q0"), 0);
	cr_assert(has_warning(an, "not valid UTF-8"));
	cr_assert_eq(mscope_an_diagnose(an, &err), 0, "%s", err.text);
	check_nodes_json(an, 2);
	mscope_an_close(an);
	tu_rmdir(dir);
}

Test(defects, control_characters_escaped)
{
	char *dir = tu_mkdir();
	struct mscope_an_error err;
	struct mscope_analysis *an;

	src_file(dir, "source.mst", "so\nurce", 0, 0, 1, "run1", 10, 20, T0);
	rxq_file(dir, "a.mst", "\xc3\xa9t\xe9", 0, 0, "run1", 10, 20, T0);
	an = mscope_an_open(dir, NULL, &err);
	cr_assert_not_null(an, "%s", err.text);
	/* valid UTF-8 (é) is kept, a lone byte and a newline are escaped */
	cr_assert_geq(mscope_an_node_find(an, "\xc3\xa9t\\xe9:p0q0"), 0);
	cr_assert_geq(mscope_an_node_find(an, "so\\x0aurce"), 0);
	cr_assert_eq(mscope_an_diagnose(an, &err), 0, "%s", err.text);
	check_nodes_json(an, 2);
	mscope_an_close(an);
	tu_rmdir(dir);
}

/* Three sources of one name (two ports, and one of them recorded twice):
 * the renaming used to loop forever. */
Test(defects, source_ids_collide, .timeout = 20)
{
	char *dir = tu_mkdir();
	struct mscope_an_error err;
	struct mscope_analysis *an;

	src_file(dir, "g1.mst", "gen", 0, 0, 100, "", 10, 10, T0);
	src_file(dir, "g2.mst", "gen", 0, 1, 100, "", 100, 10, T0);
	src_file(dir, "g3.mst", "gen", 0, 1, 200, "", 200, 10, T0);
	rxq_file(dir, "f.mst", "f", 0, 0, "", 10, 10, T0);
	an = mscope_an_open(dir, NULL, &err);
	cr_assert_not_null(an, "%s", err.text);
	cr_assert_eq(mscope_an_node_count(an), 4);
	cr_assert_geq(mscope_an_node_find(an, "gen"), 0);
	cr_assert_geq(mscope_an_node_find(an, "gen:srcp0q1"), 0);
	cr_assert_geq(mscope_an_node_find(an, "gen:srcp0q1-200"), 0);
	mscope_an_close(an);
	/* the very same source twice: an error naming both files, not a hang */
	src_file(dir, "g4.mst", "gen", 0, 1, 200, "", 300, 10, T0);
	cr_assert_null(mscope_an_open(dir, NULL, &err));
	cr_assert(strstr(err.text, "two traces for node gen:srcp0q1-200") != NULL, "%s",
		err.text);
	tu_rmdir(dir);
}

/* One process receiving and sending on p0q0 and p0q1: two sources, two rx
 * queues, four distinct nodes (the second source had become gen:p0q1). */
Test(defects, source_and_rxq_of_one_process, .timeout = 20)
{
	char *dir = tu_mkdir();
	struct mscope_an_error err;
	struct mscope_analysis *an;

	src_file(dir, "gen-src-p0q0.mst", "gen", 0, 0, 7, "r", 10, 10, T0);
	src_file(dir, "gen-src-p0q1.mst", "gen", 0, 1, 7, "r", 100, 10, T0);
	rxq_file(dir, "gen-p0q0.mst", "gen", 0, 0, "r", 10, 10, T0);
	rxq_file(dir, "gen-p0q1.mst", "gen", 0, 1, "r", 100, 10, T0);
	an = mscope_an_open(dir, NULL, &err);
	cr_assert_not_null(an, "%s", err.text);
	cr_assert_eq(mscope_an_node_count(an), 4);
	cr_assert_geq(mscope_an_node_find(an, "gen"), 0);
	cr_assert_geq(mscope_an_node_find(an, "gen:srcp0q1"), 0);
	cr_assert_geq(mscope_an_node_find(an, "gen:p0q0"), 0);
	cr_assert_geq(mscope_an_node_find(an, "gen:p0q1"), 0);
	mscope_an_close(an);
	tu_rmdir(dir);
}

Test(defects, empty_file_is_skipped)
{
	char *dir = tu_mkdir();
	struct mscope_an_error err;
	struct mscope_analysis *an;
	char *path;

	src_file(dir, "source.mst", "source", 0, 0, 1, "run1", 10, 20, T0);
	rxq_file(dir, "a.mst", "a", 0, 0, "run1", 10, 20, T0);
	cr_assert(asprintf(&path, "%s/b-p0q0-99.mst", dir) > 0);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fclose(f);
	an = mscope_an_open(dir, NULL, &err);
	cr_assert_not_null(an, "%s", err.text);
	cr_assert(has_warning(an, "b-p0q0-99.mst: empty file"));
	cr_assert_eq(mscope_an_node_count(an), 2);
	mscope_an_close(an);
	free(path);
	tu_rmdir(dir);
}

Test(defects, long_directory_path)
{
	char *top = tu_mkdir(), *dir;
	struct mscope_an_error err;
	struct mscope_analysis *an;
	char comp[201];

	memset(comp, 'd', 200);
	comp[200] = '\0';
	cr_assert(asprintf(&dir, "%s/%s/%s/%s/%s", top, comp, comp, comp, comp) > 0);
	cr_assert_gt(strlen(dir), 800);
	for (char *p = dir + strlen(top) + 1; (p = strchr(p, '/')) != NULL; p++) {
		*p = '\0';
		cr_assert_eq(mkdir(dir, 0755), 0);
		*p = '/';
	}
	cr_assert_eq(mkdir(dir, 0755), 0);
	src_file(dir, "source.mst", "source", 0, 0, 1, "run1", 10, 30, T0);
	rxq_file(dir, "a.mst", "a", 0, 0, "run1", 10, 30, T0);
	an = mscope_an_open(dir, NULL, &err);
	cr_assert_not_null(an, "%s", err.text);
	cr_assert_eq(mscope_an_node_count(an), 2);
	cr_assert_eq(mscope_an_diagnose(an, &err), 0, "%s", err.text);
	json_t *doc = mscope_an_json(an);
	json_t *n = json_array_get(json_object_get(doc, "nodes"), 1);
	const char *file = json_string_value(json_object_get(n, "file"));
	cr_assert_not_null(file);
	cr_assert(strncmp(file, dir, strlen(dir)) == 0, "%s", file);
	json_decref(doc);
	mscope_an_close(an);
	free(dir);
	tu_rmdir(top);
}

/* --run ID keeps only that run's traces, not those without a run id. */
Test(defects, run_filter_drops_traces_without_run)
{
	char *dir = tu_mkdir();
	struct mscope_an_error err;
	struct mscope_an_opts o;
	struct mscope_analysis *an;

	src_file(dir, "source.mst", "source", 0, 0, 1, "run1", 10, 20, T0);
	rxq_file(dir, "a.mst", "a", 0, 0, "run1", 10, 20, T0);
	rxq_file(dir, "old.mst", "old", 0, 0, "", 10, 20, T0);
	mscope_an_opts_init(&o);
	o.run_id = "run1";
	an = mscope_an_open(dir, &o, &err);
	cr_assert_not_null(an, "%s", err.text);
	cr_assert_eq(mscope_an_node_count(an), 2);
	cr_assert_lt(mscope_an_node_find(an, "old:p0q0"), 0);
	cr_assert(has_warning(an, "old.mst: skipped"));
	mscope_an_close(an);
	tu_rmdir(dir);
}

/* What the collector could not write: a `.lost` file beside the trace, LOSS
 * and DELETED records, all counted in the summary. */
Test(defects, unwritten_losses_and_deleted_segments)
{
	char *dir = tu_mkdir(), *path;
	struct mscope_an_error err;
	struct mscope_analysis *an;
	FILE *f;

	src_file(dir, "source.mst", "source", 0, 0, 1, "run1", 10, 20, T0);
	struct mscope_trace_writer *w = open_hdr(dir, "a.mst", "a", MSCOPE_ROLE_RXQ, 0, 0, 1,
		"run1");
	tu_flows(w, 1);
	struct mscope_deleted d = { .tsc = T0, .segment = 0, .tsc_first = 10, .tsc_last = 20,
		.records = 7, .packets = 70 };
	cr_assert_eq(mscope_writer_deleted(w, &d), 0);
	struct mscope_loss l = { .tsc = T0 + 1, .records = 2, .packets = 5 };
	cr_assert_eq(mscope_writer_loss(w, &l), 0);
	for (int i = 0; i < 20; i++) {
		uint32_t wire = 10 + (uint32_t)i, flow = 0;
		uint64_t seq = (uint64_t)i;
		struct mscope_rx_burst rx = { .tsc = (uint64_t)(T0 + 1000 * i + 100), .n = 1,
			.qdepth = -1, .wire_id = &wire, .flow = &flow };
		struct mscope_tx_burst tx = { .tsc = (uint64_t)(T0 + 1000 * i + 200), .offered = 1,
			.accepted = 1, .wire_id = &wire, .rx_seq = &seq, .flow = &flow };
		cr_assert_eq(mscope_writer_rx(w, &rx), 0);
		cr_assert_eq(mscope_writer_tx(w, &tx), 0);
	}
	cr_assert_eq(mscope_writer_close(w), 0);
	cr_assert(asprintf(&path, "%s/a.mst.lost", dir) > 0);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	/* the collector's format (collector/segments.c) */
	fputs("{\"mscope_lost\": 1, \"trace\": \"a.mst\", \"segment\": 0, \"state\": \"final\", \"records\": 3, \"packets\": 96, \"since_tsc\": 5, \"error\": \"No space left on device\"}\n", f);
	fclose(f);

	an = mscope_an_open(dir, NULL, &err);
	cr_assert_not_null(an, "%s", err.text);
	cr_assert(has_warning(an, "could not write 3 records (96 packets)"));
	cr_assert(has_warning(an, "1 older segments were deleted (7 records, 70 packets)"));
	cr_assert_eq(mscope_an_diagnose(an, &err), 0, "%s", err.text);
	json_t *doc = mscope_an_json(an), *sum = json_object_get(doc, "summary");
	cr_assert_eq(json_integer_value(json_object_get(sum, "trace_losses")), 101);
	cr_assert_eq(json_integer_value(json_object_get(sum, "trace_loss_records")), 5);
	cr_assert_eq(json_integer_value(json_object_get(sum, "trace_loss_unwritten")), 96);
	cr_assert_eq(json_integer_value(json_object_get(sum, "deleted_segments")), 1);
	cr_assert_eq(json_integer_value(json_object_get(sum, "deleted_packets")), 70);
	json_decref(doc);
	mscope_an_close(an);

	/* an unreadable .lost file: the loss is unknown, and said so */
	f = fopen(path, "w");
	fputs("garbage\n", f);
	fclose(f);
	an = mscope_an_open(dir, NULL, &err);
	cr_assert_not_null(an, "%s", err.text);
	cr_assert(has_warning(an, "lost an unknown part"));
	mscope_an_close(an);
	free(path);
	tu_rmdir(dir);
}

/* A rotated node: segment files read as one stream; its oldest segment gone.
 * Packet i of segment k is rx seq 10 k + i; a tx of segment 2 links an rx of
 * segment 1 (continuous rx seq across files). */
static void
segment_file(const char *dir, unsigned seg, int first, int n, int tx_from, int tx_to)
{
	struct mscope_trace_header h;
	struct mscope_trace_error err;
	struct mscope_writer_opts wo = { .rx_seq_start = (uint64_t)first };
	char *path;

	memset(&h, 0, sizeof(h));
	h.role = MSCOPE_ROLE_RXQ;
	h.pid = 42;
	h.segment = seg;
	h.tsc_hz = 1000000000ULL;
	h.anchor_realtime_ns = 1700000000000000000LL;
	snprintf(h.nf_name, sizeof(h.nf_name), "fw");
	snprintf(h.host, sizeof(h.host), "testhost");
	snprintf(h.run_id, sizeof(h.run_id), "r");
	cr_assert(asprintf(&path, "%s/fw-p0q0-42.%06u.mst", dir, seg) > 0);
	struct mscope_trace_writer *w = mscope_writer_open(path, &h, &wo, &err);
	cr_assert_not_null(w, "%s", err.text);
	tu_flows(w, 1);
	for (int i = first; i < first + n; i++) {
		uint32_t wire = 10 + (uint32_t)i, flow = 0;
		struct mscope_rx_burst rx = { .tsc = (uint64_t)(T0 + 1000 * i + 100), .n = 1,
			.qdepth = -1, .wire_id = &wire, .flow = &flow };
		cr_assert_eq(mscope_writer_rx(w, &rx), 0, "%s", mscope_writer_error(w)->text);
		/* sent one packet late: the tx of the segment's first packet links
		 * the previous segment's last one */
		if (i - 1 >= tx_from && i - 1 < tx_to) {
			uint32_t wo2 = 10 + (uint32_t)(i - 1);
			uint64_t seq = (uint64_t)(i - 1);
			struct mscope_tx_burst tx = { .tsc = (uint64_t)(T0 + 1000 * i + 200),
				.offered = 1, .accepted = 1, .wire_id = &wo2, .rx_seq = &seq,
				.flow = &flow };
			cr_assert_eq(mscope_writer_tx(w, &tx), 0, "%s", mscope_writer_error(w)->text);
		}
	}
	cr_assert_eq(mscope_writer_close(w), 0);
	free(path);
}

Test(defects, segments_one_stream_oldest_gone)
{
	char *dir = tu_mkdir();
	struct mscope_an_error err;
	struct mscope_analysis *an;
	struct mscope_an_node_info ni;
	int k;

	src_file(dir, "source.mst", "source", 0, 0, 1, "r", 10, 30, T0);
	/* segment 0 (packets 0-9) was deleted; 1 and 2 hold packets 10-29 */
	segment_file(dir, 1, 10, 10, 10, 30);
	segment_file(dir, 2, 20, 10, 10, 30);
	an = mscope_an_open(dir, NULL, &err);
	cr_assert_not_null(an, "%s", err.text);
	cr_assert_eq(mscope_an_node_count(an), 2);
	k = mscope_an_node_find(an, "fw:p0q0");
	cr_assert_geq(k, 0);
	cr_assert_eq(mscope_an_node_info(an, (size_t)k, &ni), 0);
	cr_assert_eq(ni.packets, 20);
	cr_assert(has_warning(an, "oldest segments"));
	cr_assert(!has_warning(an, "link to unknown rx packets"));
	cr_assert(!has_warning(an, "two traces"));
	cr_assert_eq(mscope_an_diagnose(an, &err), 0, "%s", err.text);
	json_t *doc = mscope_an_json(an);
	/* the packet linked across files was delivered: 19 of 20 (the last one
	 * is still inside at the end) */
	cr_assert_eq(json_integer_value(json_object_get(json_object_get(doc, "summary"),
		"delivered")), 19);
	json_decref(doc);
	mscope_an_close(an);
	tu_rmdir(dir);
}

/* A trace whose writer never closed it (killed, disk full) ends without its
 * seek table: said, not "no trace losses". */
Test(defects, unfinished_trace_warned)
{
	char *dir = tu_mkdir(), *cmd;
	struct mscope_an_error err;
	struct mscope_analysis *an;

	src_file(dir, "source.mst", "source", 0, 0, 1, "run1", 10, 20, T0);
	rxq_file(dir, "a.mst", "a", 0, 0, "run1", 10, 20, T0);
	an = mscope_an_open(dir, NULL, &err);
	cr_assert_not_null(an, "%s", err.text);
	cr_assert(!has_warning(an, "seek table"));
	mscope_an_close(an);
	/* cut the seek table off: the data frames stay whole */
	cr_assert(asprintf(&cmd, "python3 -c \"import sys; p='%s/a.mst'; d=open(p,'rb').read(); "
		"i=d.rfind(bytes([0x5e,0x2a,0x4d,0x18])); open(p,'wb').write(d[:i])\"", dir) > 0);
	cr_assert_eq(system(cmd), 0);
	free(cmd);
	an = mscope_an_open(dir, NULL, &err);
	cr_assert_not_null(an, "%s", err.text);
	cr_assert(has_warning(an, "a.mst: ends without its seek table"));
	cr_assert_eq(mscope_an_diagnose(an, &err), 0, "%s", err.text);
	json_t *doc = mscope_an_json(an);
	cr_assert_eq(json_integer_value(json_object_get(json_object_get(doc, "summary"),
		"traces_unfinished")), 1);
	json_decref(doc);
	mscope_an_close(an);
	tu_rmdir(dir);
}
