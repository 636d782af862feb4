/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target for the trace reader: open the input as a trace and read
 * every record, touching every array element so ASan sees any bad pointer.
 * Built with clang -fsanitize=fuzzer (meson -Dfuzz=true, tools/fuzz-trace) and,
 * in every build, linked with regress_main.c to replay the seed corpus.
 *
 * An input starting with 'R' is a raw frame instead: it is wrapped in a valid
 * header and a checksummed zstd frame, so mutations reach the record decoder
 * rather than dying at the zstd checksum. An input starting with 'I' is a
 * seek table: it is appended to the frames of a small valid trace (made once
 * with the writer), so mutations reach the seek table checks.
 *
 * Every input that opens is read three ways: sequentially, through the index
 * (a window whose bounds come from the input, then a seek), so the seek table
 * parser, the index rebuild and the window/seek paths all see hostile bytes.
 */
#include <stddef.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "mscope_trace.h"
#include "tgen.h"
#include "trace_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t
touch_record(const struct mscope_record *rec)
{
	uint64_t x = 0;

	switch (rec->type) {
	case MSCOPE_REC_RX:
		for (uint32_t i = 0; i < rec->u.rx.n; i++)
			x += rec->u.rx.wire_id[i] + rec->u.rx.flow[i] +
			     (rec->u.rx.hw_ts ? rec->u.rx.hw_ts[i] : 0);
		break;
	case MSCOPE_REC_TX:
		for (uint32_t i = 0; i < rec->u.tx.accepted; i++)
			x += rec->u.tx.wire_id[i] + rec->u.tx.rx_seq[i] +
			     (rec->u.tx.flow ? rec->u.tx.flow[i] : 0);
		break;
	case MSCOPE_REC_DROP:
		for (uint32_t i = 0; i < rec->u.drop.n; i++)
			x += rec->u.drop.wire_id[i] +
			     (rec->u.drop.rx_seq ? rec->u.drop.rx_seq[i] : 0) +
			     (rec->u.drop.flow ? rec->u.drop.flow[i] : 0);
		break;
	case MSCOPE_REC_FLOW: {
		char buf[128];

		mscope_flow_format(&rec->u.flow.key, buf, sizeof(buf));
		x += (uint8_t)buf[0];
		break;
	}
	case MSCOPE_REC_DELETED:
		x += rec->u.deleted.segment + rec->u.deleted.packets;
		break;
	default:
		break;
	}
	return x;
}

static void read_all(const uint8_t *data, size_t size);

/* A minimal valid file: header with empty strings, then one frame of raw. */
static void
raw_frame(const uint8_t *raw, size_t len)
{
	const size_t plen = MSCOPE_HDR_FIXED + 5 + 4;
	const size_t bound = ZSTD_compressBound(len);
	uint8_t *buf = malloc(8 + plen + bound);
	const uint32_t version = MSCOPE_TRACE_VERSION;
	ZSTD_CCtx *c = ZSTD_createCCtx();
	size_t z;

	if (buf == NULL || c == NULL)
		abort();
	memset(buf, 0, 8 + plen);
	mscope_put_le32(buf, MSCOPE_HDR_FRAME_MAGIC);
	mscope_put_le32(buf + 4, (uint32_t)plen);
	memcpy(buf + 8, MSCOPE_HDR_MAGIC, 8);
	memcpy(buf + 16, &version, 4);
	mscope_put_le32(buf + 8 + plen - 4, mscope_hdr_check(buf + 8, plen - 4));
	ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1);
	ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, 1);
	z = ZSTD_compress2(c, buf + 8 + plen, bound, raw, len);
	if (ZSTD_isError(z))
		abort();
	ZSTD_freeCCtx(c);
	read_all(buf, 8 + plen + z);
	free(buf);
}

/* The frames of a small valid trace, without its seek table (made once). */
static const uint8_t *
base_trace(size_t *len)
{
	static uint8_t *base;
	static size_t base_len;
	struct mscope_trace_header h;
	struct mscope_trace_writer *w;
	int fd;

	if (base) {
		*len = base_len;
		return base;
	}
	fd = memfd_create("fuzz-base", 0);
	if (fd < 0)
		abort();
	tgen_header(&h, "base");
	w = mscope_writer_fdopen(dup(fd), "base", &h, &tgen_small_frames, NULL);
	if (w == NULL || tgen_small_stream(w) < 0) /* closes w */
		abort();
	base_len = (size_t)lseek(fd, 0, SEEK_END);
	base = malloc(base_len);
	if (base == NULL || pread(fd, base, base_len, 0) != (ssize_t)base_len)
		abort();
	close(fd);
	/* drop the writer's seek table: the input supplies one */
	base_len -= 8 + (size_t)mscope_get_le32(base + base_len - 20) * MSCOPE_IDX_ENTRY +
		    mscope_get_le32(base + base_len - 12) + MSCOPE_IDX_FOOTER;
	*len = base_len;
	return base;
}

static void
seek_table(const uint8_t *tab, size_t len)
{
	size_t blen;
	const uint8_t *base = base_trace(&blen);
	uint8_t *buf = malloc(blen + len + 1);

	if (buf == NULL)
		abort();
	memcpy(buf, base, blen);
	if (len)
		memcpy(buf + blen, tab, len);
	read_all(buf, blen + len);
	free(buf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 0 && data[0] == 'R')
		raw_frame(data + 1, size - 1);
	else if (size > 0 && data[0] == 'I')
		seek_table(data + 1, size - 1);
	else
		read_all(data, size);
	return 0;
}

/* Read through the index: a window from the input's bytes, then a seek. */
static uint64_t
read_indexed(const uint8_t *data, size_t size)
{
	struct mscope_trace_error err;
	struct mscope_trace_reader *r = mscope_reader_open_mem(data, size, "fuzz", &err);
	const struct mscope_frame_info *f;
	struct mscope_record rec;
	uint64_t x = 0, t0 = 0, t1 = UINT64_MAX;
	size_t n;
	int rebuilt;

	if (r == NULL)
		return 0;
	if (mscope_reader_index(r, &f, &n, &rebuilt, &err) == 0 && n > 0) {
		/* every listed frame must lie inside the input */
		for (size_t i = 0; i < n; i++)
			if (f[i].offset > size || f[i].csize > size - f[i].offset)
				abort();
		t0 = f[size % n].tsc_first;
		t1 = f[(size / 7) % n].tsc_last;
		if (mscope_reader_window(r, t0 < t1 ? t0 : t1, t0 < t1 ? t1 : t0, &err) == 0)
			while (mscope_reader_next(r, &rec, &err) == 1)
				x += touch_record(&rec);
		if (mscope_reader_seek(r, (size / 3) % (n + 1), &err) == 0)
			while (mscope_reader_next(r, &rec, &err) == 1)
				x += touch_record(&rec);
	}
	(void)mscope_reader_index_note(r);
	mscope_reader_close(r);
	return x;
}

static void
read_all(const uint8_t *data, size_t size)
{
	struct mscope_trace_error err;
	struct mscope_trace_reader *r = mscope_reader_open_mem(data, size, "fuzz", &err);
	struct mscope_record rec;
	volatile uint64_t sink = 0;
	struct mscope_flow_key key;

	/* the packet parser takes the same bytes as a frame */
	mscope_flow_parse(data, (uint32_t)(size > UINT32_MAX ? UINT32_MAX : size), &key);
	sink += mscope_wire_id(data, (uint32_t)(size > UINT32_MAX ? UINT32_MAX : size),
			       (uint32_t)size);
	if (r == NULL)
		return;
	while (mscope_reader_next(r, &rec, &err) == 1)
		sink += touch_record(&rec);
	(void)mscope_reader_offset(r);
	mscope_reader_close(r);
	sink += read_indexed(data, size);
	(void)sink;
}
