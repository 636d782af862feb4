/* SPDX-License-Identifier: BSD-3-Clause */
/* Trace records handed to a writing thread (sim_wq.c); never installed. */
#ifndef MSCOPE_SIM_WQ_H
#define MSCOPE_SIM_WQ_H

#include "mscope_trace.h"

struct sim_wq;

/* writers[i] receives the records of node i; the array must outlive the queue.
 * threaded 0 (or no thread available): records go straight to the writers. */
struct sim_wq *sim_wq_start(struct mscope_trace_writer **writers, unsigned n, int threaded);
/* Each returns 0, or -1 once a writer has failed (the reason: sim_wq_finish). */
int sim_wq_rx(struct sim_wq *q, unsigned node, const struct mscope_rx_burst *rx);
int sim_wq_tx(struct sim_wq *q, unsigned node, const struct mscope_tx_burst *tx);
int sim_wq_drop(struct sim_wq *q, unsigned node, const struct mscope_drop *d);
int sim_wq_flow(struct sim_wq *q, unsigned node, uint32_t ref, const struct mscope_flow_key *k);
/* End the current frame of every file. */
int sim_wq_flush(struct sim_wq *q);
/* Write out everything queued, stop the thread, free. -1 with err if a write failed. */
int sim_wq_finish(struct sim_wq *q, char *err, size_t errlen);

#endif
