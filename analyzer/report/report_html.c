/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The HTML report: one self-contained page (inline CSS and SVG, no script,
 * no network). Every string of the document is escaped: NF names and flows
 * come from trace data.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mscope_report.h"
#include "report_private.h"

#define TOP_CAUSES 10         /* root causes whose NFs get queue plots and bands */
#define MAX_TABLE_RULES 200
#define MAX_TABLE_NODES 500
#define MAX_PLOT_NFS 8
#define MAX_PLOT_NODES 4      /* queues plotted per NF */
#define MAX_GRAPH_NFS 64
#define MAX_BARS 12
#define PLOT_W 960
#define PLOT_H 220
#define PLOT_L 56             /* left margin: y labels */
#define PLOT_R 16
#define PLOT_T 34             /* top margin: rule bands (4 lanes) */
#define PLOT_B 34             /* bottom margin: x labels */

static const char *const palette[] = {
	"#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2",
	"#edc948", "#9c755f", "#ff9da7", "#bab0ac", "#e15759",
};
#define NPAL (sizeof(palette) / sizeof(palette[0]))
#define CULPRIT_RED "#d64545"

struct html {
	FILE *f;
	const json_t *doc;
	struct rp_time tu;
	const char **nfs;             /* NF names in order of first blame, then the rest */
	size_t nnfs, capnfs;
	struct rp_group *g;           /* root causes, largest first */
	size_t ng;
};

/* ------------------------------------------------------------ output helpers */

static void
esc(FILE *f, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '&': fputs("&amp;", f); break;
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '"': fputs("&quot;", f); break;
		case '\'': fputs("&#39;", f); break;
		default:
			/* Control characters have no business in a page. */
			if ((unsigned char)*s < 0x20 && *s != '\t' && *s != '\n')
				fputc('?', f);
			else
				fputc(*s, f);
		}
	}
}

/* Escaped, cut to n characters (bytes of a UTF-8 sequence are kept whole). */
static void
esc_cut(FILE *f, const char *s, size_t n)
{
	char buf[256];
	size_t l = strlen(s);

	if (l <= n || n + 4 > sizeof(buf)) {
		esc(f, s);
		return;
	}
	while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	memcpy(buf, s, n);
	memcpy(buf + n, "...", 4);
	esc(f, buf);
}

static int
nf_index(struct html *h, const char *nf)
{
	for (size_t i = 0; i < h->nnfs; i++)
		if (!strcmp(h->nfs[i], nf))
			return (int)i;
	return -1;
}

static void
nf_add(struct html *h, const char *nf)
{
	if (!nf || nf_index(h, nf) >= 0)
		return;
	if (h->nnfs == h->capnfs) {
		size_t cap = h->capnfs ? h->capnfs * 2 : 16;
		const char **p = realloc(h->nfs, cap * sizeof(*p));
		if (!p)
			return;
		h->nfs = p;
		h->capnfs = cap;
	}
	h->nfs[h->nnfs++] = nf;
}

static const char *
nf_color(struct html *h, const char *nf)
{
	int i = nf_index(h, nf);

	return i < 0 ? "#7b8794" : palette[(size_t)i % NPAL];
}

static double
nice_step(double range, int target)
{
	double raw, mag, r;

	if (!(range > 0) || !isfinite(range))
		return 1;
	raw = range / target;
	mag = pow(10, floor(log10(raw)));
	r = raw / mag;
	return (r < 1.5 ? 1 : r < 3.5 ? 2 : r < 7.5 ? 5 : 10) * mag;
}

/* A tick label without trailing zeros. */
static void
tick_label(double v, double step, char *buf, size_t len)
{
	int prec = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);

	if (prec > 6)
		prec = 6;
	snprintf(buf, len, "%.*f", prec, fabs(v) < step * 1e-6 ? 0.0 : v);
}

/* For the other pages of the report library (report_private.h). */
void
rp_esc(FILE *f, const char *s)
{
	esc(f, s);
}

double
rp_nice_step(double range, int target)
{
	return nice_step(range, target);
}

void
rp_tick_label(double v, double step, char *buf, size_t len)
{
	tick_label(v, step, buf, len);
}

/* ------------------------------------------------------------ page frame */

const char rp_css[] =
	":root{--fg:#1f2933;--muted:#616e7c;--line:#e4e7eb;--bg:#f5f7fa;--card:#fff;"
	"--bad:" CULPRIT_RED ";--accent:#2680c2}\n"
	"*{box-sizing:border-box}\n"
	"body{margin:0;font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,"
	"'Helvetica Neue',Arial,sans-serif;color:var(--fg);background:var(--bg)}\n"
	"header{background:#102a43;color:#fff;padding:18px 0}\n"
	"header .in,main{max-width:1060px;margin:0 auto;padding:0 24px}\n"
	"header h1{margin:0;font-size:22px;font-weight:650;letter-spacing:.01em}\n"
	"header p{margin:4px 0 0;color:#bcccdc}\n"
	"main{padding-top:18px;padding-bottom:40px}\n"
	"section{background:var(--card);border:1px solid var(--line);border-radius:10px;"
	"padding:16px 20px;margin:0 0 18px;box-shadow:0 1px 2px rgba(16,42,67,.05)}\n"
	"h2{font-size:16px;margin:0 0 4px}\n"
	"p.note{color:var(--muted);margin:0 0 12px;font-size:13px}\n"
	".cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));"
	"gap:10px;margin:0 0 18px}\n"
	".card{background:var(--card);border:1px solid var(--line);border-radius:10px;"
	"padding:10px 14px}\n"
	".card .k{color:var(--muted);font-size:11px;text-transform:uppercase;"
	"letter-spacing:.05em}\n"
	".card .v{font-size:20px;font-weight:650;white-space:nowrap;overflow:hidden;"
	"text-overflow:ellipsis}\n"
	".card.bad .v{color:var(--bad)}\n"
	".card.wide{grid-column:span 2}\n"
	".warn{background:#fffbea;border:1px solid #f0b429;border-radius:10px;"
	"padding:10px 16px;margin:0 0 18px}\n"
	".warn ul{margin:4px 0 0;padding-left:20px}\n"
	"table{border-collapse:collapse;width:100%;font-size:13px}\n"
	"th,td{text-align:left;padding:6px 8px;border-bottom:1px solid var(--line);"
	"vertical-align:top}\n"
	"th{color:var(--muted);font-weight:600;font-size:12px;white-space:nowrap}\n"
	"tr:last-child td{border-bottom:0}\n"
	"tr.cause td{border-top:2px solid #cbd2d9}\n"
	".num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}\n"
	"code{font:12px/1.35 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;"
	"background:#f0f4f8;padding:1px 5px;border-radius:4px;overflow-wrap:anywhere}\n"
	".badge{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;"
	"font-weight:600;font-size:12px;white-space:nowrap}\n"
	".kind{color:var(--muted);font-size:12px;margin-left:4px}\n"
	".share{display:flex;align-items:center;gap:6px;justify-content:flex-end}\n"
	".share i{display:inline-block;height:8px;background:var(--bad);border-radius:2px}\n"
	".plot{margin:10px 0 4px}\n"
	".plot h3{font-size:14px;margin:0}\n"
	".plot .sub{color:var(--muted);font-size:12px}\n"
	"svg{display:block;width:100%;height:auto}\n"
	"svg text{font-family:inherit;fill:#3e4c59}\n"
	".legend{color:var(--muted);font-size:12px;display:flex;gap:16px;flex-wrap:wrap;"
	"margin-top:6px}\n"
	".legend b{display:inline-block;width:14px;height:10px;border-radius:2px;"
	"margin-right:5px;vertical-align:-1px}\n"
	"footer{color:var(--muted);font-size:12px;text-align:center;padding:8px 0 24px}\n";

static void
page_head(struct html *h)
{
	const json_t *s = rp_obj(h->doc, "summary");
	char tr[64];

	fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
		"<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\n"
		"<title>mscope report</title>\n<style>\n", h->f);
	fputs(rp_css, h->f);
	fputs("</style>\n</head>\n<body>\n<header><div class=\"in\">"
		"<h1>mscope: why packets were slow or dropped</h1><p>", h->f);
	rp_time_range(&h->tu, rp_num(s, "start_us", NAN), rp_num(s, "end_us", NAN), tr,
			sizeof(tr));
	fprintf(h->f, "Queue-based diagnosis of an NF chain, trace time %s %s", tr, h->tu.unit);
	if (rp_str(s, "aggregation", NULL)) {
		fputs(", culprits aggregated by ", h->f);
		esc(h->f, rp_str(s, "aggregation", NULL));
	}
	fputs("</p></div></header>\n<main>\n", h->f);
}

static void
card(FILE *f, const char *k, const char *v, int bad)
{
	fprintf(f, "<div class=\"card%s%s\"><div class=\"k\">", bad ? " bad" : "",
			strlen(v) > 12 ? " wide" : "");
	esc(f, k);
	fputs("</div><div class=\"v\" title=\"", f);
	esc(f, v);
	fputs("\">", f);
	esc(f, v);
	fputs("</div></div>\n", f);
}

static void
summary_cards(struct html *h)
{
	const json_t *s = rp_obj(h->doc, "summary"), *w, *x;
	char v[96], tr[64];
	double loss = rp_num(s, "trace_losses", NAN), nodes = rp_num(s, "nodes", NAN);
	size_t i;

	fputs("<div class=\"cards\">\n", h->f);
	rp_count(rp_num(s, "victims", NAN), v, sizeof(v));
	card(h->f, "victims", v, rp_num(s, "victims", 0) > 0);
	rp_count(rp_num(s, "drops", NAN), v, sizeof(v));
	card(h->f, "drops", v, rp_num(s, "drops", 0) > 0);
	rp_count(rp_num(s, "packets", NAN), v, sizeof(v));
	card(h->f, "packets", v, 0);
	rp_time_range(&h->tu, rp_num(s, "start_us", NAN), rp_num(s, "end_us", NAN), tr,
			sizeof(tr));
	snprintf(v, sizeof(v), "%s %s", tr, strcmp(tr, "-") ? h->tu.unit : "");
	card(h->f, "time range", v, 0);
	if (!isfinite(nodes) && rp_arr(h->doc, "nodes"))
		nodes = (double)json_array_size(rp_arr(h->doc, "nodes"));
	rp_count(nodes, v, sizeof(v));
	card(h->f, "nodes", v, 0);
	if (isfinite(loss) && loss == 0)
		snprintf(v, sizeof(v), "none");
	else
		rp_count(loss, v, sizeof(v));
	card(h->f, "trace losses", v, isfinite(loss) && loss > 0);
	card(h->f, "arrivals", rp_str(s, "arrivals", "-"),
			!strcmp(rp_str(s, "arrivals", ""), "approximated"));
	card(h->f, "DAG variant", rp_str(s, "dag", "-"), 0);
	if (rp_num(s, "unresolved_ids", 0) > 0) {
		rp_count(rp_num(s, "unresolved_ids", NAN), v, sizeof(v));
		card(h->f, "unresolved ids", v, 1);
	}
	fputs("</div>\n", h->f);
	w = rp_arr(s, "warnings");
	if (w && json_array_size(w)) {
		fputs("<div class=\"warn\"><b>Warnings</b><ul>\n", h->f);
		json_array_foreach(w, i, x) {
			if (!json_is_string(x))
				continue;
			fputs("<li>", h->f);
			esc(h->f, json_string_value(x));
			fputs("</li>\n", h->f);
		}
		fputs("</ul></div>\n", h->f);
	}
}

/* ------------------------------------------------------------ rules table */

static void
share_cell(FILE *f, double sh, double maxsh)
{
	if (!isfinite(sh)) {
		fputs("<td class=\"num\">-</td>", f);
		return;
	}
	fprintf(f, "<td class=\"num\"><span class=\"share\"><i style=\"width:%.0fpx\"></i>"
		"%.1f%%</span></td>", fmax(2, fmin(1, sh / maxsh) * 60), sh * 100);
}

/* Scores are in packets: integers read best. */
static void
score_cell(FILE *f, double v)
{
	if (!isfinite(v))
		fputs("<td class=\"num\">-</td>", f);
	else if (fabs(v) >= 100 && fabs(v) < 1e9)
		fprintf(f, "<td class=\"num\">%.0f</td>", v);
	else if (fabs(v) >= 10 && fabs(v) < 100)
		fprintf(f, "<td class=\"num\">%.1f</td>", v);
	else
		fprintf(f, "<td class=\"num\">%.3g</td>", v);
}

static void
rules_table(struct html *h)
{
	const json_t *cul = rp_arr(h->doc, "culprits"), *c;
	size_t i, n = cul ? json_array_size(cul) : 0, rows = 0;
	char num[32], tr[64];
	double maxsh = 1e-12;

	json_array_foreach(cul, i, c)
		if (isfinite(rp_num(c, "share", NAN)))
			maxsh = fmax(maxsh, rp_num(c, "share", NAN));
	fputs("<section id=\"rules\"><h2>Root causes</h2>\n", h->f);
	if (!n || !h->ng) {
		fputs("<p class=\"note\">No culprit: no victim was diagnosed, or no aggregate "
			"reaches the threshold.</p></section>\n", h->f);
		return;
	}
	fputs("<p class=\"note\">One entry per root cause: the culprit NF and kind and the "
		"flows it blames (aggregated; <code>*</code> is any); then one row per rule: where "
		"its victims queued and their flows, and the share of all blame the rule explains."
		"</p>\n", h->f);
	fprintf(h->f, "<table>\n<tr><th>#</th><th>culprit</th><th>culprit flows</th>"
		"<th>victims at</th><th class=\"num\">share</th><th class=\"num\">score</th>"
		"<th class=\"num\">victims</th><th class=\"num\">time (%s)</th></tr>\n", h->tu.unit);
	for (size_t k = 0; k < h->ng && rows < MAX_TABLE_RULES; k++) {
		const struct rp_group *g = &h->g[k];

		for (size_t j = 0; j < g->n && rows < MAX_TABLE_RULES; j++, rows++) {
			const char *vnf;

			c = json_array_get(cul, g->rules[j]);
			vnf = rp_str(c, "victim_nf", "*");
			fputs(j ? "<tr>" : "<tr class=\"cause\">", h->f);
			if (j == 0) {
				fprintf(h->f, "<td class=\"num\" rowspan=\"%zu\">%zu</td><td rowspan=\"%zu\">"
					"<span class=\"badge\" style=\"background:%s\">", g->n, k + 1, g->n,
					nf_color(h, g->nf));
				esc(h->f, g->nf);
				fputs("</span><span class=\"kind\">", h->f);
				esc(h->f, g->kind);
				fputs("</span>", h->f);
				if (g->n > 1 && isfinite(g->share))
					fprintf(h->f, "<div class=\"kind\">%.1f%% in %zu rules</div>",
						g->share * 100, g->n);
				fprintf(h->f, "</td><td rowspan=\"%zu\"><code>", g->n);
				esc(h->f, g->flow);
				fputs("</code></td>", h->f);
			}
			fputs("<td>", h->f);
			if (strcmp(vnf, "*"))
				esc(h->f, vnf);
			else
				fputs("<span class=\"kind\">any NF</span>", h->f);
			fputs(" <code>", h->f);
			esc(h->f, rp_str(c, "victim_flow", "*"));
			fputs("</code></td>", h->f);
			share_cell(h->f, rp_num(c, "share", NAN), maxsh);
			score_cell(h->f, rp_num(c, "score", NAN));
			rp_count(rp_num(c, "victims", NAN), num, sizeof(num));
			rp_time_range(&h->tu, rp_num(c, "start_us", NAN), rp_num(c, "end_us", NAN), tr,
					sizeof(tr));
			fprintf(h->f, "<td class=\"num\">%s</td><td class=\"num\">%s</td></tr>\n", num,
					tr);
		}
	}
	fputs("</table>\n", h->f);
	if (n > rows)
		fprintf(h->f, "<p class=\"note\">%zu more rules in the JSON document.</p>\n",
				n - rows);
	fputs("</section>\n", h->f);
}

/* ------------------------------------------------------------ blame chart */

struct bar {
	const char *nf, *kind;
	double share;
	size_t first, rules;
};

static int
cmp_bar(const void *a, const void *b)
{
	const struct bar *x = a, *y = b;

	if (x->share != y->share)
		return x->share > y->share ? -1 : 1;
	return x->first < y->first ? -1 : x->first > y->first;
}

static void
blame_chart(struct html *h)
{
	const json_t *cul = rp_arr(h->doc, "culprits"), *c;
	size_t i, n = cul ? json_array_size(cul) : 0, nb = 0;
	struct bar *b = calloc(n + 1, sizeof(*b));
	double total = 0, maxs = 0;
	const double lab = 230, bw = PLOT_W - lab - 70, rowh = 30;
	int height;

	fputs("<section id=\"blame\"><h2>Blame by culprit</h2>\n", h->f);
	if (!n || !b) {
		fputs("<p class=\"note\">No blame to show.</p></section>\n", h->f);
		free(b);
		return;
	}
	json_array_foreach(cul, i, c) {
		const char *nf = rp_str(c, "nf", "-"), *kind = rp_str(c, "kind", "-");
		double sh = rp_num(c, "share", 0);
		size_t j;

		if (!isfinite(sh) || sh < 0)
			sh = 0;
		total += sh;
		for (j = 0; j < nb; j++)
			if (!strcmp(b[j].nf, nf) && !strcmp(b[j].kind, kind))
				break;
		if (j == nb)
			b[nb++] = (struct bar){ nf, kind, 0, i, 0 };
		b[j].share += sh;
		b[j].rules++;
	}
	qsort(b, nb, sizeof(*b), cmp_bar);
	if (nb > MAX_BARS)
		nb = MAX_BARS;
	for (i = 0; i < nb; i++)
		maxs = fmax(maxs, b[i].share);
	if (total < 0.995)
		maxs = fmax(maxs, 1 - total);
	if (!(maxs > 0))
		maxs = 1;
	fputs("<p class=\"note\">Share of all blame per culprit NF and kind; each segment is "
		"one rule (hover for its flows). Blame below the aggregation threshold is shown "
		"in grey.</p>\n", h->f);
	height = (int)((nb + (total < 0.995 ? 1 : 0)) * rowh + 12);
	fprintf(h->f, "<svg class=\"chart\" viewBox=\"0 0 %d %d\" role=\"img\" "
		"aria-label=\"blame by culprit\">\n", PLOT_W, height);
	for (i = 0; i < nb; i++) {
		double y = 6 + i * rowh, x = lab;
		size_t j;

		fprintf(h->f, "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\" "
			"font-size=\"13\"><tspan font-weight=\"600\">", lab - 10, y + 18);
		esc_cut(h->f, b[i].nf, 20);
		fputs("</tspan> · ", h->f);
		esc_cut(h->f, b[i].kind, 12);
		fputs("</text>\n", h->f);
		/* One segment per rule of this culprit, in rank order. */
		json_array_foreach(cul, j, c) {
			double sh = rp_num(c, "share", 0), w;
			if (strcmp(rp_str(c, "nf", "-"), b[i].nf) ||
					strcmp(rp_str(c, "kind", "-"), b[i].kind) || !(sh > 0))
				continue;
			w = sh / maxs * bw;
			fprintf(h->f, "<path class=\"bar\" d=\"M%.1f %.1fh%.1fv20h%.1fz\" fill=\"%s\" "
				"stroke=\"#fff\" stroke-width=\"1\"><title>#%.0f ", x, y + 4, w, -w,
				nf_color(h, b[i].nf), rp_num(c, "rank", (double)j + 1));
			esc(h->f, rp_str(c, "flow", "*"));
			fputs(" -&gt; ", h->f);
			esc(h->f, rp_str(c, "victim_nf", "*"));
			fputs(" ", h->f);
			esc(h->f, rp_str(c, "victim_flow", "*"));
			fprintf(h->f, ": %.1f%%</title></path>\n", sh * 100);
			x += w;
		}
		fprintf(h->f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"13\">%.1f%%</text>\n",
			x + 8, y + 18, b[i].share * 100);
	}
	if (total < 0.995) {
		double y = 6 + nb * rowh, w = (1 - total) / maxs * bw;
		fprintf(h->f, "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\" font-size=\"13\" "
			"fill=\"#7b8794\">below threshold</text>\n", lab - 10, y + 18);
		fprintf(h->f, "<path class=\"bar\" d=\"M%.1f %.1fh%.1fv20h%.1fz\" fill=\"#cbd2d9\">"
			"<title>blame in no rule</title></path>\n", lab, y + 4, w, -w);
		fprintf(h->f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"13\">%.1f%%</text>\n",
			lab + w + 8, y + 18, (1 - total) * 100);
	}
	fputs("</svg>\n</section>\n", h->f);
	free(b);
}

/* ------------------------------------------------------------ NF graph */

struct gedge {
	int from, to;
	double packets;
};

static void
nf_graph(struct html *h)
{
	const json_t *edges = rp_arr(h->doc, "edges"), *nodes = rp_arr(h->doc, "nodes");
	const json_t *cul = rp_arr(h->doc, "culprits"), *x;
	size_t i, ne = 0, nv;
	struct gedge *e = NULL;
	int *layer = NULL, *row = NULL, nlayers = 0, maxrows = 0;
	double *blame = NULL, *pos = NULL, maxp = 1;
	const double bx = 150, colw = 210, mx = 24, my = 20;
	double by = 46, rowh = 82;

	fputs("<section id=\"graph\"><h2>NF graph</h2>\n", h->f);
	nv = h->nnfs;
	if (nv == 0) {
		fputs("<p class=\"note\">No NF in the document.</p></section>\n", h->f);
		return;
	}
	if (nv > MAX_GRAPH_NFS) {
		fprintf(h->f, "<p class=\"note\">%zu NFs: too many to draw.</p></section>\n", nv);
		return;
	}
	e = calloc(json_array_size(edges) + 1, sizeof(*e));
	layer = calloc(nv, sizeof(*layer));
	row = calloc(nv, sizeof(*row));
	blame = calloc(nv, sizeof(*blame));
	pos = calloc(nv, sizeof(*pos));
	if (!e || !layer || !row || !blame || !pos)
		goto out;
	json_array_foreach(edges, i, x) {
		int a = nf_index(h, rp_str(x, "from", "")), b = nf_index(h, rp_str(x, "to", ""));
		size_t j;
		if (a < 0 || b < 0 || a == b)
			continue;
		for (j = 0; j < ne; j++)
			if (e[j].from == a && e[j].to == b)
				break;
		if (j == ne)
			e[ne++] = (struct gedge){ a, b, 0 };
		e[j].packets += fmax(0, rp_num(x, "packets", 0));
		maxp = fmax(maxp, e[j].packets);
	}
	json_array_foreach(cul, i, x) {
		int k = nf_index(h, rp_str(x, "nf", ""));
		double sh = rp_num(x, "share", 0);
		if (k >= 0 && isfinite(sh) && sh > 0)
			blame[k] += sh;
	}
	/* Layers: longest path from the sources (bounded: cycles stop growing). */
	for (size_t it = 0; it < nv; it++) {
		int changed = 0;
		for (size_t j = 0; j < ne; j++)
			if (layer[e[j].to] < layer[e[j].from] + 1 && layer[e[j].from] + 1 < (int)nv) {
				layer[e[j].to] = layer[e[j].from] + 1;
				changed = 1;
			}
		if (!changed)
			break;
	}
	for (size_t k = 0; k < nv; k++)
		nlayers = layer[k] + 1 > nlayers ? layer[k] + 1 : nlayers;
	/* Rows: by the mean row of the predecessors (fewer crossings), layer by layer. */
	for (int l = 0; l < nlayers; l++) {
		int cnt = 0;
		for (size_t k = 0; k < nv; k++) {
			double s = 0;
			int m = 0;
			if (layer[k] != l)
				continue;
			for (size_t j = 0; j < ne; j++)
				if ((size_t)e[j].to == k && layer[e[j].from] < l) {
					s += row[e[j].from];
					m++;
				}
			pos[k] = m ? s / m : 1e9 + (double)k;
		}
		for (;;) {
			int best = -1;
			for (size_t k = 0; k < nv; k++)
				if (layer[k] == l && row[k] == 0 && pos[k] >= 0 &&
						(best < 0 || pos[k] < pos[best]))
					best = (int)k;
			if (best < 0)
				break;
			row[best] = ++cnt;
			pos[best] = -1;
		}
		maxrows = cnt > maxrows ? cnt : maxrows;
	}
	/* Tall graphs: tighter rows, so that the page stays readable. */
	if (maxrows > 10) {
		rowh = fmax(50, 820.0 / maxrows);
		by = fmin(46, rowh - 10);
	}
	fputs("<p class=\"note\">NFs as inferred from the traffic, left to right from the "
		"sources; edge width follows packets. Culprit NFs are filled and ringed in red "
		"with their share of the blame.</p>\n", h->f);
	{
		double W = fmax(PLOT_W, mx * 2 + (nlayers - 1) * colw + bx);
		double H = my * 2 + maxrows * rowh - (rowh - by);
		fprintf(h->f, "<svg class=\"graph\" viewBox=\"0 0 %.0f %.0f\" role=\"img\" "
			"aria-label=\"NF graph\" style=\"max-width:%.0fpx\">\n", W, H + 10, W);
		fputs("<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" "
			"markerUnits=\"userSpaceOnUse\" markerWidth=\"11\" markerHeight=\"11\" "
			"orient=\"auto-start-reverse\">"
			"<path d=\"M0 0L10 5L0 10z\" fill=\"#829ab1\"/></marker></defs>\n", h->f);
		/* Center the layers in the width, each layer centred vertically. */
		double x0 = (W - ((nlayers - 1) * colw + bx)) / 2;
		for (size_t k = 0; k < nv; k++) {
			int cnt = 0;
			for (size_t j = 0; j < nv; j++)
				cnt += layer[j] == layer[k];
			pos[k] = my + (maxrows - cnt) * rowh / 2 + (row[k] - 1) * rowh;
		}
		for (size_t j = 0; j < ne; j++) {
			int a = e[j].from, b = e[j].to;
			double ax = x0 + layer[a] * colw + bx, ay = pos[a] + by / 2;
			double bxx = x0 + layer[b] * colw, byy = pos[b] + by / 2;
			double wdt = 1.2 + 4.5 * sqrt(e[j].packets / maxp);
			if (layer[b] > layer[a]) {
				double mxm = (ax + bxx) / 2;
				fprintf(h->f, "<path class=\"edge\" d=\"M%.1f %.1fC%.1f %.1f %.1f %.1f "
					"%.1f %.1f\"", ax, ay, mxm, ay, mxm, byy, bxx - 2, byy);
			} else {
				/* Back edge (a cycle): arc above both boxes. */
				double top = fmin(pos[a], pos[b]) - 14;
				fprintf(h->f, "<path class=\"edge\" d=\"M%.1f %.1fC%.1f %.1f %.1f %.1f "
					"%.1f %.1f\"", ax - bx / 2, pos[a], ax - bx / 2, top - 30,
					bxx + bx / 2, top - 30, bxx + bx / 2, pos[b] - 2);
			}
			fprintf(h->f, " fill=\"none\" stroke=\"#9fb3c8\" stroke-width=\"%.1f\" "
				"marker-end=\"url(#arrow)\"><title>", wdt);
			esc(h->f, h->nfs[a]);
			fputs(" -&gt; ", h->f);
			esc(h->f, h->nfs[b]);
			fprintf(h->f, ": %.0f packets</title></path>\n", e[j].packets);
		}
		for (size_t k = 0; k < nv; k++) {
			double nx = x0 + layer[k] * colw, ny = pos[k];
			int culprit = blame[k] > 0;
			double vict = 0, pk = 0;
			size_t j;
			const json_t *nd;

			json_array_foreach(nodes, j, nd)
				if (!strcmp(rp_str(nd, "nf", ""), h->nfs[k])) {
					vict += fmax(0, rp_num(nd, "victims", 0));
					pk += fmax(0, rp_num(nd, "packets", 0));
				}
			fprintf(h->f, "<g class=\"nf%s\"><title>", culprit ? " culprit" : "");
			esc(h->f, h->nfs[k]);
			fprintf(h->f, ": %.0f packets, %.0f victims queued here, %.1f%% of the blame"
				"</title>\n", pk, vict, blame[k] * 100);
			if (culprit)
				fprintf(h->f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.0f\" height=\"%.0f\" "
					"rx=\"10\" fill=\"%s\" stroke=\"" CULPRIT_RED "\" "
					"stroke-width=\"3\"/>\n", nx, ny, bx, by, nf_color(h, h->nfs[k]));
			else
				fprintf(h->f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.0f\" height=\"%.0f\" "
					"rx=\"10\" fill=\"#fff\" stroke=\"#9aa5b1\" stroke-width=\"1.5\"/>\n",
					nx, ny, bx, by);
			fprintf(h->f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" "
				"font-size=\"14\" font-weight=\"650\"%s>", nx + bx / 2, ny + 19,
				culprit ? " style=\"fill:#fff\"" : "");
			esc_cut(h->f, h->nfs[k], 18);
			fputs("</text>\n", h->f);
			fprintf(h->f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" "
				"font-size=\"11\"%s>", nx + bx / 2, ny + 35,
				culprit ? " style=\"fill:#fff\"" : " style=\"fill:#7b8794\"");
			if (culprit)
				fprintf(h->f, "culprit · %.1f%% of blame", blame[k] * 100);
			else if (vict > 0)
				fprintf(h->f, "%.0f victims queued", vict);
			else
				fprintf(h->f, "%.0f packets", pk);
			fputs("</text></g>\n", h->f);
		}
		fputs("</svg>\n", h->f);
	}
	fprintf(h->f, "<div class=\"legend\"><span><b style=\"background:%s;outline:2px solid "
		CULPRIT_RED "\"></b>culprit NF</span><span><b style=\"background:#fff;"
		"outline:1px solid #9aa5b1\"></b>other NF</span></div>\n", palette[0]);
out:
	fputs("</section>\n", h->f);
	free(e);
	free(layer);
	free(row);
	free(blame);
	free(pos);
}

/* ------------------------------------------------------------ queue plots */

struct span_us {
	double a, b;
};

/* Top rules that involve NF `nf` as culprit or victim NF. */
static int
rule_involves(const json_t *c, const char *nf)
{
	return !strcmp(rp_str(c, "nf", ""), nf) || !strcmp(rp_str(c, "victim_nf", ""), nf);
}

static void
axis_x(FILE *f, double w0, double w1, double div, const char *unit)
{
	double step = nice_step((w1 - w0) / div, 8), pw = PLOT_W - PLOT_L - PLOT_R;
	char lab[32];

	for (double t = ceil(w0 / div / step) * step; t <= w1 / div + step * 1e-9; t += step) {
		double x = PLOT_L + (t * div - w0) / (w1 - w0) * pw;
		tick_label(t, step, lab, sizeof(lab));
		fprintf(f, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" stroke=\"#e4e7eb\"/>"
			"<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" font-size=\"11\">%s</text>\n",
			x, x, PLOT_T, PLOT_H - PLOT_B, x, PLOT_H - PLOT_B + 15, lab);
	}
	fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" font-size=\"11\" "
		"fill=\"#7b8794\">time (%s)</text>\n", PLOT_L + pw / 2, PLOT_H - 4, unit);
}

static void
axis_y(FILE *f, double ymax)
{
	double step = nice_step(ymax, 4), ph = PLOT_H - PLOT_T - PLOT_B;
	char lab[32];

	if (step < 1)
		step = 1;
	for (double q = 0; q <= ymax + 1e-9; q += step) {
		double y = PLOT_H - PLOT_B - q / ymax * ph;
		tick_label(q, step, lab, sizeof(lab));
		fprintf(f, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>"
			"<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\" font-size=\"11\">%s</text>\n",
			PLOT_L, PLOT_W - PLOT_R, y, y, q == 0 ? "#9aa5b1" : "#e4e7eb", PLOT_L - 6,
			y + 4, lab);
	}
	fprintf(f, "<text transform=\"translate(13 %.1f) rotate(-90)\" text-anchor=\"middle\" "
		"font-size=\"11\" fill=\"#7b8794\">queue length</text>\n", PLOT_T + ph / 2);
}

/* One node's queue length over [w0, w1] with its victims' periods and the
 * top rules that involve its NF. */
static int
queue_plot(struct html *h, const json_t *node, const char *nf, double w0, double w1)
{
	const json_t *ser = rp_obj(node, "series");
	const json_t *ts = rp_arr(ser, "t_us"), *qs = rp_arr(ser, "qlen");
	const json_t *per = rp_arr(h->doc, "periods"), *cul = rp_arr(h->doc, "culprits"), *x;
	size_t n = ts && qs ? (json_array_size(ts) < json_array_size(qs) ?
			json_array_size(ts) : json_array_size(qs)) : 0;
	double pw = PLOT_W - PLOT_L - PLOT_R, ph = PLOT_H - PLOT_T - PLOT_B, ymax = 1;
	double *colmax;
	const char *id = rp_str(node, "id", "?");
	size_t i, cols = (size_t)pw;
	int any = 0;

	if (n < 2 || !(w1 > w0))
		return 0;
	colmax = malloc(cols * sizeof(*colmax));
	if (!colmax)
		return 0;
	for (i = 0; i < cols; i++)
		colmax[i] = -1;
	/* Max per pixel column: a bin [t_i, t_i+1) covers the columns it overlaps. */
	for (i = 0; i < n; i++) {
		double t = json_number_value(json_array_get(ts, i));
		double t2 = i + 1 < n ? json_number_value(json_array_get(ts, i + 1)) :
			t + (t - json_number_value(json_array_get(ts, i - 1)));
		double q = json_number_value(json_array_get(qs, i));
		long c0, c1;

		if (!isfinite(t) || !isfinite(t2) || !isfinite(q) || t2 <= w0 || t >= w1 || t2 < t)
			continue;
		c0 = (long)floor((fmax(t, w0) - w0) / (w1 - w0) * (double)cols);
		c1 = (long)ceil((fmin(t2, w1) - w0) / (w1 - w0) * (double)cols) - 1;
		if (c1 < c0)
			c1 = c0;
		for (long c = c0 < 0 ? 0 : c0; c <= c1 && c < (long)cols; c++)
			colmax[c] = fmax(colmax[c], fmax(0, q));
		any = 1;
	}
	if (!any) {
		free(colmax);
		return 0;
	}
	for (i = 0; i < cols; i++)
		ymax = fmax(ymax, colmax[i]);
	ymax = nice_step(ymax, 4) * ceil(ymax * 1.08 / nice_step(ymax, 4));
	if (ymax < 1)
		ymax = 1;

	fputs("<div class=\"plot\"><h3>", h->f);
	esc(h->f, id);
	fputs("</h3><div class=\"sub\">", h->f);
	{
		double pr = rp_num(node, "peak_rate_mpps", NAN);
		if (isfinite(pr)) {
			fprintf(h->f, "peak rate %.3g Mpps (", pr);
			esc(h->f, rp_str(node, "peak_rate_from", "?"));
			fputs("), ", h->f);
		}
		fprintf(h->f, "queue p50 %.0f, p99 %.0f, max %.0f; %.0f victims, %.0f drops</div>\n",
			rp_num(node, "qlen_p50", NAN), rp_num(node, "qlen_p99", NAN),
			rp_num(node, "qlen_max", NAN), rp_num(node, "victims", NAN),
			rp_num(node, "drops", NAN));
	}
	fprintf(h->f, "<svg class=\"qplot\" viewBox=\"0 0 %d %d\" role=\"img\" "
		"aria-label=\"queue length of ", PLOT_W, PLOT_H);
	esc(h->f, id);
	fputs("\">\n", h->f);
	/* Victims' queuing periods at this node, merged when closer than a pixel. */
	{
		double ra = -1, rb = -1;
		size_t drawn = 0;
		json_array_foreach(per, i, x) {
			double a = rp_num(x, "start_us", NAN), b = rp_num(x, "end_us", NAN);
			double xa, xb;
			if (strcmp(rp_str(x, "node", ""), id) || !isfinite(a) || !isfinite(b) ||
					b < w0 || a > w1)
				continue;
			xa = PLOT_L + (fmax(a, w0) - w0) / (w1 - w0) * pw;
			xb = PLOT_L + (fmin(b, w1) - w0) / (w1 - w0) * pw;
			if (ra >= 0 && xa <= rb + 1) {
				rb = fmax(rb, xb);
				continue;
			}
			if (ra >= 0 && drawn++ < 4000)
				fprintf(h->f, "<rect class=\"period\" x=\"%.1f\" y=\"%d\" width=\"%.1f\" "
					"height=\"%.0f\" fill=\"#f7c948\" fill-opacity=\".35\"/>\n", ra,
					PLOT_T, fmax(1, rb - ra), ph);
			ra = xa;
			rb = xb;
		}
		if (ra >= 0)
			fprintf(h->f, "<rect class=\"period\" x=\"%.1f\" y=\"%d\" width=\"%.1f\" "
				"height=\"%.0f\" fill=\"#f7c948\" fill-opacity=\".35\"/>\n", ra, PLOT_T,
				fmax(1, rb - ra), ph);
	}
	axis_y(h->f, ymax);
	axis_x(h->f, w0, w1, h->tu.div, h->tu.unit);
	/* p99 reference line. */
	{
		double p99 = rp_num(node, "qlen_p99", NAN);
		if (isfinite(p99) && p99 > 0 && p99 < ymax) {
			double y = PLOT_H - PLOT_B - p99 / ymax * ph;
			fprintf(h->f, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" "
				"stroke=\"#7b8794\" stroke-dasharray=\"4 3\"/><text x=\"%d\" y=\"%.1f\" "
				"text-anchor=\"end\" font-size=\"10\" fill=\"#7b8794\">p99</text>\n",
				PLOT_L, PLOT_W - PLOT_R, y, y, PLOT_W - PLOT_R - 2, y - 3);
		}
	}
	/* The queue: filled area and its outline, as steps per pixel column. */
	for (int pass = 0; pass < 2; pass++) {
		double base = PLOT_H - PLOT_B;
		int started = 0;

		fputs(pass ? "<path class=\"qline\" fill=\"none\" stroke=\"#2680c2\" "
			"stroke-width=\"1.6\" stroke-linejoin=\"round\" d=\"" :
			"<path class=\"qarea\" fill=\"#2680c2\" fill-opacity=\".18\" d=\"", h->f);
		for (i = 0; i < cols; i++) {
			double xx = PLOT_L + (double)i, y;
			if (colmax[i] < 0) {
				if (started && pass)
					started = 0;
				continue;
			}
			y = base - colmax[i] / ymax * ph;
			if (!started) {
				if (pass)
					fprintf(h->f, "M%.1f %.1f", xx, y);
				else
					fprintf(h->f, "M%.1f %.1fV%.1f", xx, base, y);
				started = 1;
			} else {
				fprintf(h->f, "V%.1f", y);
			}
			fprintf(h->f, "H%.1f", xx + 1);
		}
		if (!pass && started)
			fprintf(h->f, "V%.1fz", base);
		fputs("\"/>\n", h->f);
	}
	/* One band per top root cause whose rules involve this NF (union of
	 * their times), colored by culprit NF, each in the first of four lanes
	 * where it and its label do not overlap. */
	{
		double lane_end[4] = { -1e9, -1e9, -1e9, -1e9 };
		for (size_t k = 0; k < h->ng && k < TOP_CAUSES; k++) {
			const struct rp_group *g = &h->g[k];
			double a = INFINITY, b = -INFINITY, xa, xb, lx;
			int lane = 0;

			for (size_t j = 0; j < g->n; j++) {
				x = json_array_get(cul, g->rules[j]);
				if (!rule_involves(x, nf))
					continue;
				a = fmin(a, rp_num(x, "start_us", INFINITY));
				b = fmax(b, rp_num(x, "end_us", -INFINITY));
			}
			if (!isfinite(a) || !isfinite(b) || b < w0 || a > w1)
				continue;
			xa = PLOT_L + (fmax(a, w0) - w0) / (w1 - w0) * pw;
			xb = PLOT_L + (fmin(b, w1) - w0) / (w1 - w0) * pw;
			lx = xb + 3 > PLOT_W - 30 ? xa - 26 : xb + 3;
			for (int l = 0; l < 4; l++)
				if (lane_end[l] < fmin(xa, lx) - 4) {
					lane = l;
					break;
				} else if (lane_end[l] < lane_end[lane]) {
					lane = l;
				}
			lane_end[lane] = fmax(xb, lx + 26);
			fprintf(h->f, "<g class=\"rule\"><title>#%zu ", k + 1);
			esc(h->f, g->nf);
			fputs(" ", h->f);
			esc(h->f, g->kind);
			fputs(": ", h->f);
			esc(h->f, g->flow);
			fprintf(h->f, " (%.1f%%)</title><rect x=\"%.1f\" y=\"%d\" width=\"%.1f\" "
				"height=\"5\" rx=\"2\" fill=\"%s\"/><text x=\"%.1f\" y=\"%d\" "
				"font-size=\"10\" font-weight=\"600\">#%zu</text></g>\n",
				isfinite(g->share) ? g->share * 100 : 0, xa, 4 + lane * 7,
				fmax(2, xb - xa), nf_color(h, g->nf), lx, 9 + lane * 7, k + 1);
		}
	}
	fputs("</svg></div>\n", h->f);
	free(colmax);
	return 1;
}

static void
queue_plots(struct html *h)
{
	const json_t *cul = rp_arr(h->doc, "culprits"), *nodes = rp_arr(h->doc, "nodes"), *c;
	const char *imp[MAX_PLOT_NFS];
	size_t nimp = 0, i;
	int plotted = 0;

	fputs("<section id=\"queues\"><h2>Queues around the top root causes</h2>\n", h->f);
	for (size_t g = 0; g < h->ng && g < TOP_CAUSES; g++) {
		for (i = 0; i < h->g[g].n; i++) {
			c = json_array_get(cul, h->g[g].rules[i]);
			const char *cand[2] = { rp_str(c, "nf", NULL), rp_str(c, "victim_nf", NULL) };
			for (int k = 0; k < 2; k++) {
				size_t j;
				if (!cand[k] || !strcmp(cand[k], "*") || nimp == MAX_PLOT_NFS)
					continue;
				for (j = 0; j < nimp && strcmp(imp[j], cand[k]); j++)
					;
				if (j == nimp)
					imp[nimp++] = cand[k];
			}
		}
	}
	fputs("<p class=\"note\">Queue length (max per pixel) of each queue of the NFs named by "
		"the top root causes, over the time of their rules. Shaded: queuing periods of "
		"victims at that queue. Bars on top: the root causes involving the NF (#rank as in "
		"the table, colored by culprit NF); dashed: the queue's p99.</p>\n", h->f);
	for (size_t k = 0; k < nimp; k++) {
		double w0 = INFINITY, w1 = -INFINITY, pad;
		const json_t *nd;
		size_t j;
		int shown = 0;

		for (size_t g = 0; g < h->ng && g < TOP_CAUSES; g++)
			for (j = 0; j < h->g[g].n; j++) {
				c = json_array_get(cul, h->g[g].rules[j]);
				double a = rp_num(c, "start_us", NAN), b = rp_num(c, "end_us", NAN);
				if (rule_involves(c, imp[k]) && isfinite(a) && isfinite(b)) {
					w0 = fmin(w0, a);
					w1 = fmax(w1, b);
				}
			}
		if (!isfinite(w0) || !isfinite(w1))
			continue;
		/* Show the build-up before and the drain after: the rules' times are
		 * their victims' times; stretch to the victims' periods at the NF. */
		pad = fmax((w1 - w0) * 0.5, 1000);
		{
			double lim = w1 + 3 * (w1 - w0 + pad);
			const json_t *p;
			json_array_foreach(rp_arr(h->doc, "periods"), j, p) {
				double a = rp_num(p, "start_us", NAN), b = rp_num(p, "end_us", NAN);
				const char *pn = rp_str(p, "node", "");
				const json_t *q;
				size_t m;
				int mine = 0;
				if (!isfinite(a) || !isfinite(b) || a > w1 || b < w0)
					continue;
				json_array_foreach(nodes, m, q)
					if (!strcmp(rp_str(q, "id", ""), pn) &&
							!strcmp(rp_str(q, "nf", ""), imp[k]))
						mine = 1;
				if (mine)
					w1 = fmax(w1, fmin(b, lim));
			}
		}
		w0 -= pad;
		w1 += pad;
		{
			double s0 = rp_num(rp_obj(h->doc, "summary"), "start_us", NAN);
			double s1 = rp_num(rp_obj(h->doc, "summary"), "end_us", NAN);
			if (isfinite(s0) && w0 < s0)
				w0 = s0;
			if (isfinite(s1) && w1 > s1 && s1 > w0)
				w1 = s1;
		}
		json_array_foreach(nodes, j, nd) {
			if (shown >= MAX_PLOT_NODES)
				break;
			if (strcmp(rp_str(nd, "nf", ""), imp[k]))
				continue;
			shown += queue_plot(h, nd, imp[k], w0, w1);
		}
		plotted += shown;
	}
	if (!plotted)
		fputs("<p class=\"note\">No queue series to plot.</p>\n", h->f);
	fputs("<div class=\"legend\"><span><b style=\"background:#2680c2;opacity:.6\"></b>queue "
		"length</span><span><b style=\"background:#f7c948;opacity:.6\"></b>victims' queuing "
		"periods</span></div>\n</section>\n", h->f);
}

/* ------------------------------------------------------------ nodes table */

static void
num_cell(FILE *f, double v, const char *fmt)
{
	fputs("<td class=\"num\">", f);
	if (isfinite(v))
		fprintf(f, fmt, v);
	else
		fputs("-", f);
	fputs("</td>", f);
}

static void
nodes_table(struct html *h)
{
	const json_t *nodes = rp_arr(h->doc, "nodes"), *nd;
	size_t i, n = nodes ? json_array_size(nodes) : 0;
	char buf[32];

	fputs("<section id=\"nodes\"><h2>Nodes</h2>\n", h->f);
	if (!n) {
		fputs("<p class=\"note\">No node in the document.</p></section>\n", h->f);
		return;
	}
	fputs("<p class=\"note\">One row per NF input queue (or traffic source): the peak rate "
		"used for the scores and where it came from, waiting times and queue lengths."
		"</p>\n<table>\n<tr><th>node</th><th>NF</th><th class=\"num\">peak Mpps</th>"
		"<th>rate from</th><th class=\"num\">packets</th><th class=\"num\">victims</th>"
		"<th class=\"num\">drops</th><th class=\"num\">wait p50 &micro;s</th>"
		"<th class=\"num\">wait p99 &micro;s</th><th class=\"num\">qlen p50</th>"
		"<th class=\"num\">qlen p99</th><th class=\"num\">qlen max</th></tr>\n", h->f);
	json_array_foreach(nodes, i, nd) {
		if (i >= MAX_TABLE_NODES)
			break;
		fputs("<tr><td><code>", h->f);
		esc(h->f, rp_str(nd, "id", "-"));
		fputs("</code></td><td>", h->f);
		esc(h->f, rp_str(nd, "nf", "-"));
		fputs("</td>", h->f);
		num_cell(h->f, rp_num(nd, "peak_rate_mpps", NAN), "%.3g");
		fputs("<td>", h->f);
		esc(h->f, rp_str(nd, "peak_rate_from", "-"));
		fputs("</td>", h->f);
		rp_count(rp_num(nd, "packets", NAN), buf, sizeof(buf));
		fprintf(h->f, "<td class=\"num\">%s</td>", buf);
		rp_count(rp_num(nd, "victims", NAN), buf, sizeof(buf));
		fprintf(h->f, "<td class=\"num\">%s</td>", buf);
		rp_count(rp_num(nd, "drops", NAN), buf, sizeof(buf));
		fprintf(h->f, "<td class=\"num\">%s</td>", buf);
		num_cell(h->f, rp_num(nd, "wait_p50_us", NAN), "%.1f");
		num_cell(h->f, rp_num(nd, "wait_p99_us", NAN), "%.1f");
		num_cell(h->f, rp_num(nd, "qlen_p50", NAN), "%.0f");
		num_cell(h->f, rp_num(nd, "qlen_p99", NAN), "%.0f");
		num_cell(h->f, rp_num(nd, "qlen_max", NAN), "%.0f");
		fputs("</tr>\n", h->f);
	}
	fputs("</table>\n", h->f);
	if (n > MAX_TABLE_NODES)
		fprintf(h->f, "<p class=\"note\">%zu more nodes in the JSON document.</p>\n",
				n - MAX_TABLE_NODES);
	fputs("</section>\n", h->f);
}

/* ------------------------------------------------------------ entry */

int
mscope_report_html(const json_t *doc, FILE *out)
{
	struct html h;
	const json_t *x;
	size_t i;

	if (!json_is_object(doc) || !out) {
		errno = EINVAL;
		return -1;
	}
	memset(&h, 0, sizeof(h));
	h.f = out;
	h.doc = doc;
	rp_time_unit(doc, &h.tu);
	/* NF colors: culprits first (in rank order), then the rest. */
	json_array_foreach(rp_arr(doc, "culprits"), i, x)
		nf_add(&h, rp_str(x, "nf", NULL));
	json_array_foreach(rp_arr(doc, "culprits"), i, x)
		if (strcmp(rp_str(x, "victim_nf", "*"), "*"))
			nf_add(&h, rp_str(x, "victim_nf", NULL));
	json_array_foreach(rp_arr(doc, "edges"), i, x) {
		nf_add(&h, rp_str(x, "from", NULL));
		nf_add(&h, rp_str(x, "to", NULL));
	}
	json_array_foreach(rp_arr(doc, "nodes"), i, x)
		nf_add(&h, rp_str(x, "nf", NULL));

	h.g = rp_groups(rp_arr(doc, "culprits"), &h.ng);
	page_head(&h);
	summary_cards(&h);
	rules_table(&h);
	blame_chart(&h);
	nf_graph(&h);
	queue_plots(&h);
	nodes_table(&h);
	fputs("</main>\n<footer>mscope " MSCOPE_VERSION " · report rendered from the analysis "
		"document · no external resources</footer>\n</body>\n</html>\n", out);
	free(h.nfs);
	rp_groups_free(h.g, h.ng);
	if (ferror(out)) {
		errno = EIO;
		return -1;
	}
	return 0;
}
