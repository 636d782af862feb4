/* SPDX-License-Identifier: BSD-3-Clause */
/* mscope report: render a saved analysis document (mscope analyze --json)
 * again, as the text table and/or the HTML page, without re-analysing. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "commands.h"
#include "mscope_report.h"

struct report_opts {
	const char *input;
	const char *html;
	int top;
	int quiet;
};

static void
usage(FILE *f)
{
	fprintf(f, "usage: mscope report ANALYSIS.json [--html FILE] [--top N] [--quiet]\n\n"
		"Render an analysis saved with `mscope analyze --json FILE` again.\n\n"
		"output:\n"
		"  --html FILE   also write the self-contained HTML report to FILE\n"
		"                ('-' writes it to stdout instead of the text table)\n"
		"  --top N       rules in the text table (default %d, 0 = all)\n"
		"  -q, --quiet   no text table\n"
		"  -h, --help    this help\n\n"
		"ANALYSIS.json may be '-' for stdin. Exit status: 0 ok, 1 bad input or\n"
		"output error, 2 usage.\n", MSCOPE_REPORT_TOP);
}

static int
parse_top(const char *s, int *top)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 0 || v > INT_MAX)
		return -1;
	*top = (int)v;
	return 0;
}

static int
parse(int argc, char **argv, struct report_opts *o)
{
	enum { O_HTML = 256, O_TOP };
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "html", required_argument, NULL, O_HTML },
		{ "quiet", no_argument, NULL, 'q' },
		{ "top", required_argument, NULL, O_TOP },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(o, 0, sizeof(*o));
	o->top = MSCOPE_REPORT_TOP;
	optind = 1;
	while ((c = getopt_long(argc, argv, "hq", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			return 0;
		case 'q':
			o->quiet = 1;
			break;
		case O_HTML:
			o->html = optarg;
			break;
		case O_TOP:
			if (parse_top(optarg, &o->top)) {
				fprintf(stderr, "mscope report: --top: '%s' is not a count >= 0\n",
						optarg);
				return 2;
			}
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "mscope report: %s\n", optind >= argc ?
				"missing ANALYSIS.json" : "one ANALYSIS.json only");
		usage(stderr);
		return 2;
	}
	o->input = argv[optind];
	return -1;
}

static int
write_html(const json_t *doc, const char *path)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "w") : stdout;
	int rc;

	if (!f) {
		fprintf(stderr, "mscope report: cannot create %s: %s\n", path, strerror(errno));
		return 1;
	}
	rc = mscope_report_html(doc, f);
	if (f == stdout)
		rc |= fflush(f);
	else
		rc |= fclose(f);
	if (rc) {
		fprintf(stderr, "mscope report: cannot write %s: %s\n", path, strerror(errno));
		return 1;
	}
	return 0;
}

int
cmd_report(int argc, char **argv)
{
	struct report_opts o;
	json_error_t jerr;
	json_t *doc;
	char why[256];
	int rc = parse(argc, argv, &o);

	if (rc >= 0)
		return rc;
	doc = strcmp(o.input, "-") ? json_load_file(o.input, JSON_REJECT_DUPLICATES, &jerr) :
		json_loadf(stdin, JSON_REJECT_DUPLICATES, &jerr);
	if (!doc) {
		if (jerr.line > 0)
			fprintf(stderr, "mscope report: %s:%d:%d: %s\n", o.input, jerr.line,
					jerr.column, jerr.text);
		else
			fprintf(stderr, "mscope report: %s: %s\n", o.input, jerr.text);
		return 1;
	}
	if (mscope_report_check(doc, why, sizeof(why))) {
		fprintf(stderr, "mscope report: %s: %s\n", o.input, why);
		json_decref(doc);
		return 1;
	}
	rc = 0;
	if (o.html)
		rc = write_html(doc, o.html);
	if (!o.quiet && !(o.html && !strcmp(o.html, "-"))) {
		if (mscope_report_text(doc, stdout, o.top) || fflush(stdout)) {
			fprintf(stderr, "mscope report: cannot write the text report: %s\n",
					strerror(errno));
			rc = 1;
		}
	}
	json_decref(doc);
	return rc;
}
