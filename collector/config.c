/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Configuration from MSCOPE_* environment variables. A bad value costs one
 * warning line and falls back to a safe default (or disables the
 * collector); the NF always runs on.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector_priv.h"

extern char *program_invocation_short_name;

/* Parse a whole decimal integer in [lo, hi]. */
static bool
parse_long(const char *s, long lo, long hi, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

/* A byte count: decimal with an optional k, M or G suffix (powers of 1024). */
static bool
parse_bytes(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	char *end;
	unsigned long long v;
	unsigned shift = 0;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || end == s)
		return false;
	if (*end != '\0') {
		switch (*end) {
		case 'k': case 'K': shift = 10; break;
		case 'm': case 'M': shift = 20; break;
		case 'g': case 'G': shift = 30; break;
		default: return false;
		}
		if (end[1] != '\0' && !((end[1] == 'B' || end[1] == 'b') && end[2] == '\0') &&
		    !(end[1] == 'i' && end[2] == 'B' && end[3] == '\0'))
			return false;
	}
	if (v > (hi >> shift))
		return false;
	v <<= shift;
	if (v < lo)
		return false;
	*out = v;
	return true;
}

const char *
mc_esc(const char *s, char *buf, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t j = 0;

	if (len == 0)
		return "";
	for (size_t i = 0; s != NULL && s[i] != '\0'; i++) {
		const unsigned char c = (unsigned char)s[i];
		const bool plain = c >= 0x20 && c < 0x7f && c != '"' && c != '\\';

		if (j + (plain ? 1 : 4) + 4 >= len) {
			/* no room: say so rather than cut an escape in half */
			snprintf(buf + j, len - j, "...");
			return buf;
		}
		if (plain) {
			buf[j++] = (char)c;
		} else {
			buf[j++] = '\\';
			buf[j++] = 'x';
			buf[j++] = hex[c >> 4];
			buf[j++] = hex[c & 15];
		}
	}
	buf[j] = '\0';
	return buf;
}

/* Names end up in file names: letters, digits, '.', '_', '-' only. */
static bool
name_ok(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n >= max || s[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		const char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

static void
default_nf(char *buf, size_t len)
{
	const char *p = program_invocation_short_name;
	size_t j = 0;

	for (size_t i = 0; p != NULL && p[i] != '\0' && j + 1 < len; i++) {
		const char c = p[i];
		const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
				(c >= '0' && c <= '9') || c == '_' || c == '-' ||
				(c == '.' && j > 0);

		buf[j++] = ok ? c : '_';
	}
	buf[j] = '\0';
	if (j == 0)
		snprintf(buf, len, "nf");
}

/* Bounded recording (segments, budget) and the trace files' mode. */
static void
load_bounds(struct mc_config *c)
{
	const char *v;
	uint64_t b;
	long n;

	c->file_mode = MC_DEFAULT_FILE_MODE;
	v = getenv("MSCOPE_FILE_MODE");
	if (v != NULL && *v != '\0') {
		char *end;
		unsigned long m;

		errno = 0;
		m = strtoul(v, &end, 8);
		if (errno == 0 && end != v && *end == '\0' && *v >= '0' && *v <= '7' &&
		    m <= 0777 && !(m & 0002) && (m & 0600) == 0600) {
			c->file_mode = (unsigned)m;
			c->file_mode_set = true;
		} else {
			MC_LOG("MSCOPE_FILE_MODE=\"%s\" is not an octal mode with owner read-write "
			       "and not world-writable; using 0%o", MC_ESC(v), c->file_mode);
		}
	}
	v = getenv("MSCOPE_SEGMENT_SECONDS");
	if (v != NULL && *v != '\0') {
		if (parse_long(v, 1, 31 * 86400, &n))
			c->seg_seconds = (uint32_t)n;
		else
			MC_LOG("MSCOPE_SEGMENT_SECONDS=\"%s\" is not a duration in 1..2678400 s; "
			       "not rotating by time", MC_ESC(v));
	}
	v = getenv("MSCOPE_SEGMENT_BYTES");
	if (v != NULL && *v != '\0') {
		if (parse_bytes(v, MC_MIN_SEG_BYTES, UINT64_C(1) << 50, &b))
			c->seg_bytes = b;
		else
			MC_LOG("MSCOPE_SEGMENT_BYTES=\"%s\" is not a size of at least 64k "
			       "(k, M, G suffixes); not rotating by size", MC_ESC(v));
	}
	v = getenv("MSCOPE_BUDGET");
	if (v != NULL && *v != '\0') {
		if (parse_bytes(v, 4 * MC_MIN_SEG_BYTES, UINT64_C(1) << 52, &b))
			c->budget = b;
		else
			MC_LOG("MSCOPE_BUDGET=\"%s\" is not a size of at least 256k "
			       "(k, M, G suffixes); no budget", MC_ESC(v));
	}
	v = getenv("MSCOPE_SEGMENTS");
	if (v != NULL && *v != '\0') {
		if (!parse_long(v, 1, 1000000, &n))
			MC_LOG("MSCOPE_SEGMENTS=\"%s\" is not a count in 1..1000000; "
			       "no count limit", MC_ESC(v));
		else if (!mc_rotating(c))
			MC_LOG("MSCOPE_SEGMENTS=%ld needs MSCOPE_SEGMENT_SECONDS, "
			       "MSCOPE_SEGMENT_BYTES or MSCOPE_BUDGET; ignored", n);
		else
			c->segments = (uint32_t)n;
	}
	v = getenv("MSCOPE_TEST_MEM_AVAILABLE");
	if (v != NULL && *v != '\0' && !parse_bytes(v, 1, UINT64_C(1) << 52, &c->mem_avail_test))
		MC_LOG("MSCOPE_TEST_MEM_AVAILABLE=\"%s\" is not a size; ignored", MC_ESC(v));
}

void
mc_config_load(struct mc_config *c)
{
	const char *v;
	long n;

	memset(c, 0, sizeof(*c));
	snprintf(c->dir, sizeof(c->dir), ".");
	default_nf(c->nf, sizeof(c->nf));
	c->zstd_level = MC_DEFAULT_ZSTD;
	c->buffer = MC_DEFAULT_BUFFER;
	c->qdepth_every = MC_DEFAULT_QDEPTH_EVERY;

	v = getenv("MSCOPE_DISABLE");
	if (v != NULL && *v != '\0') {
		if (strcmp(v, "1") == 0) {
			c->disabled = true;
		} else if (strcmp(v, "0") != 0) {
			MC_LOG("MSCOPE_DISABLE=\"%s\" is not 0 or 1; collector disabled", MC_ESC(v));
			c->disabled = true;
		}
	}
	v = getenv("MSCOPE_DIR");
	if (v != NULL && *v != '\0') {
		if (strlen(v) >= sizeof(c->dir) - 128)
			MC_LOG("MSCOPE_DIR is too long; using \".\"");
		else
			snprintf(c->dir, sizeof(c->dir), "%s", v);
	}
	v = getenv("MSCOPE_NF");
	if (v != NULL && *v != '\0') {
		if (name_ok(v, sizeof(c->nf)))
			snprintf(c->nf, sizeof(c->nf), "%s", v);
		else
			MC_LOG("MSCOPE_NF=\"%s\" is not a name of up to 63 letters, digits, '.', '_' "
			       "or '-'; using \"%s\"", MC_ESC(v), c->nf);
	}
	v = getenv("MSCOPE_RUN_ID");
	if (v != NULL && *v != '\0') {
		if (name_ok(v, sizeof(c->run_id)))
			snprintf(c->run_id, sizeof(c->run_id), "%s", v);
		else
			MC_LOG("MSCOPE_RUN_ID=\"%s\" is not a name of up to 63 letters, digits, '.', "
			       "'_' or '-'; left empty", MC_ESC(v));
	}
	v = getenv("MSCOPE_ZSTD_LEVEL");
	if (v != NULL && *v != '\0') {
		if (parse_long(v, -7, 19, &n) && n != 0)
			c->zstd_level = (int)n;
		else
			MC_LOG("MSCOPE_ZSTD_LEVEL=\"%s\" is not in -7..-1 or 1..19; using %d", MC_ESC(v),
			       c->zstd_level);
	}
	v = getenv("MSCOPE_BUFFER");
	if (v != NULL && *v != '\0') {
		if (parse_long(v, 4096, 1L << 26, &n)) {
			uint32_t p = 4096;

			while (p < (uint64_t)n)
				p <<= 1;
			c->buffer = p;
		} else {
			MC_LOG("MSCOPE_BUFFER=\"%s\" is not a slot count in 4096..67108864; using %u",
			       MC_ESC(v), c->buffer);
		}
	}
	v = getenv("MSCOPE_QDEPTH_EVERY");
	if (v != NULL && *v != '\0') {
		if (parse_long(v, 0, 1000000, &n))
			c->qdepth_every = (uint32_t)n;
		else
			MC_LOG("MSCOPE_QDEPTH_EVERY=\"%s\" is not a burst count in 0..1000000; "
			       "using %u", MC_ESC(v), c->qdepth_every);
	}
	load_bounds(c);
}
