/* SPDX-License-Identifier: BSD-3-Clause */
/* The `mscope` subcommands. Each returns the process exit status:
 * 0 success, 1 bad input, 2 usage error. argv[0] is the subcommand name. */
#ifndef MSCOPE_COMMANDS_H
#define MSCOPE_COMMANDS_H

int cmd_analyze(int argc, char **argv);
int cmd_dump(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_incidents(int argc, char **argv);
int cmd_keep(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_sim(int argc, char **argv);

#endif
