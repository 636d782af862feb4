/* SPDX-License-Identifier: BSD-3-Clause */
/* Text and HTML renderers on hand-written analysis documents. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mscope_report.h"

static json_t *
load(const char *name)
{
	char path[1024];
	json_error_t e;
	json_t *doc;
	const char *src = getenv("MSCOPE_SRC");

	snprintf(path, sizeof(path), "%s/tests/autofocus/data/%s", src ? src : ".", name);
	doc = json_load_file(path, 0, &e);
	cr_assert_not_null(doc, "%s:%d: %s", path, e.line, e.text);
	return doc;
}

static char *
slurp(const char *name)
{
	char path[1024];
	const char *src = getenv("MSCOPE_SRC");
	FILE *f;
	char *buf;
	long n;

	snprintf(path, sizeof(path), "%s/tests/autofocus/data/%s", src ? src : ".", name);
	f = fopen(path, "r");
	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = calloc(1, (size_t)n + 1);
	cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	return buf;
}

/* Render into a string. */
static char *
render(const json_t *doc, int html, int top)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	cr_assert_not_null(f);
	if (html)
		cr_assert_eq(mscope_report_html(doc, f), 0);
	else
		cr_assert_eq(mscope_report_text(doc, f, top), 0);
	fclose(f);
	return buf;
}

static size_t
count(const char *hay, const char *needle)
{
	size_t n = 0;

	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	return n;
}

static void
check_text(const char *doc_name, int top, const char *expected)
{
	json_t *doc = load(doc_name);
	char *got = render(doc, 0, top), *want = slurp(expected);

	if (strcmp(got, want))
		fprintf(stderr, "--- got:\n%s--- want (%s):\n%s", got, expected, want);
	cr_assert_str_eq(got, want, "text report of %s differs from %s", doc_name, expected);
	free(got);
	free(want);
	json_decref(doc);
}

Test(report_text, known_output)
{
	check_text("basic.json", 10, "basic.txt");
	check_text("basic.json", 0, "basic.txt");
	check_text("basic.json", 2, "basic-top2.txt");
	check_text("empty.json", 10, "empty.txt");
}

/* Every line fits 100 columns, whatever the names and aggregates. */
Test(report_text, fits_100_columns)
{
	json_t *doc = load("basic.json");
	json_t *c = json_array_get(json_object_get(doc, "culprits"), 3);
	char *out, *line, *save = NULL;

	json_object_set_new(c, "nf", json_string("a-very-long-network-function-name-of-some-vendor"));
	json_object_set_new(c, "victim_nf", json_string("another-rather-long-nf-name"));
	json_object_set_new(c, "flow", json_string("tcp [2001:db8:1234:5678:9abc:def0:1234:5678]:"
		"49152-65535 > [2001:db8:1234:5678:9abc:def0:1234:5679]:49152-65535 (and more text)"));
	out = render(doc, 0, 0);
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		cr_assert(strlen(line) <= 100, "line of %zu columns: %s", strlen(line), line);
	free(out);
	json_decref(doc);
}

/* Control characters from trace data never reach the terminal. */
Test(report_text, no_control_characters)
{
	json_t *doc = json_pack("{s:i, s:[{s:s, s:s, s:s}]}", "version", 1, "culprits",
			"nf", "evil\x1b[2J", "kind", "source", "flow", "udp\r\x07");
	char *out = render(doc, 0, 10);

	for (const char *p = out; *p; p++)
		cr_assert(*p == '\n' || (unsigned char)*p >= 0x20, "control byte 0x%02x", *p);
	cr_assert(strstr(out, "evil?[2J"));
	free(out);
	json_decref(doc);
}

Test(report_html, self_contained_with_plots)
{
	json_t *doc = load("basic.json");
	char *out = render(doc, 1, 0);

	cr_assert(!strncmp(out, "<!DOCTYPE html>", 15));
	cr_assert(strstr(out, "</html>"));
	/* blame chart + graph + three queue plots (fw1 twice, nat1). */
	cr_assert_eq(count(out, "<svg"), 5, "svg count %zu", count(out, "<svg"));
	cr_assert_eq(count(out, "class=\"qplot\""), 3);
	cr_assert_eq(count(out, "class=\"qline\""), 3);
	cr_assert_eq(count(out, "class=\"edge\""), 2);
	cr_assert_eq(count(out, "class=\"nf culprit\""), 3, "fw1, source, nat1 are culprits");
	cr_assert_eq(count(out, "class=\"period\""), 3);
	cr_assert_eq(count(out, "class=\"bar\""), 6, "5 rule segments + below threshold");
	/* The two rules of one root cause share its rank, culprit and flow cells. */
	cr_assert_eq(count(out, "rowspan=\"2\""), 3);
	cr_assert_eq(count(out, "<tr class=\"cause\">"), 4);
	cr_assert(strstr(out, "32.0% in 2 rules"));
	/* No network: nothing fetched, no script. */
	cr_assert_null(strstr(out, "http://"));
	cr_assert_null(strstr(out, "https://"));
	cr_assert_null(strstr(out, "src="));
	cr_assert_null(strstr(out, "<script"));
	cr_assert_null(strstr(out, "@import"));
	free(out);
	json_decref(doc);
}

Test(report_html, escapes_trace_strings)
{
	json_t *doc = load("hostile.json");
	char *out = render(doc, 1, 0);

	cr_assert_null(strstr(out, "<script"), "raw markup from the document");
	cr_assert_null(strstr(out, "<img"));
	cr_assert_null(strstr(out, "<b>bold"));
	cr_assert(strstr(out, "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
	cr_assert(strstr(out, "udp &quot;10.1.2.0/24&quot; &amp; &lt;b&gt;bold&lt;/b&gt;"));
	cr_assert(strstr(out, "&lt;img src=x onerror=alert(1)&gt;"));
	free(out);
	json_decref(doc);
}

Test(report_html, empty_document)
{
	json_t *doc = load("empty.json");
	char *out = render(doc, 1, 0);

	cr_assert(strstr(out, "No culprit"));
	cr_assert(strstr(out, "</html>"));
	free(out);
	json_decref(doc);
}

/* Wrong types anywhere: the renderers show "-" and never crash. */
Test(report, lenient_on_garbage)
{
	const char *docs[] = {
		"{}",
		"{\"version\":1,\"summary\":[],\"nodes\":{},\"edges\":7,\"culprits\":\"x\"}",
		"{\"culprits\":[1,null,{\"nf\":3,\"share\":\"big\",\"start_us\":[]}],"
		"\"nodes\":[{\"nf\":\"a\",\"series\":{\"t_us\":[1,\"x\",3],\"qlen\":[1]}}],"
		"\"edges\":[{\"from\":\"a\",\"to\":\"a\"},{\"from\":\"a\",\"to\":\"b\",\"packets\":-5}]}",
		"{\"culprits\":[{\"nf\":\"a\",\"victim_nf\":\"a\",\"start_us\":5,\"end_us\":5}],"
		"\"nodes\":[{\"nf\":\"a\",\"id\":\"a0\",\"series\":{\"t_us\":[5,5,5,4],"
		"\"qlen\":[1e300,-3,0,2]}}],\"periods\":[{\"node\":\"a0\",\"start_us\":9,\"end_us\":1}]}",
		"{\"edges\":[{\"from\":\"a\",\"to\":\"b\"},{\"from\":\"b\",\"to\":\"c\"},"
		"{\"from\":\"c\",\"to\":\"a\"}],\"culprits\":[{\"nf\":\"b\",\"share\":0.5}]}",
	};

	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		json_error_t e;
		json_t *doc = json_loads(docs[i], 0, &e);
		cr_assert_not_null(doc, "doc %zu: %s", i, e.text);
		free(render(doc, 0, 5));
		free(render(doc, 1, 0));
		json_decref(doc);
	}
	errno = 0;
	cr_assert_eq(mscope_report_text(NULL, stdout, 1), -1);
	cr_assert_eq(errno, EINVAL);
	cr_assert_eq(mscope_report_html(NULL, stdout), -1);
}

Test(report, check_names_the_field)
{
	static const struct {
		const char *doc, *err;
	} cases[] = {
		{ "[]", "document: expected a JSON object" },
		{ "{}", "version: missing or not an integer" },
		{ "{\"version\":2}", "version: 2 is not supported (expected 1)" },
		{ "{\"version\":1,\"summary\":3}", "summary: expected an object" },
		{ "{\"version\":1,\"summary\":{\"victims\":\"many\"}}",
			"summary.victims: expected a number" },
		{ "{\"version\":1,\"culprits\":{}}", "culprits: expected an array" },
		{ "{\"version\":1,\"culprits\":[{},{\"share\":\"x\"}]}",
			"culprits[1].share: expected a number" },
		{ "{\"version\":1,\"nodes\":[{\"series\":{\"t_us\":{}}}]}",
			"nodes[0].series.t_us: expected an array" },
		{ "{\"version\":1,\"periods\":[7]}", "periods[0]: expected an object" },
		{ "{\"version\":1,\"edges\":[{\"from\":1}]}", "edges[0].from: expected a string" },
	};
	char err[256];
	json_t *ok = load("basic.json");

	cr_assert_eq(mscope_report_check(ok, err, sizeof(err)), 0, "%s", err);
	json_decref(ok);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_error_t e;
		json_t *doc = json_loads(cases[i].doc, JSON_DECODE_ANY, &e);
		cr_assert_not_null(doc);
		errno = 0;
		cr_assert_eq(mscope_report_check(doc, err, sizeof(err)), -1, "%s", cases[i].doc);
		cr_assert_eq(errno, EINVAL);
		cr_assert_str_eq(err, cases[i].err);
		json_decref(doc);
	}
}
