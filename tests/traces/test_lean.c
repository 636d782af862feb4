/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The lean reader mode (MSCOPE_FIELDS_LEAN) returns exactly the records of
 * the full mode, less wire IDs and flow codes: over random files, windows
 * read by the seek table, a segment stream; and it still refuses damage.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mscope_trace.h"
#include "tgen.h"

TGEN_TMPDIR_SUITE(lean, "lean");

static void
write_gen(const char *path, struct tgen *g, size_t frame_bytes)
{
	cr_assert_eq(tgen_write_file(path, g, "lean", frame_bytes), 0, "cannot write %s", path);
}

static struct mscope_trace_reader *
open_mode(const char *path, unsigned fields)
{
	struct mscope_trace_error err;
	struct mscope_trace_reader *r = mscope_reader_open(path, &err);

	cr_assert_not_null(r, "%s: %s", path, err.text);
	cr_assert_eq(mscope_reader_set_fields(r, fields), 0);
	return r;
}

static void
same_seqs(const uint64_t *a, const uint64_t *b, uint32_t n, size_t k)
{
	cr_assert_eq(a == NULL, b == NULL, "record %zu: rx_seq presence differs", k);
	for (uint32_t i = 0; a && i < n; i++)
		cr_assert_eq(a[i], b[i], "record %zu: link %u: %llu vs %llu", k, i,
			     (unsigned long long)a[i], (unsigned long long)b[i]);
}

/* Record k of the lean reader (l) equals the full reader's (f). */
static void
same_record(const struct mscope_record *f, const struct mscope_record *l, size_t k)
{
	cr_assert_eq(f->type, l->type, "record %zu: type %d vs %d", k, f->type, l->type);
	switch (f->type) {
	case MSCOPE_REC_RX: {
		const struct mscope_rx_burst *a = &f->u.rx, *b = &l->u.rx;

		cr_assert(a->tsc == b->tsc && a->first_seq == b->first_seq && a->n == b->n &&
			  a->qdepth == b->qdepth, "record %zu: rx differs", k);
		cr_assert_eq(a->hw_ts == NULL, b->hw_ts == NULL, "record %zu: hw_ts", k);
		for (uint32_t i = 0; a->hw_ts && i < a->n; i++)
			cr_assert_eq(a->hw_ts[i], b->hw_ts[i], "record %zu: hw_ts %u", k, i);
		cr_assert(b->wire_id == NULL && b->flow == NULL, "record %zu: lean rx has ids", k);
		cr_assert(a->n == 0 || (a->wire_id && a->flow), "record %zu: full rx lacks ids", k);
		break;
	}
	case MSCOPE_REC_TX: {
		const struct mscope_tx_burst *a = &f->u.tx, *b = &l->u.tx;

		cr_assert(a->tsc == b->tsc && a->port == b->port && a->queue == b->queue &&
			  a->offered == b->offered && a->accepted == b->accepted,
			  "record %zu: tx differs", k);
		same_seqs(a->rx_seq, b->rx_seq, a->accepted, k);
		cr_assert(b->wire_id == NULL && b->flow == NULL, "record %zu: lean tx has ids", k);
		break;
	}
	case MSCOPE_REC_DROP: {
		const struct mscope_drop *a = &f->u.drop, *b = &l->u.drop;

		cr_assert(a->tsc == b->tsc && a->reason == b->reason && a->n == b->n,
			  "record %zu: drop differs", k);
		same_seqs(a->rx_seq, b->rx_seq, a->n, k);
		cr_assert(b->wire_id == NULL && b->flow == NULL, "record %zu: lean drop has ids", k);
		break;
	}
	case MSCOPE_REC_FLOW:
		cr_assert(f->u.flow.ref == l->u.flow.ref &&
			  memcmp(&f->u.flow.key, &l->u.flow.key, sizeof(f->u.flow.key)) == 0,
			  "record %zu: flow differs", k);
		break;
	case MSCOPE_REC_LOSS:
		cr_assert(memcmp(&f->u.loss, &l->u.loss, sizeof(f->u.loss)) == 0,
			  "record %zu: loss differs", k);
		break;
	case MSCOPE_REC_CLOCK:
		cr_assert(memcmp(&f->u.clock, &l->u.clock, sizeof(f->u.clock)) == 0,
			  "record %zu: clock differs", k);
		break;
	case MSCOPE_REC_DELETED:
		cr_assert(memcmp(&f->u.deleted, &l->u.deleted, sizeof(f->u.deleted)) == 0,
			  "record %zu: deleted differs", k);
		break;
	}
}

/* Both readers to their end, record by record; the count of packet records. */
static size_t
same_stream(struct mscope_trace_reader *f, struct mscope_trace_reader *l)
{
	struct mscope_record a, b;
	struct mscope_trace_error ea, eb;
	size_t k = 0, pkts = 0;
	int ra, rb;

	for (;; k++) {
		ra = mscope_reader_next(f, &a, &ea);
		rb = mscope_reader_next(l, &b, &eb);
		cr_assert_eq(ra, rb, "record %zu: full %d (%s), lean %d (%s)", k, ra,
			     ra < 0 ? ea.text : "", rb, rb < 0 ? eb.text : "");
		if (ra != 1)
			break;
		same_record(&a, &b, k);
		pkts += a.type <= MSCOPE_REC_DROP;
		cr_assert_eq(mscope_reader_offset(f), mscope_reader_offset(l));
	}
	cr_assert_eq(ra, 0, "%s", ea.text);
	return pkts;
}

Test(lean, random_files_equal_full)
{
	const size_t fb[4] = { 0, 300, 700, 4096 };

	for (uint64_t seed = 1; seed <= 24; seed++) {
		struct tgen g;
		char path[300];
		struct mscope_trace_reader *f, *l;

		tgen_init(&g, seed, 200 + 150 * seed);
		snprintf(path, sizeof(path), "%s/r%llu.mst", tmpdir, (unsigned long long)seed);
		write_gen(path, &g, fb[seed % 4]);
		f = open_mode(path, MSCOPE_FIELDS_ALL);
		l = open_mode(path, MSCOPE_FIELDS_LEAN);
		cr_assert_gt(same_stream(f, l), 0);
		mscope_reader_close(f);
		mscope_reader_close(l);
		tgen_free(&g);
	}
}

Test(lean, windows_by_seek_table_equal_full)
{
	struct tgen g;
	struct tgen_rng rng = { 99 };
	char path[300];
	struct mscope_trace_reader *f;
	const struct mscope_frame_info *fr;
	struct mscope_trace_error err;
	size_t n;
	int rebuilt;

	tgen_init(&g, 42, 3000);
	snprintf(path, sizeof(path), "%s/w.mst", tmpdir);
	write_gen(path, &g, 700);
	f = open_mode(path, MSCOPE_FIELDS_ALL);
	cr_assert_eq(mscope_reader_index(f, &fr, &n, &rebuilt, &err), 0, "%s", err.text);
	cr_assert_eq(rebuilt, 0, "the seek table was not used: %s", mscope_reader_index_note(f));
	cr_assert_gt(n, 10);
	for (int t = 0; t < 30; t++) {
		const uint64_t lo = fr[0].tsc_first, hi = fr[n - 1].tsc_last;
		uint64_t t0 = lo + tgen_below(&rng, hi - lo + 1), t1 = lo + tgen_below(&rng, hi - lo + 1);
		struct mscope_trace_reader *a = open_mode(path, MSCOPE_FIELDS_ALL);
		struct mscope_trace_reader *b = open_mode(path, MSCOPE_FIELDS_LEAN);

		if (t0 > t1) {
			const uint64_t x = t0;

			t0 = t1;
			t1 = x;
		}
		cr_assert_eq(mscope_reader_window(a, t0, t1, &err), 0, "%s", err.text);
		cr_assert_eq(mscope_reader_window(b, t0, t1, &err), 0, "%s", err.text);
		same_stream(a, b);
		/* and a seek to a random frame */
		{
			const size_t k = (size_t)tgen_below(&rng, n);

			cr_assert_eq(mscope_reader_seek(a, k, &err), 0, "%s", err.text);
			cr_assert_eq(mscope_reader_seek(b, k, &err), 0, "%s", err.text);
			same_stream(a, b);
		}
		mscope_reader_close(a);
		mscope_reader_close(b);
	}
	mscope_reader_close(f);
	tgen_free(&g);
}

Test(lean, segment_stream_equals_full)
{
	char paths[3][300];
	const char *pp[3] = { paths[0], paths[1], paths[2] };
	struct mscope_trace_error err;
	struct mscope_trace_reader *f, *l;

	cr_assert_eq(tgen_segments(tmpdir, 3, 40, NULL), 0);
	for (int i = 0; i < 3; i++)
		snprintf(paths[i], sizeof(paths[i]), "%s/s.%06d.mst", tmpdir, i);
	f = mscope_reader_open_segments(pp, 3, &err);
	cr_assert_not_null(f, "%s", err.text);
	l = mscope_reader_open_segments(pp, 3, &err);
	cr_assert_not_null(l, "%s", err.text);
	cr_assert_eq(mscope_reader_set_fields(l, MSCOPE_FIELDS_LEAN), 0);
	cr_assert_gt(same_stream(f, l), 0);
	mscope_reader_close(f);
	mscope_reader_close(l);
}

/* A flipped byte in the compressed data: the lean mode refuses it too
 * (the zstd content checksum or the decoder), at the same record. */
Test(lean, damage_refused_like_full)
{
	struct tgen g;
	char path[300], bad[300];
	struct stat sb;
	struct tgen_rng rng = { 5 };
	int refused = 0;

	tgen_init(&g, 7, 2000);
	snprintf(path, sizeof(path), "%s/d.mst", tmpdir);
	write_gen(path, &g, 4096);
	cr_assert_eq(stat(path, &sb), 0);
	for (int t = 0; t < 20; t++) {
		FILE *in = fopen(path, "rb"), *out;
		uint8_t *buf = malloc((size_t)sb.st_size);
		struct mscope_trace_reader *f, *l;
		struct mscope_record a, b;
		struct mscope_trace_error ea, eb;
		int ra, rb;

		cr_assert_eq(fread(buf, 1, (size_t)sb.st_size, in), (size_t)sb.st_size);
		fclose(in);
		/* past the header, before the seek table's likely start */
		buf[200 + tgen_below(&rng, (uint64_t)sb.st_size / 2)] ^= 0x10;
		snprintf(bad, sizeof(bad), "%s/bad%d.mst", tmpdir, t);
		out = fopen(bad, "wb");
		cr_assert_eq(fwrite(buf, 1, (size_t)sb.st_size, out), (size_t)sb.st_size);
		fclose(out);
		free(buf);
		f = open_mode(bad, MSCOPE_FIELDS_ALL);
		l = open_mode(bad, MSCOPE_FIELDS_LEAN);
		do {
			ra = mscope_reader_next(f, &a, &ea);
			rb = mscope_reader_next(l, &b, &eb);
			cr_assert_eq(ra, rb, "flip %d: full %d (%s), lean %d (%s)", t, ra,
				     ra < 0 ? ea.text : "", rb, rb < 0 ? eb.text : "");
		} while (ra == 1);
		refused += ra < 0;
		mscope_reader_close(f);
		mscope_reader_close(l);
	}
	cr_assert_gt(refused, 10, "only %d of 20 flips refused", refused);
	tgen_free(&g);
}

Test(lean, unknown_fields_refused)
{
	struct tgen g;
	char path[300];
	struct mscope_trace_reader *r;

	tgen_init(&g, 3, 100);
	snprintf(path, sizeof(path), "%s/u.mst", tmpdir);
	write_gen(path, &g, 0);
	r = open_mode(path, MSCOPE_FIELDS_ALL);
	cr_assert_eq(mscope_reader_set_fields(r, 2), -1);
	cr_assert_eq(mscope_reader_set_fields(NULL, MSCOPE_FIELDS_LEAN), -1);
	mscope_reader_close(r);
	tgen_free(&g);
}
