/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Trace reader. The file is untrusted: it is read in fixed chunks, one zstd
 * frame at a time is decompressed (streaming, checksum verified by zstd) into
 * a buffer capped at MSCOPE_FRAME_RAW_MAX, then its records are decoded with
 * bounds checks on every byte. Errors are sticky: once next() failed it keeps
 * failing with the same message.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zstd.h>

#include "mscope_trace.h"
#include "trace_proto.h"
#include "trace_reader_int.h"

#define IN_CHUNK (256u << 10)

static void
set_err(struct mscope_trace_error *err, const char *file, uint64_t off,
	const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return;
	snprintf(err->file, sizeof(err->file), "%s", file ? file : "");
	err->offset = off;
	va_start(ap, fmt);
	vsnprintf(err->text, sizeof(err->text), fmt, ap);
	va_end(ap);
}

int
mscope_rd_fail(struct mscope_trace_reader *r, struct mscope_trace_error *err, uint64_t off,
	       const char *fmt, ...)
{
	va_list ap;

	r->failed = true;
	snprintf(r->err.file, sizeof(r->err.file), "%s", r->name);
	r->err.offset = off;
	va_start(ap, fmt);
	vsnprintf(r->err.text, sizeof(r->err.text), fmt, ap);
	va_end(ap);
	if (err)
		*err = r->err;
	return -1;
}

#define fail mscope_rd_fail

/* Make at least `need` unread bytes available unless the file ends first. */
static int
fill(struct mscope_trace_reader *r, size_t need)
{
	if (r->fd < 0 || r->in_len - r->in_pos >= need || r->eof)
		return 0;
	/* keep the unread tail, read behind it */
	memmove(r->inbuf, r->in + r->in_pos, r->in_len - r->in_pos);
	r->in_off += r->in_pos;
	r->in_len -= r->in_pos;
	r->in_pos = 0;
	while (r->in_len < need && !r->eof) {
		ssize_t n = read(r->fd, r->inbuf + r->in_len, IN_CHUNK - r->in_len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			r->eof = true;
		r->in_len += (size_t)n;
	}
	return 0;
}

static uint64_t
avail(const struct mscope_trace_reader *r)
{
	return r->in_len - r->in_pos;
}

static const char *
file_end_text(struct mscope_trace_reader *r)
{
	static __thread char buf[64];

	snprintf(buf, sizeof(buf), "file ends at byte %llu",
		 (unsigned long long)(r->in_off + r->in_len));
	return buf;
}

static void
get_str(char *dst, size_t size, const uint8_t *p, size_t n)
{
	memcpy(dst, p, n);
	dst[n] = '\0';
	(void)size;
}

static int
read_header(struct mscope_trace_reader *r, struct mscope_trace_error *err)
{
	const uint8_t *p, *end;
	uint32_t size, version, pid;
	struct mscope_trace_header *h = &r->hdr;
	char *const strs[5] = { h->nf_name, h->host, h->run_id, h->writer,
				h->writer_version };
	const size_t sizes[5] = { sizeof(h->nf_name), sizeof(h->host), sizeof(h->run_id),
				  sizeof(h->writer), sizeof(h->writer_version) };

	if (fill(r, 8) < 0)
		return fail(r, err, 0, "read error: %s", strerror(errno));
	if (avail(r) == 0)
		return fail(r, err, 0, "empty file: not an mscope trace");
	p = r->in + r->in_pos;
	if (avail(r) < 8) {
		uint8_t m[4];

		mscope_put_le32(m, MSCOPE_HDR_FRAME_MAGIC);
		if (memcmp(p, m, avail(r) < 4 ? avail(r) : 4) != 0)
			return fail(r, err, 0, "bad magic: not an mscope trace");
		return fail(r, err, 0, "truncated header (%llu bytes)",
			    (unsigned long long)avail(r));
	}
	if (mscope_get_le32(p) != MSCOPE_HDR_FRAME_MAGIC)
		return fail(r, err, 0, "bad magic: not an mscope trace");
	size = mscope_get_le32(p + 4);
	if (size < MSCOPE_HDR_MIN || size > MSCOPE_HDR_MAX)
		return fail(r, err, 4, "bad header size %u", size);
	if (fill(r, 8 + size) < 0)
		return fail(r, err, 0, "read error: %s", strerror(errno));
	if (avail(r) < 8 + size)
		return fail(r, err, avail(r), "truncated header (%s)", file_end_text(r));
	p = r->in + r->in_pos + 8;
	end = p + size - 4;
	if (memcmp(p, MSCOPE_HDR_MAGIC, 8) != 0)
		return fail(r, err, 8, "bad magic: not an mscope trace");
	memcpy(&version, p + 8, 4);
	if (version != MSCOPE_TRACE_VERSION)
		return fail(r, err, 16, "unsupported format version %u (this reader reads version %u)",
			    version, MSCOPE_TRACE_VERSION);
	if (mscope_get_le32(end) != mscope_hdr_check(p, size - 4))
		return fail(r, err, 8 + size - 4, "corrupt header (check value mismatch)");
	h->version = version;
	h->role = p[12];
	memcpy(&h->port, p + 14, 2);
	memcpy(&h->queue, p + 16, 2);
	memcpy(&pid, p + 18, 4);
	h->pid = pid;
	memcpy(&h->tsc_hz, p + 22, 8);
	memcpy(&h->anchor_tsc, p + 30, 8);
	memcpy(&h->anchor_realtime_ns, p + 38, 8);
	p += MSCOPE_HDR_FIXED;
	for (int i = 0; i < 5; i++) {
		size_t n;

		if (p >= end)
			return fail(r, err, 8 + (uint64_t)(p - (r->in + r->in_pos + 8)),
				    "truncated header strings");
		n = *p++;
		if (n >= sizes[i] || n > (size_t)(end - p))
			return fail(r, err, 8 + (uint64_t)(p - 1 - (r->in + r->in_pos + 8)),
				    "header string %d too long (%zu bytes)", i, n);
		get_str(strs[i], sizes[i], p, n);
		p += n;
	}
	/* appended fields: absent in files of older writers (read as 0) */
	h->segment = 0;
	h->rx_seq_start = 0;
	if (end - p >= 4) {
		h->segment = mscope_get_le32(p);
		p += 4;
	}
	if (end - p >= 8)
		memcpy(&h->rx_seq_start, p, 8);
	r->in_pos += 8 + size;
	r->next_off = r->hdr_end = r->in_off + r->in_pos;
	r->data_end = r->file_size;
	return 0;
}

static struct mscope_trace_reader *
reader_new(const char *name, struct mscope_trace_error *err)
{
	struct mscope_trace_reader *r = calloc(1, sizeof(*r));

	if (r == NULL) {
		set_err(err, name, 0, "out of memory");
		return NULL;
	}
	r->fd = -1;
	r->max_ratio = MSCOPE_MAX_RATIO_DEFAULT;
	snprintf(r->name, sizeof(r->name), "%s", name ? name : "");
	r->dctx = ZSTD_createDCtx();
	if (r->dctx == NULL ||
	    ZSTD_isError(ZSTD_DCtx_setParameter(r->dctx, ZSTD_d_windowLogMax, 24))) {
		set_err(err, name, 0, "cannot set up zstd");
		ZSTD_freeDCtx(r->dctx);
		free(r);
		return NULL;
	}
	return r;
}

struct mscope_trace_reader *
mscope_reader_open_mem(const void *buf, size_t len, const char *name,
		       struct mscope_trace_error *err)
{
	struct mscope_trace_reader *r;

	if (name == NULL)
		name = "(memory)";
	if (buf == NULL && len > 0) {
		set_err(err, name, 0, "invalid argument");
		return NULL;
	}
	r = reader_new(name, err);
	if (r == NULL)
		return NULL;
	r->in = r->mem = buf ? buf : (const uint8_t *)"";
	r->in_len = len;
	r->file_size = len;
	r->eof = true;
	if (read_header(r, err) < 0) {
		mscope_reader_close(r);
		return NULL;
	}
	return r;
}

struct mscope_trace_reader *
mscope_reader_open(const char *path, struct mscope_trace_error *err)
{
	struct mscope_trace_reader *r;

	if (path == NULL) {
		set_err(err, "", 0, "no path");
		return NULL;
	}
	r = reader_new(path, err);
	if (r == NULL)
		return NULL;
	r->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (r->fd < 0) {
		set_err(err, path, 0, "cannot open: %s", strerror(errno));
		mscope_reader_close(r);
		return NULL;
	}
	r->inbuf = malloc(IN_CHUNK);
	if (r->inbuf == NULL) {
		set_err(err, path, 0, "out of memory");
		mscope_reader_close(r);
		return NULL;
	}
	r->in = r->inbuf;
	{
		struct stat sb;

		r->path = strdup(path);
		if (r->path == NULL || fstat(r->fd, &sb) < 0) {
			set_err(err, path, 0, "cannot open: %s", strerror(errno));
			mscope_reader_close(r);
			return NULL;
		}
		r->file_size = (uint64_t)sb.st_size;
	}
	if (read_header(r, err) < 0) {
		mscope_reader_close(r);
		return NULL;
	}
	return r;
}

const struct mscope_trace_header *
mscope_reader_header(const struct mscope_trace_reader *r)
{
	return r ? &r->hdr : NULL;
}

uint64_t
mscope_reader_offset(const struct mscope_trace_reader *r)
{
	return r ? r->next_off : 0;
}

void
mscope_reader_close(struct mscope_trace_reader *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->nseg; i++)
		mscope_reader_close(r->seg[i]);
	free(r->seg);
	free(r->seg_base);
	if (r->fd >= 0)
		close(r->fd);
	ZSTD_freeDCtx(r->dctx);
	free(r->inbuf);
	free(r->raw);
	free(r->flows.slot);
	mscope_rd_free_index(r);
	free(r->path);
	free(r);
}

void
mscope_reader_set_max_ratio(struct mscope_trace_reader *r, unsigned ratio)
{
	if (r == NULL)
		return;
	r->max_ratio = ratio;
	for (size_t i = 0; i < r->nseg; i++)
		r->seg[i]->max_ratio = ratio;
}

struct mscope_trace_reader *
mscope_rd_reopen(const struct mscope_trace_reader *r, struct mscope_trace_error *err)
{
	struct mscope_trace_reader *n = r->path ? mscope_reader_open(r->path, err) :
		mscope_reader_open_mem(r->mem, (size_t)r->file_size, r->name, err);

	if (n)
		n->max_ratio = r->max_ratio;
	return n;
}

int
mscope_rd_reposition(struct mscope_trace_reader *r, uint64_t off)
{
	if (off > r->file_size)
		off = r->file_size;
	r->next_off = off;
	r->in_frame = false;
	if (r->fd < 0) {
		r->in_off = 0;
		r->in_pos = (size_t)off;
		return 0;
	}
	if (lseek(r->fd, (off_t)off, SEEK_SET) < 0)
		return -1;
	r->in_off = off;
	r->in_len = r->in_pos = 0;
	r->eof = false;
	return 0;
}

/* ------------------------------------------------------------ flow refs */

static inline uint64_t
flow_hash(uint32_t ref)
{
	return (uint64_t)ref * 0x9E3779B97F4A7C15ULL;
}

static bool
flow_defined(const struct flow_set *fs, uint32_t ref)
{
	if (fs->cap == 0)
		return false;
	for (size_t i = (size_t)(flow_hash(ref) >> 32) & (fs->cap - 1);; i = (i + 1) & (fs->cap - 1)) {
		if (fs->slot[i] == 0)
			return false;
		if (fs->slot[i] == (uint64_t)ref + 1)
			return true;
	}
}

int
mscope_rd_flow_add(struct mscope_trace_reader *r, uint32_t ref)
{
	struct flow_set *fs = &r->flows;

	if (flow_defined(fs, ref))
		return 0;
	if ((fs->n + 1) * 2 > fs->cap) { /* grow: load factor <= 1/2 */
		struct flow_set b = { .cap = fs->cap ? fs->cap * 2 : 1024 };

		b.slot = calloc(b.cap, sizeof(*b.slot));
		if (b.slot == NULL)
			return -1;
		for (size_t i = 0; i < fs->cap; i++)
			if (fs->slot[i]) {
				size_t j = (size_t)(flow_hash((uint32_t)(fs->slot[i] - 1)) >> 32) &
					   (b.cap - 1);

				while (b.slot[j])
					j = (j + 1) & (b.cap - 1);
				b.slot[j] = fs->slot[i];
			}
		b.n = fs->n;
		free(fs->slot);
		*fs = b;
	}
	for (size_t i = (size_t)(flow_hash(ref) >> 32) & (fs->cap - 1);; i = (i + 1) & (fs->cap - 1))
		if (fs->slot[i] == 0) {
			fs->slot[i] = (uint64_t)ref + 1;
			fs->n++;
			return 0;
		}
}

void
mscope_rd_reset_state(struct mscope_trace_reader *r)
{
	r->flows.n = 0;
	if (r->flows.slot)
		memset(r->flows.slot, 0, r->flows.cap * sizeof(*r->flows.slot));
	r->have_prev = false;
	r->in_frame = false;
	r->failed = false;
	r->prev_tsc = 0;
}

/* Decompress the next frame. 1: a frame, 0: clean end of file, -1: error. */
static int
load_frame(struct mscope_trace_reader *r, struct mscope_trace_error *err)
{
	const uint64_t off = r->next_off;
	ZSTD_outBuffer out;
	const uint8_t *p;
	uint32_t magic;
	size_t ret;

	if (fill(r, 6) < 0)
		return fail(r, err, off, "read error: %s", strerror(errno));
	if (avail(r) == 0)
		return 0;
	if (avail(r) < 6)
		return fail(r, err, off, "truncated frame at offset %llu (%s)",
			    (unsigned long long)off, file_end_text(r));
	p = r->in + r->in_pos;
	magic = mscope_get_le32(p);
	if (magic == MSCOPE_IDX_FRAME_MAGIC && avail(r) >= 8) {
		/* the seek table ends the file: the data ends here */
		const uint64_t end = off + 8 + mscope_get_le32(p + 4);
		struct stat sb;

		if (end != r->file_size && r->fd >= 0 && fstat(r->fd, &sb) == 0)
			r->file_size = (uint64_t)sb.st_size; /* the file grew since open */
		if (end == r->file_size) {
			r->data_end = off;
			r->next_off = end; /* nothing left unread */
			return 0;
		}
		if (end > r->file_size)
			return fail(r, err, off, "truncated seek table at offset %llu (%s)",
				    (unsigned long long)off, file_end_text(r));
	}
	if ((magic & 0xFFFFFFF0u) == 0x184D2A50u)
		return fail(r, err, off, "unexpected skippable frame at offset %llu",
			    (unsigned long long)off);
	if (magic != MSCOPE_ZSTD_MAGIC)
		return fail(r, err, off, "bad frame magic 0x%08x at offset %llu",
			    magic, (unsigned long long)off);
	if (!(p[4] & 0x04))
		return fail(r, err, off, "frame at offset %llu has no content checksum",
			    (unsigned long long)off);
	ZSTD_DCtx_reset(r->dctx, ZSTD_reset_session_only);
	{
		/* size the buffer from the declared content size (checked later by zstd) */
		unsigned long long cs;
		size_t want = 64u << 10;

		if (fill(r, 18 /* largest zstd frame header */) < 0)
			return fail(r, err, off, "read error: %s", strerror(errno));
		cs = ZSTD_getFrameContentSize(r->in + r->in_pos, avail(r));
		if (cs <= MSCOPE_FRAME_RAW_MAX && cs > want)
			want = (size_t)cs;
		if (want > r->raw_cap) {
			uint8_t *nb = realloc(r->raw, want);

			if (nb == NULL)
				return fail(r, err, off, "out of memory");
			r->raw = nb;
			r->raw_cap = want;
		}
	}
	out = (ZSTD_outBuffer){ r->raw, r->raw_cap, 0 };
	for (;;) {
		ZSTD_inBuffer in;

		if (avail(r) == 0) {
			if (fill(r, 1) < 0)
				return fail(r, err, off, "read error: %s", strerror(errno));
			if (avail(r) == 0)
				return fail(r, err, off, "truncated frame at offset %llu (%s)",
					    (unsigned long long)off, file_end_text(r));
		}
		in = (ZSTD_inBuffer){ r->in + r->in_pos, avail(r), 0 };
		ret = ZSTD_decompressStream(r->dctx, &out, &in);
		r->in_pos += in.pos;
		if (ZSTD_isError(ret))
			return fail(r, err, off, "corrupt frame at offset %llu: %s",
				    (unsigned long long)off, ZSTD_getErrorName(ret));
		if (ret == 0)
			break;
		if (out.pos == out.size) {
			size_t cap;
			uint8_t *nb;

			if (r->raw_cap >= MSCOPE_FRAME_RAW_MAX)
				return fail(r, err, off, "frame at offset %llu exceeds %u bytes",
					    (unsigned long long)off, MSCOPE_FRAME_RAW_MAX);
			cap = r->raw_cap * 2;
			if (cap > MSCOPE_FRAME_RAW_MAX)
				cap = MSCOPE_FRAME_RAW_MAX;
			nb = realloc(r->raw, cap);
			if (nb == NULL)
				return fail(r, err, off, "out of memory");
			r->raw = nb;
			r->raw_cap = cap;
			out.dst = nb;
			out.size = cap;
		}
	}
	if (out.pos == 0)
		return fail(r, err, off, "empty frame at offset %llu", (unsigned long long)off);
	r->frame_off = off;
	r->next_off = r->in_off + r->in_pos;
	r->frame_csize = r->next_off - off;
	if (r->max_ratio && out.pos > (uint64_t)r->max_ratio * r->frame_csize)
		return fail(r, err, off, "frame at offset %llu decodes %zu bytes from %llu: decode "
			    "ratio above %u, refused as hostile", (unsigned long long)off, out.pos,
			    (unsigned long long)r->frame_csize, r->max_ratio);
	if (r->frame_csize > UINT32_MAX)
		return fail(r, err, off, "frame at offset %llu is larger than 4 GiB",
			    (unsigned long long)off);
	r->c = r->raw;
	r->c_end = r->raw + out.pos;
	return 1;
}

#define CORRUPT(what) \
	fail(r, err, r->frame_off, "corrupt frame at offset %llu: %s (raw byte %llu)", \
	     (unsigned long long)r->frame_off, what, \
	     (unsigned long long)(r->c - r->raw))

#define GETV(v, what) \
	do { \
		if (mscope_get_varint(&r->c, r->c_end, &(v)) < 0) \
			return CORRUPT(what); \
	} while (0)

static int
start_frame(struct mscope_trace_reader *r, struct mscope_trace_error *err)
{
	uint64_t ctl_len, wire_len, tsc, rx, txe, dre;
	size_t rest;

	if (r->c >= r->c_end || *r->c != MSCOPE_P_FRAME)
		return CORRUPT("no frame preamble");
	r->c++;
	GETV(ctl_len, "preamble");
	GETV(wire_len, "preamble");
	GETV(tsc, "preamble");
	GETV(rx, "preamble");
	GETV(txe, "preamble");
	GETV(dre, "preamble");
	/* A frame continues exactly where the previous one ended (the writer
	 * never skips): time or sequence going back or jumping is corruption. */
	if (r->have_prev && tsc != r->prev_tsc)
		return fail(r, err, r->frame_off, "corrupt frame at offset %llu: time %s between "
			    "frames (previous frame ended at tsc %llu, this one starts at %llu)",
			    (unsigned long long)r->frame_off, tsc < r->prev_tsc ? "goes back" :
			    "jumps", (unsigned long long)r->prev_tsc, (unsigned long long)tsc);
	if (r->have_prev && (rx != r->next_rx || txe != r->tx_expect || dre != r->drop_expect))
		return fail(r, err, r->frame_off, "corrupt frame at offset %llu: %s sequence %s "
			    "between frames (previous frame ended at %llu, this one starts at %llu)",
			    (unsigned long long)r->frame_off,
			    rx != r->next_rx ? "rx" : txe != r->tx_expect ? "tx link" : "drop link",
			    (rx != r->next_rx ? rx < r->next_rx : txe != r->tx_expect ?
			     txe < r->tx_expect : dre < r->drop_expect) ? "goes back" :
			    "does not continue",
			    (unsigned long long)(rx != r->next_rx ? r->next_rx : txe != r->tx_expect ?
						 r->tx_expect : r->drop_expect),
			    (unsigned long long)(rx != r->next_rx ? rx : txe != r->tx_expect ? txe : dre));
	r->prev_tsc = tsc;
	r->next_rx = rx;
	r->tx_expect = txe;
	r->drop_expect = dre;
	memset(&r->cur, 0, sizeof(r->cur));
	r->cur.offset = r->frame_off;
	r->cur.csize = (uint32_t)r->frame_csize;
	r->cur.segment = r->hdr.segment;
	r->cur.rsize = (uint32_t)(r->c_end - r->raw);
	r->cur.rx_seq_first = rx;
	r->cur.tsc_first = r->cur.tsc_last = tsc;
	r->cur_have_tsc = false;
	rest = (size_t)(r->c_end - r->c);
	if (ctl_len == 0 || ctl_len > rest || wire_len > rest - ctl_len || wire_len % 4)
		return CORRUPT("section lengths do not fit the frame");
	r->wp = r->c + ctl_len;
	r->w_end = r->wp + wire_len;
	r->fp = r->w_end;
	r->f_end = r->c_end;
	r->c_end = r->wp;
	r->f_rx = r->next_rx;
	r->prev_flow = 0;
	r->flow_ok = false;
	r->have_pq = false;
	r->in_frame = true;
	return 0;
}

/* n flow codes into dst. -1: bad code; -2: a ref no FLOW record defined. */
static inline int
get_flows(struct mscope_trace_reader *r, uint32_t *dst, uint32_t n)
{
	const uint8_t *p = r->fp, *const end = r->f_end;
	uint32_t prev = r->prev_flow;

	for (uint32_t i = 0; i < n; i++) {
		uint64_t v;

		if (p < end && *p < 0x80) {
			v = *p++;
		} else if (mscope_get_varint(&p, end, &v) < 0) {
			return -1;
		}
		if (v != 0) {
			if (v > (uint64_t)UINT32_MAX + 1)
				return -1;
			prev = (uint32_t)(v - 1);
			if (!flow_defined(&r->flows, prev)) {
				r->prev_flow = prev;
				return -2;
			}
		} else if (!r->flow_ok) {
			/* the frame's first code may reuse ref 0 */
			if (!flow_defined(&r->flows, prev)) {
				r->prev_flow = prev;
				return -2;
			}
		}
		r->flow_ok = true;
		dst[i] = prev;
	}
	r->fp = p;
	r->prev_flow = prev;
	return 0;
}

static inline bool
in_ring(const struct mscope_trace_reader *r, uint64_t s)
{
	return s >= r->f_rx && s < r->next_rx && r->next_rx - s <= MSCOPE_RX_RING;
}

static inline int
get_wire(struct mscope_trace_reader *r, uint32_t *v)
{
	if (r->w_end - r->wp < 4)
		return -1;
	*v = mscope_get_le32(r->wp);
	r->wp += 4;
	return 0;
}

/* n link codes into a_seq / a_wire. */
static int
get_links(struct mscope_trace_reader *r, struct mscope_trace_error *err,
	  uint64_t *expect, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		uint64_t code;

		GETV(code, "link code");
		switch (code & 3) {
		case MSCOPE_LINK_NONE:
			if (code != MSCOPE_LINK_NONE)
				return CORRUPT("bad unlinked packet code");
			r->a_seq[i] = MSCOPE_NO_LINK;
			break;
		case MSCOPE_LINK_ABS: {
			uint64_t s;

			if (code != MSCOPE_LINK_ABS)
				return CORRUPT("bad link code");
			GETV(s, "link seq");
			if (s == MSCOPE_NO_LINK)
				return CORRUPT("link to rx seq 2^64-1");
			r->a_seq[i] = s;
			*expect = s + 1;
			break;
		}
		default: {
			const uint64_t s = *expect + (uint64_t)mscope_unzz(code >> 2);

			if (s == MSCOPE_NO_LINK)
				return CORRUPT("link to rx seq 2^64-1");
			r->a_seq[i] = s;
			*expect = s + 1;
			if ((code & 3) == MSCOPE_LINK_RING) {
				if (!in_ring(r, s))
					return CORRUPT("reference to an rx packet outside the frame");
				r->a_wire[i] = r->ring[s % MSCOPE_RX_RING];
				continue;
			}
			break;
		}
		}
		if (get_wire(r, &r->a_wire[i]) < 0)
			return CORRUPT("wire section too short");
	}
	return 0;
}

static int
get_tsc(struct mscope_trace_reader *r, struct mscope_trace_error *err, uint64_t *tsc)
{
	uint64_t d;

	GETV(d, "tsc");
	if (d > UINT64_MAX - r->prev_tsc)
		return CORRUPT("tsc overflows");
	r->prev_tsc += d;
	*tsc = r->prev_tsc;
	return 0;
}

static int
get_count(struct mscope_trace_reader *r, struct mscope_trace_error *err, uint32_t *n)
{
	uint64_t v;

	GETV(v, "count");
	if (v > MSCOPE_MAX_BURST)
		return CORRUPT("burst count exceeds MSCOPE_MAX_BURST");
	*n = (uint32_t)v;
	return 0;
}

/* Error for get_flows() result rc. */
static int
flow_error(struct mscope_trace_reader *r, struct mscope_trace_error *err, int rc)
{
	if (rc == -2)
		return fail(r, err, r->frame_off, "corrupt frame at offset %llu: flow ref %u used "
			    "but never defined by a flow record", (unsigned long long)r->frame_off,
			    r->prev_flow);
	return CORRUPT("flow section too short or bad flow code");
}

static int
dec_rx(struct mscope_trace_reader *r, struct mscope_trace_error *err, unsigned flags,
       struct mscope_rx_burst *rx)
{
	int frc;
	uint32_t n;

	if (flags & ~(MSCOPE_RXF_HWTS | MSCOPE_RXF_QDEPTH))
		return CORRUPT("unknown rx flags");
	if (get_tsc(r, err, &rx->tsc) < 0 || get_count(r, err, &n) < 0)
		return -1;
	rx->n = n;
	rx->first_seq = r->next_rx;
	rx->qdepth = MSCOPE_QDEPTH_UNKNOWN;
	if (flags & MSCOPE_RXF_QDEPTH) {
		uint64_t q;

		GETV(q, "qdepth");
		if (q > INT32_MAX)
			return CORRUPT("qdepth out of range");
		rx->qdepth = (int32_t)q;
	}
	rx->hw_ts = NULL;
	if (flags & MSCOPE_RXF_HWTS) {
		uint64_t prev = rx->tsc;

		for (uint32_t i = 0; i < n; i++) {
			uint64_t d;

			GETV(d, "hw_ts");
			prev += (uint64_t)mscope_unzz(d);
			r->a_ts[i] = prev;
		}
		rx->hw_ts = r->a_ts;
	}
	if ((size_t)(r->w_end - r->wp) < (size_t)n * 4)
		return CORRUPT("wire section too short");
	if (r->next_rx > UINT64_MAX - 1 - n)
		return CORRUPT("rx sequence overflows");
	memcpy(r->a_wire, r->wp, (size_t)n * 4);
	r->wp += (size_t)n * 4;
	{
		const uint64_t s0 = r->next_rx;
		uint32_t i = 0;
		/* split the ring copy at the wrap point */
		while (i < n) {
			const uint32_t at = (uint32_t)((s0 + i) % MSCOPE_RX_RING);
			uint32_t k = MSCOPE_RX_RING - at;

			if (k > n - i)
				k = n - i;
			memcpy(&r->ring[at], &r->a_wire[i], (size_t)k * 4);
			i += k;
		}
	}
	r->next_rx += n;
	if ((frc = get_flows(r, r->a_flow, n)) < 0)
		return flow_error(r, err, frc);
	rx->wire_id = r->a_wire;
	rx->flow = r->a_flow;
	return 0;
}

static int
dec_tx(struct mscope_trace_reader *r, struct mscope_trace_error *err, unsigned flags,
       struct mscope_tx_burst *tx)
{
	int frc;
	uint32_t n;
	uint64_t refused;

	if (flags & ~(MSCOPE_TXF_MIRROR | MSCOPE_TXF_FLOWS | MSCOPE_TXF_SAMEPQ))
		return CORRUPT("unknown tx flags");
	if (get_tsc(r, err, &tx->tsc) < 0)
		return -1;
	if (flags & MSCOPE_TXF_SAMEPQ) {
		if (!r->have_pq)
			return CORRUPT("tx refers to a previous port/queue that does not exist");
	} else {
		uint64_t port, queue;

		GETV(port, "tx port");
		GETV(queue, "tx queue");
		if (port > UINT16_MAX || queue > UINT16_MAX)
			return CORRUPT("tx port/queue out of range");
		r->tx_port = (uint16_t)port;
		r->tx_queue = (uint16_t)queue;
		r->have_pq = true;
	}
	tx->port = r->tx_port;
	tx->queue = r->tx_queue;
	if (get_count(r, err, &n) < 0)
		return -1;
	GETV(refused, "tx refused");
	if (refused > UINT32_MAX - n)
		return CORRUPT("tx offered out of range");
	tx->accepted = n;
	tx->offered = n + (uint32_t)refused;
	if (flags & MSCOPE_TXF_MIRROR) {
		const uint64_t s0 = r->tx_expect;

		if (n > 0 && (!in_ring(r, s0) || !in_ring(r, s0 + n - 1)))
			return CORRUPT("mirrored tx outside the frame's rx packets");
		for (uint32_t i = 0; i < n; i++) {
			r->a_seq[i] = s0 + i;
			r->a_wire[i] = r->ring[(s0 + i) % MSCOPE_RX_RING];
		}
		r->tx_expect = s0 + n;
	} else if (get_links(r, err, &r->tx_expect, n) < 0) {
		return -1;
	}
	tx->wire_id = r->a_wire;
	tx->rx_seq = r->a_seq;
	tx->flow = NULL;
	if (flags & MSCOPE_TXF_FLOWS) {
		if ((frc = get_flows(r, r->a_flow, n)) < 0)
			return flow_error(r, err, frc);
		tx->flow = r->a_flow;
	}
	return 0;
}

static int
dec_drop(struct mscope_trace_reader *r, struct mscope_trace_error *err, unsigned flags,
	 struct mscope_drop *d)
{
	int frc;
	uint32_t n;

	if (flags & ~(MSCOPE_DRF_FLOWS | MSCOPE_DRF_SEQS))
		return CORRUPT("unknown drop flags");
	if (get_tsc(r, err, &d->tsc) < 0)
		return -1;
	if (r->c >= r->c_end)
		return CORRUPT("record truncated");
	d->reason = *r->c++;
	if (get_count(r, err, &n) < 0)
		return -1;
	d->n = n;
	d->rx_seq = NULL;
	if (flags & MSCOPE_DRF_SEQS) {
		if (get_links(r, err, &r->drop_expect, n) < 0)
			return -1;
		d->rx_seq = r->a_seq;
	} else {
		if ((size_t)(r->w_end - r->wp) < (size_t)n * 4)
			return CORRUPT("wire section too short");
		memcpy(r->a_wire, r->wp, (size_t)n * 4);
		r->wp += (size_t)n * 4;
	}
	d->wire_id = r->a_wire;
	d->flow = NULL;
	if (flags & MSCOPE_DRF_FLOWS) {
		if ((frc = get_flows(r, r->a_flow, n)) < 0)
			return flow_error(r, err, frc);
		d->flow = r->a_flow;
	}
	return 0;
}

static int
dec_flow(struct mscope_trace_reader *r, struct mscope_trace_error *err, unsigned flags,
	 struct mscope_flow_def *f)
{
	uint64_t ref, sport, dport;
	size_t alen;

	if (flags > 2)
		return CORRUPT("bad flow address length");
	alen = flags == 0 ? 0 : flags == 1 ? 4 : 16;
	GETV(ref, "flow ref");
	if (ref > UINT32_MAX)
		return CORRUPT("flow ref out of range");
	if (r->c_end - r->c < 2)
		return CORRUPT("flow record truncated");
	memset(&f->key, 0, sizeof(f->key));
	f->ref = (uint32_t)ref;
	f->key.family = *r->c++;
	f->key.proto = *r->c++;
	if (f->key.family != 0 && f->key.family != 4 && f->key.family != 6)
		return CORRUPT("bad flow address family");
	GETV(sport, "flow port");
	GETV(dport, "flow port");
	if (sport > UINT16_MAX || dport > UINT16_MAX)
		return CORRUPT("flow port out of range");
	f->key.sport = (uint16_t)sport;
	f->key.dport = (uint16_t)dport;
	if ((size_t)(r->c_end - r->c) < 2 * alen)
		return CORRUPT("flow record truncated");
	memcpy(f->key.src, r->c, alen);
	memcpy(f->key.dst, r->c + alen, alen);
	r->c += 2 * alen;
	if (mscope_rd_flow_add(r, f->ref) < 0)
		return fail(r, err, r->frame_off, "out of memory");
	return 0;
}

/* The frame just finished: check it against the index entry it was read by. */
static int
frame_done(struct mscope_trace_reader *r, struct mscope_trace_error *err)
{
	const struct mscope_frame_info *e;

	r->cur.tsc_last = r->prev_tsc;
	if (!r->cur_have_tsc)
		r->cur.tsc_first = r->prev_tsc;
	r->have_prev = true;
	r->have_done = true;
	r->done = r->cur;
	if (!r->by_index)
		return 0;
	e = &r->frames[r->f_cur];
	if (e->records != r->cur.records || e->tsc_first != r->cur.tsc_first ||
	    e->tsc_last != r->cur.tsc_last || e->rx_packets != r->cur.rx_packets ||
	    e->tx_packets != r->cur.tx_packets || e->drop_packets != r->cur.drop_packets ||
	    e->csize != r->cur.csize || e->rx_seq_first != r->cur.rx_seq_first)
		return fail(r, err, r->frame_off, "seek table entry %zu does not match the frame at "
			    "offset %llu (records %u/%u, tsc %llu..%llu/%llu..%llu)", r->f_cur,
			    (unsigned long long)r->frame_off, e->records, r->cur.records,
			    (unsigned long long)e->tsc_first, (unsigned long long)e->tsc_last,
			    (unsigned long long)r->cur.tsc_first,
			    (unsigned long long)r->cur.tsc_last);
	return 0;
}

/* Load the next frame: the next in the file, or the next of the index range. */
static int
next_frame(struct mscope_trace_reader *r, struct mscope_trace_error *err)
{
	int rc;

	if (r->by_index) {
		if (r->f_next >= r->f_stop)
			return 0;
		if (r->next_off != r->frames[r->f_next].offset) {
			if (mscope_rd_reposition(r, r->frames[r->f_next].offset) < 0)
				return fail(r, err, r->frames[r->f_next].offset, "seek failed: %s",
					    strerror(errno));
			r->have_prev = false;
		}
		r->f_cur = r->f_next++;
	}
	rc = load_frame(r, err);
	if (rc == 0 && r->by_index)
		return fail(r, err, r->next_off, "seek table lists a frame at offset %llu past the "
			    "end of the data", (unsigned long long)r->next_off);
	if (rc <= 0)
		return rc;
	if (start_frame(r, err) < 0)
		return -1;
	return 1;
}

/* Bounds no writer exceeds: keep sums of these fields from wrapping. */
#define LOSS_RECORDS_MAX (1ULL << 40)
#define PKTS_PER_RECORD_MAX 65536ULL

int
mscope_rd_next_raw(struct mscope_trace_reader *r, struct mscope_record *rec,
		   struct mscope_trace_error *err)
{
	unsigned type, flags;
	int rc;

	if (r->failed) {
		if (err)
			*err = r->err;
		return -1;
	}
	while (!r->in_frame || r->c >= r->c_end) {
		if (r->in_frame) {
			/* every section must be used up exactly */
			r->in_frame = false;
			if (r->wp != r->w_end || r->fp != r->f_end)
				return fail(r, err, r->frame_off,
					    "corrupt frame at offset %llu: %s section has %llu unused bytes",
					    (unsigned long long)r->frame_off,
					    r->wp != r->w_end ? "wire" : "flow",
					    (unsigned long long)(r->wp != r->w_end ?
						r->w_end - r->wp : r->f_end - r->fp));
			if (frame_done(r, err) < 0)
				return -1;
		}
		rc = next_frame(r, err);
		if (rc <= 0)
			return rc;
	}
	type = *r->c & 0x0f;
	flags = *r->c >> 4;
	r->c++;
	switch (type) {
	case MSCOPE_P_RX:
		rec->type = MSCOPE_REC_RX;
		if (dec_rx(r, err, flags, &rec->u.rx) < 0)
			return -1;
		r->cur.rx_packets += rec->u.rx.n;
		break;
	case MSCOPE_P_TX:
		rec->type = MSCOPE_REC_TX;
		if (dec_tx(r, err, flags, &rec->u.tx) < 0)
			return -1;
		r->cur.tx_packets += rec->u.tx.accepted;
		break;
	case MSCOPE_P_DROP:
		rec->type = MSCOPE_REC_DROP;
		if (dec_drop(r, err, flags, &rec->u.drop) < 0)
			return -1;
		r->cur.drop_packets += rec->u.drop.n;
		break;
	case MSCOPE_P_FLOW:
		rec->type = MSCOPE_REC_FLOW;
		if (dec_flow(r, err, flags, &rec->u.flow) < 0)
			return -1;
		break;
	case MSCOPE_P_LOSS: {
		struct mscope_loss *l = &rec->u.loss;

		if (flags)
			return CORRUPT("unknown loss flags");
		rec->type = MSCOPE_REC_LOSS;
		if (get_tsc(r, err, &l->tsc) < 0)
			return -1;
		GETV(l->records, "loss records");
		GETV(l->packets, "loss packets");
		if (l->records > LOSS_RECORDS_MAX || l->packets > l->records * PKTS_PER_RECORD_MAX)
			return CORRUPT("loss counts out of range");
		break;
	}
	case MSCOPE_P_CLOCK: {
		struct mscope_clock *c = &rec->u.clock;
		uint64_t v;

		if (flags)
			return CORRUPT("unknown clock flags");
		rec->type = MSCOPE_REC_CLOCK;
		if (get_tsc(r, err, &c->tsc) < 0)
			return -1;
		GETV(v, "clock");
		c->realtime_ns = mscope_unzz(v);
		break;
	}
	case MSCOPE_P_DELETED: {
		struct mscope_deleted *d = &rec->u.deleted;
		uint64_t seg, span;

		if (flags)
			return CORRUPT("unknown deleted flags");
		rec->type = MSCOPE_REC_DELETED;
		if (get_tsc(r, err, &d->tsc) < 0)
			return -1;
		GETV(seg, "deleted segment");
		if (seg > UINT32_MAX)
			return CORRUPT("deleted segment number out of range");
		d->segment = (uint32_t)seg;
		GETV(d->tsc_first, "deleted tsc_first");
		GETV(span, "deleted tsc_last");
		if (span > UINT64_MAX - d->tsc_first)
			return CORRUPT("deleted tsc_last overflows");
		d->tsc_last = d->tsc_first + span;
		GETV(d->records, "deleted records");
		GETV(d->packets, "deleted packets");
		if (d->records > LOSS_RECORDS_MAX || d->packets > d->records * PKTS_PER_RECORD_MAX)
			return CORRUPT("deleted segment counts out of range");
		break;
	}
	default:
		r->c--;
		return CORRUPT("unknown record type");
	}
	r->cur.records++;
	if (!r->cur_have_tsc && rec->type != MSCOPE_REC_FLOW) {
		r->cur.tsc_first = r->prev_tsc;
		r->cur_have_tsc = true;
	}
	return 1;
}

int
mscope_reader_next(struct mscope_trace_reader *r, struct mscope_record *rec,
		   struct mscope_trace_error *err)
{
	if (r == NULL || rec == NULL)
		return -1;
	if (r->nseg)
		return mscope_rd_stream_next(r, rec, err);
	if (r->replay < r->replay_end && !r->failed) {
		rec->type = MSCOPE_REC_FLOW;
		rec->u.flow = r->iflows[r->replay++].def;
		return 1;
	}
	return mscope_rd_next_raw(r, rec, err);
}
