/* SPDX-License-Identifier: BSD-3-Clause */
/* mscope-mpi: `mscope incidents` with the scan and the diagnoses spread over
 * the ranks of an MPI job (docs/scale-out.md). */
#ifndef MPI_INCIDENTS_H
#define MPI_INCIDENTS_H

#include "mscope_incidents.h"

/**
 * Scan, detect and diagnose the recording in `dir` across the ranks of
 * MPI_COMM_WORLD (MPI initialised by the caller): every rank calls it with
 * the same arguments. Rank 0 receives in *out the scan with every diagnosis,
 * the same as one `mscope incidents` process would have produced; other
 * ranks receive NULL. When a rank fails, rank 0 prints on stderr a line per
 * failed rank naming its shard, and every rank returns 1 with *out NULL.
 * `show`: progress and per-step lines on stderr (rank 0).
 * @return 0, or 1 (bad input on some rank).
 */
int mpi_incidents(const char *dir, struct mscope_inc_opts *o, struct mscope_an_opts *ao,
		int diagnose, int show, struct mscope_inc_scan **out);

#endif
