/* SPDX-License-Identifier: BSD-3-Clause */
/* The public API: open (load, match, timelines, rates), diagnose (victims,
 * blame), and the inspection accessors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "an_internal.h"

void
mscope_an_opts_init(struct mscope_an_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->percentile = 99;
	o->threshold_us = 0;
	o->to_ns = -1;
	o->dag = MSCOPE_AN_DAG_OURS;
	o->src_flows = MSCOPE_AN_FLOWS_EXCESS;
	o->min_wait_us = 5;
	o->epsilon = 0.01;
	o->max_flows = 8;
	o->match_window_us = 2e6;
	o->context_ns = 100000000;
	o->filter.src_len = o->filter.dst_len = -1;
	o->filter.sport = o->filter.dport = -1;
	o->filter.proto = -1;
}

struct mscope_analysis *
mscope_an_open(const char *dir, const struct mscope_an_opts *opts,
		struct mscope_an_error *err)
{
	struct mscope_analysis *an = calloc(1, sizeof(*an));
	struct mscope_flow_key zero;

	if (an == NULL) {
		an_err(err, "out of memory");
		return NULL;
	}
	if (opts)
		an->opts = *opts;
	else
		mscope_an_opts_init(&an->opts);
	if (!(an->opts.percentile >= 0 && an->opts.percentile <= 100)) {
		an_err(err, "percentile %g is not within 0..100", an->opts.percentile);
		goto fail;
	}
	if (an->opts.max_flows <= 0)
		an->opts.max_flows = 8;
	if (!(an->opts.epsilon > 0))
		an->opts.epsilon = 0.01;
	if (!(an->opts.match_window_us > 0))
		an->opts.match_window_us = 2e6;
	if (an->opts.nrates) {
		an->rates = malloc(an->opts.nrates * sizeof(*an->rates));
		if (an->rates == NULL) {
			an_err(err, "out of memory");
			goto fail;
		}
		memcpy(an->rates, an->opts.rates, an->opts.nrates * sizeof(*an->rates));
		an->opts.rates = an->rates;
		for (size_t i = 0; i < an->opts.nrates; i++)
			if (!(an->rates[i].mpps > 0) || !isfinite(an->rates[i].mpps)) {
				an_err(err, "--rate %s: rate must be a positive number of Mpps",
					an->rates[i].name);
				goto fail;
			}
	}
	/* flow id 0: unknown / not IP */
	memset(&zero, 0, sizeof(zero));
	if (an_flow_intern(an, &zero) != 0) {
		an_err(err, "out of memory");
		goto fail;
	}
	if (an_load(an, dir, err))
		goto fail;
	if (an->opts.topology && an_topology(an, an->opts.topology, err))
		goto fail;
	/* the caller's strings are not kept beyond this call */
	an->opts.topology = NULL;
	an->opts.run_id = NULL;
	an->opts.from_clock = an->opts.to_clock = NULL;
	if (an_match(an, err))
		goto fail;
	if (an_timeline(an, err) || an_rates(an, err))
		goto fail;
	return an;
fail:
	mscope_an_close(an);
	return NULL;
}

int
mscope_an_diagnose(struct mscope_analysis *an, struct mscope_an_error *err)
{
	if (an->diagnosed)
		return 0;
	if (an_victims(an, err) || an_blame(an, err))
		return -1;
	for (uint32_t v = 0; v < an->nvictims; v++)
		an_victim_identity(an, &an->victims[v], &an->victims[v].wire, &an->victims[v].tsc);
	for (uint32_t k = 0; k < an->nnodes; k++)
		if (!an->nodes[k].is_source)
			an->nodes[k].series = an_series(an, &an->nodes[k], 2000);
	an->diagnosed = true;
	return 0;
}

const char *const *
mscope_an_warnings(const struct mscope_analysis *an)
{
	static const char *const none[] = { NULL };

	return an->nwarn ? (const char *const *)an->warn : none;
}

void
mscope_an_release(struct mscope_analysis *an)
{
	if (an == NULL || !an->diagnosed || an->released)
		return;
	for (uint32_t k = 0; k < an->nnodes; k++) {
		struct an_node *nd = &an->nodes[k];
		free(nd->ord);
		free(nd->pstart);
		free(nd->slow);
		free(nd->trig);
		nd->trig = NULL;
		nd->ntrig = 0;
		free(nd->txs_at);
		free(nd->txs_cum);
		nd->txs_at = NULL;
		nd->txs_cum = NULL;
		nd->ntxs = 0;
		nd->ord = NULL;
		nd->pstart = NULL;
		nd->slow = NULL;
		nd->nslow = 0;
	}
	an_free_hops(an);
	an->released = true;
}

/* The per-hop arrays (free()d, set to NULL). */
void
an_free_hops(struct mscope_analysis *an)
{
	free(an->d);
	free(an->e);
	free(an->win);
	free(an->wout);
	free(an->flow);
	free(an->pred);
	free(an->path);
	free(an->qa);
	free(an->fl);
	an->d = an->e = NULL;
	an->win = an->wout = an->flow = an->pred = an->path = NULL;
	an->qa = NULL;
	an->fl = NULL;
}

void
mscope_an_close(struct mscope_analysis *an)
{
	if (an == NULL)
		return;
	for (uint32_t k = 0; k < an->nnodes; k++) {
		struct an_node *nd = &an->nodes[k];
		free(nd->file);
		free(nd->frame_t);
		for (size_t i = 0; i < nd->npaths; i++)
			free(nd->paths[i]);
		free(nd->paths);
		free(nd->fkeys);
		free(nd->ref2local);
		free(nd->segs);
		free(nd->qd);
		free(nd->nfd);
		free(nd->ord);
		free(nd->pstart);
		free(nd->slow);
		free(nd->trig);
		free(nd->txs_at);
		free(nd->txs_cum);
		json_decref(nd->series);
	}
	free(an->nodes);
	free(an->nfs);
	free(an->flows);
	free(an->fh);
	free(an->d);
	free(an->e);
	free(an->win);
	free(an->wout);
	free(an->flow);
	free(an->pred);
	free(an->path);
	free(an->qa);
	free(an->fl);
	free(an->paths);
	free(an->ph);
	free(an->path_count);
	free(an->edges);
	free(an->topo_links);
	free(an->victims);
	free(an->queued);
	free(an->queued_pub);
	free(an->rels);
	free(an->culs);
	free(an->vculprits);
	free(an->flow_total);
	free(an->periods);
	free(an->rates);
	for (size_t i = 0; i < an->nwarn; i++)
		free(an->warn[i]);
	free(an->warn);
	free(an);
}

size_t
mscope_an_node_count(const struct mscope_analysis *an)
{
	return an->nnodes;
}

int
mscope_an_node_find(const struct mscope_analysis *an, const char *id)
{
	for (uint32_t k = 0; k < an->nnodes; k++)
		if (!strcmp(an->nodes[k].id, id))
			return (int)k;
	return -1;
}

int
mscope_an_node_info(const struct mscope_analysis *an, size_t i,
		struct mscope_an_node_info *info)
{
	const struct an_node *nd;

	if (i >= an->nnodes)
		return -1;
	nd = &an->nodes[i];
	info->id = nd->id;
	info->nf = nd->nf;
	info->is_source = nd->is_source;
	info->peak_rate_mpps = nd->is_source ? 0 : nd->rate * an->hz / 1e6;
	info->peak_rate_from = nd->is_source ? "" : nd->rate_from;
	info->packets = nd->n;
	info->victims = nd->victims;
	info->drops = nd->drops;
	return 0;
}

size_t
mscope_an_victim_count(const struct mscope_analysis *an)
{
	return an->diagnosed ? an->nvictims : 0;
}

/* Raw TSC of a tick in a node's own clock (identity on one host). */
static uint64_t
raw_tsc(const struct an_node *nd, int64_t t)
{
	if (nd->conv_identity)
		return (uint64_t)t;
	return (uint64_t)llround(((double)t - nd->conv_offset) / nd->conv_scale);
}

int
an_victim_identity(const struct mscope_analysis *an, const struct an_victim *v,
		uint32_t *wire, uint64_t *tsc)
{
	uint32_t node = an_hop_node(an, v->root);
	const struct an_node *nd = &an->nodes[node];

	if (nd->is_source) {
		*wire = an->wout[v->root];
		*tsc = raw_tsc(nd, an->e[v->root]);
	} else {
		*wire = an->win[v->root];
		*tsc = raw_tsc(nd, (an->fl[v->root] & H_QFULL) ? an->e[v->root] : an->d[v->root]);
	}
	return 0;
}

int
mscope_an_victim(struct mscope_analysis *an, size_t i, struct mscope_an_victim *out)
{
	const struct an_victim *v;
	void *p;

	if (!an->diagnosed || i >= an->nvictims)
		return -1;
	v = &an->victims[i];
	/* public views built per call (kept small: no copy of every victim) */
	p = an_grow(an->vculprits, &an->vcul_cap, v->nc ? v->nc : 1, sizeof(*an->vculprits));
	if (p == NULL)
		return -1;
	an->vculprits = p;
	p = an_grow(an->queued_pub, &an->qpub_cap, v->nq ? v->nq : 1, sizeof(*an->queued_pub));
	if (p == NULL)
		return -1;
	an->queued_pub = p;
	for (uint32_t k = 0; k < v->nc; k++) {
		const struct an_cul *c = &an->culs[v->c0 + k];
		struct mscope_an_culprit *u = &an->vculprits[k];
		u->nf = an->nfs[c->nf];
		u->kind = (enum mscope_an_kind)c->kind;
		u->has_flow = c->has_flow;
		u->flow = an->flows[c->flow];
		u->score = c->score;
	}
	for (uint32_t k = 0; k < v->nq; k++) {
		const struct an_queued_int *q = &an->queued[v->q0 + k];
		struct mscope_an_queued *u = &an->queued_pub[k];
		u->node = (int)q->node;
		u->wait_us = an_us(an, q->wait);
		u->n_i = q->n_i;
		u->n_p = q->n_p;
		u->period_us = an_us(an, q->period);
		u->s_i = q->s_i;
		u->s_p = q->s_p;
		u->s_w = q->s_w;
	}
	out->wire_id = v->wire;
	out->tsc = v->tsc;
	out->t_us = an_us(an, v->t_in - an->t_start);
	out->dropped = v->dropped;
	out->latency_us = an_us(an, v->latency);
	out->queued = an->queued_pub;
	out->nqueued = v->nq;
	out->culprits = an->vculprits;
	out->nculprits = v->nc;
	return 0;
}

int
mscope_an_local_scores(const struct mscope_analysis *an, int node, uint32_t wire_id,
		struct mscope_an_queued *q)
{
	const struct an_node *nd;
	struct an_local l;

	if (an->released || node < 0 || (uint32_t)node >= an->nnodes ||
			an->nodes[node].is_source)
		return -1;
	nd = &an->nodes[node];
	for (uint32_t h = 0; h < nd->n; h++) {
		uint32_t g = nd->base + h;
		if (an->win[g] != wire_id)
			continue;
		an_local(an, (uint32_t)node, h, &l);
		memset(q, 0, sizeof(*q));
		q->node = node;
		q->wait_us = (an->fl[g] & H_QFULL) ? 0 : an_us(an, an->d[g] - an_arr(an, g));
		q->n_i = l.n_i;
		q->n_p = l.n_p;
		q->period_us = an_us(an, l.period);
		q->s_i = l.s_i;
		q->s_p = l.s_p;
		q->s_w = l.s_w;
		return 0;
	}
	return -1;
}
