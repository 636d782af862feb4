/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mktrace: write test trace files.
 *   mktrace demo OUT             a small known stream, one frame per 10 bursts
 *   mktrace random OUT SEED N [FRAME_BYTES]   N random records (tgen.h)
 *   mktrace evil OUT             the demo stream under a header whose strings
 *                                hold terminal escapes, newlines and bad UTF-8
 *   mktrace segments DIR N BURSTS [ONE]   a node stream in N segment files
 *                                DIR/s.NNNNNN.mst (and as ONE file)
 *   mktrace small OUT            tgen_small_stream() (the fuzzer's seek-table base)
 *   mktrace source OUT PORT      a traffic source "gen" sending on PORT (one NF
 *                                with several tx ports has one source trace each)
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mscope_trace.h"
#include "tgen.h"

static int
fail(struct mscope_trace_writer *w)
{
	const struct mscope_trace_error *e = mscope_writer_error(w);

	fprintf(stderr, "mktrace: %s: %s\n", e->file, e->text);
	return 1;
}

/*
 * 30 rx bursts of 3 packets over flows 0 and 1, each forwarded by a tx burst
 * (three frames: 10, 10, and 10 bursts with the final deleted and loss
 * records; the header says segment 4, whose writer saw segment 3 deleted);
 * every 5th tx refuses its last packet, which is then dropped as tx_refused.
 */
static int
demo(const char *path, bool evil)
{
	struct mscope_trace_header h;
	struct mscope_trace_error err;
	struct mscope_trace_writer *w;
	struct mscope_flow_key k = { .family = 4, .proto = 6, .sport = 1234, .dport = 80,
				     .src = { 10, 0, 0, 1 }, .dst = { 10, 0, 0, 2 } };
	struct mscope_clock c = { 500, 1700000000000000000LL };
	struct mscope_loss l = { 99000, 2, 17 };
	const struct mscope_deleted del = { .tsc = 99000, .segment = 3, .tsc_first = 100,
					    .tsc_last = 900, .records = 5, .packets = 12 };
	uint64_t seq = 0;

	tgen_header(&h, "demo");
	h.tsc_hz = 1000000000;
	h.anchor_tsc = 0;
	h.segment = 4;
	if (evil) {
		snprintf(h.nf_name, sizeof(h.nf_name), "ev\033[31mil\nnf\\");
		snprintf(h.host, sizeof(h.host), "h\r\x9b\xff");
		snprintf(h.writer, sizeof(h.writer), "w\a\b");
	}
	w = mscope_writer_open(path, &h, NULL, &err);
	if (w == NULL) {
		fprintf(stderr, "mktrace: %s: %s\n", err.file, err.text);
		return 1;
	}
	if (mscope_writer_clock(w, &c) < 0 || mscope_writer_flow(w, 0, &k) < 0)
		return fail(w);
	k.proto = 17;
	k.sport = 53;
	k.dport = 5353;
	if (mscope_writer_flow(w, 1, &k) < 0)
		return fail(w);
	for (uint32_t b = 0; b < 30; b++) {
		uint32_t wire[3], flow[3];
		uint64_t s[3];
		struct mscope_rx_burst rx = { .tsc = 1000 + b * 3000, .n = 3, .qdepth = (int32_t)b,
					      .wire_id = wire, .flow = flow };
		struct mscope_tx_burst tx = { .tsc = rx.tsc + 1000, .port = 1, .queue = 0,
					      .offered = 3, .accepted = b % 5 == 4 ? 2 : 3,
					      .wire_id = wire, .rx_seq = s };

		for (uint32_t i = 0; i < 3; i++) {
			wire[i] = 0x10000000u + b * 16 + i;
			flow[i] = i == 2;
			s[i] = seq + i;
		}
		if (mscope_writer_rx(w, &rx) < 0 || mscope_writer_tx(w, &tx) < 0)
			return fail(w);
		if (tx.accepted < 3) {
			struct mscope_drop d = { .tsc = tx.tsc, .reason = MSCOPE_DROP_TX_REFUSED,
						 .n = 1, .wire_id = &wire[2], .rx_seq = &s[2],
						 .flow = &flow[2] };

			if (mscope_writer_drop(w, &d) < 0)
				return fail(w);
		}
		seq += 3;
		if (b % 10 == 9 && b < 29 && mscope_writer_flush(w) < 0)
			return fail(w);
	}
	if (mscope_writer_deleted(w, &del) < 0 || mscope_writer_loss(w, &l) < 0)
		return fail(w);
	if (mscope_writer_close(w) < 0) {
		fprintf(stderr, "mktrace: %s: close failed\n", path);
		return 1;
	}
	return 0;
}

static int
random_file(const char *path, uint64_t seed, size_t n, size_t frame_bytes)
{
	struct mscope_trace_header h;
	struct mscope_trace_error err;
	struct mscope_writer_opts o = { .zstd_level = 1, .frame_bytes = frame_bytes };
	struct mscope_trace_writer *w;
	struct tgen g;

	tgen_init(&g, seed, n);
	tgen_header(&h, "random");
	w = mscope_writer_open(path, &h, &o, &err);
	if (w == NULL) {
		fprintf(stderr, "mktrace: %s: %s\n", err.file, err.text);
		return 1;
	}
	for (size_t i = 0; i < g.n; i++)
		if (tgen_write(w, &g.recs[i]) < 0)
			return fail(w);
	tgen_free(&g);
	return mscope_writer_close(w) < 0 ? 1 : 0;
}

/* 20 bursts of 2 unlinked packets sent by "gen" on port `port`. */
static int
source(const char *path, unsigned port)
{
	struct mscope_trace_header h;
	struct mscope_trace_error err;
	struct mscope_trace_writer *w;
	struct mscope_flow_key k = { .family = 4, .proto = 17, .sport = 9, .dport = 9,
				     .src = { 10, 0, 0, 1 }, .dst = { 10, 0, 0, 2 } };

	tgen_header(&h, "gen");
	h.run_id[0] = '\0';    /* joins any run's directory */
	h.role = MSCOPE_ROLE_SOURCE;
	h.port = (uint16_t)port;
	h.tsc_hz = 1000000000;
	h.anchor_tsc = 0;
	w = mscope_writer_open(path, &h, NULL, &err);
	if (w == NULL) {
		fprintf(stderr, "mktrace: %s: %s\n", err.file, err.text);
		return 1;
	}
	if (mscope_writer_flow(w, 0, &k) < 0)
		return fail(w);
	for (uint32_t b = 0; b < 20; b++) {
		uint32_t wire[2] = { port << 16 | b << 1, port << 16 | (b << 1 | 1) }, flow[2] = { 0, 0 };
		uint64_t seq[2] = { MSCOPE_NO_LINK, MSCOPE_NO_LINK };
		struct mscope_tx_burst tx = { .tsc = 1000 + b * 1000, .port = (uint16_t)port,
					      .offered = 2, .accepted = 2, .wire_id = wire,
					      .rx_seq = seq, .flow = flow };
		if (mscope_writer_tx(w, &tx) < 0)
			return fail(w);
	}
	return mscope_writer_close(w) < 0;
}

int
main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "source"))
		return source(argv[2], (unsigned)atoi(argv[3]));
	if (argc == 3 && !strcmp(argv[1], "demo"))
		return demo(argv[2], false);
	if (argc == 3 && !strcmp(argv[1], "evil"))
		return demo(argv[2], true);
	if (argc == 3 && !strcmp(argv[1], "small")) {
		struct mscope_trace_header h;
		struct mscope_trace_error err;
		struct mscope_trace_writer *w;

		tgen_header(&h, "base");
		w = mscope_writer_open(argv[2], &h, &tgen_small_frames, &err);
		if (w == NULL) {
			fprintf(stderr, "mktrace: %s: %s\n", err.file, err.text);
			return 1;
		}
		return tgen_small_stream(w) < 0 ? 1 : 0;
	}
	if ((argc == 5 || argc == 6) && !strcmp(argv[1], "segments"))
		return tgen_segments(argv[2], (unsigned)strtoul(argv[3], NULL, 0),
				     (unsigned)strtoul(argv[4], NULL, 0),
				     argc == 6 ? argv[5] : NULL) < 0 ? 1 : 0;
	if ((argc == 5 || argc == 6) && !strcmp(argv[1], "random"))
		return random_file(argv[2], strtoull(argv[3], NULL, 0),
				   strtoull(argv[4], NULL, 0),
				   argc == 6 ? strtoull(argv[5], NULL, 0) : 0);
	fprintf(stderr, "usage: mktrace demo|evil OUT | mktrace random OUT SEED N [FRAME_BYTES] | "
		"mktrace segments DIR N BURSTS [ONE]\n");
	return 2;
}
