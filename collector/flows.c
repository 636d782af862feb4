/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Per-node flow table (writer thread): 5-tuple -> small reference, assigned
 * in first-seen order. Open addressing with a few linear probes; when they
 * are all taken the home slot is overwritten, so a flow seen again later
 * gets a new ref (and a new definition with the same key): bounded time,
 * bounded memory, and every ref is defined before its first use.
 */
#include <string.h>

#include "collector_priv.h"

static inline uint16_t
rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

void
mc_flow_key(const uint8_t *d, uint32_t len, union mc_fkey *k)
{
	k->w[0] = k->w[1] = k->w[2] = k->w[3] = k->w[4] = 0;
	/* untagged IPv4 without options, TCP/UDP, not a later fragment */
	if (len >= 38 && d[12] == 0x08 && d[13] == 0x00 && d[14] == 0x45 &&
	    (rd16(d + 20) & 0x1fff) == 0 && (d[23] == 6 || d[23] == 17)) {
		k->k.family = 4;
		k->k.proto = d[23];
		memcpy(k->k.src, d + 26, 4);
		memcpy(k->k.dst, d + 30, 4);
		k->k.sport = rd16(d + 34);
		k->k.dport = rd16(d + 36);
		return;
	}
	mscope_flow_parse(d, len, &k->k);
}

static inline bool
key_eq(const union mc_fkey *a, const union mc_fkey *b)
{
	return ((a->w[0] ^ b->w[0]) | (a->w[1] ^ b->w[1]) | (a->w[2] ^ b->w[2]) |
		(a->w[3] ^ b->w[3]) | (a->w[4] ^ b->w[4])) == 0;
}

static inline uint32_t
key_hash(const union mc_fkey *k)
{
	uint64_t h = k->w[0] * 0x9E3779B185EBCA87ULL;

	h ^= (k->w[1] + (k->w[2] << 1)) * 0xC2B2AE3D27D4EB4FULL;
	h ^= (k->w[3] + (k->w[4] << 1)) * 0x165667B19E3779F9ULL;
	return (uint32_t)(h >> 32) ^ (uint32_t)h;
}

uint32_t
mc_flow_ref(struct mc_flow_table *t, const uint8_t *d, uint32_t len, union mc_fkey *key,
	    bool *is_new)
{
	mc_flow_key(d, len, key);
	return mc_flow_ref_key(t, key, is_new);
}

uint32_t
mc_flow_ref_key(struct mc_flow_table *t, const union mc_fkey *key, bool *is_new)
{
	struct mc_flow_slot *s = NULL;
	uint32_t h, ref;

	*is_new = false;
	if (t->have_last && key_eq(key, &t->last))
		return t->last_ref;
	h = key_hash(key);
	for (unsigned p = 0; p < MC_FLOW_PROBES; p++) {
		struct mc_flow_slot *c = &t->slot[(h + p) & (MC_FLOW_SLOTS - 1)];

		if (c->ref_plus1 == 0) {
			s = c;
			break;
		}
		if (key_eq(&c->key, key)) {
			ref = c->ref_plus1 - 1;
			goto found;
		}
	}
	if (s == NULL)
		s = &t->slot[h & (MC_FLOW_SLOTS - 1)];
	ref = t->next_ref++;
	s->key = *key;
	s->ref_plus1 = ref + 1;
	*is_new = true;
found:
	t->last = *key;
	t->last_ref = ref;
	t->have_last = true;
	return ref;
}
