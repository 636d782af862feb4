/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * Renderers of an analysis document: the text table people read in a
 * terminal and a self-contained HTML page with SVG plots.
 *
 * The document is the jansson object `mscope analyze --json` writes
 * (docs/report.md has the schema):
 *
 *   {"version":1, "summary":{...}, "nodes":[...], "edges":[...],
 *    "culprits":[...], "periods":[...]}
 *
 * The renderers are lenient: a missing or mistyped field shows as "-" or is
 * left out, never a crash, because the document may come from an older
 * analyzer or a hand-edited file. mscope_report_check() is the strict
 * validation to run first on a document read from disk.
 *
 * All strings of the document come from trace data (NF names, flows) and
 * are escaped in the HTML output. The HTML needs no network: styles and
 * plots are inline.
 *
 * ## Errors
 * Functions return 0 on success and -1 with errno set (EINVAL for a
 * document that is not a JSON object, EIO when writing failed).
 * The library never prints except to the FILE it is given.
 */
#ifndef MSCOPE_REPORT_H
#define MSCOPE_REPORT_H

#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Default number of rules shown. */
#define MSCOPE_REPORT_TOP 10

/**
 * Print one summary line (victims, drops, time range, nodes, trace losses)
 * and the top rules as a table that fits 100 columns: a first line per rule
 * with rank, culprit NF, kind, share, score, victims and time range, then
 * the culprit flow aggregate -> victim NF and flow aggregate (wrapped, and
 * truncated with "..." only when one aggregate alone exceeds the width).
 * @param top number of rules; <= 0 means all.
 * @return 0, or -1 with errno.
 */
int mscope_report_text(const json_t *doc, FILE *out, int top);

/**
 * Write one self-contained HTML page: summary, ranked rules, blame by
 * culprit (bar chart), the NF graph with culprit NFs marked, the queue
 * length over time of each implicated NF around its top rules with the
 * victims' queuing periods highlighted, and the per-node table.
 * @return 0, or -1 with errno.
 */
int mscope_report_html(const json_t *doc, FILE *out);

/**
 * Write the self-contained page of an incidents document (`mscope
 * incidents --json`, docs/incidents.md): scan summary, a timeline plot of
 * residence (p99 and max over nodes) and drops with the incidents marked,
 * each linking to its section: table row, top culprits and the incident's
 * full diagnosis (mscope_report_html()) embedded in a frame.
 * @return 0, or -1 with errno.
 */
int mscope_report_incidents_html(const json_t *doc, FILE *out);

/**
 * Check that `doc` follows the schema: an object with "version": 1, and
 * where present, "summary" an object, "nodes", "edges", "culprits",
 * "periods" arrays of objects whose known fields have the right types.
 * @param err filled with the first problem, naming the field
 *   (e.g. "culprits[2].share: expected a number"); may be NULL.
 * @return 0 valid, -1 invalid (errno EINVAL).
 */
int mscope_report_check(const json_t *doc, char *err, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* MSCOPE_REPORT_H */
