/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Exact multidimensional hierarchical heavy hitters with AutoFocus
 * compression, over causal relations (semantics in mscope_autofocus.h).
 *
 * Sources:
 *  - C. Estan, S. Savage, G. Varghese, "Automatically Inferring Patterns of
 *    Resource Consumption in Network Traffic", SIGCOMM 2003 (AutoFocus):
 *    clusters over the 5-tuple hierarchies; a cluster is reported for the
 *    traffic its reported descendants do not explain.
 *  - K. Cho, "Recursive Lattice Search: Hierarchical Heavy Hitters
 *    Revisited", IMC 2017 (agurim, src/hhh.c): exact offline search that
 *    expands only clusters above the threshold; main attribute first, then
 *    sub-attributes inside each result (our culprit side, then victim side).
 *  - K. Beyer, R. Ramakrishnan, "Bottom-Up Computation of Sparse and Iceberg
 *    CUBEs", SIGMOD 1999 (BUC): refining dimensions in a fixed order visits
 *    every heavy cluster exactly once, and a light partition is never
 *    refined (its descendants are lighter). With hierarchies, a child
 *    refines the current dimension one more step or a later one.
 *  - D. Xin, Z. Shao, J. Han, H. Liu, "C-Cubing: Efficient Computation of
 *    Closed Cubes by Aggregation-Based Checking", ICDE 2006: a cluster is
 *    *closed* when no refinement keeps all its members; if a dimension BUC
 *    already left behind could be refined without losing a member, nothing
 *    below the current cluster is closed and the branch is cut.
 *  - G. Cormode, F. Korn, S. Muthukrishnan, D. Srivastava, "Finding
 *    Hierarchical Heavy Hitters in Streaming Data", TKDD 2008: discounted
 *    counts in several dimensions.
 *
 * Only closed clusters (and the root) are recorded. That changes nothing in
 * the result: compression takes the most specific cluster first, and a
 * cluster that is not closed has the same members as a more specific one,
 * so whatever it could claim was claimed before (or was below the threshold
 * already). The tests check the result against a brute-force enumeration.
 *
 * One side (culprit or victim) runs BUC over records (one per distinct flow,
 * with its summed score) kept contiguous so that every pass is sequential:
 * at each cluster one pass counts the children of every dimension at once
 * (bucket = the next bits of an address, a port class, ...), wide digits are
 * sorted instead; a dimension with no heavy child stays dead for the whole
 * branch below (those clusters are subsets with the same depth on it). Then,
 * most specific first, each recorded cluster takes the not yet explained
 * records it contains, and is reported when they still weigh the threshold.
 */
#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "af_private.h"
#include "mscope_autofocus.h"

#define NONE UINT32_MAX
#define NOFAM 0xff
#define MAX_DIMS 7
#define MAX_STEPS 32
/* Count children in an array when the digit span is at most this wide and
 * not much wider than the cluster; sort them otherwise. */
#define MAX_COUNT_SPAN (1u << 20)
/* Relative slack so that a cluster at exactly the threshold is not lost to
 * the rounding of a sum. */
#define THRESH_SLACK 1e-9

enum dim_type { DIM_NF, DIM_FAM, DIM_PROTO, DIM_SPORT, DIM_DPORT, DIM_SRC, DIM_DST };

static const uint8_t default_v4[] = { 8, 16, 24, 32 };
static const uint8_t default_v6[] = { 32, 48, 64, 128 };

/* Prefix length at each address depth, per family (0 IPv4, 1 IPv6); len[f][0] = 0. */
struct steps {
	uint8_t len[2][MAX_STEPS + 1];
	unsigned int n[2];
};

/* One distinct flow of a side. Addresses are 128-bit integers whose top bit
 * is the first bit of the address (IPv4 in the top 32 bits). */
struct rec {
	unsigned __int128 addr[2];    /* src, dst */
	double score;
	uint32_t id;                  /* item index */
	uint32_t nf;                  /* dense victim NF id */
	uint16_t port[2];             /* sport, dport (0 without ports) */
	uint8_t fam;                  /* 0 IPv4, 1 IPv6, NOFAM: no flow or not IP */
	uint8_t proto;
	uint8_t has_ports;
};

/* A recorded cluster: `rep` is one member, `depth` the level per dimension. */
struct node {
	struct rec rep;
	uint8_t depth[MAX_DIMS];
	uint32_t spec;                /* sum of depths: larger is more specific */
	double count;                 /* score of all members */
	double sum;                   /* reported: score of the members it explains */
	uint32_t pool_off, pool_len;  /* reported: those members in side.pool */
	uint32_t out;                 /* reported: the caller's index for it */
};

/* A heavy child of a cluster along one dimension. */
struct heavy {
	uint64_t digit;
	uint32_t n;
	double count;
};

struct digit_pair {
	uint64_t digit;
	double score;
};

struct side {
	struct rec *recs;             /* permuted by the search */
	uint32_t n;
	double thresh;
	const struct steps *st;
	int with_nf;
	uint32_t nnf;

	int ndims;
	uint8_t dtype[MAX_DIMS];
	uint8_t nlev[MAX_DIMS];
	int fam_dim;

	struct rec *scratch;
	struct digit_pair *pairs;
	double *cs;
	uint32_t *cn;
	size_t wcap;

	struct node *nodes;
	size_t nnodes, capnodes;
	uint32_t *assign;             /* record position -> reported node, or NONE */
	uint32_t *pool;               /* record positions, grouped by reported node */
	uint32_t npool;
	uint32_t *rep;                /* reported nodes in processing order */
	size_t nrep;
};

static const uint16_t class_lo[3] = { 0, 1024, 49152 };
static const uint16_t class_hi[3] = { 1023, 49151, 65535 };

static inline unsigned int
port_class(uint16_t p)
{
	return p < 1024 ? 0 : p < 49152 ? 1 : 2;
}

static inline int
is_addr(const struct side *s, int d)
{
	return s->dtype[d] == DIM_SRC || s->dtype[d] == DIM_DST;
}

static inline int
heavy(const struct side *s, double c)
{
	return c > 0 && c >= s->thresh;
}

/* Whether r has a key in dimension d at depth (>= 1). */
static inline int
present(const struct side *s, int d, unsigned int depth, const struct rec *r)
{
	switch (s->dtype[d]) {
	case DIM_NF:
		return 1;
	case DIM_FAM:
	case DIM_PROTO:
		return r->fam != NOFAM;
	case DIM_SPORT:
	case DIM_DPORT:
		return r->fam != NOFAM && r->has_ports;
	default:
		return r->fam != NOFAM && depth <= s->st->n[r->fam];
	}
}

/* Bits [a, b) of x, b - a <= 64. */
static inline uint64_t
bits(unsigned __int128 x, unsigned int a, unsigned int b)
{
	if (b == a)
		return 0;
	return (uint64_t)((x << a) >> (128 - (b - a)));
}

/* Which child of its depth-1 cluster r falls in, along d at depth (r present). */
static inline uint64_t
digit(const struct side *s, int d, unsigned int depth, const struct rec *r)
{
	uint16_t p;

	switch (s->dtype[d]) {
	case DIM_NF:
		return r->nf;
	case DIM_FAM:
		return r->fam;
	case DIM_PROTO:
		return r->proto;
	case DIM_SPORT:
	case DIM_DPORT:
		p = r->port[s->dtype[d] == DIM_DPORT];
		return depth == 1 ? port_class(p) : (uint64_t)(p - class_lo[port_class(p)]);
	default:
		return bits(r->addr[s->dtype[d] == DIM_DST], s->st->len[r->fam][depth - 1],
				s->st->len[r->fam][depth]);
	}
}

/* Number of possible digits of d at depth below a cluster represented by r. */
static inline uint64_t
span(const struct side *s, int d, unsigned int depth, const struct rec *r)
{
	unsigned int w;

	switch (s->dtype[d]) {
	case DIM_NF:
		return s->nnf;
	case DIM_FAM:
		return 2;
	case DIM_PROTO:
		return 256;
	case DIM_SPORT:
	case DIM_DPORT:
		if (depth == 1)
			return 3;
		return (uint64_t)class_hi[port_class(r->port[s->dtype[d] == DIM_DPORT])] -
			class_lo[port_class(r->port[s->dtype[d] == DIM_DPORT])] + 1;
	default:
		w = s->st->len[r->fam][depth] - s->st->len[r->fam][depth - 1];
		return w >= 63 ? UINT64_MAX : (uint64_t)1 << w;
	}
}

/* Whether b agrees with a along d at depth (a has a key there). */
static inline int
same(const struct side *s, int d, unsigned int depth, const struct rec *a, const struct rec *b)
{
	unsigned int l;

	if (!present(s, d, depth, b))
		return 0;
	switch (s->dtype[d]) {
	case DIM_NF:
		return a->nf == b->nf;
	case DIM_FAM:
		return a->fam == b->fam;
	case DIM_PROTO:
		return a->proto == b->proto;
	case DIM_SPORT:
	case DIM_DPORT: {
		int w = s->dtype[d] == DIM_DPORT;
		if (depth == 1)
			return port_class(a->port[w]) == port_class(b->port[w]);
		return a->port[w] == b->port[w];
	}
	default:
		if (a->fam != b->fam)
			return 0;
		l = s->st->len[a->fam][depth];
		return ((a->addr[s->dtype[d] == DIM_DST] ^ b->addr[s->dtype[d] == DIM_DST]) >>
				(128 - l)) == 0;
	}
}

/* Order of two clusters at the same depth along d, by their key. */
static int
cmp_key(const struct side *s, int d, unsigned int depth, const struct rec *a,
		const struct rec *b)
{
	uint64_t x, y;
	unsigned __int128 p, q;
	unsigned int l;

	switch (s->dtype[d]) {
	case DIM_NF:
		x = a->nf, y = b->nf;
		break;
	case DIM_FAM:
		x = a->fam, y = b->fam;
		break;
	case DIM_PROTO:
		x = a->proto, y = b->proto;
		break;
	case DIM_SPORT:
	case DIM_DPORT:
		x = a->port[s->dtype[d] == DIM_DPORT];
		y = b->port[s->dtype[d] == DIM_DPORT];
		if (depth == 1)
			x = port_class((uint16_t)x), y = port_class((uint16_t)y);
		break;
	default:
		l = s->st->len[a->fam][depth];
		p = a->addr[s->dtype[d] == DIM_DST] >> (128 - l);
		q = b->addr[s->dtype[d] == DIM_DST] >> (128 - l);
		return p < q ? -1 : p > q;
	}
	return x < y ? -1 : x > y;
}

/* Whether dimension d can be refined from depth at a cluster represented by r. */
static inline int
refinable(const struct side *s, int d, const uint8_t *depth, const struct rec *r)
{
	if (depth[d] >= s->nlev[d])
		return 0;
	if (is_addr(s, d))
		return depth[s->fam_dim] && depth[d] < s->st->n[r->fam];
	return 1;
}

/* ------------------------------------------------------------ search */

static int
add_node(struct side *s, const uint8_t *depth, const struct rec *rep, double count)
{
	struct node *e;

	if (s->nnodes == s->capnodes) {
		size_t cap = s->capnodes ? s->capnodes * 2 : 64;
		struct node *nn = realloc(s->nodes, cap * sizeof(*nn));
		if (!nn)
			return -1;
		s->nodes = nn;
		s->capnodes = cap;
	}
	e = &s->nodes[s->nnodes++];
	memset(e, 0, sizeof(*e));
	e->rep = *rep;
	e->count = count;
	for (int d = 0; d < s->ndims; d++) {
		e->depth[d] = depth[d];
		e->spec += depth[d];
	}
	return 0;
}

static int
cmp_pair(const void *a, const void *b)
{
	const struct digit_pair *x = a, *y = b;

	return x->digit < y->digit ? -1 : x->digit > y->digit;
}

static int
push_heavy(struct heavy **h, size_t *n, size_t *cap, uint64_t digit, uint32_t cnt, double c)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 4;
		struct heavy *p = realloc(*h, nc * sizeof(*p));
		if (!p)
			return -1;
		*h = p;
		*cap = nc;
	}
	(*h)[(*n)++] = (struct heavy){ digit, cnt, c };
	return 0;
}

/* Heavy children of every probed dimension, in digit order. */
struct probe {
	struct heavy *h[MAX_DIMS];
	size_t nh[MAX_DIMS], cap[MAX_DIMS];
};

static void
probe_free(struct probe *p)
{
	for (int d = 0; d < MAX_DIMS; d++)
		free(p->h[d]);
}

/* Count the children of the cluster in range[0, len) along every dimension
 * in `mask` (one pass for the narrow ones) and keep the heavy ones. */
static int
probe(struct side *s, const struct rec *range, uint32_t len, const uint8_t *depth,
		unsigned int mask, struct probe *pb)
{
	uint64_t off[MAX_DIMS + 1], w[MAX_DIMS];
	unsigned int narrow = 0;
	int nd = 0, dl[MAX_DIMS];
	uint64_t total = 0;

	memset(pb, 0, sizeof(*pb));
	for (int d = 0; d < s->ndims; d++) {
		if (!(mask & 1u << d))
			continue;
		w[d] = span(s, d, depth[d] + 1u, &range[0]);
		if (w[d] <= MAX_COUNT_SPAN && w[d] <= 4 * (uint64_t)len + 1024) {
			narrow |= 1u << d;
			off[d] = total;
			total += w[d];
			dl[nd++] = d;
		}
	}
	if (narrow) {
		if (total > s->wcap) {
			double *cs = realloc(s->cs, total * sizeof(*cs));
			if (cs)
				s->cs = cs;
			uint32_t *cn = realloc(s->cn, total * sizeof(*cn));
			if (cn)
				s->cn = cn;
			if (!cs || !cn)
				return -1;
			s->wcap = total;
		}
		memset(s->cs, 0, total * sizeof(*s->cs));
		memset(s->cn, 0, total * sizeof(*s->cn));
		for (uint32_t i = 0; i < len; i++) {
			const struct rec *r = &range[i];
			for (int j = 0; j < nd; j++) {
				int d = dl[j];
				unsigned int c = depth[d] + 1u;
				if (!present(s, d, c, r))
					continue;
				uint64_t b = off[d] + digit(s, d, c, r);
				s->cs[b] += r->score;
				s->cn[b]++;
			}
		}
		for (int j = 0; j < nd; j++) {
			int d = dl[j];
			for (uint64_t b = 0; b < w[d]; b++)
				if (s->cn[off[d] + b] && heavy(s, s->cs[off[d] + b]) &&
						push_heavy(&pb->h[d], &pb->nh[d], &pb->cap[d], b,
							s->cn[off[d] + b], s->cs[off[d] + b]))
					return -1;
		}
	}
	for (int d = 0; d < s->ndims; d++) {
		uint32_t m = 0;
		unsigned int c = depth[d] + 1u;

		if (!(mask & 1u << d) || (narrow & 1u << d))
			continue;
		for (uint32_t i = 0; i < len; i++)
			if (present(s, d, c, &range[i]))
				s->pairs[m++] = (struct digit_pair){ digit(s, d, c, &range[i]),
					range[i].score };
		qsort(s->pairs, m, sizeof(*s->pairs), cmp_pair);
		for (uint32_t a = 0, b; a < m; a = b) {
			double sum = 0;
			for (b = a; b < m && s->pairs[b].digit == s->pairs[a].digit; b++)
				sum += s->pairs[b].score;
			if (heavy(s, sum) && push_heavy(&pb->h[d], &pb->nh[d], &pb->cap[d],
						s->pairs[a].digit, b - a, sum))
				return -1;
		}
	}
	return 0;
}

static int
find_heavy(const struct heavy *h, size_t n, uint64_t digit)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (h[mid].digit < digit)
			lo = mid + 1;
		else if (h[mid].digit > digit)
			hi = mid;
		else
			return (int)mid;
	}
	return -1;
}

/* Move the members of the heavy children to the front, consecutive, in
 * digit order. */
static void
partition(struct side *s, struct rec *range, uint32_t len, int d, unsigned int depth,
		const struct heavy *h, size_t nh, uint32_t *pos)
{
	uint32_t tail = 0;

	for (size_t j = 0; j < nh; j++) {
		pos[j] = tail;
		tail += h[j].n;
	}
	if (nh == 1 && h[0].n == len)
		return;
	for (uint32_t i = 0; i < len; i++) {
		const struct rec *r = &range[i];
		int j = present(s, d, depth, r) ? find_heavy(h, nh, digit(s, d, depth, r)) : -1;
		if (j < 0)
			s->scratch[tail++] = *r;
		else
			s->scratch[pos[j]++] = *r;
	}
	assert(tail == len);
	memcpy(range, s->scratch, (size_t)len * sizeof(*range));
	for (size_t j = 0; j < nh; j++)
		pos[j] -= h[j].n;
}

/* Whether every member agrees with range[0] one step below depth along d. */
static int
all_same(const struct side *s, const struct rec *range, uint32_t len, int d, unsigned int depth)
{
	if (!present(s, d, depth, &range[0]))
		return 0;
	for (uint32_t i = 1; i < len; i++)
		if (!same(s, d, depth, &range[0], &range[i]))
			return 0;
	return 1;
}

static int
visit(struct side *s, struct rec *range, uint32_t len, uint8_t *depth, int dstart,
		unsigned int dead, double count)
{
	struct probe pb;
	unsigned int mask = 0, light = 0;
	int closed = 1, rc = 0;
	int root = dstart < 0;

	if (root)
		dstart = 0;
	/* A left-behind dimension that keeps every member: nothing here is closed. */
	for (int d = 0; d < dstart; d++)
		if (refinable(s, d, depth, &range[0]) && all_same(s, range, len, d, depth[d] + 1u))
			return 0;
	for (int d = dstart; d < s->ndims; d++)
		if (!(dead & 1u << d) && refinable(s, d, depth, &range[0]))
			mask |= 1u << d;
	if (probe(s, range, len, depth, mask, &pb)) {
		probe_free(&pb);
		return -1;
	}
	for (int d = dstart; d < s->ndims; d++) {
		if (!(mask & 1u << d))
			continue;
		if (!pb.nh[d])
			light |= 1u << d;
		else if (pb.nh[d] == 1 && pb.h[d][0].n == len)
			closed = 0;
	}
	if ((closed || root) && add_node(s, depth, &range[0], count)) {
		probe_free(&pb);
		return -1;
	}
	for (int d = dstart; d < s->ndims && !rc; d++) {
		uint32_t *pos;

		if (!pb.nh[d])
			continue;
		pos = malloc(pb.nh[d] * sizeof(*pos));
		if (!pos) {
			rc = -1;
			break;
		}
		partition(s, range, len, d, depth[d] + 1u, pb.h[d], pb.nh[d], pos);
		depth[d]++;
		for (size_t j = 0; j < pb.nh[d] && !rc; j++)
			rc = visit(s, range + pos[j], pb.h[d][j].n, depth, d,
					(dead | light) & ~(1u << d), pb.h[d][j].count);
		depth[d]--;
		free(pos);
	}
	probe_free(&pb);
	return rc;
}

/* ------------------------------------------------------------ compression */

static int
cmp_node(const void *a, const void *b, void *arg)
{
	const struct side *s = arg;
	const struct node *x = &s->nodes[*(const uint32_t *)a];
	const struct node *y = &s->nodes[*(const uint32_t *)b];

	if (x->spec != y->spec)
		return x->spec > y->spec ? -1 : 1;
	for (int d = 0; d < s->ndims; d++)
		if (x->depth[d] != y->depth[d])
			return x->depth[d] > y->depth[d] ? -1 : 1;
	for (int d = 0; d < s->ndims; d++) {
		int r;
		if (x->depth[d] && (r = cmp_key(s, d, x->depth[d], &x->rep, &y->rep)))
			return r;
	}
	return 0;
}

static inline int
member(const struct side *s, const struct node *e, const struct rec *x)
{
	for (int d = 0; d < s->ndims; d++)
		if (e->depth[d] && !same(s, d, e->depth[d], &e->rep, x))
			return 0;
	return 1;
}

enum relation { DISJOINT, SUBSET, PARTIAL };

/* How reported cluster r (processed before e) relates to e. */
static enum relation
relate(const struct side *s, const struct node *r, const struct node *e)
{
	int partial = 0;

	for (int d = 0; d < s->ndims; d++) {
		unsigned int de = e->depth[d], dr = r->depth[d];
		if (dr >= de) {
			if (de && !same(s, d, de, &e->rep, &r->rep))
				return DISJOINT;
		} else {
			if (dr && !same(s, d, dr, &r->rep, &e->rep))
				return DISJOINT;
			partial = 1;
		}
	}
	return partial ? PARTIAL : SUBSET;
}

static int
compress(struct side *s, int force_root)
{
	uint32_t *order = malloc((s->nnodes + 1) * sizeof(*order));

	s->rep = malloc((s->nnodes + 1) * sizeof(*s->rep));
	if (!order || !s->rep) {
		free(order);
		return -1;
	}
	for (size_t i = 0; i < s->nnodes; i++)
		order[i] = (uint32_t)i;
	qsort_r(order, s->nnodes, sizeof(*order), cmp_node, s);
	for (uint32_t i = 0; i < s->n; i++)
		s->assign[i] = NONE;
	s->npool = 0;
	s->nrep = 0;
	for (size_t o = 0; o < s->nnodes; o++) {
		struct node *e = &s->nodes[order[o]];
		int forced = force_root && e->spec == 0;
		double res = e->count, sum = 0;
		uint32_t off = s->npool;

		/* An upper bound of the residual, to skip the scan of most clusters. */
		for (size_t j = 0; j < s->nrep; j++) {
			const struct node *r = &s->nodes[s->rep[j]];
			switch (relate(s, r, e)) {
			case DISJOINT:
				break;
			case SUBSET:
				res -= r->sum;
				break;
			case PARTIAL:
				for (uint32_t q = 0; q < r->pool_len; q++) {
					const struct rec *x = &s->recs[s->pool[r->pool_off + q]];
					if (member(s, e, x))
						res -= x->score;
				}
				break;
			}
		}
		if (!heavy(s, res * (1 + THRESH_SLACK)) && !forced)
			continue;
		for (uint32_t x = 0; x < s->n; x++) {
			if (s->assign[x] != NONE || !member(s, e, &s->recs[x]))
				continue;
			s->assign[x] = order[o];
			s->pool[s->npool++] = x;
			sum += s->recs[x].score;
		}
		if (heavy(s, sum) || (forced && sum > 0)) {
			e->sum = sum;
			e->pool_off = off;
			e->pool_len = s->npool - off;
			s->rep[s->nrep++] = order[o];
		} else {
			for (uint32_t q = off; q < s->npool; q++)
				s->assign[s->pool[q]] = NONE;
			s->npool = off;
		}
	}
	free(order);
	return 0;
}

static void
side_free(struct side *s)
{
	free(s->recs);
	free(s->scratch);
	free(s->pairs);
	free(s->cs);
	free(s->cn);
	free(s->nodes);
	free(s->assign);
	free(s->pool);
	free(s->rep);
	memset(s, 0, sizeof(*s));
}

/*
 * Run one side over s->recs (filled by the caller, s->n of them, id = item
 * index): on return s->rep lists the reported clusters in processing order
 * and `item_node[id]` maps each item to its reported cluster or NONE.
 */
static int
side_run(struct side *s, int force_root, uint32_t *item_node)
{
	uint8_t depth[MAX_DIMS] = { 0 };
	double total = 0;
	int d = 0;

	if (s->with_nf)
		s->dtype[d] = DIM_NF, s->nlev[d++] = 1;
	s->fam_dim = d;
	s->dtype[d] = DIM_FAM, s->nlev[d++] = 1;
	/* Addresses first after the family: partitions shrink fastest (BUC). */
	s->dtype[d] = DIM_DST, s->nlev[d++] = MAX_STEPS;
	s->dtype[d] = DIM_SRC, s->nlev[d++] = MAX_STEPS;
	s->dtype[d] = DIM_DPORT, s->nlev[d++] = 2;
	s->dtype[d] = DIM_SPORT, s->nlev[d++] = 2;
	s->dtype[d] = DIM_PROTO, s->nlev[d++] = 1;
	s->ndims = d;

	s->scratch = malloc(((size_t)s->n + 1) * sizeof(*s->scratch));
	s->pairs = malloc(((size_t)s->n + 1) * sizeof(*s->pairs));
	s->assign = malloc(((size_t)s->n + 1) * sizeof(*s->assign));
	s->pool = malloc(((size_t)s->n + 1) * sizeof(*s->pool));
	if (!s->scratch || !s->pairs || !s->assign || !s->pool)
		return -1;
	for (uint32_t i = 0; i < s->n; i++)
		total += s->recs[i].score;
	if (s->n && (heavy(s, total) || force_root)) {
		if (heavy(s, total)) {
			if (visit(s, s->recs, s->n, depth, -1, 0, total))
				return -1;
		} else if (add_node(s, depth, &s->recs[0], total)) {
			return -1;
		}
	}
	if (compress(s, force_root))
		return -1;
	for (uint32_t i = 0; i < s->n; i++)
		item_node[s->recs[i].id] = s->assign[i];
	return 0;
}

/* The aggregate a cluster stands for. */
static void
node_prefix(const struct side *s, const struct node *e, struct mscope_af_prefix *p,
		uint32_t *nf_dense)
{
	const struct rec *k = &e->rep;

	mscope_af_prefix_any(p);
	*nf_dense = NONE;
	for (int d = 0; d < s->ndims; d++) {
		unsigned int dep = e->depth[d], l;
		unsigned __int128 a;
		uint8_t *out;
		uint16_t port;
		int w;

		if (!dep)
			continue;
		switch (s->dtype[d]) {
		case DIM_NF:
			*nf_dense = k->nf;
			break;
		case DIM_FAM:
			p->family = k->fam ? 6 : 4;
			break;
		case DIM_PROTO:
			p->proto = k->proto;
			break;
		case DIM_SPORT:
		case DIM_DPORT:
			w = s->dtype[d] == DIM_DPORT;
			port = k->port[w];
			if (w) {
				p->dport_lo = dep == 1 ? class_lo[port_class(port)] : port;
				p->dport_hi = dep == 1 ? class_hi[port_class(port)] : port;
			} else {
				p->sport_lo = dep == 1 ? class_lo[port_class(port)] : port;
				p->sport_hi = dep == 1 ? class_hi[port_class(port)] : port;
			}
			break;
		default:
			w = s->dtype[d] == DIM_DST;
			l = s->st->len[k->fam][dep];
			a = l >= 128 ? k->addr[w] : k->addr[w] >> (128 - l) << (128 - l);
			out = w ? p->dst : p->src;
			if (w)
				p->dst_len = (uint8_t)l;
			else
				p->src_len = (uint8_t)l;
			for (int i = 0; i < 16; i++)
				out[i] = (uint8_t)(a >> (120 - 8 * i));
			break;
		}
	}
}

/* ------------------------------------------------------------ dedup */

/* A relation's flow, deduplicated per side. Padding is explicit so that
 * keys hash and compare as bytes. fam 0: no flow or not IP. */
struct fkey {
	uint32_t nf;
	uint8_t fam;
	uint8_t proto;
	uint16_t sport, dport;
	uint16_t pad;
	uint8_t src[16], dst[16];
};
_Static_assert(sizeof(struct fkey) == 44, "struct fkey must have no hidden padding");

struct dedup {
	uint64_t *slot;               /* hash tag << 32 | (item + 1); 0 empty */
	size_t mask;
	struct fkey *keys;
	double *score;
	uint32_t n;
};

static uint64_t
hash_key(const struct fkey *k)
{
	uint64_t w[5] = { 0 }, h = 0x9e3779b97f4a7c15ull;
	uint32_t last;

	memcpy(w, k, 40);
	memcpy(&last, (const uint8_t *)k + 40, 4);
	w[4] ^= (uint64_t)last << 17;
	for (int i = 0; i < 5; i++) {
		h ^= w[i];
		h *= 0xff51afd7ed558ccdull;
		h ^= h >> 29;
	}
	h *= 0xc4ceb9fe1a85ec53ull;
	return h ^ (h >> 32);
}

static int
dedup_init(struct dedup *t, size_t n)
{
	size_t cap = 16;

	while (cap < 2 * n)
		cap *= 2;
	memset(t, 0, sizeof(*t));
	t->slot = calloc(cap, sizeof(*t->slot));
	t->keys = malloc((n + 1) * sizeof(*t->keys));
	t->score = malloc((n + 1) * sizeof(*t->score));
	t->mask = cap - 1;
	return t->slot && t->keys && t->score ? 0 : -1;
}

static void
dedup_free(struct dedup *t)
{
	free(t->slot);
	free(t->keys);
	free(t->score);
	memset(t, 0, sizeof(*t));
}

/* Add score under key; returns the item index. Sized for all adds at init. */
static uint32_t
dedup_add(struct dedup *t, const struct fkey *k, double score)
{
	uint64_t h = hash_key(k);
	uint64_t tag = h >> 32;
	size_t i = (size_t)h & t->mask;

	for (;; i = (i + 1) & t->mask) {
		uint64_t v = t->slot[i];
		if (!v)
			break;
		if (v >> 32 == tag && !memcmp(&t->keys[(uint32_t)v - 1], k, sizeof(*k))) {
			t->score[(uint32_t)v - 1] += score;
			return (uint32_t)v - 1;
		}
	}
	t->keys[t->n] = *k;
	t->score[t->n] = score;
	t->slot[i] = tag << 32 | ++t->n;
	return t->n - 1;
}

/* A relation's flow as a key (no flow and non-IP flows are both "fam 0"). */
static void
flow_fkey(struct fkey *out, uint32_t nf, int has, const struct mscope_flow_key *f)
{
	memset(out, 0, sizeof(*out));
	out->nf = nf;
	if (!has || (f->family != 4 && f->family != 6))
		return;
	out->fam = f->family;
	out->proto = f->proto;
	if (af_proto_has_ports(f->proto)) {
		out->sport = f->sport;
		out->dport = f->dport;
	}
	memcpy(out->src, f->src, f->family == 4 ? 4 : 16);
	memcpy(out->dst, f->dst, f->family == 4 ? 4 : 16);
}

static unsigned __int128
load_addr(const uint8_t *a)
{
	unsigned __int128 x = 0;

	for (int i = 0; i < 16; i++)
		x = x << 8 | a[i];
	return x;
}

/* Records of the deduplicated items. */
static int
make_recs(struct side *s, const struct dedup *t, const uint32_t *nf_dense)
{
	s->n = t->n;
	s->recs = malloc(((size_t)t->n + 1) * sizeof(*s->recs));
	if (!s->recs)
		return -1;
	for (uint32_t i = 0; i < t->n; i++) {
		const struct fkey *k = &t->keys[i];
		struct rec *r = &s->recs[i];
		memset(r, 0, sizeof(*r));
		r->id = i;
		r->score = t->score[i];
		r->nf = nf_dense ? nf_dense[i] : 0;
		r->fam = k->fam == 4 ? 0 : k->fam == 6 ? 1 : NOFAM;
		r->proto = k->proto;
		r->has_ports = (uint8_t)af_proto_has_ports(k->proto);
		r->port[0] = k->sport;
		r->port[1] = k->dport;
		r->addr[0] = load_addr(k->src);
		r->addr[1] = load_addr(k->dst);
	}
	return 0;
}

/* ------------------------------------------------------------ driver */

struct out_rule {
	struct mscope_af_rule r;
	uint32_t seq;                 /* creation order: fixed tie-break */
	uint32_t crule;               /* culprit cluster */
};

struct cluster_rank {
	double score;
	uint32_t id;
};

static int
cmp_cluster(const void *a, const void *b)
{
	const struct cluster_rank *x = a, *y = b;

	if (x->score != y->score)
		return x->score > y->score ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

static int
check_steps(const uint8_t *v, size_t n, unsigned int max, const uint8_t *def, size_t ndef,
		uint8_t *out, unsigned int *nout)
{
	if (!v) {
		v = def;
		n = ndef;
	}
	if (n == 0 || n > MAX_STEPS)
		return -1;
	out[0] = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned int prev = i ? v[i - 1] : 0;
		/* Digits of one step must fit 64 bits. */
		if (v[i] <= prev || v[i] > max || v[i] - prev > 64)
			return -1;
		out[i + 1] = v[i];
	}
	*nout = (unsigned int)n;
	return 0;
}

static int
cmp_out_rule(const void *a, const void *b)
{
	const struct out_rule *x = a, *y = b;

	if (x->r.score != y->r.score)
		return x->r.score > y->r.score ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Distinct (rule, victim_key) pairs. */
struct pair_set {
	uint64_t *vk;
	uint32_t *rule;               /* rule + 1, 0 empty */
	size_t mask;
};

static int
pair_set_add(struct pair_set *p, uint32_t rule, uint64_t vk)
{
	uint64_t h = (vk ^ ((uint64_t)rule << 40) ^ rule) * 0x9e3779b97f4a7c15ull;
	size_t i = (size_t)(h ^ (h >> 31)) & p->mask;

	for (;; i = (i + 1) & p->mask) {
		if (!p->rule[i]) {
			p->rule[i] = rule + 1;
			p->vk[i] = vk;
			return 1;
		}
		if (p->rule[i] == rule + 1 && p->vk[i] == vk)
			return 0;
	}
}

struct group {
	uint32_t nf;
	uint8_t kind;
	uint32_t first, n;            /* relations in rel_order */
};

static int
cmp_group(const void *a, const void *b)
{
	const struct group *x = a, *y = b;

	if (x->nf != y->nf)
		return x->nf < y->nf ? -1 : 1;
	return x->kind < y->kind ? -1 : x->kind > y->kind;
}

static int
cmp_u32_val(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Everything mscope_af_aggregate() allocates, freed in one place. */
struct work {
	uint32_t *gid;                /* relation -> group */
	uint32_t *order;              /* relations grouped */
	uint32_t *item;               /* relation (by order position) -> item */
	uint32_t *node_of;            /* item -> reported node */
	uint32_t *crule;              /* relation -> culprit cluster */
	uint32_t *rule;               /* relation -> rule */
	uint32_t *cstart;
	uint32_t *nfv, *nfd;
	struct group *g;
	struct mscope_af_prefix *cpfx;
	double *csum;                 /* culprit cluster residual */
	uint32_t *cnf;
	uint8_t *ckind;
	struct out_rule *out;
	struct dedup dd;
	struct side s;
	struct pair_set ps;
};

static void
work_free(struct work *w)
{
	free(w->gid);
	free(w->order);
	free(w->item);
	free(w->node_of);
	free(w->crule);
	free(w->rule);
	free(w->cstart);
	free(w->nfv);
	free(w->nfd);
	free(w->g);
	free(w->cpfx);
	free(w->csum);
	free(w->cnf);
	free(w->ckind);
	free(w->out);
	dedup_free(&w->dd);
	side_free(&w->s);
	free(w->ps.vk);
	free(w->ps.rule);
}

/* Group relations by (culprit NF, kind), groups sorted, relations in input
 * order inside each. */
static int
group_relations(const struct mscope_af_relation *rel, size_t n, struct work *w, size_t *ng)
{
	size_t cap = 16, ngr = 0;
	uint64_t *tab;
	uint32_t *rank, *fill;

	while (cap < 2 * n)
		cap *= 2;
	tab = calloc(cap, sizeof(*tab));
	w->gid = malloc(n * sizeof(*w->gid));
	w->order = malloc(n * sizeof(*w->order));
	w->g = malloc((n + 1) * sizeof(*w->g));
	if (!tab || !w->gid || !w->order || !w->g) {
		free(tab);
		return -1;
	}
	/* Slot: nf << 8 | kind in the high 40 bits, group id + 1 (never 0) below. */
	for (size_t i = 0; i < n; i++) {
		uint64_t key = (uint64_t)rel[i].culprit_nf << 8 | rel[i].kind;
		uint64_t h = (key + 1) * 0x9e3779b97f4a7c15ull;
		size_t j = (size_t)(h >> 20) & (cap - 1);
		for (;; j = (j + 1) & (cap - 1)) {
			if (!tab[j]) {
				if (ngr + 1 >= 0xffffff) {
					free(tab);
					return errno = E2BIG, -1;
				}
				w->g[ngr] = (struct group){ rel[i].culprit_nf, rel[i].kind, 0, 0 };
				tab[j] = key << 24 | ++ngr;
				break;
			}
			if (tab[j] >> 24 == key)
				break;
		}
		w->gid[i] = (uint32_t)(tab[j] & 0xffffff) - 1;
	}
	free(tab);
	/* Sort the groups, renumber, then a counting sort of the relations. */
	rank = malloc((ngr + 1) * sizeof(*rank));
	fill = malloc((ngr + 1) * sizeof(*fill));
	if (!rank || !fill) {
		free(rank);
		free(fill);
		return -1;
	}
	for (size_t k = 0; k < ngr; k++)
		w->g[k].first = (uint32_t)k;
	qsort(w->g, ngr, sizeof(*w->g), cmp_group);
	for (size_t k = 0; k < ngr; k++)
		rank[w->g[k].first] = (uint32_t)k;
	for (size_t i = 0; i < n; i++) {
		w->gid[i] = rank[w->gid[i]];
		w->g[w->gid[i]].n++;
	}
	for (size_t k = 0, at = 0; k < ngr; k++) {
		w->g[k].first = (uint32_t)at;
		fill[k] = (uint32_t)at;
		at += w->g[k].n;
	}
	for (size_t i = 0; i < n; i++)
		w->order[fill[w->gid[i]]++] = (uint32_t)i;
	free(rank);
	free(fill);
	*ng = ngr;
	return 0;
}

static int
grow(void **p, size_t *cap, size_t need, size_t size)
{
	if (need <= *cap)
		return 0;
	size_t nc = *cap ? *cap : 16;
	while (nc < need)
		nc *= 2;
	void *q = realloc(*p, nc * size);
	if (!q)
		return -1;
	*p = q;
	*cap = nc;
	return 0;
}

int
mscope_af_aggregate(const struct mscope_af_relation *rel, size_t n,
		const struct mscope_af_opts *opts,
		struct mscope_af_rule **rules, size_t *nrules)
{
	double thr = MSCOPE_AF_DEFAULT_THRESHOLD, total = 0, tcut;
	struct steps st;
	struct work w;
	size_t ng = 0, ncr = 0, capcr = 0, nout = 0, capout = 0, capc2 = 0, capc3 = 0, capc4 = 0;
	double vshare = MSCOPE_AF_DEFAULT_VICTIM_SHARE;
	struct mscope_af_rule *res = NULL;

	if (!rules || !nrules || (n && !rel) || n >= NONE / 2) {
		errno = EINVAL;
		return -1;
	}
	*rules = NULL;
	*nrules = 0;
	if (opts && opts->threshold != 0) {
		thr = opts->threshold;
		if (!(thr > 0 && thr <= 1)) {
			errno = EINVAL;
			return -1;
		}
	}
	if (opts && opts->victim_share != 0) {
		vshare = opts->victim_share;
		if (!(vshare > 0 && vshare <= 1)) {
			errno = EINVAL;
			return -1;
		}
	}
	if (check_steps(opts ? opts->v4_steps : NULL, opts ? opts->n_v4_steps : 0, 32,
			default_v4, sizeof(default_v4), st.len[0], &st.n[0]) ||
	    check_steps(opts ? opts->v6_steps : NULL, opts ? opts->n_v6_steps : 0, 128,
			default_v6, sizeof(default_v6), st.len[1], &st.n[1])) {
		errno = EINVAL;
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (!(rel[i].score >= 0) || isinf(rel[i].score) ||
				rel[i].victim_nf == MSCOPE_AF_ANY_NF) {
			errno = EINVAL;
			return -1;
		}
		total += rel[i].score;
	}
	if (n == 0 || !(total > 0))
		return 0;
	tcut = thr * total * (1 - THRESH_SLACK);

	memset(&w, 0, sizeof(w));
	errno = ENOMEM;
	/* Stage 1: culprit side, per (culprit NF, kind). */
	if (group_relations(rel, n, &w, &ng))
		goto fail;
	w.item = malloc(n * sizeof(*w.item));
	w.node_of = malloc((n + 1) * sizeof(*w.node_of));
	w.crule = malloc(n * sizeof(*w.crule));
	if (!w.item || !w.node_of || !w.crule)
		goto fail;
	for (size_t i = 0; i < n; i++)
		w.crule[i] = NONE;
	for (size_t k = 0; k < ng; k++) {
		const struct group *g = &w.g[k];

		if (dedup_init(&w.dd, g->n))
			goto fail;
		for (uint32_t j = g->first; j < g->first + g->n; j++) {
			const struct mscope_af_relation *r = &rel[w.order[j]];
			struct fkey key;
			flow_fkey(&key, 0, r->culprit_has_flow, &r->culprit_flow);
			w.item[j] = dedup_add(&w.dd, &key, r->score);
		}
		memset(&w.s, 0, sizeof(w.s));
		w.s.thresh = tcut;
		w.s.st = &st;
		if (make_recs(&w.s, &w.dd, NULL) || side_run(&w.s, 0, w.node_of))
			goto fail;
		for (size_t j = 0; j < w.s.nrep; j++) {
			uint32_t unused;
			if (grow((void **)&w.cpfx, &capcr, ncr + 1, sizeof(*w.cpfx)) ||
			    grow((void **)&w.cnf, &capc2, ncr + 1, sizeof(*w.cnf)) ||
			    grow((void **)&w.ckind, &capc3, ncr + 1, sizeof(*w.ckind)) ||
			    grow((void **)&w.csum, &capc4, ncr + 1, sizeof(*w.csum)))
				goto fail;
			w.csum[ncr] = w.s.nodes[w.s.rep[j]].sum;
			node_prefix(&w.s, &w.s.nodes[w.s.rep[j]], &w.cpfx[ncr], &unused);
			w.cnf[ncr] = g->nf;
			w.ckind[ncr] = g->kind;
			w.s.nodes[w.s.rep[j]].out = (uint32_t)ncr;
			ncr++;
		}
		for (uint32_t j = g->first; j < g->first + g->n; j++) {
			uint32_t nd = w.node_of[w.item[j]];
			if (nd != NONE)
				w.crule[w.order[j]] = w.s.nodes[nd].out;
		}
		side_free(&w.s);
		dedup_free(&w.dd);
	}

	/* Stage 2: victim side inside each culprit cluster. Relations of each
	 * cluster in input order (counting sort into w.order). */
	w.rule = malloc(n * sizeof(*w.rule));
	w.cstart = calloc(ncr + 2, sizeof(*w.cstart));
	w.nfv = malloc((n + 1) * sizeof(*w.nfv));
	w.nfd = malloc((n + 1) * sizeof(*w.nfd));
	if (!w.rule || !w.cstart || !w.nfv || !w.nfd)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		w.rule[i] = NONE;
		if (w.crule[i] != NONE)
			w.cstart[w.crule[i] + 2]++;
	}
	for (size_t c = 0; c < ncr; c++)
		w.cstart[c + 2] += w.cstart[c + 1];
	for (size_t i = 0; i < n; i++)
		if (w.crule[i] != NONE)
			w.order[w.cstart[w.crule[i] + 1]++] = (uint32_t)i;
	/* Now cstart[c] .. cstart[c + 1] are cluster c's relations. */
	for (size_t c = 0; c < ncr; c++) {
		uint32_t a = w.cstart[c], b = w.cstart[c + 1], nnf = 0;

		if (dedup_init(&w.dd, b - a))
			goto fail;
		for (uint32_t j = a; j < b; j++) {
			const struct mscope_af_relation *r = &rel[w.order[j]];
			struct fkey key;
			flow_fkey(&key, r->victim_nf, 1, &r->victim_flow);
			w.item[j] = dedup_add(&w.dd, &key, r->score);
		}
		/* Dense victim NF ids in NF order. */
		for (uint32_t i = 0; i < w.dd.n; i++)
			w.nfv[i] = w.dd.keys[i].nf;
		qsort(w.nfv, w.dd.n, sizeof(*w.nfv), cmp_u32_val);
		for (uint32_t i = 0; i < w.dd.n; i++)
			if (!i || w.nfv[i] != w.nfv[i - 1])
				w.nfv[nnf++] = w.nfv[i];
		for (uint32_t i = 0; i < w.dd.n; i++) {
			uint32_t *p = bsearch(&w.dd.keys[i].nf, w.nfv, nnf, sizeof(*w.nfv),
					cmp_u32_val);
			assert(p);
			w.nfd[i] = (uint32_t)(p - w.nfv);
		}
		memset(&w.s, 0, sizeof(w.s));
		/* A victim cluster needs the global threshold and its share of the
		 * culprit's residual: a few victim rules per culprit, not dozens. */
		w.s.thresh = fmax(tcut, vshare * w.csum[c] * (1 - THRESH_SLACK));
		w.s.st = &st;
		w.s.with_nf = 1;
		w.s.nnf = nnf;
		if (make_recs(&w.s, &w.dd, w.nfd) || side_run(&w.s, 1, w.node_of))
			goto fail;
		for (size_t j = 0; j < w.s.nrep; j++) {
			struct node *e = &w.s.nodes[w.s.rep[j]];
			struct mscope_af_rule *o;
			uint32_t nfd;

			if (grow((void **)&w.out, &capout, nout + 1, sizeof(*w.out)))
				goto fail;
			o = &w.out[nout].r;
			memset(o, 0, sizeof(*o));
			w.out[nout].seq = (uint32_t)nout;
			w.out[nout].crule = (uint32_t)c;
			o->culprit_nf = w.cnf[c];
			o->kind = w.ckind[c];
			o->culprit = w.cpfx[c];
			o->culprit_has_flow = !mscope_af_prefix_is_any(&w.cpfx[c]);
			node_prefix(&w.s, e, &o->victim, &nfd);
			o->victim_nf = nfd == NONE ? MSCOPE_AF_ANY_NF : w.nfv[nfd];
			o->t_min_ns = UINT64_MAX;
			e->out = (uint32_t)nout;
			nout++;
		}
		for (uint32_t j = a; j < b; j++) {
			uint32_t nd = w.node_of[w.item[j]];
			if (nd != NONE)
				w.rule[w.order[j]] = w.s.nodes[nd].out;
		}
		side_free(&w.s);
		dedup_free(&w.dd);
	}

	/* Stage 3: per rule score, victims, time range. */
	{
		size_t cap = 16;
		while (cap < 2 * n)
			cap *= 2;
		w.ps.vk = malloc(cap * sizeof(*w.ps.vk));
		w.ps.rule = calloc(cap, sizeof(*w.ps.rule));
		w.ps.mask = cap - 1;
		if (!w.ps.vk || !w.ps.rule)
			goto fail;
	}
	for (size_t i = 0; i < n; i++) {
		struct mscope_af_rule *o;
		if (w.rule[i] == NONE)
			continue;
		o = &w.out[w.rule[i]].r;
		o->score += rel[i].score;
		o->relations++;
		if (rel[i].t_ns < o->t_min_ns)
			o->t_min_ns = rel[i].t_ns;
		if (rel[i].t_ns > o->t_max_ns)
			o->t_max_ns = rel[i].t_ns;
		o->victims += (uint64_t)pair_set_add(&w.ps, w.rule[i], rel[i].victim_key);
	}
	/* Distinct victims per culprit cluster (one victim can be in several of
	 * its rules, e.g. when it queued at two NFs): the same set, keyed by cluster. */
	{
		uint64_t *cv = calloc(ncr + 1, sizeof(*cv));
		if (!cv)
			goto fail;
		memset(w.ps.rule, 0, (w.ps.mask + 1) * sizeof(*w.ps.rule));
		for (size_t i = 0; i < n; i++)
			if (w.rule[i] != NONE)
				cv[w.crule[i]] += (uint64_t)pair_set_add(&w.ps, w.crule[i],
						rel[i].victim_key);
		for (size_t j = 0; j < nout; j++)
			w.out[j].r.cluster_victims = cv[w.out[j].crule];
		free(cv);
	}
	for (size_t j = 0; j < nout; j++)
		w.out[j].r.share = w.out[j].r.score / total;
	/* Culprit clusters ranked by their residual (the sum of their rules). */
	if (ncr) {
		struct cluster_rank *cl = calloc(ncr, sizeof(*cl));
		uint32_t *rank = malloc(ncr * sizeof(*rank));
		if (!cl || !rank) {
			free(cl);
			free(rank);
			goto fail;
		}
		for (size_t c = 0; c < ncr; c++)
			cl[c].id = (uint32_t)c;
		for (size_t j = 0; j < nout; j++)
			cl[w.out[j].crule].score += w.out[j].r.score;
		for (size_t j = 0; j < nout; j++)
			w.out[j].r.cluster_score = cl[w.out[j].crule].score;
		qsort(cl, ncr, sizeof(*cl), cmp_cluster);
		for (size_t c = 0; c < ncr; c++)
			rank[cl[c].id] = (uint32_t)c;
		for (size_t j = 0; j < nout; j++)
			w.out[j].r.cluster = rank[w.out[j].crule];
		free(cl);
		free(rank);
	}
	if (nout) {
		qsort(w.out, nout, sizeof(*w.out), cmp_out_rule);
		res = malloc(nout * sizeof(*res));
		if (!res)
			goto fail;
		for (size_t j = 0; j < nout; j++)
			res[j] = w.out[j].r;
	}
	work_free(&w);
	*rules = res;
	*nrules = nout;
	return 0;
fail:
	{
		int e = errno ? errno : ENOMEM;
		work_free(&w);
		errno = e;
	}
	return -1;
}
