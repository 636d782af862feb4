/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Live view: DPDK telemetry commands on the NF's own telemetry socket
 * (/var/run/dpdk/<file-prefix>/dpdk_telemetry.v2, e.g. dpdk-telemetry.py):
 *
 *   /mscope/info               version, directory, NF name, run id, ...
 *   /mscope/queues             the recorded queues, as "<port>.<queue>"
 *   /mscope/queue,<port>.<queue>  records written and lost, bytes on disk,
 *                              ring fill, current trace file
 *
 * The callbacks run on DPDK's telemetry thread. They read counters the data
 * path and the writer thread maintain anyway, without their locks and
 * without writing anything they read: a query costs the NF core nothing.
 * The counters are single 64-bit words written by one thread each, so a
 * reading is at worst a moment old. mc.lock (the control path's and the
 * writer's, never the data path's) is taken only to find the queues.
 *
 * Like every DPDK function, the telemetry API is resolved at run time: a
 * DPDK without it (or a program run with --no-telemetry, whose commands are
 * simply never asked for) costs nothing and prints nothing.
 */
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rte_telemetry.h>

#include "collector_priv.h"

static struct {
	int (*register_cmd)(const char *, telemetry_cb, const char *);
	int (*start_dict)(struct rte_tel_data *);
	int (*start_array)(struct rte_tel_data *, enum rte_tel_value_type);
	int (*add_array_string)(struct rte_tel_data *, const char *);
	int (*add_dict_string)(struct rte_tel_data *, const char *, const char *);
	int (*add_dict_u64)(struct rte_tel_data *, const char *, uint64_t);
} tel;

/* One recorded queue of a port: its rx context and/or its tx context. */
struct tel_queue {
	uint16_t port, queue;
	struct mc_rxq *rx;
	struct mc_txq *tx;
};

/*
 * Copy the list of queues into out[max] (mc.lock: it only grows, under that
 * lock). @return how many were copied.
 */
static unsigned
queues(struct tel_queue *out, unsigned max)
{
	unsigned n = 0;

	pthread_mutex_lock(&mc.lock);
	for (unsigned i = 0; i < mc.nb_rxqs && n < max; i++)
		out[n++] = (struct tel_queue){ .port = mc.rxqs[i]->port,
					       .queue = mc.rxqs[i]->queue,
					       .rx = mc.rxqs[i] };
	for (unsigned i = 0; i < mc.nb_txqs; i++) {
		struct mc_txq *t = mc.txqs[i];
		unsigned k;

		for (k = 0; k < n && (out[k].port != t->port || out[k].queue != t->queue); k++)
			;
		if (k < n)
			out[k].tx = t;
		else if (n < max)
			out[n++] =
				(struct tel_queue){ .port = t->port, .queue = t->queue, .tx = t };
	}
	pthread_mutex_unlock(&mc.lock);
	return n;
}

/*
 * The file a node is writing now. The one place that knows where the name
 * lives: with rotation the current segment's name changes under us, so it
 * is copied (never trusted to stay NUL-terminated) before use.
 */
static void
node_file(const struct mc_node *n, char *buf, size_t len)
{
	memcpy(buf, n->path, len < sizeof(n->path) ? len : sizeof(n->path));
	buf[len - 1] = '\0';
}

static uint64_t
ld(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/* Slots in use: what the producer published and the writer has not freed. */
static uint64_t
ring_used(const struct mc_ring *r)
{
	const uint64_t cons = __atomic_load_n(&r->cons, __ATOMIC_ACQUIRE);
	const uint64_t tail = __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE);

	return tail >= cons ? tail - cons : 0;
}

static struct tel_queue list[RTE_TEL_MAX_ARRAY_ENTRIES];
static pthread_mutex_t list_lock = PTHREAD_MUTEX_INITIALIZER; /* list */

static int
cmd_info(const char *cmd, const char *params, struct rte_tel_data *d)
{
	unsigned n;

	pthread_mutex_lock(&list_lock);
	n = queues(list, RTE_DIM(list));
	pthread_mutex_unlock(&list_lock);
	tel.start_dict(d);
	tel.add_dict_string(d, "version", MSCOPE_VERSION);
	tel.add_dict_string(d, "dir", mc.cfg.dir);
	tel.add_dict_string(d, "nf", mc.nf);
	tel.add_dict_string(d, "run_id", mc.cfg.run_id);
	tel.add_dict_string(d, "host", mc.host);
	tel.add_dict_u64(d, "pid", (uint64_t)getpid());
	tel.add_dict_u64(d, "tsc_hz", mc.tsc_hz);
	tel.add_dict_u64(d, "ring_slots", mc.cfg.buffer);
	tel.add_dict_u64(d, "queues", n);
	tel.add_dict_u64(d, "active", mc.active && !__atomic_load_n(&mc.stop, __ATOMIC_RELAXED));
	return 0;
}

static int
cmd_queues(const char *cmd, const char *params, struct rte_tel_data *d)
{
	char name[16];
	unsigned n;

	pthread_mutex_lock(&list_lock);
	n = queues(list, RTE_DIM(list));
	tel.start_array(d, RTE_TEL_STRING_VAL);
	for (unsigned i = 0; i < n && i < RTE_DIM(list); i++) {
		snprintf(name, sizeof(name), "%u.%u", list[i].port, list[i].queue);
		tel.add_array_string(d, name);
	}
	pthread_mutex_unlock(&list_lock);
	return 0;
}

/* "<port>.<queue>", both decimal, nothing else. */
static int
parse_queue(const char *s, uint16_t *port, uint16_t *queue)
{
	char *end;
	unsigned long p, q;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	p = strtoul(s, &end, 10);
	if (errno != 0 || *end != '.' || end[1] < '0' || end[1] > '9' || p >= RTE_MAX_ETHPORTS)
		return -1;
	q = strtoul(end + 1, &end, 10);
	if (errno != 0 || *end != '\0' || q >= RTE_MAX_QUEUES_PER_PORT)
		return -1;
	*port = (uint16_t)p;
	*queue = (uint16_t)q;
	return 0;
}

static void
add_file(struct rte_tel_data *d, const char *key, const char *bytes_key, const struct mc_node *n)
{
	char path[PATH_MAX];
	const char *base;
	struct stat st;

	node_file(n, path, sizeof(path));
	base = strrchr(path, '/');
	tel.add_dict_string(d, key, base != NULL ? base + 1 : path);
	tel.add_dict_u64(d, bytes_key, stat(path, &st) == 0 ? (uint64_t)st.st_size : 0);
}

static int
cmd_queue(const char *cmd, const char *params, struct rte_tel_data *d)
{
	struct tel_queue q;
	uint16_t port, queue;
	bool found = false;

	if (parse_queue(params, &port, &queue) != 0)
		return -EINVAL;
	/* the port's contexts, if this queue is recorded */
	pthread_mutex_lock(&mc.lock);
	if (mc.port[port].rxq != NULL) {
		q.rx = queue < mc.port[port].nb_rxq ? mc.port[port].rxq[queue] : NULL;
		q.tx = queue < mc.port[port].nb_txq ? mc.port[port].txq[queue] : NULL;
		found = q.rx != NULL || q.tx != NULL;
	}
	pthread_mutex_unlock(&mc.lock);
	if (!found)
		return -ENOENT;

	tel.start_dict(d);
	tel.add_dict_u64(d, "port", port);
	tel.add_dict_u64(d, "queue", queue);
	if (q.rx != NULL) {
		const struct mc_node *n = q.rx->node;
		uint64_t lost_rec = ld(&q.rx->ring.lost_records);
		uint64_t lost_pkt = ld(&q.rx->ring.lost_packets);

		/* tx records of packets received here that the tx rings had no room for */
		pthread_mutex_lock(&mc.lock);
		for (unsigned i = 0; i < mc.nb_txqs; i++) {
			lost_rec += ld(&mc.txqs[i]->lost[n->index + 1][0]);
			lost_pkt += ld(&mc.txqs[i]->lost[n->index + 1][1]);
		}
		pthread_mutex_unlock(&mc.lock);
		add_file(d, "file", "file_bytes", n);
		tel.add_dict_u64(d, "records_written", ld(&n->written_rec));
		tel.add_dict_u64(d, "records_lost", lost_rec);
		tel.add_dict_u64(d, "packets_lost", lost_pkt);
		tel.add_dict_u64(d, "rx_packets", ld(&n->rx_count));
		tel.add_dict_u64(d, "rx_ring_used", ring_used(&q.rx->ring));
		tel.add_dict_u64(d, "rx_ring_slots", q.rx->ring.mask + 1);
		/* the writer gave up on its file (a warning said why) */
		tel.add_dict_u64(d, "write_failed",
				 __atomic_load_n(&n->failed, __ATOMIC_RELAXED) &&
					 !__atomic_load_n(&mc.stop, __ATOMIC_RELAXED));
	}
	if (q.tx != NULL) {
		const struct mc_node *src = __atomic_load_n(&q.tx->src, __ATOMIC_ACQUIRE);

		tel.add_dict_u64(d, "tx_ring_used", ring_used(&q.tx->ring));
		tel.add_dict_u64(d, "tx_ring_slots", q.tx->ring.mask + 1);
		tel.add_dict_u64(d, "tx_packets_lost", ld(&q.tx->lost_total));
		if (src != NULL) {
			add_file(d, "source_file", "source_file_bytes", src);
			tel.add_dict_u64(d, "source_records_written", ld(&src->written_rec));
		}
	}
	return 0;
}

#define RESOLVE(field, name) (*(void **)&tel.field = dlsym(RTLD_DEFAULT, name))

void
mc_telemetry_register(void)
{
	static const struct {
		const char *cmd;
		telemetry_cb fn;
		const char *help;
	} cmds[] = {
		{ "/mscope/info", cmd_info,
		  "mscope collector: version, trace directory, NF name, run id. No parameters." },
		{ "/mscope/queues", cmd_queues,
		  "mscope collector: the recorded queues, as <port>.<queue>. No parameters." },
		{ "/mscope/queue", cmd_queue,
		  "mscope collector: one queue's records written and lost, trace file and its "
		  "bytes on disk, ring fill. Parameters: <port>.<queue>" },
	};

	RESOLVE(register_cmd, "rte_telemetry_register_cmd");
	RESOLVE(start_dict, "rte_tel_data_start_dict");
	RESOLVE(start_array, "rte_tel_data_start_array");
	RESOLVE(add_array_string, "rte_tel_data_add_array_string");
	RESOLVE(add_dict_string, "rte_tel_data_add_dict_string");
	/* renamed _uint in DPDK 23.03, _u64 kept as an alias for a while */
	if (RESOLVE(add_dict_u64, "rte_tel_data_add_dict_uint") == NULL)
		RESOLVE(add_dict_u64, "rte_tel_data_add_dict_u64");
	if (tel.register_cmd == NULL || tel.start_dict == NULL || tel.start_array == NULL ||
	    tel.add_array_string == NULL || tel.add_dict_string == NULL || tel.add_dict_u64 == NULL)
		return; /* no telemetry in this DPDK: nothing to offer */
	for (unsigned i = 0; i < RTE_DIM(cmds); i++)
		if (tel.register_cmd(cmds[i].cmd, cmds[i].fn, cmds[i].help) != 0)
			return;
}
