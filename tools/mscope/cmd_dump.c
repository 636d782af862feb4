/* SPDX-License-Identifier: BSD-3-Clause */
/* `mscope dump`: print trace files as text, JSON lines or statistics. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "commands.h"
#include "mscope_trace.h"

struct dump_opts {
	bool json;
	bool stats;
	bool brief;
	bool index;         /* print the frame table instead of records */
	bool window;        /* --from / --to given */
	uint64_t from, to;  /* TSC window */
	bool ratio_set;
	unsigned max_ratio;
	unsigned types;     /* bit per enum mscope_rec_type to print; 0 = all */
};

struct dump_stats {
	uint64_t recs[MSCOPE_REC_DELETED + 1];
	uint64_t del_records, del_packets;
	uint64_t rx_pkts, tx_offered, tx_accepted, drop_pkts;
	uint64_t drops[256];
	uint64_t loss_records, loss_packets;
	uint64_t first_tsc, last_tsc;
	bool have_tsc;
	bool saturated;     /* a sum reached 2^64-1 and stopped there */
};

/* a += b, stopping at UINT64_MAX (hostile counts must not wrap) */
static void
sat_add(struct dump_stats *st, uint64_t *a, uint64_t b)
{
	if (*a > UINT64_MAX - b) {
		*a = UINT64_MAX;
		st->saturated = true;
	} else {
		*a += b;
	}
}

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: mscope dump [OPTIONS] FILE...\n"
		"\n"
		"Print mscope trace files: the header, then one line per record.\n"
		"\n"
		"output:\n"
		"  -j, --json     JSON lines: one object for the header, one per record\n"
		"  -s, --stats    only statistics: record counts, time range, packets\n"
		"                 rx/tx/accepted/refused/dropped, bytes per packet, losses\n"
		"  -b, --brief    text and JSON: leave out the per-packet arrays\n"
		"  -t, --type T,..  print only these record types (rx, tx, drop, flow,\n"
		"                 loss, clock, deleted); --stats still counts all\n"
		"  -i, --index    print each file's frame table (offset, sizes, time range,\n"
		"                 counts) from its seek table, or say it was rebuilt\n"
		"      --from TSC, --to TSC  only the frames overlapping this time window\n"
		"                 (found through the index; flow definitions come first)\n"
		"      --max-ratio N  refuse frames decoding to more than N x their size\n"
		"                 (default %u; 0: no bound)\n"
		"  -h, --help     this help\n"
		"\n"
		"The segment files of one node (same nf, port, queue, pid, run) are read\n"
		"as one stream in segment order; missing oldest segments are fine, a\n"
		"missing middle one shows as a loss record.\n"
		"\n"
		"Exit status: 0 all files read to their end; 1 a file is missing,\n"
		"truncated or corrupt (what could be read is printed first, then the\n"
		"error with file and byte offset on stderr); 2 usage error.\n",
		MSCOPE_MAX_RATIO_DEFAULT);
}

static double
tsc_seconds(const struct mscope_trace_header *h, uint64_t dtsc)
{
	return h->tsc_hz ? (double)dtsc / (double)h->tsc_hz : 0.0;
}

static const char *
role_name(uint8_t role)
{
	switch (role) {
	case MSCOPE_ROLE_RXQ: return "rxq";
	case MSCOPE_ROLE_SOURCE: return "source";
	default: return "unknown";
	}
}

static void
addr_text(const struct mscope_flow_key *k, const uint8_t *a, char *buf, size_t len)
{
	if (k->family == 4)
		inet_ntop(AF_INET, a, buf, (socklen_t)len);
	else if (k->family == 6)
		inet_ntop(AF_INET6, a, buf, (socklen_t)len);
	else
		snprintf(buf, len, "%s", "");
}

/*
 * Header strings and file names come from untrusted files: control bytes,
 * backslash and non-ASCII print as \xNN so nothing reaches the terminal raw.
 * Returns buf (rotating among 4, so one printf may use several).
 */
static const char *
esc(const char *s)
{
	static char bufs[4][4 * 256 + 1];
	static unsigned k;
	char *b = bufs[k++ % 4], *p = b;

	for (size_t i = 0; s[i] && p - b < 4 * 255; i++) {
		const unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c >= 0x7f || c == '\\')
			p += sprintf(p, "\\x%02x", c);
		else
			*p++ = (char)c;
	}
	*p = '\0';
	return b;
}

/* ------------------------------------------------------------------ text */

static void
text_header(const char *file, const struct mscope_trace_header *h)
{
	printf("# file %s\n", esc(file));
	printf("# version %u role %s nf %s port %u queue %u host %s pid %u\n", h->version,
	       role_name(h->role), esc(h->nf_name), h->port, h->queue, esc(h->host), h->pid);
	printf("# tsc_hz %" PRIu64 " anchor_tsc %" PRIu64 " anchor_realtime_ns %" PRId64 "\n",
	       h->tsc_hz, h->anchor_tsc, h->anchor_realtime_ns);
	printf("# run_id %s writer %s %s\n", h->run_id[0] ? esc(h->run_id) : "-", esc(h->writer),
	       esc(h->writer_version));
	printf("# segment %u rx_seq_start %" PRIu64 "\n", h->segment, h->rx_seq_start);
}

static void
text_seq(uint64_t s)
{
	if (s == MSCOPE_NO_LINK)
		fputs("-", stdout);
	else
		printf("%" PRIu64, s);
}

static void
text_record(const struct mscope_record *rec, const struct dump_opts *o)
{
	char buf[128];

	switch (rec->type) {
	case MSCOPE_REC_RX: {
		const struct mscope_rx_burst *rx = &rec->u.rx;

		printf("rx    tsc %" PRIu64 " seq %" PRIu64 " n %u qdepth ", rx->tsc,
		       rx->first_seq, rx->n);
		if (rx->qdepth == MSCOPE_QDEPTH_UNKNOWN)
			fputs("-", stdout);
		else
			printf("%d", rx->qdepth);
		if (!o->brief)
			for (uint32_t i = 0; i < rx->n; i++) {
				printf(" %08x/f%u", rx->wire_id[i], rx->flow[i]);
				if (rx->hw_ts)
					printf("@%" PRIu64, rx->hw_ts[i]);
			}
		putchar('\n');
		break;
	}
	case MSCOPE_REC_TX: {
		const struct mscope_tx_burst *tx = &rec->u.tx;

		printf("tx    tsc %" PRIu64 " port %u queue %u offered %u accepted %u", tx->tsc,
		       tx->port, tx->queue, tx->offered, tx->accepted);
		if (!o->brief)
			for (uint32_t i = 0; i < tx->accepted; i++) {
				printf(" %08x<", tx->wire_id[i]);
				text_seq(tx->rx_seq[i]);
				if (tx->flow)
					printf("/f%u", tx->flow[i]);
			}
		putchar('\n');
		break;
	}
	case MSCOPE_REC_DROP: {
		const struct mscope_drop *d = &rec->u.drop;

		printf("drop  tsc %" PRIu64 " reason %s n %u", d->tsc,
		       mscope_drop_reason_name(d->reason), d->n);
		if (d->reason > MSCOPE_DROP_REASON_MAX)
			printf(" (reason code %u)", d->reason);
		if (!o->brief)
			for (uint32_t i = 0; i < d->n; i++) {
				printf(" %08x", d->wire_id[i]);
				if (d->rx_seq) {
					putchar('<');
					text_seq(d->rx_seq[i]);
				}
				if (d->flow)
					printf("/f%u", d->flow[i]);
			}
		putchar('\n');
		break;
	}
	case MSCOPE_REC_FLOW:
		printf("flow  f%u %s\n", rec->u.flow.ref,
		       mscope_flow_format(&rec->u.flow.key, buf, sizeof(buf)));
		break;
	case MSCOPE_REC_LOSS:
		printf("loss  tsc %" PRIu64 " records %" PRIu64 " packets %" PRIu64 "\n",
		       rec->u.loss.tsc, rec->u.loss.records, rec->u.loss.packets);
		break;
	case MSCOPE_REC_CLOCK:
		printf("clock tsc %" PRIu64 " realtime_ns %" PRId64 "\n", rec->u.clock.tsc,
		       rec->u.clock.realtime_ns);
		break;
	case MSCOPE_REC_DELETED: {
		const struct mscope_deleted *d = &rec->u.deleted;

		printf("deleted tsc %" PRIu64 " segment %u tsc_first %" PRIu64 " tsc_last %" PRIu64
		       " records %" PRIu64 " packets %" PRIu64 "\n", d->tsc, d->segment,
		       d->tsc_first, d->tsc_last, d->records, d->packets);
		break;
	}
	}
}

/* ------------------------------------------------------------------ json */

static void
json_print(json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);

	if (s) {
		puts(s);
		free(s);
	}
	json_decref(o);
}

static json_t *
json_u32s(const uint32_t *a, uint32_t n)
{
	json_t *arr = json_array();

	for (uint32_t i = 0; i < n; i++)
		json_array_append_new(arr, json_integer(a[i]));
	return arr;
}

static json_t *
json_u64(uint64_t v)
{
	/* JSON integers are int64 in jansson: keep exactness for huge values */
	if (v > (uint64_t)INT64_MAX) {
		char b[24];

		snprintf(b, sizeof(b), "%" PRIu64, v);
		return json_string(b);
	}
	return json_integer((json_int_t)v);
}

static json_t *
json_seqs(const uint64_t *a, uint32_t n)
{
	json_t *arr = json_array();

	for (uint32_t i = 0; i < n; i++)
		json_array_append_new(arr, a[i] == MSCOPE_NO_LINK ? json_null() : json_u64(a[i]));
	return arr;
}

/* A JSON string of untrusted bytes: as is when valid UTF-8, else escaped. */
static json_t *
json_str(const char *s)
{
	json_t *j = json_string(s);

	return j ? j : json_string(esc(s));
}

static void
json_header(const char *file, const struct mscope_trace_header *h)
{
	json_print(json_pack("{s:s, s:o, s:i, s:s, s:o, s:i, s:i, s:o, s:I, s:o, s:o, s:I, s:o, s:o, s:o, s:I, s:o}",
			     "type", "header", "file", json_str(file), "version", (int)h->version,
			     "role", role_name(h->role), "nf_name", json_str(h->nf_name),
			     "port", (int)h->port, "queue", (int)h->queue, "host", json_str(h->host),
			     "pid", (json_int_t)h->pid, "tsc_hz", json_u64(h->tsc_hz),
			     "anchor_tsc", json_u64(h->anchor_tsc),
			     "anchor_realtime_ns", (json_int_t)h->anchor_realtime_ns,
			     "run_id", json_str(h->run_id), "writer", json_str(h->writer),
			     "writer_version", json_str(h->writer_version),
			     "segment", (json_int_t)h->segment,
			     "rx_seq_start", json_u64(h->rx_seq_start)));
}

static void
json_record(const struct mscope_record *rec, const struct dump_opts *o)
{
	json_t *j = json_object();
	char buf[128];

	switch (rec->type) {
	case MSCOPE_REC_RX: {
		const struct mscope_rx_burst *rx = &rec->u.rx;

		json_object_set_new(j, "type", json_string("rx"));
		json_object_set_new(j, "tsc", json_u64(rx->tsc));
		json_object_set_new(j, "first_seq", json_u64(rx->first_seq));
		json_object_set_new(j, "n", json_integer(rx->n));
		json_object_set_new(j, "qdepth", rx->qdepth == MSCOPE_QDEPTH_UNKNOWN ?
				    json_null() : json_integer(rx->qdepth));
		if (!o->brief) {
			json_object_set_new(j, "wire_id", json_u32s(rx->wire_id, rx->n));
			json_object_set_new(j, "flow", json_u32s(rx->flow, rx->n));
			if (rx->hw_ts) {
				json_t *a = json_array();

				for (uint32_t i = 0; i < rx->n; i++)
					json_array_append_new(a, json_u64(rx->hw_ts[i]));
				json_object_set_new(j, "hw_ts", a);
			}
		}
		break;
	}
	case MSCOPE_REC_TX: {
		const struct mscope_tx_burst *tx = &rec->u.tx;

		json_object_set_new(j, "type", json_string("tx"));
		json_object_set_new(j, "tsc", json_u64(tx->tsc));
		json_object_set_new(j, "port", json_integer(tx->port));
		json_object_set_new(j, "queue", json_integer(tx->queue));
		json_object_set_new(j, "offered", json_integer(tx->offered));
		json_object_set_new(j, "accepted", json_integer(tx->accepted));
		if (!o->brief) {
			json_object_set_new(j, "wire_id", json_u32s(tx->wire_id, tx->accepted));
			json_object_set_new(j, "rx_seq", json_seqs(tx->rx_seq, tx->accepted));
			if (tx->flow)
				json_object_set_new(j, "flow", json_u32s(tx->flow, tx->accepted));
		}
		break;
	}
	case MSCOPE_REC_DROP: {
		const struct mscope_drop *d = &rec->u.drop;

		json_object_set_new(j, "type", json_string("drop"));
		json_object_set_new(j, "tsc", json_u64(d->tsc));
		json_object_set_new(j, "reason", json_string(mscope_drop_reason_name(d->reason)));
		json_object_set_new(j, "reason_code", json_integer(d->reason));
		json_object_set_new(j, "n", json_integer(d->n));
		if (!o->brief) {
			json_object_set_new(j, "wire_id", json_u32s(d->wire_id, d->n));
			if (d->rx_seq)
				json_object_set_new(j, "rx_seq", json_seqs(d->rx_seq, d->n));
			if (d->flow)
				json_object_set_new(j, "flow", json_u32s(d->flow, d->n));
		}
		break;
	}
	case MSCOPE_REC_FLOW: {
		const struct mscope_flow_key *k = &rec->u.flow.key;
		char s[64], dst[64];

		addr_text(k, k->src, s, sizeof(s));
		addr_text(k, k->dst, dst, sizeof(dst));
		json_object_set_new(j, "type", json_string("flow"));
		json_object_set_new(j, "ref", json_integer(rec->u.flow.ref));
		json_object_set_new(j, "family", json_integer(k->family));
		json_object_set_new(j, "proto", json_integer(k->proto));
		json_object_set_new(j, "src", json_string(s));
		json_object_set_new(j, "sport", json_integer(k->sport));
		json_object_set_new(j, "dst", json_string(dst));
		json_object_set_new(j, "dport", json_integer(k->dport));
		json_object_set_new(j, "text", json_string(mscope_flow_format(k, buf, sizeof(buf))));
		break;
	}
	case MSCOPE_REC_LOSS:
		json_object_set_new(j, "type", json_string("loss"));
		json_object_set_new(j, "tsc", json_u64(rec->u.loss.tsc));
		json_object_set_new(j, "records", json_u64(rec->u.loss.records));
		json_object_set_new(j, "packets", json_u64(rec->u.loss.packets));
		break;
	case MSCOPE_REC_CLOCK:
		json_object_set_new(j, "type", json_string("clock"));
		json_object_set_new(j, "tsc", json_u64(rec->u.clock.tsc));
		json_object_set_new(j, "realtime_ns", json_integer(rec->u.clock.realtime_ns));
		break;
	case MSCOPE_REC_DELETED: {
		const struct mscope_deleted *d = &rec->u.deleted;

		json_object_set_new(j, "type", json_string("deleted"));
		json_object_set_new(j, "tsc", json_u64(d->tsc));
		json_object_set_new(j, "segment", json_integer(d->segment));
		json_object_set_new(j, "tsc_first", json_u64(d->tsc_first));
		json_object_set_new(j, "tsc_last", json_u64(d->tsc_last));
		json_object_set_new(j, "records", json_u64(d->records));
		json_object_set_new(j, "packets", json_u64(d->packets));
		break;
	}
	}
	json_print(j);
}

/* ------------------------------------------------------------------ stats */

static void
stats_add(struct dump_stats *st, const struct mscope_record *rec)
{
	uint64_t tsc = 0;
	bool timed = true;

	if ((unsigned)rec->type <= MSCOPE_REC_DELETED)
		st->recs[rec->type]++;
	switch (rec->type) {
	case MSCOPE_REC_RX:
		sat_add(st, &st->rx_pkts, rec->u.rx.n);
		tsc = rec->u.rx.tsc;
		break;
	case MSCOPE_REC_TX:
		sat_add(st, &st->tx_offered, rec->u.tx.offered);
		sat_add(st, &st->tx_accepted, rec->u.tx.accepted);
		tsc = rec->u.tx.tsc;
		break;
	case MSCOPE_REC_DROP:
		sat_add(st, &st->drop_pkts, rec->u.drop.n);
		sat_add(st, &st->drops[rec->u.drop.reason], rec->u.drop.n);
		tsc = rec->u.drop.tsc;
		break;
	case MSCOPE_REC_LOSS:
		sat_add(st, &st->loss_records, rec->u.loss.records);
		sat_add(st, &st->loss_packets, rec->u.loss.packets);
		tsc = rec->u.loss.tsc;
		break;
	case MSCOPE_REC_CLOCK:
		tsc = rec->u.clock.tsc;
		break;
	case MSCOPE_REC_DELETED:
		sat_add(st, &st->del_records, rec->u.deleted.records);
		sat_add(st, &st->del_packets, rec->u.deleted.packets);
		tsc = rec->u.deleted.tsc;
		break;
	default:
		timed = false;
	}
	if (timed) {
		if (!st->have_tsc || tsc < st->first_tsc)
			st->first_tsc = tsc;
		if (!st->have_tsc || tsc > st->last_tsc)
			st->last_tsc = tsc;
		st->have_tsc = true;
	}
}

static const char *const rec_names[] = { "?", "rx", "tx", "drop", "flow", "loss", "clock",
					 "deleted" };

static void
stats_print(const char *file, const struct mscope_trace_header *h,
	    const struct dump_stats *st, uint64_t bytes, bool complete, bool json)
{
	/* bytes per packet: per rx packet (its tx rides along); a source has only tx */
	const uint64_t pkts = st->rx_pkts ? st->rx_pkts : st->tx_accepted;
	const double bpp = pkts ? (double)bytes / (double)pkts : 0.0;
	const double t0 = st->have_tsc ? tsc_seconds(h, st->first_tsc - h->anchor_tsc) : 0;
	const double dur = st->have_tsc ? tsc_seconds(h, st->last_tsc - st->first_tsc) : 0;
	const bool t0_neg = st->have_tsc && st->first_tsc < h->anchor_tsc;

	if (json) {
		json_t *o = json_object(), *c = json_object(), *d = json_object();

		for (int i = 1; i <= MSCOPE_REC_DELETED; i++)
			json_object_set_new(c, rec_names[i], json_u64(st->recs[i]));
		for (int i = 0; i < 256; i++)
			if (st->drops[i])
				json_object_set_new(d, mscope_drop_reason_name((uint8_t)i),
						    json_u64(st->drops[i]));
		json_object_set_new(o, "type", json_string("stats"));
		json_object_set_new(o, "file", json_str(file));
		json_object_set_new(o, "nf_name", json_str(h->nf_name));
		json_object_set_new(o, "complete", json_boolean(complete));
		json_object_set_new(o, "records", c);
		json_object_set_new(o, "start_s", json_real(t0_neg ?
			-tsc_seconds(h, h->anchor_tsc - st->first_tsc) : t0));
		json_object_set_new(o, "duration_s", json_real(dur));
		json_object_set_new(o, "rx_packets", json_u64(st->rx_pkts));
		json_object_set_new(o, "tx_offered", json_u64(st->tx_offered));
		json_object_set_new(o, "tx_accepted", json_u64(st->tx_accepted));
		json_object_set_new(o, "tx_refused", json_u64(st->tx_offered - st->tx_accepted));
		json_object_set_new(o, "dropped", json_u64(st->drop_pkts));
		json_object_set_new(o, "drops", d);
		json_object_set_new(o, "lost_records", json_u64(st->loss_records));
		json_object_set_new(o, "lost_packets", json_u64(st->loss_packets));
		json_object_set_new(o, "deleted_segments", json_u64(st->recs[MSCOPE_REC_DELETED]));
		json_object_set_new(o, "deleted_records", json_u64(st->del_records));
		json_object_set_new(o, "deleted_packets", json_u64(st->del_packets));
		json_object_set_new(o, "bytes", json_u64(bytes));
		json_object_set_new(o, "bytes_per_packet", json_real(bpp));
		json_object_set_new(o, "saturated", json_boolean(st->saturated));
		json_print(o);
		return;
	}
	printf("file         %s%s\n", esc(file), complete ? "" : " (incomplete)");
	printf("node         %s port %u queue %u (%s) on %s, pid %u, by %s %s\n", esc(h->nf_name),
	       h->port, h->queue, role_name(h->role), esc(h->host), h->pid, esc(h->writer),
	       esc(h->writer_version));
	printf("records     ");
	for (int i = 1; i <= MSCOPE_REC_DELETED; i++)
		printf(" %s %" PRIu64, rec_names[i], st->recs[i]);
	putchar('\n');
	if (st->have_tsc)
		printf("time         %.6f s .. %.6f s after the anchor (%.6f s)\n",
		       t0_neg ? -tsc_seconds(h, h->anchor_tsc - st->first_tsc) : t0,
		       (t0_neg ? -tsc_seconds(h, h->anchor_tsc - st->first_tsc) : t0) + dur, dur);
	else
		printf("time         no timed records\n");
	printf("packets      rx %" PRIu64 " tx offered %" PRIu64 " accepted %" PRIu64
	       " refused %" PRIu64 " dropped %" PRIu64 "\n", st->rx_pkts, st->tx_offered,
	       st->tx_accepted, st->tx_offered - st->tx_accepted, st->drop_pkts);
	if (st->drop_pkts) {
		printf("drops       ");
		for (int i = 0; i < 256; i++)
			if (st->drops[i])
				printf(" %s %" PRIu64, mscope_drop_reason_name((uint8_t)i), st->drops[i]);
		putchar('\n');
	}
	printf("size         %" PRIu64 " bytes, %.2f bytes per %s packet\n", bytes, bpp,
	       st->rx_pkts ? "rx" : "tx");
	printf("losses       %" PRIu64 " records, %" PRIu64 " packets\n", st->loss_records,
	       st->loss_packets);
	if (st->recs[MSCOPE_REC_DELETED])
		printf("deleted      %" PRIu64 " segments, %" PRIu64 " records, %" PRIu64
		       " packets\n", st->recs[MSCOPE_REC_DELETED], st->del_records,
		       st->del_packets);
	if (st->saturated)
		printf("note         a counter reached 2^64-1 and stopped there (impossible counts)\n");
}

/* ------------------------------------------------------------------ main */

static void
print_err(const struct mscope_trace_error *err)
{
	fflush(stdout);
	fprintf(stderr, "mscope dump: %s: offset %" PRIu64 ": %s\n", esc(err->file), err->offset,
		esc(err->text));
}

/* The frame table of a file or stream. */
static int
dump_index(const char *label, struct mscope_trace_reader *r, const struct dump_opts *o,
	   struct mscope_trace_error *err)
{
	const struct mscope_frame_info *f;
	size_t n;
	int rebuilt;

	if (mscope_reader_index(r, &f, &n, &rebuilt, err) < 0)
		return -1;
	if (o->json)
		json_print(json_pack("{s:s, s:o, s:I, s:b, s:o}", "type", "index", "file",
				     json_str(label), "frames", (json_int_t)n, "rebuilt", rebuilt,
				     "note", json_str(mscope_reader_index_note(r))));
	else
		printf("# index %s: %zu frames, %s%s%s\n", esc(label), n,
		       rebuilt ? "rebuilt by a scan" : "from the seek table",
		       rebuilt ? ": " : "", rebuilt ? esc(mscope_reader_index_note(r)) : "");
	for (size_t i = 0; i < n; i++) {
		const struct mscope_frame_info *e = &f[i];

		if (o->json) {
			json_t *j = json_object();

			json_object_set_new(j, "type", json_string("frame"));
			json_object_set_new(j, "frame", json_integer((json_int_t)i));
			json_object_set_new(j, "segment", json_integer(e->segment));
			json_object_set_new(j, "offset", json_u64(e->offset));
			json_object_set_new(j, "csize", json_integer(e->csize));
			json_object_set_new(j, "rsize", json_integer(e->rsize));
			json_object_set_new(j, "tsc_first", json_u64(e->tsc_first));
			json_object_set_new(j, "tsc_last", json_u64(e->tsc_last));
			json_object_set_new(j, "rx_seq_first", json_u64(e->rx_seq_first));
			json_object_set_new(j, "records", json_integer(e->records));
			json_object_set_new(j, "rx", json_integer(e->rx_packets));
			json_object_set_new(j, "tx", json_integer(e->tx_packets));
			json_object_set_new(j, "drop", json_integer(e->drop_packets));
			json_print(j);
			continue;
		}
		printf("frame %zu segment %u offset %" PRIu64 " csize %u rsize %u ratio %.1f tsc %"
		       PRIu64 "..%" PRIu64 " rx_seq %" PRIu64 " records %u rx %u tx %u drop %u\n", i,
		       e->segment, e->offset, e->csize, e->rsize,
		       e->csize ? (double)e->rsize / e->csize : 0.0, e->tsc_first, e->tsc_last,
		       e->rx_seq_first, e->records, e->rx_packets, e->tx_packets, e->drop_packets);
	}
	return 0;
}

/* Dump one stream: a file, or the segment files of one node in order. */
static int
dump_stream(const struct mscope_trace_stream *sm, const struct dump_opts *o)
{
	const char *path = sm->paths[0];
	struct mscope_trace_error err;
	struct mscope_trace_reader *r;
	const struct mscope_trace_header *h;
	struct mscope_record rec;
	struct dump_stats st;
	struct stat sb;
	uint64_t bytes = 0;
	int rc;

	r = sm->npaths == 1 ? mscope_reader_open(path, &err) :
	    mscope_reader_open_segments((const char *const *)sm->paths, sm->npaths, &err);
	if (r == NULL) {
		print_err(&err);
		return 1;
	}
	if (o->ratio_set)
		mscope_reader_set_max_ratio(r, o->max_ratio);
	h = mscope_reader_header(r);
	memset(&st, 0, sizeof(st));
	if (!o->stats) {
		if (o->json)
			json_header(path, h);
		else
			text_header(path, h);
		if (sm->npaths > 1 && !o->json)
			printf("# stream of %zu segment files, segments %u.. (later files: %s ..)\n",
			       sm->npaths, h->segment, esc(sm->paths[1]));
	}
	if (o->index) {
		rc = dump_index(path, r, o, &err) < 0 ? -1 : 0;
		goto out;
	}
	if (o->window && mscope_reader_window(r, o->from, o->to, &err) < 0) {
		rc = -1;
		goto out;
	}
	while ((rc = mscope_reader_next(r, &rec, &err)) == 1) {
		if (!o->stats && o->types && !(o->types & 1u << rec.type))
			continue;
		if (o->stats)
			stats_add(&st, &rec);
		else if (o->json)
			json_record(&rec, o);
		else
			text_record(&rec, o);
	}
	if (o->stats) {
		if (rc == 0) {
			for (size_t i = 0; i < sm->npaths; i++)
				if (stat(sm->paths[i], &sb) == 0)
					bytes += (uint64_t)sb.st_size;
		} else {
			bytes = mscope_reader_offset(r);
		}
		stats_print(path, h, &st, bytes, rc == 0, o->json);
		if (mscope_reader_gaps(r) && !o->json)
			printf("gaps         %zu missing middle segments\n", mscope_reader_gaps(r));
	}
out:
	mscope_reader_close(r);
	if (rc < 0) {
		print_err(&err);
		return 1;
	}
	return 0;
}

/* Dump the given files: readable ones grouped into node streams. */
static int
dump_files(char **files, int n, const struct dump_opts *o)
{
	const char **ok = calloc((size_t)n, sizeof(*ok));
	struct mscope_trace_stream *sm = NULL;
	struct mscope_trace_error err;
	size_t nok = 0, nsm = 0;
	int rc = 0;

	if (ok == NULL)
		return 1;
	for (int i = 0; i < n; i++) {
		struct mscope_trace_reader *r = mscope_reader_open(files[i], &err);

		if (r == NULL) {
			print_err(&err);
			rc = 1;
			continue;
		}
		mscope_reader_close(r);
		ok[nok++] = files[i];
	}
	if (mscope_trace_group(ok, nok, &sm, &nsm, &err) < 0) {
		print_err(&err);
		free(ok);
		return 1;
	}
	for (size_t i = 0; i < nsm; i++)
		if (dump_stream(&sm[i], o) != 0)
			rc = 1;
	mscope_trace_group_free(sm, nsm);
	free(ok);
	return rc;
}

static int
parse_u64(const char *arg, uint64_t *v)
{
	char *end;

	errno = 0;
	*v = strtoull(arg, &end, 0);
	return errno || end == arg || *end || arg[0] == '-' ? -1 : 0;
}

/* "rx,tx" -> type bits; -1 on an unknown name. */
static int
parse_types(const char *arg, unsigned *bits)
{
	char buf[128], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", arg);
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		int k;

		for (k = 1; k <= MSCOPE_REC_DELETED; k++)
			if (!strcmp(t, rec_names[k]))
				break;
		if (k > MSCOPE_REC_DELETED) {
			fprintf(stderr, "mscope dump: unknown record type '%s' "
				"(rx, tx, drop, flow, loss, clock, deleted)\n", t);
			return -1;
		}
		*bits |= 1u << k;
	}
	return *bits ? 0 : -1;
}

int
cmd_dump(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "brief", no_argument, NULL, 'b' },
		{ "help", no_argument, NULL, 'h' },
		{ "json", no_argument, NULL, 'j' },
		{ "stats", no_argument, NULL, 's' },
		{ "type", required_argument, NULL, 't' },
		{ "index", no_argument, NULL, 'i' },
		{ "from", required_argument, NULL, 'F' },
		{ "to", required_argument, NULL, 'T' },
		{ "max-ratio", required_argument, NULL, 'R' },
		{ NULL, 0, NULL, 0 },
	};
	struct dump_opts o = { .to = UINT64_MAX };
	int c, rc = 0;
	uint64_t v;

	optind = 1;
	while ((c = getopt_long(argc, argv, "bhijst:", longopts, NULL)) != -1) {
		switch (c) {
		case 'i':
			o.index = true;
			break;
		case 'F':
		case 'T':
			if (parse_u64(optarg, c == 'F' ? &o.from : &o.to) < 0) {
				fprintf(stderr, "mscope dump: --%s wants a TSC value, not '%s'\n",
					c == 'F' ? "from" : "to", esc(optarg));
				return 2;
			}
			o.window = true;
			break;
		case 'R':
			if (parse_u64(optarg, &v) < 0 || v > UINT32_MAX) {
				fprintf(stderr, "mscope dump: --max-ratio wants a number, not '%s'\n",
					esc(optarg));
				return 2;
			}
			o.max_ratio = (unsigned)v;
			o.ratio_set = true;
			break;
		case 'b':
			o.brief = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'j':
			o.json = true;
			break;
		case 's':
			o.stats = true;
			break;
		case 't':
			if (parse_types(optarg, &o.types) < 0) {
				usage(stderr);
				return 2;
			}
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "mscope dump: no trace file given\n");
		usage(stderr);
		return 2;
	}
	if (o.window && o.to < o.from) {
		fprintf(stderr, "mscope dump: --to is before --from\n");
		return 2;
	}
	rc = dump_files(argv + optind, argc - optind, &o);
	if (fflush(stdout) != 0) {
		fprintf(stderr, "mscope dump: cannot write output\n");
		return 1;
	}
	return rc;
}
