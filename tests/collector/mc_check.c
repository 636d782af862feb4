/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Test helper for the collector's end-to-end scripts: reads trace files with
 * the trace reader (and pcaps with libpcap, independently of DPDK) and
 * prints facts the scripts compare.
 *
 *   mc_check pcap FILE            wire ID of every packet, one per line
 *   mc_check rx-ids TRACE         wire IDs of the rx packets, in order
 *   mc_check tx-ids TRACE         wire IDs of the accepted tx packets, in order
 *   mc_check stats TRACE...       one line of key=value per file
 *   mc_check stream SEGMENT...    the segment files of one node's stream, in
 *                                 order, read as one: one stats line of the
 *                                 whole (rx seqs continue across files; a tx
 *                                 may link an rx of an earlier file), plus
 *                                 segments, seg_gaps (numbers not consecutive),
 *                                 seq_gaps (a file's rx_seq_start is not where
 *                                 the previous one ended: rx packets a failed
 *                                 write lost, seq_gap_packets), gone_links (links
 *                                 into segments before the first present one)
 *                                 and deleted records (count, segments, packets)
 *   mc_check deleted TRACE...     the DELETED records of the files (one line each),
 *                                 then their stream stats line
 *   mc_check causal UP DOWN       pairs UP's accepted tx packets with DOWN's rx
 *                                 packets in order: pairs, inverted (rx before
 *                                 tx), worst_us, mismatched (wire IDs differ)
 *   mc_check anchors TRACE...     same_hz=0|1 and spread_us: how far apart the
 *                                 files put realtime - tsc / tsc_hz
 *
 * stats checks what must hold in any collector trace: records in TSC order,
 * flows defined before use, tx links pointing at earlier rx packets of the
 * file and each rx packet sent at most once; drops by reason, and whether
 * each dropped rx seq exists, was neither sent nor dropped before, and
 * carries that packet's wire ID (when known). Exit 0, or 1 when a file could
 * not be read to its end (stats still prints what was read; end=error).
 */
#include <inttypes.h>
#include <pcap/pcap.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mscope_trace.h"

static int
cmd_pcap(const char *path)
{
	char errbuf[PCAP_ERRBUF_SIZE];
	struct pcap_pkthdr *h;
	const u_char *data;
	pcap_t *p = pcap_open_offline(path, errbuf);
	int rc;

	if (p == NULL) {
		fprintf(stderr, "mc_check: %s: %s\n", path, errbuf);
		return 1;
	}
	while ((rc = pcap_next_ex(p, &h, &data)) == 1)
		/* net_pcap hands the captured bytes to the NF: caplen is the frame length */
		printf("%08x\n", mscope_wire_id(data, h->caplen, h->caplen));
	pcap_close(p);
	return rc == PCAP_ERROR_BREAK ? 0 : 1;
}

static int
cmd_ids(const char *path, bool rx)
{
	struct mscope_trace_error err;
	struct mscope_trace_reader *r = mscope_reader_open(path, &err);
	struct mscope_record rec;
	int rc;

	if (r == NULL) {
		fprintf(stderr, "mc_check: %s: offset %" PRIu64 ": %s\n", err.file, err.offset,
			err.text);
		return 1;
	}
	while ((rc = mscope_reader_next(r, &rec, &err)) == 1) {
		if (rx && rec.type == MSCOPE_REC_RX)
			for (uint32_t i = 0; i < rec.u.rx.n; i++)
				printf("%08x\n", rec.u.rx.wire_id[i]);
		if (!rx && rec.type == MSCOPE_REC_TX)
			for (uint32_t i = 0; i < rec.u.tx.accepted; i++)
				printf("%08x\n", rec.u.tx.wire_id[i]);
	}
	if (rc < 0)
		fprintf(stderr, "mc_check: %s: offset %" PRIu64 ": %s\n", err.file, err.offset,
			err.text);
	mscope_reader_close(r);
	return rc < 0;
}

/* (wire ID, TSC) of every rx or accepted tx packet of a trace. */
struct times {
	uint32_t *wire;
	uint64_t *tsc;
	size_t n, cap;
	uint64_t hz;
};

static int
get_times(const char *path, bool rx, struct times *t)
{
	struct mscope_trace_error err;
	struct mscope_trace_reader *r = mscope_reader_open(path, &err);
	struct mscope_record rec;
	int rc;

	memset(t, 0, sizeof(*t));
	if (r == NULL) {
		fprintf(stderr, "mc_check: %s: offset %" PRIu64 ": %s\n", err.file, err.offset,
			err.text);
		return 1;
	}
	t->hz = mscope_reader_header(r)->tsc_hz;
	while ((rc = mscope_reader_next(r, &rec, &err)) == 1) {
		uint32_t k;
		const uint32_t *w;
		uint64_t tsc;

		if (rx && rec.type == MSCOPE_REC_RX) {
			k = rec.u.rx.n;
			w = rec.u.rx.wire_id;
			tsc = rec.u.rx.tsc;
		} else if (!rx && rec.type == MSCOPE_REC_TX) {
			k = rec.u.tx.accepted;
			w = rec.u.tx.wire_id;
			tsc = rec.u.tx.tsc;
		} else {
			continue;
		}
		if (t->n + k > t->cap) {
			t->cap = (t->n + k) * 2;
			t->wire = realloc(t->wire, t->cap * sizeof(*t->wire));
			t->tsc = realloc(t->tsc, t->cap * sizeof(*t->tsc));
			if (t->wire == NULL || t->tsc == NULL)
				abort();
		}
		for (uint32_t i = 0; i < k; i++) {
			t->wire[t->n] = w[i];
			t->tsc[t->n++] = tsc;
		}
	}
	if (rc < 0)
		fprintf(stderr, "mc_check: %s: offset %" PRIu64 ": %s\n", err.file, err.offset,
			err.text);
	mscope_reader_close(r);
	return rc < 0;
}

static int
cmd_causal(const char *up, const char *down)
{
	struct times u, d;
	uint64_t inverted = 0, mismatched = 0, worst = 0;
	size_t n;
	int rc = get_times(up, false, &u) | get_times(down, true, &d);

	n = u.n < d.n ? u.n : d.n;
	for (size_t i = 0; i < n; i++) {
		if (u.wire[i] != d.wire[i])
			mismatched++;
		if (d.tsc[i] < u.tsc[i]) {
			inverted++;
			if (u.tsc[i] - d.tsc[i] > worst)
				worst = u.tsc[i] - d.tsc[i];
		}
	}
	printf("causal pairs=%zu inverted=%" PRIu64 " worst_us=%.1f mismatched=%" PRIu64 "\n", n,
	       inverted, u.hz ? (double)worst * 1e6 / (double)u.hz : 0.0, mismatched);
	free(u.wire);
	free(u.tsc);
	free(d.wire);
	free(d.tsc);
	return rc;
}

static int
cmd_anchors(int n, char **paths)
{
	double lo = 0, hi = 0;
	uint64_t hz0 = 0;
	bool same = true;

	for (int i = 0; i < n; i++) {
		struct mscope_trace_error err;
		struct mscope_trace_reader *r = mscope_reader_open(paths[i], &err);
		const struct mscope_trace_header *h;
		double off;

		if (r == NULL) {
			fprintf(stderr, "mc_check: %s: %s\n", err.file, err.text);
			return 1;
		}
		h = mscope_reader_header(r);
		off = (double)h->anchor_realtime_ns - (double)h->anchor_tsc * 1e9 / (double)h->tsc_hz;
		if (i == 0) {
			hz0 = h->tsc_hz;
			lo = hi = off;
		}
		same &= h->tsc_hz == hz0;
		lo = off < lo ? off : lo;
		hi = off > hi ? off : hi;
		mscope_reader_close(r);
	}
	printf("anchors same_hz=%d spread_us=%.1f\n", same, (hi - lo) / 1e3);
	return 0;
}

struct counts {
	uint64_t rx, rx_rec, qdepth, hwts;
	uint64_t tx_rec, offered, accepted, linked, unlinked, dup_links, bad_links;
	uint64_t flows, bad_flows, flowless_ip, loss_rec, loss_pkt, drops, clocks;
	uint64_t drops_nf, drops_refused, drops_seq, drop_dups, drop_bad, drop_wire_bad;
	uint64_t *rx_wire; /* per rx seq */
	uint64_t out_of_order;
	/* streams of segments */
	uint64_t base;     /* rx seq of the first rx packet of the first file */
	uint64_t segments, seg_gaps, seq_gaps, gone_links, deleted, deleted_pkts;
	uint64_t deleted_recs, drop_rec, seq_gap_pkts;
	uint64_t burst_first, burst_last; /* TSC of the first and last rx/tx/drop record */
	char deleted_list[512];
	uint16_t tx_port;
	bool tx_ports_mixed;
};

static bool print_deleted; /* mc_check deleted: one line per DELETED record */

/* What stats keeps across the files of a stream. */
struct stats {
	struct counts c;
	uint8_t *sent;     /* per rx seq - base: linked by a tx (1), dropped (2) */
	size_t sent_cap;
	uint64_t last_tsc;
	bool have_tx_port;
	int64_t prev_segment;
};

static void
print_stats(const char *path, const struct mscope_trace_header *h, const struct stats *st,
	    int rc, bool stream)
{
	const struct counts *c = &st->c;

	printf("file=%s role=%s port=%u queue=%u nf=%s run_id=%s writer=%s tsc_hz=%" PRIu64
	       " rx=%" PRIu64 " rx_records=%" PRIu64 " qdepth_samples=%" PRIu64
	       " tx_records=%" PRIu64 " offered=%" PRIu64 " accepted=%" PRIu64
	       " refused=%" PRIu64 " linked=%" PRIu64 " unlinked=%" PRIu64
	       " dup_links=%" PRIu64 " bad_links=%" PRIu64 " flows=%" PRIu64
	       " bad_flows=%" PRIu64 " loss_records=%" PRIu64 " loss_packets=%" PRIu64
	       " drops=%" PRIu64 " drops_nf=%" PRIu64 " drops_refused=%" PRIu64
	       " drops_seq=%" PRIu64 " drop_dups=%" PRIu64 " drop_bad=%" PRIu64
	       " drop_wire_bad=%" PRIu64 " clocks=%" PRIu64 " out_of_order=%" PRIu64
	       " tx_port=%d segment=%u rx_seq_start=%" PRIu64 " deleted=%" PRIu64
	       " deleted_packets=%" PRIu64 " deleted_records=%" PRIu64 " deleted_segments=%s"
	       " burst_records=%" PRIu64 " burst_packets=%" PRIu64 " burst_first=%" PRIu64
	       " burst_last=%" PRIu64,
	       path, h->role == MSCOPE_ROLE_SOURCE ? "source" : "rxq", h->port, h->queue,
	       h->nf_name, h->run_id[0] ? h->run_id : "-", h->writer, h->tsc_hz, c->rx - c->base - c->seq_gap_pkts,
	       c->rx_rec, c->qdepth, c->tx_rec, c->offered, c->accepted, c->offered - c->accepted,
	       c->linked, c->unlinked, c->dup_links, c->bad_links, c->flows, c->bad_flows,
	       c->loss_rec, c->loss_pkt, c->drops, c->drops_nf, c->drops_refused, c->drops_seq,
	       c->drop_dups, c->drop_bad, c->drop_wire_bad, c->clocks, c->out_of_order,
	       st->have_tx_port ? (c->tx_ports_mixed ? -2 : c->tx_port) : -1, h->segment,
	       h->rx_seq_start, c->deleted, c->deleted_pkts, c->deleted_recs,
	       c->deleted_list[0] ? c->deleted_list : "-", c->rx_rec + c->tx_rec + c->drop_rec,
	       c->rx - c->base - c->seq_gap_pkts + c->accepted + c->drops, c->burst_first,
	       c->burst_last);
	if (stream)
		printf(" segments=%" PRIu64 " seg_gaps=%" PRIu64 " seq_gaps=%" PRIu64
		       " seq_gap_packets=%" PRIu64 " gone_links=%" PRIu64, c->segments, c->seg_gaps,
		       c->seq_gaps, c->seq_gap_pkts, c->gone_links);
	printf(" end=%s\n", rc == 0 ? "clean" : "error");
}

/* Read one file into st (a stream's files one after the other). */
static int
stats_file(const char *path, struct stats *st, bool stream, bool last)
{
	struct mscope_trace_error err;
	struct mscope_trace_reader *r = mscope_reader_open(path, &err);
	const struct mscope_trace_header *h;
	struct mscope_record rec;
	struct counts *cp = &st->c;
	uint8_t *defined = NULL;  /* per flow ref: flows are defined per file */
	size_t def_cap = 0;
	int rc;

	if (r == NULL) {
		printf("file=%s end=error:open\n", path);
		fprintf(stderr, "mc_check: %s: offset %" PRIu64 ": %s\n", err.file, err.offset,
			err.text);
		return 1;
	}
	h = mscope_reader_header(r);
	if (cp->segments == 0) {
		cp->base = cp->rx = h->rx_seq_start;
	} else {
		if ((int64_t)h->segment != st->prev_segment + 1)
			cp->seg_gaps++;
		if (h->rx_seq_start != cp->rx)
			cp->seq_gaps++;
		if (h->rx_seq_start > cp->rx) {
			/* rx packets that were not written (counted in a LOSS record) */
			const uint64_t need = h->rx_seq_start - cp->base;

			if (need > st->sent_cap) {
				size_t nc = st->sent_cap ? st->sent_cap : 4096;

				while (nc < need)
					nc *= 2;
				st->sent = realloc(st->sent, nc);
				memset(st->sent + st->sent_cap, 0, nc - st->sent_cap);
				cp->rx_wire = realloc(cp->rx_wire, nc * sizeof(*cp->rx_wire));
				st->sent_cap = nc;
			}
			for (uint64_t s = cp->rx; s < h->rx_seq_start; s++)
				cp->rx_wire[s - cp->base] = 0;
			cp->seq_gap_pkts += h->rx_seq_start - cp->rx;
			cp->rx = h->rx_seq_start;
		}
	}
	st->prev_segment = h->segment;
	cp->segments++;
#define c (*cp)
#define sent st->sent
#define sent_cap st->sent_cap
#define last_tsc st->last_tsc
#define have_tx_port st->have_tx_port
	while ((rc = mscope_reader_next(r, &rec, &err)) == 1) {
		uint64_t tsc = 0;

		switch (rec.type) {
		case MSCOPE_REC_RX: {
			const struct mscope_rx_burst *b = &rec.u.rx;

			tsc = b->tsc;
			c.rx_rec++;
			if (b->qdepth != MSCOPE_QDEPTH_UNKNOWN)
				c.qdepth++;
			if (b->hw_ts != NULL)
				c.hwts++;
			for (uint32_t i = 0; i < b->n; i++)
				if (b->flow[i] >= def_cap || !defined[b->flow[i]])
					c.bad_flows++;
			c.rx += b->n;
			if (c.rx - c.base > sent_cap) {
				size_t nc = sent_cap ? sent_cap : 4096;

				while (nc < c.rx - c.base)
					nc *= 2;
				sent = realloc(sent, nc);
				memset(sent + sent_cap, 0, nc - sent_cap);
				c.rx_wire = realloc(c.rx_wire, nc * sizeof(*c.rx_wire));
				sent_cap = nc;
			}
			for (uint32_t i = 0; i < b->n; i++)
				c.rx_wire[c.rx - c.base - b->n + i] = b->wire_id[i];
			break;
		}
		case MSCOPE_REC_TX: {
			const struct mscope_tx_burst *b = &rec.u.tx;

			tsc = b->tsc;
			c.tx_rec++;
			c.offered += b->offered;
			c.accepted += b->accepted;
			if (have_tx_port && b->port != c.tx_port)
				c.tx_ports_mixed = true;
			c.tx_port = b->port;
			have_tx_port = true;
			for (uint32_t i = 0; i < b->accepted; i++) {
				const uint64_t s = b->rx_seq[i];

				if (s == MSCOPE_NO_LINK) {
					c.unlinked++;
				} else if (s >= c.rx) {
					c.bad_links++;
				} else if (s < c.base) {
					c.linked++;
					c.gone_links++; /* in a segment deleted or not given */
				} else {
					c.linked++;
					if (sent[s - c.base])
						c.dup_links++;
					sent[s - c.base] |= 1;
				}
				if (b->flow != NULL && (b->flow[i] >= def_cap || !defined[b->flow[i]]))
					c.bad_flows++;
			}
			break;
		}
		case MSCOPE_REC_FLOW: {
			const uint32_t ref = rec.u.flow.ref;

			c.flows++;
			if (ref >= def_cap) {
				size_t nc = def_cap ? def_cap : 1024;

				while (nc <= ref)
					nc *= 2;
				defined = realloc(defined, nc);
				memset(defined + def_cap, 0, nc - def_cap);
				def_cap = nc;
			}
			defined[ref] = 1;
			break;
		}
		case MSCOPE_REC_LOSS:
			tsc = rec.u.loss.tsc;
			c.loss_rec += rec.u.loss.records;
			c.loss_pkt += rec.u.loss.packets;
			break;
		case MSCOPE_REC_DROP: {
			const struct mscope_drop *d = &rec.u.drop;

			tsc = d->tsc;
			c.drops += d->n;
			c.drop_rec++;
			if (d->reason == MSCOPE_DROP_NF)
				c.drops_nf += d->n;
			if (d->reason == MSCOPE_DROP_TX_REFUSED)
				c.drops_refused += d->n;
			for (uint32_t i = 0; d->rx_seq != NULL && i < d->n; i++) {
				const uint64_t s = d->rx_seq[i];

				if (s == MSCOPE_NO_LINK)
					continue;
				c.drops_seq++;
				if (s >= c.rx) {
					c.drop_bad++;
					continue;
				}
				if (s < c.base) {
					c.gone_links++;
					continue;
				}
				/* dropped twice, or dropped and sent */
				if (sent[s - c.base])
					c.drop_dups++;
				sent[s - c.base] |= 2;
				if (d->wire_id[i] != 0 && d->wire_id[i] != c.rx_wire[s - c.base])
					c.drop_wire_bad++;
			}
			break;
		}
		case MSCOPE_REC_DELETED: {
			const struct mscope_deleted *d = &rec.u.deleted;
			const size_t l = strlen(c.deleted_list);

			tsc = d->tsc;
			c.deleted++;
			c.deleted_pkts += d->packets;
			c.deleted_recs += d->records;
			if (l + 12 < sizeof(c.deleted_list))
				snprintf(c.deleted_list + l, sizeof(c.deleted_list) - l, "%s%u",
					 l ? "," : "", d->segment);
			if (print_deleted)
				printf("deleted segment=%u records=%" PRIu64 " packets=%" PRIu64
				       " tsc_first=%" PRIu64 " tsc_last=%" PRIu64 "\n", d->segment,
				       d->records, d->packets, d->tsc_first, d->tsc_last);
			break;
		}
		case MSCOPE_REC_CLOCK:
			tsc = rec.u.clock.tsc;
			c.clocks++;
			break;
		}
		if (rec.type == MSCOPE_REC_RX || rec.type == MSCOPE_REC_TX ||
		    rec.type == MSCOPE_REC_DROP) {
			if (c.rx_rec + c.tx_rec + c.drop_rec == 1)
				c.burst_first = tsc;
			c.burst_last = tsc;
		}
		if (tsc != 0) {
			if (tsc < last_tsc)
				c.out_of_order++;
			last_tsc = tsc;
		}
	}
#undef c
#undef sent
#undef sent_cap
#undef last_tsc
#undef have_tx_port
	if (!stream || last || rc < 0)
		print_stats(path, h, st, rc, stream);
	if (rc < 0)
		fprintf(stderr, "mc_check: %s: offset %" PRIu64 ": %s\n", err.file, err.offset,
			err.text);
	free(defined);
	mscope_reader_close(r);
	return rc < 0;
}

static int
stats_files(int n, char **paths, bool stream)
{
	struct stats st;
	int rc = 0;

	memset(&st, 0, sizeof(st));
	for (int i = 0; i < n; i++) {
		if (!stream) {
			free(st.sent);
			free(st.c.rx_wire);
			memset(&st, 0, sizeof(st));
		}
		rc |= stats_file(paths[i], &st, stream, i == n - 1);
	}
	free(st.sent);
	free(st.c.rx_wire);
	return rc;
}

int
main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: mc_check pcap FILE | rx-ids TRACE | tx-ids TRACE | "
				"stats TRACE... | stream SEGMENT... | causal UP DOWN | anchors TRACE...\n");
		return 2;
	}
	if (strcmp(argv[1], "pcap") == 0)
		return cmd_pcap(argv[2]);
	if (strcmp(argv[1], "rx-ids") == 0)
		return cmd_ids(argv[2], true);
	if (strcmp(argv[1], "tx-ids") == 0)
		return cmd_ids(argv[2], false);
	if (strcmp(argv[1], "deleted") == 0) {
		print_deleted = true;
		return stats_files(argc - 2, argv + 2, true) != 0;
	}
	if (strcmp(argv[1], "stats") == 0 || strcmp(argv[1], "stream") == 0)
		return stats_files(argc - 2, argv + 2, strcmp(argv[1], "stream") == 0);
	if (strcmp(argv[1], "causal") == 0 && argc == 4)
		return cmd_causal(argv[2], argv[3]);
	if (strcmp(argv[1], "anchors") == 0)
		return cmd_anchors(argc - 2, argv + 2);
	fprintf(stderr, "mc_check: unknown command %s\n", argv[1]);
	return 2;
}
