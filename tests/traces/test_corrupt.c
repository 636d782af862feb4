/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Hostile and broken input: files cut at every byte, flipped bits, bad magic,
 * future versions, empty files and frames, hand-made frames with absurd
 * contents; writer refusals (O_EXCL, symlinks, full disk, bad records).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zstd.h>

#include "mscope_trace.h"
#include "tgen.h"
#include "trace_proto.h"

TGEN_TMPDIR_SUITE(corrupt, "corrupt");

struct mfile {
	uint8_t *p;
	size_t len;
	/* frame boundaries: frame i ends at end[i], after nrec[i] records */
	size_t nframes;
	uint64_t end[256];
	size_t nrec[256];
	uint64_t hdr_end;
};

static void
slurp(const char *path, struct mfile *m)
{
	struct stat sb;
	int fd = open(path, O_RDONLY);

	cr_assert_geq(fd, 0);
	cr_assert_eq(fstat(fd, &sb), 0);
	m->len = (size_t)sb.st_size;
	m->p = malloc(m->len + 1);
	cr_assert_eq(read(fd, m->p, m->len), (ssize_t)m->len);
	close(fd);
	/* These tests work on the frames: drop the seek table the writer appends
	 * (test_index.c covers it), checking it is where the format says. */
	cr_assert_geq(m->len, 8 + MSCOPE_IDX_FOOTER);
	cr_assert_eq(mscope_get_le32(m->p + m->len - 4), MSCOPE_IDX_MAGIC);
	{
		const uint64_t payload = (uint64_t)mscope_get_le32(m->p + m->len - 20) *
			MSCOPE_IDX_ENTRY + mscope_get_le32(m->p + m->len - 12) + MSCOPE_IDX_FOOTER;

		cr_assert_leq(payload + 8, m->len);
		m->len -= payload + 8;
		cr_assert_eq(mscope_get_le32(m->p + m->len), MSCOPE_IDX_FRAME_MAGIC);
		cr_assert_eq(mscope_get_le32(m->p + m->len + 4), payload);
	}
}

/* Write g with a flush every `every` records, remembering where frames end. */
static void
make_file(const char *name, struct tgen *g, size_t every, struct mfile *m)
{
	struct mscope_trace_header h;
	struct mscope_trace_error err;
	struct mscope_writer_opts o = { .zstd_level = 1, .frame_bytes = 1 << 20 };
	struct mscope_trace_writer *w;
	char path[300];

	memset(m, 0, sizeof(*m));
	tgen_header(&h, name);
	h.tsc_hz = 0; /* frames end only where this test flushes */
	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	w = mscope_writer_open(path, &h, &o, &err);
	cr_assert_not_null(w, "%s", err.text);
	m->hdr_end = mscope_writer_bytes(w);
	for (size_t i = 0; i < g->n; i++) {
		cr_assert_eq(tgen_write(w, &g->recs[i]), 0);
		if ((i + 1) % every == 0 || i + 1 == g->n) {
			cr_assert_eq(mscope_writer_flush(w), 0);
			cr_assert_lt(m->nframes, 256);
			m->end[m->nframes] = mscope_writer_bytes(w);
			m->nrec[m->nframes] = i + 1;
			m->nframes++;
		}
	}
	cr_assert_eq(mscope_writer_close(w), 0);
	slurp(path, m);
	cr_assert_eq(m->len, m->end[m->nframes - 1]);
}

/*
 * Read buf[0..len) and check it against g: returns the reader's final rc;
 * records read must be a prefix of g (all of it when rc == 0).
 */
static int
read_prefix(const uint8_t *buf, size_t len, struct tgen *g, size_t *nread,
	    struct mscope_trace_error *err)
{
	struct mscope_trace_reader *r = mscope_reader_open_mem(buf, len, "cut", err);
	struct mscope_record rec;
	size_t i = 0;
	int rc;

	*nread = 0;
	if (r == NULL)
		return -2;
	while ((rc = mscope_reader_next(r, &rec, err)) == 1) {
		char why[200];

		cr_assert_lt(i, g->n);
		cr_assert(tgen_rec_eq(&g->recs[i], &rec, why, sizeof(why)),
			  "record %zu differs: %s", i, why);
		i++;
	}
	if (rc < 0) { /* sticky */
		struct mscope_trace_error e2;

		cr_assert_eq(mscope_reader_next(r, &rec, &e2), -1);
		cr_assert_str_eq(e2.text, err->text);
	}
	mscope_reader_close(r);
	*nread = i;
	return rc;
}

Test(corrupt, cut_at_every_offset)
{
	struct tgen g;
	struct mfile m;

	/* tgen now precedes each flow ref's first use by its definition: fewer
	 * records give the file the size (and the test the time) it had */
	tgen_init(&g, 7, 30);
	make_file("cut.mst", &g, 4, &m);
	cr_log_info("cut_at_every_offset: %zu bytes, %zu records, %zu frames", m.len, g.n, m.nframes);
	cr_assert_geq(m.nframes, 8);
	for (size_t len = 0; len <= m.len; len++) {
		struct mscope_trace_error err;
		size_t n, f = 0, want = 0;
		bool boundary = len == m.hdr_end;
		int rc = read_prefix(m.p, len, &g, &n, &err);

		for (f = 0; f < m.nframes && m.end[f] <= len; f++) {
			want = m.nrec[f];
			boundary |= m.end[f] == len;
		}
		if (len < m.hdr_end) {
			cr_assert_eq(rc, -2, "cut at %zu: header should not open", len);
			continue;
		}
		cr_assert_eq(n, want, "cut at %zu: %zu records, want %zu", len, n, want);
		if (boundary) {
			cr_assert_eq(rc, 0, "cut at %zu (frame boundary): %s", len, err.text);
		} else {
			const uint64_t fstart = f == 0 ? m.hdr_end : m.end[f - 1];

			cr_assert_eq(rc, -1, "cut at %zu: no error", len);
			cr_assert_eq(err.offset, fstart, "cut at %zu: error offset %llu, frame at %llu",
				     len, (unsigned long long)err.offset, (unsigned long long)fstart);
			cr_assert_not_null(strstr(err.text, "truncated"), "cut at %zu: %s", len,
					   err.text);
			cr_assert_str_eq(err.file, "cut");
		}
	}
	free(m.p);
	tgen_free(&g);
}

/* Every single-bit flip: an error, or (for bits zstd ignores) identical records. */
Test(corrupt, flipped_bits)
{
	struct tgen g;
	struct mfile m;
	struct tgen_rng rng = { 3 };
	uint8_t *buf;
	size_t errors = 0;

	tgen_init(&g, 11, 25);
	make_file("flip.mst", &g, 4, &m);
	cr_log_info("flipped_bits: %zu bytes, %zu records", m.len, g.n);
	buf = malloc(m.len);
	for (size_t off = 0; off < m.len; off++) {
		for (int rep = 0; rep < 2; rep++) {
			struct mscope_trace_error err;
			const uint8_t bit = (uint8_t)(1u << tgen_below(&rng, 8));
			size_t n;
			int rc;

			memcpy(buf, m.p, m.len);
			buf[off] ^= bit;
			rc = read_prefix(buf, m.len, &g, &n, &err);
			if (rc != 0)
				errors++;
			if (rc == 0)
				cr_assert_eq(n, g.n, "flip at %zu: silently lost records", off);
			if (rc == -1) {
				cr_assert_leq(err.offset, off, "flip at %zu reported at %llu", off,
					      (unsigned long long)err.offset);
			}
		}
	}
	cr_assert_gt(errors, 2 * m.len * 9 / 10, "only %zu of %zu flips detected", errors,
		     2 * m.len);
	free(buf);
	free(m.p);
	tgen_free(&g);
}

static struct mscope_trace_reader *
open_buf(const uint8_t *p, size_t len, struct mscope_trace_error *err)
{
	return mscope_reader_open_mem(p, len, "t", err);
}

/* A valid header (from the writer) followed by nothing. */
static size_t
header_only(uint8_t *out, size_t cap)
{
	struct mscope_trace_header h;
	struct mscope_trace_error err;
	struct mscope_trace_writer *w;
	char path[300];
	struct mfile m;

	tgen_header(&h, "hdr");
	snprintf(path, sizeof(path), "%s/hdr-%d.mst", tmpdir, rand());
	w = mscope_writer_open(path, &h, NULL, &err);
	cr_assert_not_null(w);
	cr_assert_eq(mscope_writer_close(w), 0);
	slurp(path, &m);
	cr_assert_leq(m.len, cap);
	memcpy(out, m.p, m.len);
	free(m.p);
	return m.len;
}

Test(corrupt, bad_magic_version_empty)
{
	uint8_t b[8192];
	struct mscope_trace_error err;
	size_t n = header_only(b, sizeof(b));
	char path[300];
	int fd;

	cr_assert_null(open_buf(b, 0, &err));
	cr_assert_not_null(strstr(err.text, "empty file"), "%s", err.text);

	b[0] ^= 1;
	cr_assert_null(open_buf(b, n, &err));
	cr_assert_not_null(strstr(err.text, "bad magic"), "%s", err.text);
	b[0] ^= 1;

	b[8] = 'X'; /* payload magic */
	cr_assert_null(open_buf(b, n, &err));
	cr_assert_not_null(strstr(err.text, "bad magic"), "%s", err.text);
	b[8] = 'M';

	/* the writer writes format 2, and the reader reads nothing else: not
	 * version 1 (its wire IDs are another function), not a later one */
	cr_assert_eq(MSCOPE_TRACE_VERSION, 2);
	cr_assert_eq(b[16] | b[17] << 8 | b[18] << 16 | (uint32_t)b[19] << 24, 2u);
	b[16] = 1; /* version 1 */
	cr_assert_null(open_buf(b, n, &err));
	cr_assert_not_null(strstr(err.text, "unsupported format version 1 (this reader reads version 2)"),
			   "%s", err.text);
	b[16] = 3; /* a later version */
	cr_assert_null(open_buf(b, n, &err));
	cr_assert_not_null(strstr(err.text, "unsupported format version 3 (this reader reads version 2)"),
			   "%s", err.text);
	b[16] = 0;
	cr_assert_null(open_buf(b, n, &err));
	cr_assert_not_null(strstr(err.text, "unsupported format version 0"), "%s", err.text);
	b[16] = 2;
	b[19] = 1; /* 2 + 2^24: only the whole u32 counts */
	cr_assert_null(open_buf(b, n, &err));
	cr_assert_not_null(strstr(err.text, "unsupported format version 16777218"), "%s", err.text);
	b[19] = 0;

	b[40] ^= 0x10; /* covered by the header check */
	cr_assert_null(open_buf(b, n, &err));
	cr_assert_not_null(strstr(err.text, "corrupt header"), "%s", err.text);
	b[40] ^= 0x10;

	{
		struct mscope_trace_reader *r = open_buf(b, n, &err);

		cr_assert_not_null(r, "%s", err.text);
		mscope_reader_close(r);
	}

	/* not a trace at all, and an empty file on disk */
	cr_assert_null(open_buf((const uint8_t *)"hello world\n", 12, &err));
	cr_assert_not_null(strstr(err.text, "bad magic"));
	snprintf(path, sizeof(path), "%s/empty", tmpdir);
	fd = open(path, O_CREAT | O_WRONLY, 0644);
	close(fd);
	cr_assert_null(mscope_reader_open(path, &err));
	cr_assert_str_eq(err.file, path);
	cr_assert_not_null(strstr(err.text, "empty file"));
	snprintf(path, sizeof(path), "%s/missing", tmpdir);
	cr_assert_null(mscope_reader_open(path, &err));
	cr_assert_not_null(strstr(err.text, "cannot open"));
}

/* Compress raw bytes into one zstd frame appended at b + n. */
static size_t
add_frame(uint8_t *b, size_t n, size_t cap, const void *raw, size_t raw_len, int checksum)
{
	ZSTD_CCtx *c = ZSTD_createCCtx();
	size_t z;

	ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, checksum);
	z = ZSTD_compress2(c, b + n, cap - n, raw, raw_len);
	cr_assert(!ZSTD_isError(z));
	ZSTD_freeCCtx(c);
	return n + z;
}

/* Expect reading header + one frame of `raw` to fail with `what`. */
static void
expect_frame_error(const void *raw, size_t raw_len, const char *what)
{
	static uint8_t b[1 << 17];
	struct mscope_trace_error err;
	struct mscope_trace_reader *r;
	struct mscope_record rec;
	size_t n = header_only(b, sizeof(b));
	const size_t hdr = n;
	int rc;

	n = add_frame(b, n, sizeof(b), raw, raw_len, 1);
	r = open_buf(b, n, &err);
	cr_assert_not_null(r);
	while ((rc = mscope_reader_next(r, &rec, &err)) == 1)
		;
	cr_assert_eq(rc, -1, "expected '%s', got a clean end", what);
	cr_assert_not_null(strstr(err.text, what), "expected '%s', got '%s'", what, err.text);
	cr_assert_eq(err.offset, hdr);
	mscope_reader_close(r);
}

/* Build a raw frame: preamble + ctl, with wire and flow sections. */
static size_t
raw_frame(uint8_t *out, const uint8_t *ctl, size_t ctl_len, const uint8_t *wire,
	  size_t wire_len, const uint8_t *flow, size_t flow_len)
{
	/* every frame starts by defining flow ref 0 (no address) */
	static const uint8_t flow0[6] = { MSCOPE_P_FLOW, 0, 0, 0, 0, 0 };
	size_t n = 0;

	out[n++] = MSCOPE_P_FRAME;
	n += mscope_put_varint(out + n, ctl_len + sizeof(flow0));
	n += mscope_put_varint(out + n, wire_len);
	n += mscope_put_varint(out + n, 100);   /* tsc base */
	n += mscope_put_varint(out + n, 0);     /* rx seq base */
	n += mscope_put_varint(out + n, 0);     /* tx expect */
	n += mscope_put_varint(out + n, 0);     /* drop expect */
	memcpy(out + n, flow0, sizeof(flow0));
	n += sizeof(flow0);
	if (ctl_len)
		memcpy(out + n, ctl, ctl_len);
	n += ctl_len;
	if (wire_len)
		memcpy(out + n, wire, wire_len);
	n += wire_len;
	if (flow_len)
		memcpy(out + n, flow, flow_len);
	return n + flow_len;
}

Test(corrupt, hostile_frames)
{
	static uint8_t raw[1 << 16], wire[1 << 15], flow[1 << 14];
	uint8_t ctl[64];
	size_t n;

	memset(wire, 0xab, sizeof(wire));
	memset(flow, 0, sizeof(flow));

	/* zero-length frame */
	expect_frame_error("", 0, "empty frame");
	/* garbage instead of a preamble */
	expect_frame_error("\x07\x01", 2, "no frame preamble");
	/* rx burst over MSCOPE_MAX_BURST */
	n = 0;
	ctl[n++] = MSCOPE_P_RX;
	n += mscope_put_varint(ctl + n, 5);
	n += mscope_put_varint(ctl + n, MSCOPE_MAX_BURST + 1);
	expect_frame_error(raw, raw_frame(raw, ctl, n, wire, (MSCOPE_MAX_BURST + 1) * 4, flow,
					  MSCOPE_MAX_BURST + 1), "exceeds MSCOPE_MAX_BURST");
	/* rx burst with fewer wire IDs than packets */
	n = 0;
	ctl[n++] = MSCOPE_P_RX;
	n += mscope_put_varint(ctl + n, 5);
	n += mscope_put_varint(ctl + n, 10);
	expect_frame_error(raw, raw_frame(raw, ctl, n, wire, 36, flow, 10), "wire section");
	/* ... or fewer flow codes */
	expect_frame_error(raw, raw_frame(raw, ctl, n, wire, 40, flow, 9), "flow");
	/* ... or more of either */
	expect_frame_error(raw, raw_frame(raw, ctl, n, wire, 44, flow, 10), "unused");
	expect_frame_error(raw, raw_frame(raw, ctl, n, wire, 40, flow, 11), "unused");
	/* unknown record type, unknown flags */
	expect_frame_error(raw, raw_frame(raw, (const uint8_t *)"\x0e", 1, wire, 0, flow, 0),
			   "unknown record type");
	expect_frame_error(raw, raw_frame(raw, (const uint8_t *)"\x85\x00\x00\x00", 4, wire, 0,
					  flow, 0), "unknown loss flags");
	/* mirrored tx with no rx packets in the frame */
	n = 0;
	ctl[n++] = MSCOPE_P_TX | MSCOPE_TXF_MIRROR << 4;
	n += mscope_put_varint(ctl + n, 1);
	ctl[n++] = 0; /* port */
	ctl[n++] = 0; /* queue */
	ctl[n++] = 3; /* accepted */
	ctl[n++] = 0; /* refused */
	expect_frame_error(raw, raw_frame(raw, ctl, n, wire, 0, flow, 0), "outside the frame");
	/* tx "same port/queue" as a previous tx that does not exist */
	ctl[0] = MSCOPE_P_TX | MSCOPE_TXF_SAMEPQ << 4;
	expect_frame_error(raw, raw_frame(raw, ctl, 3, wire, 0, flow, 0), "port/queue");
	/* link to an rx packet of another frame */
	n = 0;
	ctl[n++] = MSCOPE_P_DROP | MSCOPE_DRF_SEQS << 4;
	ctl[n++] = 1;  /* dtsc */
	ctl[n++] = 1;  /* reason */
	ctl[n++] = 1;  /* n */
	ctl[n++] = MSCOPE_LINK_RING;
	expect_frame_error(raw, raw_frame(raw, ctl, n, wire, 0, flow, 0), "outside the frame");
	/* varint that never ends / overflows */
	expect_frame_error(raw, raw_frame(raw, (const uint8_t *)"\x05\xff\xff\xff\xff\xff\xff\xff"
					  "\xff\xff\xff\x01", 12, wire, 0, flow, 0), "tsc");
	/* tsc overflow */
	n = 0;
	ctl[n++] = MSCOPE_P_LOSS;
	n += mscope_put_varint(ctl + n, UINT64_MAX);
	ctl[n++] = 0;
	ctl[n++] = 0;
	expect_frame_error(raw, raw_frame(raw, ctl, n, wire, 0, flow, 0), "tsc overflows");
	/* flow record: bad family, truncated address */
	expect_frame_error(raw, raw_frame(raw, (const uint8_t *)"\x14\x01\x05\x06\x00\x00", 6,
					  wire, 0, flow, 0), "family");
	expect_frame_error(raw, raw_frame(raw, (const uint8_t *)"\x24\x01\x06\x06\x00\x00\x01", 7,
					  wire, 0, flow, 0), "truncated");
	/* flow code beyond 32 bits */
	n = 0;
	ctl[n++] = MSCOPE_P_RX;
	ctl[n++] = 0;
	ctl[n++] = 1;
	{
		uint8_t fl[16];
		size_t fn = mscope_put_varint(fl, (uint64_t)UINT32_MAX + 2);

		expect_frame_error(raw, raw_frame(raw, ctl, n, wire, 4, fl, fn), "flow");
	}
	/* section lengths that do not fit */
	{
		uint8_t bad[32];
		size_t k = 0;

		bad[k++] = MSCOPE_P_FRAME;
		k += mscope_put_varint(bad + k, 1000);
		k += mscope_put_varint(bad + k, 0);
		bad[k++] = 0;
		bad[k++] = 0;
		bad[k++] = 0;
		bad[k++] = 0;
		bad[k++] = MSCOPE_P_LOSS;
		expect_frame_error(bad, k, "section lengths");
	}
}

/* One control-section-only record given as bytes must fail with `what`. */
static void
expect_ctl_error(const char *ctl, size_t len, size_t wire_len, size_t flow_len, const char *what)
{
	static uint8_t raw[1 << 12], wire[1 << 10], flow[1 << 8];

	memset(wire, 0x5a, sizeof(wire));
	memset(flow, 0, sizeof(flow));
	expect_frame_error(raw, raw_frame(raw, (const uint8_t *)ctl, len, wire, wire_len, flow,
					  flow_len), what);
}

Test(corrupt, hostile_fields)
{
	/* unknown flags on every record kind */
	expect_ctl_error("\xf1\x00\x00", 3, 0, 0, "unknown rx flags");
	expect_ctl_error("\x82\x00\x00\x00\x00\x00", 6, 0, 0, "unknown tx flags");
	expect_ctl_error("\x43\x00\x00\x00", 4, 0, 0, "unknown drop flags");
	expect_ctl_error("\x16\x00", 2, 0, 0, "unknown clock flags");
	expect_ctl_error("\x34\x00\x00\x00\x00\x00", 6, 0, 0, "address length");
	/* values out of their field's range */
	expect_ctl_error("\x21\x00\x00\x80\x80\x80\x80\x08", 8, 0, 0, "qdepth");
	expect_ctl_error("\x02\x00\x80\x80\x04\x00\x00\x00", 8, 0, 0, "port/queue");
	expect_ctl_error("\x02\x00\x00\x00\x01\xff\xff\xff\xff\x0f", 10, 0, 0, "offered");
	expect_ctl_error("\x04\x80\x80\x80\x80\x10\x04\x06\x00\x00", 10, 0, 0,
			 "flow ref out of range");
	expect_ctl_error("\x04\x01\x04\x06\x80\x80\x04\x00", 8, 0, 0, "flow port");
	expect_ctl_error("\x04\x01", 2, 0, 0, "flow record truncated");
	/* link codes with stray bits, links to the reserved seq 2^64-1 */
	expect_ctl_error("\x23\x00\x01\x01\x06", 5, 4, 0, "unlinked");
	expect_ctl_error("\x23\x00\x01\x01\x07", 5, 4, 0, "bad link code");
	expect_ctl_error("\x23\x00\x01\x01\x03\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
			 15, 4, 0, "2^64-1");
	expect_ctl_error("\x23\x00\x01\x01\x05", 5, 4, 0, "2^64-1"); /* expect 0 - 1 */
	expect_ctl_error("\x23\x00\x01\x01\x01", 5, 0, 0, "wire section");
	/* drop without seqs: wire IDs missing; flows missing */
	expect_ctl_error("\x03\x00\x01\x02", 4, 4, 0, "wire section");
	expect_ctl_error("\x13\x00\x01\x01", 4, 4, 0, "flow");
	expect_ctl_error("\x03\x00", 2, 0, 0, "record truncated");
	/* tx flows missing */
	expect_ctl_error("\x22\x00\x00\x00\x01\x00\x02", 7, 4, 0, "flow");
}

/* Frames without a declared size grow the buffer, up to the 16 MiB cap. */
Test(corrupt, frames_without_content_size)
{
	static uint8_t b[1 << 16];
	const size_t big = 80000 / 4 * 4;
	uint8_t *raw = malloc(MSCOPE_FRAME_RAW_MAX + 4096);
	size_t n, hdr, rl, k = 0, z;
	ZSTD_CCtx *c = ZSTD_createCCtx();
	struct mscope_trace_error err;
	struct mscope_trace_reader *r;
	struct mscope_record rec;
	uint8_t *zb;
	int rc;

	uint8_t *ctl = malloc(big);

	/* 20000 loss records: 80 kB raw, more than the first buffer */
	for (size_t i = 0; i < big; i += 4)
		memcpy(ctl + i, "\x05\x01\x02\x03", 4);
	rl = raw_frame(raw, ctl, big, NULL, 0, NULL, 0);
	free(ctl);
	hdr = header_only(b, sizeof(b));
	ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1);
	ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 0);
	zb = malloc(hdr + ZSTD_compressBound(MSCOPE_FRAME_RAW_MAX + 4096));
	memcpy(zb, b, hdr);
	/* streaming without a pledged size: no content size in the frame header */
	{
		ZSTD_inBuffer in = { raw, rl, 0 };
		ZSTD_outBuffer out = { zb + hdr, ZSTD_compressBound(rl), 0 };

		cr_assert_eq(ZSTD_compressStream2(c, &out, &in, ZSTD_e_end), 0);
		z = out.pos;
	}
	cr_assert_eq(ZSTD_getFrameContentSize(zb + hdr, z), ZSTD_CONTENTSIZE_UNKNOWN);
	r = open_buf(zb, hdr + z, &err);
	cr_assert_not_null(r);
	/* this frame decodes ~2000x its size: refused under a bound of 1024 */
	mscope_reader_set_max_ratio(r, 1024);
	cr_assert_eq(mscope_reader_next(r, &rec, &err), -1);
	cr_assert_not_null(strstr(err.text, "decode ratio above 1024"), "%s", err.text);
	mscope_reader_close(r);
	r = open_buf(zb, hdr + z, &err);
	while ((rc = mscope_reader_next(r, &rec, &err)) == 1)
		k++;
	cr_assert_eq(rc, 0, "%s", err.text);
	cr_assert_eq(k, big / 4 + 1); /* and the flow record */
	mscope_reader_close(r);

	/* a bomb: 16 MiB + 1 of zeros decodes into an error, not into memory */
	memset(raw, 0, MSCOPE_FRAME_RAW_MAX + 1);
	ZSTD_CCtx_reset(c, ZSTD_reset_session_only);
	{
		ZSTD_inBuffer in = { raw, MSCOPE_FRAME_RAW_MAX + 1, 0 };
		ZSTD_outBuffer out = { zb + hdr, ZSTD_compressBound(MSCOPE_FRAME_RAW_MAX + 1), 0 };

		cr_assert_eq(ZSTD_compressStream2(c, &out, &in, ZSTD_e_end), 0);
		n = hdr + out.pos;
	}
	r = open_buf(zb, n, &err);
	cr_assert_not_null(r);
	cr_assert_eq(mscope_reader_next(r, &rec, &err), -1);
	cr_assert_not_null(strstr(err.text, "exceeds"), "%s", err.text);
	cr_assert_eq(err.offset, hdr);
	mscope_reader_close(r);
	ZSTD_freeCCtx(c);
	free(zb);
	free(raw);
}

Test(corrupt, frame_level_problems)
{
	static uint8_t b[1 << 16];
	struct mscope_trace_error err;
	struct mscope_trace_reader *r;
	struct mscope_record rec;
	uint8_t raw[64];
	size_t n, hdr, rl;

	rl = raw_frame(raw, (const uint8_t *)"\x05\x01\x02\x03", 4, NULL, 0, NULL, 0);
	/* a frame without a content checksum */
	hdr = n = header_only(b, sizeof(b));
	n = add_frame(b, n, sizeof(b), raw, rl, 0);
	r = open_buf(b, n, &err);
	cr_assert_eq(mscope_reader_next(r, &rec, &err), -1);
	cr_assert_not_null(strstr(err.text, "no content checksum"), "%s", err.text);
	mscope_reader_close(r);
	/* a good frame, then garbage: the record, then an error at the garbage */
	n = add_frame(b, hdr, sizeof(b), raw, rl, 1);
	memcpy(b + n, "garbage!", 8);
	r = open_buf(b, n + 8, &err);
	cr_assert_eq(mscope_reader_next(r, &rec, &err), 1);
	cr_assert_eq(rec.type, MSCOPE_REC_FLOW);
	cr_assert_eq(mscope_reader_next(r, &rec, &err), 1);
	cr_assert_eq(rec.type, MSCOPE_REC_LOSS);
	cr_assert_eq(rec.u.loss.tsc, 101);
	cr_assert_eq(rec.u.loss.records, 2);
	cr_assert_eq(mscope_reader_next(r, &rec, &err), -1);
	cr_assert_eq(err.offset, n);
	cr_assert_not_null(strstr(err.text, "bad frame magic"), "%s", err.text);
	mscope_reader_close(r);
	/* a skippable frame after the header */
	memcpy(b + hdr, "\x50\x2a\x4d\x18\x00\x00\x00\x00", 8);
	r = open_buf(b, hdr + 8, &err);
	cr_assert_eq(mscope_reader_next(r, &rec, &err), -1);
	cr_assert_not_null(strstr(err.text, "skippable"), "%s", err.text);
	mscope_reader_close(r);
}

/* A file larger than the reader's input chunk, cut at a few places, read from disk. */
Test(corrupt, big_file_chunks)
{
	struct tgen g;
	struct mfile m;
	char path[300];
	size_t every = 40;

	tgen_init(&g, 21, 3000);
	make_file("big.mst", &g, every, &m);
	cr_assert_gt(m.len, 600000, "file of %zu bytes is too small for the test", m.len);
	snprintf(path, sizeof(path), "%s/big-cut.mst", tmpdir);
	for (size_t k = 0; k < 6; k++) {
		const size_t len = k == 0 ? m.len : m.len * k / 6 + 13;
		struct mscope_trace_error err;
		struct mscope_trace_reader *r;
		struct mscope_record rec;
		size_t i = 0, want = 0, f;
		int fd, rc;

		unlink(path);
		fd = open(path, O_CREAT | O_WRONLY, 0644);
		cr_assert_eq(write(fd, m.p, len), (ssize_t)len);
		close(fd);
		for (f = 0; f < m.nframes && m.end[f] <= len; f++)
			want = m.nrec[f];
		r = mscope_reader_open(path, &err);
		cr_assert_not_null(r, "%s", err.text);
		while ((rc = mscope_reader_next(r, &rec, &err)) == 1) {
			char why[200];

			cr_assert(tgen_rec_eq(&g.recs[i], &rec, why, sizeof(why)), "%zu: %s", i, why);
			i++;
		}
		cr_assert_eq(i, want, "cut %zu: %zu of %zu records", len, i, want);
		if (len == m.len) {
			cr_assert_eq(rc, 0, "%s", err.text);
			cr_assert_eq(mscope_reader_offset(r), m.len);
		} else {
			cr_assert_eq(rc, -1);
			cr_assert_str_eq(err.file, path);
			cr_assert_eq(err.offset, m.end[f - 1]);
			cr_assert_not_null(strstr(err.text, "truncated"), "%s", err.text);
		}
		mscope_reader_close(r);
	}
	free(m.p);
	tgen_free(&g);
}

Test(corrupt, writer_refuses_existing_and_symlink)
{
	struct mscope_trace_header h;
	struct mscope_trace_error err;
	char path[300], link[300], target[300];
	struct stat sb;
	int fd;

	tgen_header(&h, "w");
	snprintf(path, sizeof(path), "%s/exists.mst", tmpdir);
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	cr_assert_eq(write(fd, "keep", 4), 4);
	close(fd);
	cr_assert_null(mscope_writer_open(path, &h, NULL, &err));
	cr_assert_str_eq(err.file, path);
	cr_assert_not_null(strstr(err.text, "exists"), "%s", err.text);
	cr_assert_eq(stat(path, &sb), 0);
	cr_assert_eq(sb.st_size, 4);

	snprintf(target, sizeof(target), "%s/target.mst", tmpdir);
	snprintf(link, sizeof(link), "%s/link.mst", tmpdir);
	cr_assert_eq(symlink(target, link), 0);
	cr_assert_null(mscope_writer_open(link, &h, NULL, &err));
	cr_assert_neq(stat(target, &sb), 0, "the symlink target was created");

	/* new file: mode 0640 by default, opts.file_mode otherwise (before umask) */
	snprintf(path, sizeof(path), "%s/new.mst", tmpdir);
	{
		const mode_t old = umask(022);
		struct mscope_trace_writer *w = mscope_writer_open(path, &h, NULL, &err);
		struct mscope_writer_opts o = { .file_mode = 0600 };

		cr_assert_not_null(w);
		cr_assert_eq(mscope_writer_close(w), 0);
		cr_assert_eq(stat(path, &sb), 0);
		cr_assert_eq(sb.st_mode & 0777, 0640);
		snprintf(path, sizeof(path), "%s/new600.mst", tmpdir);
		w = mscope_writer_open(path, &h, &o, &err);
		umask(old);
		cr_assert_not_null(w);
		cr_assert_eq(mscope_writer_close(w), 0);
		cr_assert_eq(stat(path, &sb), 0);
		cr_assert_eq(sb.st_mode & 0777, 0600);
	}
}

Test(corrupt, writer_full_disk)
{
	struct mscope_trace_header h;
	struct mscope_trace_error err;
	int fd = open("/dev/full", O_WRONLY);

	cr_assert_geq(fd, 0);
	tgen_header(&h, "full");
	cr_assert_null(mscope_writer_fdopen(fd, "/dev/full", &h, NULL, &err));
	cr_assert_str_eq(err.file, "/dev/full");
	cr_assert_not_null(strstr(err.text, "write failed"), "%s", err.text);
}

Test(corrupt, writer_rejects_bad_records)
{
	struct mscope_trace_header h;
	struct mscope_trace_error err;
	struct mscope_trace_writer *w;
	char path[300];
	uint32_t wire[1] = { 1 }, flow[1] = { 0 };
	uint64_t seq[1] = { 0 };
	struct mscope_rx_burst rx = { .tsc = 100, .n = 1, .qdepth = -1, .wire_id = wire,
				      .flow = flow };
	struct mscope_tx_burst tx = { .tsc = 200, .offered = 1, .accepted = 2, .wire_id = wire,
				      .rx_seq = seq };
	struct mscope_flow_key key = { .family = 5 };
	struct mscope_trace_reader *r;
	struct mscope_record rec;

	tgen_header(&h, "bad");
	snprintf(path, sizeof(path), "%s/bad.mst", tmpdir);
	w = mscope_writer_open(path, &h, NULL, &err);
	cr_assert_not_null(w);
	cr_assert_eq(mscope_writer_flow(w, 0, &(struct mscope_flow_key){ .family = 4 }), 0);
	cr_assert_eq(mscope_writer_rx(w, &rx), 0);
	rx.tsc = 99;
	cr_assert_eq(mscope_writer_rx(w, &rx), -1);
	cr_assert_not_null(strstr(mscope_writer_error(w)->text, "before the previous"));
	rx.tsc = 100;
	rx.n = MSCOPE_MAX_BURST + 1;
	cr_assert_eq(mscope_writer_rx(w, &rx), -1);
	rx.n = 1;
	rx.qdepth = -7;
	cr_assert_eq(mscope_writer_rx(w, &rx), -1);
	rx.qdepth = 0;
	rx.flow = NULL;
	cr_assert_eq(mscope_writer_rx(w, &rx), -1);
	cr_assert_eq(mscope_writer_tx(w, &tx), -1);
	cr_assert_not_null(strstr(mscope_writer_error(w)->text, "accepted"));
	cr_assert_eq(mscope_writer_flow(w, 1, &key), -1);
	tx.accepted = 1;
	cr_assert_eq(mscope_writer_tx(w, &tx), 0);
	cr_assert_eq(mscope_writer_close(w), 0);
	/* the rejected calls left nothing behind */
	r = mscope_reader_open(path, &err);
	cr_assert_eq(mscope_reader_next(r, &rec, &err), 1);
	cr_assert_eq(rec.type, MSCOPE_REC_FLOW);
	cr_assert_eq(mscope_reader_next(r, &rec, &err), 1);
	cr_assert_eq(rec.type, MSCOPE_REC_RX);
	cr_assert_eq(mscope_reader_next(r, &rec, &err), 1);
	cr_assert_eq(rec.type, MSCOPE_REC_TX);
	cr_assert_eq(rec.u.tx.rx_seq[0], 0);
	cr_assert_eq(rec.u.tx.wire_id[0], 1);
	cr_assert_eq(mscope_reader_next(r, &rec, &err), 0);
	mscope_reader_close(r);
}

/* Frames end by themselves after 200 ms of TSC, and at frame_bytes. */
Test(corrupt, frames_end_by_time_and_size)
{
	struct mscope_trace_header h;
	struct mscope_trace_error err;
	struct mscope_trace_writer *w;
	char path[300];
	struct mfile m;
	struct mscope_loss l = { 0 };
	size_t frames = 0, off;

	tgen_header(&h, "time");
	h.tsc_hz = 1000000000; /* 200 ms = 2e8 cycles */
	snprintf(path, sizeof(path), "%s/time.mst", tmpdir);
	w = mscope_writer_open(path, &h, NULL, &err);
	for (int i = 0; i < 10; i++) {
		l.tsc = (uint64_t)i * 100000000; /* every 100 ms */
		cr_assert_eq(mscope_writer_loss(w, &l), 0);
	}
	cr_assert_eq(mscope_writer_close(w), 0);
	memset(&m, 0, sizeof(m));
	slurp(path, &m);
	off = 8 + mscope_get_le32(m.p + 4);
	while (off < m.len) {
		const size_t z = ZSTD_findFrameCompressedSize(m.p + off, m.len - off);

		cr_assert(!ZSTD_isError(z));
		off += z;
		frames++;
	}
	cr_assert_eq(frames, 5, "%zu frames", frames);
	free(m.p);
}

/*
 * A write that fails half-way (here: the file size limit, as a full disk
 * would) is cut back: the file stays readable to its last frame, and the
 * writer stays failed.
 */
Test(corrupt, writer_failure_leaves_readable_file)
{
	struct mscope_trace_header h;
	struct mscope_trace_error err;
	struct mscope_writer_opts o = { .zstd_level = 1, .frame_bytes = 4096 };
	struct mscope_trace_writer *w;
	struct mscope_trace_reader *r;
	struct mscope_record rec;
	struct rlimit rl = { 20000, 20000 };
	struct tgen g;
	char path[300];
	size_t i, nread = 0;
	uint64_t good = 0;
	int rc;

	signal(SIGXFSZ, SIG_IGN);
	cr_assert_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
	tgen_init(&g, 5, 5000);
	tgen_header(&h, "limit");
	h.tsc_hz = 0;
	snprintf(path, sizeof(path), "%s/limit.mst", tmpdir);
	w = mscope_writer_open(path, &h, &o, &err);
	cr_assert_not_null(w);
	for (i = 0; i < g.n; i++) {
		good = mscope_writer_bytes(w);
		if (tgen_write(w, &g.recs[i]) < 0)
			break;
	}
	cr_assert_lt(i, g.n, "the size limit was never hit");
	cr_assert_not_null(strstr(mscope_writer_error(w)->text, "write failed"), "%s",
			   mscope_writer_error(w)->text);
	cr_assert_eq(tgen_write(w, &g.recs[0]), -1, "a failed writer must stay failed");
	cr_assert_eq(mscope_writer_close(w), -1);
	r = mscope_reader_open(path, &err);
	cr_assert_not_null(r, "%s", err.text);
	while ((rc = mscope_reader_next(r, &rec, &err)) == 1) {
		char why[200];

		cr_assert(tgen_rec_eq(&g.recs[nread], &rec, why, sizeof(why)), "%s", why);
		nread++;
	}
	cr_assert_eq(rc, 0, "cut-back file is not clean: %s", err.text);
	cr_assert_eq(mscope_reader_offset(r), good);
	cr_assert_gt(nread, 0);
	mscope_reader_close(r);
	tgen_free(&g);
}

/*
 * Each frame decodes on its own: seeking to frame k replays the flow
 * definitions of frames 0..k-1, then gives records k.. exactly as a full read.
 */
Test(corrupt, frames_decode_alone)
{
	struct tgen g;
	struct mfile m;

	tgen_init(&g, 31, 400);
	make_file("alone.mst", &g, 13, &m);
	for (size_t k = 1; k < m.nframes; k++) {
		char path[300];
		struct mscope_trace_error err;
		struct mscope_trace_reader *r;
		struct mscope_record rec;
		const struct mscope_frame_info *fi;
		size_t i = m.nrec[k - 1], nf, nflows = 0;
		int rc, rebuilt;

		snprintf(path, sizeof(path), "%s/alone.mst", tmpdir);
		r = mscope_reader_open(path, &err);
		cr_assert_not_null(r);
		cr_assert_eq(mscope_reader_index(r, &fi, &nf, &rebuilt, &err), 0);
		cr_assert_eq(nf, m.nframes);
		cr_assert_eq(rebuilt, 0, "%s", mscope_reader_index_note(r));
		cr_assert_eq(fi[k].offset, m.end[k - 1]);
		cr_assert_eq(mscope_reader_seek(r, k, &err), 0);
		/* first the replayed definitions: those of records before frame k */
		while ((rc = mscope_reader_next(r, &rec, &err)) == 1 && nflows < i) {
			size_t j;

			if (rec.type != MSCOPE_REC_FLOW)
				break;
			for (j = 0; j < i; j++)
				if (g.recs[j].type == MSCOPE_REC_FLOW &&
				    g.recs[j].u.flow.ref == rec.u.flow.ref &&
				    !memcmp(&g.recs[j].u.flow.key, &rec.u.flow.key, sizeof(rec.u.flow.key)))
					break;
			if (j == i) /* not a replay: the frame's own first record */
				break;
			nflows++;
		}
		for (; rc == 1; rc = mscope_reader_next(r, &rec, &err)) {
			char why[200];

			cr_assert_lt(i, g.n);
			cr_assert(tgen_rec_eq(&g.recs[i], &rec, why, sizeof(why)),
				  "from frame %zu, record %zu: %s", k, i, why);
			i++;
		}
		cr_assert_eq(rc, 0, "from frame %zu: %s", k, err.text);
		cr_assert_eq(i, g.n);
		cr_assert_gt(nflows, 0);
		mscope_reader_close(r);
	}
	free(m.p);
	tgen_free(&g);
}
