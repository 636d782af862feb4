/* SPDX-License-Identifier: BSD-3-Clause */
/* `mscope export DIR`: placeholder replaced below. */
#include "commands.h"
int cmd_export(int argc, char **argv) { (void)argc; (void)argv; return 2; }
