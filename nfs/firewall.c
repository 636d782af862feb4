/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mscope-nf-firewall: an ordered 5-tuple rule list; the first matching rule
 * decides: drop, forward (by the output links), or send to a named output.
 *
 * Rules file, one rule per line ('#' starts a comment):
 *     ACTION [src=PREFIX] [dst=PREFIX] [sport=P[-Q]] [dport=P[-Q]] [proto=P]
 *     default ACTION
 * ACTION is drop, forward or to:NAME (NAME an --out link). Fields are
 * separated by blanks or commas; a rule without fields matches every packet.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <rte_ethdev.h>

#include "common.h"

#define NB_MBUFS 8191
#define MAX_RULES 4096

enum fw_action { FW_DROP, FW_FORWARD, FW_TO };

struct fw_rule {
	enum fw_action action;
	char to[64];
	int link;                   /* FW_TO: resolved link index */
	struct nf_filter filter;
	char text[160];
	unsigned int line;
	uint64_t hits;
};

struct fw {
	struct fw_rule *rules;
	unsigned int n_rules;
	struct fw_rule dflt;        /* policy for packets no rule matches */
	const char *rules_path;
	const char *inline_rules[64];
	unsigned int n_inline;
};

enum { OPT_RULE = 2000, OPT_RULES };

static const struct option fw_opts[] = {
	{ "rule", required_argument, NULL, OPT_RULE },
	{ "rules", required_argument, NULL, OPT_RULES },
	{ NULL, 0, NULL, 0 },
};

static void
usage(FILE *f)
{
	fprintf(f, "usage: mscope-nf-firewall [EAL options] -- [options]\n\n"
		"A DPDK firewall: an ordered 5-tuple rule list, first match decides.\n\n"
		"Firewall:\n"
		"  --rules FILE               rule file: lines 'ACTION [FIELD=VALUE...]' and\n"
		"                             'default ACTION'; ACTION: drop, forward, to:NAME\n"
		"  --rule 'ACTION FIELDS'     one rule, after those of --rules (repeatable)\n"
		"                             without rules every packet is forwarded\n");
	nf_common_usage(f);
	fprintf(f, "\nExample:\n"
		"  mscope-nf-firewall --no-huge --no-pci -m 256 --file-prefix fw1 \\\n"
		"    --vdev net_memif0,role=server,socket=/tmp/in.sock \\\n"
		"    --vdev net_memif1,role=client,socket=/tmp/out.sock --vdev net_null0 -- \\\n"
		"    --out next:1 --out log:2:none --rule 'to:log proto=tcp dport=22' \\\n"
		"    --rule 'drop proto=udp dport=53' --rate-mpps 0.2 --yield\n");
}

static int
own_opt(int c, const char *arg, void *st)
{
	struct fw *fw = st;

	switch (c) {
	case OPT_RULES:
		fw->rules_path = arg;
		return 0;
	case OPT_RULE:
		if (fw->n_inline >= RTE_DIM(fw->inline_rules)) {
			fprintf(stderr, "mscope-nf-firewall: too many --rule options\n");
			return -1;
		}
		fw->inline_rules[fw->n_inline++] = arg;
		return 0;
	}
	return -1;
}

/* Parse one rule line into *r. Returns 1 for a rule, 2 for a 'default'
 * line (action in *r), 0 for a blank line, -1 with err on error. */
static int
parse_rule(const char *line, struct fw_rule *r, char *err, size_t errlen)
{
	char buf[512], fil[512] = "";
	char *save = NULL, *tok, *act;
	int is_default = 0;

	memset(r, 0, sizeof(*r));
	r->link = -1;
	snprintf(buf, sizeof(buf), "%s", line);
	buf[strcspn(buf, "#\r\n")] = '\0';
	snprintf(r->text, sizeof(r->text), "%.159s", buf);
	act = strtok_r(buf, " \t,", &save);
	if (!act)
		return 0;
	if (!strcmp(act, "default")) {
		is_default = 1;
		act = strtok_r(NULL, " \t,", &save);
		if (!act) {
			snprintf(err, errlen, "'default' needs an action");
			return -1;
		}
	}
	if (!strcmp(act, "drop")) {
		r->action = FW_DROP;
	} else if (!strcmp(act, "forward") || !strcmp(act, "accept")) {
		r->action = FW_FORWARD;
	} else if (!strncmp(act, "to:", 3) && act[3] && strlen(act + 3) < sizeof(r->to)) {
		r->action = FW_TO;
		strcpy(r->to, act + 3);
	} else {
		snprintf(err, errlen, "unknown action '%s' (drop, forward, to:NAME)", act);
		return -1;
	}
	while ((tok = strtok_r(NULL, " \t,", &save))) {
		if (is_default) {
			snprintf(err, errlen, "'default' takes no fields");
			return -1;
		}
		if (strlen(fil) + strlen(tok) + 2 >= sizeof(fil)) {
			snprintf(err, errlen, "rule too long");
			return -1;
		}
		if (*fil)
			strcat(fil, ",");
		strcat(fil, tok);
	}
	if (nf_filter_parse(fil, &r->filter, err, errlen))
		return -1;
	return is_default ? 2 : 1;
}

static void
add_rule_line(struct fw *fw, const char *line, const char *where, unsigned int lineno)
{
	struct fw_rule r;
	char err[160];
	int ret = parse_rule(line, &r, err, sizeof(err));

	if (ret < 0) {
		fprintf(stderr, "mscope-nf-firewall: %s:%u: %s\n", where, lineno, err);
		exit(1);
	}
	if (ret == 0)
		return;
	r.line = lineno;
	if (ret == 2) {
		fw->dflt = r;
		return;
	}
	if (fw->n_rules >= MAX_RULES) {
		fprintf(stderr, "mscope-nf-firewall: %s:%u: more than %d rules\n", where, lineno,
			MAX_RULES);
		exit(1);
	}
	fw->rules[fw->n_rules++] = r;
}

static void
load_rules(struct fw *fw)
{
	fw->rules = calloc(MAX_RULES, sizeof(*fw->rules));
	if (!fw->rules) {
		fprintf(stderr, "mscope-nf-firewall: out of memory\n");
		exit(1);
	}
	fw->dflt.action = FW_FORWARD;
	fw->dflt.link = -1;
	fw->dflt.filter.any = true;
	snprintf(fw->dflt.text, sizeof(fw->dflt.text), "default forward");
	if (fw->rules_path) {
		FILE *f = fopen(fw->rules_path, "r");
		char line[1024];
		unsigned int n = 0;

		if (!f) {
			fprintf(stderr, "mscope-nf-firewall: cannot open %s: %s\n", fw->rules_path,
				strerror(errno));
			exit(1);
		}
		while (fgets(line, sizeof(line), f)) {
			n++;
			if (!strchr(line, '\n') && !feof(f)) {
				fprintf(stderr, "mscope-nf-firewall: %s:%u: line too long\n",
					fw->rules_path, n);
				exit(1);
			}
			add_rule_line(fw, line, fw->rules_path, n);
		}
		fclose(f);
	}
	for (unsigned int i = 0; i < fw->n_inline; i++)
		add_rule_line(fw, fw->inline_rules[i], "--rule", i + 1);
}

static void
resolve(struct fw *fw, const struct nf_common *o, struct fw_rule *r)
{
	if (r->action != FW_TO)
		return;
	r->link = nf_link_by_name(o, r->to);
	if (r->link < 0) {
		fprintf(stderr, "mscope-nf-firewall: rule '%s': no output link named '%s'"
			" (give --out %s:PORT)\n", r->text, r->to, r->to);
		exit(1);
	}
}

static void
process(struct nf_ctx *ctx, struct rte_mbuf **pkts, struct nf_pkt *meta, uint16_t n,
		uint16_t *out, void *arg)
{
	struct fw *fw = arg;

	for (uint16_t i = 0; i < n; i++) {
		struct fw_rule *r = &fw->dflt;

		for (unsigned int k = 0; k < fw->n_rules; k++) {
			if (nf_filter_match(&fw->rules[k].filter, &meta[i].t)) {
				r = &fw->rules[k];
				break;
			}
		}
		r->hits++;
		switch (r->action) {
		case FW_DROP:
			out[i] = NF_DROP;
			break;
		case FW_FORWARD:
			out[i] = NF_DEFAULT_OUT;
			break;
		case FW_TO:
			out[i] = (uint16_t)r->link;
			break;
		}
	}
}

int
main(int argc, char **argv)
{
	struct nf_common o;
	struct nf_ctx ctx;
	struct fw fw;
	json_t *rules;
	int ret;

	if (nf_help_requested(argc, argv)) {
		usage(stdout);
		return 0;
	}
	ret = nf_eal_init(argc, argv);
	argc -= ret;
	argv += ret;
	nf_common_init(&o, "mscope-nf-firewall");
	memset(&fw, 0, sizeof(fw));
	nf_getopt(&o, argc, argv, fw_opts, own_opt, &fw, usage);
	load_rules(&fw);

	nf_setup(&ctx, &o, NB_MBUFS);
	for (unsigned int i = 0; i < fw.n_rules; i++)
		resolve(&fw, &o, &fw.rules[i]);
	resolve(&fw, &o, &fw.dflt);
	if (!o.quiet)
		fprintf(stderr, "%s: %u rules, %s\n", o.name, fw.n_rules, fw.dflt.text);

	nf_loop(&ctx, process, &fw);

	rules = json_array();
	for (unsigned int i = 0; i < fw.n_rules; i++)
		json_array_append_new(rules, json_pack("{s:s, s:I}", "rule", fw.rules[i].text,
			"hits", (json_int_t)fw.rules[i].hits));
	json_array_append_new(rules, json_pack("{s:s, s:I}", "rule", fw.dflt.text,
		"hits", (json_int_t)fw.dflt.hits));
	json_object_set_new(ctx.extra, "rules", rules);
	nf_teardown(&ctx);
	free(fw.rules);
	return 0;
}
