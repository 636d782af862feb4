/* SPDX-License-Identifier: BSD-3-Clause */
/* A loaded scenario back as JSON, every default filled in (`mscope sim
 * --dry-run --json`): what the simulator and the chain launcher both run. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_private.h"

static const char *const fault_kinds[] = { "burst", "interrupt", "bug", "slow" };
static const char *const arrivals[] = { "poisson", "onoff", "cbr" };

const char *
sim_proto_name(uint8_t p, char *buf, size_t len)
{
	if (p == 6)
		return "tcp";
	if (p == 17)
		return "udp";
	if (p == 1)
		return "icmp";
	snprintf(buf, len, "%u", p);
	return buf;
}

json_t *
sim_flow_json(const struct mscope_flow_key *k)
{
	char a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN], pb[8];
	int af = k->family == 6 ? AF_INET6 : AF_INET;

	inet_ntop(af, k->src, a, sizeof(a));
	inet_ntop(af, k->dst, b, sizeof(b));
	return json_pack("{s:s, s:s, s:i, s:i, s:s}", "src", a, "dst", b, "sport", (int)k->sport,
		"dport", (int)k->dport, "proto", sim_proto_name(k->proto, pb, sizeof(pb)));
}

/* Picoseconds as a number of `unit` ps: an integer when whole. */
static json_t *
ps_json(uint64_t ps, uint64_t unit)
{
	if (ps % unit == 0)
		return json_integer((json_int_t)(ps / unit));
	return json_real((double)ps / (double)unit);
}

static json_t *
prefix_json(uint8_t family, const uint8_t *addr, uint8_t plen)
{
	char a[INET6_ADDRSTRLEN], buf[INET6_ADDRSTRLEN + 8];

	inet_ntop(family == 6 ? AF_INET6 : AF_INET, addr, a, sizeof(a));
	if (plen == (family == 6 ? 128 : 32))
		return json_string(a);
	snprintf(buf, sizeof(buf), "%s/%u", a, plen);
	return json_string(buf);
}

/* A match: addresses canonical, ports as [lo, hi], protocol by name or number. */
static json_t *
match_json(const struct sim_match *m)
{
	json_t *o = json_object();
	char pb[8];

	if (m->fields & M_SRC)
		json_object_set_new(o, "src", prefix_json(m->src_family, m->src, m->src_plen));
	if (m->fields & M_DST)
		json_object_set_new(o, "dst", prefix_json(m->dst_family, m->dst, m->dst_plen));
	if (m->fields & M_SPORT)
		json_object_set_new(o, "sport", json_pack("[i, i]", m->sport_lo, m->sport_hi));
	if (m->fields & M_DPORT)
		json_object_set_new(o, "dport", json_pack("[i, i]", m->dport_lo, m->dport_hi));
	if (m->fields & M_PROTO)
		json_object_set_new(o, "proto", json_string(sim_proto_name(m->proto, pb, sizeof(pb))));
	return o;
}

static json_t *
traffic_json(const struct sim_traffic *tr)
{
	json_t *t;

	if (tr->kind == T_PCAP) {
		t = json_pack("{s:s, s:o, s:I}", "pcap", tr->path, "rate_mpps",
			tr->rate_mpps > 0 ? json_real(tr->rate_mpps) : json_null(),
			"packets", (json_int_t)tr->pcap.n);
	} else {
		json_t *syn = json_pack("{s:I, s:f, s:s, s:f, s:f, s:f, s:f, s:o}",
			"flows", (json_int_t)tr->flows, "rate_mpps", tr->rate_mpps,
			"arrival", arrivals[tr->arrival], "on_us", tr->on_us, "off_us", tr->off_us,
			"alpha", tr->alpha, "udp_share", tr->udp_share,
			"size", tr->size ? json_integer(tr->size) : json_null());
		t = json_pack("{s:o}", "synthetic", syn);
	}
	if (tr->launch)
		json_object_update(t, tr->launch);
	return t;
}

static json_t *
fault_json(const struct mscope_sim_scenario *s, unsigned i)
{
	const struct sim_fault *f = &s->faults[i];
	json_t *o = json_pack("{s:i, s:s, s:o, s:o}", "id", (int)i, "kind", fault_kinds[f->kind],
		"at_us", ps_json(f->at_ps, 1000000), "duration_us",
		ps_json(f->end_ps - f->at_ps, 1000000));

	switch (f->kind) {
	case F_BURST:
		json_object_set_new(o, "flow", sim_flow_json(&f->flow));
		json_object_set_new(o, "rate_mpps", json_real(f->rate_mpps));
		json_object_set_new(o, "size", json_integer(f->size));
		break;
	case F_INTERRUPT:
		json_object_set_new(o, "nf", json_string(s->nfs[f->nf].name));
		break;
	case F_BUG:
		json_object_set_new(o, "nf", json_string(s->nfs[f->nf].name));
		json_object_set_new(o, "match", match_json(&f->match));
		json_object_set_new(o, "slowdown", json_real(f->slowdown));
		break;
	case F_SLOW:
		json_object_set_new(o, "nf", json_string(s->nfs[f->nf].name));
		json_object_set_new(o, "factor", json_real(f->factor));
		break;
	}
	return o;
}

json_t *
mscope_sim_scenario_json(const struct mscope_sim_scenario *s)
{
	json_t *nfs = json_array(), *links = json_array(), *faults = json_array();
	unsigned *pos = calloc(s->n_nfs + 1, sizeof(*pos));

	if (!nfs || !links || !faults || !pos) {
		json_decref(nfs), json_decref(links), json_decref(faults);
		free(pos);
		return NULL;
	}
	for (unsigned i = 0; i < s->n_nfs; i++) {
		const struct sim_nf *nf = &s->nfs[i];
		json_t *o = json_pack("{s:s, s:s, s:f, s:I, s:f, s:i}", "name", nf->name,
			"type", nf->type, "rate_mpps", nf->rate_mpps, "queue", (json_int_t)nf->queue,
			"jitter", nf->jitter, "encap_port", (int)nf->vpn_port);
		if (nf->launch)
			json_object_update(o, nf->launch);
		json_array_append_new(nfs, o);
	}
	for (unsigned i = 0; i < s->n_links; i++) {
		const struct sim_link *l = &s->links[i];
		unsigned from = l->from < 0 ? s->n_nfs : (unsigned)l->from;
		json_t *o = json_pack("{s:s, s:s, s:i}",
			"from", l->from < 0 ? "source" : s->nfs[l->from].name,
			"to", s->nfs[l->to].name, "tx_port", (int)(1 + pos[from]++));
		if (l->has_match)
			json_object_set_new(o, "match", match_json(&l->match));
		json_array_append_new(links, o);
	}
	free(pos);
	for (unsigned i = 0; i < s->n_faults; i++)
		json_array_append_new(faults, fault_json(s, i));
	json_t *doc = json_pack("{s:s, s:I, s:o, s:f, s:I, s:f, s:o, s:o, s:o, s:o}",
		"name", s->name, "seed", (json_int_t)s->seed,
		"duration_ms", ps_json(s->duration_ps, 1000000000),
		"victim_threshold_us", s->victim_threshold_us, "poll_ns", (json_int_t)s->poll_ns,
		"jitter", s->jitter, "nfs", nfs, "links", links,
		"traffic", traffic_json(&s->traffic), "faults", faults);
	if (doc && s->recording)
		json_object_set(doc, "recording", s->recording);
	return doc;
}
