/* SPDX-License-Identifier: BSD-3-Clause */
/* The NetMedic-style baseline on hand-built traces with an obvious anomaly:
 * source -> A -> B, 100 ms at 0.1 Mpps, single-server FIFO NFs. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eval.h"
#include "mscope_trace.h"

#define T0 1000000000ULL
#define NPKT 10000
#define GAP 10000 /* ns between packets */

static struct mscope_trace_writer *
open_node(const char *dir, const char *name, int source)
{
	struct mscope_trace_header h;
	struct mscope_trace_error err;
	struct mscope_trace_writer *w;
	struct mscope_flow_key k;
	char path[512];

	memset(&h, 0, sizeof(h));
	h.role = source ? MSCOPE_ROLE_SOURCE : MSCOPE_ROLE_RXQ;
	h.tsc_hz = 1000000000ULL;
	h.anchor_tsc = T0;
	snprintf(h.nf_name, sizeof(h.nf_name), "%s", name);
	snprintf(h.writer, sizeof(h.writer), "test-netmedic");
	snprintf(path, sizeof(path), "%s/%s.mst", dir, name);
	w = mscope_writer_open(path, &h, NULL, &err);
	cr_assert_not_null(w, "%s: %s", path, err.text);
	memset(&k, 0, sizeof(k));
	k.family = 4;
	k.proto = 17;
	k.sport = 1000;
	k.dport = 53;
	cr_assert_eq(mscope_writer_flow(w, 0, &k), 0);
	return w;
}

/* One FIFO NF: service `svc` ns per packet, `slow_svc` inside [s0, s1),
 * no service at all inside [stall0, stall1). Returns departure times. */
static void
nf_run(struct mscope_trace_writer *w, const uint64_t *arr, uint64_t *dep, uint64_t svc,
		uint64_t stall0, uint64_t stall1, uint64_t slow0, uint64_t slow1, uint64_t slow_svc)
{
	uint64_t busy = 0;
	uint32_t flow = 0;

	for (uint32_t k = 0; k < NPKT; k++) {
		uint64_t d = arr[k] > busy ? arr[k] : busy;
		uint32_t wire = k + 1;
		uint64_t seq = k;

		if (d >= stall0 && d < stall1)
			d = stall1;
		dep[k] = d + (d >= slow0 && d < slow1 ? slow_svc : svc);
		busy = dep[k];
		cr_assert_eq(mscope_writer_rx(w, &(struct mscope_rx_burst){
			.tsc = d, .n = 1, .qdepth = -1, .wire_id = &wire, .flow = &flow }), 0);
		cr_assert_eq(mscope_writer_tx(w, &(struct mscope_tx_burst){
			.tsc = dep[k], .offered = 1, .accepted = 1, .wire_id = &wire,
			.rx_seq = &seq, .flow = &flow }), 0);
	}
}

static void
build(const char *dir, int stall_a, int slow_b)
{
	static uint64_t src[NPKT], a[NPKT], b[NPKT];
	struct mscope_trace_writer *w = open_node(dir, "source", 1);
	uint32_t flow = 0;

	for (uint32_t k = 0; k < NPKT; k++) {
		uint32_t wire = k + 1;
		uint64_t seq = MSCOPE_NO_LINK;

		/* a little jitter so that history has a spread */
		src[k] = T0 + (uint64_t)k * GAP + (k * 7919u % 13) * 100;
		cr_assert_eq(mscope_writer_tx(w, &(struct mscope_tx_burst){
			.tsc = src[k], .offered = 1, .accepted = 1, .wire_id = &wire,
			.rx_seq = &seq, .flow = &flow }), 0);
	}
	cr_assert_eq(mscope_writer_close(w), 0);
	w = open_node(dir, "A", 0);
	nf_run(w, src, a, 2000, stall_a ? T0 + 50000000 : 0, stall_a ? T0 + 51500000 : 0, 0, 0, 0);
	cr_assert_eq(mscope_writer_close(w), 0);
	w = open_node(dir, "B", 0);
	nf_run(w, a, b, 1000, 0, 0, slow_b ? T0 + 70000000 : 0, slow_b ? T0 + 73000000 : 0, 15000);
	cr_assert_eq(mscope_writer_close(w), 0);
}

static char dir[256];

static void
setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/mscope-test-nm-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void
teardown(void)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

static int
diagnose(double win, double from, double to, struct ev_culprit *out, size_t max)
{
	char err[256] = "";
	struct nm_model *m = nm_load(dir, T0, err, sizeof(err));
	double ex[2] = { from, to };
	int n;

	cr_assert_not_null(m, "%s", err);
	cr_assert_eq(nm_components(m), 3);
	cr_assert(nm_duration_us(m) > 99000 && nm_duration_us(m) < 101000, "%f",
		nm_duration_us(m));
	n = nm_diagnose(m, win, ex, 1, from, to, out, max, err, sizeof(err));
	cr_assert(n >= 0, "%s", err);
	nm_free(m);
	return n;
}

Test(netmedic, stall_upstream, .init = setup, .fini = teardown)
{
	struct ev_culprit c[8];
	int n;

	build(dir, 1, 0);
	for (int w = 0; w < 2; w++) {
		n = diagnose(w ? 10000 : 1000, 50000, 53000, c, 8);
		cr_assert(n >= 1);
		cr_assert_str_eq(c[0].nf, "A", "window %d: top is %s", w, c[0].nf);
		cr_assert_eq(c[0].kind, EV_KIND_PROCESSING);
	}
}

/* End-to-end latency followed hop by hop: 2 us at A + 1 us at B normally;
 * the 1.5 ms stall at A shows only when its window is not excluded. */
Test(netmedic, latency_quantile, .init = setup, .fini = teardown)
{
	char err[256] = "";
	struct nm_model *m;
	double ex[2] = { 49000, 53000 }, med, max, all;

	build(dir, 1, 0);
	m = nm_load(dir, T0, err, sizeof(err));
	cr_assert_not_null(m, "%s", err);
	med = nm_latency_quantile(m, ex, 1, 0.5);
	max = nm_latency_quantile(m, ex, 1, 1.0);
	all = nm_latency_quantile(m, NULL, 0, 1.0);
	cr_assert(med > 2.9 && med < 3.1, "median %f", med);
	cr_assert(max < 3.1, "max outside the stall %f", max);
	cr_assert(all > 1400 && all < 1600, "max with the stall %f", all);
	nm_free(m);
}

Test(netmedic, slow_downstream, .init = setup, .fini = teardown)
{
	struct ev_culprit c[8];
	int n;

	build(dir, 0, 1);
	n = diagnose(1000, 70000, 74000, c, 8);
	cr_assert(n >= 1);
	cr_assert_str_eq(c[0].nf, "B", "top is %s", c[0].nf);
}

Test(netmedic, bad_input)
{
	char err[256] = "";
	char d[] = "/tmp/mscope-test-nm-empty-XXXXXX";

	cr_assert_null(nm_load("/nonexistent/dir", 0, err, sizeof(err)));
	cr_assert(strstr(err, "/nonexistent/dir"), "%s", err);
	cr_assert_not_null(mkdtemp(d));
	cr_assert_null(nm_load(d, 0, err, sizeof(err)));
	cr_assert(strstr(err, "no trace files"), "%s", err);
	rmdir(d);
}
