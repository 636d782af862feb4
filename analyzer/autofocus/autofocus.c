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
 *    every heavy cluster of the lattice exactly once, and a light partition
 *    is never refined (its descendants are lighter). With hierarchies, a
 *    child refines the current dimension one more step or a later one.
 *  - G. Cormode, F. Korn, S. Muthukrishnan, D. Srivastava, "Finding
 *    Hierarchical Heavy Hitters in Streaming Data", TKDD 2008: discounted
 *    counts in several dimensions.
 *
 * One side (culprit or victim) runs in three steps:
 *  1. per item (a distinct flow with its summed score) and dimension, the
 *     key at each hierarchy depth: addresses get dense ids from one sort, so
 *     that the sub-prefixes of one prefix have consecutive ids and a split
 *     is a counting pass over a small id range;
 *  2. BUC over the items: record every cluster with score >= threshold;
 *  3. compression: clusters most specific first (sum of depths), each takes
 *     the not yet explained items it contains; it is reported when they
 *     still weigh at least the threshold.
 */
#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "af_private.h"
#include "mscope_autofocus.h"

#define NONE UINT32_MAX
#define MAX_DIMS 7
#define MAX_STEPS 32
/* Relative slack so that a cluster at exactly the threshold is not lost to
 * the rounding of a sum. */
#define THRESH_SLACK 1e-9

enum dim_type { DIM_NF, DIM_FAM, DIM_PROTO, DIM_SPORT, DIM_DPORT, DIM_SRC, DIM_DST };

static const uint8_t default_v4[] = { 8, 16, 24, 32 };
static const uint8_t default_v6[] = { 32, 48, 64, 128 };

/* Prefix length at each address depth; len[0] = 0 is "/0". */
struct steps {
	uint8_t v4[MAX_STEPS + 1];
	uint8_t v6[MAX_STEPS + 1];
	unsigned int n4, n6;
};

/* A deduplicated (NF, kind, flow). fam 0: no flow or not IP. Padding is
 * explicit so that keys hash and compare as bytes. */
struct fkey {
	uint32_t nf;
	uint8_t kind;
	uint8_t fam;
	uint8_t proto;
	uint8_t pad0;
	uint16_t sport, dport;
	uint32_t pad1;
	uint8_t src[16], dst[16];
};
_Static_assert(sizeof(struct fkey) == 48, "struct fkey must have no hidden padding");

/* A cluster of one side's lattice. */
struct node {
	uint8_t depth[MAX_DIMS];
	uint32_t key[MAX_DIMS];
	uint32_t rep;                 /* one member item */
	uint32_t spec;                /* sum of depths: larger is more specific */
	double count;                 /* score of all members */
	double sum;                   /* reported: score of the members it explains */
	uint32_t pool_off, pool_len;  /* reported: those members in side.pool */
};

struct child {
	uint32_t off, len;
	double count;
};

/* One side's search. Items are 0..n-1; keys[i] and score[i] describe item i. */
struct side {
	const struct fkey *keys;
	const double *score;
	uint32_t n;
	double thresh;
	const struct steps *st;
	int with_nf;

	int ndims;
	uint8_t dtype[MAX_DIMS];
	uint8_t nlev[MAX_DIMS];
	int fam_dim;

	uint8_t *famx;                /* 0 IPv4, 1 IPv6, 0xff none */
	uint32_t *nfid;               /* dense victim NF id */
	uint32_t *addr[2][MAX_STEPS + 1];

	uint32_t *range;              /* the items, permuted by the search */
	uint32_t *scratch;
	double *cs;
	uint32_t *cn;
	size_t wcap;
	uint64_t *pairs;

	struct node *nodes;
	size_t nnodes, capnodes;
	uint32_t *assign;             /* item -> reported node, or NONE */
	uint32_t *pool;
	uint32_t npool;
	uint32_t *rep;                /* reported nodes in processing order */
	size_t nrep;
};

static inline unsigned int
port_class(uint16_t p)
{
	return p < 1024 ? 0 : p < 49152 ? 1 : 2;
}

static const uint16_t class_lo[3] = { 0, 1024, 49152 };
static const uint16_t class_hi[3] = { 1023, 49151, 65535 };

static inline uint32_t
key(const struct side *s, int d, unsigned int depth, uint32_t i)
{
	const struct fkey *k = &s->keys[i];
	uint16_t p;

	switch (s->dtype[d]) {
	case DIM_NF:
		return s->nfid[i];
	case DIM_FAM:
		return s->famx[i] == 0xff ? NONE : s->famx[i];
	case DIM_PROTO:
		return s->famx[i] == 0xff ? NONE : k->proto;
	case DIM_SPORT:
	case DIM_DPORT:
		if (s->famx[i] == 0xff || !af_proto_has_ports(k->proto))
			return NONE;
		p = s->dtype[d] == DIM_SPORT ? k->sport : k->dport;
		return depth == 1 ? port_class(p) : p;
	case DIM_SRC:
		return s->addr[0][depth][i];
	case DIM_DST:
		return s->addr[1][depth][i];
	}
	return NONE;
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

/* ------------------------------------------------------------ address ids */

struct addr_ctx {
	const struct side *s;
	int which;
};

static inline const uint8_t *
addr_of(const struct fkey *k, int which)
{
	return which ? k->dst : k->src;
}

static int
cmp_addr(const void *a, const void *b, void *arg)
{
	const struct addr_ctx *c = arg;
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	int r;

	if (c->s->famx[x] != c->s->famx[y])
		return c->s->famx[x] < c->s->famx[y] ? -1 : 1;
	r = memcmp(addr_of(&c->s->keys[x], c->which), addr_of(&c->s->keys[y], c->which), 16);
	if (r)
		return r;
	return x < y ? -1 : x > y;
}

/* Number of leading bits a and b share. */
static unsigned int
common_bits(const uint8_t *a, const uint8_t *b)
{
	for (unsigned int i = 0; i < 16; i++)
		if (a[i] != b[i])
			return i * 8 + (unsigned int)__builtin_clz((unsigned int)(a[i] ^ b[i])) - 24;
	return 128;
}

/* Dense ids of the item's address prefix at every depth: sorted order makes
 * the sub-prefixes of a prefix consecutive. */
static int
build_addr_ids(struct side *s, int which, unsigned int nlev, uint32_t *list)
{
	uint32_t id[MAX_STEPS + 1] = { 0 };
	struct addr_ctx ctx = { s, which };
	uint32_t m = 0;

	for (unsigned int k = 1; k <= nlev; k++) {
		s->addr[which][k] = malloc((size_t)s->n * sizeof(uint32_t) + 1);
		if (!s->addr[which][k])
			return -1;
		for (uint32_t i = 0; i < s->n; i++)
			s->addr[which][k][i] = NONE;
	}
	for (uint32_t i = 0; i < s->n; i++)
		if (s->famx[i] != 0xff)
			list[m++] = i;
	qsort_r(list, m, sizeof(*list), cmp_addr, &ctx);
	for (uint32_t j = 0; j < m; j++) {
		uint32_t x = list[j];
		unsigned int fam = s->famx[x];
		unsigned int nst = fam ? s->st->n6 : s->st->n4;
		const uint8_t *len = fam ? s->st->v6 : s->st->v4;

		if (j > 0) {
			uint32_t p = list[j - 1];
			if (s->famx[p] != fam) {
				for (unsigned int k = 1; k <= nlev; k++)
					id[k]++;
			} else {
				unsigned int cpl = common_bits(addr_of(&s->keys[p], which),
						addr_of(&s->keys[x], which));
				for (unsigned int k = 1; k <= nst; k++)
					if (len[k] > cpl)
						id[k]++;
			}
		}
		for (unsigned int k = 1; k <= nst; k++)
			s->addr[which][k][x] = id[k];
	}
	return 0;
}

static int
cmp_u32_by(const void *a, const void *b, void *arg)
{
	const uint32_t *v = arg;
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	if (v[x] != v[y])
		return v[x] < v[y] ? -1 : 1;
	return x < y ? -1 : x > y;
}

static int
side_prepare(struct side *s)
{
	unsigned int nlev_addr = s->st->n4 > s->st->n6 ? s->st->n4 : s->st->n6;
	uint32_t *list;
	int d = 0;

	if (s->with_nf)
		s->dtype[d] = DIM_NF, s->nlev[d++] = 1;
	s->fam_dim = d;
	s->dtype[d] = DIM_FAM, s->nlev[d++] = 1;
	/* High-cardinality dimensions first: partitions shrink fastest (BUC). */
	s->dtype[d] = DIM_DST, s->nlev[d++] = (uint8_t)nlev_addr;
	s->dtype[d] = DIM_SRC, s->nlev[d++] = (uint8_t)nlev_addr;
	s->dtype[d] = DIM_DPORT, s->nlev[d++] = 2;
	s->dtype[d] = DIM_SPORT, s->nlev[d++] = 2;
	s->dtype[d] = DIM_PROTO, s->nlev[d++] = 1;
	s->ndims = d;

	s->famx = malloc(s->n + 1);
	s->range = malloc(((size_t)s->n + 1) * sizeof(uint32_t));
	s->scratch = malloc(((size_t)s->n + 1) * sizeof(uint32_t));
	s->pairs = malloc(((size_t)s->n + 1) * sizeof(uint64_t));
	s->assign = malloc(((size_t)s->n + 1) * sizeof(uint32_t));
	s->pool = malloc(((size_t)s->n + 1) * sizeof(uint32_t));
	if (!s->famx || !s->range || !s->scratch || !s->pairs || !s->assign || !s->pool)
		return -1;
	for (uint32_t i = 0; i < s->n; i++) {
		uint8_t f = s->keys[i].fam;
		s->famx[i] = f == 4 ? 0 : f == 6 ? 1 : 0xff;
	}
	list = s->scratch;
	if (build_addr_ids(s, 0, nlev_addr, list) || build_addr_ids(s, 1, nlev_addr, list))
		return -1;
	if (s->with_nf) {
		uint32_t *nfv = malloc(((size_t)s->n + 1) * sizeof(uint32_t));
		uint32_t id = 0;

		s->nfid = malloc(((size_t)s->n + 1) * sizeof(uint32_t));
		if (!nfv || !s->nfid) {
			free(nfv);
			return -1;
		}
		for (uint32_t i = 0; i < s->n; i++) {
			nfv[i] = s->keys[i].nf;
			list[i] = i;
		}
		qsort_r(list, s->n, sizeof(*list), cmp_u32_by, nfv);
		for (uint32_t j = 0; j < s->n; j++) {
			if (j > 0 && nfv[list[j]] != nfv[list[j - 1]])
				id++;
			s->nfid[list[j]] = id;
		}
		free(nfv);
	}
	return 0;
}

static void
side_free(struct side *s)
{
	free(s->famx);
	free(s->nfid);
	for (int w = 0; w < 2; w++)
		for (int k = 0; k <= MAX_STEPS; k++)
			free(s->addr[w][k]);
	free(s->range);
	free(s->scratch);
	free(s->cs);
	free(s->cn);
	free(s->pairs);
	free(s->nodes);
	free(s->assign);
	free(s->pool);
	free(s->rep);
	memset(s, 0, sizeof(*s));
}

/* ------------------------------------------------------------ BUC search */

static int
add_node(struct side *s, const uint8_t *depth, uint32_t rep, double count)
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
	e->rep = rep;
	e->count = count;
	for (int d = 0; d < s->ndims; d++) {
		e->depth[d] = depth[d];
		e->spec += depth[d];
		e->key[d] = depth[d] ? key(s, d, depth[d], rep) : 0;
	}
	return 0;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int
push_child(struct child **ch, size_t *nch, size_t *cap, uint32_t off, uint32_t len, double c)
{
	if (*nch == *cap) {
		size_t nc = *cap ? *cap * 2 : 8;
		struct child *p = realloc(*ch, nc * sizeof(*p));
		if (!p)
			return -1;
		*ch = p;
		*cap = nc;
	}
	(*ch)[(*nch)++] = (struct child){ off, len, c };
	return 0;
}

/*
 * Group the items of range[0, len) by their key of dimension d at `depth`:
 * the heavy groups are moved to the front, consecutive, and returned in key
 * order as *ch (offsets into range). Counting over the key span when it is
 * small next to len, sorting otherwise.
 */
static int
split(struct side *s, uint32_t *range, uint32_t len, int d, unsigned int depth,
		struct child **ch, size_t *nch)
{
	uint32_t lo = NONE, hi = 0, present = 0, tail;
	size_t cap = 0;

	*ch = NULL;
	*nch = 0;
	for (uint32_t i = 0; i < len; i++) {
		uint32_t k = key(s, d, depth, range[i]);
		if (k == NONE)
			continue;
		present++;
		if (k < lo)
			lo = k;
		if (k > hi)
			hi = k;
	}
	if (!present)
		return 0;
	uint64_t w = (uint64_t)hi - lo + 1;
	if (w <= 4 * (uint64_t)len + 1024) {
		if (w > s->wcap) {
			double *cs = realloc(s->cs, w * sizeof(*cs));
			if (cs)
				s->cs = cs;
			uint32_t *cn = realloc(s->cn, w * sizeof(*cn));
			if (cn)
				s->cn = cn;
			if (!cs || !cn)
				return -1;
			s->wcap = w;
		}
		memset(s->cs, 0, w * sizeof(*s->cs));
		memset(s->cn, 0, w * sizeof(*s->cn));
		for (uint32_t i = 0; i < len; i++) {
			uint32_t k = key(s, d, depth, range[i]);
			if (k == NONE)
				continue;
			s->cs[k - lo] += s->score[range[i]];
			s->cn[k - lo]++;
		}
		/* cn becomes each heavy bucket's write position, NONE for the others. */
		tail = 0;
		for (uint64_t b = 0; b < w; b++) {
			if (s->cn[b] && heavy(s, s->cs[b])) {
				if (push_child(ch, nch, &cap, tail, s->cn[b], s->cs[b]))
					return -1;
				uint32_t c = s->cn[b];
				s->cn[b] = tail;
				tail += c;
			} else {
				s->cn[b] = NONE;
			}
		}
		if (!*nch)
			return 0;
		for (uint32_t i = 0; i < len; i++) {
			uint32_t x = range[i], k = key(s, d, depth, x);
			if (k == NONE || s->cn[k - lo] == NONE)
				s->scratch[tail++] = x;
			else
				s->scratch[s->cn[k - lo]++] = x;
		}
	} else {
		uint32_t m = 0, h = 0;
		uint64_t *pr = s->pairs;

		for (uint32_t i = 0; i < len; i++) {
			uint32_t k = key(s, d, depth, range[i]);
			if (k != NONE)
				pr[m++] = (uint64_t)k << 32 | i;
		}
		qsort(pr, m, sizeof(*pr), cmp_u64);
		/* Heavy runs to the front, in key order; then the rest. */
		for (uint32_t a = 0, b; a < m; a = b) {
			double c = 0;
			for (b = a; b < m && pr[b] >> 32 == pr[a] >> 32; b++)
				c += s->score[range[(uint32_t)pr[b]]];
			if (!heavy(s, c))
				continue;
			if (push_child(ch, nch, &cap, h, b - a, c))
				return -1;
			for (uint32_t j = a; j < b; j++) {
				s->scratch[h++] = range[(uint32_t)pr[j]];
				pr[j] |= 0xffffffffull << 32; /* mark taken */
			}
		}
		if (!*nch)
			return 0;
		/* Mark taken positions in `range` itself, then append the rest. */
		for (uint32_t j = 0; j < m; j++)
			if (pr[j] >> 32 == 0xffffffffull)
				range[(uint32_t)pr[j]] = NONE;
		tail = h;
		for (uint32_t i = 0; i < len; i++)
			if (range[i] != NONE)
				s->scratch[tail++] = range[i];
	}
	assert(tail == len);
	memcpy(range, s->scratch, (size_t)len * sizeof(*range));
	return 0;
}

static int
visit(struct side *s, uint32_t *range, uint32_t len, uint8_t *depth, int dstart, double count)
{
	if (add_node(s, depth, range[0], count))
		return -1;
	for (int d = dstart; d < s->ndims; d++) {
		struct child *ch;
		size_t nch;
		int rc = 0;

		if (depth[d] >= s->nlev[d])
			continue;
		/* Addresses narrow only inside one family. */
		if (is_addr(s, d) && depth[s->fam_dim] == 0)
			continue;
		if (split(s, range, len, d, depth[d] + 1u, &ch, &nch)) {
			free(ch);
			return -1;
		}
		depth[d]++;
		for (size_t c = 0; c < nch && !rc; c++)
			rc = visit(s, range + ch[c].off, ch[c].len, depth, d, ch[c].count);
		depth[d]--;
		free(ch);
		if (rc)
			return -1;
	}
	return 0;
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
	for (int d = 0; d < s->ndims; d++)
		if (x->key[d] != y->key[d])
			return x->key[d] < y->key[d] ? -1 : 1;
	return 0;
}

static inline int
member(const struct side *s, const struct node *e, uint32_t x)
{
	for (int d = 0; d < s->ndims; d++)
		if (e->depth[d] && key(s, d, e->depth[d], x) != e->key[d])
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
			if (de && key(s, d, de, r->rep) != e->key[d])
				return DISJOINT;
		} else {
			if (dr && key(s, d, dr, e->rep) != r->key[d])
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
					uint32_t x = s->pool[r->pool_off + q];
					if (member(s, e, x))
						res -= s->score[x];
				}
				break;
			}
		}
		if (!heavy(s, res) && !forced)
			continue;
		for (uint32_t x = 0; x < s->n; x++) {
			if (s->assign[x] != NONE || !member(s, e, x))
				continue;
			s->assign[x] = order[o];
			s->pool[s->npool++] = x;
			sum += s->score[x];
		}
		if (heavy(s, sum) || (forced && sum > 0)) {
			e->sum = sum;
			e->pool_off = off;
			e->pool_len = s->npool - off;
			s->rep[s->nrep++] = order[o];
		} else {
			/* Only rounding can get here: undo. */
			for (uint32_t q = off; q < s->npool; q++)
				s->assign[s->pool[q]] = NONE;
			s->npool = off;
		}
	}
	free(order);
	return 0;
}

/* Run one side: on return s->rep lists the reported clusters and s->assign
 * maps each item to one of them or NONE. */
static int
side_run(struct side *s, int force_root)
{
	uint8_t depth[MAX_DIMS] = { 0 };
	double total = 0;

	if (side_prepare(s))
		return -1;
	for (uint32_t i = 0; i < s->n; i++) {
		s->range[i] = i;
		total += s->score[i];
	}
	if (s->n && heavy(s, total)) {
		if (visit(s, s->range, s->n, depth, 0, total))
			return -1;
	} else if (s->n && force_root) {
		if (add_node(s, depth, 0, total))
			return -1;
	}
	return compress(s, force_root);
}

/* The aggregate a cluster stands for. */
static void
node_prefix(const struct side *s, const struct node *e, struct mscope_af_prefix *p,
		uint32_t *nf)
{
	const struct fkey *k = &s->keys[e->rep];

	mscope_af_prefix_any(p);
	*nf = MSCOPE_AF_ANY_NF;
	for (int d = 0; d < s->ndims; d++) {
		unsigned int dep = e->depth[d];
		const uint8_t *len = k->fam == 6 ? s->st->v6 : s->st->v4;
		uint8_t *a;
		const uint8_t *src;
		unsigned int bits;

		if (!dep)
			continue;
		switch (s->dtype[d]) {
		case DIM_NF:
			*nf = k->nf;
			break;
		case DIM_FAM:
			p->family = k->fam;
			break;
		case DIM_PROTO:
			p->proto = k->proto;
			break;
		case DIM_SPORT:
			p->sport_lo = dep == 1 ? class_lo[port_class(k->sport)] : k->sport;
			p->sport_hi = dep == 1 ? class_hi[port_class(k->sport)] : k->sport;
			break;
		case DIM_DPORT:
			p->dport_lo = dep == 1 ? class_lo[port_class(k->dport)] : k->dport;
			p->dport_hi = dep == 1 ? class_hi[port_class(k->dport)] : k->dport;
			break;
		case DIM_SRC:
		case DIM_DST:
			bits = len[dep];
			a = s->dtype[d] == DIM_SRC ? p->src : p->dst;
			src = s->dtype[d] == DIM_SRC ? k->src : k->dst;
			if (s->dtype[d] == DIM_SRC)
				p->src_len = (uint8_t)bits;
			else
				p->dst_len = (uint8_t)bits;
			memcpy(a, src, bits / 8);
			if (bits % 8)
				a[bits / 8] = src[bits / 8] & (uint8_t)(0xff << (8 - bits % 8));
			break;
		}
	}
}

/* ------------------------------------------------------------ dedup */

struct dedup {
	uint32_t *slot;               /* item + 1, 0 empty */
	size_t mask;
	struct fkey *keys;
	double *score;
	uint32_t n;
};

static uint64_t
hash_key(const struct fkey *k)
{
	uint64_t w[6], h = 0x9e3779b97f4a7c15ull;

	memcpy(w, k, sizeof(w));
	for (int i = 0; i < 6; i++) {
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

/* Add score under key; returns the item index. Capacity was sized for all adds. */
static uint32_t
dedup_add(struct dedup *t, const struct fkey *k, double score)
{
	size_t h = (size_t)hash_key(k) & t->mask;

	for (;; h = (h + 1) & t->mask) {
		uint32_t v = t->slot[h];
		if (!v)
			break;
		if (!memcmp(&t->keys[v - 1], k, sizeof(*k))) {
			t->score[v - 1] += score;
			return v - 1;
		}
	}
	t->keys[t->n] = *k;
	t->score[t->n] = score;
	t->slot[h] = ++t->n;
	return t->n - 1;
}

/* A relation's flow as a key (no flow and non-IP flows are both "fam 0"). */
static void
flow_fkey(struct fkey *out, uint32_t nf, uint8_t kind, int has, const struct mscope_flow_key *f)
{
	memset(out, 0, sizeof(*out));
	out->nf = nf;
	out->kind = kind;
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

/* ------------------------------------------------------------ driver */

struct crule {
	uint32_t nf;
	uint8_t kind;
	struct mscope_af_prefix pfx;
};

struct out_rule {
	struct mscope_af_rule r;
	uint32_t seq;                 /* creation order: fixed tie-break */
};

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
		if (v[i] == 0 || v[i] > max || (i && v[i] <= v[i - 1]))
			return -1;
		out[i + 1] = v[i];
	}
	*nout = (unsigned int)n;
	return 0;
}

static int
cmp_item_group(const void *a, const void *b, void *arg)
{
	const struct fkey *k = arg;
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	if (k[x].nf != k[y].nf)
		return k[x].nf < k[y].nf ? -1 : 1;
	if (k[x].kind != k[y].kind)
		return k[x].kind < k[y].kind ? -1 : 1;
	return x < y ? -1 : x > y;
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

int
mscope_af_aggregate(const struct mscope_af_relation *rel, size_t n,
		const struct mscope_af_opts *opts,
		struct mscope_af_rule **rules, size_t *nrules)
{
	double thr = MSCOPE_AF_DEFAULT_THRESHOLD, total = 0, tcut;
	struct steps st;
	struct dedup cd = { 0 }, vd = { 0 };
	struct side s = { 0 };
	struct pair_set ps = { 0 };
	uint32_t *item_of = NULL, *crule_of = NULL, *rule_of = NULL, *grp = NULL;
	uint32_t *perm = NULL, *newpos = NULL, *cstart = NULL, *vitem = NULL;
	struct crule *cr = NULL;
	struct out_rule *out = NULL;
	size_t ncr = 0, capcr = 0, nout = 0, capout = 0;
	struct mscope_af_rule *res = NULL;
	int err = ENOMEM;

	if (!rules || !nrules || (n && !rel) || n >= NONE) {
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
	if (check_steps(opts ? opts->v4_steps : NULL, opts ? opts->n_v4_steps : 0, 32,
			default_v4, sizeof(default_v4), st.v4, &st.n4) ||
	    check_steps(opts ? opts->v6_steps : NULL, opts ? opts->n_v6_steps : 0, 128,
			default_v6, sizeof(default_v6), st.v6, &st.n6)) {
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

	/* Stage 1: culprit side, per (culprit NF, kind). */
	item_of = malloc(n * sizeof(*item_of));
	if (!item_of || dedup_init(&cd, n))
		goto fail;
	for (size_t i = 0; i < n; i++) {
		struct fkey k;
		flow_fkey(&k, rel[i].culprit_nf, rel[i].kind, rel[i].culprit_has_flow,
				&rel[i].culprit_flow);
		item_of[i] = dedup_add(&cd, &k, rel[i].score);
	}
	/* Make each (NF, kind) group contiguous, keeping first-seen order inside. */
	perm = malloc((cd.n + 1) * sizeof(*perm));
	newpos = malloc((cd.n + 1) * sizeof(*newpos));
	grp = malloc((cd.n + 1) * sizeof(*grp));
	if (!perm || !newpos || !grp)
		goto fail;
	for (uint32_t i = 0; i < cd.n; i++)
		perm[i] = i;
	qsort_r(perm, cd.n, sizeof(*perm), cmp_item_group, cd.keys);
	{
		struct fkey *k2 = malloc((cd.n + 1) * sizeof(*k2));
		double *s2 = malloc((cd.n + 1) * sizeof(*s2));
		if (!k2 || !s2) {
			free(k2);
			free(s2);
			goto fail;
		}
		for (uint32_t j = 0; j < cd.n; j++) {
			k2[j] = cd.keys[perm[j]];
			s2[j] = cd.score[perm[j]];
			newpos[perm[j]] = j;
		}
		free(cd.keys);
		free(cd.score);
		cd.keys = k2;
		cd.score = s2;
	}
	for (size_t i = 0; i < n; i++)
		item_of[i] = newpos[item_of[i]];
	/* grp[item] = culprit rule index of the item, or NONE. */
	for (uint32_t a = 0, b; a < cd.n; a = b) {
		for (b = a; b < cd.n && cd.keys[b].nf == cd.keys[a].nf &&
				cd.keys[b].kind == cd.keys[a].kind; b++)
			;
		memset(&s, 0, sizeof(s));
		s.keys = cd.keys + a;
		s.score = cd.score + a;
		s.n = b - a;
		s.thresh = tcut;
		s.st = &st;
		if (side_run(&s, 0))
			goto fail;
		for (uint32_t i = a; i < b; i++)
			grp[i] = NONE;
		for (size_t j = 0; j < s.nrep; j++) {
			const struct node *e = &s.nodes[s.rep[j]];
			uint32_t anynf;
			if (ncr == capcr) {
				size_t nc = capcr ? capcr * 2 : 16;
				struct crule *p = realloc(cr, nc * sizeof(*p));
				if (!p)
					goto fail;
				cr = p;
				capcr = nc;
			}
			cr[ncr].nf = cd.keys[a].nf;
			cr[ncr].kind = cd.keys[a].kind;
			node_prefix(&s, e, &cr[ncr].pfx, &anynf);
			for (uint32_t q = 0; q < e->pool_len; q++)
				grp[a + s.pool[e->pool_off + q]] = (uint32_t)ncr;
			ncr++;
		}
		side_free(&s);
	}

	/* Stage 2: victim side inside each culprit cluster. */
	crule_of = malloc(n * sizeof(*crule_of));
	rule_of = malloc(n * sizeof(*rule_of));
	cstart = calloc(ncr + 2, sizeof(*cstart));
	if (!crule_of || !rule_of || !cstart)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		crule_of[i] = grp[item_of[i]];
		rule_of[i] = NONE;
		if (crule_of[i] != NONE)
			cstart[crule_of[i] + 1]++;
	}
	for (size_t c = 0; c < ncr; c++)
		cstart[c + 1] += cstart[c];
	/* Relations of each culprit cluster, in input order (counting sort). */
	free(perm);
	perm = malloc((cstart[ncr] + 1) * sizeof(*perm));
	vitem = malloc((cstart[ncr] + 1) * sizeof(*vitem));
	if (!perm || !vitem)
		goto fail;
	{
		uint32_t *fill = newpos;  /* reuse: ncr + 1 <= cd.n + 1 */
		for (size_t c = 0; c < ncr; c++)
			fill[c] = cstart[c];
		for (size_t i = 0; i < n; i++)
			if (crule_of[i] != NONE)
				perm[fill[crule_of[i]]++] = (uint32_t)i;
	}
	for (size_t c = 0; c < ncr; c++) {
		uint32_t a = cstart[c], b = cstart[c + 1];

		if (dedup_init(&vd, b - a))
			goto fail;
		for (uint32_t j = a; j < b; j++) {
			const struct mscope_af_relation *r = &rel[perm[j]];
			struct fkey k;
			flow_fkey(&k, r->victim_nf, 0, 1, &r->victim_flow);
			vitem[j] = dedup_add(&vd, &k, r->score);
		}
		memset(&s, 0, sizeof(s));
		s.keys = vd.keys;
		s.score = vd.score;
		s.n = vd.n;
		s.thresh = tcut;
		s.st = &st;
		s.with_nf = 1;
		if (side_run(&s, 1))
			goto fail;
		for (size_t j = 0; j < s.nrep; j++) {
			const struct node *e = &s.nodes[s.rep[j]];
			struct mscope_af_rule *o;
			if (nout == capout) {
				size_t nc = capout ? capout * 2 : 16;
				struct out_rule *p = realloc(out, nc * sizeof(*p));
				if (!p)
					goto fail;
				out = p;
				capout = nc;
			}
			o = &out[nout].r;
			memset(o, 0, sizeof(*o));
			out[nout].seq = (uint32_t)nout;
			o->culprit_nf = cr[c].nf;
			o->kind = cr[c].kind;
			o->culprit = cr[c].pfx;
			o->culprit_has_flow = !mscope_af_prefix_is_any(&cr[c].pfx);
			node_prefix(&s, e, &o->victim, &o->victim_nf);
			o->t_min_ns = UINT64_MAX;
			/* Reuse the item -> reported node map: mark with the rule. */
			for (uint32_t q = 0; q < e->pool_len; q++)
				s.assign[s.pool[e->pool_off + q]] = (uint32_t)nout | 0x80000000u;
			nout++;
		}
		for (uint32_t j = a; j < b; j++) {
			uint32_t v = s.assign[vitem[j]];
			if (v != NONE && (v & 0x80000000u))
				rule_of[perm[j]] = v & 0x7fffffffu;
		}
		side_free(&s);
		dedup_free(&vd);
	}

	/* Stage 3: per rule score, victims, time range. */
	{
		size_t cap = 16;
		while (cap < 2 * n)
			cap *= 2;
		ps.vk = malloc(cap * sizeof(*ps.vk));
		ps.rule = calloc(cap, sizeof(*ps.rule));
		ps.mask = cap - 1;
		if (!ps.vk || !ps.rule)
			goto fail;
	}
	for (size_t i = 0; i < n; i++) {
		struct mscope_af_rule *o;
		if (rule_of[i] == NONE)
			continue;
		o = &out[rule_of[i]].r;
		o->score += rel[i].score;
		o->relations++;
		if (rel[i].t_ns < o->t_min_ns)
			o->t_min_ns = rel[i].t_ns;
		if (rel[i].t_ns > o->t_max_ns)
			o->t_max_ns = rel[i].t_ns;
		o->victims += (uint64_t)pair_set_add(&ps, rule_of[i], rel[i].victim_key);
	}
	for (size_t j = 0; j < nout; j++)
		out[j].r.share = out[j].r.score / total;
	if (nout)
		qsort(out, nout, sizeof(*out), cmp_out_rule);
	if (nout) {
		res = malloc(nout * sizeof(*res));
		if (!res)
			goto fail;
		for (size_t j = 0; j < nout; j++)
			res[j] = out[j].r;
	}
	*rules = res;
	*nrules = nout;
	err = 0;
fail:
	side_free(&s);
	dedup_free(&cd);
	dedup_free(&vd);
	free(ps.vk);
	free(ps.rule);
	free(item_of);
	free(crule_of);
	free(rule_of);
	free(grp);
	free(perm);
	free(newpos);
	free(cstart);
	free(vitem);
	free(cr);
	free(out);
	if (err) {
		errno = err;
		return -1;
	}
	return 0;
}
