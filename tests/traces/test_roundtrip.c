/* SPDX-License-Identifier: BSD-3-Clause */
/* Random record streams written and read back identical, over many seeds. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tgen.h"
#include "mscope_trace.h"

TGEN_TMPDIR_SUITE(roundtrip, "rt");

/* Write g's records to path with the given options, flushing at random. */
static void
write_file(const char *path, struct tgen *g, const struct mscope_writer_opts *o,
	   unsigned flush_every)
{
	struct mscope_trace_header h;
	struct mscope_trace_error err;
	struct mscope_trace_writer *w;

	tgen_header(&h, "rt");
	w = mscope_writer_open(path, &h, o, &err);
	cr_assert_not_null(w, "open: %s", err.text);
	for (size_t i = 0; i < g->n; i++) {
		cr_assert_eq(tgen_write(w, &g->recs[i]), 0, "record %zu: %s", i,
			     mscope_writer_error(w)->text);
		if (flush_every && i % flush_every == flush_every - 1)
			cr_assert_eq(mscope_writer_flush(w), 0);
	}
	cr_assert_eq(mscope_writer_close(w), 0);
}

static void
check_file(const char *path, struct tgen *g)
{
	struct mscope_trace_error err;
	struct mscope_trace_reader *r = mscope_reader_open(path, &err);
	struct mscope_record rec;
	const struct mscope_trace_header *h;
	size_t i = 0;
	int rc;

	cr_assert_not_null(r, "reader: %s at %llu: %s", err.file,
			   (unsigned long long)err.offset, err.text);
	h = mscope_reader_header(r);
	cr_assert_eq(h->version, MSCOPE_TRACE_VERSION);
	cr_assert_str_eq(h->nf_name, "rt");
	cr_assert_str_eq(h->writer_version, "0.1");
	cr_assert_eq(h->tsc_hz, 2000000000ULL);
	cr_assert_eq(h->anchor_realtime_ns, 1700000000000000000LL);
	cr_assert_eq(h->port, 1);
	cr_assert_eq(h->queue, 2);
	cr_assert_eq(h->pid, 4242);
	while ((rc = mscope_reader_next(r, &rec, &err)) == 1) {
		char why[200];

		cr_assert_lt(i, g->n, "more records than written");
		cr_assert(tgen_rec_eq(&g->recs[i], &rec, why, sizeof(why)),
			  "record %zu differs: %s", i, why);
		i++;
	}
	cr_assert_eq(rc, 0, "read error: %s at %llu: %s", err.file,
		     (unsigned long long)err.offset, err.text);
	cr_assert_eq(i, g->n, "read %zu of %zu records", i, g->n);
	mscope_reader_close(r);
}

Test(roundtrip, many_seeds)
{
	for (uint64_t seed = 1; seed <= 60; seed++) {
		struct tgen g;
		struct mscope_writer_opts o = { 0 };
		char path[300];
		struct tgen_rng r = { seed * 7919 };

		tgen_init(&g, seed, 50 + tgen_below(&r, 400));
		o.zstd_level = 1 + (int)tgen_below(&r, 5);
		o.frame_bytes = tgen_below(&r, 2) ? 64 + tgen_below(&r, 8000) : 0;
		snprintf(path, sizeof(path), "%s/s%llu.mst", tmpdir, (unsigned long long)seed);
		write_file(path, &g, &o, (unsigned)tgen_below(&r, 3) ? 0 : 1 + (unsigned)tgen_below(&r, 20));
		check_file(path, &g);
		tgen_free(&g);
	}
}

Test(roundtrip, tiny_frames_one_record_each)
{
	struct tgen g;
	struct mscope_writer_opts o = { .zstd_level = 1, .frame_bytes = 1 };
	char path[300];

	tgen_init(&g, 99, 300);
	snprintf(path, sizeof(path), "%s/tiny.mst", tmpdir);
	write_file(path, &g, &o, 0);
	check_file(path, &g);
	tgen_free(&g);
}

Test(roundtrip, empty_trace_and_memory_reader)
{
	struct mscope_trace_header h;
	struct mscope_trace_error err;
	struct mscope_trace_writer *w;
	struct mscope_trace_reader *r;
	struct mscope_record rec;
	char path[300], buf[4096];
	ssize_t n;
	int fd;

	tgen_header(&h, "empty");
	snprintf(path, sizeof(path), "%s/empty.mst", tmpdir);
	w = mscope_writer_open(path, &h, NULL, &err);
	cr_assert_not_null(w);
	cr_assert_eq(mscope_writer_flush(w), 0); /* nothing pending: no frame */
	cr_assert_eq(mscope_writer_close(w), 0);
	fd = open(path, O_RDONLY);
	n = read(fd, buf, sizeof(buf));
	close(fd);
	cr_assert_gt(n, 8);
	r = mscope_reader_open_mem(buf, (size_t)n, "mem", &err);
	cr_assert_not_null(r, "%s", err.text);
	cr_assert_str_eq(mscope_reader_header(r)->nf_name, "empty");
	cr_assert_eq(mscope_reader_next(r, &rec, &err), 0);
	cr_assert_eq(mscope_reader_offset(r), (uint64_t)n);
	mscope_reader_close(r);
}

/* The forwarding case (tx mirrors rx) must decode links and wire IDs exactly. */
Test(roundtrip, forwarding_links)
{
	struct mscope_trace_header h;
	struct mscope_trace_error err;
	struct mscope_trace_writer *w;
	struct mscope_trace_reader *r;
	struct mscope_record rec;
	struct mscope_writer_opts o = { .frame_bytes = 2000 };
	uint32_t wire[32], flow[32];
	uint64_t seq[32], next = 0, rx_n = 0, tx_n = 0;
	char path[300];
	int rc;

	tgen_header(&h, "fwd");
	snprintf(path, sizeof(path), "%s/fwd.mst", tmpdir);
	w = mscope_writer_open(path, &h, &o, &err);
	cr_assert_not_null(w);
	for (uint32_t f = 0; f < 17; f++) {
		const struct mscope_flow_key k = { .family = 4, .proto = 17, .sport = (uint16_t)f };

		cr_assert_eq(mscope_writer_flow(w, f, &k), 0);
	}
	for (uint32_t b = 0; b < 2000; b++) {
		struct mscope_rx_burst rx = { .tsc = 1000 + b * 10, .n = 1 + b % 32,
					      .qdepth = (int32_t)(b % 7), .wire_id = wire,
					      .flow = flow };
		struct mscope_tx_burst tx = { .tsc = 1005 + b * 10, .port = 3, .queue = 1,
					      .wire_id = wire, .rx_seq = seq };

		for (uint32_t i = 0; i < rx.n; i++) {
			wire[i] = b * 1000003u + i * 7919u;
			flow[i] = (b + i) % 17;
			seq[i] = next + i;
		}
		cr_assert_eq(mscope_writer_rx(w, &rx), 0);
		tx.offered = rx.n;
		tx.accepted = rx.n - (b % 5 == 0);
		cr_assert_eq(mscope_writer_tx(w, &tx), 0);
		next += tx.accepted;
		if (tx.accepted < rx.n) { /* the refused one is freed: a drop */
			struct mscope_drop d = { .tsc = tx.tsc, .reason = MSCOPE_DROP_TX_REFUSED,
						 .n = 1, .wire_id = &wire[rx.n - 1],
						 .rx_seq = &seq[rx.n - 1] };
			cr_assert_eq(mscope_writer_drop(w, &d), 0);
			next++;
		}
	}
	cr_assert_eq(mscope_writer_close(w), 0);
	r = mscope_reader_open(path, &err);
	cr_assert_not_null(r);
	next = 0;
	while ((rc = mscope_reader_next(r, &rec, &err)) == 1) {
		if (rec.type == MSCOPE_REC_FLOW)
			continue;
		if (rec.type == MSCOPE_REC_RX) {
			cr_assert_eq(rec.u.rx.first_seq, rx_n);
			rx_n += rec.u.rx.n;
		} else if (rec.type == MSCOPE_REC_TX) {
			for (uint32_t i = 0; i < rec.u.tx.accepted; i++) {
				const uint32_t b = (uint32_t)((rec.u.tx.tsc - 1005) / 10);

				cr_assert_eq(rec.u.tx.rx_seq[i], next + i);
				cr_assert_eq(rec.u.tx.wire_id[i], b * 1000003u + i * 7919u);
			}
			cr_assert_null(rec.u.tx.flow);
			tx_n += rec.u.tx.accepted;
			next = rec.u.tx.accepted ? rec.u.tx.rx_seq[rec.u.tx.accepted - 1] + 1 : next;
		} else if (rec.type == MSCOPE_REC_DROP) {
			cr_assert_eq(rec.u.drop.rx_seq[0], next);
			next++;
		}
	}
	cr_assert_eq(rc, 0, "%s", err.text);
	cr_assert_eq(rx_n, tx_n + 400);
	mscope_reader_close(r);
}

/* Segment API: header segment, rx_seq_start and DELETED records come back. */
Test(roundtrip, segment_header_and_deleted)
{
	struct mscope_trace_header h;
	struct mscope_trace_error err;
	struct mscope_trace_writer *w;
	struct mscope_trace_reader *r;
	struct mscope_record rec;
	struct mscope_writer_opts o = { .rx_seq_start = 1000000 };
	const struct mscope_deleted d = { .tsc = 500, .segment = 6, .tsc_first = 10,
					  .tsc_last = 90, .records = 7, .packets = 99 };
	const struct mscope_deleted bad = { .tsc = 600, .tsc_first = 10, .tsc_last = 9 };
	const struct mscope_flow_key k = { .family = 4, .proto = 17 };
	uint32_t wire[2] = { 11, 22 }, flow[2] = { 0, 0 };
	uint64_t seq[2] = { 999999, 1000001 };
	struct mscope_rx_burst rx = { .tsc = 400, .n = 2, .qdepth = -1, .wire_id = wire,
				      .flow = flow };
	struct mscope_tx_burst tx = { .tsc = 700, .offered = 2, .accepted = 2,
				      .wire_id = wire, .rx_seq = seq };
	char path[300];

	tgen_header(&h, "seg");
	h.segment = 7;
	snprintf(path, sizeof(path), "%s/seg.mst", tmpdir);
	w = mscope_writer_open(path, &h, &o, &err);
	cr_assert_not_null(w);
	cr_assert_eq(mscope_writer_flow(w, 0, &k), 0);
	cr_assert_eq(mscope_writer_rx(w, &rx), 0);
	cr_assert_eq(mscope_writer_deleted(w, &d), 0);
	cr_assert_eq(mscope_writer_deleted(w, &bad), -1);
	cr_assert_not_null(strstr(mscope_writer_error(w)->text, "tsc_last"));
	cr_assert_eq(mscope_writer_tx(w, &tx), 0); /* links the previous segment's seq */
	cr_assert_eq(mscope_writer_close(w), 0);

	r = mscope_reader_open(path, &err);
	cr_assert_not_null(r, "%s", err.text);
	cr_assert_eq(mscope_reader_header(r)->segment, 7);
	cr_assert_eq(mscope_reader_header(r)->rx_seq_start, 1000000);
	cr_assert_eq(mscope_reader_next(r, &rec, &err), 1);
	cr_assert_eq(rec.type, MSCOPE_REC_FLOW);
	cr_assert_eq(mscope_reader_next(r, &rec, &err), 1);
	cr_assert_eq(rec.type, MSCOPE_REC_RX);
	cr_assert_eq(rec.u.rx.first_seq, 1000000);
	cr_assert_eq(mscope_reader_next(r, &rec, &err), 1);
	cr_assert_eq(rec.type, MSCOPE_REC_DELETED);
	cr_assert(rec.u.deleted.tsc == 500 && rec.u.deleted.segment == 6 &&
		  rec.u.deleted.tsc_first == 10 && rec.u.deleted.tsc_last == 90 &&
		  rec.u.deleted.records == 7 && rec.u.deleted.packets == 99);
	cr_assert_eq(mscope_reader_next(r, &rec, &err), 1);
	cr_assert_eq(rec.type, MSCOPE_REC_TX);
	cr_assert_eq(rec.u.tx.rx_seq[0], 999999);
	cr_assert_eq(rec.u.tx.rx_seq[1], 1000001);
	cr_assert_eq(rec.u.tx.wire_id[1], 22);
	cr_assert_eq(mscope_reader_next(r, &rec, &err), 0, "%s", err.text);
	mscope_reader_close(r);
}

/* mscope_record_tsc: every kind but a flow definition has a time. */
Test(roundtrip, record_tsc)
{
	struct mscope_record rec;
	uint64_t t = 7;

	memset(&rec, 0, sizeof(rec));
	rec.type = MSCOPE_REC_FLOW;
	cr_assert_eq(mscope_record_tsc(&rec, &t), 0);
	cr_assert_eq(t, 0);
	rec.type = MSCOPE_REC_RX;
	rec.u.rx.tsc = 42;
	cr_assert_eq(mscope_record_tsc(&rec, &t), 1);
	cr_assert_eq(t, 42);
	rec.type = MSCOPE_REC_DELETED;
	rec.u.deleted.tsc = 99;
	cr_assert_eq(mscope_record_tsc(&rec, &t), 1);
	cr_assert_eq(t, 99);
	rec.type = MSCOPE_REC_CLOCK;
	rec.u.clock.tsc = 5;
	cr_assert_eq(mscope_record_tsc(&rec, &t), 1);
	cr_assert_eq(t, 5);
}
