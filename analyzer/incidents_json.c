/* SPDX-License-Identifier: BSD-3-Clause */
/* The incidents document (docs/incidents.md). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "incidents_private.h"

#define TOP_CULPRITS 3

static json_t *
num(double v)
{
	return json_real(isfinite(v) ? v : 0);
}

/* The first TOP_CULPRITS distinct culprits (NF, kind, flow) of a diagnosis,
 * in the analyzer's order. */
/* Rules in the order of their root cause (`cluster`) when every rule has
 * one, else as listed (stable). */
static json_t *
by_cause(const json_t *rules)
{
	json_t *out = json_array(), *c;
	size_t i, n;

	json_array_foreach(rules, i, c) {
		long k = (long)json_integer_value(json_object_get(c, "cluster"));

		if (!json_is_integer(json_object_get(c, "cluster"))) {
			json_decref(out);
			return json_incref((json_t *)rules);
		}
		for (n = json_array_size(out); n > 0; n--)
			if ((long)json_integer_value(json_object_get(json_array_get(out, n - 1),
					"cluster")) <= k)
				break;
		json_array_insert(out, n, c);
	}
	return out;
}

static json_t *
top_culprits(const json_t *doc)
{
	json_t *out = json_array(), *c;
	json_t *rules = by_cause(json_object_get(doc, "culprits"));
	size_t i;

	json_array_foreach(rules, i, c) {
		const char *nf = json_string_value(json_object_get(c, "nf"));
		const char *kind = json_string_value(json_object_get(c, "kind"));
		const char *flow = json_string_value(json_object_get(c, "flow"));
		json_t *p;
		size_t j;
		int dup = 0;

		if (!nf || !kind || !flow)
			continue;
		json_array_foreach(out, j, p)
			if (!strcmp(nf, json_string_value(json_object_get(p, "nf"))) &&
					!strcmp(kind, json_string_value(json_object_get(p, "kind"))) &&
					!strcmp(flow, json_string_value(json_object_get(p, "flow"))))
				dup = 1;
		if (dup)
			continue;
		if (json_array_size(out) == TOP_CULPRITS)
			break;
		json_array_append_new(out, json_pack("{s:I,s:s,s:s,s:s,s:o,s:O*}",
			"rank", (json_int_t)json_array_size(out) + 1, "nf", nf, "kind", kind,
			"flow", flow, "share", num(json_real_value(json_object_get(c, "share"))),
			"victims", json_object_get(c, "victims")));
	}
	json_decref(rules);
	return out;
}

static json_t *
timeline(const struct mscope_inc_scan *s, int points)
{
	uint32_t nb = (uint32_t)s->last_tsc, per;
	json_t *t = json_array(), *p99 = json_array(), *mx = json_array(), *dr = json_array();

	if (points < 1)
		points = 1;
	per = (nb + (uint32_t)points - 1) / (uint32_t)points;
	if (per == 0)
		per = 1;
	for (uint32_t b = 0; b < nb; b += per) {
		double vp = 0, vm = 0;
		uint64_t d = 0;

		for (uint32_t c = b; c < b + per && c < nb; c++)
			for (size_t k = 0; k < s->nnodes; k++) {
				const struct inc_node *nd = &s->nodes[k];
				if (nd->is_source || c >= nd->nbins)
					continue;
				vp = fmax(vp, nd->bins[c].p99_us);
				vm = fmax(vm, nd->bins[c].max_us);
				d += nd->bins[c].drops;
			}
		json_array_append_new(t, num(inc_bin_start_us(s, b)));
		json_array_append_new(p99, num(vp));
		json_array_append_new(mx, num(vm));
		json_array_append_new(dr, json_integer((json_int_t)d));
	}
	return json_pack("{s:o,s:o,s:o,s:o,s:o}", "bin_us", num(inc_bin_us(s) * per), "t_us", t,
		"p99_us", p99, "max_us", mx, "drops", dr);
}

json_t *
mscope_inc_json(const struct mscope_inc_scan *s, int points)
{
	struct mscope_inc_stats st;
	json_t *nodes = json_array(), *incs = json_array(), *doc;

	mscope_inc_stats(s, &st);
	for (size_t k = 0; k < s->nnodes; k++) {
		const struct inc_node *nd = &s->nodes[k];
		json_t *o = json_pack("{s:s,s:s,s:s,s:I}", "id", nd->id,
			"nf", nd->hdr.nf_name, "role", nd->is_source ? "source" : "rxq",
			"files", (json_int_t)nd->npaths);

		if (!nd->is_source) {   /* the source's trace is not scanned */
			json_object_set_new(o, "packets", json_integer((json_int_t)nd->packets));
			json_object_set_new(o, "hops", json_integer((json_int_t)nd->hops));
			json_object_set_new(o, "drops", json_integer((json_int_t)nd->drops));
			json_object_set_new(o, "unlinked", json_integer((json_int_t)nd->unlinked));
			json_object_set_new(o, "p99_median_us", num(nd->med_us));
			json_object_set_new(o, "p99_mad_us", num(nd->mad_us));
			json_object_set_new(o, "threshold_us", num(nd->thr_us));
			json_object_set_new(o, "drop_threshold", num(nd->dthr));
		}
		json_array_append_new(nodes, o);
	}
	for (size_t i = 0; i < s->ninc; i++) {
		const struct inc_incident *x = &s->inc[i];
		json_t *o = json_pack("{s:I,s:o,s:o,s:o,s:I,s:o,s:s,s:I}",
			"id", (json_int_t)i + 1, "start_us", num(x->start_us), "end_us", num(x->end_us),
			"severity", num(x->severity), "drops", (json_int_t)x->drops,
			"peak_us", num(x->peak_us),
			"peak_node", x->peak_node >= 0 ? s->nodes[x->peak_node].id : "",
			"nodes", (json_int_t)x->nnodes);

		if (x->cut_to_us > 0)
			json_object_set_new(o, "window", json_pack("{s:o,s:o,s:o}",
				"from_us", num(x->cut_from_us), "to_us", num(x->cut_to_us),
				"offset_us", num(x->cut_first_us)));
		if (x->doc) {
			const json_t *sum = json_object_get(x->doc, "summary");
			json_object_set_new(o, "victims", json_incref(json_object_get(sum, "victims")));
			json_object_set_new(o, "victim_drops", json_incref(json_object_get(sum, "drops")));
			json_object_set_new(o, "culprits", top_culprits(x->doc));
			json_object_set(o, "analysis", x->doc);
		}
		if (x->diag_err)
			json_object_set_new(o, "error", json_string(x->diag_err));
		json_array_append_new(incs, o);
	}
	doc = json_pack("{s:i,s:{s:s,s:I,s:o,s:o,s:o,s:o,s:I,s:I,s:I,s:I,s:o,s:o,s:i},"
		"s:{s:o,s:o,s:o,s:o,s:o,s:I,s:o,s:I,s:I},s:o,s:o,s:o}",
		"version", 1,
		"scan", "dir", s->dir, "origin_tsc", (json_int_t)s->origin_tsc,
		"tsc_hz", num(s->hz), "start_us", num(st.start_us), "end_us", num(st.end_us),
		"bin_us", num(st.bin_us), "nodes", (json_int_t)st.nodes, "files", (json_int_t)st.files,
		"packet_hops", (json_int_t)st.hops,
		"bytes", (json_int_t)st.bytes, "cpu_s", num(st.cpu_s), "wall_s", num(st.wall_s),
		"threads", st.threads,
		"detection", "k_mad", num(s->opts.k_mad), "factor", num(s->opts.factor),
		"min_excess_us", num(s->opts.min_excess_us), "gap_us", num(s->opts.gap_us),
		"min_severity", num(s->opts.min_severity), "below_min_severity", (json_int_t)s->nweak,
		"margin_us", num(s->opts.margin_us), "max_incidents", (json_int_t)s->opts.max_incidents,
		"not_kept", (json_int_t)s->ndropped,
		"nodes", nodes, "timeline", timeline(s, points), "incidents", incs);
	if (doc) {
		json_t *w = json_array();
		for (size_t k = 0; k < s->nnodes; k++) {
			const struct inc_node *nd = &s->nodes[k];
			char buf[256];

			if (nd->warn[0])
				json_array_append_new(w, json_string(nd->warn));
			if (nd->deleted) {
				snprintf(buf, sizeof(buf), "%.96s: %llu segment(s) of %llu packets were "
					"deleted by the collector (ring buffer): their time is not scanned",
					nd->id, (unsigned long long)nd->deleted,
					(unsigned long long)nd->deleted_packets);
				json_array_append_new(w, json_string(buf));
			}
		}
		json_object_set_new(json_object_get(doc, "scan"), "warnings", w);
	}
	if (doc && s->normal_p99_us > 0)
		json_object_set_new(json_object_get(doc, "detection"), "normal_latency_p99_us",
			num(s->normal_p99_us));
	return doc;
}

int
inc_set_error(struct mscope_inc_scan *s, size_t i, const char *text)
{
	if (i >= s->ninc)
		return -1;
	free(s->inc[i].diag_err);
	s->inc[i].diag_err = strdup(text);
	return s->inc[i].diag_err ? 0 : -1;
}
