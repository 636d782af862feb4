/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mscope-source: a DPDK traffic source. Replays a capture (libpcap: real
 * 5-tuples and sizes, at the capture's own timing, rescaled to a target rate,
 * or evenly paced; looped) or generates synthetic flows (heavy-tailed flow
 * sizes, mostly TCP, Poisson / constant / on-off arrivals: the same model as
 * `mscope sim`), and injects bursts of given flows. Packets leave only through
 * rte_eth_tx_burst, so a collector preloaded here records when each packet
 * entered the first NF's queue.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pcap/pcap.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_tcp.h>
#include <rte_udp.h>

#include "common.h"

#define NB_MBUFS 16383
#define MAX_BURSTS 16
#define MIN_FRAME 60
#define SLEEP_MARGIN_US 15

enum timing { TIMING_PCAP, TIMING_CBR, TIMING_POISSON, TIMING_ONOFF };

struct frame {
	uint32_t off;               /* into pcap_data */
	uint16_t caplen;            /* bytes stored */
	uint16_t len;               /* bytes sent (zero padded past caplen) */
	double t_ns;                /* capture time from the first packet */
};

struct syn_flow {
	struct nf_tuple t;
	uint16_t ipid;
	uint32_t seq, ack;
};

struct burst {
	uint64_t at_us, dur_us;
	double rate_mpps;
	struct syn_flow flow;
	uint16_t size;
	char text[160];
	/* running */
	uint64_t at_tsc, end_tsc;
	uint64_t idx, sent, refused;
	uint64_t first_tsc, last_tsc;
};

struct src {
	const char *pcap_path;
	uint32_t n_syn_flows;
	double rate_mpps;           /* 0: capture timing as is */
	bool rate_set;
	enum timing timing;
	bool timing_set;
	double speed;
	double on_us, off_us;
	double alpha, udp_share;
	uint16_t size;              /* synthetic fixed size, 0 = realistic mix */
	uint64_t duration_ms;
	uint64_t count;             /* 0: unlimited */
	bool once;
	bool exit_when_done;
	uint16_t max_frame;
	unsigned int tx_batch;
	uint64_t seed;
	struct burst bursts[MAX_BURSTS];
	unsigned int n_bursts;

	/* capture */
	uint8_t *pcap_data;
	struct frame *frames;
	uint32_t n_frames;
	double period_ns;           /* one pass of the capture, for looping */
	double scale;               /* capture ns -> run ns */
	uint64_t skipped;
	/* synthetic */
	struct syn_flow *flows;
	double *cum;
	uint64_t rng;
	double on_end_ns;
	double on_rate;
	/* background stream */
	uint64_t bg_idx;
	double bg_t_ns;
	uint64_t bg_next_tsc;
	bool bg_done;
	/* counters */
	uint64_t sent, refused, alloc_fail;
	uint64_t first_tsc, last_tsc;
};

enum {
	OPT_ALPHA = 2000, OPT_BURST, OPT_COUNT, OPT_DURATION, OPT_EXIT, OPT_MAX_FRAME, OPT_OFF,
	OPT_ON, OPT_ONCE, OPT_PCAP, OPT_SRATE, OPT_SEED, OPT_SIZE, OPT_SPEED, OPT_SYNTH,
	OPT_TIMING, OPT_TX_BATCH, OPT_UDP_SHARE,
};

/* --rate-mpps is a common option (the NFs' peak rate); the source reads it
 * as its send rate, so it is handled here first. */
static const struct option src_opts[] = {
	{ "alpha", required_argument, NULL, OPT_ALPHA },
	{ "burst", required_argument, NULL, OPT_BURST },
	{ "count", required_argument, NULL, OPT_COUNT },
	{ "duration-ms", required_argument, NULL, OPT_DURATION },
	{ "exit-when-done", no_argument, NULL, OPT_EXIT },
	{ "max-frame", required_argument, NULL, OPT_MAX_FRAME },
	{ "off-us", required_argument, NULL, OPT_OFF },
	{ "on-us", required_argument, NULL, OPT_ON },
	{ "once", no_argument, NULL, OPT_ONCE },
	{ "pcap", required_argument, NULL, OPT_PCAP },
	{ "seed", required_argument, NULL, OPT_SEED },
	{ "size", required_argument, NULL, OPT_SIZE },
	{ "speed", required_argument, NULL, OPT_SPEED },
	{ "synthetic", required_argument, NULL, OPT_SYNTH },
	{ "timing", required_argument, NULL, OPT_TIMING },
	{ "tx-batch", required_argument, NULL, OPT_TX_BATCH },
	{ "udp-share", required_argument, NULL, OPT_UDP_SHARE },
	{ NULL, 0, NULL, 0 },
};

static void
usage(FILE *f)
{
	fprintf(f, "usage: mscope-source [EAL options] -- (--pcap FILE | --synthetic N) [options]\n\n"
		"A DPDK traffic source: replays a capture or synthetic flows on its ports.\n\n"
		"Traffic:\n"
		"  --pcap FILE                replay a capture (pcap or pcapng; Ethernet, Linux\n"
		"                             cooked or raw IP), looped\n"
		"  --synthetic N              N synthetic flows: clients 10.0.0.0/8, servers\n"
		"                             172.16.0.0/12, mostly TCP, heavy-tailed sizes\n"
		"  --rate-mpps R              average rate (default: capture timing for --pcap,\n"
		"                             0.02 for --synthetic)\n"
		"  --timing pcap|cbr|poisson|onoff\n"
		"                             pcap: the capture's own gaps (rescaled to R if given);\n"
		"                             cbr: evenly spaced; poisson: exponential gaps;\n"
		"                             onoff: Poisson within Pareto on/off periods\n"
		"                             (default: pcap for --pcap, poisson for --synthetic)\n"
		"  --speed X                  with capture timing and no rate: play X times faster\n"
		"  --on-us US, --off-us US    mean on / off period for onoff (default 1000, 1000)\n"
		"  --alpha A                  Pareto shape of flow weights (default 1.2)\n"
		"  --udp-share F              share of UDP flows (default 0.2)\n"
		"  --size N                   synthetic frame size (default: a realistic mix)\n"
		"  --duration-ms MS           send for MS milliseconds (default 1000)\n"
		"  --count N                  stop after N background packets\n"
		"  --once                     send the capture once, do not loop\n"
		"  --burst AT_US:DUR_US:RATE_MPPS:FLOW\n"
		"                             also send FLOW at RATE during [AT, AT+DUR] (repeatable)\n"
		"                             FLOW: src=A,dst=B,sport=P,dport=Q,proto=tcp|udp[,size=N]\n"
		"  --seed S                   random seed (default 1)\n"
		"  --max-frame N              truncate longer frames (default 1514)\n"
		"  --tx-batch N               packets per tx burst at most (default 32)\n"
		"  --exit-when-done           exit after sending instead of idling until SIGINT\n"
		"The source sends from t0 (--t0/--t0-file, else at once) on its output ports\n"
		"(all ports by default; --out NAME:PORT[:FILTER] as for the NFs).\n");
	nf_common_usage(f);
}

static int
parse_flow(const char *s, struct syn_flow *fl, uint16_t *size, char *err, size_t errlen)
{
	char buf[256];
	char *save = NULL, *tok;
	uint32_t mask;
	uint64_t v;
	int have = 0;

	memset(fl, 0, sizeof(*fl));
	fl->t.is_ip = 1;
	fl->t.proto = IPPROTO_UDP;
	if (strlen(s) >= sizeof(buf)) {
		snprintf(err, errlen, "flow too long");
		return -1;
	}
	strcpy(buf, s);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		int p;

		if (!eq) {
			snprintf(err, errlen, "'%s' is not KEY=VALUE", tok);
			return -1;
		}
		*eq++ = '\0';
		if (!strcmp(tok, "src") || !strcmp(tok, "dst")) {
			uint32_t *a = tok[0] == 's' ? &fl->t.src : &fl->t.dst;

			if (nf_parse_prefix(eq, a, &mask) || mask != UINT32_MAX)
				goto bad;
			have |= tok[0] == 's' ? 1 : 2;
		} else if (!strcmp(tok, "sport") || !strcmp(tok, "dport")) {
			if (nf_parse_u64(eq, &v) || v > 65535)
				goto bad;
			if (tok[0] == 's')
				fl->t.sport = (uint16_t)v;
			else
				fl->t.dport = (uint16_t)v;
		} else if (!strcmp(tok, "proto")) {
			p = nf_parse_proto(eq);
			if (p != IPPROTO_TCP && p != IPPROTO_UDP)
				goto bad;
			fl->t.proto = (uint8_t)p;
		} else if (!strcmp(tok, "size")) {
			if (nf_parse_u64(eq, &v) || v < MIN_FRAME || v > 9000)
				goto bad;
			*size = (uint16_t)v;
		} else {
			snprintf(err, errlen, "unknown key '%s' (src, dst, sport, dport, proto, size)",
				tok);
			return -1;
		}
		continue;
bad:
		snprintf(err, errlen, "bad value '%s' for %s", eq, tok);
		return -1;
	}
	if (have != 3) {
		snprintf(err, errlen, "src= and dst= are required");
		return -1;
	}
	return 0;
}

static int
own_opt(int c, const char *arg, void *st)
{
	struct src *s = st;
	char err[160];
	uint64_t v;
	double d;

	switch (c) {
	case OPT_ALPHA:
		if (nf_parse_double(arg, &d) || d <= 0 || d > 100)
			break;
		s->alpha = d;
		return 0;
	case OPT_BURST: {
		char buf[256], *fld[4], *p = buf;
		struct burst *b;
		int n = 0;

		if (s->n_bursts >= MAX_BURSTS || strlen(arg) >= sizeof(buf)) {
			snprintf(err, sizeof(err), "too many bursts or too long");
			goto badmsg;
		}
		strcpy(buf, arg);
		while (n < 3) {
			char *c2 = strchr(p, ':');

			if (!c2)
				break;
			*c2 = '\0';
			fld[n++] = p;
			p = c2 + 1;
		}
		fld[n++] = p;
		b = &s->bursts[s->n_bursts];
		memset(b, 0, sizeof(*b));
		b->size = 64;
		if (n != 4 || nf_parse_u64(fld[0], &b->at_us) || nf_parse_u64(fld[1], &b->dur_us) ||
				nf_parse_double(fld[2], &b->rate_mpps) || b->rate_mpps <= 0 ||
				b->rate_mpps > 1000) {
			snprintf(err, sizeof(err), "expected AT_US:DUR_US:RATE_MPPS:FLOW");
			goto badmsg;
		}
		if (parse_flow(fld[3], &b->flow, &b->size, err, sizeof(err)))
			goto badmsg;
		snprintf(b->text, sizeof(b->text), "%s", fld[3]);
		s->n_bursts++;
		return 0;
	}
	case OPT_COUNT:
		if (nf_parse_u64(arg, &v) || v == 0)
			break;
		s->count = v;
		return 0;
	case OPT_DURATION:
		if (nf_parse_u64(arg, &v) || v == 0 || v > 86400000)
			break;
		s->duration_ms = v;
		return 0;
	case OPT_EXIT:
		s->exit_when_done = true;
		return 0;
	case OPT_MAX_FRAME:
		if (nf_parse_u64(arg, &v) || v < MIN_FRAME || v > 9000)
			break;
		s->max_frame = (uint16_t)v;
		return 0;
	case OPT_OFF:
		if (nf_parse_double(arg, &d) || d <= 0)
			break;
		s->off_us = d;
		return 0;
	case OPT_ON:
		if (nf_parse_double(arg, &d) || d <= 0)
			break;
		s->on_us = d;
		return 0;
	case OPT_ONCE:
		s->once = true;
		return 0;
	case OPT_PCAP:
		s->pcap_path = arg;
		return 0;
	case OPT_SEED:
		if (nf_parse_u64(arg, &v))
			break;
		s->seed = v;
		return 0;
	case OPT_SIZE:
		if (nf_parse_u64(arg, &v) || v < MIN_FRAME || v > 9000)
			break;
		s->size = (uint16_t)v;
		return 0;
	case OPT_SPEED:
		if (nf_parse_double(arg, &d) || d <= 0)
			break;
		s->speed = d;
		return 0;
	case OPT_SYNTH:
		if (nf_parse_u64(arg, &v) || v == 0 || v > 10000000)
			break;
		s->n_syn_flows = (uint32_t)v;
		return 0;
	case OPT_TIMING:
		if (!strcmp(arg, "pcap"))
			s->timing = TIMING_PCAP;
		else if (!strcmp(arg, "cbr"))
			s->timing = TIMING_CBR;
		else if (!strcmp(arg, "poisson"))
			s->timing = TIMING_POISSON;
		else if (!strcmp(arg, "onoff"))
			s->timing = TIMING_ONOFF;
		else
			break;
		s->timing_set = true;
		return 0;
	case OPT_TX_BATCH:
		if (nf_parse_u64(arg, &v) || v == 0 || v > 512)
			break;
		s->tx_batch = (unsigned int)v;
		return 0;
	case OPT_UDP_SHARE:
		if (nf_parse_double(arg, &d) || d < 0 || d > 1)
			break;
		s->udp_share = d;
		return 0;
	default:
		return -1;
	}
	fprintf(stderr, "mscope-source: bad value '%s' for --%s\n", arg,
		src_opts[c - OPT_ALPHA].name);
	return -1;
badmsg:
	fprintf(stderr, "mscope-source: bad --burst '%s': %s\n", arg, err);
	return -1;
}

static volatile sig_atomic_t stop_sending;

/* SIGUSR1: stop sending, keep the ports open (the chain launcher's first
 * step when it stops a run). */
static void
on_usr1(int sig)
{
	(void)sig;
	stop_sending = 1;
}

/* ---------------------------------------------------------------- random */

static uint64_t
rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static double
rng_unit(uint64_t *s)
{
	return (double)(rng_next(s) >> 11) * 0x1.0p-53;
}

/* ---------------------------------------------------------------- capture */

static int
load_pcap(struct src *s)
{
	char errbuf[PCAP_ERRBUF_SIZE];
	struct pcap_pkthdr *h;
	const u_char *data;
	pcap_t *p = pcap_open_offline(s->pcap_path, errbuf);
	size_t cap = 0, used = 0, fcap = 0;
	double first = -1, last = 0;
	int dlt, rc;

	if (!p) {
		fprintf(stderr, "mscope-source: %s: %s\n", s->pcap_path, errbuf);
		return -1;
	}
	dlt = pcap_datalink(p);
	if (dlt != DLT_EN10MB && dlt != DLT_LINUX_SLL && dlt != DLT_RAW && dlt != DLT_NULL &&
			dlt != DLT_LOOP && dlt != DLT_IPV4) {
		fprintf(stderr, "mscope-source: %s: link type %s is not supported (Ethernet,"
			" Linux cooked, raw IP, BSD loopback)\n", s->pcap_path,
			pcap_datalink_val_to_name(dlt) ? pcap_datalink_val_to_name(dlt) : "?");
		pcap_close(p);
		return -1;
	}
	while ((rc = pcap_next_ex(p, &h, &data)) == 1) {
		uint8_t eth[14] = { 0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x00, 0x08, 0x00 };
		uint32_t hdr = 0, pre = 0, caplen = h->caplen, len = h->len;
		struct frame *fr;
		double t = (double)h->ts.tv_sec * 1e9 + (double)h->ts.tv_usec * 1e3;

		/* Convert to an Ethernet frame: drop the link header, prepend ours. */
		switch (dlt) {
		case DLT_LINUX_SLL:
			hdr = 16;
			if (caplen >= 16) {
				eth[12] = data[14];
				eth[13] = data[15];
			}
			pre = 14;
			break;
		case DLT_NULL:
		case DLT_LOOP:
			hdr = 4;
			pre = 14;
			break;
		case DLT_RAW:
		case DLT_IPV4:
			pre = 14;
			break;
		}
		if (pre && caplen > hdr) {
			uint8_t ver = data[hdr] >> 4;

			if (dlt != DLT_LINUX_SLL && ver == 6) {
				eth[12] = 0x86;
				eth[13] = 0xdd;
			}
		}
		if (caplen < hdr + (pre ? 1 : 14) || len < caplen) {
			s->skipped++;
			continue;
		}
		caplen = caplen - hdr + pre;
		len = len - hdr + pre;
		if (len > s->max_frame)
			len = s->max_frame;
		if (caplen > len)
			caplen = len;
		if (len < MIN_FRAME)
			len = MIN_FRAME;
		if (used + caplen > cap) {
			uint8_t *nd;

			cap = cap ? cap * 2 : 1 << 20;
			while (cap < used + caplen)
				cap *= 2;
			nd = realloc(s->pcap_data, cap);
			if (!nd)
				goto oom;
			s->pcap_data = nd;
		}
		if (s->n_frames == fcap) {
			struct frame *nf;

			fcap = fcap ? fcap * 2 : 4096;
			if (fcap > 50000000) {
				fprintf(stderr, "mscope-source: %s: more than 50 million packets\n",
					s->pcap_path);
				pcap_close(p);
				return -1;
			}
			nf = realloc(s->frames, fcap * sizeof(*nf));
			if (!nf)
				goto oom;
			s->frames = nf;
		}
		fr = &s->frames[s->n_frames++];
		fr->off = (uint32_t)used;
		fr->caplen = (uint16_t)caplen;
		fr->len = (uint16_t)len;
		if (pre)
			memcpy(s->pcap_data + used, eth, pre);
		memcpy(s->pcap_data + used + pre, data + hdr, caplen - pre);
		used += caplen;
		if (first < 0)
			first = t;
		/* Captures can go back in time; never schedule backwards. */
		fr->t_ns = t - first > last ? t - first : last;
		last = fr->t_ns;
	}
	if (rc == -1) {
		fprintf(stderr, "mscope-source: %s: %s\n", s->pcap_path, pcap_geterr(p));
		pcap_close(p);
		return -1;
	}
	pcap_close(p);
	if (s->n_frames == 0) {
		fprintf(stderr, "mscope-source: %s: no usable packets\n", s->pcap_path);
		return -1;
	}
	/* One pass lasts the capture plus one mean gap, so loops do not collide. */
	s->period_ns = last + (s->n_frames > 1 ? last / (s->n_frames - 1) : 1000);
	if (s->period_ns <= 0)
		s->period_ns = (double)s->n_frames * 1000;
	return 0;
oom:
	fprintf(stderr, "mscope-source: %s: out of memory\n", s->pcap_path);
	pcap_close(p);
	return -1;
}

/* ---------------------------------------------------------------- synthetic */

static const uint16_t tcp_ports[] = { 443, 443, 443, 443, 443, 443, 80, 80, 80, 80, 8080, 22 };
static const uint16_t udp_ports[] = { 53, 53, 53, 53, 443, 443, 123 };

static int
synth_init(struct src *s)
{
	uint32_t servers = 1 + s->n_syn_flows / 16;
	double total = 0;

	if (servers > 65536)
		servers = 65536;
	s->flows = calloc(s->n_syn_flows, sizeof(*s->flows));
	s->cum = calloc(s->n_syn_flows, sizeof(*s->cum));
	if (!s->flows || !s->cum) {
		fprintf(stderr, "mscope-source: out of memory for %u flows\n", s->n_syn_flows);
		return -1;
	}
	for (uint32_t i = 0; i < s->n_syn_flows; i++) {
		struct syn_flow *f = &s->flows[i];
		uint32_t c = (uint32_t)(rng_next(&s->rng) >> 40), sv;

		if ((c & 0xff) == 0 || (c & 0xff) == 255)
			c ^= 0x11;
		f->t.is_ip = 1;
		f->t.src = 10u << 24 | c;
		sv = (uint32_t)(rng_next(&s->rng) % servers);
		f->t.dst = 172u << 24 | (16 + (sv >> 16)) << 16 | ((sv >> 8) & 0xff) << 8 |
			(1 + (sv & 0xff) % 254);
		f->t.sport = (uint16_t)(32768 + rng_next(&s->rng) % 28232);
		if (rng_unit(&s->rng) < s->udp_share) {
			f->t.proto = IPPROTO_UDP;
			f->t.dport = udp_ports[rng_next(&s->rng) % RTE_DIM(udp_ports)];
		} else {
			f->t.proto = IPPROTO_TCP;
			f->t.dport = tcp_ports[rng_next(&s->rng) % RTE_DIM(tcp_ports)];
		}
		total += pow(1.0 - rng_unit(&s->rng), -1.0 / s->alpha);
		s->cum[i] = total;
		f->ipid = (uint16_t)rng_next(&s->rng);
		f->seq = (uint32_t)rng_next(&s->rng);
		f->ack = (uint32_t)rng_next(&s->rng);
	}
	return 0;
}

static uint16_t
synth_size(struct src *s, const struct nf_tuple *t)
{
	double u = rng_unit(&s->rng);

	if (s->size)
		return s->size;
	if (t->proto == IPPROTO_TCP) {
		if (u < 0.35)
			return 66;                  /* ACKs */
		if (u < 0.85)
			return 1514;
		return (uint16_t)(100 + rng_unit(&s->rng) * 1300);
	}
	if (t->dport == 53)
		return (uint16_t)(80 + u * 220);
	if (t->dport == 123)
		return 90;
	return (uint16_t)(1200 + u * 150);      /* QUIC */
}

/* Write an Ethernet/IPv4/TCP-or-UDP frame of `len` bytes with valid checksums. */
static void
build_frame(uint8_t *d, struct syn_flow *f, uint16_t len)
{
	struct rte_ether_hdr *eth = (struct rte_ether_hdr *)d;
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(eth + 1);
	uint8_t *l4 = (uint8_t *)(ip + 1);
	uint16_t l4_len = (uint16_t)(len - sizeof(*eth) - sizeof(*ip));
	static const struct rte_ether_addr dmac = {{ 0x02, 0, 0, 0, 0, 0x01 }};
	static const struct rte_ether_addr smac = {{ 0x02, 0, 0, 0, 0, 0x00 }};

	memset(d, 0, len);
	eth->dst_addr = dmac;
	eth->src_addr = smac;
	eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	ip->version_ihl = RTE_IPV4_VHL_DEF;
	ip->total_length = rte_cpu_to_be_16((uint16_t)(len - sizeof(*eth)));
	ip->packet_id = rte_cpu_to_be_16(f->ipid++);
	ip->fragment_offset = rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG);
	ip->time_to_live = 64;
	ip->next_proto_id = f->t.proto;
	ip->src_addr = rte_cpu_to_be_32(f->t.src);
	ip->dst_addr = rte_cpu_to_be_32(f->t.dst);
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	if (f->t.proto == IPPROTO_TCP && l4_len >= sizeof(struct rte_tcp_hdr)) {
		struct rte_tcp_hdr *t = (struct rte_tcp_hdr *)l4;

		t->src_port = rte_cpu_to_be_16(f->t.sport);
		t->dst_port = rte_cpu_to_be_16(f->t.dport);
		t->sent_seq = rte_cpu_to_be_32(f->seq);
		t->recv_ack = rte_cpu_to_be_32(f->ack);
		t->data_off = 5 << 4;
		t->tcp_flags = RTE_TCP_ACK_FLAG | (l4_len > 20 ? RTE_TCP_PSH_FLAG : 0);
		t->rx_win = rte_cpu_to_be_16(65535);
		t->cksum = rte_ipv4_udptcp_cksum(ip, t);
		f->seq += l4_len - sizeof(*t);
	} else if (f->t.proto == IPPROTO_UDP && l4_len >= sizeof(struct rte_udp_hdr)) {
		struct rte_udp_hdr *u = (struct rte_udp_hdr *)l4;

		u->src_port = rte_cpu_to_be_16(f->t.sport);
		u->dst_port = rte_cpu_to_be_16(f->t.dport);
		u->dgram_len = rte_cpu_to_be_16(l4_len);
		u->dgram_cksum = rte_ipv4_udptcp_cksum(ip, u);
	}
}

/* ---------------------------------------------------------------- schedule */

static double
pareto_period(uint64_t *rng, double mean_ns)
{
	const double a = 1.5;

	return mean_ns * (a - 1) / a * pow(1.0 - rng_unit(rng), -1.0 / a);
}

/* Run time (ns from t0) of background packet idx; advances the generator. */
static double
bg_time(struct src *s, uint64_t idx)
{
	double rate_per_ns = s->rate_mpps * 1e-3;

	switch (s->timing) {
	case TIMING_PCAP: {
		uint64_t loop = idx / s->n_frames;

		return ((double)loop * s->period_ns + s->frames[idx % s->n_frames].t_ns) * s->scale;
	}
	case TIMING_CBR:
		return (double)idx / rate_per_ns;
	case TIMING_POISSON:
		if (idx)
			s->bg_t_ns += -log(1.0 - rng_unit(&s->rng)) / rate_per_ns;
		return s->bg_t_ns;
	case TIMING_ONOFF:
		s->bg_t_ns += -log(1.0 - rng_unit(&s->rng)) / s->on_rate;
		while (s->bg_t_ns >= s->on_end_ns) {
			double over = s->bg_t_ns - s->on_end_ns;
			double off = pareto_period(&s->rng, s->off_us * 1e3);
			double on = pareto_period(&s->rng, s->on_us * 1e3);
			double start = s->on_end_ns + (idx || s->on_end_ns > 0 ? off : 0);

			s->on_end_ns = start + on;
			s->bg_t_ns = start + over;
		}
		return s->bg_t_ns;
	}
	return 0;
}

static void
bg_schedule(struct src *s, const struct nf_ctx *ctx)
{
	double t;

	if (s->bg_done)
		return;
	if ((s->count && s->bg_idx >= s->count) ||
			(s->once && s->pcap_path && s->bg_idx >= s->n_frames)) {
		s->bg_done = true;
		return;
	}
	t = bg_time(s, s->bg_idx);
	if (t >= (double)s->duration_ms * 1e6) {
		s->bg_done = true;
		return;
	}
	s->bg_next_tsc = ctx->t0_tsc + (uint64_t)(t * (double)ctx->tsc_hz / 1e9);
}

/* Fill m with background packet bg_idx. Returns 0, or -1 to skip it. */
static int
bg_packet(struct src *s, struct rte_mbuf *m)
{
	uint8_t *d;

	if (s->pcap_path) {
		const struct frame *fr = &s->frames[s->bg_idx % s->n_frames];
		uint64_t loop = s->bg_idx / s->n_frames;

		d = (uint8_t *)rte_pktmbuf_append(m, fr->len);
		if (!d)
			return -1;
		memcpy(d, s->pcap_data + fr->off, fr->caplen);
		if (fr->len > fr->caplen)
			memset(d + fr->caplen, 0, fr->len - fr->caplen);
		/* Later loops change the IPv4 ID so that replayed packets differ on
		 * the wire (and in wire ID) from their earlier copies, as in the simulator. */
		if (loop > 0 && fr->caplen >= 34 && d[12] == 0x08 && d[13] == 0x00 &&
				(d[14] >> 4) == 4) {
			struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(d + 14);
			uint32_t ihl = (uint32_t)(ip->version_ihl & 0xf) * 4;

			ip->packet_id = rte_cpu_to_be_16((uint16_t)(rte_be_to_cpu_16(ip->packet_id) +
				loop * 40503u));
			if (ihl >= 20 && 14 + ihl <= fr->caplen) {
				ip->hdr_checksum = 0;
				ip->hdr_checksum = rte_ipv4_cksum(ip);
			}
		}
		return 0;
	} else {
		double u = rng_unit(&s->rng) * s->cum[s->n_syn_flows - 1];
		uint32_t lo = 0, hi = s->n_syn_flows - 1;
		uint16_t len;

		while (lo < hi) {
			uint32_t mid = (lo + hi) / 2;

			if (s->cum[mid] > u)
				hi = mid;
			else
				lo = mid + 1;
		}
		len = synth_size(s, &s->flows[lo].t);
		d = (uint8_t *)rte_pktmbuf_append(m, len);
		if (!d)
			return -1;
		build_frame(d, &s->flows[lo], len);
		return 0;
	}
}

static void
burst_schedule(struct burst *b, const struct nf_ctx *ctx)
{
	b->at_tsc = ctx->t0_tsc + b->at_us * (ctx->tsc_hz / 1000000);
	b->end_tsc = b->at_tsc + b->dur_us * (ctx->tsc_hz / 1000000);
}

static uint64_t
burst_next(const struct burst *b, const struct nf_ctx *ctx)
{
	uint64_t t = b->at_tsc + (uint64_t)((double)b->idx * (double)ctx->tsc_hz /
		(b->rate_mpps * 1e6));

	return t < b->end_tsc ? t : UINT64_MAX;
}

static json_t *
flow_json(const struct nf_tuple *t)
{
	char a[INET_ADDRSTRLEN], b[INET_ADDRSTRLEN];
	struct in_addr x = { .s_addr = htonl(t->src) }, y = { .s_addr = htonl(t->dst) };

	inet_ntop(AF_INET, &x, a, sizeof(a));
	inet_ntop(AF_INET, &y, b, sizeof(b));
	return json_pack("{s:s, s:s, s:i, s:i, s:s}", "src", a, "dst", b, "sport", t->sport,
		"dport", t->dport, "proto", t->proto == IPPROTO_TCP ? "tcp" : "udp");
}

static void
burst_truth(const struct nf_ctx *ctx, const struct burst *b)
{
	json_t *ev = json_object();

	json_object_set_new(ev, "event", json_string("fault"));
	json_object_set_new(ev, "fault", json_string("burst"));
	json_object_set_new(ev, "flow", flow_json(&b->flow.t));
	json_object_set_new(ev, "size", json_integer(b->size));
	json_object_set_new(ev, "at_us", json_integer((json_int_t)b->at_us));
	json_object_set_new(ev, "duration_us", json_integer((json_int_t)b->dur_us));
	json_object_set_new(ev, "rate_mpps", json_real(b->rate_mpps));
	json_object_set_new(ev, "packets", json_integer((json_int_t)b->sent));
	json_object_set_new(ev, "refused", json_integer((json_int_t)b->refused));
	json_object_set_new(ev, "happened", json_boolean(b->sent + b->refused > 0));
	if (b->sent + b->refused > 0) {
		json_object_set_new(ev, "start_us", json_real(nf_now_us(ctx, b->first_tsc)));
		json_object_set_new(ev, "end_us", json_real(nf_now_us(ctx, b->last_tsc)));
		json_object_set_new(ev, "start_tsc", json_integer((json_int_t)b->first_tsc));
		json_object_set_new(ev, "end_tsc", json_integer((json_int_t)b->last_tsc));
	}
	json_object_set_new(ev, "t0_realtime_ns", json_integer(ctx->opt->t0_ns));
	json_object_set_new(ev, "t0_tsc", json_integer((json_int_t)ctx->t0_tsc));
	json_object_set_new(ev, "tsc_hz", json_integer((json_int_t)ctx->tsc_hz));
	nf_truth_event(ctx, ev);
}

/* Sleep until `until` (TSC), waking a little early and spinning the rest:
 * a busy source would starve the NFs sharing its CPUs. */
static void
wait_until(const struct nf_ctx *ctx, uint64_t until)
{
	uint64_t now = rte_rdtsc();
	uint64_t margin = ctx->tsc_hz / 1000000 * SLEEP_MARGIN_US;

	while (!nf_quit() && !stop_sending && now < until) {
		if (until - now > 2 * margin) {
			uint64_t ns = (until - now - margin) * 1000000000ULL / ctx->tsc_hz;
			struct timespec ts = { 0, (long)(ns > 10000000 ? 10000000 : ns) };

			nanosleep(&ts, NULL);
		} else if (until - now > margin) {
			/* Between one and two margins: a short sleep is still cheaper. */
			struct timespec ts = { 0, 1000 };

			nanosleep(&ts, NULL);
		} else {
			rte_pause();
		}
		now = rte_rdtsc();
	}
}

static void
send_loop(struct src *s, struct nf_ctx *ctx)
{
	const struct nf_common *o = ctx->opt;
	struct rte_mbuf *pkts[512], *txb[NF_MAX_LINKS][512];
	struct burst *owner[512], *txown[NF_MAX_LINKS][512];
	uint32_t txlen[NF_MAX_LINKS][512];
	uint16_t ntx[NF_MAX_LINKS];
	struct nf_pkt meta;

	bg_schedule(s, ctx);
	for (unsigned int i = 0; i < s->n_bursts; i++)
		burst_schedule(&s->bursts[i], ctx);

	while (!nf_quit() && !stop_sending) {
		uint64_t now = rte_rdtsc(), next = UINT64_MAX;
		unsigned int n = 0;

		/* Take every packet that is due, earliest first. */
		while (n < s->tx_batch) {
			struct burst *bsel = NULL;
			uint64_t t = s->bg_done ? UINT64_MAX : s->bg_next_tsc;
			struct rte_mbuf *m;

			for (unsigned int i = 0; i < s->n_bursts; i++) {
				uint64_t bt = burst_next(&s->bursts[i], ctx);

				if (bt < t) {
					t = bt;
					bsel = &s->bursts[i];
				}
			}
			next = t;
			if (t > now)
				break;
			m = rte_pktmbuf_alloc(ctx->pool);
			if (!m) {
				s->alloc_fail++;
				break;
			}
			if (bsel) {
				uint8_t *d = (uint8_t *)rte_pktmbuf_append(m, bsel->size);

				build_frame(d, &bsel->flow, bsel->size);
				bsel->idx++;
			} else {
				int rc = bg_packet(s, m);

				s->bg_idx++;
				bg_schedule(s, ctx);
				if (rc < 0) {
					rte_pktmbuf_free(m);
					s->skipped++;
					continue;
				}
			}
			owner[n] = bsel;
			pkts[n++] = m;
		}
		if (n == 0) {
			if (next == UINT64_MAX)
				break;
			wait_until(ctx, next);
			continue;
		}
		memset(ntx, 0, sizeof(ntx[0]) * o->n_links);
		for (unsigned int i = 0; i < n; i++) {
			uint16_t l;

			nf_parse(pkts[i], &meta);
			l = nf_route(ctx, &meta.t);
			if (l >= o->n_links) {
				rte_pktmbuf_free(pkts[i]);
				ctx->dropped_nf++;
				continue;
			}
			/* Bookkeeping before tx: a sent mbuf belongs to the driver. */
			txown[l][ntx[l]] = owner[i];
			txlen[l][ntx[l]] = rte_pktmbuf_pkt_len(pkts[i]);
			txb[l][ntx[l]++] = pkts[i];
		}
		now = rte_rdtsc();
		for (unsigned int l = 0; l < o->n_links; l++) {
			uint16_t sent, tp = o->links[l].port;

			if (ntx[l] == 0)
				continue;
			sent = rte_eth_tx_burst(tp, 0, txb[l], ntx[l]);
			for (uint16_t i = 0; i < ntx[l]; i++) {
				struct burst *b = txown[l][i];

				if (i < sent)
					ctx->port[tp].tx_bytes += txlen[l][i];
				if (!b)
					continue;
				if (i < sent)
					b->sent++;
				else
					b->refused++;
				if (!b->first_tsc)
					b->first_tsc = now;
				b->last_tsc = now;
			}
			ctx->port[tp].tx += sent;
			s->sent += sent;
			if (sent < ntx[l]) {
				ctx->port[tp].tx_refused += ntx[l] - sent;
				s->refused += ntx[l] - sent;
				rte_pktmbuf_free_bulk(&txb[l][sent], ntx[l] - sent);
			}
		}
		if (!s->first_tsc)
			s->first_tsc = now;
		s->last_tsc = now;
	}
}

int
main(int argc, char **argv)
{
	struct nf_common o;
	struct nf_ctx ctx;
	struct src s;
	json_t *ev;
	int ret;

	if (nf_help_requested(argc, argv)) {
		usage(stdout);
		return 0;
	}
	ret = nf_eal_init(argc, argv);
	argc -= ret;
	argv += ret;
	signal(SIGUSR1, on_usr1);
	nf_common_init(&o, "mscope-source");
	if (!getenv("MSCOPE_NF") || !*getenv("MSCOPE_NF"))
		snprintf(o.name, sizeof(o.name), "source");
	o.n_in = 0;
	memset(&s, 0, sizeof(s));
	s.duration_ms = 1000;
	s.max_frame = 1514;
	s.tx_batch = 32;
	s.seed = 1;
	s.alpha = 1.2;
	s.udp_share = 0.2;
	s.on_us = s.off_us = 1000;
	s.speed = 1;
	nf_getopt(&o, argc, argv, src_opts, own_opt, &s, usage);
	if (o.n_faults) {
		fprintf(stderr, "mscope-source: --stall and --slow are NF faults; the source"
			" injects --burst\n");
		return 2;
	}
	if (!s.pcap_path == !s.n_syn_flows) {
		fprintf(stderr, "mscope-source: give exactly one of --pcap FILE and --synthetic N\n");
		usage(stderr);
		return 2;
	}
	/* The common --rate-mpps sets a per-packet cost; here it is the send rate. */
	if (o.work_ns > 0) {
		s.rate_mpps = 1e3 / o.work_ns;
		s.rate_set = true;
		o.work_ns = 0;
	}
	if (!s.timing_set)
		s.timing = s.pcap_path ? TIMING_PCAP : TIMING_POISSON;
	if (s.n_syn_flows && s.timing == TIMING_PCAP) {
		fprintf(stderr, "mscope-source: --timing pcap needs --pcap\n");
		return 2;
	}
	if (!s.rate_set && (s.timing != TIMING_PCAP))
		s.rate_mpps = 0.02;
	s.rng = s.seed ^ 0x7472616666696331ULL;
	if (s.pcap_path && load_pcap(&s) < 0)
		return 1;
	if (s.n_syn_flows && synth_init(&s) < 0)
		return 1;
	if (s.timing == TIMING_PCAP) {
		/* Rescale the capture's gaps to the target rate, or by --speed. */
		double cap_rate = (double)s.n_frames / s.period_ns;    /* packets per ns */

		s.scale = s.rate_set ? cap_rate / (s.rate_mpps * 1e-3) : 1.0 / s.speed;
	}
	if (s.timing == TIMING_ONOFF)
		s.on_rate = s.rate_mpps * 1e-3 * (s.on_us + s.off_us) / s.on_us;

	nf_setup(&ctx, &o, NB_MBUFS);
	if (!o.quiet)
		fprintf(stderr, "%s: %s%s, %u %s, %s timing%s, %" PRIu64 " ms, %u bursts\n", o.name,
			s.pcap_path ? "capture " : "synthetic",
			s.pcap_path ? s.pcap_path : "", s.pcap_path ? s.n_frames : s.n_syn_flows,
			s.pcap_path ? "packets" : "flows",
			(const char *[]){ "pcap", "cbr", "poisson", "onoff" }[s.timing],
			s.timing == TIMING_PCAP && !s.rate_set ? "" : " at target rate",
			s.duration_ms, s.n_bursts);

	/* Wait for t0, idling. */
	while (!nf_quit() && !o.t0_ns && o.t0_path) {
		struct timespec ts = { 0, 1000000 };

		if (nf_poll_t0(&ctx))
			break;
		nanosleep(&ts, NULL);
	}
	if (!o.t0_ns) {
		o.t0_ns = nf_realtime_ns();
		ctx.t0_tsc = rte_rdtsc();
	} else {
		nf_poll_t0(&ctx);
	}
	ctx.start_tsc = ctx.t0_tsc;
	wait_until(&ctx, ctx.t0_tsc);
	if (!nf_quit())
		send_loop(&s, &ctx);

	if (!o.quiet)
		fprintf(stderr, "%s: sent %" PRIu64 " packets in %.1f ms, %" PRIu64 " refused, %"
			PRIu64 " skipped, %" PRIu64 " without mbuf\n", o.name, s.sent,
			s.last_tsc > s.first_tsc ? (double)(s.last_tsc - s.first_tsc) * 1e3 /
			(double)ctx.tsc_hz : 0.0, s.refused, s.skipped, s.alloc_fail);
	ev = json_object();
	json_object_set_new(ev, "event", json_string("traffic"));
	json_object_set_new(ev, "t0_realtime_ns", json_integer(o.t0_ns));
	json_object_set_new(ev, "t0_tsc", json_integer((json_int_t)ctx.t0_tsc));
	json_object_set_new(ev, "tsc_hz", json_integer((json_int_t)ctx.tsc_hz));
	json_object_set_new(ev, "sent", json_integer((json_int_t)s.sent));
	json_object_set_new(ev, "refused", json_integer((json_int_t)s.refused));
	json_object_set_new(ev, "first_us", json_real(s.first_tsc ? nf_now_us(&ctx, s.first_tsc) : 0));
	json_object_set_new(ev, "last_us", json_real(s.last_tsc ? nf_now_us(&ctx, s.last_tsc) : 0));
	nf_truth_event(&ctx, ev);
	for (unsigned int i = 0; i < s.n_bursts; i++)
		burst_truth(&ctx, &s.bursts[i]);
	json_object_set_new(ctx.extra, "source", json_pack("{s:I, s:I, s:I, s:I, s:I}",
		"sent", (json_int_t)s.sent, "refused", (json_int_t)s.refused,
		"background", (json_int_t)s.bg_idx, "skipped", (json_int_t)s.skipped,
		"alloc_fail", (json_int_t)s.alloc_fail));

	/* Stay up (ports open) until told to stop, unless asked to exit. */
	while (!s.exit_when_done && !nf_quit()) {
		struct timespec ts = { 0, 10000000 };

		nanosleep(&ts, NULL);
	}
	nf_teardown(&ctx);
	free(s.pcap_data);
	free(s.frames);
	free(s.flows);
	free(s.cum);
	return 0;
}
