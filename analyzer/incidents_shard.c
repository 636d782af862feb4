/* SPDX-License-Identifier: BSD-3-Clause */
/* The incident scan split into time shards for a distributed driver
 * (mscope-mpi): the plan, the scan of one shard with its look-back, the
 * export and merge of the shards' bins, and the diagnoses carried between
 * processes as JSON text. No MPI here: the driver moves the buffers.
 *
 * Why the merge is exact: shard boundaries fall on bins of the final width,
 * so every bin is filled by one shard; a node's bin width at a record depends
 * only on the record's time (it doubles when the bin index passes
 * INC_MAX_BINS), so a shard bins like the single scan; coarsening (sum of
 * counts, max of p99 and max) gives the same bins whether done during the
 * scan or after the merge. A packet's residence needs its arrival bound:
 * the look-back replays the rx records before the shard, and a packet that
 * was queued before the look-back started (below the first rx's queue-depth
 * bound) makes the shard scan again with a longer one. */
#include <stdlib.h>
#include <string.h>

#include "incidents_private.h"

#define LOOKBACK_S 0.1        /* first look-back before a shard */
#define SHARD_MAGIC 0x3148534du /* "MSH1" */

/* Export layout (native byte order): struct shard_hdr, then per node a
 * struct shard_node followed by (nbins - lo) struct inc_bin (3 uint32, 2 float),
 * zeros up to a multiple of 8 bytes. */
struct shard_hdr {
	uint32_t magic, nnodes;
	uint32_t shift, rescans;
	double cpu_s, wall_s;
};

struct shard_node {
	uint64_t hops, packets, drops, unlinked;
	uint32_t nbins;           /* bins used, at the header's shift */
	uint32_t lo;              /* first bin exported (the ones before are empty) */
};

static void
seterr(struct mscope_an_error *err, const char *text)
{
	snprintf(err->text, sizeof(err->text), "%s", text);
}

struct mscope_inc_scan *
mscope_inc_scan_open(const char *dir, const struct mscope_inc_opts *o, struct mscope_an_error *err)
{
	return inc_scan_open(dir, o, err);
}

/* The frames of a node stream, from its files' indexes: the time of its last
 * record into *end (a maximum), and when hist is given each frame's packets
 * (rx, tx, drops: the scan's work) into hist[] by the bin of its last record. */
static int
stream_frames(const struct mscope_inc_scan *s, const struct inc_node *nd, uint64_t *end,
		uint64_t *hist, uint64_t nb, uint64_t width, struct mscope_an_error *err)
{
	for (size_t i = 0; i < nd->npaths; i++) {
		struct mscope_trace_error te;
		struct mscope_trace_reader *r = mscope_reader_open(nd->paths[i], &te);
		const struct mscope_frame_info *fr;
		size_t n;
		int rebuilt;

		if (r == NULL || mscope_reader_index(r, &fr, &n, &rebuilt, &te)) {
			snprintf(err->text, sizeof(err->text), "%s: offset %llu: %s", te.file,
				(unsigned long long)te.offset, te.text);
			mscope_reader_close(r);
			return -1;
		}
		for (size_t j = 0; j < n; j++) {
			uint64_t b;

			if (fr[j].tsc_last > *end)
				*end = fr[j].tsc_last;
			if (hist == NULL || fr[j].tsc_last < s->t0_tsc)
				continue;
			b = (fr[j].tsc_last - s->t0_tsc) / width;
			hist[b < nb ? b : nb - 1] += (uint64_t)fr[j].rx_packets + fr[j].tx_packets +
				fr[j].drop_packets;
		}
		mscope_reader_close(r);
	}
	return 0;
}

static uint64_t
base_ticks(const struct mscope_inc_scan *s)
{
	uint64_t b = (uint64_t)(s->bin_ticks + 0.5);   /* as the scan rounds it */

	return b ? b : 1;
}

/* Shard starts s->shard_t[0..n) on the nb bins of `width`: about the same
 * packets in every shard (the frames' counts), equal times when there are none. */
static int
plan_by_work(struct mscope_inc_scan *s, unsigned n, uint64_t nb, uint64_t width,
		struct mscope_an_error *err)
{
	uint64_t *hist = calloc(nb, sizeof(*hist)), total = 0, acc = 0, end = 0;
	unsigned k = 1;

	if (hist == NULL) {
		seterr(err, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < s->nnodes; i++)
		if (!s->nodes[i].is_source &&
				stream_frames(s, &s->nodes[i], &end, hist, nb, width, err)) {
			free(hist);
			return -1;
		}
	for (uint64_t b = 0; b < nb; b++)
		total += hist[b];
	for (unsigned j = 0; j < n; j++)   /* equal times */
		s->shard_t[j] = s->t0_tsc + (uint64_t)((unsigned __int128)nb * j / n) * width;
	for (uint64_t b = 0; total && b < nb && k < n; b++) {
		acc += hist[b];
		for (; k < n && (unsigned __int128)acc * n >= (unsigned __int128)total * k; k++)
			s->shard_t[k] = s->t0_tsc + (b + 1) * width;
	}
	for (; total && k < n; k++)
		s->shard_t[k] = s->t0_tsc + nb * width;
	free(hist);
	return 0;
}

int
mscope_inc_shard_plan(struct mscope_inc_scan *s, unsigned n, struct mscope_an_error *err)
{
	uint64_t end = 0, base = base_ticks(s), width, nb;
	unsigned shift = 0;

	if (n == 0) {
		seterr(err, "no shards");
		return -1;
	}
	for (size_t i = 0; i < s->nnodes; i++)
		if (!s->nodes[i].is_source &&
				stream_frames(s, &s->nodes[i], &end, NULL, 0, 1, err))
			return -1;
	if (end > s->t1_tsc)
		end = s->t1_tsc;
	/* the final bin width: the scan doubles it until the last bin index fits */
	nb = end > s->t0_tsc ? (end - s->t0_tsc) / base : 0;
	while ((nb >> shift) >= INC_MAX_BINS)
		shift++;
	width = base << shift;
	nb = (nb >> shift) + 1;
	free(s->shard_t);
	s->shard_t = malloc((n + 1) * sizeof(*s->shard_t));
	if (s->shard_t == NULL) {
		s->nshards = 0;
		seterr(err, "out of memory");
		return -1;
	}
	if (plan_by_work(s, n, nb, width, err))
		return -1;
	s->shard_t[n] = end > s->shard_t[n - 1] ? end : s->shard_t[n - 1];  /* for messages */
	s->nshards = n;
	return 0;
}

int
mscope_inc_shard_range(const struct mscope_inc_scan *s, unsigned k, double *from_us,
		double *to_us)
{
	if (s->shard_t == NULL || k >= s->nshards)
		return -1;
	*from_us = (double)(s->shard_t[k] - s->origin_tsc) * 1e6 / s->hz;
	/* the last shard ends at the recording's last record */
	*to_us = (double)(s->shard_t[k + 1] - s->origin_tsc) * 1e6 / s->hz;
	return 0;
}

/* Where a node's scan of shard k (from t0) starts with look-back `look`:
 * 0 when that reaches where the single scan starts (it then reads as that). */
static uint64_t
read_from(const struct mscope_inc_scan *s, const struct inc_node *nd, unsigned k, uint64_t t0,
		uint64_t look)
{
	uint64_t first = inc_read_start(s, nd);

	return k == 0 || t0 - s->origin_tsc <= look || t0 - look <= first ? 0 : t0 - look;
}

static void
reset_node(struct inc_node *nd)
{
	free(nd->bins);
	nd->bins = NULL;
	nd->nbins = nd->shift = 0;
	nd->hops = nd->packets = nd->drops = nd->unlinked = nd->inexact = 0;
	nd->bytes_done = 0;
	nd->err[0] = nd->warn[0] = '\0';
}

int
mscope_inc_scan_shard(struct mscope_inc_scan *s, unsigned k, struct mscope_an_error *err)
{
	uint64_t t0, t1, look0 = (uint64_t)(LOOKBACK_S * s->hz);
	double cpu, wall;

	if (s->shard_t == NULL || k >= s->nshards) {
		seterr(err, "no such shard");
		return -1;
	}
	t0 = s->shard_t[k];
	t1 = k + 1 < s->nshards ? s->shard_t[k + 1] - 1 : s->t1_tsc;
	s->count_tsc = k ? t0 : 0;    /* the first shard also counts what precedes the window */
	s->rescans = 0;
	if (k + 1 < s->nshards && s->shard_t[k + 1] <= t0) {
		for (size_t i = 0; i < s->nnodes; i++)   /* an empty shard */
			reset_node(&s->nodes[i]);
		s->last_tsc = 0;
		return 0;
	}
	s->t1_tsc = t1;
	for (size_t i = 0; i < s->nnodes; i++) {
		reset_node(&s->nodes[i]);
		s->nodes[i].read_from_tsc = read_from(s, &s->nodes[i], k, t0, look0);
	}
	if (inc_scan_run(s, err))
		return -1;
	cpu = s->cpu_s;
	wall = s->wall_s;
	for (size_t i = 0; i < s->nnodes; i++) {
		struct inc_node *nd = &s->nodes[i];
		uint64_t look = look0;

		while (nd->inexact && !nd->warn[0]) {
			/* a packet had entered before the look-back: again, 4 times longer */
			double c0 = inc_now_s(CLOCK_PROCESS_CPUTIME_ID);
			double w0 = inc_now_s(CLOCK_MONOTONIC);

			look *= 4;
			reset_node(nd);
			nd->read_from_tsc = read_from(s, nd, k, t0, look);
			s->rescans++;
			if (inc_scan_node(s, nd)) {
				snprintf(err->text, sizeof(err->text), "%s", nd->err);
				return -1;
			}
			cpu += inc_now_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
			wall += inc_now_s(CLOCK_MONOTONIC) - w0;
		}
		while (nd->bins && nd->shift < s->shift)   /* the others' width */
			inc_halve(nd);
		if (nd->warn[0]) {
			snprintf(err->text, sizeof(err->text), "damaged trace: %.480s", nd->warn);
			return -1;
		}
	}
	s->cpu_s = cpu;
	s->wall_s = wall;
	return 0;
}

void
mscope_inc_shard_stats(const struct mscope_inc_scan *s, struct mscope_inc_shard_stats *st)
{
	memset(st, 0, sizeof(*st));
	for (size_t i = 0; i < s->nnodes; i++)
		if (!s->nodes[i].is_source)
			st->hops += s->nodes[i].hops;
	st->cpu_s = s->cpu_s;
	st->wall_s = s->wall_s;
	st->rescans = s->rescans;
}

static uint32_t
first_used(const struct inc_node *nd)
{
	static const struct inc_bin zero;
	uint32_t b = 0;

	while (b < nd->nbins && !memcmp(&nd->bins[b], &zero, sizeof(zero)))
		b++;
	return b;
}

int
mscope_inc_shard_export(const struct mscope_inc_scan *s, void **buf, size_t *len,
		struct mscope_an_error *err)
{
	struct shard_hdr h = { SHARD_MAGIC, (uint32_t)s->nnodes, s->shift, s->rescans,
		s->cpu_s, s->wall_s };
	size_t n = sizeof(h);
	unsigned char *p;

	for (size_t i = 0; i < s->nnodes; i++)
		n += sizeof(struct shard_node) + (size_t)(s->nodes[i].nbins -
			first_used(&s->nodes[i])) * sizeof(struct inc_bin);
	n = (n + 7) & ~(size_t)7;   /* exports laid end to end stay 8-byte aligned */
	p = calloc(1, n);
	if (p == NULL) {
		seterr(err, "out of memory");
		return -1;
	}
	*buf = p;
	*len = n;
	memcpy(p, &h, sizeof(h));
	p += sizeof(h);
	for (size_t i = 0; i < s->nnodes; i++) {
		const struct inc_node *nd = &s->nodes[i];
		struct shard_node sn = { nd->hops, nd->packets, nd->drops, nd->unlinked, nd->nbins,
			first_used(nd) };

		memcpy(p, &sn, sizeof(sn));
		p += sizeof(sn);
		if (sn.nbins > sn.lo) {
			memcpy(p, nd->bins + sn.lo, (size_t)(sn.nbins - sn.lo) * sizeof(struct inc_bin));
			p += (size_t)(sn.nbins - sn.lo) * sizeof(struct inc_bin);
		}
	}
	return 0;
}

/* Check export b and copy its header to *h; the nodes follow. @return 0 or -1. */
static int
check_export(const struct mscope_inc_scan *s, const void *b, size_t len, struct shard_hdr *h)
{
	const unsigned char *p = b, *end = p + len;

	if (len < sizeof(*h))
		return -1;
	memcpy(h, b, sizeof(*h));
	if (h->magic != SHARD_MAGIC || h->nnodes != s->nnodes || h->shift > 40)
		return -1;
	p += sizeof(*h);
	for (uint32_t i = 0; i < h->nnodes; i++) {
		struct shard_node sn;

		if ((size_t)(end - p) < sizeof(sn))
			return -1;
		memcpy(&sn, p, sizeof(sn));
		p += sizeof(sn);
		if (sn.lo > sn.nbins || sn.nbins > INC_MAX_BINS ||
				(size_t)(end - p) < (size_t)(sn.nbins - sn.lo) * sizeof(struct inc_bin))
			return -1;
		p += (size_t)(sn.nbins - sn.lo) * sizeof(struct inc_bin);
	}
	return end - p < 8 ? 0 : -1;   /* the padding */
}

static void
bin_add(struct inc_bin *x, const struct inc_bin *y)
{
	x->n += y->n;
	x->drops += y->drops;
	x->nf_drops += y->nf_drops;
	x->p99_us = x->p99_us > y->p99_us ? x->p99_us : y->p99_us;
	x->max_us = x->max_us > y->max_us ? x->max_us : y->max_us;
}

int
mscope_inc_shard_merge(struct mscope_inc_scan *s, const void *const *bufs, const size_t *lens,
		size_t n, struct mscope_an_error *err)
{
	uint32_t shift = 0;
	double cpu = 0, wall = 0;
	unsigned rescans = 0;

	for (size_t j = 0; j < n; j++) {
		struct shard_hdr hd, *h = &hd;

		if (check_export(s, bufs[j], lens[j], h)) {
			snprintf(err->text, sizeof(err->text), "shard export %zu is not one of this "
				"recording's (%zu bytes)", j, lens[j]);
			return -1;
		}
		shift = h->shift > shift ? h->shift : shift;
		cpu += h->cpu_s;
		wall = h->wall_s > wall ? h->wall_s : wall;
		rescans += h->rescans;
	}
	for (size_t i = 0; i < s->nnodes; i++) {
		reset_node(&s->nodes[i]);
		s->nodes[i].shift = shift;
		if (!s->nodes[i].is_source &&
				(s->nodes[i].bins = calloc(INC_MAX_BINS, sizeof(struct inc_bin))) == NULL) {
			seterr(err, "out of memory");
			return -1;
		}
	}
	s->last_tsc = 0;
	for (size_t j = 0; j < n; j++) {
		struct shard_hdr h;
		const unsigned char *p = (const unsigned char *)bufs[j] + sizeof(h);
		uint32_t d;

		memcpy(&h, bufs[j], sizeof(h));
		d = shift - h.shift;

		for (size_t i = 0; i < s->nnodes; i++) {
			struct inc_node *nd = &s->nodes[i];
			struct shard_node sn;

			memcpy(&sn, p, sizeof(sn));
			p += sizeof(sn);
			nd->hops += sn.hops;
			nd->packets += sn.packets;
			nd->drops += sn.drops;
			nd->unlinked += sn.unlinked;
			if (sn.nbins && nd->bins) {
				uint32_t used = ((sn.nbins - 1) >> d) + 1;   /* as coarsening rounds up */

				for (uint32_t b = sn.lo; b < sn.nbins; b++) {
					struct inc_bin y;

					memcpy(&y, p + (size_t)(b - sn.lo) * sizeof(y), sizeof(y));
					bin_add(&nd->bins[b >> d], &y);
				}
				nd->nbins = used > nd->nbins ? used : nd->nbins;
			}
			p += (size_t)(sn.nbins - sn.lo) * sizeof(struct inc_bin);
			if (nd->nbins > s->last_tsc)
				s->last_tsc = nd->nbins;
		}
	}
	s->shift = shift;
	s->cpu_s = cpu;
	s->wall_s = wall;
	s->rescans = rescans;
	s->count_tsc = 0;
	return 0;
}

double
mscope_inc_cost(const struct mscope_inc_scan *s, size_t i)
{
	double bw = inc_bin_us(s), base = inc_bin_start_us(s, 0), c = 0;
	const struct inc_incident *x;
	int64_t b0, b1;

	if (i >= s->ninc)
		return 0;
	x = &s->inc[i];
	b0 = (int64_t)((x->start_us - s->opts.margin_us - base) / bw);
	b1 = (int64_t)((x->end_us + s->opts.margin_us / 2 - base) / bw);
	b0 = b0 < 0 ? 0 : b0;
	for (size_t k = 0; k < s->nnodes; k++) {
		const struct inc_node *nd = &s->nodes[k];

		for (int64_t b = b0; b <= b1 && b < (int64_t)nd->nbins; b++)
			c += (double)nd->bins[b].n + (double)nd->bins[b].drops;
	}
	return c;
}

void
mscope_inc_diagnose_only(struct mscope_inc_scan *s, const unsigned char *mask)
{
	s->cut_mask = mask;
}

char *
mscope_inc_diag_export(const struct mscope_inc_scan *s, size_t i)
{
	const struct inc_incident *x;
	json_t *o;
	char *text;

	if (i >= s->ninc)
		return NULL;
	x = &s->inc[i];
	/* reals are written with 17 digits: they read back to the same doubles */
	o = json_pack("{s:f,s:f,s:f}", "from_us", x->cut_from_us, "to_us", x->cut_to_us,
		"first_us", x->cut_first_us);
	if (o == NULL)
		return NULL;
	if (x->doc)
		json_object_set(o, "doc", x->doc);
	if (x->diag_err)
		json_object_set_new(o, "error", json_string(x->diag_err));
	text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return text;
}

int
mscope_inc_diag_import(struct mscope_inc_scan *s, size_t i, const char *text,
		struct mscope_an_error *err)
{
	struct inc_incident *x;
	json_error_t je;
	json_t *o;
	const json_t *e;

	if (i >= s->ninc) {
		snprintf(err->text, sizeof(err->text), "no incident %zu", i);
		return -1;
	}
	o = json_loads(text, 0, &je);
	if (o == NULL || !json_is_real(json_object_get(o, "from_us"))) {
		snprintf(err->text, sizeof(err->text), "diagnosis of incident %zu: %s", i + 1,
			o ? "no window" : je.text);
		json_decref(o);
		return -1;
	}
	x = &s->inc[i];
	x->cut_from_us = json_real_value(json_object_get(o, "from_us"));
	x->cut_to_us = json_real_value(json_object_get(o, "to_us"));
	x->cut_first_us = json_real_value(json_object_get(o, "first_us"));
	json_decref(x->doc);
	x->doc = json_incref(json_object_get(o, "doc"));
	e = json_object_get(o, "error");
	if (json_is_string(e) && inc_set_error(s, i, json_string_value(e))) {
		json_decref(o);
		snprintf(err->text, sizeof(err->text), "out of memory");
		return -1;
	}
	json_decref(o);
	return 0;
}

const char *
mscope_inc_diag_error(const struct mscope_inc_scan *s, size_t i)
{
	return i < s->ninc ? s->inc[i].diag_err : NULL;
}
