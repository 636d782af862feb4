/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The time index (seek table, rebuilt index, window, seek), segment streams,
 * hostile seek tables and the reader's refusals of #16 defects 10 and 11.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <zstd.h>

#include "mscope_trace.h"
#include "tgen.h"
#include "trace_proto.h"

TGEN_TMPDIR_SUITE(index, "idx");

static void
write_gen(const char *path, struct tgen *g, size_t frame_bytes)
{
	cr_assert_eq(tgen_write_file(path, g, "idx", frame_bytes), 0, "cannot write %s", path);
}

static uint8_t *
slurp(const char *path, size_t *len)
{
	struct stat sb;
	int fd = open(path, O_RDONLY);
	uint8_t *p;

	cr_assert_geq(fd, 0);
	cr_assert_eq(fstat(fd, &sb), 0);
	*len = (size_t)sb.st_size;
	p = malloc(*len + 1);
	cr_assert_eq(read(fd, p, *len), (ssize_t)*len);
	close(fd);
	return p;
}

static void
spit(const char *path, const uint8_t *p, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, p, len), (ssize_t)len);
	close(fd);
}

/* Size of the seek table frame at the end of a file (0 if none). */
static size_t
table_size(const uint8_t *p, size_t len)
{
	if (len < 28 || mscope_get_le32(p + len - 4) != MSCOPE_IDX_MAGIC)
		return 0;
	return 8 + (size_t)mscope_get_le32(p + len - 20) * MSCOPE_IDX_ENTRY +
	       mscope_get_le32(p + len - 12) + MSCOPE_IDX_FOOTER;
}

/* A random stream g written to tmpdir/name (path out), and the file's bytes. */
static uint8_t *
gen_file(struct tgen *g, uint64_t seed, size_t nrec, size_t frame_bytes, const char *name,
	 char *path, size_t *len)
{
	tgen_init(g, seed, nrec);
	snprintf(path, 300, "%s/%.200s", tmpdir, name);
	write_gen(path, g, frame_bytes);
	return slurp(path, len);
}

static struct mscope_trace_reader *
open_or_die(const char *path)
{
	struct mscope_trace_error err;
	struct mscope_trace_reader *r = mscope_reader_open(path, &err);

	cr_assert_not_null(r, "%s: %s", path, err.text);
	return r;
}

static void
get_index(struct mscope_trace_reader *r, const struct mscope_frame_info **f, size_t *n,
	  int *rebuilt)
{
	struct mscope_trace_error err;

	cr_assert_eq(mscope_reader_index(r, f, n, rebuilt, &err), 0, "%s", err.text);
}

/* The seek table and a rebuilt index agree, and describe the records exactly. */
Test(index, seek_table_matches_scan)
{
	for (uint64_t seed = 1; seed <= 8; seed++) {
		struct tgen g;
		char path[300], cut[300];
		const struct mscope_frame_info *fa, *fb;
		struct mscope_trace_reader *a, *b;
		size_t na, nb, len, records = 0;
		int ra, rb;
		uint8_t *p;

		tgen_init(&g, seed, 300);
		snprintf(path, sizeof(path), "%s/s%llu.mst", tmpdir, (unsigned long long)seed);
		snprintf(cut, sizeof(cut), "%s/s%llu-cut.mst", tmpdir, (unsigned long long)seed);
		write_gen(path, &g, 500 + seed * 300);
		p = slurp(path, &len);
		cr_assert_gt(table_size(p, len), 0);
		spit(cut, p, len - table_size(p, len)); /* as if SIGKILLed after the last frame */
		a = open_or_die(path);
		b = open_or_die(cut);
		get_index(a, &fa, &na, &ra);
		get_index(b, &fb, &nb, &rb);
		cr_assert_eq(ra, 0, "%s", mscope_reader_index_note(a));
		cr_assert_eq(rb, 1);
		cr_assert_not_null(strstr(mscope_reader_index_note(b), "no seek table"));
		cr_assert_eq(na, nb);
		cr_assert_gt(na, 2);
		for (size_t i = 0; i < na; i++) {
			cr_assert_eq(memcmp(&fa[i], &fb[i], sizeof(fa[i])), 0, "frame %zu differs", i);
			records += fa[i].records;
			if (i)
				cr_assert_eq(fa[i].offset, fa[i - 1].offset + fa[i - 1].csize);
		}
		cr_assert_eq(records, g.n);
		mscope_reader_close(a);
		mscope_reader_close(b);
		free(p);
		tgen_free(&g);
	}
}

/* Records of frames [f0, f1) of g, given the index. */
static size_t
rec_start(const struct mscope_frame_info *f, size_t k)
{
	size_t s = 0;

	for (size_t i = 0; i < k; i++)
		s += f[i].records;
	return s;
}

/* A window returns the replayed flows, then exactly the frames overlapping it. */
Test(index, window_returns_overlapping_frames)
{
	struct tgen g;
	char path[300];
	struct mscope_trace_reader *r;
	const struct mscope_frame_info *f;
	struct tgen_rng rng = { 77 };
	size_t n;
	int rebuilt;

	tgen_init(&g, 42, 2000);
	snprintf(path, sizeof(path), "%s/w.mst", tmpdir);
	write_gen(path, &g, 700);
	r = open_or_die(path);
	get_index(r, &f, &n, &rebuilt);
	cr_assert_gt(n, 10);
	for (int t = 0; t < 40; t++) {
		const uint64_t lo = f[0].tsc_first, hi = f[n - 1].tsc_last;
		uint64_t t0 = lo + tgen_below(&rng, hi - lo + 1), t1 = lo + tgen_below(&rng, hi - lo + 1);
		struct mscope_trace_error err;
		struct mscope_record rec;
		size_t first = n, stop = 0, i, replayed = 0;
		int rc;

		if (t0 > t1) {
			const uint64_t x = t0;

			t0 = t1;
			t1 = x;
		}
		if (t == 0) { /* a single frame's exact range */
			t0 = f[n / 2].tsc_first;
			t1 = f[n / 2].tsc_last;
		}
		for (i = 0; i < n; i++)
			if (f[i].tsc_last >= t0 && f[i].tsc_first <= t1) {
				if (first == n)
					first = i;
				stop = i + 1;
			}
		cr_assert_eq(mscope_reader_window(r, t0, t1, &err), 0, "%s", err.text);
		i = first == n ? 0 : rec_start(f, first);
		/* the replay: every FLOW record before the first frame, in order */
		for (size_t k = 0; first < n && k < i; k++) {
			if (g.recs[k].type != MSCOPE_REC_FLOW)
				continue;
			cr_assert_eq(mscope_reader_next(r, &rec, &err), 1, "%s", err.text);
			cr_assert_eq(rec.type, MSCOPE_REC_FLOW);
			cr_assert_eq(rec.u.flow.ref, g.recs[k].u.flow.ref);
			replayed++;
		}
		while ((rc = mscope_reader_next(r, &rec, &err)) == 1) {
			char why[200];

			cr_assert_lt(i, first == n ? 0 : rec_start(f, stop), "window [%llu, %llu]: too many records",
				     (unsigned long long)t0, (unsigned long long)t1);
			cr_assert(tgen_rec_eq(&g.recs[i], &rec, why, sizeof(why)), "%s", why);
			i++;
		}
		cr_assert_eq(rc, 0, "%s", err.text);
		cr_assert_eq(i, first == n ? 0 : rec_start(f, stop));
		(void)replayed;
	}
	mscope_reader_close(r);
	tgen_free(&g);
}

/* Seek then read to the end = the tail of a full read, also on a rebuilt index. */
Test(index, seek_replay_equals_full_read)
{
	struct tgen g;
	char path[300], cut[300];
	size_t len;
	uint8_t *p;

	p = gen_file(&g, 9, 800, 900, "k.mst", path, &len);
	snprintf(cut, sizeof(cut), "%s/k-cut.mst", tmpdir);
	spit(cut, p, len - table_size(p, len));
	for (int which = 0; which < 2; which++) {
		struct mscope_trace_reader *r = open_or_die(which ? cut : path);
		const struct mscope_frame_info *f;
		size_t n;
		int rebuilt;

		get_index(r, &f, &n, &rebuilt);
		cr_assert_eq(rebuilt, which);
		for (size_t k = 0; k <= n; k += 3) {
			struct mscope_trace_error err;
			struct mscope_record rec;
			size_t i = rec_start(f, k), nflow = 0;
			int rc;

			for (size_t j = 0; j < i; j++)
				nflow += g.recs[j].type == MSCOPE_REC_FLOW;
			cr_assert_eq(mscope_reader_seek(r, k, &err), 0, "%s", err.text);
			for (size_t j = 0; k < n && j < nflow; j++) {
				cr_assert_eq(mscope_reader_next(r, &rec, &err), 1);
				cr_assert_eq(rec.type, MSCOPE_REC_FLOW);
			}
			while ((rc = mscope_reader_next(r, &rec, &err)) == 1) {
				char why[200];

				cr_assert(tgen_rec_eq(&g.recs[i], &rec, why, sizeof(why)),
					  "seek %zu record %zu: %s", k, i, why);
				i++;
			}
			cr_assert_eq(rc, 0, "%s", err.text);
			cr_assert_eq(i, g.n);
		}
		mscope_reader_close(r);
	}
	free(p);
	tgen_free(&g);
}

/* Cut inside the last frame: the index lists the complete frames, says why. */
Test(index, rebuilt_after_cut_inside_a_frame)
{
	struct tgen g;
	char path[300], cut[300];
	struct mscope_trace_reader *r, *full;
	const struct mscope_frame_info *f, *ff;
	size_t len, n, nf;
	int rebuilt;
	uint8_t *p;

	p = gen_file(&g, 11, 500, 800, "c.mst", path, &len);
	snprintf(cut, sizeof(cut), "%s/c-cut.mst", tmpdir);
	full = open_or_die(path);
	get_index(full, &ff, &nf, &rebuilt);
	spit(cut, p, ff[nf - 1].offset + ff[nf - 1].csize / 2);
	r = open_or_die(cut);
	get_index(r, &f, &n, &rebuilt);
	cr_assert_eq(rebuilt, 1);
	cr_assert_eq(n, nf - 1);
	cr_assert_eq(memcmp(f, ff, n * sizeof(*f)), 0);
	cr_assert_not_null(strstr(mscope_reader_index_note(r), "scan stopped at offset"), "%s",
			   mscope_reader_index_note(r));
	mscope_reader_close(r);
	mscope_reader_close(full);
	free(p);
	tgen_free(&g);
}

/* A writer process killed with SIGKILL: its file gets an index by a scan. */
Test(index, rebuilt_after_kill_9)
{
	char path[300];
	int pfd[2];
	pid_t pid;
	char c;

	snprintf(path, sizeof(path), "%s/killed.mst", tmpdir);
	cr_assert_eq(pipe(pfd), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct mscope_trace_header h;
		struct mscope_trace_error err;
		struct mscope_writer_opts o = { .zstd_level = 1, .frame_bytes = 2000 };
		struct mscope_trace_writer *w;
		struct tgen g;

		tgen_init(&g, 3, 3000);
		tgen_header(&h, "kill");
		w = mscope_writer_open(path, &h, &o, &err);
		for (size_t i = 0; i < g.n; i++)
			if (w == NULL || tgen_write(w, &g.recs[i]) < 0)
				_exit(1);
		/* frames are on disk, the last one is still in the writer: kill now */
		if (write(pfd[1], "x", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(pfd[1]);
	cr_assert_eq(read(pfd[0], &c, 1), 1);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	close(pfd[0]);
	{
		struct mscope_trace_reader *r = open_or_die(path);
		const struct mscope_frame_info *f;
		struct mscope_trace_error err;
		struct mscope_record rec;
		size_t n, recs = 0, got = 0;
		int rebuilt, rc;

		get_index(r, &f, &n, &rebuilt);
		cr_assert_eq(rebuilt, 1);
		cr_assert_gt(n, 5);
		for (size_t i = 0; i < n; i++)
			recs += f[i].records;
		while ((rc = mscope_reader_next(r, &rec, &err)) == 1)
			got++;
		cr_assert_eq(rc, 0, "%s", err.text); /* the complete frames, cleanly */
		cr_assert_eq(got, recs);
		{
			struct tgen g;

			tgen_init(&g, 3, 3000); /* what the child wrote: all but its last frame */
			cr_assert_lt(got, g.n);
			cr_assert_gt(got, g.n / 2);
			tgen_free(&g);
		}
		mscope_reader_close(r);
	}
}

/* ------------------------------------------------------------- segments */

static void
seg_paths(char paths[][300], const unsigned *segs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		snprintf(paths[i], 300, "%s/s.%06u.mst", tmpdir, segs[i]);
}

/* Read all records of r; compare with those of the reader `want` from its start. */
static size_t
same_records(struct mscope_trace_reader *r, struct mscope_trace_reader *want)
{
	struct mscope_trace_error err;
	struct mscope_record a, b;
	size_t n = 0;
	int rc;

	while ((rc = mscope_reader_next(r, &a, &err)) == 1) {
		cr_assert_eq(mscope_reader_next(want, &b, &err), 1, "stream has more records");
		cr_assert_eq(a.type, b.type, "record %zu type %d != %d", n, a.type, b.type);
		switch (a.type) {
		case MSCOPE_REC_RX:
			cr_assert_eq(a.u.rx.tsc, b.u.rx.tsc);
			cr_assert_eq(a.u.rx.first_seq, b.u.rx.first_seq);
			cr_assert_eq(memcmp(a.u.rx.wire_id, b.u.rx.wire_id, a.u.rx.n * 4), 0);
			break;
		case MSCOPE_REC_TX:
			cr_assert_eq(a.u.tx.tsc, b.u.tx.tsc);
			cr_assert_eq(memcmp(a.u.tx.rx_seq, b.u.tx.rx_seq, a.u.tx.accepted * 8), 0);
			cr_assert_eq(memcmp(a.u.tx.wire_id, b.u.tx.wire_id, a.u.tx.accepted * 4), 0);
			break;
		case MSCOPE_REC_FLOW:
			cr_assert_eq(a.u.flow.ref, b.u.flow.ref);
			cr_assert_eq(memcmp(&a.u.flow.key, &b.u.flow.key, sizeof(a.u.flow.key)), 0);
			break;
		default:
			break;
		}
		n++;
	}
	cr_assert_eq(rc, 0, "%s", err.text);
	return n;
}

Test(index, three_segments_equal_one_file)
{
	char one[300], paths[3][300];
	const unsigned segs[3] = { 2, 0, 1 }; /* any order: sorted by header */
	const char *pp[3] = { paths[0], paths[1], paths[2] };
	struct mscope_trace_error err;
	struct mscope_trace_reader *s, *o;
	const struct mscope_frame_info *f;
	size_t n, nf1;
	int rebuilt;

	snprintf(one, sizeof(one), "%s/one.mst", tmpdir);
	cr_assert_eq(tgen_segments(tmpdir, 3, 40, one), 0);
	seg_paths(paths, segs, 3);
	s = mscope_reader_open_segments(pp, 3, &err);
	cr_assert_not_null(s, "%s", err.text);
	o = open_or_die(one);
	cr_assert_eq(mscope_reader_header(s)->segment, 0);
	cr_assert_eq(same_records(s, o), 40 * 2 * 3 + 6);
	cr_assert_eq(mscope_reader_gaps(s), 0);
	/* the stream's index: the segments' frames in order */
	get_index(s, &f, &n, &rebuilt);
	cr_assert_eq(rebuilt, 0);
	cr_assert_eq(f[0].segment, 0);
	cr_assert_eq(f[n - 1].segment, 2);
	for (nf1 = 0; nf1 < n && f[nf1].segment == 0; nf1++)
		;
	cr_assert_eq(f[nf1].offset, f[0].offset, "each segment's frames start after its header");
	for (size_t i = 1; i < n; i++) {
		cr_assert_geq(f[i].tsc_first, f[i - 1].tsc_last);
		cr_assert_eq(f[i].rx_seq_first, f[i - 1].rx_seq_first + f[i - 1].rx_packets);
	}
	/* a window across the segment 0/1 boundary holds what one file's window holds */
	{
		const uint64_t t0 = f[nf1 - 1].tsc_first, t1 = f[nf1].tsc_last;
		struct mscope_trace_reader *rd[2] = { s, o };
		uint64_t in[2] = { 0, 0 };

		for (int k = 0; k < 2; k++) {
			struct mscope_record rec;
			int rc;

			cr_assert_eq(mscope_reader_window(rd[k], t0, t1, &err), 0, "%s", err.text);
			while ((rc = mscope_reader_next(rd[k], &rec, &err)) == 1)
				if (rec.type == MSCOPE_REC_RX || rec.type == MSCOPE_REC_TX) {
					const uint64_t t = rec.type == MSCOPE_REC_RX ? rec.u.rx.tsc :
							   rec.u.tx.tsc;

					in[k] += t >= t0 && t <= t1;
				}
			cr_assert_eq(rc, 0, "%s", err.text);
		}
		cr_assert_eq(in[0], in[1]);
		cr_assert_eq(in[0], (t1 - t0) / 500 + 1, "records every 500 tsc in the window");
	}
	/* seek into the middle segment and read on: its flows, then its records
	 * (a seek reads to the window's end: widen the window first) */
	cr_assert_eq(mscope_reader_window(s, 0, UINT64_MAX, &err), 0, "%s", err.text);
	cr_assert_eq(mscope_reader_seek(s, nf1 + 1, &err), 0, "%s", err.text);
	{
		struct mscope_record rec;
		int rc, k = 0;

		while ((rc = mscope_reader_next(s, &rec, &err)) == 1)
			k++;
		cr_assert_eq(rc, 0, "%s", err.text);
		cr_assert_gt(k, 80);
	}
	mscope_reader_close(s);
	mscope_reader_close(o);
}

Test(index, oldest_missing_and_middle_missing)
{
	char paths[3][300];
	const unsigned segs[3] = { 1, 2, 4 };
	const char *pp[3] = { paths[0], paths[1], paths[2] };
	struct mscope_trace_error err;
	struct mscope_trace_reader *s;
	struct mscope_record rec;
	size_t loss = 0, rx = 0;
	uint64_t expect = 40 * 4; /* segment 0 (gone) held 40 bursts of 4 */
	int rc;

	cr_assert_eq(tgen_segments(tmpdir, 5, 40, NULL), 0);
	seg_paths(paths, segs, 3);
	/* segments 0 and 3 deleted: 0 is the oldest (fine), 3 is a gap */
	s = mscope_reader_open_segments(pp, 3, &err);
	cr_assert_not_null(s, "%s", err.text);
	cr_assert_eq(mscope_reader_header(s)->segment, 1);
	while ((rc = mscope_reader_next(s, &rec, &err)) == 1) {
		if (rec.type == MSCOPE_REC_RX) {
			cr_assert_eq(rec.u.rx.first_seq, expect, "rx seq continues across segments");
			expect += rec.u.rx.n;
			rx++;
		} else if (rec.type == MSCOPE_REC_LOSS) {
			cr_assert_eq(rec.u.loss.packets, 160); /* segment 3's rx packets */
			cr_assert_eq(rec.u.loss.records, 0);
			expect += rec.u.loss.packets;
			loss++;
		}
	}
	cr_assert_eq(rc, 0, "%s", err.text);
	cr_assert_eq(loss, 1);
	cr_assert_eq(rx, 120);
	cr_assert_eq(mscope_reader_gaps(s), 1);
	mscope_reader_close(s);

	/* not one stream: another node's file is refused by name */
	{
		char other[300];
		struct mscope_trace_header h;
		struct mscope_trace_writer *w;
		const char *p2[2] = { paths[0], other };

		snprintf(other, sizeof(other), "%s/other.mst", tmpdir);
		tgen_header(&h, "other");
		w = mscope_writer_open(other, &h, NULL, &err);
		cr_assert_eq(mscope_writer_close(w), 0);
		cr_assert_null(mscope_reader_open_segments(p2, 2, &err));
		cr_assert_str_eq(err.file, other);
		cr_assert_not_null(strstr(err.text, "nf name differs"), "%s", err.text);
	}
}

Test(index, group_streams)
{
	char paths[4][300], other[300];
	const unsigned segs[3] = { 2, 0, 1 };
	const char *pp[5];
	struct mscope_trace_stream *st;
	struct mscope_trace_error err;
	struct mscope_trace_header h;
	size_t n;

	cr_assert_eq(tgen_segments(tmpdir, 3, 5, NULL), 0);
	seg_paths(paths, segs, 3);
	snprintf(other, sizeof(other), "%s/other.mst", tmpdir);
	tgen_header(&h, "other");
	cr_assert_eq(mscope_writer_close(mscope_writer_open(other, &h, NULL, &err)), 0);
	pp[0] = paths[0];
	pp[1] = other;
	pp[2] = paths[1];
	pp[3] = paths[2];
	pp[4] = paths[1]; /* a copy of segment 0: another stream */
	cr_assert_eq(mscope_trace_group(pp, 5, &st, &n, &err), 0, "%s", err.text);
	cr_assert_eq(n, 3);
	cr_assert_eq(st[0].npaths, 3);
	cr_assert_str_eq(st[0].paths[0], paths[1]); /* segment 0 first */
	cr_assert_str_eq(st[0].paths[2], paths[0]);
	cr_assert_eq(st[1].npaths, 1);
	cr_assert_str_eq(st[1].paths[0], other);
	cr_assert_eq(st[2].npaths, 1);
	mscope_trace_group_free(st, n);
	pp[1] = "/nonexistent/x.mst";
	cr_assert_eq(mscope_trace_group(pp, 2, &st, &n, &err), -1);
	cr_assert_str_eq(err.file, "/nonexistent/x.mst");
}

/* ------------------------------------------------------ hostile seek tables */

/* Rewrite the table's check value after an edit (so only the content is wrong). */
static void
recheck(uint8_t *p, size_t len)
{
	const size_t ts = table_size(p, len);
	const uint32_t h = mscope_fnv_more(2166136261u, p + len - ts + 8, ts - 8 - 8);

	mscope_put_le32(p + len - 8, h);
}

/* Open a copy edited by fn; the index must be rebuilt (note names the problem) or refused. */
static void
hostile(const char *what, void (*fn)(uint8_t *p, size_t *len), const char *note)
{
	char path[300], bad[300];
	struct tgen g;
	size_t len, n;
	uint8_t *p;
	struct mscope_trace_reader *r;
	const struct mscope_frame_info *f;
	struct mscope_trace_error err;
	struct mscope_record rec;
	size_t k = 0;
	int rebuilt, rc;

	snprintf(bad, sizeof(bad), "h-%s.mst", what);
	p = gen_file(&g, 5, 400, 600, bad, path, &len);
	snprintf(bad, sizeof(bad), "%s/h-%s-bad.mst", tmpdir, what);
	fn(p, &len);
	spit(bad, p, len);
	r = open_or_die(bad);
	get_index(r, &f, &n, &rebuilt);
	cr_assert_eq(rebuilt, 1, "%s: the hostile table was used", what);
	cr_assert_not_null(strstr(mscope_reader_index_note(r), note), "%s: note '%s'", what,
			   mscope_reader_index_note(r));
	/* ... and the file still reads, through a window and plainly */
	cr_assert_eq(mscope_reader_window(r, 0, UINT64_MAX, &err), 0);
	while ((rc = mscope_reader_next(r, &rec, &err)) == 1)
		k++;
	cr_assert_eq(rc, 0, "%s: %s", what, err.text);
	cr_assert_eq(k, g.n);
	mscope_reader_close(r);
	free(p);
	tgen_free(&g);
}

static uint8_t *
entry(uint8_t *p, size_t len, size_t i)
{
	return p + len - table_size(p, len) + 8 + i * MSCOPE_IDX_ENTRY;
}

static void
e_offset(uint8_t *p, size_t *len)
{
	const uint64_t off = 1ULL << 40;

	memcpy(entry(p, *len, 1), &off, 8);
	recheck(p, *len);
}

static void
e_overlap(uint8_t *p, size_t *len)
{
	uint64_t off;

	memcpy(&off, entry(p, *len, 2), 8);
	off -= 5;
	memcpy(entry(p, *len, 2), &off, 8);
	recheck(p, *len);
}

static void
e_time_back(uint8_t *p, size_t *len)
{
	const uint64_t t = 0;

	memcpy(entry(p, *len, 3) + 16, &t, 8);
	memcpy(entry(p, *len, 3) + 24, &t, 8);
	recheck(p, *len);
}

static void
e_huge_count(uint8_t *p, size_t *len)
{
	mscope_put_le32(p + *len - 20, 0x7fffffff);
}

static void
e_packets(uint8_t *p, size_t *len)
{
	mscope_put_le32(entry(p, *len, 0) + 44, 0xffffffffu);
	recheck(p, *len);
}

static void
e_check(uint8_t *p, size_t *len)
{
	entry(p, *len, 0)[40] ^= 1;
}

static void
e_flow_frame(uint8_t *p, size_t *len)
{
	/* the first flow entry's frame index: past the last frame */
	uint8_t *fl = entry(p, *len, mscope_get_le32(p + *len - 20));

	fl[1] = 0x7f;
	recheck(p, *len);
}

Test(index, hostile_seek_tables_fall_back_to_a_scan)
{
	hostile("offset", e_offset, "frame offset out of place");
	hostile("overlap", e_overlap, "frame offset out of place");
	hostile("timeback", e_time_back, "time goes back");
	hostile("huge", e_huge_count, "do not fit the file");
	hostile("packets", e_packets, "more packets than");
	hostile("check", e_check, "check value mismatch");
	hostile("flowframe", e_flow_frame, "flow entry frame or ref out of range");
}

/* A consistent-looking table that lies about counts is caught while reading. */
Test(index, lying_seek_table_refused_while_reading)
{
	char path[300];
	struct tgen g;
	size_t len, n;
	uint8_t *p;
	struct mscope_trace_reader *r;
	const struct mscope_frame_info *f;
	struct mscope_trace_error err;
	struct mscope_record rec;
	int rebuilt, rc;
	uint32_t recs;

	p = gen_file(&g, 6, 400, 600, "lie.mst", path, &len);
	recs = mscope_get_le32(entry(p, len, 1) + 40);
	mscope_put_le32(entry(p, len, 1) + 40, recs + 1);
	recheck(p, len);
	spit(path, p, len);
	r = open_or_die(path);
	get_index(r, &f, &n, &rebuilt);
	cr_assert_eq(rebuilt, 0);
	cr_assert_eq(mscope_reader_seek(r, 1, &err), 0);
	while ((rc = mscope_reader_next(r, &rec, &err)) == 1)
		;
	cr_assert_eq(rc, -1);
	cr_assert_str_eq(err.file, path);
	cr_assert_eq(err.offset, f[1].offset);
	cr_assert_not_null(strstr(err.text, "seek table entry 1 does not match"), "%s", err.text);
	mscope_reader_close(r);
	free(p);
	tgen_free(&g);
}

/* ----------------------------------------------------- #16 defects 10, 11 */

/* header + frames built by hand: each raw frame compressed with a checksum */
static size_t
add_raw(uint8_t *b, size_t n, const uint8_t *raw, size_t len)
{
	ZSTD_CCtx *c = ZSTD_createCCtx();
	size_t z;

	ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1);
	z = ZSTD_compress2(c, b + n, 65536, raw, len);
	cr_assert(!ZSTD_isError(z));
	ZSTD_freeCCtx(c);
	return n + z;
}

static size_t
frame(uint8_t *out, uint64_t tsc, uint64_t rx, const uint8_t *ctl, size_t ctl_len,
      const uint8_t *tail, size_t tail_len, size_t wire_len)
{
	size_t n = 0;

	out[n++] = MSCOPE_P_FRAME;
	n += mscope_put_varint(out + n, ctl_len);
	n += mscope_put_varint(out + n, wire_len);
	n += mscope_put_varint(out + n, tsc);
	n += mscope_put_varint(out + n, rx);
	n += mscope_put_varint(out + n, 0);
	n += mscope_put_varint(out + n, 0);
	memcpy(out + n, ctl, ctl_len);
	if (tail_len)
		memcpy(out + n + ctl_len, tail, tail_len);
	return n + ctl_len + tail_len;
}

static int
read_all(const uint8_t *b, size_t n, struct mscope_trace_error *err, size_t *nrec)
{
	struct mscope_trace_reader *r = mscope_reader_open_mem(b, n, "hand", err);
	struct mscope_record rec;
	int rc;

	cr_assert_not_null(r);
	*nrec = 0;
	while ((rc = mscope_reader_next(r, &rec, err)) == 1)
		(*nrec)++;
	mscope_reader_close(r);
	return rc;
}

Test(index, defect10_time_seq_and_flows)
{
	static uint8_t b[1 << 18];
	uint8_t raw[256];
	/* LOSS dtsc 5 (0 records, 0 packets) */
	static const uint8_t loss[] = { MSCOPE_P_LOSS, 5, 0, 0 };
	/* FLOW ref 0; RX dtsc 1 n 1, wire, flow code 0 (ref 0) */
	static const uint8_t rx_ok[] = { MSCOPE_P_FLOW, 0, 0, 0, 0, 0, MSCOPE_P_RX, 1, 1 };
	static const uint8_t rx_undef[] = { MSCOPE_P_RX, 1, 1 };
	static const uint8_t tail0[] = { 1, 2, 3, 4, 0 };
	static const uint8_t tail9[] = { 1, 2, 3, 4, 10 }; /* flow ref 9 */
	struct mscope_trace_error err;
	size_t hdr, n, rl, k;
	char path[300];
	struct mscope_trace_header h;
	struct mscope_trace_writer *w;
	uint8_t *p;

	tgen_header(&h, "hand");
	snprintf(path, sizeof(path), "%s/hdr.mst", tmpdir);
	w = mscope_writer_open(path, &h, NULL, &err);
	cr_assert_eq(mscope_writer_close(w), 0);
	p = slurp(path, &hdr);
	hdr -= table_size(p, hdr);
	memcpy(b, p, hdr);
	free(p);

	/* frame 1 ends at tsc 105; frame 2 claims to start at 50: time goes back */
	rl = frame(raw, 100, 0, loss, sizeof(loss), NULL, 0, 0);
	n = add_raw(b, hdr, raw, rl);
	rl = frame(raw, 50, 0, loss, sizeof(loss), NULL, 0, 0);
	n = add_raw(b, n, raw, rl);
	cr_assert_eq(read_all(b, n, &err, &k), -1);
	cr_assert_eq(k, 1);
	cr_assert_not_null(strstr(err.text, "time goes back between frames"), "%s", err.text);

	/* rx seq going back between frames */
	rl = frame(raw, 100, 0, rx_ok, sizeof(rx_ok), tail0, sizeof(tail0), 4);
	n = add_raw(b, hdr, raw, rl);
	rl = frame(raw, 101, 0, loss, sizeof(loss), NULL, 0, 0);
	n = add_raw(b, n, raw, rl);
	cr_assert_eq(read_all(b, n, &err, &k), -1);
	cr_assert_not_null(strstr(err.text, "rx sequence goes back"), "%s", err.text);

	/* the same, continuing correctly: fine */
	rl = frame(raw, 100, 0, rx_ok, sizeof(rx_ok), tail0, sizeof(tail0), 4);
	n = add_raw(b, hdr, raw, rl);
	rl = frame(raw, 101, 1, loss, sizeof(loss), NULL, 0, 0);
	n = add_raw(b, n, raw, rl);
	cr_assert_eq(read_all(b, n, &err, &k), 0, "%s", err.text);
	cr_assert_eq(k, 3);

	/* flow refs never defined: ref 0 implicitly, ref 9 explicitly */
	rl = frame(raw, 100, 0, rx_undef, sizeof(rx_undef), tail0, sizeof(tail0), 4);
	n = add_raw(b, hdr, raw, rl);
	cr_assert_eq(read_all(b, n, &err, &k), -1);
	cr_assert_not_null(strstr(err.text, "flow ref 0 used but never defined"), "%s", err.text);
	rl = frame(raw, 100, 0, rx_ok, sizeof(rx_ok), tail9, sizeof(tail9), 4);
	n = add_raw(b, hdr, raw, rl);
	cr_assert_eq(read_all(b, n, &err, &k), -1);
	cr_assert_not_null(strstr(err.text, "flow ref 9 used but never defined"), "%s", err.text);

	/* impossible loss counts (they wrapped dump's counters) */
	{
		static const uint8_t big[] = { MSCOPE_P_LOSS, 5, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
					       0x80, 0x80, 0x80, 0x01, 1 };

		n = add_raw(b, hdr, raw, frame(raw, 100, 0, big, sizeof(big), NULL, 0, 0));
		cr_assert_eq(read_all(b, n, &err, &k), -1);
		cr_assert_not_null(strstr(err.text, "loss counts out of range"), "%s", err.text);
	}
}

/* A tiny valid-looking file holding millions of packets is refused by default. */
Test(index, defect11_decode_ratio_bound)
{
	struct mscope_trace_header h;
	struct mscope_trace_error err;
	struct mscope_writer_opts o = { .frame_bytes = 8 << 20 };
	struct mscope_trace_writer *w;
	struct mscope_trace_reader *r;
	struct mscope_record rec;
	static uint32_t wire[MSCOPE_MAX_BURST], flow[MSCOPE_MAX_BURST];
	const struct mscope_flow_key key = { .family = 4 };
	char path[300];
	uint64_t pk = 0;
	size_t len;
	int rc;

	tgen_header(&h, "bomb");
	snprintf(path, sizeof(path), "%s/bomb.mst", tmpdir);
	w = mscope_writer_open(path, &h, &o, &err);
	cr_assert_eq(mscope_writer_flow(w, 0, &key), 0);
	for (int b = 0; b < 1500; b++) { /* identical packets, all at one time */
		struct mscope_rx_burst rx = { .tsc = 5, .n = MSCOPE_MAX_BURST, .qdepth = -1,
					      .wire_id = wire, .flow = flow };

		cr_assert_eq(mscope_writer_rx(w, &rx), 0);
	}
	cr_assert_eq(mscope_writer_close(w), 0);
	free(slurp(path, &len));
	cr_assert_lt(len, 4000, "%zu bytes for 6 M packets", len);
	r = open_or_die(path);
	while ((rc = mscope_reader_next(r, &rec, &err)) == 1)
		;
	cr_assert_eq(rc, -1);
	cr_assert_str_eq(err.file, path);
	cr_assert_not_null(strstr(err.text, "decode ratio above 8192"), "%s", err.text);
	mscope_reader_close(r);
	/* the option lifts it */
	r = open_or_die(path);
	mscope_reader_set_max_ratio(r, 0);
	while ((rc = mscope_reader_next(r, &rec, &err)) == 1)
		pk += rec.type == MSCOPE_REC_RX ? rec.u.rx.n : 0;
	cr_assert_eq(rc, 0, "%s", err.text);
	cr_assert_eq(pk, 1500ULL * MSCOPE_MAX_BURST);
	mscope_reader_close(r);
}
