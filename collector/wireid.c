/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Wire IDs on the NF core, a burst at a time. mscope_wire_id() is built so
 * that one 64-byte load, one xor, one shift, one multiply and one add do
 * all eight words of a packet at once in AVX-512; the scalar loop is the
 * fallback for CPUs without it. Both give mscope_wire_id()'s result, bit for
 * bit (the collector-datapath test checks it on real traffic).
 */
#include <string.h>

#include <rte_mbuf.h>

#include "collector_priv.h"

#define WIRE_P1 0x9E3779B185EBCA87ULL

static inline uint32_t
seg_of(const struct rte_mbuf *m)
{
	return m->data_len < MC_DATA_BYTES ? m->data_len : MC_DATA_BYTES;
}

void
mc_wire_ids_scalar(struct rte_mbuf *const *pkts, uint16_t n, const uint32_t *codes,
		   uint64_t *slots, uint64_t mask, uint64_t at)
{
	for (uint16_t i = 0; i < n; i++) {
		const struct rte_mbuf *m = pkts[i];

		slots[(at + i) & mask] =
			mscope_wire_id(rte_pktmbuf_mtod(m, const void *), m->data_len, m->pkt_len) |
			(uint64_t)codes[i] << 32;
	}
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,bmi2")))

/* The packet's 64 words, less the keyed products: its lanes sum to the hash input. */
AVX512 static inline __m512i
lanes(const struct rte_mbuf *m, __m512i key)
{
	const void *d = rte_pktmbuf_mtod(m, const void *);
	const uint32_t seg = seg_of(m);
	/* a short segment: the masked load neither reads nor faults past it */
	const __m512i w = _mm512_maskz_loadu_epi8(_bzhi_u64(~0ULL, seg), d);
	const __m512i a = _mm512_xor_si512(w, key);
	const __m512i s = _mm512_add_epi64(_mm512_mul_epu32(a, _mm512_srli_epi64(a, 32)), w);

	/* the lengths' term, in lane 0 */
	return _mm512_mask_add_epi64(
		s, 1, s, _mm512_set1_epi64((long long)(((uint64_t)seg << 32 | m->pkt_len) * WIRE_P1)));
}

/* Sum of the lanes of each of 8 vectors, as the 8 lanes of one (a transpose-add). */
AVX512 static inline __m512i
sum8(const __m512i s[8])
{
	__m512i t[4], x[2];

	for (int j = 0; j < 4; j++)
		t[j] = _mm512_add_epi64(_mm512_unpacklo_epi64(s[2 * j], s[2 * j + 1]),
					_mm512_unpackhi_epi64(s[2 * j], s[2 * j + 1]));
	for (int j = 0; j < 2; j++)
		x[j] = _mm512_add_epi64(_mm512_shuffle_i64x2(t[2 * j], t[2 * j + 1], 0x88),
					_mm512_shuffle_i64x2(t[2 * j], t[2 * j + 1], 0xdd));
	/* x[j]: 128-bit blocks of partial sums of packets (4j, 4j + 1), (4j + 2, 4j + 3) */
	return _mm512_add_epi64(_mm512_shuffle_i64x2(x[0], x[1], 0x88),
				_mm512_shuffle_i64x2(x[0], x[1], 0xdd));
}

/* mscope_wire_mix() of 8 lanes, zero-extended to 64 bits. */
AVX512 static inline __m512i
mix8(__m512i h)
{
	h = _mm512_xor_si512(h, _mm512_srli_epi64(h, 33));
	h = _mm512_mullo_epi64(h, _mm512_set1_epi64((long long)0xC2B2AE3D27D4EB4FULL));
	h = _mm512_xor_si512(h, _mm512_srli_epi64(h, 29));
	h = _mm512_mullo_epi64(h, _mm512_set1_epi64((long long)0x165667B19E3779F9ULL));
	h = _mm512_xor_si512(h, _mm512_srli_epi64(h, 32));
	h = _mm512_xor_si512(h, _mm512_srli_epi64(h, 32));
	return _mm512_and_si512(h, _mm512_set1_epi64(0xffffffff));
}

AVX512 static void
wire_ids_avx512(struct rte_mbuf *const *pkts, uint16_t n, const uint32_t *codes,
		uint64_t *slots, uint64_t mask, uint64_t at)
{
	const __m512i key = _mm512_loadu_si512((const void *)mscope_wire_keys);
	uint16_t i = 0;

	for (; i + 8 <= n; i += 8) {
		__m512i s[8];
		uint64_t pos = (at + i) & mask;
		__m512i h;

		for (int j = 0; j < 8; j++)
			s[j] = lanes(pkts[i + j], key);
		h = _mm512_or_si512(mix8(sum8(s)),
				    _mm512_slli_epi64(_mm512_cvtepu32_epi64(_mm256_loadu_si256(
							      (const __m256i *)(codes + i))),
						      32));
		if (likely(pos + 8 <= mask + 1)) {
			_mm512_storeu_si512(slots + pos, h);
		} else {
			uint64_t o[8];

			_mm512_storeu_si512(o, h);
			for (int j = 0; j < 8; j++)
				slots[(at + i + j) & mask] = o[j];
		}
	}
	for (; i < n; i++) {
		/* summed as unsigned: the intrinsic's reduction adds signed (UB on overflow) */
		uint64_t o[8], h = 0;

		_mm512_storeu_si512(o, lanes(pkts[i], key));
		for (int j = 0; j < 8; j++)
			h += o[j];
		slots[(at + i) & mask] = mscope_wire_mix(h) | (uint64_t)codes[i] << 32;
	}
}

const mc_wire_ids_fn mc_wire_ids_avx512 = wire_ids_avx512;

static mc_wire_ids_fn
pick(void)
{
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
	    __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("bmi2"))
		return wire_ids_avx512;
	return mc_wire_ids_scalar;
}
#else
const mc_wire_ids_fn mc_wire_ids_avx512 = NULL;

static mc_wire_ids_fn
pick(void)
{
	return mc_wire_ids_scalar;
}
#endif

mc_wire_ids_fn mc_wire_ids = mc_wire_ids_scalar;

__attribute__((constructor)) static void
wire_ids_init(void)
{
	mc_wire_ids = pick();
}
