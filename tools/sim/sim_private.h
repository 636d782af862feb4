/* SPDX-License-Identifier: BSD-3-Clause */
/* Internals of the simulator shared by its source files (never installed). */
#ifndef MSCOPE_SIM_PRIVATE_H
#define MSCOPE_SIM_PRIVATE_H

#include <stdint.h>
#include <stddef.h>

#include <jansson.h>

#include "mscope_trace.h"
#include "mscope_sim.h"

/* Bytes of each packet the simulator keeps: what the wire ID hashes. */
#define SIM_HEAD 64
/* Burst size of an NF's rx_burst call, as in DPDK examples. */
#define SIM_BURST 32

enum match_field {
	M_SRC = 1, M_DST = 2, M_SPORT = 4, M_DPORT = 8, M_PROTO = 16,
};

struct sim_match {
	uint32_t fields;         /* enum match_field bits */
	uint8_t src_family, dst_family;
	uint8_t src_plen, dst_plen;
	uint8_t src[16], dst[16];
	uint16_t sport_lo, sport_hi, dport_lo, dport_hi;
	uint8_t proto;
};

enum nf_kind { NF_PLAIN = 0, NF_NAT, NF_VPN };

struct sim_nf {
	char name[64];
	char type[32];
	enum nf_kind kind;
	double rate_mpps;
	uint32_t queue;
	double jitter;           /* service time uniform in base*(1 +- jitter) */
	uint16_t vpn_port;       /* 4500 (IPsec NAT-T) or 1194 (OpenVPN) */
	uint8_t addr[4];         /* NAT public / VPN tunnel address */
	json_t *launch;          /* fields only the chain launcher uses (program, args, ...) */
};

struct sim_link {
	int from;                /* NF index, -1 = source */
	int to;
	int has_match;
	struct sim_match match;
	json_t *json;            /* the scenario's object (echoed in truth.json) */
};

enum fault_kind { F_BURST = 0, F_INTERRUPT, F_BUG, F_SLOW };

struct sim_fault {
	enum fault_kind kind;
	uint64_t at_ps, end_ps;
	int nf;                  /* -1 for burst */
	struct mscope_flow_key flow; /* burst */
	double rate_mpps;        /* burst */
	uint32_t size;           /* burst packet size (bytes) */
	struct sim_match match;  /* bug */
	json_t *culprit_flow;    /* truth: flow (burst) or match (bug), else NULL */
	json_t *json;            /* the scenario's object (echoed in truth.json) */
	double slowdown;         /* bug */
	double factor;           /* slow */
};

enum traffic_kind { T_SYNTH = 0, T_PCAP };
enum arrival_kind { A_POISSON = 0, A_ONOFF, A_CBR };

struct sim_pcap {
	uint64_t n;
	uint64_t *t_ps;          /* relative to the first packet, rescaled, sorted */
	uint32_t *len;           /* original length */
	uint8_t *caplen;         /* bytes kept (<= SIM_HEAD) */
	uint8_t *head;           /* n * SIM_HEAD */
	uint64_t period_ps;      /* loop period */
};

struct sim_traffic {
	enum traffic_kind kind;
	/* synthetic */
	uint32_t flows;
	double rate_mpps;
	enum arrival_kind arrival;
	double on_us, off_us;
	double alpha;            /* Pareto shape of flow weights */
	double udp_share;
	uint32_t size;           /* fixed packet size, 0 = realistic mix */
	/* pcap */
	char path[1024];
	struct sim_pcap pcap;
	json_t *launch;          /* fields only the chain launcher uses (timing, once, count) */
};

struct mscope_sim_scenario {
	char name[64];
	uint64_t seed;
	uint64_t duration_ps;
	double victim_threshold_us;
	uint32_t poll_ns;        /* idle polling loop period */
	double jitter;           /* default service jitter of the NFs */
	struct sim_nf *nfs;
	unsigned n_nfs;
	struct sim_link *links;
	unsigned n_links;
	struct sim_traffic traffic;
	struct sim_fault *faults;
	unsigned n_faults;
	json_t *recording;       /* the launcher's collector rotation settings, or NULL */
};

/* Longest service time of one packet (ps; about 53 days): the engine saturates
 * at it, and the parser refuses rates whose service time would not fit. */
#define SIM_MAX_SERVICE_PS ((uint64_t)1 << 62)

/* Picoseconds from a double, saturated to [0, SIM_MAX_SERVICE_PS]: a double
 * beyond the range of uint64_t must never be converted (undefined behaviour). */
static inline uint64_t
sim_ps_sat(double x)
{
	if (!(x > 0))
		return 0;
	if (x >= (double)SIM_MAX_SERVICE_PS)
		return SIM_MAX_SERVICE_PS;
	return (uint64_t)(x + 0.5);
}

/* Packet header helpers (sim_packet.c). */
uint16_t sim_ip_csum(const uint8_t *hdr, unsigned len);
void sim_build_frame(uint8_t *head, uint8_t *caplen, const struct mscope_flow_key *k,
		uint32_t len, uint16_t ipid, uint32_t tcpseq, uint32_t tcpack);
int sim_nat_rewrite(uint8_t *head, unsigned caplen, const uint8_t addr[4], uint16_t port);
void sim_vpn_encap(uint8_t *head, uint8_t *caplen, uint32_t *len, const uint8_t src[4],
		const uint8_t dst[4], uint16_t port, uint16_t ipid, uint32_t spi, uint32_t seq,
		uint64_t inner_hash);
int sim_match(const struct sim_match *m, const struct mscope_flow_key *k);
int sim_parse_proto(const char *s, uint8_t *proto);

/* JSON of the outputs (sim_dump.c): a protocol by name ("tcp", "udp", "icmp")
 * or number, a flow key as {src, dst, sport, dport, proto}. */
const char *sim_proto_name(uint8_t p, char *buf, size_t len);
json_t *sim_flow_json(const struct mscope_flow_key *k);

/* splitmix64: seeds and stateless hashes (Steele, Lea, Flood, OOPSLA 2014). */
static inline uint64_t
sim_mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* xoshiro256** (Blackman, Vigna 2018): the generator of every random draw. */
struct sim_rng {
	uint64_t s[4];
};

static inline void
sim_rng_seed(struct sim_rng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++) {
		seed = sim_mix64(seed);
		r->s[i] = seed;
	}
}

static inline uint64_t
sim_rng_next(struct sim_rng *r)
{
	uint64_t *s = r->s;
	uint64_t x = s[1] * 5;
	uint64_t res = ((x << 7) | (x >> 57)) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = (s[3] << 45) | (s[3] >> 19);
	return res;
}

/* Uniform in [0, 1). */
static inline double
sim_rng_unit(struct sim_rng *r)
{
	return (double)(sim_rng_next(r) >> 11) * 0x1.0p-53;
}

static inline double
sim_unit(uint64_t h)
{
	return (double)(h >> 11) * 0x1.0p-53;
}

#endif
