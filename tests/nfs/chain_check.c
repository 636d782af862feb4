/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * chain_check DIR: checks a run of tools/mscope-chain from its traces alone,
 * against the NFs' own counters (DIR/stats/) and the topology (DIR/topology.json):
 *  - on every link, the wire IDs the upstream tx accepted for that port are,
 *    in order, exactly the wire IDs the downstream rx dequeued, never later
 *    than they arrived (one TSC on one host);
 *  - in every NF, each dequeued packet is linked (rx seq) by at most one sent
 *    packet; rx = linked tx + unlinked, and unlinked = the NF's own drops +
 *    refused, rx and tx equal the NF's counters;
 *  - every packet the source sent is followed hop by hop (wire ID across
 *    links, rx seq inside NFs, through NAT rewrites and VPN encapsulation) to
 *    the egress or to the NF that dropped it; sent = delivered + dropped;
 *  - at each NAT, every forwarded packet left with the public source address
 *    and the mapping of DIR/stats/NAME-nat-flows.json for its inner flow.
 * Prints a JSON summary (per NF: counts, the largest input queue computed from
 * upstream tx vs. rx times and when it peaked) and exits 1 on any violation.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "mscope_trace.h"

#define MAX_FILES 256
#define MAX_FLOWREF (1u << 22)
#define CAUSALITY_SLACK_US 20

struct nat_map {
	uint8_t proto;
	uint32_t src;
	uint16_t sport, public_sport;
};

struct txp {
	uint64_t tsc;
	uint32_t wire;
	uint32_t flow;         /* flow ref as sent */
	bool own_flow;         /* the record gave the flow as sent (else: as received) */
	bool same_tsc;         /* the record's TSC equals the previous record's: maybe clamped */
	uint64_t rx_seq;
	uint16_t port;
};

struct node {
	char path[1100];
	struct mscope_trace_header h;
	/* rx packets by seq */
	uint64_t *rx_tsc;
	uint32_t *rx_wire;
	uint32_t *rx_flow;
	uint64_t n_rx;
	/* accepted tx packets in file order */
	struct txp *tx;
	uint64_t n_tx;
	uint64_t refused;
	uint64_t drop_recs;
	/* flow refs */
	struct mscope_flow_key *flows;
	uint32_t n_flows;
	/* rx seq -> index into tx, or UINT64_MAX */
	uint64_t *link;
	/* NAT: its public address and mappings (from stats/NAME-nat-flows.json) */
	bool nat;
	uint32_t nat_public;
	struct nat_map *map;
	size_t n_map;
};

static struct node nodes[MAX_FILES];
static struct nat_map *maps[64];
static unsigned int n_maps;
static unsigned int n_nodes;
static json_t *errors;
static unsigned int n_errors;

static void
fail(const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n_errors++ < 50)
		json_array_append_new(errors, json_string(buf));
	fprintf(stderr, "chain_check: %s\n", buf);
}

static void *
grow(void *p, uint64_t n, size_t sz)
{
	/* capacities 64, 128, 256, ...: grow when n reaches one */
	if (n != 0 && (n < 64 || (n & (n - 1))))
		return p;
	p = realloc(p, (n ? n * 2 : 64) * sz);
	if (!p) {
		fprintf(stderr, "chain_check: out of memory\n");
		exit(2);
	}
	return p;
}

static int
load_node(struct node *nd, const char *path)
{
	struct mscope_trace_error err;
	struct mscope_trace_reader *r = mscope_reader_open(path, &err);
	struct mscope_record rec;
	uint64_t prev_tsc = 0;
	int rc;

	snprintf(nd->path, sizeof(nd->path), "%s", path);
	if (!r) {
		fail("%s: %s at %" PRIu64 ": %s", path, err.file, err.offset, err.text);
		return -1;
	}
	nd->h = *mscope_reader_header(r);
	while ((rc = mscope_reader_next(r, &rec, &err)) == 1) {
		switch (rec.type) {
		case MSCOPE_REC_RX:
			for (uint32_t i = 0; i < rec.u.rx.n; i++) {
				nd->rx_tsc = grow(nd->rx_tsc, nd->n_rx, sizeof(*nd->rx_tsc));
				nd->rx_wire = grow(nd->rx_wire, nd->n_rx, sizeof(*nd->rx_wire));
				nd->rx_flow = grow(nd->rx_flow, nd->n_rx, sizeof(*nd->rx_flow));
				nd->rx_tsc[nd->n_rx] = rec.u.rx.tsc;
				nd->rx_wire[nd->n_rx] = rec.u.rx.wire_id[i];
				nd->rx_flow[nd->n_rx] = rec.u.rx.flow[i];
				if (rec.u.rx.first_seq + i != nd->n_rx)
					fail("%s: rx seq %" PRIu64 " out of order", path, rec.u.rx.first_seq + i);
				nd->n_rx++;
			}
			prev_tsc = rec.u.rx.tsc;
			break;
		case MSCOPE_REC_TX:
			nd->refused += rec.u.tx.offered - rec.u.tx.accepted;
			for (uint32_t i = 0; i < rec.u.tx.accepted; i++) {
				struct txp *t;

				nd->tx = grow(nd->tx, nd->n_tx, sizeof(*nd->tx));
				t = &nd->tx[nd->n_tx++];
				t->tsc = rec.u.tx.tsc;
				t->wire = rec.u.tx.wire_id[i];
				t->rx_seq = rec.u.tx.rx_seq[i];
				t->port = rec.u.tx.port;
				t->flow = rec.u.tx.flow ? rec.u.tx.flow[i] : UINT32_MAX;
				t->own_flow = rec.u.tx.flow != NULL;
				t->same_tsc = rec.u.tx.tsc == prev_tsc;
			}
			prev_tsc = rec.u.tx.tsc;
			break;
		case MSCOPE_REC_DROP:
			nd->drop_recs += rec.u.drop.n;
			prev_tsc = rec.u.drop.tsc;
			break;
		case MSCOPE_REC_FLOW:
			if (rec.u.flow.ref >= MAX_FLOWREF) {
				fail("%s: flow ref %u too large", path, rec.u.flow.ref);
				break;
			}
			if (rec.u.flow.ref >= nd->n_flows) {
				uint32_t n = rec.u.flow.ref + 1;

				nd->flows = realloc(nd->flows, n * sizeof(*nd->flows));
				if (!nd->flows)
					exit(2);
				memset(nd->flows + nd->n_flows, 0, (n - nd->n_flows) * sizeof(*nd->flows));
				nd->n_flows = n;
			}
			nd->flows[rec.u.flow.ref] = rec.u.flow.key;
			break;
		case MSCOPE_REC_CLOCK:
			prev_tsc = rec.u.clock.tsc;
			break;
		case MSCOPE_REC_LOSS:
			prev_tsc = rec.u.loss.tsc;
			if (rec.u.loss.records)
				fail("%s: the collector lost %" PRIu64 " records (%" PRIu64 " packets)",
					path, rec.u.loss.records, rec.u.loss.packets);
			break;
		default:
			break;
		}
	}
	if (rc < 0)
		fail("%s: %s at byte %" PRIu64 ": %s", path, err.file, err.offset, err.text);
	mscope_reader_close(r);
	/* Tx packets whose flow is "same as rx" take the rx packet's flow. */
	for (uint64_t i = 0; i < nd->n_tx; i++)
		if (nd->tx[i].flow == UINT32_MAX)
			nd->tx[i].flow = nd->tx[i].rx_seq < nd->n_rx ? nd->rx_flow[nd->tx[i].rx_seq] : 0;
	nd->link = malloc((nd->n_rx ? nd->n_rx : 1) * sizeof(*nd->link));
	if (!nd->link)
		exit(2);
	for (uint64_t i = 0; i < nd->n_rx; i++)
		nd->link[i] = UINT64_MAX;
	for (uint64_t i = 0; i < nd->n_tx; i++) {
		uint64_t s = nd->tx[i].rx_seq;

		if (nd->h.role == MSCOPE_ROLE_SOURCE)
			continue;
		if (s == MSCOPE_NO_LINK || s >= nd->n_rx) {
			fail("%s: tx packet %" PRIu64 " (wire %08x) has no valid rx link", path, i,
				nd->tx[i].wire);
			continue;
		}
		if (nd->link[s] != UINT64_MAX)
			fail("%s: rx seq %" PRIu64 " sent twice", path, s);
		nd->link[s] = i;
		if (nd->tx[i].tsc < nd->rx_tsc[s])
			fail("%s: rx seq %" PRIu64 " sent before it was received", path, s);
	}
	return rc < 0 ? -1 : 0;
}

static struct node *
find_node(const char *nf, int role, int port)
{
	for (unsigned int i = 0; i < n_nodes; i++)
		if (!strcmp(nodes[i].h.nf_name, nf) && nodes[i].h.role == role &&
				(port < 0 || nodes[i].h.port == port))
			return &nodes[i];
	return NULL;
}

/* One direction of a link: the upstream's accepted packets to `port`, in
 * time order across the upstream's files (ties keep file order). */
struct seqref {
	uint64_t tsc;
	struct node *nd;
	uint64_t idx;
};

static int
cmp_seq(const void *a, const void *b)
{
	const struct seqref *x = a, *y = b;

	if (x->tsc != y->tsc)
		return x->tsc < y->tsc ? -1 : 1;
	if (x->nd != y->nd)
		return x->nd < y->nd ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static struct seqref *
upstream_seq(const char *nf, int port, uint64_t *n)
{
	struct seqref *v = NULL;

	*n = 0;
	for (unsigned int i = 0; i < n_nodes; i++) {
		struct node *nd = &nodes[i];

		if (strcmp(nd->h.nf_name, nf))
			continue;
		for (uint64_t k = 0; k < nd->n_tx; k++) {
			if (nd->tx[k].port != port)
				continue;
			v = grow(v, *n, sizeof(*v));
			v[(*n)++] = (struct seqref){ nd->tx[k].tsc, nd, k };
		}
	}
	if (*n)
		qsort(v, *n, sizeof(*v), cmp_seq);
	return v;
}

/* Per link: downstream rx index -> upstream (node, tx index). */
struct hop {
	char from[64], to[64];
	int tx_port, rx_port;
	struct node *down;
	struct seqref *up;      /* [down->n_rx] after matching */
	uint64_t n_up;
};

static struct hop hops[256];
static unsigned int n_hops;

static json_t *
json_load_or_null(const char *path)
{
	json_error_t e;
	json_t *j = json_load_file(path, 0, &e);

	if (!j)
		fail("%s: %s", path, e.text);
	return j;
}

static int64_t
jint(const json_t *o, const char *k)
{
	const json_t *v = json_object_get(o, k);

	return json_is_integer(v) ? json_integer_value(v) : -1;
}

static void
check_link(struct hop *hp, json_t *out)
{
	uint64_t n_up, n_down = hp->down ? hp->down->n_rx : 0, bad = 0, late = 0, clamped = 0;
	double worst_us = 0;
	struct seqref *up = upstream_seq(hp->from, hp->tx_port, &n_up);

	if (n_up != n_down)
		fail("link %s -> %s: upstream accepted %" PRIu64 " packets, downstream received %" PRIu64,
			hp->from, hp->to, n_up, n_down);
	for (uint64_t i = 0; i < n_up && i < n_down; i++) {
		const struct txp *t = &up[i].nd->tx[up[i].idx];

		if (t->wire != hp->down->rx_wire[i]) {
			if (bad++ < 3)
				fail("link %s -> %s: packet %" PRIu64 ": wire %08x sent, %08x received",
					hp->from, hp->to, i, t->wire, hp->down->rx_wire[i]);
		}
		if (hp->down->rx_tsc[i] < t->tsc && (t->tsc == up[i].nd->h.anchor_tsc || t->same_tsc)) {
			/* The collector clamps a record it merges late to its file's
			 * last TSC (and a source node's first records to its anchor):
			 * its tx time is then too late. Counted and reported, not
			 * failed here: a collector issue, not a chain one. */
			clamped++;
		} else if (hp->down->rx_tsc[i] < t->tsc) {
			double us = (double)(t->tsc - hp->down->rx_tsc[i]) * 1e6 /
				(double)hp->down->h.tsc_hz;

			if (us > worst_us)
				worst_us = us;
			/* A few microseconds: TSC skew between the CPUs of a VM. */
			if (us > CAUSALITY_SLACK_US)
				late++;
		}
	}
	if (late)
		fail("link %s -> %s: %" PRIu64 " packets dequeued more than %d us before they were"
			" sent (worst %.1f us)", hp->from, hp->to, late, CAUSALITY_SLACK_US, worst_us);
	hp->up = up;
	hp->n_up = n_up;
	json_array_append_new(out, json_pack("{s:s, s:s, s:i, s:i, s:I, s:I, s:I}",
		"from", hp->from, "to", hp->to, "tx_port", hp->tx_port, "rx_port", hp->rx_port,
		"sent", (json_int_t)n_up, "received", (json_int_t)n_down,
		"mismatched", (json_int_t)bad));
	json_object_set_new(json_array_get(out, json_array_size(out) - 1), "rx_before_tx_worst_us",
		json_real(worst_us));
	json_object_set_new(json_array_get(out, json_array_size(out) - 1), "tx_clamped",
		json_integer((json_int_t)clamped));
	if (clamped)
		fprintf(stderr, "chain_check: warning: link %s -> %s: %" PRIu64 " upstream tx times"
			" clamped by the collector (later than the packets were received)\n",
			hp->from, hp->to, clamped);
}

static double
us_of(uint64_t tsc, uint64_t start, uint64_t hz)
{
	return ((double)tsc - (double)start) * 1e6 / (double)hz;
}

static int
cmp_u64(const void *a, const void *b)
{
	const uint64_t *x = a, *y = b;

	return *x < *y ? -1 : *x > *y;
}

/* Largest input queue of a node: arrivals (upstream tx) minus dequeues (rx).
 * A packet dequeued before its recorded arrival (a clamped tx time) arrived
 * by its dequeue at the latest. */
static json_t *
queue_stats(const struct hop *hp, uint64_t start_tsc, uint64_t hz)
{
	uint64_t i = 0, j = 0, n = hp->down->n_rx, q = 0, qmax = 0, t_max = 0, t_start = 0;
	uint64_t t_rise = 0, *arr;

	if (hp->n_up < n)
		n = hp->n_up;
	arr = malloc((n ? n : 1) * sizeof(*arr));
	if (!arr)
		exit(2);
	for (uint64_t k = 0; k < n; k++) {
		uint64_t a = hp->up[k].nd->tx[hp->up[k].idx].tsc;

		arr[k] = a < hp->down->rx_tsc[k] ? a : hp->down->rx_tsc[k];
	}
	qsort(arr, n, sizeof(*arr), cmp_u64);
	while (i < n || j < n) {
		uint64_t ta = i < n ? arr[i] : UINT64_MAX;
		uint64_t td = j < n ? hp->down->rx_tsc[j] : UINT64_MAX;

		if (ta <= td) {
			if (q == 0)
				t_start = ta;
			q++;
			i++;
			if (q > qmax) {
				qmax = q;
				t_max = ta;
				t_rise = t_start;
			}
		} else {
			q--;
			j++;
		}
	}
	free(arr);
	/* The dequeue gap in which the queue peaked: the last rx before the
	 * peak and the first after it. */
	{
		uint64_t before = 0, after = 0;

		for (uint64_t k = 0; k < hp->down->n_rx; k++) {
			if (hp->down->rx_tsc[k] <= t_max)
				before = hp->down->rx_tsc[k];
			else {
				after = hp->down->rx_tsc[k];
				break;
			}
		}
		return json_pack("{s:I, s:f, s:f, s:f, s:f}", "max", (json_int_t)qmax,
			"max_at_us", us_of(t_max, start_tsc, hz),
			"busy_from_us", us_of(t_rise, start_tsc, hz),
			"idle_from_us", us_of(before, start_tsc, hz),
			"idle_to_us", us_of(after ? after : t_max, start_tsc, hz));
	}
}

static uint32_t
addr4(const uint8_t *a)
{
	uint32_t v;

	memcpy(&v, a, 4);
	return ntohl(v);
}

static void
load_nat(const char *dir, const char *name)
{
	char path[1024];
	json_t *j, *m, *v;
	struct in_addr a;
	struct nat_map *map;
	size_t i, n;

	snprintf(path, sizeof(path), "%s/stats/%s-nat-flows.json", dir, name);
	j = json_load_or_null(path);
	if (!j)
		return;
	m = json_object_get(j, "mappings");
	n = json_array_size(m);
	map = calloc(n ? n : 1, sizeof(*map));
	if (!map)
		exit(2);
	json_array_foreach(m, i, v) {
		const char *src = json_string_value(json_object_get(v, "src"));
		const char *pub = json_string_value(json_object_get(v, "public_src"));

		if (!src || !pub || inet_pton(AF_INET, src, &a) != 1) {
			fail("%s: mapping %zu is malformed", path, i);
			continue;
		}
		map[i].src = ntohl(a.s_addr);
		map[i].proto = (uint8_t)jint(v, "proto");
		map[i].sport = (uint16_t)jint(v, "sport");
		map[i].public_sport = (uint16_t)jint(v, "public_sport");
		if (inet_pton(AF_INET, pub, &a) == 1)
			for (unsigned int k = 0; k < n_nodes; k++)
				if (!strcmp(nodes[k].h.nf_name, name))
					nodes[k].nat_public = ntohl(a.s_addr);
	}
	for (unsigned int k = 0; k < n_nodes; k++) {
		if (strcmp(nodes[k].h.nf_name, name))
			continue;
		nodes[k].nat = true;
		nodes[k].map = map;
		nodes[k].n_map = n;
	}
	if (n_maps < 64)
		maps[n_maps++] = map;
	else
		free(map);
	json_decref(j);
}

/* A NAT's forwarded packet: src is the public address, sport the mapping's
 * port for the inner flow; protocol and destination unchanged. */
static bool
nat_ok(const struct node *nd, const struct mscope_flow_key *in, const struct mscope_flow_key *o)
{
	if (in->family != 4 || o->family != 4 || o->proto != in->proto ||
			memcmp(o->dst, in->dst, 4) || o->dport != in->dport ||
			addr4(o->src) != nd->nat_public)
		return false;
	if (in->proto != 6 && in->proto != 17)
		return true;
	for (size_t i = 0; i < nd->n_map; i++)
		if (nd->map[i].proto == in->proto && nd->map[i].src == addr4(in->src) &&
				nd->map[i].sport == in->sport)
			return o->sport == nd->map[i].public_sport;
	return false;
}

static void
check_nat(const struct node *nd, uint64_t idx, const struct mscope_flow_key *out,
		uint64_t *checked, uint64_t *bad)
{
	uint32_t fi = nd->rx_flow[idx];

	(*checked)++;
	if (out && fi < nd->n_flows && nat_ok(nd, &nd->flows[fi], out))
		return;
	if ((*bad)++ < 3)
		fail("%s: rx packet %" PRIu64 " not rewritten by its NAT mapping", nd->h.nf_name, idx);
}

int
main(int argc, char **argv)
{
	char path[1024];
	json_t *topo, *out, *links_out, *nfs_out, *links, *nfs, *v;
	const char *dir;
	DIR *d;
	struct dirent *de;
	uint64_t start_tsc = 0, hz = 1;
	size_t i;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: chain_check DIR [NF:FROM_US:TO_US]\n");
		return 2;
	}
	dir = argv[1];
	errors = json_array();
	d = opendir(dir);
	if (!d) {
		perror(dir);
		return 2;
	}
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);

		if (l < 5 || strcmp(de->d_name + l - 4, ".mst") || n_nodes >= MAX_FILES)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		load_node(&nodes[n_nodes++], path);
	}
	closedir(d);
	snprintf(path, sizeof(path), "%s/topology.json", dir);
	topo = json_load_or_null(path);
	if (!topo)
		return 1;
	if (jint(topo, "tsc_hz") > 0)
		hz = (uint64_t)jint(topo, "tsc_hz");
	if (jint(topo, "start_tsc") > 0)
		start_tsc = (uint64_t)jint(topo, "start_tsc");
	out = json_object();
	links_out = json_array();
	nfs_out = json_object();

	/* links */
	links = json_object_get(topo, "links");
	json_array_foreach(links, i, v) {
		struct hop *hp = &hops[n_hops];
		const char *from = json_string_value(json_object_get(v, "from"));
		const char *to = json_string_value(json_object_get(v, "to"));

		if (!from || !to || n_hops >= 256)
			continue;
		snprintf(hp->from, sizeof(hp->from), "%s", from);
		snprintf(hp->to, sizeof(hp->to), "%s", to);
		hp->tx_port = (int)jint(v, "tx_port");
		hp->rx_port = (int)jint(v, "rx_port");
		hp->down = find_node(to, MSCOPE_ROLE_RXQ, hp->rx_port);
		if (!hp->down) {
			fail("no trace for %s port %d", to, hp->rx_port);
			continue;
		}
		check_link(hp, links_out);
		n_hops++;
	}

	/* NFs: linkage and counters */
	nfs = json_object_get(topo, "nfs");
	json_array_foreach(nfs, i, v) {
		const char *name = json_string_value(json_object_get(v, "name"));
		uint64_t rx = 0, tx = 0, unlinked = 0, refused = 0;
		json_t *st, *o = json_object();
		const char *prog;

		if (!name)
			continue;
		for (unsigned int k = 0; k < n_nodes; k++) {
			struct node *nd = &nodes[k];

			if (strcmp(nd->h.nf_name, name) || nd->h.role != MSCOPE_ROLE_RXQ)
				continue;
			rx += nd->n_rx;
			tx += nd->n_tx;
			refused += nd->refused;
			for (uint64_t s = 0; s < nd->n_rx; s++)
				unlinked += nd->link[s] == UINT64_MAX;
		}
		if (rx != tx + unlinked)
			fail("%s: rx %" PRIu64 " != tx %" PRIu64 " + unsent %" PRIu64, name, rx, tx, unlinked);
		json_object_set_new(o, "rx", json_integer((json_int_t)rx));
		json_object_set_new(o, "tx", json_integer((json_int_t)tx));
		json_object_set_new(o, "unsent", json_integer((json_int_t)unlinked));
		json_object_set_new(o, "refused", json_integer((json_int_t)refused));
		snprintf(path, sizeof(path), "%s/stats/%s.json", dir, name);
		/* Only our NFs write counters (testpmd does not). */
		prog = json_string_value(json_object_get(v, "program"));
		st = prog && strstr(prog, "mscope-nf-") ? json_load_or_null(path) : NULL;
		if (st) {
			int64_t srx = jint(st, "rx"), stx = jint(st, "tx");
			int64_t sdrop = jint(st, "dropped_nf"), sref = jint(st, "tx_refused");

			if (srx >= 0 && (uint64_t)srx != rx)
				fail("%s: trace rx %" PRIu64 " != the NF's count %" PRId64, name, rx, srx);
			if (stx >= 0 && (uint64_t)stx != tx)
				fail("%s: trace tx %" PRIu64 " != the NF's count %" PRId64, name, tx, stx);
			if (sdrop >= 0 && sref >= 0 && (uint64_t)(sdrop + sref) != unlinked)
				fail("%s: unsent %" PRIu64 " != the NF's drops %" PRId64 " + refused %" PRId64,
					name, unlinked, sdrop, sref);
			if (sref >= 0 && (uint64_t)sref != refused)
				fail("%s: trace refused %" PRIu64 " != the NF's count %" PRId64, name,
					refused, sref);
			json_object_set_new(o, "stats_dropped_nf", json_integer(sdrop));
			json_decref(st);
		}
		/* queue at each input */
		for (unsigned int h = 0; h < n_hops; h++)
			if (!strcmp(hops[h].to, name))
				json_object_set_new(o, hops[h].from[0] ? hops[h].from : "?",
					queue_stats(&hops[h], start_tsc, hz));
		json_object_set_new(nfs_out, name, o);
	}

	json_array_foreach(nfs, i, v) {
		const char *type = json_string_value(json_object_get(v, "type"));
		const char *name = json_string_value(json_object_get(v, "name"));

		if (type && name && !strcmp(type, "nat"))
			load_nat(dir, name);
	}

	/* follow every source packet */
	{
		uint64_t sent = 0, delivered = 0, dropped = 0, lost = 0, nat_checked = 0, nat_bad = 0;
		json_t *drops_by = json_object();

		for (unsigned int h = 0; h < n_hops; h++) {
			struct hop *first = &hops[h];

			if (strcmp(first->from, "source"))
				continue;
			for (uint64_t p = 0; p < first->n_up && p < first->down->n_rx; p++) {
				struct hop *cur = first;
				uint64_t idx = p;

				sent++;
				for (int guard = 0; guard < 64; guard++) {
					struct node *nd = cur->down;
					uint64_t t = nd->link[idx];
					json_t *c;
					unsigned int k;

					if (t == UINT64_MAX) {
						dropped++;
						c = json_object_get(drops_by, nd->h.nf_name);
						json_object_set_new(drops_by, nd->h.nf_name,
							json_integer((c ? json_integer_value(c) : 0) + 1));
						break;
					}
					for (k = 0; k < n_hops; k++)
						if (!strcmp(hops[k].from, nd->h.nf_name) &&
								hops[k].tx_port == nd->tx[t].port)
							break;
					if (k == n_hops) {
						/* to the egress port */
						if (nd->nat && nd->tx[t].own_flow && nd->tx[t].flow < nd->n_flows)
							check_nat(nd, idx, &nd->flows[nd->tx[t].flow], &nat_checked,
								&nat_bad);
						delivered++;
						break;
					}
					/* find the position of this tx packet in the link's sequence */
					{
						struct hop *nx = &hops[k];
						uint64_t lo = 0, hi = nx->n_up, pos = UINT64_MAX;

						/* sequences are in time order: binary search by tsc, then scan */
						while (lo < hi) {
							uint64_t mid = (lo + hi) / 2;

							if (nx->up[mid].nd->tx[nx->up[mid].idx].tsc < nd->tx[t].tsc)
								lo = mid + 1;
							else
								hi = mid;
						}
						for (; lo < nx->n_up &&
								nx->up[lo].nd->tx[nx->up[lo].idx].tsc == nd->tx[t].tsc; lo++)
							if (nx->up[lo].nd == nd && nx->up[lo].idx == t) {
								pos = lo;
								break;
							}
						if (pos == UINT64_MAX || pos >= nx->down->n_rx) {
							lost++;
							break;
						}
						/* NAT: the packet left rewritten by its mapping (as the
						 * NAT recorded it, else as the next hop received it). */
						if (nd->nat) {
							const struct node *dn = nx->down;
							const struct mscope_flow_key *ok = NULL;

							if (nd->tx[t].own_flow && nd->tx[t].flow < nd->n_flows)
								ok = &nd->flows[nd->tx[t].flow];
							else if (dn->rx_flow[pos] < dn->n_flows)
								ok = &dn->flows[dn->rx_flow[pos]];
							check_nat(nd, idx, ok, &nat_checked, &nat_bad);
						}
						cur = nx;
						idx = pos;
					}
				}
			}
		}
		if (lost)
			fail("%" PRIu64 " packets could not be followed to the next hop", lost);
		if (nat_bad)
			fail("%" PRIu64 " of %" PRIu64 " packets through a NAT were not rewritten by"
				" their mapping", nat_bad, nat_checked);
		json_object_set_new(out, "paths", json_pack("{s:I, s:I, s:I, s:I, s:o, s:I}",
			"sent", (json_int_t)sent, "delivered", (json_int_t)delivered,
			"dropped", (json_int_t)dropped, "lost", (json_int_t)lost, "dropped_at", drops_by,
			"nat_checked", (json_int_t)nat_checked));
		if (sent != delivered + dropped + lost)
			fail("sent %" PRIu64 " != delivered %" PRIu64 " + dropped %" PRIu64, sent,
				delivered, dropped);
	}

	/* packets that arrived at / were dequeued by an NF in a window (us from t0) */
	if (argc == 3) {
		char nf[64];
		double from, to;
		uint64_t arrived = 0, dequeued = 0;

		if (sscanf(argv[2], "%63[^:]:%lf:%lf", nf, &from, &to) != 3) {
			fprintf(stderr, "chain_check: bad window '%s'\n", argv[2]);
			return 2;
		}
		for (unsigned int h = 0; h < n_hops; h++) {
			if (strcmp(hops[h].to, nf))
				continue;
			for (uint64_t k = 0; k < hops[h].n_up; k++) {
				double us = us_of(hops[h].up[k].nd->tx[hops[h].up[k].idx].tsc, start_tsc, hz);

				arrived += us >= from && us < to;
			}
			for (uint64_t k = 0; k < hops[h].down->n_rx; k++) {
				double us = us_of(hops[h].down->rx_tsc[k], start_tsc, hz);

				dequeued += us >= from && us < to;
			}
		}
		json_object_set_new(out, "window", json_pack("{s:s, s:f, s:f, s:I, s:I}", "nf", nf,
			"from_us", from, "to_us", to, "arrived", (json_int_t)arrived,
			"dequeued", (json_int_t)dequeued));
	}

	json_object_set_new(out, "ok", json_boolean(n_errors == 0));
	json_object_set_new(out, "errors", errors);
	json_object_set_new(out, "links", links_out);
	json_object_set_new(out, "nfs", nfs_out);
	json_dumpf(out, stdout, JSON_INDENT(2));
	putchar('\n');
	json_decref(out);
	json_decref(topo);
	for (unsigned int k = 0; k < n_nodes; k++) {
		free(nodes[k].rx_tsc);
		free(nodes[k].rx_wire);
		free(nodes[k].rx_flow);
		free(nodes[k].tx);
		free(nodes[k].flows);
		free(nodes[k].link);
	}
	for (unsigned int k = 0; k < n_maps; k++)
		free(maps[k]);
	for (unsigned int h = 0; h < n_hops; h++)
		free(hops[h].up);
	return n_errors ? 1 : 0;
}
