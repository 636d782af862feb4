/* SPDX-License-Identifier: BSD-3-Clause */
/* Iteration over the loaded packet-hops (mscope export, tools): read-only
 * views of the per-hop arrays with each packet's ingress identity. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "an_internal.h"

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

/* The hop where the packet of hop g entered the graph. */
static uint32_t
root_of(const struct mscope_analysis *an, uint32_t g)
{
	for (unsigned depth = 0; (an->fl[g] & H_PRED) && depth < 4096; depth++)
		g = an->pred[g];
	return g;
}

int
mscope_an_hops(const struct mscope_analysis *an, int node, int64_t from_ns, int64_t to_ns,
		mscope_an_hop_fn fn, void *ctx, struct mscope_an_error *err)
{
	int64_t t0, t1;

	if (an->released) {
		an_err(err, "per-hop data released (mscope_an_release)");
		return -1;
	}
	if (node >= (int)an->nnodes) {
		an_err(err, "no node %d", node);
		return -1;
	}
	t0 = an->t_start + an_ticks(an, (double)from_ns / 1e3);
	t1 = to_ns < 0 ? INT64_MAX : an->t_start + an_ticks(an, (double)to_ns / 1e3);
	for (uint32_t k = 0; k < an->nnodes; k++) {
		const struct an_node *nd = &an->nodes[k];
		uint32_t *nfd = NULL, *next = NULL;
		int rc = 0;

		if (node >= 0 && (uint32_t)node != k)
			continue;
		/* tx wire IDs are kept for source hops only; an NF's is the
		 * one its downstream hop received */
		if (!nd->is_source) {
			next = calloc(nd->n ? nd->n : 1, sizeof(*next));
			if (next == NULL) {
				an_err(err, "out of memory");
				return -1;
			}
			for (uint32_t g = 0; g < an->nh; g++)
				if ((an->fl[g] & H_PRED) && an->pred[g] >= nd->base &&
						an->pred[g] < nd->base + nd->n)
					next[an->pred[g] - nd->base] = an->win[g];
		}
		if (nd->nnfd) {
			nfd = malloc(nd->nnfd * sizeof(*nfd));
			if (nfd == NULL) {
				free(next);
				an_err(err, "out of memory");
				return -1;
			}
			memcpy(nfd, nd->nfd, nd->nnfd * sizeof(*nfd));
			qsort(nfd, nd->nnfd, sizeof(*nfd), cmp_u32);
		}
		for (uint32_t h = 0; h < nd->n && rc == 0; h++) {
			uint32_t g = nd->base + h, r;
			uint8_t fl = an->fl[g];
			int64_t a = an_arr(an, g);
			struct mscope_an_hop x;

			if (a < t0 || a > t1)
				continue;
			memset(&x, 0, sizeof(x));
			x.node = (int)k;
			x.wire_in = nd->is_source ? 0 : an->win[g];
			x.wire_out = !(fl & H_TX) ? 0 : nd->is_source ? an->wout[g] : next[h];
			x.arrival_us = an_us(an, a - an->t_start);
			x.arrival_approx = (fl & H_APPROX) != 0;
			x.dequeue_us = (fl & H_QFULL) ? NAN : an_us(an, an->d[g] - an->t_start);
			x.wait_us = (fl & H_QFULL) ? NAN : an_us(an, an->d[g] - a);
			x.departure_us = (fl & H_TX) ? an_us(an, an->e[g] - an->t_start) : NAN;
			x.flow = &an->flows[an->flow[g]];
			if (fl & H_QFULL)
				x.drop = "queue_full";
			else if ((fl & H_DROP) && nfd && bsearch(&h, nfd, nd->nnfd, sizeof(*nfd),
					cmp_u32))
				x.drop = "nf";
			else if (fl & H_DROP)
				x.drop = "dropped";
			if ((fl & H_DROP) && !(fl & H_QFULL))
				x.drop_us = an_us(an, an->e[g] - an->t_start);
			else if (fl & H_QFULL)
				x.drop_us = x.arrival_us;
			else
				x.drop_us = NAN;
			r = root_of(an, g);
			x.packet_wire = (an->fl[r] & H_SRC) ? an->wout[r] : an->win[r];
			x.ingress_us = an_us(an, an_arr(an, r) - an->t_start);
			rc = fn(ctx, &x);
		}
		free(nfd);
		free(next);
		if (rc) {
			an_err(err, "stopped by the caller");
			return -1;
		}
	}
	return 0;
}
