/* SPDX-License-Identifier: BSD-3-Clause */
/* Shared code of the sample NFs: see common.h. The port setup and loop
 * follow DPDK's examples/skeleton/basicfwd.c. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <rte_byteorder.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_jhash.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>

#include "common.h"

#define MBUF_CACHE 256
#define T0_POLL_MS 5

static volatile sig_atomic_t quit_flag;

enum {
	OPT_BURST = 1000,
	OPT_IN,
	OPT_LINK_WAIT,
	OPT_NAME,
	OPT_OUT,
	OPT_QUIET,
	OPT_RATE,
	OPT_READY,
	OPT_RING,
	OPT_SLOW,
	OPT_STALL,
	OPT_STATS,
	OPT_T0,
	OPT_T0_FILE,
	OPT_TRUTH,
	OPT_WORK_NS,
	OPT_WORK_SLEEP,
	OPT_YIELD,
};

/* Alphabetical. */
const struct option nf_common_longopts[] = {
	{ "in", required_argument, NULL, OPT_IN },
	{ "link-wait-ms", required_argument, NULL, OPT_LINK_WAIT },
	{ "name", required_argument, NULL, OPT_NAME },
	{ "out", required_argument, NULL, OPT_OUT },
	{ "quiet", no_argument, NULL, OPT_QUIET },
	{ "rate-mpps", required_argument, NULL, OPT_RATE },
	{ "ready-file", required_argument, NULL, OPT_READY },
	{ "ring-size", required_argument, NULL, OPT_RING },
	{ "rx-burst", required_argument, NULL, OPT_BURST },
	{ "slow", required_argument, NULL, OPT_SLOW },
	{ "stall", required_argument, NULL, OPT_STALL },
	{ "stats", required_argument, NULL, OPT_STATS },
	{ "t0", required_argument, NULL, OPT_T0 },
	{ "t0-file", required_argument, NULL, OPT_T0_FILE },
	{ "truth", required_argument, NULL, OPT_TRUTH },
	{ "work-ns", required_argument, NULL, OPT_WORK_NS },
	{ "work-sleep", no_argument, NULL, OPT_WORK_SLEEP },
	{ "yield", optional_argument, NULL, OPT_YIELD },
	{ NULL, 0, NULL, 0 },
};

unsigned int
nf_common_nlongopts(void)
{
	return sizeof(nf_common_longopts) / sizeof(nf_common_longopts[0]) - 1;
}

void
nf_common_usage(FILE *f)
{
	fprintf(f,
		"Ports (EAL --vdev devices, in order; default: port 0 in, all others out):\n"
		"  --in PORT[,PORT...]        ports to receive from\n"
		"  --out NAME:PORT[:FILTER]   an output link (repeatable, order matters); a packet\n"
		"                             goes to the first link whose FILTER matches it, else\n"
		"                             its flow is hashed over the links without FILTER\n"
		"  --rx-burst N               rx burst size (default %d)\n"
		"  --ring-size N              rx/tx descriptors per queue (default 1024)\n"
		"  --link-wait-ms MS          wait this long for output links to come up (default 10000)\n"
		"Pacing:\n"
		"  --rate-mpps R              peak rate: each packet costs 1/R us of busy work\n"
		"  --work-ns N                each packet costs N ns of busy work\n"
		"  --work-sleep               sleep through most of a service time of 1 ms or more\n"
		"                             instead of spinning (CPU left to others; a late\n"
		"                             wake-up lowers the rate)\n"
		"  --yield[=US]               on an empty poll sleep US microseconds (default 0:\n"
		"                             sched_yield), so several programs share few CPUs;\n"
		"                             after 256 empty polls in a row, 10 x US (<= 250 us)\n"
		"Faults (times in us from t0, see --t0):\n"
		"  --stall AT_US:DUR_US       stop polling for DUR_US at AT_US (repeatable)\n"
		"  --slow AT_US:DUR_US:FACTOR[:FILTER]\n"
		"                             packets matching FILTER take FACTOR times longer during\n"
		"                             the window (repeatable; without FILTER: all packets)\n"
		"  --t0 NS                    the run's t0, CLOCK_REALTIME nanoseconds\n"
		"  --t0-file PATH             read t0 from PATH once it exists (the chain launcher)\n"
		"Output:\n"
		"  --name NAME                name in truth and stats (default: $MSCOPE_NF or program)\n"
		"  --truth FILE               append each fault's actual window as a JSON line\n"
		"  --stats FILE               write per-port counters as JSON at exit\n"
		"  --ready-file FILE          create FILE once the ports are up\n"
		"  --quiet                    no messages except errors\n"
		"FILTER: comma-separated src=PREFIX, dst=PREFIX, sport=P[-Q], dport=P[-Q],\n"
		"        proto=tcp|udp|icmp|N; '*' matches every packet, 'none' no packet (an\n"
		"        output only the NF's own decisions use, e.g. firewall to:NAME rules).\n",
		NF_BURST);
}

bool
nf_help_requested(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return true;
	return false;
}

void
nf_getopt(struct nf_common *o, int argc, char **argv, const struct option *own,
		int (*own_opt)(int c, const char *arg, void *st), void *st,
		void (*usage)(FILE *f))
{
	unsigned int nown = 0, ncom = nf_common_nlongopts();
	struct option *all;
	int c;

	while (own && own[nown].name)
		nown++;
	all = calloc(nown + ncom + 2, sizeof(*all));
	if (!all) {
		fprintf(stderr, "%s: out of memory\n", o->prog);
		exit(1);
	}
	memcpy(all, nf_common_longopts, ncom * sizeof(*all));
	if (nown)
		memcpy(all + ncom, own, nown * sizeof(*all));
	all[ncom + nown] = (struct option){ "help", no_argument, NULL, 'h' };
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", all, NULL)) != -1) {
		if (c == 'h') {
			usage(stdout);
			exit(0);
		}
		if (c == '?') {
			usage(stderr);
			exit(2);
		}
		if (nf_common_opt(o, c, optarg))
			continue;
		if (!own_opt || own_opt(c, optarg, st) != 0)
			exit(2);
	}
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", o->prog, argv[optind]);
		usage(stderr);
		exit(2);
	}
	free(all);
}

void
nf_common_init(struct nf_common *o, const char *prog)
{
	const char *env = getenv("MSCOPE_NF");

	memset(o, 0, sizeof(*o));
	o->prog = prog;
	snprintf(o->name, sizeof(o->name), "%s", env && *env ? env : prog);
	o->in_ports[0] = 0;
	o->n_in = 1;
	o->nb_rxd = 1024;
	o->nb_txd = 1024;
	o->burst = NF_BURST;
	o->link_wait_ms = 10000;
}

static void __attribute__((noreturn))
bad(const struct nf_common *o, const char *opt, const char *val, const char *why)
{
	fprintf(stderr, "%s: bad --%s '%s': %s\n", o->prog, opt, val, why);
	exit(2);
}

int
nf_parse_u64(const char *s, uint64_t *v)
{
	char *end;

	if (!s || !*s || *s == '-')
		return -1;
	errno = 0;
	*v = strtoull(s, &end, 10);
	return errno || *end ? -1 : 0;
}

int
nf_parse_double(const char *s, double *v)
{
	char *end;

	if (!s || !*s)
		return -1;
	errno = 0;
	*v = strtod(s, &end);
	return errno || *end || !isfinite(*v) ? -1 : 0;
}

int
nf_parse_proto(const char *s)
{
	uint64_t v;

	if (!strcasecmp(s, "tcp"))
		return IPPROTO_TCP;
	if (!strcasecmp(s, "udp"))
		return IPPROTO_UDP;
	if (!strcasecmp(s, "icmp"))
		return IPPROTO_ICMP;
	if (!strcasecmp(s, "sctp"))
		return IPPROTO_SCTP;
	if (nf_parse_u64(s, &v) == 0 && v <= 255)
		return (int)v;
	return -1;
}

int
nf_parse_prefix(const char *s, uint32_t *addr, uint32_t *mask)
{
	char buf[64];
	char *slash;
	struct in_addr a;
	uint64_t len = 32;

	if (strlen(s) >= sizeof(buf))
		return -1;
	strcpy(buf, s);
	slash = strchr(buf, '/');
	if (slash) {
		*slash = '\0';
		if (nf_parse_u64(slash + 1, &len) || len > 32)
			return -1;
	}
	if (inet_pton(AF_INET, buf, &a) != 1)
		return -1;
	*mask = len ? ~0u << (32 - len) : 0;
	*addr = ntohl(a.s_addr) & *mask;
	return 0;
}

static int
parse_range(const char *s, uint16_t *lo, uint16_t *hi)
{
	char buf[32];
	char *dash;
	uint64_t a, b;

	if (strlen(s) >= sizeof(buf))
		return -1;
	strcpy(buf, s);
	dash = strchr(buf, '-');
	if (dash)
		*dash = '\0';
	if (nf_parse_u64(buf, &a) || a > 65535)
		return -1;
	b = a;
	if (dash && (nf_parse_u64(dash + 1, &b) || b > 65535 || b < a))
		return -1;
	*lo = (uint16_t)a;
	*hi = (uint16_t)b;
	return 0;
}

int
nf_filter_parse(const char *s, struct nf_filter *f, char *err, size_t errlen)
{
	char buf[256];
	char *save = NULL, *tok;

	memset(f, 0, sizeof(*f));
	f->sport_hi = f->dport_hi = 65535;
	f->proto = -1;
	if (!*s || !strcmp(s, "*") || !strcmp(s, "any")) {
		f->any = true;
		return 0;
	}
	if (!strcmp(s, "none")) {
		f->none = true;
		return 0;
	}
	if (strlen(s) >= sizeof(buf)) {
		snprintf(err, errlen, "filter too long");
		return -1;
	}
	strcpy(buf, s);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		const char *k = tok, *v;

		if (!eq) {
			snprintf(err, errlen, "'%s' is not KEY=VALUE", tok);
			return -1;
		}
		*eq = '\0';
		v = eq + 1;
		if (!strcmp(k, "src")) {
			if (nf_parse_prefix(v, &f->src, &f->src_mask))
				goto badval;
		} else if (!strcmp(k, "dst")) {
			if (nf_parse_prefix(v, &f->dst, &f->dst_mask))
				goto badval;
		} else if (!strcmp(k, "sport")) {
			if (parse_range(v, &f->sport_lo, &f->sport_hi))
				goto badval;
		} else if (!strcmp(k, "dport")) {
			if (parse_range(v, &f->dport_lo, &f->dport_hi))
				goto badval;
		} else if (!strcmp(k, "proto")) {
			if ((f->proto = nf_parse_proto(v)) < 0)
				goto badval;
		} else {
			snprintf(err, errlen, "unknown key '%s' (src, dst, sport, dport, proto)", k);
			return -1;
		}
		continue;
badval:
		snprintf(err, errlen, "bad value '%s' for %s", v, k);
		return -1;
	}
	return 0;
}

bool
nf_filter_match(const struct nf_filter *f, const struct nf_tuple *t)
{
	if (f->any)
		return true;
	if (f->none || !t->is_ip)
		return false;
	if ((t->src & f->src_mask) != f->src || (t->dst & f->dst_mask) != f->dst)
		return false;
	if (f->proto >= 0 && t->proto != f->proto)
		return false;
	if (t->sport < f->sport_lo || t->sport > f->sport_hi)
		return false;
	return t->dport >= f->dport_lo && t->dport <= f->dport_hi;
}

static int
parse_ports(const char *s, uint16_t *ports, unsigned int *n)
{
	char buf[128];
	char *save = NULL, *tok;
	uint64_t v;

	if (strlen(s) >= sizeof(buf))
		return -1;
	strcpy(buf, s);
	*n = 0;
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (nf_parse_u64(tok, &v) || v >= RTE_MAX_ETHPORTS || *n >= NF_MAX_PORTS)
			return -1;
		ports[(*n)++] = (uint16_t)v;
	}
	return *n ? 0 : -1;
}

/* "A:B[:C[:REST]]": split into at most `max` fields; the last takes the rest. */
static int
split_fields(char *s, char **f, int max)
{
	int n = 0;

	while (n < max - 1) {
		char *c = strchr(s, ':');

		f[n++] = s;
		if (!c)
			return n;
		*c = '\0';
		s = c + 1;
	}
	f[n++] = s;
	return n;
}

static void
add_fault(struct nf_common *o, const char *opt, const char *arg, enum nf_fault_kind kind)
{
	char buf[256], err[128];
	char *fld[4];
	struct nf_fault *f;
	int n;

	if (o->n_faults >= NF_MAX_FAULTS)
		bad(o, opt, arg, "too many faults");
	if (strlen(arg) >= sizeof(buf))
		bad(o, opt, arg, "too long");
	strcpy(buf, arg);
	n = split_fields(buf, fld, 4);
	f = &o->faults[o->n_faults];
	memset(f, 0, sizeof(*f));
	f->kind = kind;
	if (n < 2 || nf_parse_u64(fld[0], &f->at_us) || nf_parse_u64(fld[1], &f->dur_us))
		bad(o, opt, arg, kind == NF_FAULT_STALL ? "expected AT_US:DUR_US" :
			"expected AT_US:DUR_US:FACTOR[:FILTER]");
	if (kind == NF_FAULT_STALL) {
		if (n != 2)
			bad(o, opt, arg, "expected AT_US:DUR_US");
		f->filter.any = true;
	} else {
		if (n < 3 || nf_parse_double(fld[2], &f->factor) || f->factor <= 0 ||
				f->factor > 1e6)
			bad(o, opt, arg, "FACTOR must be a number > 0");
		snprintf(f->filter_text, sizeof(f->filter_text), "%s", n == 4 ? fld[3] : "*");
		if (nf_filter_parse(f->filter_text, &f->filter, err, sizeof(err)))
			bad(o, opt, arg, err);
	}
	o->n_faults++;
}

static void
add_link(struct nf_common *o, const char *arg)
{
	char buf[256], err[128];
	char *fld[3];
	struct nf_link *l;
	uint64_t port;
	int n;

	if (o->n_links >= NF_MAX_LINKS)
		bad(o, "out", arg, "too many links");
	if (strlen(arg) >= sizeof(buf))
		bad(o, "out", arg, "too long");
	strcpy(buf, arg);
	n = split_fields(buf, fld, 3);
	if (n < 2 || !*fld[0] || strlen(fld[0]) >= sizeof(l->name))
		bad(o, "out", arg, "expected NAME:PORT[:FILTER]");
	if (nf_parse_u64(fld[1], &port) || port >= RTE_MAX_ETHPORTS)
		bad(o, "out", arg, "bad port number");
	if (nf_link_by_name(o, fld[0]) >= 0)
		bad(o, "out", arg, "duplicate link name");
	l = &o->links[o->n_links];
	memset(l, 0, sizeof(*l));
	strcpy(l->name, fld[0]);
	l->port = (uint16_t)port;
	if (n == 3) {
		if (nf_filter_parse(fld[2], &l->filter, err, sizeof(err)))
			bad(o, "out", arg, err);
		l->has_filter = !l->filter.any;
	}
	o->n_links++;
}

int
nf_common_opt(struct nf_common *o, int c, const char *arg)
{
	uint64_t v;
	double d;

	switch (c) {
	case OPT_BURST:
		if (nf_parse_u64(arg, &v) || v < 1 || v > 512)
			bad(o, "rx-burst", arg, "expected 1..512");
		o->burst = (unsigned int)v;
		return 1;
	case OPT_IN:
		if (parse_ports(arg, o->in_ports, &o->n_in))
			bad(o, "in", arg, "expected a comma-separated list of port numbers");
		return 1;
	case OPT_LINK_WAIT:
		if (nf_parse_u64(arg, &v) || v > 3600000)
			bad(o, "link-wait-ms", arg, "expected milliseconds");
		o->link_wait_ms = (unsigned int)v;
		return 1;
	case OPT_NAME:
		if (!*arg || strlen(arg) >= sizeof(o->name))
			bad(o, "name", arg, "expected 1..63 characters");
		strcpy(o->name, arg);
		return 1;
	case OPT_OUT:
		add_link(o, arg);
		return 1;
	case OPT_QUIET:
		o->quiet = true;
		return 1;
	case OPT_RATE:
		if (nf_parse_double(arg, &d) || d <= 0 || d > 1000)
			bad(o, "rate-mpps", arg, "expected a rate in Mpps, > 0");
		o->work_ns = 1e3 / d;
		return 1;
	case OPT_READY:
		o->ready_path = arg;
		return 1;
	case OPT_RING:
		if (nf_parse_u64(arg, &v) || v < 32 || v > 32768)
			bad(o, "ring-size", arg, "expected 32..32768");
		o->nb_rxd = o->nb_txd = (unsigned int)v;
		return 1;
	case OPT_SLOW:
		add_fault(o, "slow", arg, NF_FAULT_SLOW);
		return 1;
	case OPT_STALL:
		add_fault(o, "stall", arg, NF_FAULT_STALL);
		return 1;
	case OPT_STATS:
		o->stats_path = arg;
		return 1;
	case OPT_T0:
		if (nf_parse_u64(arg, &v) || v == 0 || v > INT64_MAX)
			bad(o, "t0", arg, "expected CLOCK_REALTIME nanoseconds");
		o->t0_ns = (int64_t)v;
		return 1;
	case OPT_T0_FILE:
		o->t0_path = arg;
		return 1;
	case OPT_TRUTH:
		o->truth_path = arg;
		return 1;
	case OPT_WORK_SLEEP:
		o->work_sleep = true;
		return 1;
	case OPT_WORK_NS:
		if (nf_parse_double(arg, &d) || d < 0 || d > 1e9)
			bad(o, "work-ns", arg, "expected nanoseconds >= 0");
		o->work_ns = d;
		return 1;
	case OPT_YIELD:
		o->yield = true;
		o->yield_us = 0;
		if (arg) {
			if (nf_parse_u64(arg, &v) || v > 100000)
				bad(o, "yield", arg, "expected microseconds");
			o->yield_us = (unsigned int)v;
		}
		return 1;
	}
	return 0;
}

/* ---------------------------------------------------------------- EAL, ports */

static void
on_signal(int sig)
{
	(void)sig;
	quit_flag = 1;
}

bool
nf_quit(void)
{
	return quit_flag != 0;
}

int
nf_eal_init(int argc, char **argv)
{
	struct sigaction sa;
	int ret;

	ret = rte_eal_init(argc, argv);
	if (ret < 0)
		rte_exit(EXIT_FAILURE, "cannot initialise EAL: %s\n", rte_strerror(rte_errno));
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: a stall's sleep must end at once on SIGINT. */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	/* Short idle sleeps should not be stretched by the default 50 us slack. */
	prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
	optind = 1;
	return ret;
}

static bool
is_input(const struct nf_common *o, uint16_t port)
{
	for (unsigned int i = 0; i < o->n_in; i++)
		if (o->in_ports[i] == port)
			return true;
	return false;
}

/* Output-only ports get no rx queue (nothing to poll, and a collector then
 * records no empty input node for them); input-only ports still get a tx
 * queue, which some drivers require. */
static int
port_init(uint16_t port, struct rte_mempool *pool, uint16_t nb_rxd, uint16_t nb_txd, bool rx)
{
	struct rte_eth_conf conf;
	struct rte_eth_dev_info info;
	struct rte_eth_txconf txconf;
	int ret;

	memset(&conf, 0, sizeof(conf));
	ret = rte_eth_dev_info_get(port, &info);
	if (ret != 0)
		return ret;
	if (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE)
		conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE;
	ret = rte_eth_dev_configure(port, rx ? 1 : 0, 1, &conf);
	if (ret != 0)
		return ret;
	ret = rte_eth_dev_adjust_nb_rx_tx_desc(port, &nb_rxd, &nb_txd);
	if (ret != 0)
		return ret;
	if (rx) {
		ret = rte_eth_rx_queue_setup(port, 0, nb_rxd, rte_eth_dev_socket_id(port), NULL,
			pool);
		if (ret < 0)
			return ret;
	}
	txconf = info.default_txconf;
	txconf.offloads = conf.txmode.offloads;
	ret = rte_eth_tx_queue_setup(port, 0, nb_txd, rte_eth_dev_socket_id(port), &txconf);
	if (ret < 0)
		return ret;
	ret = rte_eth_dev_start(port);
	if (ret < 0)
		return ret;
	/* Virtual ports may not support it; that is fine. */
	rte_eth_promiscuous_enable(port);
	return 0;
}

static void
write_ready(const struct nf_ctx *ctx)
{
	char tmp[4096];
	json_t *j;

	if (!ctx->opt->ready_path)
		return;
	snprintf(tmp, sizeof(tmp), "%s.tmp", ctx->opt->ready_path);
	j = json_pack("{s:s, s:i, s:i}", "nf", ctx->opt->name, "pid", (int)getpid(),
		"ports", (int)ctx->nb_ports);
	if (json_dump_file(j, tmp, JSON_COMPACT) != 0 || rename(tmp, ctx->opt->ready_path) != 0)
		rte_exit(EXIT_FAILURE, "cannot write ready file %s: %s\n",
			ctx->opt->ready_path, strerror(errno));
	json_decref(j);
}

static void
wait_links(struct nf_ctx *ctx)
{
	const struct nf_common *o = ctx->opt;
	uint64_t deadline = rte_get_tsc_cycles() + o->link_wait_ms * (ctx->tsc_hz / 1000);

	for (unsigned int i = 0; i < o->n_links; i++) {
		struct rte_eth_link link;

		for (;;) {
			memset(&link, 0, sizeof(link));
			if (rte_eth_link_get_nowait(o->links[i].port, &link) == 0 &&
					link.link_status == RTE_ETH_LINK_UP)
				break;
			if (nf_quit() || rte_get_tsc_cycles() > deadline)
				rte_exit(EXIT_FAILURE, "%s: output link %s (port %u) still down after %u ms\n",
					o->name, o->links[i].name, o->links[i].port, o->link_wait_ms);
			usleep(1000);
		}
	}
}

void
nf_setup(struct nf_ctx *ctx, struct nf_common *o, unsigned int nb_mbufs)
{
	uint16_t port;

	memset(ctx, 0, sizeof(*ctx));
	ctx->opt = o;
	ctx->tsc_hz = rte_get_tsc_hz();
	ctx->nb_ports = rte_eth_dev_count_avail();
	ctx->work_cycles = o->work_ns * (double)ctx->tsc_hz / 1e9;
	ctx->extra = json_object();
	if (ctx->nb_ports == 0)
		rte_exit(EXIT_FAILURE, "%s: no ports (give EAL --vdev devices)\n", o->name);
	if (ctx->nb_ports > NF_MAX_PORTS)
		rte_exit(EXIT_FAILURE, "%s: %u ports, at most %d supported\n", o->name,
			ctx->nb_ports, NF_MAX_PORTS);
	for (unsigned int i = 0; i < o->n_in; i++)
		if (!rte_eth_dev_is_valid_port(o->in_ports[i]))
			rte_exit(EXIT_FAILURE, "%s: --in port %u does not exist (%u ports)\n",
				o->name, o->in_ports[i], ctx->nb_ports);
	if (o->n_links == 0) {
		/* Default: every port that is not an input is an output. */
		RTE_ETH_FOREACH_DEV(port) {
			if (is_input(o, port) || o->n_links >= NF_MAX_LINKS)
				continue;
			snprintf(o->links[o->n_links].name, sizeof(o->links[0].name), "port%u", port);
			o->links[o->n_links].port = port;
			o->n_links++;
		}
	}
	for (unsigned int i = 0; i < o->n_links; i++) {
		if (!rte_eth_dev_is_valid_port(o->links[i].port))
			rte_exit(EXIT_FAILURE, "%s: --out %s: port %u does not exist (%u ports)\n",
				o->name, o->links[i].name, o->links[i].port, ctx->nb_ports);
		if (!o->links[i].has_filter)
			ctx->dflt[ctx->n_dflt++] = (uint16_t)i;
	}
	ctx->pool = rte_pktmbuf_pool_create("nf_pool", nb_mbufs, MBUF_CACHE, 0,
		RTE_MBUF_DEFAULT_BUF_SIZE, rte_socket_id());
	if (ctx->pool == NULL)
		rte_exit(EXIT_FAILURE, "%s: cannot create mbuf pool: %s\n", o->name,
			rte_strerror(rte_errno));
	RTE_ETH_FOREACH_DEV(port) {
		int ret = port_init(port, ctx->pool, (uint16_t)o->nb_rxd, (uint16_t)o->nb_txd,
			is_input(o, port));

		if (ret != 0)
			rte_exit(EXIT_FAILURE, "%s: cannot init port %u: %s\n", o->name, port,
				rte_strerror(-ret));
	}
	/*
	 * Fault in every page now (EAL memory, mbufs, rings): with --no-huge
	 * they come as 4 KiB pages on first touch, and the first ~200 ms of
	 * traffic would pay tens of thousands of page faults, queuing the
	 * packets far longer than the faults we want to diagnose. Best effort:
	 * without the privilege the NF just warms up on its own. Not under
	 * AddressSanitizer: its shadow memory is terabytes of reserved address
	 * space, and locking what it can made the sanitized NFs stall later.
	 */
#ifndef __SANITIZE_ADDRESS__
	(void)mlockall(MCL_CURRENT | MCL_FUTURE);
#endif
	wait_links(ctx);
	if (o->t0_ns) {
		ctx->t0_tsc = 0;
		nf_poll_t0(ctx);
	}
	write_ready(ctx);
	if (!o->quiet) {
		fprintf(stderr, "%s: %u ports, in:", o->name, ctx->nb_ports);
		for (unsigned int i = 0; i < o->n_in; i++)
			fprintf(stderr, " %u", o->in_ports[i]);
		fprintf(stderr, ", out:");
		for (unsigned int i = 0; i < o->n_links; i++)
			fprintf(stderr, " %s=%u%s", o->links[i].name, o->links[i].port,
				o->links[i].has_filter ? "(filter)" : "");
		if (o->work_ns > 0)
			fprintf(stderr, ", %.0f ns/packet (%.3f Mpps peak)", o->work_ns,
				1e3 / o->work_ns);
		fprintf(stderr, "\n");
	}
}

/* ---------------------------------------------------------------- packets */

void
nf_parse(const struct rte_mbuf *m, struct nf_pkt *p)
{
	const uint8_t *d = rte_pktmbuf_mtod(m, const uint8_t *);
	uint32_t len = rte_pktmbuf_data_len(m);
	uint32_t off = sizeof(struct rte_ether_hdr);
	const struct rte_ipv4_hdr *ip;
	uint16_t etype;
	uint32_t ihl;

	memset(p, 0, sizeof(*p));
	if (len < off)
		return;
	etype = (uint16_t)(d[12] << 8 | d[13]);
	while ((etype == RTE_ETHER_TYPE_VLAN || etype == RTE_ETHER_TYPE_QINQ) && len >= off + 4) {
		etype = (uint16_t)(d[off + 2] << 8 | d[off + 3]);
		off += 4;
	}
	if (etype != RTE_ETHER_TYPE_IPV4 || len < off + sizeof(*ip))
		return;
	ip = (const struct rte_ipv4_hdr *)(d + off);
	ihl = (uint32_t)(ip->version_ihl & 0xf) * 4;
	if ((ip->version_ihl >> 4) != 4 || ihl < sizeof(*ip) || len < off + ihl)
		return;
	p->t.is_ip = 1;
	p->t.src = rte_be_to_cpu_32(ip->src_addr);
	p->t.dst = rte_be_to_cpu_32(ip->dst_addr);
	p->t.proto = ip->next_proto_id;
	p->l3_off = (uint16_t)off;
	/* A later fragment carries no L4 header. */
	if (rte_be_to_cpu_16(ip->fragment_offset) & RTE_IPV4_HDR_OFFSET_MASK)
		return;
	p->l4_off = (uint16_t)(off + ihl);
	if ((ip->next_proto_id == IPPROTO_TCP || ip->next_proto_id == IPPROTO_UDP ||
			ip->next_proto_id == IPPROTO_SCTP) && len >= off + ihl + 4) {
		p->t.sport = (uint16_t)(d[off + ihl] << 8 | d[off + ihl + 1]);
		p->t.dport = (uint16_t)(d[off + ihl + 2] << 8 | d[off + ihl + 3]);
	}
}

uint32_t
nf_tuple_hash(const struct nf_tuple *t)
{
	return rte_jhash_3words(t->src, t->dst, (uint32_t)t->sport << 16 | t->dport,
		t->proto);
}

uint16_t
nf_route(const struct nf_ctx *ctx, const struct nf_tuple *t)
{
	const struct nf_common *o = ctx->opt;

	for (unsigned int i = 0; i < o->n_links; i++)
		if (o->links[i].has_filter && nf_filter_match(&o->links[i].filter, t))
			return (uint16_t)i;
	if (ctx->n_dflt == 0)
		return NF_DROP;
	if (ctx->n_dflt == 1)
		return ctx->dflt[0];
	return ctx->dflt[nf_tuple_hash(t) % ctx->n_dflt];
}

int
nf_link_by_name(const struct nf_common *o, const char *name)
{
	for (unsigned int i = 0; i < o->n_links; i++)
		if (!strcmp(o->links[i].name, name))
			return (int)i;
	return -1;
}

/* ---------------------------------------------------------------- time */

int64_t
nf_realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint64_t
tsc_at_realtime(const struct nf_ctx *ctx, int64_t ns)
{
	uint64_t tsc = rte_rdtsc();
	int64_t delta = ns - nf_realtime_ns();

	return (uint64_t)((int64_t)tsc + (int64_t)((double)delta * (double)ctx->tsc_hz / 1e9));
}

double
nf_now_us(const struct nf_ctx *ctx, uint64_t tsc)
{
	uint64_t base = ctx->opt->t0_ns ? ctx->t0_tsc : ctx->start_tsc;

	return ((double)tsc - (double)base) * 1e6 / (double)ctx->tsc_hz;
}

bool
nf_poll_t0(struct nf_ctx *ctx)
{
	struct nf_common *o = ctx->opt;

	if (o->t0_ns && ctx->t0_tsc)
		return true;
	if (!o->t0_ns && o->t0_path) {
		char buf[64];
		uint64_t v;
		ssize_t n;
		int fd = open(o->t0_path, O_RDONLY);

		if (fd < 0)
			return false;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0)
			return false;
		buf[n] = '\0';
		buf[strcspn(buf, " \t\r\n")] = '\0';
		if (nf_parse_u64(buf, &v) || v == 0 || v > INT64_MAX)
			return false;
		o->t0_ns = (int64_t)v;
	}
	if (!o->t0_ns)
		return false;
	ctx->t0_tsc = tsc_at_realtime(ctx, o->t0_ns);
	return true;
}

void
nf_spin_until(uint64_t until)
{
	while (rte_rdtsc() < until)
		rte_pause();
}

/* ---------------------------------------------------------------- truth */

void
nf_truth_event(const struct nf_ctx *ctx, json_t *ev)
{
	char *s;
	int fd;

	if (!ctx->opt->truth_path) {
		json_decref(ev);
		return;
	}
	json_object_set_new(ev, "nf", json_string(ctx->opt->name));
	json_object_set_new(ev, "program", json_string(ctx->opt->prog));
	json_object_set_new(ev, "pid", json_integer(getpid()));
	s = json_dumps(ev, JSON_COMPACT);
	json_decref(ev);
	if (!s)
		return;
	fd = open(ctx->opt->truth_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (fd >= 0) {
		/* One write per line: appends from several processes do not interleave. */
		size_t len = strlen(s);
		char *line = malloc(len + 2);

		if (line) {
			memcpy(line, s, len);
			line[len] = '\n';
			if (write(fd, line, len + 1) != (ssize_t)(len + 1))
				fprintf(stderr, "%s: short write to %s\n", ctx->opt->name,
					ctx->opt->truth_path);
			free(line);
		}
		close(fd);
	} else {
		fprintf(stderr, "%s: cannot open truth file %s: %s\n", ctx->opt->name,
			ctx->opt->truth_path, strerror(errno));
	}
	free(s);
}

static void
fault_truth(const struct nf_ctx *ctx, const struct nf_fault *f)
{
	json_t *ev = json_object();

	json_object_set_new(ev, "event", json_string("fault"));
	json_object_set_new(ev, "fault", json_string(f->kind == NF_FAULT_STALL ? "stall" : "slow"));
	json_object_set_new(ev, "at_us", json_integer((json_int_t)f->at_us));
	json_object_set_new(ev, "duration_us", json_integer((json_int_t)f->dur_us));
	if (f->kind == NF_FAULT_SLOW) {
		json_object_set_new(ev, "factor", json_real(f->factor));
		json_object_set_new(ev, "filter", json_string(f->filter_text));
		json_object_set_new(ev, "packets", json_integer((json_int_t)f->packets));
	}
	json_object_set_new(ev, "happened", json_boolean(f->state != 0));
	if (f->state != 0) {
		json_object_set_new(ev, "start_us", json_real(nf_now_us(ctx, f->start_tsc)));
		json_object_set_new(ev, "end_us", json_real(nf_now_us(ctx, f->end_tsc)));
		json_object_set_new(ev, "start_realtime_ns", json_integer(f->start_ns));
		json_object_set_new(ev, "end_realtime_ns", json_integer(f->end_ns));
		json_object_set_new(ev, "start_tsc", json_integer((json_int_t)f->start_tsc));
		json_object_set_new(ev, "end_tsc", json_integer((json_int_t)f->end_tsc));
	}
	json_object_set_new(ev, "t0_realtime_ns", json_integer(ctx->opt->t0_ns));
	json_object_set_new(ev, "tsc_hz", json_integer((json_int_t)ctx->tsc_hz));
	nf_truth_event(ctx, ev);
}

/* ---------------------------------------------------------------- loop */

struct fault_sched {
	uint64_t at_tsc[NF_MAX_FAULTS];
	uint64_t end_tsc[NF_MAX_FAULTS];
	uint64_t next_tsc;          /* earliest pending transition */
	bool armed;
	unsigned int n_slow_active;
};

static void
sched_next(struct nf_ctx *ctx, struct fault_sched *fs)
{
	fs->next_tsc = UINT64_MAX;
	for (unsigned int i = 0; i < ctx->opt->n_faults; i++) {
		const struct nf_fault *f = &ctx->opt->faults[i];

		if (f->state == 0 && fs->at_tsc[i] < fs->next_tsc)
			fs->next_tsc = fs->at_tsc[i];
		else if (f->state == 1 && fs->end_tsc[i] < fs->next_tsc)
			fs->next_tsc = fs->end_tsc[i];
	}
}

static void
arm_faults(struct nf_ctx *ctx, struct fault_sched *fs)
{
	uint64_t base = ctx->opt->t0_ns ? ctx->t0_tsc : ctx->start_tsc;
	double cyc_us = (double)ctx->tsc_hz / 1e6;

	for (unsigned int i = 0; i < ctx->opt->n_faults; i++) {
		const struct nf_fault *f = &ctx->opt->faults[i];

		fs->at_tsc[i] = base + (uint64_t)((double)f->at_us * cyc_us);
		fs->end_tsc[i] = fs->at_tsc[i] + (uint64_t)((double)f->dur_us * cyc_us);
	}
	fs->armed = true;
	sched_next(ctx, fs);
}

/* Stop polling: sleep (the CPU is free for others, as with a preempted NF). */
static void
do_stall(struct nf_ctx *ctx, struct nf_fault *f)
{
	uint64_t end;
	uint64_t spin_cycles = ctx->tsc_hz / 20000; /* last 50 us spun for precision */

	f->state = 1;
	f->start_tsc = rte_rdtsc();
	f->start_ns = nf_realtime_ns();
	end = f->start_tsc + (uint64_t)((double)f->dur_us * (double)ctx->tsc_hz / 1e6);
	while (!nf_quit()) {
		uint64_t now = rte_rdtsc();

		if (now >= end)
			break;
		if (end - now > spin_cycles) {
			uint64_t ns = (end - now - spin_cycles) * 1000000000ULL / ctx->tsc_hz;
			struct timespec ts;

			if (ns > 10000000)
				ns = 10000000;
			ts.tv_sec = 0;
			ts.tv_nsec = (long)ns;
			nanosleep(&ts, NULL);
		} else {
			rte_pause();
		}
	}
	f->end_tsc = rte_rdtsc();
	f->end_ns = nf_realtime_ns();
	f->state = 2;
	NF_LOG(ctx, "stall %.0f us at %.0f us", (double)(f->end_tsc - f->start_tsc) * 1e6 /
		(double)ctx->tsc_hz, nf_now_us(ctx, f->start_tsc));
	fault_truth(ctx, f);
}

static void
fault_transitions(struct nf_ctx *ctx, struct fault_sched *fs, uint64_t now)
{
	for (unsigned int i = 0; i < ctx->opt->n_faults; i++) {
		struct nf_fault *f = &ctx->opt->faults[i];

		if (f->state == 0 && now >= fs->at_tsc[i]) {
			if (f->kind == NF_FAULT_STALL) {
				do_stall(ctx, f);
				now = rte_rdtsc();
				continue;
			}
			f->state = 1;
			f->start_tsc = now;
			f->start_ns = nf_realtime_ns();
			fs->n_slow_active++;
		}
		if (f->state == 1 && f->kind == NF_FAULT_SLOW && now >= fs->end_tsc[i]) {
			f->state = 2;
			f->end_tsc = now;
			f->end_ns = nf_realtime_ns();
			fs->n_slow_active--;
			NF_LOG(ctx, "slow x%.2f for %s: %" PRIu64 " packets from %.0f to %.0f us",
				f->factor, f->filter_text, f->packets,
				nf_now_us(ctx, f->start_tsc), nf_now_us(ctx, f->end_tsc));
			fault_truth(ctx, f);
		}
	}
	sched_next(ctx, fs);
}

/* Service units of a burst: 1 per packet, `factor` for packets a slow
 * fault matches (as they arrived, before the NF rewrites them). */
static double
burst_units(struct nf_ctx *ctx, const struct fault_sched *fs, const struct nf_pkt *meta,
		uint16_t n)
{
	double units = 0;

	if (!fs->n_slow_active)
		return n;
	for (uint16_t i = 0; i < n; i++) {
		double k = 1;

		for (unsigned int j = 0; j < ctx->opt->n_faults; j++) {
			struct nf_fault *f = &ctx->opt->faults[j];

			if (f->kind == NF_FAULT_SLOW && f->state == 1 &&
					nf_filter_match(&f->filter, &meta[i].t)) {
				k *= f->factor;
				f->packets++;
			}
		}
		units += k;
	}
	return units;
}

/* Wait until `until`: a busy loop, or with --work-sleep a sleep for all but
 * the last WORK_SPIN_US (a sleeping server keeps its rate on a crowded CPU). */
#define WORK_SLEEP_MIN_US 1000
#define WORK_SPIN_US 200
static void
work_until(const struct nf_ctx *ctx, uint64_t until)
{
	if (ctx->opt->work_sleep) {
		uint64_t now = rte_rdtsc(), us = ctx->tsc_hz / 1000000;

		if (until > now && until - now > WORK_SLEEP_MIN_US * us) {
			struct timespec ts = { 0, 0 };
			uint64_t ns = (until - now - WORK_SPIN_US * us) * 1000 / us;

			ts.tv_sec = (time_t)(ns / 1000000000);
			ts.tv_nsec = (long)(ns % 1000000000);
			nanosleep(&ts, NULL);
		}
	}
	nf_spin_until(until);
}

/* The burst's service time: units * work_cycles from the rx. With no work
 * configured a slowed burst stretches its own measured time. */
static void
apply_work(const struct nf_ctx *ctx, double units, uint16_t n, uint64_t t_begin)
{
	if (ctx->work_cycles > 0) {
		work_until(ctx, t_begin + (uint64_t)(units * ctx->work_cycles) +
			ctx->burst_extra_cycles);
		return;
	} else if (units != n) {
		uint64_t spent = rte_rdtsc() - t_begin;

		work_until(ctx, t_begin + (uint64_t)((double)spent * units / n));
	}
	if (ctx->burst_extra_cycles)
		work_until(ctx, rte_rdtsc() + ctx->burst_extra_cycles);
}

/* After this many empty polls in a row (several ms without traffic) the
 * idle sleep grows tenfold (at most IDLE_LONG_MAX_US): idle NFs then cost a
 * few percent of a CPU instead of ~20%, and the first packet after the lull
 * waits at most that long. */
#define IDLE_LONG_AFTER 256
#define IDLE_LONG_MAX_US 250

static void
idle(const struct nf_common *o, unsigned int empty)
{
	unsigned int us = o->yield_us;

	if (!o->yield)
		return;
	if (us == 0) {
		sched_yield();
		return;
	}
	if (empty >= IDLE_LONG_AFTER)
		us = us * 10 < IDLE_LONG_MAX_US ? us * 10 : (us > IDLE_LONG_MAX_US ? us : IDLE_LONG_MAX_US);
	{
		struct timespec ts = { 0, (long)us * 1000 };

		nanosleep(&ts, NULL);
	}
}

void
nf_loop(struct nf_ctx *ctx,
		void (*fn)(struct nf_ctx *ctx, struct rte_mbuf **pkts,
			struct nf_pkt *meta, uint16_t n, uint16_t *out, void *arg),
		void *arg)
{
	const struct nf_common *o = ctx->opt;
	struct rte_mbuf *pkts[512];
	struct nf_pkt meta[512];
	uint16_t out[512];
	struct rte_mbuf *txb[NF_MAX_LINKS][512];
	uint32_t txlen[NF_MAX_LINKS][512];
	uint16_t ntx[NF_MAX_LINKS];
	struct fault_sched fs;
	uint64_t next_t0_poll = 0;
	unsigned int empty = 0;
	struct timespec cpu0, cpu1;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu0);
	memset(&fs, 0, sizeof(fs));
	fs.next_tsc = UINT64_MAX;   /* nothing happens before the faults are armed */
	ctx->start_tsc = rte_rdtsc();
	if (!o->t0_ns && !o->t0_path)
		arm_faults(ctx, &fs);

	while (!nf_quit()) {
		uint64_t now = rte_rdtsc();
		bool busy = false;

		if (!fs.armed && now >= next_t0_poll) {
			next_t0_poll = now + ctx->tsc_hz / 1000 * T0_POLL_MS;
			if (nf_poll_t0(ctx))
				arm_faults(ctx, &fs);
		}
		if (now >= fs.next_tsc)
			fault_transitions(ctx, &fs, now);

		for (unsigned int p = 0; p < o->n_in; p++) {
			uint16_t port = o->in_ports[p];
			uint16_t n = rte_eth_rx_burst(port, 0, pkts, (uint16_t)o->burst);
			uint64_t t_begin;
			double units;

			if (n == 0)
				continue;
			busy = true;
			t_begin = rte_rdtsc();
			ctx->port[port].rx += n;
			for (uint16_t i = 0; i < n; i++) {
				ctx->port[port].rx_bytes += rte_pktmbuf_pkt_len(pkts[i]);
				nf_parse(pkts[i], &meta[i]);
				out[i] = NF_DEFAULT_OUT;
			}
			units = burst_units(ctx, &fs, meta, n);
			ctx->burst_extra_cycles = 0;
			if (fn)
				fn(ctx, pkts, meta, n, out, arg);
			apply_work(ctx, units, n, t_begin);

			memset(ntx, 0, sizeof(ntx[0]) * o->n_links);
			for (uint16_t i = 0; i < n; i++) {
				uint16_t l = out[i];

				if (l == NF_DEFAULT_OUT)
					l = nf_route(ctx, &meta[i].t);
				if (l == NF_DROP || l >= o->n_links) {
					rte_pktmbuf_free(pkts[i]);
					ctx->dropped_nf++;
					continue;
				}
				/* Lengths now: a sent mbuf belongs to the driver. */
				txlen[l][ntx[l]] = rte_pktmbuf_pkt_len(pkts[i]);
				txb[l][ntx[l]++] = pkts[i];
			}
			for (unsigned int l = 0; l < o->n_links; l++) {
				uint16_t sent, tp = o->links[l].port;

				if (ntx[l] == 0)
					continue;
				sent = rte_eth_tx_burst(tp, 0, txb[l], ntx[l]);
				ctx->port[tp].tx += sent;
				for (uint16_t i = 0; i < sent; i++)
					ctx->port[tp].tx_bytes += txlen[l][i];
				if (sent < ntx[l]) {
					ctx->port[tp].tx_refused += ntx[l] - sent;
					rte_pktmbuf_free_bulk(&txb[l][sent], ntx[l] - sent);
				}
			}
		}
		empty = busy ? 0 : empty + 1;
		if (!busy)
			idle(o, empty);
	}
	ctx->end_tsc = rte_rdtsc();
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu1);
	ctx->loop_cpu_s = (double)(cpu1.tv_sec - cpu0.tv_sec) +
		(double)(cpu1.tv_nsec - cpu0.tv_nsec) / 1e9;
}

/* ---------------------------------------------------------------- teardown */

static void
write_stats(struct nf_ctx *ctx)
{
	const struct nf_common *o = ctx->opt;
	json_t *j = json_object(), *ports = json_array();
	uint64_t rx = 0, tx = 0, refused = 0;
	uint16_t port;

	RTE_ETH_FOREACH_DEV(port) {
		char name[RTE_ETH_NAME_MAX_LEN] = "";
		const struct nf_port_stats *s = &ctx->port[port];
		bool out = false;

		for (unsigned int i = 0; i < o->n_links; i++)
			out |= o->links[i].port == port;
		rte_eth_dev_get_name_by_port(port, name);
		json_array_append_new(ports, json_pack("{s:i, s:s, s:s, s:I, s:I, s:I, s:I, s:I}",
			"port", (int)port, "name", name,
			"role", is_input(o, port) ? "in" : out ? "out" : "unused",
			"rx", (json_int_t)s->rx, "tx", (json_int_t)s->tx,
			"tx_refused", (json_int_t)s->tx_refused,
			"rx_bytes", (json_int_t)s->rx_bytes, "tx_bytes", (json_int_t)s->tx_bytes));
		rx += s->rx;
		tx += s->tx;
		refused += s->tx_refused;
	}
	json_object_set_new(j, "nf", json_string(o->name));
	json_object_set_new(j, "program", json_string(o->prog));
	json_object_set_new(j, "pid", json_integer(getpid()));
	json_object_set_new(j, "rx", json_integer((json_int_t)rx));
	json_object_set_new(j, "tx", json_integer((json_int_t)tx));
	json_object_set_new(j, "tx_refused", json_integer((json_int_t)refused));
	json_object_set_new(j, "dropped_nf", json_integer((json_int_t)ctx->dropped_nf));
	json_object_set_new(j, "ports", ports);
	if (ctx->end_tsc > ctx->start_tsc) {
		struct rusage ru;

		json_object_set_new(j, "loop_seconds", json_real((double)(ctx->end_tsc -
			ctx->start_tsc) / (double)ctx->tsc_hz));
		json_object_set_new(j, "loop_cpu_seconds", json_real(ctx->loop_cpu_s));
		/* all threads: the data path, EAL's and a preloaded collector's */
		if (getrusage(RUSAGE_SELF, &ru) == 0)
			json_object_set_new(j, "process_cpu_seconds", json_real(
				(double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
				(double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6));
	}
	json_object_update(j, ctx->extra);
	if (!o->quiet)
		fprintf(stderr, "%s: rx %" PRIu64 " tx %" PRIu64 " tx_refused %" PRIu64
			" dropped %" PRIu64 "\n", o->name, rx, tx, refused, ctx->dropped_nf);
	if (o->stats_path && json_dump_file(j, o->stats_path, JSON_INDENT(2)) != 0)
		fprintf(stderr, "%s: cannot write %s\n", o->name, o->stats_path);
	json_decref(j);
}

void
nf_teardown(struct nf_ctx *ctx)
{
	uint16_t port;

	/* Report faults that were cut short or never came. */
	for (unsigned int i = 0; i < ctx->opt->n_faults; i++) {
		struct nf_fault *f = &ctx->opt->faults[i];

		if (f->state == 1) {
			f->end_tsc = rte_rdtsc();
			f->end_ns = nf_realtime_ns();
		}
		if (f->state != 2)
			fault_truth(ctx, f);
	}
	write_stats(ctx);
	RTE_ETH_FOREACH_DEV(port) {
		rte_eth_dev_stop(port);
		rte_eth_dev_close(port);
	}
	/* Closing a memif port leaves its socket to be freed by the interrupt
	 * thread (a deferred callback); rte_eal_cleanup() at once would free the
	 * heap under it (seen as a crash in rte_free). Give it time to run. */
	usleep(100000);
	json_decref(ctx->extra);
	ctx->extra = NULL;
	rte_eal_cleanup();
}
