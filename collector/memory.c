/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * How much memory the rings may take. They are allocated and zeroed when a
 * port starts (so the data path never faults a page in), which makes
 * MSCOPE_BUFFER real memory at once: 512 MiB a queue at the maximum. In a
 * container that is more than the NF's whole allowance, and the kernel
 * kills the NF. So the collector measures what the process may still use
 * (its cgroup limits, v2 and v1, and the host's MemAvailable) and allows
 * itself half of it, shrinking rings (one warning) rather than the NF.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector_priv.h"

static uint64_t mem_cap = UINT64_MAX; /* bytes the collector may still allocate */
static uint64_t mem_used;
static char mem_src[64] = "unlimited";
static bool mem_warned;

/* The first unsigned number in file `path`, or UINT64_MAX ("max", missing). */
static uint64_t
read_u64(const char *path)
{
	char buf[64];
	FILE *f = fopen(path, "re");
	unsigned long long v;
	int ok;

	if (f == NULL)
		return UINT64_MAX;
	ok = fgets(buf, sizeof(buf), f) != NULL && sscanf(buf, "%llu", &v) == 1;
	fclose(f);
	return ok ? v : UINT64_MAX;
}

static void
lower(uint64_t avail, const char *what)
{
	if (avail < mem_cap) {
		mem_cap = avail;
		snprintf(mem_src, sizeof(mem_src), "%s", what);
	}
}

/* Room left under a limit file minus a usage file, in dir and its parents. */
static void
cgroup_room(const char *root, const char *rel, const char *limit, const char *usage,
	    const char *what)
{
	char dir[PATH_MAX], path[PATH_MAX + 64];

	if (snprintf(dir, sizeof(dir), "%s%s", root, rel) >= (int)sizeof(dir))
		return;
	for (;;) {
		uint64_t lim, use;
		char *slash;

		snprintf(path, sizeof(path), "%s/%s", dir, limit);
		lim = read_u64(path);
		snprintf(path, sizeof(path), "%s/%s", dir, usage);
		use = read_u64(path);
		/* v1 says "no limit" with a huge page-rounded number */
		if (lim < (UINT64_C(1) << 60) && use != UINT64_MAX)
			lower(lim > use ? lim - use : 0, what);
		if (strlen(dir) <= strlen(root))
			break;
		slash = strrchr(dir, '/');
		if (slash == NULL || slash < dir + strlen(root))
			break;
		*slash = '\0';
	}
}

void
mc_mem_limit_init(void)
{
	char line[PATH_MAX + 32];
	FILE *f;

	if (mc.cfg.mem_avail_test != 0) {
		lower(mc.cfg.mem_avail_test, "MSCOPE_TEST_MEM_AVAILABLE");
		mem_cap /= 2;
		return;
	}
	f = fopen("/proc/self/cgroup", "re");
	while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
		char *rel = strrchr(line, ':'), *ctl = strchr(line, ':');

		if (rel == NULL || ctl == NULL)
			continue;
		rel[strcspn(rel, "\n")] = '\0';
		*rel++ = '\0';
		ctl++;
		if (strcmp(line, "0") == 0 && *ctl == '\0') {
			cgroup_room("/sys/fs/cgroup", rel, "memory.max", "memory.current",
				    "cgroup memory.max");
			cgroup_room("/sys/fs/cgroup/unified", rel, "memory.max", "memory.current",
				    "cgroup memory.max");
		} else if (strstr(ctl, "memory") != NULL) {
			cgroup_room("/sys/fs/cgroup/memory", rel, "memory.limit_in_bytes",
				    "memory.usage_in_bytes", "cgroup memory.limit_in_bytes");
		}
	}
	if (f != NULL)
		fclose(f);
	f = fopen("/proc/meminfo", "re");
	while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
		unsigned long long kb;

		if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
			lower((uint64_t)kb * 1024, "MemAvailable");
	}
	if (f != NULL)
		fclose(f);
	if (mem_cap != UINT64_MAX)
		mem_cap /= 2;
}

uint32_t
mc_mem_ring_slots(size_t fixed)
{
	uint64_t slots = mc.cfg.buffer;
	const uint64_t room = mem_cap > mem_used ? mem_cap - mem_used : 0;

	while (slots > 4096 && fixed + slots * 8 > room / 2)
		slots >>= 1; /* leave room for the queues still to come */
	if (fixed + slots * 8 > room)
		slots = 0;
	if (slots != mc.cfg.buffer && !mem_warned) {
		mem_warned = true;
		if (slots == 0)
			MC_LOG("no memory left for another queue (%s: the collector uses at most "
			       "half of %" PRIu64 " MiB); queues from here on are not recorded",
			       mem_src, mem_cap * 2 >> 20);
		else
			MC_LOG("MSCOPE_BUFFER=%u slots per queue do not fit in the memory available "
			       "(%s: the collector uses at most half of %" PRIu64 " MiB); "
			       "using at most %" PRIu64 " slots a queue", mc.cfg.buffer, mem_src,
			       mem_cap * 2 >> 20,
			       slots);
	}
	if (slots != 0)
		mem_used += fixed + slots * 8;
	return (uint32_t)slots;
}
