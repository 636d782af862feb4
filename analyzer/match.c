/* SPDX-License-Identifier: BSD-3-Clause */
/* Matching packets across hops (design.md "Packet identity"): the upstream tx
 * of wire ID W at time e is the arrival of the downstream rx of W, a = e.
 * Every transmitted hop is chained in a hash table by its wire ID; an rx picks
 * the nearest earlier unconsumed tx of another node within the window.
 * Collisions of the 32-bit ID are resolved by that time proximity, then by
 * the graph: matches over edges that carry almost nothing are redone over the
 * significant edges, and what stays ambiguous is counted as unresolved. */
#include <stdlib.h>
#include <string.h>

#include "an_internal.h"

#define MAX_CHAIN 64     /* candidates examined per rx (hostile input bound) */
#define MAX_DEPTH 255    /* hops per packet path */

/* Transmitted hops by wire ID: open addressing with duplicates, each entry
 * the wire ID and the hop (bit 31: already matched), so that the candidates
 * of an rx sit in one or two cache lines. */
struct wtab {
	uint32_t *ent;          /* pairs (wire, hop | CONSUMED); hop UINT32_MAX = empty */
	uint32_t cap;           /* slots: ~1.3 per entry (not a power of two) */
};

#define CONSUMED 0x80000000u
#define EMPTY UINT32_MAX

#define SLOT(wt, w) ((uint32_t)(((uint64_t)whash(w) * (wt)->cap) >> 32))
#define NEXT(wt, i) ((i) + 1 == (wt)->cap ? 0 : (i) + 1)

static inline uint32_t
whash(uint32_t w)
{
	w ^= w >> 16;
	w *= 0x7feb352dU;
	w ^= w >> 15;
	w *= 0x846ca68bU;
	w ^= w >> 16;
	return w;
}

static bool
link_allowed(const struct mscope_analysis *an, uint32_t from, uint32_t to)
{
	const char *f = an->nodes[from].nf, *t = an->nodes[to].nf;

	if (an->ntopo_links == 0)
		return true;
	for (size_t i = 0; i < an->ntopo_links; i++) {
		const char *lf = an->topo_links[i][0];
		if (strcmp(an->topo_links[i][1], t))
			continue;
		if (!strcmp(lf, f))
			return true;
		/* the scenario format calls the traffic entry point "source" */
		if (an->nodes[from].is_source && !strcmp(lf, "source"))
			return true;
	}
	return false;
}

static inline uint32_t *
slot0(const struct wtab *wt, uint32_t wire)
{
	return &wt->ent[2 * (size_t)SLOT(wt, wire)];
}

static void
consume(struct wtab *wt, uint32_t wire, uint32_t hop, bool on)
{
	for (uint32_t i = SLOT(wt, wire);; i = NEXT(wt, i)) {
		uint32_t *e = &wt->ent[2 * (size_t)i];
		if (e[1] == EMPTY)
			return;
		if (e[0] == wire && (e[1] & ~CONSUMED) == hop) {
			e[1] = on ? (hop | CONSUMED) : hop;
			return;
		}
	}
}

/* Best candidate for hop g of node f: the latest unconsumed tx of its wire
 * ID at or before tref and within the window, from another node (allowed by
 * the topology, significant when sig is given). */
static uint32_t
pick(struct mscope_analysis *an, const struct wtab *wt, uint32_t f, uint32_t g,
		int64_t tref, int64_t window, const uint8_t *sig, bool *conflict)
{
	uint32_t wire = an->win[g], best = NO_HOP, seen = 0;
	int64_t best_any = INT64_MIN;
	uint32_t cand[MAX_CHAIN];
	uint32_t nc = 0;

	*conflict = false;
	for (uint32_t i = SLOT(wt, wire); seen < 4 * MAX_CHAIN; i = NEXT(wt, i), seen++) {
		const uint32_t *e = &wt->ent[2 * (size_t)i];
		uint32_t c;
		int64_t ec;

		if (e[1] == EMPTY)
			break;
		if (e[0] != wire)
			continue;
		c = e[1] & ~CONSUMED;
		ec = an->e[c];
		if (ec > tref || ec < tref - window)
			continue;
		if (e[1] & CONSUMED) {
			if (ec > best_any)
				best_any = ec;
			continue;
		}
		if (nc < MAX_CHAIN)
			cand[nc++] = c;
	}
	/* latest first; the node checks only on the winner (rarely fail) */
	while (nc) {
		uint32_t bi = 0, cn;
		for (uint32_t k = 1; k < nc; k++) {
			int64_t ek = an->e[cand[k]], eb = an->e[cand[bi]];
			if (ek > eb || (ek == eb && cand[k] < cand[bi]))
				bi = k;
		}
		cn = an_hop_node(an, cand[bi]);
		if (cn != f && link_allowed(an, cn, f) && (sig == NULL || sig[cn])) {
			best = cand[bi];
			break;
		}
		cand[bi] = cand[--nc];
	}
	if (best != NO_HOP && best_any > an->e[best])
		*conflict = true;
	else if (best == NO_HOP && best_any != INT64_MIN)
		*conflict = true;
	return best;
}

struct pick_job {
	const struct wtab *wt;
	int64_t window;
};

static int
pick_nodes(struct mscope_analysis *an, uint32_t k, void *scratch)
{
	const struct pick_job *pj = an->job_ctx;
	const struct an_node *nd = &an->nodes[k];
	bool conflict;

	(void)scratch;
	if (nd->is_source)
		return 0;
	for (uint32_t h = 0; h < nd->n; h++) {
		uint32_t g = nd->base + h;
		int64_t tref = (an->fl[g] & H_QFULL) ? an->e[g] : an->d[g];

		if (h + 8 < nd->n)
			__builtin_prefetch(slot0(pj->wt, an->win[g + 8]));
		an->pred[g] = pick(an, pj->wt, k, g, tref, pj->window, NULL, &conflict);
	}
	return 0;
}

static void
approximate(struct mscope_analysis *an, struct an_node *nd)
{
	int64_t span, gap, prev_d = INT64_MIN, prev_a = INT64_MIN;
	uint32_t qi = 0;
	int32_t carried = 0;

	if (nd->nrx == 0)
		return;
	span = an->d[nd->base + nd->nrx - 1] - an->d[nd->base];
	gap = nd->nrx > 1 ? span / (nd->nrx - 1) : 0;
	for (uint32_t s = 0; s < nd->nrx;) {
		uint32_t g0 = nd->base + s, nb = 1, k;
		int64_t db = an->d[g0], w;

		while (s + nb < nd->nrx && !(an->fl[g0 + nb] & H_BURST))
			nb++;
		w = (int64_t)nb * gap;
		if (prev_d != INT64_MIN && db - prev_d < w)
			w = db - prev_d;
		if ((uint32_t)carried > nb)
			carried = (int32_t)nb;
		for (k = 0; k < nb; k++) {
			uint32_t g = g0 + k;
			int64_t a;

			if (k < (uint32_t)carried && prev_d != INT64_MIN)
				a = prev_d - (int64_t)(carried - (int32_t)k) * gap;
			else
				a = db - w + w * (int64_t)(k - (uint32_t)carried + 1) /
					(int64_t)(nb - (uint32_t)carried);
			if (a < prev_a)
				a = prev_a;
			if (a > db)
				a = db;
			if (!(an->fl[g] & H_PRED)) {
				an->pred[g] = db - a > (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)(db - a);
				an->fl[g] |= H_APPROX;
			}
			prev_a = an_arr(an, g) < db ? an_arr(an, g) : db;
		}
		/* rx queue depth left after this burst: those were already queued */
		carried = 0;
		while (qi < nd->nqd && nd->qd[qi].hop < s)
			qi++;
		if (qi < nd->nqd && nd->qd[qi].hop == s)
			carried = nd->qd[qi].qdepth;
		prev_d = db;
		s += nb;
	}
}

static uint32_t
path_intern(struct mscope_analysis *an, uint32_t parent, uint32_t node)
{
	uint32_t mask, i;
	uint64_t key = ((uint64_t)parent << 16) ^ node;

	if ((an->npaths + 1) * 2 > an->ph_cap) {
		uint32_t cap = an->ph_cap ? an->ph_cap * 2 : 256;
		uint32_t *t = calloc(cap, sizeof(*t));
		if (t == NULL)
			return NO_PATH;
		for (uint32_t p = 0; p < an->npaths; p++) {
			uint64_t k = ((uint64_t)an->paths[p].parent << 16) ^ an->paths[p].node;
			i = whash((uint32_t)(k ^ (k >> 32))) & (cap - 1);
			while (t[i])
				i = (i + 1) & (cap - 1);
			t[i] = p + 1;
		}
		free(an->ph);
		an->ph = t;
		an->ph_cap = cap;
	}
	mask = an->ph_cap - 1;
	i = whash((uint32_t)(key ^ (key >> 32))) & mask;
	while (an->ph[i]) {
		const struct an_path *p = &an->paths[an->ph[i] - 1];
		if (p->parent == parent && p->node == node)
			return an->ph[i] - 1;
		i = (i + 1) & mask;
	}
	if (an->npaths + 1 > an->paths_cap) {
		size_t cap = an->paths_cap;
		void *p = an_grow(an->paths, &cap, an->npaths + 1, sizeof(*an->paths));
		if (p == NULL)
			return NO_PATH;
		an->paths = p;
		an->paths_cap = (uint32_t)cap;
	}
	an->paths[an->npaths].parent = parent;
	an->paths[an->npaths].node = (uint16_t)node;
	an->paths[an->npaths].depth = parent == NO_PATH ? 1 :
		(uint16_t)(an->paths[parent].depth + 1);
	an->ph[i] = an->npaths + 1;
	return an->npaths++;
}

/* Node `up` steps upstream of the path's last node (0 = the last node). */
uint32_t
an_path_node_at(const struct mscope_analysis *an, uint32_t path, uint32_t up)
{
	while (up-- && path != NO_PATH)
		path = an->paths[path].parent;
	return path == NO_PATH ? UINT32_MAX : an->paths[path].node;
}

static int
assign_paths(struct mscope_analysis *an, struct mscope_an_error *err)
{
	uint32_t *stack = malloc((MAX_DEPTH + 2) * sizeof(*stack));
	uint64_t cut = 0;

	/* allocated only now: after the wire table is gone (peak memory) */
	an->path = malloc((size_t)(an->nh ? an->nh : 1) * sizeof(*an->path));
	if (stack == NULL || an->path == NULL)
		goto oom;
	memset(an->path, 0xff, (size_t)an->nh * sizeof(*an->path));
	for (uint32_t k = 0; k < an->nnodes; k++) {
		const struct an_node *nd = &an->nodes[k];
		for (uint32_t h = 0; h < nd->n; h++) {
			uint32_t g = nd->base + h, sp = 0, parent;

			if (an->path[g] != NO_PATH)
				continue;
			/* Walk up to a hop with a path (or a root), then assign downwards. */
			for (;;) {
				uint32_t p;

				stack[sp++] = g;
				if (!(an->fl[g] & H_PRED)) {
					parent = NO_PATH;
					break;
				}
				if (sp > MAX_DEPTH) {
					/* A cycle or absurd chain (hostile input): cut it. */
					an->fl[g] &= (uint8_t)~H_PRED;
					cut++;
					parent = NO_PATH;
					break;
				}
				p = an->pred[g];
				if (an->path[p] != NO_PATH) {
					parent = an->path[p];
					break;
				}
				g = p;
			}
			while (sp) {
				uint32_t x = stack[--sp];
				uint32_t node = an_hop_node(an, x);
				uint32_t pp = (an->fl[x] & H_PRED) ? parent : NO_PATH;

				if (pp != NO_PATH && an->paths[pp].depth >= MAX_DEPTH) {
					an->fl[x] &= (uint8_t)~H_PRED;
					pp = NO_PATH;
					cut++;
				}
				parent = path_intern(an, pp, node);
				if (parent == NO_PATH)
					goto oom;
				an->path[x] = parent;
			}
		}
	}
	free(stack);
	if (cut)
		an_warn(an, "%llu packet paths were cyclic or too long and were cut", (unsigned long long)cut);
	an->path_count = calloc(an->npaths ? an->npaths : 1, sizeof(*an->path_count));
	if (an->path_count == NULL)
		goto oom;
	for (uint32_t k = 0; k < an->nnodes; k++) {
		const struct an_node *nd = &an->nodes[k];
		for (uint32_t h = 0; h < nd->nrx; h++)
			an->path_count[an->path[nd->base + h]]++;
	}
	return 0;
oom:
	free(stack);
	an_err(err, "out of memory (paths)");
	return -1;
}

static int
cmp_edge(const void *a, const void *b)
{
	const struct an_edge *x = a, *y = b;

	if (x->from != y->from)
		return x->from < y->from ? -1 : 1;
	return x->to < y->to ? -1 : x->to > y->to;
}

static int
count_edges(struct mscope_analysis *an, uint64_t *cnt)
{
	uint32_t nn = an->nnodes;

	memset(cnt, 0, (size_t)nn * nn * sizeof(*cnt));
	for (uint32_t k = 0; k < nn; k++) {
		const struct an_node *nd = &an->nodes[k];
		if (nd->is_source)
			continue;
		for (uint32_t h = 0; h < nd->n; h++) {
			uint32_t g = nd->base + h;
			if (an->fl[g] & H_PRED)
				cnt[(size_t)an_hop_node(an, an->pred[g]) * nn + k]++;
		}
	}
	return 0;
}

int
an_match(struct mscope_analysis *an, struct mscope_an_error *err)
{
	struct wtab wt = { 0 };
	uint32_t ntx = 0, cap;
	uint64_t *cnt = NULL;
	uint8_t *sig = NULL;
	int64_t window = an_ticks(an, an->opts.match_window_us);
	uint32_t nn = an->nnodes;
	int rc = -1;

	if (an->nh >= CONSUMED) {
		an_err(err, "too many packet-hops (%u; limit %u)", an->nh, CONSUMED - 1);
		return -1;
	}
	an->pred = malloc((size_t)(an->nh ? an->nh : 1) * sizeof(*an->pred));
	if (an->pred == NULL)
		goto oom;
	for (uint32_t g = 0; g < an->nh; g++) {
		an->pred[g] = 0;    /* no pred: arrival = d - pred (see an_arr) */
		if (an->fl[g] & H_TX)
			ntx++;
	}

	/* Transmitted hops by wire ID. */
	cap = ntx + ntx / 4 + ntx / 16 + 16;    /* load ~0.77: memory peak */
	wt.ent = an_big_alloc((size_t)cap * 2 * sizeof(*wt.ent));
	if (wt.ent == NULL)
		goto oom;
	memset(wt.ent, 0xff, (size_t)cap * 2 * sizeof(*wt.ent));
	wt.cap = cap;
	for (uint32_t g = 0; g < an->nh; g++) {
		uint32_t i;

		if (!(an->fl[g] & H_TX))
			continue;
		if (g + 16 < an->nh)
			__builtin_prefetch(slot0(&wt, an->wout[g + 16]), 1);
		i = SLOT(&wt, an->wout[g]);
		while (wt.ent[2 * (size_t)i + 1] != EMPTY)
			i = NEXT(&wt, i);
		wt.ent[2 * (size_t)i] = an->wout[g];
		wt.ent[2 * (size_t)i + 1] = g;
	}

	/* Pass 1: nearest earlier unconsumed tx. The search runs on all nodes in
	 * parallel ignoring what others take (read-only), then a serial sweep in
	 * node and hop order claims; only a candidate already taken is searched
	 * again. Same result as one serial sweep, for any thread count. */
	{
		struct pick_job pj = { .wt = &wt, .window = window };
		an->job_ctx = &pj;
		if (an_for_nodes(an, pick_nodes, 0)) {
			an->job_ctx = NULL;
			goto oom;
		}
		an->job_ctx = NULL;
	}
	for (uint32_t k = 0; k < nn; k++) {
		struct an_node *nd = &an->nodes[k];
		if (nd->is_source)
			continue;
		for (uint32_t h = 0; h < nd->n; h++) {
			uint32_t g = nd->base + h, c = an->pred[g];
			int64_t tref = (an->fl[g] & H_QFULL) ? an->e[g] : an->d[g];
			bool conflict = false;

			if (c != NO_HOP && (an->fl[c] & H_SUCC))
				c = pick(an, &wt, k, g, tref, window, NULL, &conflict);
			if (conflict)
				an->conflicts++;
			if (c == NO_HOP) {
				an->pred[g] = 0;
				continue;
			}
			an->pred[g] = c;
			an->fl[g] |= H_PRED;
			an->fl[c] |= H_SUCC;
			consume(&wt, an->wout[c], c, true);
		}
	}

	/* Pass 2: matches over insignificant edges (ID collisions) are redone
	 * over the significant ones. The topology, when given, already constrains. */
	cnt = calloc((size_t)nn * nn, sizeof(*cnt));
	sig = calloc((size_t)nn * nn, 1);
	if (cnt == NULL || sig == NULL)
		goto oom;
	count_edges(an, cnt);
	if (an->ntopo_links == 0) {
		for (uint32_t k = 0; k < nn; k++) {
			uint64_t tot = 0;
			for (uint32_t f = 0; f < nn; f++)
				tot += cnt[(size_t)f * nn + k];
			for (uint32_t f = 0; f < nn; f++) {
				uint64_t c = cnt[(size_t)f * nn + k];
				sig[(size_t)k * nn + f] = c >= 3 && c * 1000 >= tot;
			}
		}
		for (uint32_t k = 0; k < nn; k++) {
			struct an_node *nd = &an->nodes[k];
			if (nd->is_source)
				continue;
			for (uint32_t h = 0; h < nd->n; h++) {
				uint32_t g = nd->base + h, c, from;
				int64_t tref = (an->fl[g] & H_QFULL) ? an->e[g] : an->d[g];
				bool conflict;

				if (!(an->fl[g] & H_PRED))
					continue;
				from = an_hop_node(an, an->pred[g]);
				if (sig[(size_t)k * nn + from])
					continue;
				an->fl[an->pred[g]] &= (uint8_t)~H_SUCC;
				consume(&wt, an->wout[an->pred[g]], an->pred[g], false);
				an->fl[g] &= (uint8_t)~H_PRED;
				an->pred[g] = 0;
				c = pick(an, &wt, k, g, tref, window, sig + (size_t)k * nn,
					&conflict);
				an->unresolved++;
				if (c == NO_HOP)
					continue;
				an->pred[g] = c;
				an->fl[g] |= H_PRED;
				an->fl[c] |= H_SUCC;
				consume(&wt, an->wout[c], c, true);
			}
		}
		count_edges(an, cnt);
	}
	free(wt.ent);
	wt.ent = NULL;

	/* Unmatched arrivals: approximated from rx bursts (+ queue depths). */
	for (uint32_t k = 0; k < nn; k++) {
		struct an_node *nd = &an->nodes[k];
		if (nd->is_source)
			continue;
		nd->matched = nd->unmatched = 0;
		for (uint32_t h = 0; h < nd->n; h++) {
			uint32_t g = nd->base + h;
			if (an->fl[g] & H_PRED)
				nd->matched++;
			else
				nd->unmatched++;
		}
		if (nd->unmatched == 0)
			continue;
		approximate(an, nd);
		if (nd->matched * 2 < nd->n) {
			nd->approximated = true;
			an->any_approx = true;
			an_warn(an, "%s: %u of %u arrivals have no upstream trace%s: approximated from rx burst times%s",
				nd->id, nd->unmatched, nd->n,
				an->have_source ? " (missing upstream node file?)" : "",
				nd->nqd ? " and queue depths" : "");
		} else {
			an->unresolved += nd->unmatched;
		}
	}
	/* arrivals after the dequeue (clock noise) are clamped in an_arr() */
	if (an->unresolved || an->conflicts)
		an_warn(an, "%llu packet-hops could not be matched unambiguously (wire ID collisions or missing upstream records)",
			(unsigned long long)(an->unresolved + an->conflicts));

	/* Source packets never seen downstream. */
	for (uint32_t k = 0; k < nn; k++) {
		const struct an_node *nd = &an->nodes[k];
		uint64_t lost = 0;
		if (!nd->is_source)
			continue;
		for (uint32_t h = 0; h < nd->n; h++)
			if (!(an->fl[nd->base + h] & H_SUCC))
				lost++;
		an->lost_source += lost;
		if (lost * 1000 > nd->n && lost > 0)
			an_warn(an, "%s: %llu of %u sent packets were seen at no NF (missing node file or NIC drops?)",
				nd->id, (unsigned long long)lost, nd->n);
	}

	/* Edges of the inferred graph. */
	an->nedges = 0;
	for (size_t i = 0; i < (size_t)nn * nn; i++)
		if (cnt[i])
			an->nedges++;
	an->edges = calloc(an->nedges ? an->nedges : 1, sizeof(*an->edges));
	if (an->edges == NULL)
		goto oom;
	an->nedges = 0;
	for (uint32_t f = 0; f < nn; f++)
		for (uint32_t t = 0; t < nn; t++)
			if (cnt[(size_t)f * nn + t]) {
				an->edges[an->nedges].from = f;
				an->edges[an->nedges].to = t;
				an->edges[an->nedges].packets = cnt[(size_t)f * nn + t];
				an->nedges++;
			}
	qsort(an->edges, an->nedges, sizeof(*an->edges), cmp_edge);

	/* After matching, tx wire IDs matter only as the identity of source
	 * packets; sources come first in the hop arrays. */
	{
		uint32_t nsrc = 0;
		for (uint32_t k = 0; k < nn && an->nodes[k].is_source; k++)
			nsrc = an->nodes[k].base + an->nodes[k].n;
		uint32_t *w = realloc(an->wout, (size_t)(nsrc ? nsrc : 1) * sizeof(*w));
		if (w)
			an->wout = w;
	}
	rc = assign_paths(an, err);
	goto out;
oom:
	an_err(err, "out of memory (matching)");
out:
	free(wt.ent);
	free(cnt);
	free(sig);
	return rc;
}
