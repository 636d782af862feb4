/* SPDX-License-Identifier: BSD-3-Clause */
/* Hand-built traces for the analyzer tests, written with the trace writer. */
#ifndef AN_TESTUTIL_H
#define AN_TESTUTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "mscope_analyzer.h"
#include "mscope_trace.h"

#define NOT_SENT INT64_MIN

/* A temporary directory removed at the end (unless the test failed: kept). */
static inline char *
tu_mkdir(void)
{
	char *d = strdup("/tmp/mscope-an-test-XXXXXX");
	cr_assert_not_null(mkdtemp(d));
	return d;
}

static inline void
tu_rmdir(char *d)
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", d);
	free(d);
}

static inline void
tu_flowkey(struct mscope_flow_key *k, uint32_t client, uint16_t dport, uint8_t proto)
{
	memset(k, 0, sizeof(*k));
	k->family = 4;
	k->proto = proto;
	k->sport = (uint16_t)(10000 + client);
	k->dport = dport;
	k->src[0] = 10;
	k->src[1] = 0;
	k->src[2] = (uint8_t)(client >> 8);
	k->src[3] = (uint8_t)client;
	k->dst[0] = 10;
	k->dst[1] = 1;
	k->dst[3] = 1;
}

static inline struct mscope_trace_writer *
tu_open(const char *dir, const char *file, const char *nf, int role, const char *run)
{
	struct mscope_trace_header h;
	struct mscope_trace_error err;
	struct mscope_trace_writer *w;
	char path[512];

	memset(&h, 0, sizeof(h));
	h.role = (uint8_t)role;
	h.tsc_hz = 1000000000ULL;
	h.anchor_tsc = 0;
	h.anchor_realtime_ns = 1700000000000000000LL;
	snprintf(h.nf_name, sizeof(h.nf_name), "%s", nf);
	snprintf(h.host, sizeof(h.host), "testhost");
	snprintf(h.run_id, sizeof(h.run_id), "%s", run ? run : "run1");
	snprintf(h.writer, sizeof(h.writer), "an-test");
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	w = mscope_writer_open(path, &h, NULL, &err);
	cr_assert_not_null(w, "writer: %s", err.text);
	return w;
}

/* Flow keys for the next files, or NULL: flow i = client i+1, UDP to port 80. */
static const struct mscope_flow_key *tu_keys;

/* Define flows 0..nflows-1. */
static inline void
tu_flows(struct mscope_trace_writer *w, uint32_t nflows)
{
	for (uint32_t i = 0; i < nflows; i++) {
		struct mscope_flow_key k;
		if (tu_keys)
			k = tu_keys[i];
		else
			tu_flowkey(&k, i + 1, 80, 17);
		cr_assert_eq(mscope_writer_flow(w, i, &k), 0);
	}
}

/* A source sending packet i (wire[i], flow[i]) at t[i], one tx per packet. */
static inline void
tu_source(const char *dir, const char *name, size_t n, const uint32_t *wire,
		const uint32_t *flow, const int64_t *t, uint32_t nflows)
{
	struct mscope_trace_writer *w = tu_open(dir, "source.mst", name, MSCOPE_ROLE_SOURCE, NULL);
	tu_flows(w, nflows);
	for (size_t i = 0; i < n; i++) {
		uint64_t seq = MSCOPE_NO_LINK;
		struct mscope_tx_burst tx = { .tsc = (uint64_t)t[i], .offered = 1, .accepted = 1,
			.wire_id = &wire[i], .rx_seq = &seq, .flow = &flow[i] };
		cr_assert_eq(mscope_writer_tx(w, &tx), 0);
	}
	cr_assert_eq(mscope_writer_close(w), 0);
}

/*
 * An NF node: packet i is dequeued at deq[i] (consecutive equal times form
 * one rx burst; deq must be non-decreasing) and sent at tx[i] (NOT_SENT: not
 * sent; dropped by the NF when nfdrop). Wire IDs unchanged unless wout given.
 */
static inline void
tu_node(const char *dir, const char *nf, size_t n, const uint32_t *wire,
		const uint32_t *flow, const int64_t *deq, const int64_t *tx,
		const uint32_t *wout, uint32_t nflows)
{
	char file[128];
	struct mscope_trace_writer *w;
	size_t i = 0;
	size_t *order = malloc((n ? n : 1) * sizeof(*order)), no = 0;

	snprintf(file, sizeof(file), "%s.mst", nf);
	w = tu_open(dir, file, nf, MSCOPE_ROLE_RXQ, NULL);
	tu_flows(w, nflows);
	/* tx events sorted by time */
	for (size_t k = 0; k < n; k++)
		if (tx[k] != NOT_SENT)
			order[no++] = k;
	for (size_t a = 1; a < no; a++)
		for (size_t b = a; b > 0 && tx[order[b - 1]] > tx[order[b]]; b--) {
			size_t t = order[b];
			order[b] = order[b - 1];
			order[b - 1] = t;
		}
	size_t ti = 0;
	while (i < n || ti < no) {
		if (i < n && (ti >= no || deq[i] <= tx[order[ti]])) {
			size_t j = i;
			while (j < n && deq[j] == deq[i])
				j++;
			struct mscope_rx_burst rx = { .tsc = (uint64_t)deq[i], .n = (uint32_t)(j - i),
				.qdepth = MSCOPE_QDEPTH_UNKNOWN, .wire_id = &wire[i], .flow = &flow[i] };
			cr_assert_eq(mscope_writer_rx(w, &rx), 0, "%s", mscope_writer_error(w)->text);
			i = j;
		} else {
			size_t k = order[ti++];
			uint64_t seq = k;
			uint32_t wo = wout ? wout[k] : wire[k];
			struct mscope_tx_burst txr = { .tsc = (uint64_t)tx[k], .offered = 1,
				.accepted = 1, .wire_id = &wo, .rx_seq = &seq, .flow = &flow[k] };
			cr_assert_eq(mscope_writer_tx(w, &txr), 0, "%s", mscope_writer_error(w)->text);
		}
	}
	free(order);
	cr_assert_eq(mscope_writer_close(w), 0);
}

/* Does a warning of the analysis contain `needle`? */
static inline int
has_warning(struct mscope_analysis *an, const char *needle)
{
	for (const char *const *w = mscope_an_warnings(an); *w; w++)
		if (strstr(*w, needle))
			return 1;
	return 0;
}

#endif
