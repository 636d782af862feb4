/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The collector's data-path cost in isolation: mc_rx_burst + mc_tx_burst on
 * 32 hot 64-byte packets with a driver that does nothing and a ring that is
 * emptied for free. This is what the NF's own core pays per packet,
 * without cross-core or scheduling effects of a shared machine (used by
 * tools/bench-collector).
 *
 *   dp_bench [BURSTS [RING_SLOTS [FLOWS]]]
 *
 * RING_SLOTS: a power of 2. FLOWS 0 (default): non-IP frames (one catch-all
 * flow); FLOWS > 0: IPv4/UDP frames of FLOWS flows in turn (the flow cache's
 * hits, misses and copies; the source port is rewritten every burst, in the
 * subtracted driver-only loop too).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "collector_priv.h"

struct mc_state mc;

static struct rte_mbuf mb[32];
static uint8_t buf[32][2048];
static struct rte_mbuf *pk[32];
static void *qd[1];

static uint16_t
fake_rx(void *q, struct rte_mbuf **p, uint16_t n)
{
	memcpy(p, pk, sizeof(pk));
	return 32;
}

static uint16_t
fake_tx(void *q, struct rte_mbuf **p, uint16_t n)
{
	return n;
}

static double
cpu_seconds(void)
{
	struct timespec t;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* The next 32 flows in turn: source port and IP ID (every packet differs). */
static unsigned
set_flows(unsigned next, unsigned flows)
{
	for (int i = 0; i < 32; i++) {
		buf[i][34] = (uint8_t)(next >> 8);
		buf[i][35] = (uint8_t)next;
		buf[i][18]++;
		next = next + 1 == flows ? 0 : next + 1;
	}
	return next;
}

int
main(int argc, char **argv)
{
	const long bursts = argc > 1 ? atol(argv[1]) : 300000;
	const uint64_t ring = argc > 2 ? strtoull(argv[2], NULL, 0) : MC_DEFAULT_BUFFER;
	const unsigned flows = argc > 3 ? (unsigned)atoi(argv[3]) : 0;
	unsigned next = 0;
	struct mc_rxq *r = aligned_alloc(64, sizeof(*r));
	struct mc_txq *t = aligned_alloc(64, sizeof(*t));
	struct rte_mbuf *got[32];
	double t0, t1, base;

	memset(r, 0, sizeof(*r));
	memset(t, 0, sizeof(*t));
	mc.link_off = 96;
	for (int i = 0; i < 32; i++) {
		for (int j = 0; j < 64; j++)
			buf[i][j] = (uint8_t)(i * 31 + j);
		if (flows != 0) {
			/* Ethernet + IPv4 (IHL 5) + UDP, 10.0.0.1 -> 10.0.0.2:53 */
			static const uint8_t hdr[38] = {
				2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00,
				0x45, 0, 0, 50, 0, 1, 0, 0, 64, 17, 0, 0,
				10, 0, 0, 1, 10, 0, 0, 2, 0, 0, 0, 53,
			};

			memcpy(buf[i], hdr, sizeof(hdr));
		}
		mb[i].buf_addr = buf[i];
		mb[i].buf_len = sizeof(buf[i]);
		mb[i].data_len = mb[i].pkt_len = 64;
		pk[i] = &mb[i];
	}
	r->real_burst = fake_rx;
	r->real_data = qd;
	r->hwts_off = -1;
	r->ring.mask = ring - 1;
	r->ring.slots = calloc(ring, 8);
	t->real_burst = fake_tx;
	t->real_data = qd;
	t->ring.mask = ring - 1;
	t->ring.slots = calloc(ring, 8);
	if (r->ring.slots == NULL || t->ring.slots == NULL)
		return 1;
	/* fault the rings in, as the collector does when a port starts */
	memset(r->ring.slots, 0, ring * 8);
	memset(t->ring.slots, 0, ring * 8);
	/* the same loop through the drivers alone, to subtract */
	t0 = cpu_seconds();
	for (long k = 0; k < bursts; k++) {
		if (flows != 0)
			next = set_flows(next, flows);
		fake_rx(NULL, got, 32);
		fake_tx(NULL, got, 32);
		__asm__ volatile("" ::: "memory");
	}
	base = cpu_seconds() - t0;
	t0 = cpu_seconds();
	next = 0;
	for (long k = 0; k < bursts; k++) {
		if (flows != 0)
			next = set_flows(next, flows);
		mc_rx_burst(r, got, 32);
		mc_tx_burst(t, got, 32);
		r->ring.cons = r->ring.tail;
		t->ring.cons = t->ring.tail;
	}
	t1 = cpu_seconds();
	if (flows == 0)
		printf("collector data path (isolated, rx + tx, 64-byte non-IP packets): %.1f ns/packet\n",
		       ((t1 - t0) - base) / (double)bursts / 32 * 1e9);
	else
		printf("collector data path (isolated, rx + tx, 64-byte IPv4/UDP packets, %u flows): "
		       "%.1f ns/packet\n", flows, ((t1 - t0) - base) / (double)bursts / 32 * 1e9);
	return 0;
}
