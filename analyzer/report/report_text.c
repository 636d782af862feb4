/* SPDX-License-Identifier: BSD-3-Clause */
/* The text report: one summary line and the ranked rules in 100 columns. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>

#include "mscope_report.h"
#include "report_private.h"

#define WIDTH 100
#define INDENT "      "
#define NF_MIN 10
#define NF_MAX 16

/* Append to a line buffer, never past its size. */
static void
cat(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
cat(char *buf, size_t len, const char *fmt, ...)
{
	size_t o = strlen(buf);
	va_list ap;

	if (o + 1 >= len)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + o, len - o, fmt, ap);
	va_end(ap);
}

/* Append `part` if the line stays within the width. */
static void
cat_fit(char *buf, size_t len, const char *part)
{
	if (strlen(buf) + strlen(part) <= WIDTH)
		cat(buf, len, "%s", part);
}

static void
summary_line(const json_t *doc, const struct rp_time *tu, FILE *out)
{
	const json_t *s = rp_obj(doc, "summary");
	char line[512] = "", a[32], b[32], part[160];
	double v = rp_num(s, "victims", NAN), d = rp_num(s, "drops", NAN);
	double pk = rp_num(s, "packets", NAN), nodes = rp_num(s, "nodes", NAN);
	double loss = rp_num(s, "trace_losses", NAN), unres = rp_num(s, "unresolved_ids", NAN);
	const char *arr = rp_str(s, "arrivals", NULL);

	if (!isfinite(nodes) && rp_arr(doc, "nodes"))
		nodes = (double)json_array_size(rp_arr(doc, "nodes"));
	rp_count(v, a, sizeof(a));
	rp_count(d, b, sizeof(b));
	cat(line, sizeof(line), "%s victims (%s drops)", a, b);
	if (isfinite(pk)) {
		rp_count(pk, a, sizeof(a));
		cat(line, sizeof(line), " of %s packets", a);
	}
	rp_time_range(tu, rp_num(s, "start_us", NAN), rp_num(s, "end_us", NAN), a, sizeof(a));
	if (strcmp(a, "-"))
		cat(line, sizeof(line), ", %s %s", a, tu->unit);
	rp_count(nodes, a, sizeof(a));
	cat(line, sizeof(line), ", %s node%s", a, nodes == 1 ? "" : "s");
	if (!isfinite(loss))
		cat(line, sizeof(line), ", trace losses unknown");
	else if (loss == 0)
		cat(line, sizeof(line), ", no trace losses");
	else {
		rp_count(loss, a, sizeof(a));
		cat(line, sizeof(line), ", trace losses: %s packets", a);
	}
	/* Optional facts, while they fit. */
	if (arr && !strcmp(arr, "approximated"))
		cat_fit(line, sizeof(line), ", arrivals approximated");
	if (isfinite(unres) && unres > 0) {
		rp_count(unres, a, sizeof(a));
		snprintf(part, sizeof(part), ", %s unresolved ids", a);
		cat_fit(line, sizeof(line), part);
	}
	fprintf(out, "%s\n", line);
}

/* Columns s takes (UTF-8 continuation bytes take none). */
static size_t
cols(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}

/* Print s in at most w columns, cut with "..." when longer; control
 * characters (trace data could hold terminal escapes) print as '?'. */
static void
put_cut(FILE *out, const char *s, size_t w)
{
	size_t n = cols(s), lim = n <= w ? n : w > 3 ? w - 3 : w, c = 0;

	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		int cont = (ch & 0xc0) == 0x80;
		if (!cont && c++ == lim)
			break;
		fputc(ch < 0x20 || ch == 0x7f ? '?' : ch, out);
	}
	if (n > w && w > 3)
		fputs("...", out);
}

/* put_cut() padded with spaces to w columns. */
static void
put_pad(FILE *out, const char *s, size_t w)
{
	size_t n = cols(s);

	put_cut(out, s, w);
	for (; n < w; n++)
		fputc(' ', out);
}

static const char *
victim_nf(const char *nf)
{
	return strcmp(nf, "*") ? nf : "any NF";
}

static void
flows_lines(FILE *out, const char *cf, const char *vnf, const char *vf)
{
	size_t ind = strlen(INDENT), arrow = strlen("  =>  ");
	size_t one = ind + cols(cf) + arrow + cols(vnf) + 2 + cols(vf);

	fputs(INDENT, out);
	if (one <= WIDTH) {
		put_cut(out, cf, WIDTH);
		fputs("  =>  ", out);
		put_cut(out, vnf, WIDTH);
		fputs(": ", out);
		put_cut(out, vf, WIDTH);
		fputc('\n', out);
		return;
	}
	put_cut(out, cf, WIDTH - ind);
	fputs("\n" INDENT "  =>  ", out);
	put_cut(out, vnf, 24);
	fputs(": ", out);
	put_cut(out, vf, WIDTH - ind - arrow - 2 - (cols(vnf) < 24 ? cols(vnf) : 24));
	fputc('\n', out);
}

/* Scores are in packets: integers read best; very large or small ones in %g. */
static void
put_score(FILE *out, double v)
{
	if (!isfinite(v))
		fprintf(out, "%9s  ", "-");
	else if (fabs(v) >= 100 && fabs(v) < 1e9)
		fprintf(out, "%9.0f  ", v);
	else if (fabs(v) >= 10 && fabs(v) < 100)
		fprintf(out, "%9.1f  ", v);
	else
		fprintf(out, "%9.3g  ", v);
}

/* The numbers of a table line: share, score, victims, time range. */
static void
put_numbers(FILE *out, const struct rp_time *tu, double sh, double sc, double vi, double t0,
		double t1)
{
	char num[32], tr[64];

	if (isfinite(sh))
		fprintf(out, "%5.1f%%  ", sh * 100);
	else
		fprintf(out, "%6s  ", "-");
	put_score(out, sc);
	rp_count(vi, num, sizeof(num));
	rp_time_range(tu, t0, t1, tr, sizeof(tr));
	fprintf(out, "%8s  %s\n", num, tr);
}

/* A victim line of a root cause with several rules: share, victims, where. */
static void
victim_line(FILE *out, const json_t *c)
{
	const char *vnf = victim_nf(rp_str(c, "victim_nf", "*"));
	double sh = rp_num(c, "share", NAN);
	char num[32];
	size_t used = strlen(INDENT) + 26;

	rp_count(rp_num(c, "victims", NAN), num, sizeof(num));
	if (isfinite(sh))
		fprintf(out, INDENT "  %5.1f%%  %7s  =>  ", sh * 100, num);
	else
		fprintf(out, INDENT "  %6s  %7s  =>  ", "-", num);
	put_cut(out, vnf, 24);
	fputs(": ", out);
	used += (cols(vnf) < 24 ? cols(vnf) : 24) + 2;
	put_cut(out, rp_str(c, "victim_flow", "*"), WIDTH > used ? WIDTH - used : 8);
	fputc('\n', out);
}

int
mscope_report_text(const json_t *doc, FILE *out, int top)
{
	const json_t *cul;
	struct rp_time tu;
	struct rp_group *g;
	size_t i, n, ng, shown, nfw = NF_MIN;
	double explained = 0;

	if (!json_is_object(doc) || !out) {
		errno = EINVAL;
		return -1;
	}
	rp_time_unit(doc, &tu);
	summary_line(doc, &tu, out);
	cul = rp_arr(doc, "culprits");
	n = cul ? json_array_size(cul) : 0;
	g = rp_groups(cul, &ng);
	if (n == 0 || !g) {
		double v = rp_num(rp_obj(doc, "summary"), "victims", NAN);
		fprintf(out, "%s\n", isfinite(v) && v == 0 ?
				"no culprits: no packet was slow enough to be a victim" :
				"no culprits: no rule reaches the aggregation threshold");
		goto done;
	}
	shown = top > 0 && (size_t)top < ng ? (size_t)top : ng;
	for (i = 0; i < ng; i++) {
		if (isfinite(g[i].share))
			explained += g[i].share;
		if (i < shown && cols(g[i].nf) > nfw)
			nfw = cols(g[i].nf) > NF_MAX ? NF_MAX : cols(g[i].nf);
	}
	/* One entry per root cause (culprit NF, kind, flows); a root cause that
	 * hurt several victim aggregates lists them below with their shares. */
	fprintf(out, "%4s  %-*s  %-10s  %6s  %9s  %8s  time (%s)\n", "rank", (int)nfw,
			"culprit NF", "kind", "share", "score", "victims", tu.unit);
	fprintf(out, INDENT "culprit flows  =>  victim NF: victim flows\n");
	for (i = 0; i < shown; i++) {
		const json_t *c = json_array_get(cul, g[i].rules[0]);

		fprintf(out, "%4zu  ", i + 1);
		put_pad(out, g[i].nf, nfw);
		fputs("  ", out);
		put_pad(out, g[i].kind, 10);
		fputs("  ", out);
		put_numbers(out, &tu, g[i].share, g[i].score, g[i].victims, g[i].t0, g[i].t1);
		if (g[i].n == 1) {
			flows_lines(out, g[i].flow, victim_nf(rp_str(c, "victim_nf", "*")),
					rp_str(c, "victim_flow", "*"));
			continue;
		}
		fputs(INDENT, out);
		put_cut(out, g[i].flow, WIDTH - strlen(INDENT));
		fputc('\n', out);
		for (size_t j = 0; j < g[i].n; j++)
			victim_line(out, json_array_get(cul, g[i].rules[j]));
	}
	if (shown < ng)
		fprintf(out, "(%zu more root causes; --top 0 shows all)\n", ng - shown);
	if (explained < 0.9995)
		fprintf(out, "%zu rules explain %.1f%% of the blame; the rest is spread below the "
				"aggregation threshold\n", n, explained * 100);
	else
		fprintf(out, "%zu rules explain all of the blame\n", n);
done:
	rp_groups_free(g, ng);
	if (ferror(out)) {
		errno = EIO;
		return -1;
	}
	return 0;
}
