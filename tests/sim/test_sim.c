/* SPDX-License-Identifier: BSD-3-Clause */
/* Simulator quality tests: determinism, queueing theory (M/D/1 waits,
 * interrupt backlog and drain, drops exactly at capacity), NAT/VPN rewriting
 * with intact rx->tx links, victims, and scenario validation. The traces are
 * read back with the trace reader, as the analyzer reads them. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "mscope_sim.h"
#include "mscope_trace.h"

#define T0 MSCOPE_SIM_START_TSC

static struct mscope_sim_scenario *
load_str(const char *text)
{
	json_error_t je;
	char err[512];
	json_t *root = json_loads(text, 0, &je);

	cr_assert_not_null(root, "test scenario JSON: %s", je.text);
	struct mscope_sim_scenario *s = mscope_sim_load_json(root, "test", NULL, err, sizeof(err));
	json_decref(root);
	cr_assert_not_null(s, "load: %s", err);
	return s;
}

/* The load error of a scenario that must be refused. */
static const char *
load_err(const char *text)
{
	static char err[512];
	json_error_t je;
	json_t *root = json_loads(text, 0, &je);

	cr_assert_not_null(root, "test scenario JSON: %s", je.text);
	struct mscope_sim_scenario *s = mscope_sim_load_json(root, "bad", NULL, err, sizeof(err));
	json_decref(root);
	cr_assert_null(s, "scenario accepted but should not be: %s", text);
	mscope_sim_free(s);
	return err;
}

static void
rm_rf(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char p[4096];

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		unlink(p);
	}
	closedir(d);
	rmdir(dir);
}

static char *
run_to_tmp(const struct mscope_sim_scenario *s, const struct mscope_sim_opts *o,
		struct mscope_sim_stats *st)
{
	char *dir = strdup("/tmp/mscope-sim-test-XXXXXX");
	char err[512];

	cr_assert_not_null(mkdtemp(dir));
	int rc = mscope_sim_run(s, o, dir, st, err, sizeof(err));
	cr_assert_eq(rc, 0, "run: %s", err);
	return dir;
}

typedef void rec_fn(void *arg, const struct mscope_record *r);

static void
read_all(const char *dir, const char *node, rec_fn *fn, void *arg)
{
	char p[4096];
	struct mscope_trace_error te;
	struct mscope_record rec;
	int rc;

	snprintf(p, sizeof(p), "%s/%s.mst", dir, node);
	struct mscope_trace_reader *r = mscope_reader_open(p, &te);
	cr_assert_not_null(r, "%s: %s", p, te.text);
	while ((rc = mscope_reader_next(r, &rec, &te)) == 1)
		fn(arg, &rec);
	cr_assert_eq(rc, 0, "%s: offset %llu: %s", p, (unsigned long long)te.offset, te.text);
	mscope_reader_close(r);
}

static unsigned char *
slurp(const char *file, size_t *len)
{
	FILE *f = fopen(file, "rb");
	cr_assert_not_null(f, "%s", file);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	unsigned char *b = malloc((size_t)n + 1);
	cr_assert_eq(fread(b, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return b;
}

/* -------------------------------------------------------------- determinism */

static const char *chain4 =
	"{\"seed\": 7, \"duration_ms\": 15,"
	" \"nfs\": [{\"name\": \"nat1\", \"type\": \"nat\", \"rate_mpps\": 1.2},"
	"          {\"name\": \"fw1\", \"type\": \"firewall\", \"rate_mpps\": 1.0},"
	"          {\"name\": \"mon1\", \"type\": \"monitor\"},"
	"          {\"name\": \"vpn1\", \"type\": \"vpn\", \"rate_mpps\": 1.0}],"
	" \"links\": [{\"from\": \"source\", \"to\": \"nat1\"}, {\"from\": \"nat1\", \"to\": \"fw1\"},"
	"   {\"from\": \"fw1\", \"to\": \"mon1\", \"match\": {\"proto\": \"tcp\", \"dport\": 80}},"
	"   {\"from\": \"fw1\", \"to\": \"vpn1\"}, {\"from\": \"mon1\", \"to\": \"vpn1\"}],"
	" \"traffic\": {\"synthetic\": {\"flows\": 500, \"rate_mpps\": 0.7}},"
	" \"faults\": ["
	"  {\"kind\": \"burst\", \"flow\": {\"src\": \"10.0.0.1\", \"dst\": \"10.1.0.1\","
	"     \"sport\": 1234, \"dport\": 80, \"proto\": \"udp\"},"
	"   \"at_us\": 2000, \"duration_us\": 300, \"rate_mpps\": 3.0},"
	"  {\"kind\": \"interrupt\", \"nf\": \"nat1\", \"at_us\": 5000, \"duration_us\": 500},"
	"  {\"kind\": \"bug\", \"nf\": \"fw1\", \"match\": {\"proto\": \"udp\", \"dport\": 53},"
	"   \"slowdown\": 5, \"at_us\": 8000, \"duration_us\": 2000},"
	"  {\"kind\": \"slow\", \"nf\": \"vpn1\", \"factor\": 0.5, \"at_us\": 11000,"
	"   \"duration_us\": 1500}]}";

Test(sim, deterministic_bytes)
{
	struct mscope_sim_scenario *s = load_str(chain4);
	struct mscope_sim_stats st1, st2;
	struct mscope_sim_opts one = MSCOPE_SIM_OPTS_DEFAULT;
	one.threads = 1;                /* victim re-runs in turn vs. in parallel */
	char *a = run_to_tmp(s, NULL, &st1);
	char *b = run_to_tmp(s, &one, &st2);
	static const char *files[] = { "source.mst", "nat1.mst", "fw1.mst", "mon1.mst",
		"vpn1.mst", "truth.json", "topology.json", "victims.jsonl" };

	cr_assert_gt(st1.packets, 10000);
	cr_assert_gt(st1.victims, 0);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char pa[4096], pb[4096];
		size_t la, lb;
		snprintf(pa, sizeof(pa), "%s/%s", a, files[i]);
		snprintf(pb, sizeof(pb), "%s/%s", b, files[i]);
		unsigned char *x = slurp(pa, &la), *y = slurp(pb, &lb);
		cr_assert_gt(la, 0, "%s is empty", files[i]);
		cr_assert(la == lb && !memcmp(x, y, la), "%s differs between two runs", files[i]);
		free(x);
		free(y);
	}
	/* Another seed: other traffic. */
	struct mscope_sim_opts o = MSCOPE_SIM_OPTS_DEFAULT;
	o.override_seed = 1;
	o.seed = 8;
	o.no_victims = 1;
	char *c = run_to_tmp(s, &o, NULL);
	char pa[4096], pc[4096];
	size_t la, lc;
	snprintf(pa, sizeof(pa), "%s/source.mst", a);
	snprintf(pc, sizeof(pc), "%s/source.mst", c);
	unsigned char *x = slurp(pa, &la), *z = slurp(pc, &lc);
	cr_assert(la != lc || memcmp(x, z, la), "seed did not change the traffic");
	free(x);
	free(z);
	rm_rf(a);
	rm_rf(b);
	rm_rf(c);
	free(a);
	free(b);
	free(c);
	mscope_sim_free(s);
}

/* ------------------------------------------------------------------- M/D/1 */

struct arrivals {
	/* wire ID -> arrival tsc, open addressing (synthetic IDs are distinct enough) */
	uint32_t *key;
	uint64_t *val;
	size_t mask;
};

/* A wire ID seen twice (32-bit IDs do collide in 10^5 packets) maps to 1: ambiguous. */
static void
arr_put(struct arrivals *a, uint32_t k, uint64_t v)
{
	size_t i = (k * 2654435761u) & a->mask;
	while (a->val[i]) {
		if (a->key[i] == k) {
			a->val[i] = 1;
			return;
		}
		i = (i + 1) & a->mask;
	}
	a->key[i] = k;
	a->val[i] = v;
}

static uint64_t
arr_get(const struct arrivals *a, uint32_t k)
{
	size_t i = (k * 2654435761u) & a->mask;
	while (a->val[i]) {
		if (a->key[i] == k)
			return a->val[i];
		i = (i + 1) & a->mask;
	}
	return 0;
}

static void
on_source(void *arg, const struct mscope_record *r)
{
	struct arrivals *a = arg;
	if (r->type == MSCOPE_REC_TX)
		for (uint32_t i = 0; i < r->u.tx.accepted; i++)
			arr_put(a, r->u.tx.wire_id[i], r->u.tx.tsc);
}

struct waits {
	const struct arrivals *a;
	double service_ns;
	double sum;
	uint64_t n, missing;
};

static void
on_rx_wait(void *arg, const struct mscope_record *r)
{
	struct waits *w = arg;
	if (r->type != MSCOPE_REC_RX)
		return;
	for (uint32_t i = 0; i < r->u.rx.n; i++) {
		uint64_t a = arr_get(w->a, r->u.rx.wire_id[i]);
		if (a == 0) {
			w->missing++;
			continue;
		}
		if (a == 1)
			continue;
		/* service of packet i of a burst starts after the i before it */
		double start = (double)r->u.rx.tsc + i * w->service_ns;
		w->sum += start - (double)a;
		w->n++;
	}
}

static double
md1_mean_wait(double rho, uint64_t seed)
{
	char text[1024];
	snprintf(text, sizeof(text),
		"{\"seed\": %llu, \"duration_ms\": 200, \"poll_ns\": 0, \"jitter\": 0,"
		" \"nfs\": [{\"name\": \"q\", \"type\": \"x\", \"rate_mpps\": 1.0, \"queue\": 100000}],"
		" \"links\": [{\"from\": \"source\", \"to\": \"q\"}],"
		" \"traffic\": {\"synthetic\": {\"flows\": 1000, \"rate_mpps\": %g, \"size\": 64}}}",
		(unsigned long long)seed, rho);
	struct mscope_sim_scenario *s = load_str(text);
	struct mscope_sim_opts o = MSCOPE_SIM_OPTS_DEFAULT;
	o.no_victims = 1;
	char *dir = run_to_tmp(s, &o, NULL);
	struct arrivals a = { calloc(1 << 20, 4), calloc(1 << 20, 8), (1 << 20) - 1 };
	read_all(dir, "source", on_source, &a);
	struct waits w = { &a, 1000.0, 0, 0, 0 };
	read_all(dir, "q", on_rx_wait, &w);
	cr_assert_eq(w.missing, 0, "%llu dequeued packets with no source record",
		(unsigned long long)w.missing);
	cr_assert_gt(w.n, rho * 190000);
	free(a.key);
	free(a.val);
	rm_rf(dir);
	free(dir);
	mscope_sim_free(s);
	return w.sum / (double)w.n;
}

Test(sim, md1_mean_wait, .timeout = 60)
{
	static const double rhos[] = { 0.2, 0.4 };
	for (size_t k = 0; k < 2; k++) {
		double rho = rhos[k], mu = 1e6;
		double expect_ns = rho / (2 * mu * (1 - rho)) * 1e9;
		double sum = 0;
		for (uint64_t seed = 1; seed <= 3; seed++)
			sum += md1_mean_wait(rho, seed);
		double got = sum / 3;
		cr_log_info("rho %.1f: mean wait %.1f ns, M/D/1 %.1f ns", rho, got, expect_ns);
		cr_assert(fabs(got - expect_ns) / expect_ns < 0.05,
			"rho %.1f: mean wait %.1f ns, M/D/1 says %.1f ns", rho, got, expect_ns);
	}
}

/* -------------------------------------------------- interrupt backlog, drops */

struct qtrace {
	uint64_t intr_end;
	int64_t backlog;         /* qdepth + n at the first poll after the interrupt */
	uint64_t drained_at;     /* first poll after it that leaves the queue empty */
	int32_t max_qdepth;
	uint64_t drops, drop_first, drop_last;
	uint64_t rx;
};

static void
on_q(void *arg, const struct mscope_record *r)
{
	struct qtrace *q = arg;
	if (r->type == MSCOPE_REC_RX) {
		q->rx += r->u.rx.n;
		if (r->u.rx.qdepth > q->max_qdepth)
			q->max_qdepth = r->u.rx.qdepth;
		if (r->u.rx.tsc >= q->intr_end && q->backlog < 0)
			q->backlog = r->u.rx.qdepth + (int64_t)r->u.rx.n;
		else if (q->backlog >= 0 && !q->drained_at && r->u.rx.qdepth == 0)
			q->drained_at = r->u.rx.tsc;
	} else if (r->type == MSCOPE_REC_DROP) {
		cr_assert_eq(r->u.drop.reason, MSCOPE_DROP_QUEUE_FULL);
		if (!q->drops)
			q->drop_first = r->u.drop.tsc;
		q->drop_last = r->u.drop.tsc;
		q->drops += r->u.drop.n;
	}
}

static struct qtrace
interrupt_run(unsigned queue, double rate_in, double mu, double d_us)
{
	char text[1024];
	double at_us = 5000;
	snprintf(text, sizeof(text),
		"{\"seed\": 3, \"duration_ms\": 12, \"jitter\": 0,"
		" \"nfs\": [{\"name\": \"q\", \"type\": \"x\", \"rate_mpps\": %g, \"queue\": %u}],"
		" \"links\": [{\"from\": \"source\", \"to\": \"q\"}],"
		" \"traffic\": {\"synthetic\": {\"flows\": 100, \"rate_mpps\": %g, \"arrival\": \"cbr\"}},"
		" \"faults\": [{\"kind\": \"interrupt\", \"nf\": \"q\", \"at_us\": %g,"
		"   \"duration_us\": %g}]}", mu, queue, rate_in, at_us, d_us);
	struct mscope_sim_scenario *s = load_str(text);
	struct mscope_sim_stats st;
	char *dir = run_to_tmp(s, NULL, &st);
	struct qtrace q = { .intr_end = T0 + (uint64_t)((at_us + d_us) * 1000), .backlog = -1 };
	read_all(dir, "q", on_q, &q);
	cr_assert_eq(q.rx + q.drops, st.packets);
	rm_rf(dir);
	free(dir);
	mscope_sim_free(s);
	return q;
}

Test(sim, interrupt_backlog_and_drain)
{
	double R = 1.0, mu = 2.0, D = 1000;             /* Mpps, Mpps, us */
	struct qtrace q = interrupt_run(4096, R, mu, D);
	double expect = R * D;                            /* packets */
	cr_assert_eq(q.drops, 0);
	cr_assert(fabs((double)q.backlog - expect) <= 0.02 * expect + 2,
		"backlog %lld after a %g us interrupt at %g Mpps, expected ~%g",
		(long long)q.backlog, D, R, expect);
	cr_assert_gt(q.drained_at, 0, "queue never drained");
	double drain_us = (double)(q.drained_at - q.intr_end) / 1000.0;
	double expect_us = expect / (mu - R);
	cr_log_info("backlog %lld (expected %g), drained in %.1f us (expected %.1f)",
		(long long)q.backlog, expect, drain_us, expect_us);
	cr_assert(fabs(drain_us - expect_us) <= 0.05 * expect_us,
		"drained in %.1f us, expected %.1f us at rate - R = %g Mpps", drain_us, expect_us,
		mu - R);
}

Test(sim, drops_exactly_at_capacity)
{
	/* 1000 packets arrive during the interrupt: a queue of 1000 + the burst in
	 * service holds them all; one of 600 drops the rest and nothing else. */
	struct qtrace ok = interrupt_run(1001, 1.0, 2.0, 1000);
	cr_assert_eq(ok.drops, 0, "%llu drops with room to spare", (unsigned long long)ok.drops);
	cr_assert_leq(ok.max_qdepth, 1001);

	struct qtrace q = interrupt_run(600, 1.0, 2.0, 1000);
	cr_assert_leq(q.max_qdepth, 600);
	cr_assert(q.drops >= 1000 - 600 - 1 && q.drops <= 1000 - 600 + 1,
		"%llu drops, expected %d (arrivals during the interrupt minus capacity)",
		(unsigned long long)q.drops, 1000 - 600);
	/* all within the interrupt: the queue fills 600 us into it */
	cr_assert_geq(q.drop_first, T0 + 5000 * 1000 + 590 * 1000);
	cr_assert_leq(q.drop_last, q.intr_end);
}

/* ---------------------------------------------------------------- NAT, VPN */

struct rxmap {
	uint32_t wire[200000];
	struct mscope_flow_key key[200000];
	uint64_t n;
	struct mscope_flow_key flows[4096];
	uint32_t *txw;
	uint64_t ntx;
	uint64_t checked;
	int expect_nat;
};

static void
on_nf(void *arg, const struct mscope_record *r)
{
	struct rxmap *m = arg;
	if (r->type == MSCOPE_REC_FLOW) {
		cr_assert_lt(r->u.flow.ref, 4096);
		m->flows[r->u.flow.ref] = r->u.flow.key;
	} else if (r->type == MSCOPE_REC_RX) {
		cr_assert_eq(r->u.rx.first_seq, m->n, "rx sequence numbers must count every packet");
		for (uint32_t i = 0; i < r->u.rx.n && m->n < 200000; i++, m->n++) {
			m->wire[m->n] = r->u.rx.wire_id[i];
			m->key[m->n] = m->flows[r->u.rx.flow[i]];
		}
	} else if (r->type == MSCOPE_REC_TX) {
		const struct mscope_tx_burst *t = &r->u.tx;
		cr_assert_not_null(t->flow, "a rewriting NF must give flows as sent");
		for (uint32_t i = 0; i < t->accepted; i++) {
			cr_assert_lt(t->rx_seq[i], m->n, "tx links to a packet not yet received");
			const struct mscope_flow_key *in = &m->key[t->rx_seq[i]];
			const struct mscope_flow_key *out = &m->flows[t->flow[i]];
			cr_assert_neq(t->wire_id[i], m->wire[t->rx_seq[i]], "wire ID unchanged");
			if (m->expect_nat) {
				cr_assert(!memcmp(in->dst, out->dst, 16) && in->dport == out->dport &&
					in->proto == out->proto, "NAT changed more than the source");
				cr_assert(out->src[0] == 198 && out->src[1] == 51 && out->src[2] == 100,
					"NAT source address not rewritten");
			} else {
				cr_assert(out->proto == 17 && out->sport == 4500 && out->dport == 4500 &&
					out->src[0] == 192 && out->src[2] == 2, "not ESP-in-UDP");
			}
			m->txw[m->ntx++] = t->wire_id[i];
			m->checked++;
		}
	}
}

struct rxlist {
	uint32_t *w;
	uint64_t n;
};

static void
on_rxlist(void *arg, const struct mscope_record *r)
{
	struct rxlist *l = arg;
	if (r->type == MSCOPE_REC_RX)
		for (uint32_t i = 0; i < r->u.rx.n; i++)
			l->w[l->n++] = r->u.rx.wire_id[i];
}

Test(sim, nat_and_vpn_rewrite_keep_links)
{
	struct mscope_sim_scenario *s = load_str(
		"{\"seed\": 5, \"duration_ms\": 20,"
		" \"nfs\": [{\"name\": \"nat1\", \"type\": \"nat\", \"rate_mpps\": 1.0},"
		"          {\"name\": \"vpn1\", \"type\": \"vpn\", \"rate_mpps\": 1.0},"
		"          {\"name\": \"out\", \"type\": \"monitor\", \"rate_mpps\": 2.0}],"
		" \"links\": [{\"from\": \"source\", \"to\": \"nat1\"}, {\"from\": \"nat1\", \"to\": \"vpn1\"},"
		"            {\"from\": \"vpn1\", \"to\": \"out\"}],"
		" \"traffic\": {\"synthetic\": {\"flows\": 300, \"rate_mpps\": 0.8}}}");
	struct mscope_sim_opts o = MSCOPE_SIM_OPTS_DEFAULT;
	o.no_victims = 1;
	struct mscope_sim_stats st;
	char *dir = run_to_tmp(s, &o, &st);
	struct rxmap *m = calloc(1, sizeof(*m));
	m->txw = calloc(200000, sizeof(*m->txw));
	m->expect_nat = 1;
	read_all(dir, "nat1", on_nf, m);
	cr_assert_eq(m->checked, st.packets);
	/* downstream receives exactly what the NAT sent, in order */
	struct rxlist l = { calloc(200000, sizeof(uint32_t)), 0 };
	read_all(dir, "vpn1", on_rxlist, &l);
	cr_assert_eq(l.n, m->ntx);
	cr_assert(!memcmp(l.w, m->txw, l.n * sizeof(uint32_t)), "vpn1 rx != nat1 tx");

	struct rxmap *v = calloc(1, sizeof(*v));
	v->txw = calloc(200000, sizeof(*v->txw));
	read_all(dir, "vpn1", on_nf, v);
	cr_assert_eq(v->checked, st.packets);
	l.n = 0;
	read_all(dir, "out", on_rxlist, &l);
	cr_assert_eq(l.n, v->ntx);
	cr_assert(!memcmp(l.w, v->txw, l.n * sizeof(uint32_t)), "out rx != vpn1 tx");
	free(l.w);
	free(m->txw);
	free(m);
	free(v->txw);
	free(v);
	rm_rf(dir);
	free(dir);
	mscope_sim_free(s);
}

/* ------------------------------------------------------------------ victims */

struct victim_check {
	uint64_t n;
	json_t *truth;
};

Test(sim, victims_follow_the_definition)
{
	/* A burst into an NF with room to spare harms nobody; its own packets are
	 * never victims of it. An interrupt upstream harms the packets behind it. */
	struct mscope_sim_scenario *s = load_str(
		"{\"seed\": 2, \"duration_ms\": 10, \"victim_threshold_us\": 20,"
		" \"nfs\": [{\"name\": \"a\", \"type\": \"x\", \"rate_mpps\": 10},"
		"          {\"name\": \"b\", \"type\": \"x\", \"rate_mpps\": 1.0}],"
		" \"links\": [{\"from\": \"source\", \"to\": \"a\"}, {\"from\": \"a\", \"to\": \"b\"}],"
		" \"traffic\": {\"synthetic\": {\"flows\": 50, \"rate_mpps\": 0.5, \"arrival\": \"cbr\"}},"
		" \"faults\": ["
		"  {\"kind\": \"burst\", \"flow\": {\"src\": \"10.9.9.9\", \"dst\": \"172.16.0.1\","
		"    \"sport\": 5000, \"dport\": 53, \"proto\": \"udp\"},"
		"   \"at_us\": 1000, \"duration_us\": 20, \"rate_mpps\": 0.2},"
		"  {\"kind\": \"interrupt\", \"nf\": \"b\", \"at_us\": 4000, \"duration_us\": 200},"
		"  {\"kind\": \"slow\", \"nf\": \"a\", \"factor\": 0.5, \"at_us\": 7000,"
		"   \"duration_us\": 500}]}");
	struct mscope_sim_stats st;
	char *dir = run_to_tmp(s, NULL, &st);
	char p[4096];
	snprintf(p, sizeof(p), "%s/truth.json", dir);
	json_t *t = json_load_file(p, 0, NULL);
	cr_assert_not_null(t);
	json_t *f = json_object_get(t, "faults");
	cr_assert_eq(json_array_size(f), 3);
	cr_assert_eq(json_integer_value(json_object_get(json_array_get(f, 0), "victims")), 0);
	json_int_t vi = json_integer_value(json_object_get(json_array_get(f, 1), "victims"));
	/* The 100 packets that arrive during the 200 us stall, and those arriving in
	 * the next 160 us while the backlog drains at 0.5 Mpps, wait > 20 us more. */
	cr_assert(vi >= 170 && vi <= 190, "interrupt victims %lld", (long long)vi);
	cr_assert_eq(json_integer_value(json_object_get(json_array_get(f, 2), "victims")), 0,
		"a 10 Mpps NF at half speed stays faster than its input: no victims");
	const json_t *c = json_object_get(json_array_get(f, 0), "culprit");
	cr_assert_str_eq(json_string_value(json_object_get(c, "nf")), "source");
	cr_assert_str_eq(json_string_value(json_object_get(c, "kind")), "source");
	cr_assert_str_eq(json_string_value(json_object_get(json_object_get(c, "flow"), "proto")),
		"udp");
	c = json_object_get(json_array_get(f, 1), "culprit");
	cr_assert_str_eq(json_string_value(json_object_get(c, "nf")), "b");
	cr_assert_str_eq(json_string_value(json_object_get(c, "kind")), "processing");
	cr_assert_null(json_object_get(c, "flow"));
	cr_assert_eq(json_integer_value(json_object_get(json_array_get(f, 1), "start_us")), 4000);
	cr_assert_eq(json_integer_value(json_object_get(json_array_get(f, 1), "end_us")), 4200);
	json_decref(t);

	/* Every victims.jsonl line is a packet the source sent (wire ID and TSC). */
	struct arrivals a = { calloc(1 << 16, 4), calloc(1 << 16, 8), (1 << 16) - 1 };
	read_all(dir, "source", on_source, &a);
	snprintf(p, sizeof(p), "%s/victims.jsonl", dir);
	FILE *vf = fopen(p, "r");
	cr_assert_not_null(vf);
	char line[512];
	long lines = 0;
	while (fgets(line, sizeof(line), vf)) {
		json_t *v = json_loads(line, 0, NULL);
		cr_assert_not_null(v, "bad line %s", line);
		cr_assert_eq(json_integer_value(json_object_get(v, "fault")), 1);
		uint32_t w = (uint32_t)json_integer_value(json_object_get(v, "wire_id"));
		uint64_t tsc = (uint64_t)json_integer_value(json_object_get(v, "tsc"));
		cr_assert_eq(arr_get(&a, w), tsc, "victim %u @%llu is not a source packet", w,
			(unsigned long long)tsc);
		cr_assert_gt(json_integer_value(json_object_get(v, "delay_ns")), 20000);
		cr_assert(tsc >= T0 + 3990 * 1000 && tsc < T0 + 4400 * 1000);
		json_decref(v);
		lines++;
	}
	fclose(vf);
	cr_assert_eq(lines, vi);
	free(a.key);
	free(a.val);
	rm_rf(dir);
	free(dir);
	mscope_sim_free(s);
}

struct outc {
	uint64_t n, base, dropped;
	uint64_t last_in;
};

static void
on_outcome(void *arg, const struct mscope_sim_packet *p)
{
	struct outc *o = arg;
	cr_assert_geq(p->in_tsc, o->last_in, "outcomes not in ingress order");
	o->last_in = p->in_tsc;
	o->n++;
	o->base += p->stream == 0;
	o->dropped += p->dropped;
	if (!p->dropped)
		cr_assert_gt(p->out_tsc, p->in_tsc);
}

Test(sim, outcomes_api)
{
	struct mscope_sim_scenario *s = load_str(chain4);
	struct outc a = { 0 }, b = { 0 };
	struct mscope_sim_stats st;
	char err[256];
	cr_assert_eq(mscope_sim_outcomes(s, NULL, on_outcome, &a, &st, err, sizeof(err)), 0, "%s",
		err);
	cr_assert_eq(a.n, st.packets);
	cr_assert_eq(a.dropped, st.drops);
	struct mscope_sim_opts o = MSCOPE_SIM_OPTS_DEFAULT;
	o.disabled_faults = 1;  /* no burst: same base traffic, no burst packets */
	cr_assert_eq(mscope_sim_outcomes(s, &o, on_outcome, &b, &st, err, sizeof(err)), 0);
	cr_assert_eq(b.base, a.base);
	cr_assert_eq(b.n, b.base);
	cr_assert_eq(a.n - a.base, 900, "a 300 us burst at 3 Mpps sends 900 packets");
	mscope_sim_free(s);
}

/* --------------------------------------------------------------- validation */

#define BASE_NFS "\"nfs\": [{\"name\": \"a\", \"type\": \"nat\"}, {\"name\": \"b\", \"type\": \"vpn\"}]"
#define BASE_LINKS "\"links\": [{\"from\": \"source\", \"to\": \"a\"}, {\"from\": \"a\", \"to\": \"b\"}]"
#define BASE_TRAFFIC "\"traffic\": {\"synthetic\": {\"flows\": 10, \"rate_mpps\": 0.1}}"

Test(sim, validation_names_the_field)
{
	static const struct {
		const char *json;
		const char *field;
	} cases[] = {
		{ "{" BASE_NFS ", " BASE_LINKS ", " BASE_TRAFFIC "}", "duration_ms: missing" },
		{ "{\"duration_ms\": -1, " BASE_NFS ", " BASE_LINKS ", " BASE_TRAFFIC "}",
			"duration_ms" },
		{ "{\"duration_ms\": \"10\", " BASE_NFS ", " BASE_LINKS ", " BASE_TRAFFIC "}",
			"duration_ms: must be a number" },
		{ "{\"duration_ms\": 10, \"seed\": 1.5, " BASE_NFS ", " BASE_LINKS ", " BASE_TRAFFIC "}",
			"seed" },
		{ "{\"duration_ms\": 10, " BASE_LINKS ", " BASE_TRAFFIC "}", "nfs: missing" },
		{ "{\"duration_ms\": 10, \"nfs\": [{\"name\": \"a\", \"type\": \"nat\"},"
			" {\"name\": \"b\", \"type\": \"vpn\", \"rate_mpps\": -2}], " BASE_LINKS ", "
			BASE_TRAFFIC "}", "nfs[1].rate_mpps" },
		{ "{\"duration_ms\": 10, \"nfs\": [{\"name\": \"a\", \"type\": \"nat\"},"
			" {\"name\": \"b\", \"type\": \"vpn\", \"queue\": 0}], " BASE_LINKS ", "
			BASE_TRAFFIC "}", "nfs[1].queue" },
		{ "{\"duration_ms\": 10, \"nfs\": [{\"name\": \"a\"}], " BASE_LINKS ", " BASE_TRAFFIC "}",
			"nfs[0].type: missing" },
		{ "{\"duration_ms\": 10, \"nfs\": [{\"name\": \"a\", \"type\": \"x\"},"
			" {\"name\": \"a\", \"type\": \"x\"}], " BASE_LINKS ", " BASE_TRAFFIC "}",
			"nfs[1].name: duplicate" },
		{ "{\"duration_ms\": 10, \"nfs\": [{\"name\": \"../x\", \"type\": \"x\"}], "
			BASE_LINKS ", " BASE_TRAFFIC "}", "nfs[0].name" },
		{ "{\"duration_ms\": 10, " BASE_NFS ", \"links\": [{\"from\": \"source\", \"to\": \"c\"}], "
			BASE_TRAFFIC "}", "links[0].to: no NF named \"c\"" },
		{ "{\"duration_ms\": 10, " BASE_NFS ", \"links\": [{\"from\": \"source\", \"to\": \"a\"},"
			" {\"from\": \"a\"}], " BASE_TRAFFIC "}", "links[1].to: missing" },
		{ "{\"duration_ms\": 10, " BASE_NFS ", \"links\": [{\"from\": \"source\", \"to\": \"a\"},"
			" {\"from\": \"a\", \"to\": \"b\", \"match\": {\"proto\": \"tcpp\"}}], " BASE_TRAFFIC "}",
			"links[1].match.proto" },
		{ "{\"duration_ms\": 10, " BASE_NFS ", \"links\": [{\"from\": \"source\", \"to\": \"a\"},"
			" {\"from\": \"a\", \"to\": \"b\", \"match\": {\"dst\": \"10.0.0.0/33\"}}], "
			BASE_TRAFFIC "}", "links[1].match.dst" },
		{ "{\"duration_ms\": 10, " BASE_NFS ", \"links\": [{\"from\": \"source\", \"to\": \"a\"},"
			" {\"from\": \"a\", \"to\": \"b\"}, {\"from\": \"b\", \"to\": \"a\"}], " BASE_TRAFFIC "}",
			"links: the links form a cycle" },
		{ "{\"duration_ms\": 10, " BASE_NFS ", \"links\": [{\"from\": \"a\", \"to\": \"b\"}], "
			BASE_TRAFFIC "}", "links: no link from \"source\"" },
		{ "{\"duration_ms\": 10, " BASE_NFS ", " BASE_LINKS "}", "traffic: missing" },
		{ "{\"duration_ms\": 10, " BASE_NFS ", " BASE_LINKS ", \"traffic\": {\"synthetic\":"
			" {\"rate_mpps\": 1}}}", "traffic.synthetic.flows: missing" },
		{ "{\"duration_ms\": 10, " BASE_NFS ", " BASE_LINKS ", \"traffic\": {\"synthetic\":"
			" {\"flows\": 3, \"rate_mpps\": 1, \"arrival\": \"bursty\"}}}",
			"traffic.synthetic.arrival" },
		{ "{\"duration_ms\": 10, " BASE_NFS ", " BASE_LINKS ", \"traffic\": {\"pcap\":"
			" \"/nonexistent.pcap\"}}", "traffic.pcap" },
		{ "{\"duration_ms\": 10, " BASE_NFS ", " BASE_LINKS ", " BASE_TRAFFIC ", \"faults\":"
			" [{\"kind\": \"meteor\", \"at_us\": 1, \"duration_us\": 1}]}", "faults[0].kind" },
		{ "{\"duration_ms\": 10, " BASE_NFS ", " BASE_LINKS ", " BASE_TRAFFIC ", \"faults\":"
			" [{\"kind\": \"interrupt\", \"nf\": \"zz\", \"at_us\": 1, \"duration_us\": 1}]}",
			"faults[0].nf: no NF named \"zz\"" },
		{ "{\"duration_ms\": 10, " BASE_NFS ", " BASE_LINKS ", " BASE_TRAFFIC ", \"faults\":"
			" [{\"kind\": \"interrupt\", \"nf\": \"a\", \"duration_us\": 1}]}",
			"faults[0].at_us: missing" },
		{ "{\"duration_ms\": 10, " BASE_NFS ", " BASE_LINKS ", " BASE_TRAFFIC ", \"faults\":"
			" [{\"kind\": \"slow\", \"nf\": \"a\", \"at_us\": 1, \"duration_us\": 1}]}",
			"faults[0].factor: missing" },
		{ "{\"duration_ms\": 10, " BASE_NFS ", " BASE_LINKS ", " BASE_TRAFFIC ", \"faults\":"
			" [{\"kind\": \"bug\", \"nf\": \"a\", \"at_us\": 1, \"duration_us\": 1,"
			" \"slowdown\": 3}]}", "faults[0].match: missing" },
		{ "{\"duration_ms\": 10, " BASE_NFS ", " BASE_LINKS ", " BASE_TRAFFIC ", \"faults\":"
			" [{\"kind\": \"bug\", \"nf\": \"a\", \"at_us\": 1, \"duration_us\": 1,"
			" \"slowdown\": 3, \"match\": {\"sport\": 70000}}]}", "faults[0].match.sport" },
		{ "{\"duration_ms\": 10, " BASE_NFS ", " BASE_LINKS ", " BASE_TRAFFIC ", \"faults\":"
			" [{\"kind\": \"burst\", \"at_us\": 1, \"duration_us\": 1, \"rate_mpps\": 1,"
			" \"flow\": {\"src\": \"10.0.0.1\", \"dst\": \"10.0.0.2\", \"proto\": \"udp\","
			" \"dport\": 53}}]}", "faults[0].flow.sport: missing" },
		{ "{\"duration_ms\": 10, " BASE_NFS ", " BASE_LINKS ", " BASE_TRAFFIC ", \"faults\":"
			" [{\"kind\": \"burst\", \"at_us\": 1, \"duration_us\": 1, \"rate_mpps\": 1,"
			" \"flow\": {\"src\": \"10.0.0.300\", \"dst\": \"10.0.0.2\", \"proto\": \"udp\","
			" \"sport\": 1, \"dport\": 53}}]}", "faults[0].flow.src" },
		{ "[1, 2]", "must be a JSON object" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *e = load_err(cases[i].json);
		cr_assert(strstr(e, cases[i].field) != NULL, "case %zu: error \"%s\" does not name \"%s\"",
			i, e, cases[i].field);
	}
	/* Unknown fields are ignored; the example is accepted as written. */
	struct mscope_sim_scenario *s = load_str(
		"{\"seed\": 1, \"duration_ms\": 100, \"colour\": \"blue\","
		" \"nfs\": [{\"name\": \"nat1\", \"type\": \"nat\", \"rate_mpps\": 1.2, \"queue\": 1024,"
		"  \"vendor\": \"x\"}, {\"name\": \"fw1\", \"type\": \"firewall\"},"
		"  {\"name\": \"mon1\", \"type\": \"monitor\"}, {\"name\": \"vpn1\", \"type\": \"vpn\"}],"
		" \"links\": [ {\"from\": \"source\", \"to\": \"nat1\"}, {\"from\": \"nat1\", \"to\": \"fw1\"},"
		"  {\"from\": \"fw1\", \"to\": \"mon1\", \"match\": {\"proto\": \"tcp\", \"dport\": 80}},"
		"  {\"from\": \"fw1\", \"to\": \"vpn1\"}],"
		" \"traffic\": {\"synthetic\": {\"flows\": 1000, \"rate_mpps\": 0.7}},"
		" \"faults\": ["
		"  {\"kind\": \"burst\", \"flow\": {\"src\": \"10.0.0.1\", \"dst\": \"10.1.0.1\","
		"    \"sport\": 1234, \"dport\": 80, \"proto\": \"udp\"},"
		"    \"at_us\": 30000, \"duration_us\": 300, \"rate_mpps\": 3.0},"
		"  {\"kind\": \"interrupt\", \"nf\": \"nat1\", \"at_us\": 50000, \"duration_us\": 500},"
		"  {\"kind\": \"bug\", \"nf\": \"fw1\", \"match\": {\"proto\": \"udp\", \"dport\": 53},"
		"    \"slowdown\": 20, \"at_us\": 60000, \"duration_us\": 5000},"
		"  {\"kind\": \"slow\", \"nf\": \"vpn1\", \"factor\": 0.5, \"at_us\": 70000,"
		"    \"duration_us\": 3000}]}");
	cr_assert_eq(mscope_sim_fault_count(s), 4);
	cr_assert_eq(mscope_sim_nf_count(s), 4);
	cr_assert_str_eq(mscope_sim_nf_name(s, 3), "vpn1");
	mscope_sim_free(s);

	/* File errors name the file and the position. */
	char path[] = "/tmp/mscope-sim-bad-XXXXXX";
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "{\"seed\": 1,\n  oops}", 19), 19);
	close(fd);
	char err[512];
	cr_assert_null(mscope_sim_load(path, err, sizeof(err)));
	cr_assert(strstr(err, path) && strstr(err, "line 2"), "error \"%s\"", err);
	unlink(path);
}

/* ------------------------------------------------------------------ output */

Test(sim, never_clobbers_without_overwrite)
{
	struct mscope_sim_scenario *s = load_str(
		"{\"duration_ms\": 2, \"nfs\": [{\"name\": \"a\", \"type\": \"x\"}],"
		" \"links\": [{\"from\": \"source\", \"to\": \"a\"}],"
		" \"traffic\": {\"synthetic\": {\"flows\": 5, \"rate_mpps\": 0.1}}}");
	char *dir = run_to_tmp(s, NULL, NULL);
	char err[512];
	cr_assert_eq(mscope_sim_run(s, NULL, dir, NULL, err, sizeof(err)), -1);
	cr_assert(strstr(err, dir) != NULL && strstr(err, ".mst") != NULL,
		"error \"%s\" does not name the existing file", err);
	struct mscope_sim_opts o = MSCOPE_SIM_OPTS_DEFAULT;
	o.overwrite = 1;
	cr_assert_eq(mscope_sim_run(s, &o, dir, NULL, err, sizeof(err)), 0, "%s", err);
	/* an output path that is a file, not a directory */
	char file[4096];
	snprintf(file, sizeof(file), "%s/truth.json", dir);
	cr_assert_eq(mscope_sim_run(s, &o, file, NULL, err, sizeof(err)), -1);
	cr_assert(strstr(err, "truth.json") != NULL, "error \"%s\"", err);
	rm_rf(dir);
	free(dir);
	mscope_sim_free(s);
}

/* Every value of a full scenario replaced by every wrong type (and removed):
 * the loader never crashes, and a refusal always says which field. */
static unsigned mut_loaded, mut_refused;

static void
try_doc(const json_t *doc)
{
	char err[512];
	struct mscope_sim_scenario *s = mscope_sim_load_json(doc, "mut", NULL, err, sizeof(err));
	if (s) {
		mut_loaded++;
		mscope_sim_free(s);
	} else {
		mut_refused++;
		cr_assert(strncmp(err, "mut: ", 5) == 0 && strlen(err) > 8, "vague error \"%s\"", err);
	}
}

static void
mutate_all(json_t *root, json_t *node)
{
	json_t *bad[] = { json_null(), json_string("x"), json_integer(-1), json_real(1e300),
		json_array(), json_object(), json_true() };
	const size_t nbad = sizeof(bad) / sizeof(bad[0]);

	if (json_is_object(node)) {
		/* keys first: deleting and re-adding a key moves it in the iteration */
		size_t nk = json_object_size(node), i = 0;
		char **keys = calloc(nk, sizeof(*keys));
		const char *k;
		json_t *v;
		json_object_foreach(node, k, v)
			keys[i++] = strdup(k);
		for (size_t j = 0; j < nk; j++) {
			json_t *keep = json_incref(json_object_get(node, keys[j]));
			for (i = 0; i < nbad; i++) {
				json_object_set(node, keys[j], bad[i]);
				try_doc(root);
			}
			json_object_del(node, keys[j]);
			try_doc(root);
			json_object_set(node, keys[j], keep);
			json_decref(keep);
			mutate_all(root, json_object_get(node, keys[j]));
			free(keys[j]);
		}
		free(keys);
	} else if (json_is_array(node)) {
		for (size_t j = 0; j < json_array_size(node); j++) {
			json_t *keep = json_incref(json_array_get(node, j));
			for (size_t i = 0; i < nbad; i++) {
				json_array_set(node, j, bad[i]);
				try_doc(root);
			}
			json_array_set(node, j, keep);
			json_decref(keep);
			mutate_all(root, json_array_get(node, j));
		}
	}
	for (size_t i = 0; i < nbad; i++)
		json_decref(bad[i]);
}

Test(sim, mutated_scenarios_never_crash)
{
	json_t *root = json_loads(chain4, 0, NULL);
	cr_assert_not_null(root);
	mutate_all(root, root);
	json_decref(root);
	cr_log_info("%u mutants loaded, %u refused", mut_loaded, mut_refused);
	cr_assert_gt(mut_refused, 100);
	cr_assert_gt(mut_loaded, 10);     /* optional fields may take defaults */
}

/* Pinned values: the same scenario must give the same bytes in every build
 * (sanitized, release, another compiler). A read of undefined memory in the
 * flow hash once made routing differ between builds; this catches it. If the
 * traffic generator, the NAT mapping or the wire ID definition (trace format
 * version) is changed on purpose, update them. The wire IDs are those of the
 * format-2 wire ID (mscope_wire_id); ports and the NAT port do not depend on it. */
struct pin {
	int n;
	uint32_t wire[3];
	uint16_t port[3];
	struct mscope_flow_key flows[64];
	uint32_t nat_wire;
	struct mscope_flow_key nat_out;
};

static void
on_pin_source(void *arg, const struct mscope_record *r)
{
	struct pin *p = arg;
	if (r->type == MSCOPE_REC_TX && p->n < 3) {
		p->wire[p->n] = r->u.tx.wire_id[0];
		p->port[p->n++] = r->u.tx.port;
	}
}

static void
on_pin_nat(void *arg, const struct mscope_record *r)
{
	struct pin *p = arg;
	if (r->type == MSCOPE_REC_FLOW && r->u.flow.ref < 64)
		p->flows[r->u.flow.ref] = r->u.flow.key;
	if (r->type == MSCOPE_REC_TX && !p->nat_wire) {
		p->nat_wire = r->u.tx.wire_id[0];
		p->nat_out = p->flows[r->u.tx.flow[0]];
	}
}

Test(sim, pinned_bytes_across_builds)
{
	struct mscope_sim_scenario *s = load_str(
		"{\"seed\": 11, \"duration_ms\": 1,"
		" \"nfs\": [{\"name\": \"nat1\", \"type\": \"nat\"}, {\"name\": \"nat2\", \"type\": \"nat\"},"
		"          {\"name\": \"vpn1\", \"type\": \"vpn\"}],"
		" \"links\": [{\"from\": \"source\", \"to\": \"nat1\"}, {\"from\": \"source\", \"to\": \"nat2\"},"
		"   {\"from\": \"nat1\", \"to\": \"vpn1\"}, {\"from\": \"nat2\", \"to\": \"vpn1\"}],"
		" \"traffic\": {\"synthetic\": {\"flows\": 50, \"rate_mpps\": 0.5}}}");
	struct mscope_sim_opts o = MSCOPE_SIM_OPTS_DEFAULT;
	o.no_victims = 1;
	char *dir = run_to_tmp(s, &o, NULL);
	struct pin p;
	memset(&p, 0, sizeof(p));
	read_all(dir, "source", on_pin_source, &p);
	read_all(dir, "nat1", on_pin_nat, &p);
	cr_assert_eq(p.wire[0], 0x37ea68e4u, "wire %08x", p.wire[0]);
	cr_assert_eq(p.wire[1], 0xe68e682bu, "wire %08x", p.wire[1]);
	cr_assert_eq(p.wire[2], 0xf6d8cef7u, "wire %08x", p.wire[2]);
	cr_assert(p.port[0] == 2 && p.port[1] == 2 && p.port[2] == 2, "hash routing changed: %u %u %u",
		p.port[0], p.port[1], p.port[2]);
	cr_assert_eq(p.nat_wire, 0x26782190u, "NAT output wire %08x", p.nat_wire);
	cr_assert_eq(p.nat_out.sport, 41647, "NAT port %u", p.nat_out.sport);
	rm_rf(dir);
	free(dir);
	mscope_sim_free(s);
}
