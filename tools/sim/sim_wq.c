/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The trace-writing thread: the engine serializes each record (header and
 * arrays copied) into 1 MiB chunks; one thread replays them, in order, into
 * the trace writers, so encoding and zstd run beside the simulation. Records
 * of every file keep their order, so the bytes are those of direct calls.
 * At most QUEUE_CHUNKS chunks are in flight: a slow writer slows the
 * engine down instead of growing memory. In direct mode (no thread) each
 * record goes straight to its writer.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_wq.h"

#define CHUNK_BYTES (1u << 20)
#define QUEUE_CHUNKS 8

enum cmd_type { C_RX = 1, C_TX, C_DROP, C_FLOW, C_FLUSH };

struct cmd {
	uint8_t type;
	uint8_t reason;
	uint16_t port;
	uint32_t node;
	uint32_t n;
	int32_t qdepth;
	uint64_t tsc;
	uint32_t ref;
	uint32_t has_flow;
	/* then the arrays, each padded to 8 bytes */
};

struct chunk {
	struct chunk *next;
	size_t len;
	uint8_t data[];
};

struct sim_wq {
	struct mscope_trace_writer **w;
	unsigned n;
	int direct;
	pthread_t tid;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct chunk *cur;           /* being filled by the engine */
	struct chunk *head, *tail;   /* full, waiting for the writer */
	struct chunk *free;
	unsigned allocated;
	int done, failed;
	char err[512];
};

static void
record_error(struct sim_wq *q, unsigned node)
{
	const struct mscope_trace_error *e = mscope_writer_error(q->w[node]);

	pthread_mutex_lock(&q->mu);
	if (!q->failed) {
		q->failed = 1;
		snprintf(q->err, sizeof(q->err), "%s: %s", e->file, e->text);
	}
	pthread_mutex_unlock(&q->mu);
}

static size_t
pad8(size_t x)
{
	return (x + 7) & ~(size_t)7;
}

/* Apply one command; returns its size. */
static size_t
apply(struct sim_wq *q, const uint8_t *p)
{
	const struct cmd *c = (const void *)p;
	const uint8_t *a = p + pad8(sizeof(*c));
	struct mscope_trace_writer *w = q->w[c->node];
	int rc = 0;

	switch (c->type) {
	case C_RX: {
		struct mscope_rx_burst rx = { .tsc = c->tsc, .n = c->n, .qdepth = c->qdepth,
			.wire_id = (const void *)a, .flow = (const void *)(a + pad8(4 * c->n)) };
		rc = mscope_writer_rx(w, &rx);
		a += 2 * pad8(4 * c->n);
		break;
	}
	case C_TX: {
		struct mscope_tx_burst tx = { .tsc = c->tsc, .port = c->port, .queue = 0,
			.offered = c->n, .accepted = c->n, .wire_id = (const void *)a,
			.rx_seq = (const void *)(a + pad8(4 * c->n)), .flow = NULL };
		a += pad8(4 * c->n) + 8 * c->n;
		if (c->has_flow) {
			tx.flow = (const void *)a;
			a += pad8(4 * c->n);
		}
		rc = mscope_writer_tx(w, &tx);
		break;
	}
	case C_DROP: {
		struct mscope_drop d = { .tsc = c->tsc, .reason = c->reason, .n = c->n,
			.wire_id = (const void *)a, .flow = NULL, .rx_seq = NULL };
		a += pad8(4 * c->n);
		if (c->has_flow) {
			d.flow = (const void *)a;
			a += pad8(4 * c->n);
		}
		rc = mscope_writer_drop(w, &d);
		break;
	}
	case C_FLOW:
		rc = mscope_writer_flow(w, c->ref, (const void *)a);
		a += pad8(sizeof(struct mscope_flow_key));
		break;
	case C_FLUSH:
		for (unsigned i = 0; i < q->n; i++)
			if (mscope_writer_flush(q->w[i]) < 0)
				record_error(q, i);
		break;
	}
	if (rc < 0)
		record_error(q, c->node);
	return (size_t)(a - p);
}

static void *
writer_thread(void *arg)
{
	struct sim_wq *q = arg;

	pthread_setname_np(pthread_self(), "mscope-sim-wr");
	for (;;) {
		pthread_mutex_lock(&q->mu);
		while (q->head == NULL && !q->done)
			pthread_cond_wait(&q->cv, &q->mu);
		struct chunk *c = q->head;
		if (c == NULL) {
			pthread_mutex_unlock(&q->mu);
			break;
		}
		q->head = c->next;
		if (q->head == NULL)
			q->tail = NULL;
		pthread_mutex_unlock(&q->mu);
		for (size_t off = 0; off < c->len;)
			off += apply(q, c->data + off);
		pthread_mutex_lock(&q->mu);
		c->next = q->free;
		q->free = c;
		pthread_cond_broadcast(&q->cv);
		pthread_mutex_unlock(&q->mu);
	}
	return NULL;
}

struct sim_wq *
sim_wq_start(struct mscope_trace_writer **writers, unsigned n, int threaded)
{
	struct sim_wq *q = calloc(1, sizeof(*q));

	if (q == NULL)
		return NULL;
	q->w = writers;
	q->n = n;
	q->direct = !threaded;
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->cv, NULL);
	if (q->direct)
		return q;
	q->cur = malloc(sizeof(struct chunk) + CHUNK_BYTES);
	if (q->cur == NULL || pthread_create(&q->tid, NULL, writer_thread, q) != 0) {
		/* no thread: write directly */
		free(q->cur);
		q->cur = NULL;
		q->direct = 1;
		return q;
	}
	q->cur->len = 0;
	q->allocated = 1;
	return q;
}

/* Hand the current chunk to the writer; get an empty one. -1: a writer failed. */
static int
handoff(struct sim_wq *q)
{
	pthread_mutex_lock(&q->mu);
	q->cur->next = NULL;
	if (q->tail)
		q->tail->next = q->cur;
	else
		q->head = q->cur;
	q->tail = q->cur;
	q->cur = NULL;
	pthread_cond_broadcast(&q->cv);
	while (q->free == NULL && q->allocated >= QUEUE_CHUNKS)
		pthread_cond_wait(&q->cv, &q->mu);
	if (q->free) {
		q->cur = q->free;
		q->free = q->cur->next;
	}
	int failed = q->failed;
	pthread_mutex_unlock(&q->mu);
	if (q->cur == NULL) {
		q->cur = malloc(sizeof(struct chunk) + CHUNK_BYTES);
		if (q->cur == NULL) {
			pthread_mutex_lock(&q->mu);
			if (!q->failed) {
				q->failed = 1;
				snprintf(q->err, sizeof(q->err), "out of memory");
			}
			pthread_mutex_unlock(&q->mu);
			return -1;
		}
		q->allocated++;
	}
	q->cur->len = 0;
	return failed ? -1 : 0;
}

/* Room for `len` bytes in the current chunk (len <= CHUNK_BYTES). */
static uint8_t *
reserve(struct sim_wq *q, size_t len)
{
	if (q->cur->len + len > CHUNK_BYTES && handoff(q) < 0)
		return NULL;
	uint8_t *p = q->cur->data + q->cur->len;
	q->cur->len += len;
	return p;
}

static uint8_t *
put_arr(uint8_t *p, const void *a, size_t bytes)
{
	memcpy(p, a, bytes);
	return p + pad8(bytes);
}

int
sim_wq_rx(struct sim_wq *q, unsigned node, const struct mscope_rx_burst *rx)
{
	if (q->direct)
		return mscope_writer_rx(q->w[node], rx) < 0 ? (record_error(q, node), -1) : 0;
	size_t len = pad8(sizeof(struct cmd)) + 2 * pad8(4 * (size_t)rx->n);
	uint8_t *p = reserve(q, len);
	if (p == NULL)
		return -1;
	struct cmd c = { .type = C_RX, .node = node, .n = rx->n, .qdepth = rx->qdepth,
		.tsc = rx->tsc };
	p = put_arr(p, &c, sizeof(c));
	p = put_arr(p, rx->wire_id, 4 * (size_t)rx->n);
	put_arr(p, rx->flow, 4 * (size_t)rx->n);
	return 0;
}

int
sim_wq_tx(struct sim_wq *q, unsigned node, const struct mscope_tx_burst *tx)
{
	if (q->direct)
		return mscope_writer_tx(q->w[node], tx) < 0 ? (record_error(q, node), -1) : 0;
	size_t n = tx->accepted;
	size_t len = pad8(sizeof(struct cmd)) + pad8(4 * n) + 8 * n + (tx->flow ? pad8(4 * n) : 0);
	uint8_t *p = reserve(q, len);
	if (p == NULL)
		return -1;
	struct cmd c = { .type = C_TX, .node = node, .port = tx->port, .n = (uint32_t)n,
		.tsc = tx->tsc, .has_flow = tx->flow != NULL };
	p = put_arr(p, &c, sizeof(c));
	p = put_arr(p, tx->wire_id, 4 * n);
	p = put_arr(p, tx->rx_seq, 8 * n);
	if (tx->flow)
		put_arr(p, tx->flow, 4 * n);
	return 0;
}

int
sim_wq_drop(struct sim_wq *q, unsigned node, const struct mscope_drop *d)
{
	if (q->direct)
		return mscope_writer_drop(q->w[node], d) < 0 ? (record_error(q, node), -1) : 0;
	size_t n = d->n;
	size_t len = pad8(sizeof(struct cmd)) + pad8(4 * n) + (d->flow ? pad8(4 * n) : 0);
	uint8_t *p = reserve(q, len);
	if (p == NULL)
		return -1;
	struct cmd c = { .type = C_DROP, .node = node, .reason = d->reason, .n = (uint32_t)n,
		.tsc = d->tsc, .has_flow = d->flow != NULL };
	p = put_arr(p, &c, sizeof(c));
	p = put_arr(p, d->wire_id, 4 * n);
	if (d->flow)
		put_arr(p, d->flow, 4 * n);
	return 0;
}

int
sim_wq_flow(struct sim_wq *q, unsigned node, uint32_t ref, const struct mscope_flow_key *k)
{
	if (q->direct)
		return mscope_writer_flow(q->w[node], ref, k) < 0 ? (record_error(q, node), -1) : 0;
	uint8_t *p = reserve(q, pad8(sizeof(struct cmd)) + pad8(sizeof(*k)));
	if (p == NULL)
		return -1;
	struct cmd c = { .type = C_FLOW, .node = node, .ref = ref };
	p = put_arr(p, &c, sizeof(c));
	put_arr(p, k, sizeof(*k));
	return 0;
}

int
sim_wq_flush(struct sim_wq *q)
{
	if (q->direct) {
		int rc = 0;
		for (unsigned i = 0; i < q->n; i++)
			if (mscope_writer_flush(q->w[i]) < 0) {
				record_error(q, i);
				rc = -1;
			}
		return rc;
	}
	uint8_t *p = reserve(q, pad8(sizeof(struct cmd)));
	if (p == NULL)
		return -1;
	struct cmd c = { .type = C_FLUSH };
	put_arr(p, &c, sizeof(c));
	return 0;
}

int
sim_wq_finish(struct sim_wq *q, char *err, size_t errlen)
{
	if (q == NULL)
		return 0;
	if (!q->direct) {
		pthread_mutex_lock(&q->mu);
		if (q->cur && q->cur->len) {
			q->cur->next = NULL;
			if (q->tail)
				q->tail->next = q->cur;
			else
				q->head = q->cur;
			q->tail = q->cur;
			q->cur = NULL;
		}
		q->done = 1;
		pthread_cond_broadcast(&q->cv);
		pthread_mutex_unlock(&q->mu);
		pthread_join(q->tid, NULL);
		free(q->cur);
		while (q->free) {
			struct chunk *c = q->free;
			q->free = c->next;
			free(c);
		}
	}
	int rc = q->failed ? -1 : 0;
	if (rc && err && errlen)
		snprintf(err, errlen, "%s", q->err);
	pthread_mutex_destroy(&q->mu);
	pthread_cond_destroy(&q->cv);
	free(q);
	return rc;
}
