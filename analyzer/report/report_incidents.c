/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The incidents page: a timeline of residence and drops over the whole
 * recording with the incidents marked, and each incident's section with its
 * diagnosis (the analysis page, embedded as an iframe srcdoc: still one
 * self-contained file, no script, no network).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mscope_report.h"
#include "report_private.h"

#define W 960
#define H 260
#define L 56
#define R 16
#define T 16
#define B 34
#define DROP_H 40             /* drop bars under the residence plot */

static const char inc_css[] =
	".inc{fill:#d64545;fill-opacity:.16;stroke:#d64545;stroke-opacity:.5}\n"
	"a:hover .inc{fill-opacity:.32}\n"
	"iframe{width:100%;height:900px;border:1px solid var(--line);border-radius:8px;"
	"background:var(--bg)}\n"
	"details summary{cursor:pointer;color:var(--accent);margin:8px 0}\n";

/* y of a residence value on a log axis from 1 us to ymax. */
static double
ylog(double us, double ymax)
{
	double ph = H - T - B - DROP_H;

	if (!(us > 1))
		us = 1;
	return T + ph - log10(us) / log10(ymax) * ph;
}

static void
timeline(FILE *f, const json_t *doc)
{
	const json_t *tl = rp_obj(doc, "timeline"), *incs = rp_arr(doc, "incidents");
	const json_t *ts = rp_arr(tl, "t_us"), *p99 = rp_arr(tl, "p99_us");
	const json_t *mx = rp_arr(tl, "max_us"), *dr = rp_arr(tl, "drops"), *x;
	const json_t *scan = rp_obj(doc, "scan");
	double w0 = rp_num(scan, "start_us", 0), w1 = rp_num(scan, "end_us", 0);
	double bw = rp_num(tl, "bin_us", 1000), pw = W - L - R, ymax = 10, dmax = 1;
	double div = w1 - w0 > 100e6 ? 1e6 : 1e3, step;
	size_t n = ts ? json_array_size(ts) : 0, i;
	const char *unit = div == 1e6 ? "s" : "ms";
	char lab[32];

	if (n == 0 || !(w1 > w0)) {
		fputs("<p class=\"note\">No timeline: nothing was scanned.</p>\n", f);
		return;
	}
	for (i = 0; i < n; i++) {
		ymax = fmax(ymax, json_number_value(json_array_get(mx, i)));
		dmax = fmax(dmax, json_number_value(json_array_get(dr, i)));
	}
	ymax = pow(10, ceil(log10(ymax)));
	fprintf(f, "<svg viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"timeline\">\n", W, H);
	/* incidents first: under the lines, each a link to its section */
	json_array_foreach(incs, i, x) {
		double a = rp_num(x, "start_us", NAN), b = rp_num(x, "end_us", NAN);
		double xa = L + (a - w0) / (w1 - w0) * pw, xb = L + (b - w0) / (w1 - w0) * pw;
		char tr[96];

		if (!isfinite(a) || !isfinite(b))
			continue;
		if (xb - xa < 3)
			xb = xa + 3;
		snprintf(tr, sizeof(tr), "incident %lld: %.3f-%.3f ms",
			(long long)rp_num(x, "id", 0), a / 1e3, b / 1e3);
		fprintf(f, "<a href=\"#inc-%lld\"><rect class=\"inc\" x=\"%.1f\" y=\"%d\" "
			"width=\"%.1f\" height=\"%d\"><title>%s</title></rect></a>\n",
			(long long)rp_num(x, "id", 0), xa, T, xb - xa, H - T - B, tr);
	}
	/* axes */
	for (double q = 1; q <= ymax * 1.001; q *= 10) {
		double y = ylog(q, ymax);
		fprintf(f, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e7eb\"/>"
			"<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\" font-size=\"11\">%g</text>\n",
			L, W - R, y, y, L - 6, y + 4, q);
	}
	fprintf(f, "<text transform=\"translate(13 %d) rotate(-90)\" text-anchor=\"middle\" "
		"font-size=\"11\" fill=\"#7b8794\">residence (us)</text>\n", T + (H - T - B) / 2);
	step = rp_nice_step((w1 - w0) / div, 8);
	for (double t = ceil(w0 / div / step) * step; t <= w1 / div + step * 1e-9; t += step) {
		double xx = L + (t * div - w0) / (w1 - w0) * pw;
		rp_tick_label(t, step, lab, sizeof(lab));
		fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" font-size=\"11\">%s"
			"</text>\n", xx, H - B + 15, lab);
	}
	fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" font-size=\"11\" "
		"fill=\"#7b8794\">time (%s)</text>\n", L + pw / 2, H - 4, unit);
	/* max and p99 over nodes */
	for (int pass = 0; pass < 2; pass++) {
		const json_t *v = pass ? p99 : mx;
		fprintf(f, "<path fill=\"none\" stroke=\"%s\" stroke-width=\"%s\" d=\"",
			pass ? "#2680c2" : "#9fb3c8", pass ? "1.4" : "1");
		for (i = 0; i < n; i++) {
			double t = json_number_value(json_array_get(ts, i));
			fprintf(f, "%s%.1f %.1f", i ? " L" : "M", L + (t + bw / 2 - w0) / (w1 - w0) * pw,
				ylog(json_number_value(json_array_get(v, i)), ymax));
		}
		fputs("\"/>\n", f);
	}
	/* drops */
	for (i = 0; i < n; i++) {
		double d = json_number_value(json_array_get(dr, i)), t, hh;
		if (!(d > 0))
			continue;
		t = json_number_value(json_array_get(ts, i));
		hh = fmax(1.5, d / dmax * (DROP_H - 6));
		fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
			"fill=\"#d64545\"><title>%.0f drops</title></rect>\n",
			L + (t - w0) / (w1 - w0) * pw, (double)(H - B) - hh,
			fmax(1, bw / (w1 - w0) * pw), hh, d);
	}
	fprintf(f, "<line x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\" stroke=\"#9aa5b1\"/>\n",
		L, W - R, H - B, H - B);
	fputs("</svg>\n<div class=\"legend\"><span><b style=\"background:#2680c2\"></b>p99 "
		"residence, worst node</span><span><b style=\"background:#9fb3c8\"></b>max "
		"residence</span><span><b style=\"background:#d64545\"></b>drops (scale to the "
		"largest bin)</span><span><b style=\"background:rgba(214,69,69,.3)\"></b>incident "
		"(click: its diagnosis)</span></div>\n", f);
}

static void
culprit_list(FILE *f, const json_t *x)
{
	const json_t *c;
	size_t j;

	if (rp_str(x, "error", NULL)) {
		fputs("not diagnosed: ", f);
		rp_esc(f, rp_str(x, "error", ""));
		return;
	}
	if (!rp_arr(x, "culprits")) {
		fputs("-", f);
		return;
	}
	if (json_array_size(rp_arr(x, "culprits")) == 0)
		fputs("no culprit", f);
	json_array_foreach(rp_arr(x, "culprits"), j, c) {
		fprintf(f, "%s%lld. <b>", j ? "<br>" : "", (long long)rp_num(c, "rank", 0));
		rp_esc(f, rp_str(c, "nf", "-"));
		fputs("</b> <span class=\"kind\">", f);
		rp_esc(f, rp_str(c, "kind", "-"));
		fputs("</span> <code>", f);
		rp_esc(f, rp_str(c, "flow", "-"));
		fprintf(f, "</code> %.1f%%", 100 * rp_num(c, "share", NAN));
	}
}

/* The analysis page of one incident, escaped into a srcdoc attribute. */
static void
embed(FILE *f, const json_t *analysis)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);

	if (m == NULL)
		return;
	if (mscope_report_html(analysis, m) || fclose(m)) {
		free(buf);
		return;
	}
	fputs("<details><summary>diagnosis of this incident (analysis page)</summary>"
		"<iframe sandbox title=\"diagnosis\" srcdoc=\"", f);
	rp_esc(f, buf);
	fputs("\"></iframe></details>\n", f);
	free(buf);
}

int
mscope_report_incidents_html(const json_t *doc, FILE *f)
{
	const json_t *scan = rp_obj(doc, "scan"), *incs = rp_arr(doc, "incidents"), *x;
	const json_t *det = rp_obj(doc, "detection");
	size_t i;

	if (!json_is_object(doc) || !f) {
		errno = EINVAL;
		return -1;
	}
	fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
		"<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\n"
		"<title>mscope incidents</title>\n<style>\n", f);
	fputs(rp_css, f);
	fputs(inc_css, f);
	fputs("</style>\n</head>\n<body>\n<header><div class=\"in\"><h1>mscope: incidents</h1>"
		"<p>", f);
	rp_esc(f, rp_str(scan, "dir", ""));
	fprintf(f, ", %.3f-%.3f ms, %.0f nodes, %.1f M packet-hops scanned</p></div></header>\n"
		"<main>\n<section><h2>Timeline</h2><p class=\"note\">Per time bin, the worst node's "
		"p99 and max residence (time from the latest rx call that saw the packet queued "
		"to its departure), log scale; drops below. ",
		rp_num(scan, "start_us", 0) / 1e3, rp_num(scan, "end_us", 0) / 1e3,
		rp_num(scan, "nodes", 0), rp_num(scan, "packet_hops", 0) / 1e6);
	if (isfinite(rp_num(det, "normal_latency_p99_us", NAN)))
		fprintf(f, "Normal operation: end-to-end latency p99 %.1f us. ",
			rp_num(det, "normal_latency_p99_us", NAN));
	fputs("</p>\n", f);
	timeline(f, doc);
	fputs("</section>\n<section><h2>Incidents</h2>\n", f);
	if (!incs || json_array_size(incs) == 0) {
		fputs("<p>No incidents: no node's residence or drops stood out against its normal "
			"operation.</p>\n", f);
	} else {
		fputs("<table><tr><th>#</th><th class=\"num\">start ms</th><th class=\"num\">end ms"
			"</th><th class=\"num\">victims</th><th class=\"num\">drops</th><th>peak "
			"residence at</th><th>top culprits</th></tr>\n", f);
		json_array_foreach(incs, i, x) {
			long long id = (long long)rp_num(x, "id", 0);

			fprintf(f, "<tr><td><a href=\"#inc-%lld\">%lld</a></td><td class=\"num\">%.3f"
				"</td><td class=\"num\">%.3f</td><td class=\"num\">", id, id,
				rp_num(x, "start_us", NAN) / 1e3, rp_num(x, "end_us", NAN) / 1e3);
			if (isfinite(rp_num(x, "victims", NAN)))
				fprintf(f, "%.0f", rp_num(x, "victims", 0));
			else
				fputs("-", f);
			fprintf(f, "</td><td class=\"num\">%.0f</td><td>", rp_num(x, "drops", 0));
			rp_esc(f, rp_str(x, "peak_node", "-"));
			fprintf(f, " %.0f us</td><td>", rp_num(x, "peak_us", NAN));
			culprit_list(f, x);
			fputs("</td></tr>\n", f);
		}
		fputs("</table>\n", f);
	}
	fputs("</section>\n", f);
	json_array_foreach(incs, i, x) {
		long long id = (long long)rp_num(x, "id", 0);
		const json_t *w = rp_obj(x, "window");

		fprintf(f, "<section id=\"inc-%lld\"><h2>Incident %lld: %.3f-%.3f ms</h2>"
			"<p class=\"note\">", id, id, rp_num(x, "start_us", NAN) / 1e3,
			rp_num(x, "end_us", NAN) / 1e3);
		fprintf(f, "%.0f node(s) stood out; worst residence %.0f us at ",
			rp_num(x, "nodes", 0), rp_num(x, "peak_us", NAN));
		rp_esc(f, rp_str(x, "peak_node", "-"));
		fprintf(f, "; %.0f drops.", rp_num(x, "drops", 0));
		if (w)
			fprintf(f, " Analysed %.3f-%.3f ms: times in the diagnosis count from %.3f ms.",
				rp_num(w, "from_us", NAN) / 1e3, rp_num(w, "to_us", NAN) / 1e3,
				rp_num(w, "offset_us", NAN) / 1e3);
		fputs("</p><p>", f);
		culprit_list(f, x);
		fputs("</p>\n", f);
		if (rp_obj(x, "analysis"))
			embed(f, rp_obj(x, "analysis"));
		fputs("</section>\n", f);
	}
	fputs("</main>\n<footer>mscope " MSCOPE_VERSION " · incidents page · no external "
		"resources</footer>\n</body>\n</html>\n", f);
	if (ferror(f)) {
		errno = EIO;
		return -1;
	}
	return 0;
}
