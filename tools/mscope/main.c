/* SPDX-License-Identifier: BSD-3-Clause */
/* mscope: one program, one subcommand per job (git style). */
#include <stdio.h>
#include <string.h>

#include "commands.h"

struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
};

/* Keep alphabetical. */
static const struct command commands[] = {
	{ "analyze", cmd_analyze, "diagnose slow and dropped packets: ranked culprits" },
	{ "dump", cmd_dump, "print trace files as text, JSON lines or statistics" },
	{ "eval", cmd_eval, "score diagnoses of simulated faults against ground truth" },
	{ "export", cmd_export, "write the packet-hops of a window as CSV or JSON lines" },
	{ "incidents", cmd_incidents, "find and diagnose the incidents of a long recording" },
	{ "keep", cmd_keep, "flight recorder: keep what the collectors of a directory hold now" },
	{ "report", cmd_report, "render a saved analysis (--json) again as text or HTML" },
	{ "sim", cmd_sim, "simulate an NF graph: traces with known faults and their victims" },
};

static void
usage(FILE *f)
{
	fprintf(f, "usage: mscope COMMAND [ARGS...]\n\n"
		"Find why packets were slow or dropped in a chain of DPDK NFs.\n\n"
		"commands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\n'mscope COMMAND --help' describes one command.\n");
}

int
main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("mscope %s\n", MSCOPE_VERSION);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "mscope: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
