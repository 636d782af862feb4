/* SPDX-License-Identifier: BSD-3-Clause */
/* mscope-mpi: the commands of mscope that run across the ranks of an MPI
 * job (`mpirun -n N mscope-mpi incidents DIR ...`, docs/scale-out.md).
 * Without mpirun it runs as one rank and gives what mscope gives. */
#include <mpi.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
/* ASan builds: what MPI_Init() allocates is Open MPI's, kept to the end, and
 * leaks are looked for before MPI_Finalize() unloads its components (their
 * stacks would be unnamed; tests/mpi/lsan.supp names the rest of Open MPI). */
#define LEAKS_IGNORED() __lsan_disable()
#define LEAKS_SEEN() __lsan_enable()
#define LEAK_CHECK() __lsan_do_leak_check()
#else
#define LEAKS_IGNORED() ((void)0)
#define LEAKS_SEEN() ((void)0)
#define LEAK_CHECK() ((void)0)
#endif

static void
usage(FILE *f)
{
	fprintf(f, "usage: mpirun -n N mscope-mpi incidents DIR [options]\n\n"
		"`mscope incidents` with the recording's time range split across the N ranks\n"
		"of an MPI job; the output is the same for any N. Options: mscope incidents --help.\n");
}

int
main(int argc, char **argv)
{
	int rc, rank;

	if (argc < 2 || strcmp(argv[1], "incidents")) {
		if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
			usage(stdout);
			return 0;
		}
		usage(stderr);
		return 2;
	}
	LEAKS_IGNORED();
	MPI_Init(&argc, &argv);
	LEAKS_SEEN();
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	/* rank 0 alone writes the report: the others' stdout (--help) goes nowhere */
	if (rank != 0 && freopen("/dev/null", "w", stdout) == NULL)
		fclose(stdout);
	rc = cmd_incidents(argc - 1, argv + 1);
	LEAK_CHECK();
	MPI_Finalize();
	return rc;
}
