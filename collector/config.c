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
			MC_LOG("MSCOPE_DISABLE=\"%s\" is not 0 or 1; collector disabled", v);
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
			       "or '-'; using \"%s\"", v, c->nf);
	}
	v = getenv("MSCOPE_RUN_ID");
	if (v != NULL && *v != '\0') {
		if (name_ok(v, sizeof(c->run_id)))
			snprintf(c->run_id, sizeof(c->run_id), "%s", v);
		else
			MC_LOG("MSCOPE_RUN_ID=\"%s\" is not a name of up to 63 letters, digits, '.', "
			       "'_' or '-'; left empty", v);
	}
	v = getenv("MSCOPE_ZSTD_LEVEL");
	if (v != NULL && *v != '\0') {
		if (parse_long(v, -7, 19, &n) && n != 0)
			c->zstd_level = (int)n;
		else
			MC_LOG("MSCOPE_ZSTD_LEVEL=\"%s\" is not in -7..-1 or 1..19; using %d", v,
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
			       v, c->buffer);
		}
	}
	v = getenv("MSCOPE_QDEPTH_EVERY");
	if (v != NULL && *v != '\0') {
		if (parse_long(v, 0, 1000000, &n))
			c->qdepth_every = (uint32_t)n;
		else
			MC_LOG("MSCOPE_QDEPTH_EVERY=\"%s\" is not a burst count in 0..1000000; "
			       "using %u", v, c->qdepth_every);
	}
}
