/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * bench_trace: write and read a realistic synthetic trace and print write
 * speed, read speed and bytes per packet on disk, per zstd level.
 *
 * The stream models a forwarding NF on one rx queue: rx bursts of 1..32
 * packets (uniform), ~1000 flows with Zipf(1.0) popularity (refs numbered by
 * popularity, as first-seen order roughly gives), random 32-bit wire IDs, a
 * known rx queue depth doing a random walk, tx mirroring rx in order, and 5% of
 * tx calls refusing part of the burst, which is offered again by the next tx
 * call (a retry). One clock record per simulated second. All of it is
 * generated before the clock starts.
 *
 * Then the time index: the time to read a 10 ms window from the middle of the
 * file through the seek table, against a full scan that keeps the same
 * records and against a file without seek table (index rebuilt by a scan),
 * rounds alternated; and the seek table's size per frame and per packet.
 */
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mscope_trace.h"

#define NFLOWS 1000
#define TSC_HZ 2000000000ULL

struct stream {
	uint64_t npkts;
	uint32_t *wire;
	uint32_t *flow;
	uint64_t *seq;        /* seq[i] = i, for tx rx_seq arrays */
	uint32_t nbursts;
	uint32_t *burst;      /* rx burst sizes */
	int32_t *qdepth;
	uint32_t *refuse;     /* packets refused by the tx call after each rx burst */
	uint64_t *gap;        /* TSC between rx bursts */
};

static uint64_t rng_s = 0x1234567;

static uint64_t
rnd(void)
{
	uint64_t z = (rng_s += 0x9E3779B97F4A7C15ULL);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

static double
urand(void)
{
	return (double)(rnd() >> 11) / 9007199254740992.0;
}

static void *
xmalloc(size_t n)
{
	void *p = malloc(n);

	if (p == NULL) {
		fprintf(stderr, "bench-trace: out of memory\n");
		exit(1);
	}
	return p;
}

static void
gen(struct stream *s, uint64_t npkts)
{
	double cdf[NFLOWS], sum = 0;
	uint64_t i = 0;
	uint32_t b = 0;
	int32_t q = 64;

	for (int k = 0; k < NFLOWS; k++)
		sum += 1.0 / (k + 1);
	for (int k = 0; k < NFLOWS; k++)
		cdf[k] = (k ? cdf[k - 1] : 0) + 1.0 / (k + 1) / sum;
	s->npkts = npkts;
	s->wire = xmalloc(npkts * 4);
	s->flow = xmalloc(npkts * 4);
	s->seq = xmalloc(npkts * 8);
	s->burst = xmalloc(npkts * 4);
	s->qdepth = xmalloc(npkts * 4);
	s->refuse = xmalloc(npkts * 4);
	s->gap = xmalloc(npkts * 8);
	while (i < npkts) {
		uint32_t n = 1 + (uint32_t)(rnd() % 32);

		if (n > npkts - i)
			n = (uint32_t)(npkts - i);
		for (uint32_t k = 0; k < n; k++, i++) {
			const double u = urand();
			int lo = 0, hi = NFLOWS - 1;

			while (lo < hi) {
				const int mid = (lo + hi) / 2;

				if (cdf[mid] < u)
					lo = mid + 1;
				else
					hi = mid;
			}
			s->wire[i] = (uint32_t)rnd();
			s->flow[i] = (uint32_t)lo;
			s->seq[i] = i;
		}
		q += (int32_t)(rnd() % 33) - 16;
		q = q < 0 ? 0 : q > 1024 ? 1024 : q;
		s->burst[b] = n;
		s->qdepth[b] = n < 32 ? 0 : q;
		s->refuse[b] = rnd() % 100 < 5 ? 1 + (uint32_t)(rnd() % n) : 0;
		s->gap[b] = 200 + n * 60 + rnd() % 400;
		b++;
	}
	s->nbursts = b;
}

static double
now(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Write the stream; returns events written (rx + tx packets). */
static uint64_t
write_stream(const struct stream *s, const char *path, int level)
{
	struct mscope_trace_header h = { .tsc_hz = TSC_HZ, .anchor_tsc = 1000,
					 .anchor_realtime_ns = 1700000000000000000LL };
	struct mscope_writer_opts o = { .zstd_level = level };
	struct mscope_trace_error err;
	struct mscope_trace_writer *w;
	uint64_t tsc = 1000, first = 0, pending = 0, events = 0, next_clock = TSC_HZ;
	static uint8_t defined[NFLOWS];

	memset(defined, 0, sizeof(defined));
	snprintf(h.nf_name, sizeof(h.nf_name), "bench");
	snprintf(h.writer, sizeof(h.writer), "bench-trace");
	w = mscope_writer_open(path, &h, &o, &err);
	if (w == NULL) {
		fprintf(stderr, "bench-trace: %s: %s\n", err.file, err.text);
		exit(1);
	}
	for (uint32_t b = 0; b < s->nbursts; b++) {
		const uint32_t n = s->burst[b];
		struct mscope_rx_burst rx = { .tsc = tsc, .n = n, .qdepth = s->qdepth[b],
					      .wire_id = s->wire + first, .flow = s->flow + first };
		struct mscope_tx_burst tx = { .tsc = tsc + 150, .port = 1, .queue = 0 };

		for (uint32_t k = 0; k < n; k++) {
			const uint32_t f = s->flow[first + k];

			if (!defined[f]) {
				struct mscope_flow_key key = { .family = 4, .proto = 6,
							       .sport = (uint16_t)(1024 + f),
							       .dport = 443 };

				key.src[0] = 10;
				key.src[2] = (uint8_t)(f >> 8);
				key.src[3] = (uint8_t)f;
				key.dst[0] = 192;
				key.dst[1] = 168;
				key.dst[3] = 1;
				mscope_writer_flow(w, f, &key);
				defined[f] = 1;
			}
		}
		if (mscope_writer_rx(w, &rx) < 0)
			goto fail;
		pending += n;
		/* offer what is pending; a refused tail is retried by the next call */
		for (uint32_t refuse = s->refuse[b]; pending > 0; refuse = 0) {
			const uint32_t offer = (uint32_t)(pending > 32 ? 32 : pending);
			const uint64_t from = first + n - pending;
			const uint32_t refused = refuse < offer ? refuse : offer;

			tx.offered = offer;
			tx.accepted = offer - refused;
			tx.wire_id = s->wire + from;
			tx.rx_seq = s->seq + from;
			if (mscope_writer_tx(w, &tx) < 0)
				goto fail;
			events += tx.accepted;
			pending -= tx.accepted;
			tx.tsc += 40;
		}
		events += n;
		first += n;
		tsc = tx.tsc + s->gap[b];
		if (tsc >= next_clock) {
			struct mscope_clock c = { tsc, 1700000000000000000LL + (int64_t)(tsc / 2) };

			mscope_writer_clock(w, &c);
			next_clock += TSC_HZ;
		}
	}
	if (mscope_writer_close(w) < 0) {
		fprintf(stderr, "bench-trace: close: %s\n", err.text);
		exit(1);
	}
	return events;
fail:
	fprintf(stderr, "bench-trace: write: %s\n", mscope_writer_error(w)->text);
	exit(1);
}

/* Read it back; returns packet events seen (and a checksum to keep work honest). */
static uint64_t
read_stream(const char *path, uint64_t *sum)
{
	struct mscope_trace_error err;
	struct mscope_trace_reader *r = mscope_reader_open(path, &err);
	struct mscope_record rec;
	uint64_t events = 0, x = 0;
	int rc;

	if (r == NULL) {
		fprintf(stderr, "bench-trace: %s: %s\n", err.file, err.text);
		exit(1);
	}
	while ((rc = mscope_reader_next(r, &rec, &err)) == 1) {
		if (rec.type == MSCOPE_REC_RX) {
			events += rec.u.rx.n;
			for (uint32_t i = 0; i < rec.u.rx.n; i++)
				x += rec.u.rx.wire_id[i] ^ rec.u.rx.flow[i];
		} else if (rec.type == MSCOPE_REC_TX) {
			events += rec.u.tx.accepted;
			for (uint32_t i = 0; i < rec.u.tx.accepted; i++)
				x += rec.u.tx.wire_id[i] ^ rec.u.tx.rx_seq[i];
		}
	}
	if (rc < 0) {
		fprintf(stderr, "bench-trace: %s: offset %" PRIu64 ": %s\n", err.file, err.offset,
			err.text);
		exit(1);
	}
	mscope_reader_close(r);
	*sum = x;
	return events;
}

/* Records in [t0, t1] (timed ones) read through the window API, or by a full scan. */
static uint64_t
read_window(const char *path, uint64_t t0, uint64_t t1, int use_index)
{
	struct mscope_trace_error err;
	struct mscope_trace_reader *r = mscope_reader_open(path, &err);
	struct mscope_record rec;
	uint64_t n = 0;
	int rc;

	if (r == NULL || (use_index && mscope_reader_window(r, t0, t1, &err) < 0)) {
		fprintf(stderr, "bench-trace: %s: %s\n", err.file, err.text);
		exit(1);
	}
	while ((rc = mscope_reader_next(r, &rec, &err)) == 1) {
		const uint64_t t = rec.type == MSCOPE_REC_RX ? rec.u.rx.tsc :
				   rec.type == MSCOPE_REC_TX ? rec.u.tx.tsc : 0;

		n += t >= t0 && t <= t1;
	}
	if (rc < 0) {
		fprintf(stderr, "bench-trace: %s: %s\n", err.file, err.text);
		exit(1);
	}
	mscope_reader_close(r);
	return n;
}

/* The index section: window through the seek table vs full scan vs rebuilt index. */
static void
bench_index(const struct stream *s, const char *dir, uint64_t npkts)
{
	char path[4096], bare[4200], cmd[8500];
	struct mscope_trace_error err;
	struct mscope_trace_reader *r;
	const struct mscope_frame_info *f;
	struct stat sb;
	uint8_t foot[20];
	double best[3] = { 1e9, 1e9, 1e9 };
	uint64_t t0, t1, want = 0, tab;
	size_t n;
	int rebuilt;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/bench-index-%d.mst", dir, (int)getpid());
	snprintf(bare, sizeof(bare), "%s.bare", path);
	unlink(path);
	write_stream(s, path, 1);
	r = mscope_reader_open(path, &err);
	if (r == NULL || mscope_reader_index(r, &f, &n, &rebuilt, &err) < 0) {
		fprintf(stderr, "bench-trace: index: %s\n", err.text);
		exit(1);
	}
	if (n < 3) {
		printf("\nindex: only %zu frames: too few packets (-p) for the window benchmark\n", n);
		mscope_reader_close(r);
		unlink(path);
		return;
	}
	t0 = f[n / 2].tsc_first;
	t1 = t0 + TSC_HZ / 100; /* 10 ms */
	fp = fopen(path, "rb");
	if (fp == NULL || stat(path, &sb) < 0 || fseek(fp, -20, SEEK_END) < 0 ||
	    fread(foot, 1, 20, fp) != 20) {
		perror(path);
		exit(1);
	}
	fclose(fp);
	tab = 8 + (uint64_t)(foot[0] | foot[1] << 8 | foot[2] << 16 | (uint32_t)foot[3] << 24) * 56 +
	      (foot[8] | foot[9] << 8 | foot[10] << 16 | (uint32_t)foot[11] << 24) + 20;
	mscope_reader_close(r);
	/* the same file without its seek table (as a SIGKILLed writer leaves it) */
	snprintf(cmd, sizeof(cmd), "head -c %llu '%s' > '%s'",
		 (unsigned long long)((uint64_t)sb.st_size - tab), path, bare);
	if (system(cmd) != 0) {
		fprintf(stderr, "bench-trace: cannot write %s\n", bare);
		exit(1);
	}
	for (int rep = 0; rep < 5; rep++)
		for (int k = 0; k < 3; k++) {
			const double a = now(CLOCK_MONOTONIC);
			const uint64_t got = read_window(k == 2 ? bare : path, t0, t1, k != 1);
			const double d = now(CLOCK_MONOTONIC) - a;

			if (rep == 0 && k == 0)
				want = got;
			if (got != want) {
				fprintf(stderr, "bench-trace: window read %llu records, want %llu\n",
					(unsigned long long)got, (unsigned long long)want);
				exit(1);
			}
			best[k] = fmin(best[k], d);
		}
	printf("\nindex: %zu frames, seek table %llu bytes = %.1f bytes per frame, %.5f bytes "
	       "per rx packet (%.3f%% of the file)\n", n, (unsigned long long)tab,
	       (double)tab / (double)n, (double)tab / (double)npkts,
	       100.0 * (double)tab / (double)sb.st_size);
	printf("10 ms window from the middle (%llu records): seek table %.2f ms, full scan %.2f "
	       "ms (x%.0f), no seek table (scan to rebuild) %.2f ms\n", (unsigned long long)want,
	       best[0] * 1e3, best[1] * 1e3, best[1] / best[0], best[2] * 1e3);
	printf("(best of 5 alternated rounds each, wall clock, new reader each time)\n");
	unlink(path);
	unlink(bare);
}

static void
usage(FILE *f)
{
	fprintf(f, "usage: bench-trace [-p PACKETS] [-d DIR]\n"
		"  -p, --packets N  rx packets in the synthetic stream (default 10000000)\n"
		"  -d, --dir DIR    where to write the temporary trace (default /tmp)\n"
		"  -h, --help       this help\n");
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ "packets", required_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 },
	};
	const int levels[] = { 1, 3 };
	uint64_t npkts = 10000000;
	const char *dir = "/tmp";
	struct stream s;
	char path[4096];
	int c;

	while ((c = getopt_long(argc, argv, "d:hp:", longopts, NULL)) != -1) {
		char *end;

		switch (c) {
		case 'd':
			dir = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'p':
			npkts = strtoull(optarg, &end, 10);
			if (*end || npkts == 0 || npkts > 200000000) {
				fprintf(stderr, "bench-trace: bad packet count '%s'\n", optarg);
				return 2;
			}
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	gen(&s, npkts);
	printf("stream: %" PRIu64 " rx packets in %u bursts, %d flows (Zipf 1.0), "
	       "tx mirrors rx, 5%% of tx calls refuse part\n", npkts, s.nbursts, NFLOWS);
	printf("%-6s %13s %13s %13s %13s %10s\n", "level", "write Mpkt/s", "write Mev/s",
	       "read Mev/s", "(wall)", "bytes/pkt");
	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
		double wr = 0, rr = 0, rw = 0, bpp = 0;

		/* best of two runs: the first also pays for page faults and cold caches */
		for (int rep = 0; rep < 2; rep++) {
			struct stat sb;
			double t0, t1, t2, w1, w2;
			uint64_t wev, rev, sum;

			snprintf(path, sizeof(path), "%s/bench-trace-%d-%d.mst", dir, (int)getpid(),
				 levels[i]);
			unlink(path);
			t0 = now(CLOCK_THREAD_CPUTIME_ID);
			wev = write_stream(&s, path, levels[i]);
			t1 = now(CLOCK_THREAD_CPUTIME_ID);
			w1 = now(CLOCK_MONOTONIC);
			rev = read_stream(path, &sum);
			t2 = now(CLOCK_THREAD_CPUTIME_ID);
			w2 = now(CLOCK_MONOTONIC);
			if (stat(path, &sb) < 0) {
				perror(path);
				return 1;
			}
			unlink(path);
			if (rev != wev) {
				fprintf(stderr, "bench-trace: read %" PRIu64 " events, wrote %" PRIu64
					"\n", rev, wev);
				return 1;
			}
			wr = fmax(wr, (double)wev / (t1 - t0) / 1e6);
			rr = fmax(rr, (double)rev / (t2 - t1) / 1e6);
			rw = fmax(rw, (double)rev / (w2 - w1) / 1e6);
			bpp = (double)sb.st_size / (double)npkts;
			(void)sum;
		}
		printf("%-6d %13.2f %13.2f %13.2f %13.2f %10.3f\n", levels[i], wr / 2, wr, rr, rw,
		       bpp);
	}
	printf("(rates per CPU second of the one thread doing the work, wall-clock read rate "
	       "beside it;\n write Mpkt/s counts rx packets; events = rx packets + tx packets; "
	       "bytes/pkt = file size / rx packets, rx and tx together)\n");
	bench_index(&s, dir, npkts);
	return 0;
}
