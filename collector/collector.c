/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libmscope-collector: preloaded into an unmodified, dynamically linked DPDK
 * NF, it records every rx and tx burst of every started port into one trace
 * file per rx queue (see docs/collector.md).
 *
 * rte_eth_rx_burst()/rte_eth_tx_burst() are static inline: they call
 * through rte_eth_fp_ops[port]. We interpose rte_eth_dev_start() (which
 * fills that table) and, after the real call succeeded, swap the port's
 * burst functions and queue data arrays for ours; ours call the driver's
 * and record. A stop resets the table, so every start installs them again.
 *
 * Nothing from DPDK is linked: the library is resolved with dlsym, so in a
 * program without DPDK it loads, finds nothing, and stays inert.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <link.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_mbuf.h>

#include "collector_priv.h"

#define EXPORT __attribute__((visibility("default")))

struct mc_state mc = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.link_off = -1,
	.dirfd = -1,
};

static int (*real_dev_start)(uint16_t);
static int (*real_dev_stop)(uint16_t);
static int (*real_dev_close)(uint16_t);
static int (*real_eal_cleanup)(void);
static int (*real_sigaction)(int, const struct sigaction *, struct sigaction *);
static sighandler_t (*real_signal)(int, sighandler_t);

/* ---------------------------------------------------------------- dead queues */

static void *dead_data[1];
static uint32_t dead_count(void *qd) { return 0; }
static int dead_status(void *qd, uint16_t off) { return -ENODEV; }
static uint16_t dead_prep(void *qd, struct rte_mbuf **p, uint16_t n) { return n; }
static struct mc_rxq dead_rxq = {
	.real_burst = mc_dead_rx_burst,
	.real_data = dead_data,
	.hwts_off = -1,
	.real_count = dead_count,
	.real_desc_status = dead_status,
};
static struct mc_txq dead_txq = {
	.real_burst = mc_dead_tx_burst,
	.real_data = dead_data,
	.real_prep = dead_prep,
	.real_desc_status = dead_status,
};

/* ---------------------------------------------------------------- activation */

/* Does the program itself contain DPDK (linked statically)? */
static int
find_marker(struct dl_phdr_info *info, size_t size, void *arg)
{
	bool *found = arg;

	/* the first object is the program */
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		static const char marker[] = "lib.ethdev."; /* ethdev trace point names */

		if (ph->p_type != PT_LOAD || (ph->p_flags & PF_W) || !(ph->p_flags & PF_R))
			continue;
		if (memmem((const void *)(info->dlpi_addr + ph->p_vaddr), ph->p_filesz, marker,
			   sizeof(marker) - 1) != NULL)
			*found = true;
	}
	return 1;
}

static bool
static_dpdk(void)
{
	bool found = false;

	dl_iterate_phdr(find_marker, &found);
	return found;
}

__attribute__((constructor)) static void
mc_init(void)
{
	void *def;

	real_sigaction = dlsym(RTLD_NEXT, "sigaction");
	real_signal = dlsym(RTLD_NEXT, "signal");
	real_dev_start = dlsym(RTLD_NEXT, "rte_eth_dev_start");
	real_dev_stop = dlsym(RTLD_NEXT, "rte_eth_dev_stop");
	real_dev_close = dlsym(RTLD_NEXT, "rte_eth_dev_close");
	real_eal_cleanup = dlsym(RTLD_NEXT, "rte_eal_cleanup");
	def = dlsym(RTLD_DEFAULT, "rte_eth_dev_start");
	if (real_dev_start == NULL || def != (void *)rte_eth_dev_start) {
		/* a program without DPDK stays silent; one with its own copy is told */
		if ((def != NULL && def != (void *)rte_eth_dev_start) || static_dpdk())
			MC_LOG("%s: DPDK is linked statically into the program, so its ports "
			       "cannot be hooked; collector inactive",
			       MC_ESC(program_invocation_short_name));
		return;
	}
	mc_config_load(&mc.cfg);
	if (mc.cfg.disabled)
		return;
	snprintf(mc.nf, sizeof(mc.nf), "%s", mc.cfg.nf);
	mc.active = true;
}

#define RESOLVE(field, name)                                                                \
	do {                                                                                \
		*(void **)&mc.api.field = dlsym(RTLD_DEFAULT, name);                        \
		if (mc.api.field == NULL && required) {                                     \
			MC_LOG("DPDK symbol %s not found; collector inactive", name);        \
			return false;                                                       \
		}                                                                           \
	} while (0)

static bool
resolve_api(void)
{
	bool required = true;

	RESOLVE(fp_ops, "rte_eth_fp_ops");
	RESOLVE(dev_info_get, "rte_eth_dev_info_get");
	RESOLVE(stats_get, "rte_eth_stats_get");
	RESOLVE(dynfield_register, "rte_mbuf_dynfield_register");
	RESOLVE(get_tsc_hz, "rte_get_tsc_hz");
	RESOLVE(ctrl_thread_create, "rte_ctrl_thread_create");
	required = false; /* only for hardware timestamps */
	RESOLVE(dev_conf_get, "rte_eth_dev_conf_get");
	RESOLVE(read_clock, "rte_eth_read_clock");
	RESOLVE(dynfield_lookup, "rte_mbuf_dynfield_lookup");
	RESOLVE(dynflag_lookup, "rte_mbuf_dynflag_lookup");
	return true;
}

static void install_signal_hooks(void);

static uint64_t
mono_raw_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t
realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * A TSC reading and a clock reading taken together: of a few tries, the one
 * with the shortest TSC gap around the clock read (a preemption or an
 * interrupt in between would make the pair off by its length).
 */
static void
tsc_pair(uint64_t (*clk)(void), uint64_t *tsc, uint64_t *ns)
{
	uint64_t best = UINT64_MAX;

	for (int i = 0; i < 7; i++) {
		const uint64_t t0 = rte_rdtsc();
		const uint64_t c = clk();
		const uint64_t t1 = rte_rdtsc();

		if (t1 - t0 < best) {
			best = t1 - t0;
			*tsc = t0 + (t1 - t0) / 2;
			*ns = c;
		}
	}
}

void
mc_clock_pair(uint64_t *tsc, int64_t *realtime)
{
	uint64_t ns = 0;

	tsc_pair(realtime_ns, tsc, &ns);
	*realtime = (int64_t)ns;
}

/*
 * The TSC rate written into every header. DPDK's figure can be the nominal
 * frequency (0.15% off on the test machine: 6 ms after 4 s); 50 ms against
 * CLOCK_MONOTONIC_RAW pins it to ~1e-6. Kept only if close to DPDK's.
 */
static uint64_t
measure_tsc_hz(uint64_t dpdk_hz)
{
	const struct timespec nap = { 0, 50 * 1000 * 1000 };
	uint64_t a = 0, b = 0, n0 = 0, n1 = 0;
	double hz;

	tsc_pair(mono_raw_ns, &a, &n0);
	nanosleep(&nap, NULL);
	tsc_pair(mono_raw_ns, &b, &n1);
	if (n1 <= n0 || b <= a)
		return dpdk_hz;
	hz = (double)(b - a) * 1e9 / (double)(n1 - n0);
	if (dpdk_hz != 0 && (hz < 0.95 * (double)dpdk_hz || hz > 1.05 * (double)dpdk_hz))
		return dpdk_hz;
	return (uint64_t)(hz + 0.5);
}

#define HZ_FILE ".mscope-tsc-hz"

/*
 * The rate in dir/HZ_FILE if it was measured during this boot, else 0. Only
 * a regular file is read (a FIFO there would block the NF's start forever).
 */
static uint64_t
read_shared_hz(const char *boot, uint64_t dpdk_hz)
{
	char buf[192], b[64];
	unsigned long long hz;

	if (mc_dir_read_small(mc.dirfd, HZ_FILE, buf, sizeof(buf)) <= 0)
		return 0;
	if (sscanf(buf, "mscope-tsc-hz 1 %63s %llu", b, &hz) != 2 || strcmp(b, boot) != 0 ||
	    hz < 1000000 || (dpdk_hz != 0 && (hz < 0.95 * (double)dpdk_hz ||
					      hz > 1.05 * (double)dpdk_hz)))
		return 0;
	return hz;
}

/*
 * One TSC rate for every process of a run. The analyzer checks the anchors
 * of one host against each other as realtime - tsc / tsc_hz, with the TSC
 * counted from boot: a rate differing by 1e-5 between two NFs (two 50 ms
 * measurements on a loaded machine) moves that by tens of ms after an hour
 * of uptime. So the first process measures and leaves the rate (with the
 * kernel's boot id) in MSCOPE_DIR/.mscope-tsc-hz; the others of the same
 * boot use it. Any problem: this process's own measurement.
 */
static uint64_t
shared_tsc_hz(uint64_t dpdk_hz)
{
	char boot[64] = "", tmp[64], line[192];
	uint64_t hz, other;
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");
	struct stat st;
	int fd, len;

	if (f != NULL) {
		if (fscanf(f, "%63s", boot) != 1)
			boot[0] = '\0';
		fclose(f);
	}
	if (boot[0] == '\0')
		return measure_tsc_hz(dpdk_hz);
	hz = read_shared_hz(boot, dpdk_hz);
	if (hz != 0)
		return hz;
	hz = measure_tsc_hz(dpdk_hz);
	if (hz == 0)
		return 0;
	snprintf(tmp, sizeof(tmp), HZ_FILE ".%d", (int)getpid());
	fd = openat(mc.dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return hz;
	len = snprintf(line, sizeof(line), "mscope-tsc-hz 1 %s %" PRIu64 "\n", boot, hz);
	if (write(fd, line, (size_t)len) != len) {
		close(fd);
		unlinkat(mc.dirfd, tmp, 0);
		return hz;
	}
	close(fd);
	/* first one wins; a file of another boot is replaced, anything else left alone */
	if (linkat(mc.dirfd, tmp, mc.dirfd, HZ_FILE, 0) != 0 && errno == EEXIST) {
		other = read_shared_hz(boot, dpdk_hz);
		if (other != 0) {
			unlinkat(mc.dirfd, tmp, 0);
			return other;
		}
		if (fstatat(mc.dirfd, HZ_FILE, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(st.st_mode) && renameat(mc.dirfd, tmp, mc.dirfd, HZ_FILE) == 0)
			return hz;
	}
	unlinkat(mc.dirfd, tmp, 0);
	return hz;
}

/* First port start: everything that needs an initialised EAL. */
static bool
setup_once(void)
{
	static int done; /* 0 not yet, 1 ok, -1 failed */
	static const struct rte_mbuf_dynfield link_field = {
		.name = "mscope_rx_link",
		.size = sizeof(uint64_t),
		.align = __alignof__(uint64_t),
	};
	char why[PATH_MAX + 64];

	if (done != 0)
		return done > 0;
	done = -1;
	if (!resolve_api())
		return false;
	if (gethostname(mc.host, sizeof(mc.host) - 1) != 0)
		snprintf(mc.host, sizeof(mc.host), "unknown");
	mc.dirfd = mc_dir_open(mc.cfg.dir, why, sizeof(why));
	if (mc.dirfd < 0 || faccessat(mc.dirfd, ".", W_OK | X_OK, 0) != 0) {
		MC_LOG("MSCOPE_DIR \"%s\" is not a writable directory (%s); collector disabled",
		       MC_ESC(mc.cfg.dir), mc.dirfd < 0 ? MC_ESC(why) : strerror(errno));
		if (mc.dirfd >= 0)
			close(mc.dirfd);
		mc.dirfd = -1;
		return false;
	}
	mc_mem_limit_init();
	mc_seg_reserve();
	mc.tsc_hz = shared_tsc_hz(mc.api.get_tsc_hz());
	if (mc.tsc_hz == 0) {
		MC_LOG("TSC rate unknown; collector inactive");
		return false;
	}
	mc.link_off = mc.api.dynfield_register(&link_field);
	if (mc.link_off < 0) {
		MC_LOG("cannot register the mbuf dynamic field; collector inactive");
		return false;
	}
	if (mc_writer_start() != 0) {
		MC_LOG("cannot start the writer thread; collector inactive");
		return false;
	}
	install_signal_hooks();
	mc_telemetry_register();
	done = 1;
	return true;
}

/* ---------------------------------------------------------------- hooking */

static void *
alloc_touched(size_t size)
{
	void *p = aligned_alloc(RTE_CACHE_LINE_SIZE,
				(size + RTE_CACHE_LINE_SIZE - 1) & ~(size_t)(RTE_CACHE_LINE_SIZE - 1));

	/* fault every page in now, not on the data path */
	if (p != NULL)
		memset(p, 0, size);
	return p;
}

/* A queue context of `size` bytes and its ring, within the memory limit. */
static void *
alloc_queue(size_t size, struct mc_ring **ring, size_t ring_off)
{
	const uint32_t slots = mc_mem_ring_slots(size);
	uint8_t *q;
	struct mc_ring *r;

	if (slots == 0)
		return NULL;
	q = alloc_touched(size);
	if (q == NULL)
		return NULL;
	r = (struct mc_ring *)(q + ring_off);
	r->slots = alloc_touched((size_t)slots * sizeof(uint64_t));
	r->mask = slots - 1;
	if (r->slots == NULL) {
		free(q);
		return NULL;
	}
	*ring = r;
	return q;
}

static struct mc_rxq *
new_rxq(uint16_t port, uint16_t queue)
{
	struct mscope_trace_error err;
	struct mc_rxq *q;
	struct mc_ring *ring;
	struct mc_node *n;

	if (mc.nb_nodes >= MC_MAX_NODES) {
		MC_LOG("more than %d rx queues; port %u queue %u is not recorded", MC_MAX_NODES,
		       port, queue);
		return NULL;
	}
	q = alloc_queue(sizeof(*q), &ring, offsetof(struct mc_rxq, ring));
	if (q == NULL) {
		MC_LOG("out of memory for port %u queue %u; not recorded", port, queue);
		return NULL;
	}
	memset(&err, 0, sizeof(err));
	n = mc_node_open(MSCOPE_ROLE_RXQ, port, queue, q->fmirror, q->fkeys, q->fkey_ok, &err);
	if (n == NULL) {
		MC_LOG("cannot create %s: %s; collector disabled", MC_ESC(err.file),
		       MC_ESC(err.text));
		free(q->ring.slots);
		free(q);
		mc.active = false;
		return NULL;
	}
	n->index = (uint16_t)mc.nb_nodes;
	q->node = n;
	q->port = port;
	q->queue = queue;
	q->hwts_off = -1;
	q->link_base = (uint64_t)(n->index + 1) << 48;
	mc.nodes[mc.nb_nodes++] = n;
	mc.rxqs[mc.nb_rxqs++] = q;
	return q;
}

static struct mc_txq *
new_txq(uint16_t port, uint16_t queue)
{
	struct mc_txq *q;
	struct mc_ring *ring;

	if (mc.nb_txqs >= RTE_DIM(mc.txqs)) {
		MC_LOG("too many tx queues; port %u queue %u is not recorded", port, queue);
		return NULL;
	}
	q = alloc_queue(sizeof(*q), &ring, offsetof(struct mc_txq, ring));
	if (q == NULL) {
		MC_LOG("out of memory for port %u tx queue %u; not recorded", port, queue);
		return NULL;
	}
	q->port = port;
	q->queue = queue;
	q->run_span = mc.tsc_hz / 1000;
	mc.txqs[mc.nb_txqs++] = q;
	return q;
}

/* NIC rx timestamps: only if the port enabled the offload and its clock reads. */
static void
setup_hwts(uint16_t port, struct mc_port *mp)
{
	struct rte_eth_conf conf;
	struct rte_mbuf_dynfield f;
	struct rte_mbuf_dynflag fl;
	const struct timespec nap = { 0, 20 * 1000 * 1000 };
	uint64_t c0, c1, t0, t1;
	int off, bit;

	if (mc.api.dev_conf_get == NULL || mc.api.dev_conf_get(port, &conf) != 0 ||
	    !(conf.rxmode.offloads & RTE_ETH_RX_OFFLOAD_TIMESTAMP))
		return;
	off = mc.api.dynfield_lookup ?
		mc.api.dynfield_lookup(RTE_MBUF_DYNFIELD_TIMESTAMP_NAME, &f) : -1;
	bit = mc.api.dynflag_lookup ?
		mc.api.dynflag_lookup(RTE_MBUF_DYNFLAG_RX_TIMESTAMP_NAME, &fl) : -1;
	if (off < 0 || bit < 0 || mc.api.read_clock == NULL ||
	    mc.api.read_clock(port, &c0) != 0) {
		MC_LOG("port %u: rx timestamps enabled but the device clock cannot be read; "
		       "not recorded", port);
		return;
	}
	/* map the device clock to TSC with two readings 20 ms apart */
	t0 = rte_rdtsc();
	nanosleep(&nap, NULL);
	if (mc.api.read_clock(port, &c1) != 0 || c1 <= c0)
		return;
	t1 = rte_rdtsc();
	for (uint16_t q = 0; q < mp->nb_rxq; q++) {
		struct mc_rxq *r = mp->rxq[q];

		if (r == NULL)
			continue;
		r->hw_clk0 = c0;
		r->hw_tsc0 = t0;
		r->hw_ratio = (double)(t1 - t0) / (double)(c1 - c0);
		r->hwts_flag = UINT64_C(1) << bit;
		r->hwts_off = off;
	}
}

static void
hook_port(uint16_t port)
{
	struct rte_eth_fp_ops *p = &mc.api.fp_ops[port];
	struct mc_port *mp = &mc.port[port];
	struct rte_eth_dev_info info;
	const size_t arr = RTE_MAX_QUEUES_PER_PORT * sizeof(void *);

	if (p->rx_pkt_burst == mc_rx_burst || p->tx_pkt_burst == mc_tx_burst)
		return; /* started twice: our functions are still in place */
	if (mc.api.dev_info_get(port, &info) != 0)
		return;
	if (mp->rx_data == NULL) {
		mp->rx_data = alloc_touched(arr);
		mp->tx_data = alloc_touched(arr);
		mp->rxq = alloc_touched(arr);
		mp->txq = alloc_touched(arr);
		if (mp->rx_data == NULL || mp->tx_data == NULL || mp->rxq == NULL ||
		    mp->txq == NULL) {
			MC_LOG("out of memory; port %u not recorded", port);
			return;
		}
	}
	mp->nb_rxq = info.nb_rx_queues;
	mp->nb_txq = info.nb_tx_queues;
	for (uint16_t q = 0; q < mp->nb_rxq; q++)
		if (mp->rxq[q] == NULL && (mp->rxq[q] = new_rxq(port, q)) == NULL)
			return; /* nothing of this start is hooked */
	for (uint16_t q = 0; q < mp->nb_txq; q++)
		if (mp->txq[q] == NULL && (mp->txq[q] = new_txq(port, q)) == NULL)
			return;
	for (uint16_t q = 0; q < RTE_MAX_QUEUES_PER_PORT; q++) {
		struct mc_rxq *r = q < mp->nb_rxq ? mp->rxq[q] : NULL;
		struct mc_txq *t = q < mp->nb_txq ? mp->txq[q] : NULL;

		if (r != NULL) {
			r->real_burst = p->rx_pkt_burst;
			r->real_data = p->rxq.data;
			r->real_count = p->rx_queue_count;
			r->real_desc_status = p->rx_descriptor_status;
			r->qd_every = p->rx_queue_count != NULL ? mc.cfg.qdepth_every : 0;
			r->qd_left = r->qd_every;
		}
		if (t != NULL) {
			t->real_burst = p->tx_pkt_burst;
			t->real_data = p->txq.data;
			t->real_prep = p->tx_pkt_prepare;
			t->real_desc_status = p->tx_descriptor_status;
		}
		mp->rx_data[q] = r != NULL ? (void *)r : (void *)&dead_rxq;
		mp->tx_data[q] = t != NULL ? (void *)t : (void *)&dead_txq;
	}
	setup_hwts(port, mp);
	/*
	 * Swap. DPDK itself rewrites this table non-atomically at start, so the
	 * NF does not poll the port meanwhile; the barrier orders our contexts
	 * before the pointers that lead to them.
	 */
	__atomic_thread_fence(__ATOMIC_RELEASE);
	if (p->rx_queue_count != NULL)
		p->rx_queue_count = mc_rx_queue_count;
	if (p->rx_descriptor_status != NULL)
		p->rx_descriptor_status = mc_rx_desc_status;
	if (p->tx_pkt_prepare != NULL)
		p->tx_pkt_prepare = mc_tx_prepare;
	if (p->tx_descriptor_status != NULL)
		p->tx_descriptor_status = mc_tx_desc_status;
	p->rxq.data = mp->rx_data;
	p->txq.data = mp->tx_data;
	p->rx_pkt_burst = mc_rx_burst;
	p->tx_pkt_burst = mc_tx_burst;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	mp->hooked = true;
	mp->started = true;
}

/* ---------------------------------------------------------------- interposed */

EXPORT int
rte_eth_dev_start(uint16_t port_id)
{
	int rc;

	if (real_dev_start == NULL)
		return -ENOTSUP;
	rc = real_dev_start(port_id);
	if (rc != 0 || !mc.active || port_id >= RTE_MAX_ETHPORTS)
		return rc;
	pthread_mutex_lock(&mc.lock);
	if (mc.active && !mc.finalised) {
		if (setup_once())
			hook_port(port_id);
		else
			mc.active = false;
	}
	pthread_mutex_unlock(&mc.lock);
	return rc;
}

/*
 * Packets the NF freed without sending are noticed when their mbufs are
 * received again (datapath.c). Those still in a per-lcore cache of the pool
 * when the last port stops (certainly free: the NF freed them; typically the
 * last bursts of a dropping NF) would be missed: publish them now, through
 * their rx queue's ring (its lcore no longer polls it: the port is stopped,
 * so this thread may produce), and clear their links so that a restart does
 * not count them again. Mbufs elsewhere in the pool are left alone: freed
 * into its common store, or still held by the NF, we cannot tell. Called
 * under mc.lock.
 */
static void
freed_in_caches(void)
{
	static struct rte_mbuf *objs[8192];
	static uint64_t links[8192];
	struct rte_mempool *pools[64];
	const uint64_t tsc = rte_rdtsc();
	unsigned n = 0, np = 0;

	/* the pools the rx queues' mbufs came from (seen by the data path) */
	for (unsigned r = 0; r < mc.nb_rxqs; r++) {
		struct rte_mempool *mp = mc.rxqs[r]->pool;
		unsigned i;

		if (mp == NULL || mp->elt_size < sizeof(struct rte_mbuf) ||
		    mp->private_data_size < sizeof(struct rte_pktmbuf_pool_private))
			continue;
		for (i = 0; i < np && pools[i] != mp; i++)
			;
		if (i == np && np < RTE_DIM(pools))
			pools[np++] = mp;
	}
	for (unsigned p = 0; p < np; p++) {
		struct rte_mempool *mp = pools[p];

		if (mp->cache_size == 0 || mp->local_cache == NULL)
			continue;
		for (unsigned l = 0; l < RTE_MAX_LCORE; l++) {
			const struct rte_mempool_cache *c = &mp->local_cache[l];

			for (unsigned i = 0; i < c->len && i < RTE_DIM(c->objs) && n < RTE_DIM(objs);
			     i++) {
				struct rte_mbuf *m = c->objs[i];
				const uint64_t link = *RTE_MBUF_DYNFIELD(m, mc.link_off, uint64_t *);

				if (m->pool == mp && link != 0 && (link >> 48) <= mc.nb_rxqs) {
					objs[n] = m;
					links[n++] = link;
				}
			}
		}
	}
	for (unsigned r = 0; r < mc.nb_rxqs && n != 0; r++) {
		struct mc_ring *ring = &mc.rxqs[r]->ring;
		uint64_t k = 0, at;

		for (unsigned i = 0; i < n; i++)
			k += links[i] >> 48 == r + 1;
		if (k == 0)
			continue;
		if (ring->head + 2 + k - __atomic_load_n(&ring->cons, __ATOMIC_ACQUIRE) >
		    ring->mask + 1) {
			__atomic_store_n(&ring->lost_records, ring->lost_records + 1,
					 __ATOMIC_RELAXED);
			continue;
		}
		__atomic_store_n(&ring->hold, tsc, __ATOMIC_RELEASE);
		at = ring->head + 2;
		for (unsigned i = 0; i < n; i++)
			if (links[i] >> 48 == r + 1)
				ring->slots[at++ & ring->mask] = links[i];
		ring->slots[ring->head & ring->mask] = mc_hdr(MC_E_FREED, 0, (unsigned)k, 1);
		ring->slots[(ring->head + 1) & ring->mask] = tsc;
		ring->head += 2 + k;
		__atomic_store_n(&ring->tail, ring->head, __ATOMIC_RELEASE);
		__atomic_store_n(&ring->hold, 0, __ATOMIC_RELEASE);
	}
	for (unsigned i = 0; i < n; i++)
		if (links[i] >> 48 != 0)
			*RTE_MBUF_DYNFIELD(objs[i], mc.link_off, uint64_t *) = 0;
}

static void
port_going(uint16_t port_id)
{
	bool any = false;

	if (!mc.active || port_id >= RTE_MAX_ETHPORTS)
		return;
	pthread_mutex_lock(&mc.lock);
	if (mc.port[port_id].started) {
		mc.port[port_id].started = false;
		for (unsigned p = 0; p < RTE_MAX_ETHPORTS; p++)
			any |= mc.port[p].started;
		if (!any && mc.link_off >= 0)
			freed_in_caches();
	}
	pthread_mutex_unlock(&mc.lock);
}

EXPORT int
rte_eth_dev_stop(uint16_t port_id)
{
	if (real_dev_stop == NULL)
		return -ENOTSUP;
	port_going(port_id);
	return real_dev_stop(port_id);
}

EXPORT int
rte_eth_dev_close(uint16_t port_id)
{
	if (real_dev_close == NULL)
		return -ENOTSUP;
	port_going(port_id);
	return real_dev_close(port_id);
}

/* Final drain and close of every trace file; idempotent. */
static void
finalise(void)
{
	pthread_mutex_lock(&mc.lock);
	mc.finalised = true;
	pthread_mutex_unlock(&mc.lock);
	mc_writer_stop();
}

EXPORT int
rte_eal_cleanup(void)
{
	finalise();
	return real_eal_cleanup != NULL ? real_eal_cleanup() : 0;
}

__attribute__((destructor)) static void
mc_fini(void)
{
	finalise();
}

/* ---------------------------------------------------------------- signals */

/*
 * SIGINT and SIGTERM: our handler asks the writer to write out everything
 * so far, then runs what the NF installed (or the default action). The NF
 * may install its handler before or after us; signal() and sigaction() are
 * interposed so it lands in nf_act while ours stays in place.
 */
static struct sigaction nf_act[2];
static volatile int sig_hooked;

static int
sig_slot(int sig)
{
	return sig == SIGINT ? 0 : sig == SIGTERM ? 1 : -1;
}

static void
on_signal(int sig, siginfo_t *si, void *uc)
{
	const int saved = errno;
	const int s = sig_slot(sig);
	struct sigaction a;

	mc_writer_flush_wait(1000);
	a = nf_act[s];
	if (a.sa_flags & SA_RESETHAND) {
		memset(&nf_act[s], 0, sizeof(nf_act[s]));
		nf_act[s].sa_handler = SIG_DFL;
	}
	if (a.sa_flags & SA_SIGINFO) {
		if (a.sa_sigaction != NULL)
			a.sa_sigaction(sig, si, uc);
	} else if (a.sa_handler == SIG_DFL) {
		struct sigaction dfl;

		/* finish the trace files, then die of the signal as the NF would have */
		memset(&dfl, 0, sizeof(dfl));
		dfl.sa_handler = SIG_DFL;
		real_sigaction(sig, &dfl, NULL);
		raise(sig);
	} else if (a.sa_handler != SIG_IGN) {
		a.sa_handler(sig);
	}
	errno = saved;
}

static int
install_ours(int sig)
{
	const int s = sig_slot(sig);
	struct sigaction ours;

	if (!(nf_act[s].sa_flags & SA_SIGINFO) && nf_act[s].sa_handler == SIG_IGN)
		return real_sigaction(sig, &nf_act[s], NULL);
	memset(&ours, 0, sizeof(ours));
	ours.sa_sigaction = on_signal;
	ours.sa_mask = nf_act[s].sa_mask;
	ours.sa_flags = SA_SIGINFO | (nf_act[s].sa_flags & (SA_RESTART | SA_ONSTACK | SA_NODEFER));
	return real_sigaction(sig, &ours, NULL);
}

/*
 * SIGUSR2 asks for a keep (flight recorder), but only in an NF that has no
 * use for it: installed if its action is the default, and given up the
 * moment the NF installs its own.
 */
static volatile int usr2_ours;

static void
on_usr2(int sig)
{
	__atomic_store_n(&mc.keep_sig, 1, __ATOMIC_RELEASE);
}

static void
install_usr2(void)
{
	struct sigaction cur, ours;

	if (real_sigaction(SIGUSR2, NULL, &cur) != 0 || (cur.sa_flags & SA_SIGINFO) ||
	    cur.sa_handler != SIG_DFL)
		return;
	memset(&ours, 0, sizeof(ours));
	ours.sa_handler = on_usr2;
	ours.sa_flags = SA_RESTART;
	sigemptyset(&ours.sa_mask);
	if (real_sigaction(SIGUSR2, &ours, NULL) == 0)
		usr2_ours = 1;
}

static void
install_signal_hooks(void)
{
	static const int sigs[] = { SIGINT, SIGTERM };

	if (real_sigaction == NULL)
		return;
	install_usr2();
	for (unsigned i = 0; i < RTE_DIM(sigs); i++)
		if (real_sigaction(sigs[i], NULL, &nf_act[i]) != 0 || install_ours(sigs[i]) != 0)
			return;
	sig_hooked = 1;
}

EXPORT int
sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
	const int s = sig_slot(sig);
	struct sigaction prev;

	if (real_sigaction == NULL) {
		real_sigaction = dlsym(RTLD_NEXT, "sigaction");
		if (real_sigaction == NULL) {
			errno = ENOSYS;
			return -1;
		}
	}
	if (sig == SIGUSR2 && usr2_ours) {
		/* the NF's own handler wins; it sees the default it had before us */
		if (act != NULL) {
			if (real_sigaction(sig, act, NULL) != 0)
				return -1;
			usr2_ours = 0;
		}
		if (old != NULL) {
			memset(old, 0, sizeof(*old));
			old->sa_handler = SIG_DFL;
		}
		return 0;
	}
	if (!sig_hooked || s < 0)
		return real_sigaction(sig, act, old);
	prev = nf_act[s];
	if (act != NULL) {
		nf_act[s] = *act;
		if (install_ours(sig) != 0) {
			nf_act[s] = prev;
			return -1;
		}
	}
	if (old != NULL)
		*old = prev;
	return 0;
}

EXPORT sighandler_t
signal(int sig, sighandler_t handler)
{
	struct sigaction a, old;

	if (real_signal == NULL)
		real_signal = dlsym(RTLD_NEXT, "signal");
	if ((!sig_hooked || sig_slot(sig) < 0) && !(sig == SIGUSR2 && usr2_ours))
		return real_signal != NULL ? real_signal(sig, handler) : SIG_ERR;
	/* BSD semantics, as glibc's signal() */
	memset(&a, 0, sizeof(a));
	a.sa_handler = handler;
	a.sa_flags = SA_RESTART;
	sigemptyset(&a.sa_mask);
	if (sigaction(sig, &a, &old) != 0)
		return SIG_ERR;
	return (old.sa_flags & SA_SIGINFO) ? (sighandler_t)(void *)old.sa_sigaction :
					     old.sa_handler;
}
