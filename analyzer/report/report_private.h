/* SPDX-License-Identifier: BSD-3-Clause */
/* Helpers shared by the renderers; not installed. */
#ifndef MSCOPE_REPORT_PRIVATE_H
#define MSCOPE_REPORT_PRIVATE_H

#include <stdio.h>

#include <jansson.h>

/* Lenient getters: the default when the field is missing or mistyped. */
const char *rp_str(const json_t *o, const char *key, const char *def);
double rp_num(const json_t *o, const char *key, double def);
/* The array under key, or NULL. */
const json_t *rp_arr(const json_t *o, const char *key);
/* The object under key, or NULL. */
const json_t *rp_obj(const json_t *o, const char *key);

/* Times of the document are microseconds; shown in ms, or in s for long runs. */
struct rp_time {
	double div;                   /* us per unit */
	const char *unit;             /* "ms" or "s" */
	int prec;                     /* decimals */
};
void rp_time_unit(const json_t *doc, struct rp_time *tu);
/* "a-b" in the unit, or "-" when unknown. */
void rp_time_range(const struct rp_time *tu, double a_us, double b_us, char *buf, size_t len);

/* Thousands separators: 1234567 -> "1,234,567"; "-" when not finite. */
void rp_count(double v, char *buf, size_t len);

/*
 * Rules of one root cause: the same culprit NF, kind and flow aggregate (a
 * culprit cluster hurting several victim aggregates yields several rules).
 * Groups are ordered by total share, then by their first rule.
 */
struct rp_group {
	const char *nf, *kind, *flow;
	double share, score;          /* sums over the rules (NAN when none known) */
	double victims;               /* distinct victims: the rule's count for one rule, else the
	                               * document's "cluster_victims", else NAN */
	double t0, t1;                /* time range over the rules */
	size_t *rules;                /* indexes into culprits[], in document order */
	size_t n;
};
/* NULL with *n = 0 when there are no culprits (or no memory). */
struct rp_group *rp_groups(const json_t *culprits, size_t *n);
void rp_groups_free(struct rp_group *g, size_t n);

/* report_html.c, for the other pages: the stylesheet, HTML escaping, axis
 * steps (about `target` ticks over range) and tick labels. */
extern const char rp_css[];
void rp_esc(FILE *f, const char *s);
double rp_nice_step(double range, int target);
void rp_tick_label(double v, double step, char *buf, size_t len);

#endif
