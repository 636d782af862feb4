/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The files of a node's stream (writer thread): creating them, rotating
 * them by time and size, deleting the oldest (segment count per queue,
 * byte budget of the process) with a DELETED record in the current file,
 * and what happens when a write fails (a full disk): the file is closed at
 * its last complete frame, everything from then on is counted, a
 * `<file>.lost` sidecar says so, and every second a new file is tried; once
 * one takes a LOSS record with the counts, the sidecar goes.
 *
 * Also the flight recorder's trigger: MSCOPE_DIR/.mscope-keep (written by
 * `mscope keep` or by this collector on SIGUSR2) asks every collector of
 * the directory to close its current files and hard-link its segments into
 * kept/<name>/, where rotation never deletes them.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <rte_cycles.h>

#include "collector_priv.h"

#define RETRY_MS 1000      /* a failed node tries a new file this often */
#define KEEP_POLL_MS 100   /* the keep request file is checked this often */
#define KEEP_FILE ".mscope-keep"
#define LOW_SPACE (4u << 20) /* a failed write with less free: the disk is full */
#define RETRY_SPACE (128u << 10) /* a failed node tries again with this much free */

static uint64_t ms_tsc(uint64_t ms) { return mc.tsc_hz / 1000 * ms; }

static void
seg_name(const struct mc_node *n, uint32_t number, bool plain, char *buf, size_t len)
{
	if (plain)
		snprintf(buf, len, "%s.mst", n->stem);
	else
		snprintf(buf, len, "%s.%06u.mst", n->stem, number);
}

/* n->name and n->path of segment `number` (the directory is short enough: config.c). */
static void
set_name(struct mc_node *n, uint32_t number, bool plain)
{
	seg_name(n, number, plain, n->name, sizeof(n->name));
	if (snprintf(n->path, sizeof(n->path), "%s/%s", mc.cfg.dir, n->name) >=
	    (int)sizeof(n->path))
		n->path[0] = '\0';
}

/* ---------------------------------------------------------------- sidecar */

/*
 * Room for the sidecars on a full disk: a few pages allocated at the start
 * in a file unlinked at once (nothing is left behind, even after SIGKILL);
 * a node whose writes fail gives one page back before writing its sidecar.
 */
#define RESERVE_PAGE 4096
static int reserve_fd = -1;
static off_t reserve_len;

void
mc_seg_reserve(void)
{
	char name[64];

	snprintf(name, sizeof(name), ".mscope-reserve-%d", (int)getpid());
	reserve_fd = openat(mc.dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			    0600);
	if (reserve_fd < 0)
		return;
	unlinkat(mc.dirfd, name, 0);
	reserve_len = 16 * RESERVE_PAGE;
	if (posix_fallocate(reserve_fd, 0, reserve_len) != 0) {
		close(reserve_fd);
		reserve_fd = -1;
		reserve_len = 0;
	}
}

static void
reserve_release(void)
{
	if (reserve_fd >= 0 && reserve_len >= RESERVE_PAGE)
		(void)!ftruncate(reserve_fd, reserve_len -= RESERVE_PAGE);
}

/*
 * <file>.lost: what this node could not write, while it cannot. Written at
 * the failure (the failed frame was cut off, so a page is usually free
 * again) and rewritten in place with the final counts at exit.
 */
/* A string fit for a JSON string as it is ('"', '\\', controls become '_'). */
static const char *
json_safe(const char *s, char *buf, size_t len)
{
	size_t j = 0;

	for (; *s != '\0' && j + 1 < len; s++)
		buf[j++] = (unsigned char)*s < 0x20 || *s == '"' || *s == '\\' || *s == 0x7f ? '_' : *s;
	buf[j] = '\0';
	return buf;
}

static void
lost_write(struct mc_node *n, const char *state)
{
	char buf[512], why[sizeof(n->why)];
	int len;

	if (n->lost_fd < 0) {
		reserve_release();
		snprintf(n->lost_name, sizeof(n->lost_name), "%s.lost", n->name);
		n->lost_fd = openat(mc.dirfd, n->lost_name,
				    O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
				    mc.cfg.file_mode);
		if (n->lost_fd < 0)
			return;
	}
	len = snprintf(buf, sizeof(buf),
		       "{\"mscope_lost\": 1, \"trace\": \"%s\", \"segment\": %u, \"state\": \"%s\", "
		       "\"records\": %" PRIu64 ", \"packets\": %" PRIu64 ", \"since_tsc\": %" PRIu64
		       ", \"error\": \"%s\"}\n",
		       n->name, n->cur.number, state, n->pend_loss_rec, n->pend_loss_pkt,
		       n->last_tsc, json_safe(n->why, why, sizeof(why)));
	if (pwrite(n->lost_fd, buf, (size_t)len, 0) == len)
		(void)ftruncate(n->lost_fd, len);
}

static void
lost_remove(struct mc_node *n)
{
	if (n->lost_fd < 0)
		return;
	close(n->lost_fd);
	n->lost_fd = -1;
	unlinkat(mc.dirfd, n->lost_name, 0);
}

/* ---------------------------------------------------------------- files */

static void
reset_flows(struct mc_node *n)
{
	memset(n->flows, 0, sizeof(*n->flows));
	if (n->mirror != NULL)
		memset(n->mirror, 0, (MC_FC_SLOTS + 1) * sizeof(*n->mirror));
	n->gen++;
}

/*
 * Create the node's next file (n->cur.number) and write its header; a file
 * whose header could not be written is removed (no empty traces). New
 * flow refs: the file defines the flows it uses itself.
 */
static int
new_file(struct mc_node *n, struct mscope_trace_error *err)
{
	struct mscope_trace_header h;
	struct mscope_writer_opts o = {
		.zstd_level = mc.cfg.zstd_level,
		.file_mode = mc.cfg.file_mode,
		.rx_seq_start = n->rx_count,
	};
	uint64_t tsc;
	int64_t rt;
	int fd;

	n->cur.plain = n->cur.number == 0 && !mc_rotating(&mc.cfg);
	set_name(n, n->cur.number, n->cur.plain);
	memset(&h, 0, sizeof(h));
	h.role = n->role;
	h.port = n->port;
	h.queue = n->queue;
	h.pid = (uint32_t)getpid();
	h.tsc_hz = mc.tsc_hz;
	h.segment = n->cur.number;
	mc_clock_pair(&tsc, &rt);
	h.anchor_tsc = tsc;
	h.anchor_realtime_ns = rt;
	snprintf(h.nf_name, sizeof(h.nf_name), "%s", mc.nf);
	snprintf(h.host, sizeof(h.host), "%s", mc.host);
	snprintf(h.run_id, sizeof(h.run_id), "%s", mc.cfg.run_id);
	snprintf(h.writer, sizeof(h.writer), "mscope-collector");
	snprintf(h.writer_version, sizeof(h.writer_version), "%s", MSCOPE_VERSION);
	fd = openat(mc.dirfd, n->name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		    mc.cfg.file_mode);
	if (fd < 0) {
		if (snprintf(err->file, sizeof(err->file), "%s", n->path) >= (int)sizeof(err->file))
			err->file[sizeof(err->file) - 2] = '.';
		snprintf(err->text, sizeof(err->text), "%s", strerror(errno));
		return -1;
	}
	if (mc.cfg.file_mode_set)
		(void)fchmod(fd, mc.cfg.file_mode); /* as asked, whatever the umask */
	n->w = mscope_writer_fdopen(fd, n->path, &h, &o, err);
	if (n->w == NULL) {
		unlinkat(mc.dirfd, n->name, 0);
		return -1;
	}
	n->last_bytes = mscope_writer_bytes(n->w);
	n->unframed_rec = n->unframed_pkt = 0;
	n->cur.tsc_first = n->cur.tsc_last = n->cur.records = n->cur.packets = 0;
	n->cur_open_tsc = rte_rdtsc();
	n->failed = false;
	n->dirty = false;
	reset_flows(n);
	return 0;
}

struct mc_node *
mc_node_open(uint8_t role, uint16_t port, uint16_t queue, uint32_t *mirror, union mc_fkey *mkeys,
	     uint8_t *mkey_ok, struct mscope_trace_error *err)
{
	struct mc_node *n = calloc(1, sizeof(*n));

	if (n == NULL) {
		snprintf(err->text, sizeof(err->text), "out of memory");
		return NULL;
	}
	n->role = role;
	n->port = port;
	n->queue = queue;
	n->lost_fd = -1;
	n->mirror = mirror;
	n->mkeys = mkeys;
	n->mkey_ok = mkey_ok;
	snprintf(n->stem, sizeof(n->stem), "%s-%sp%uq%u-%d", mc.nf,
		 role == MSCOPE_ROLE_SOURCE ? "src-" : "", port, queue, (int)getpid());
	n->flows = calloc(1, sizeof(*n->flows));
	if (role == MSCOPE_ROLE_RXQ)
		n->recent = calloc(MC_RECENT, sizeof(*n->recent));
	if (n->flows == NULL || (role == MSCOPE_ROLE_RXQ && n->recent == NULL)) {
		snprintf(err->text, sizeof(err->text), "out of memory");
		goto fail;
	}
	if (new_file(n, err) < 0)
		goto fail;
	/*
	 * Not the anchor: a source node is opened when its first entry is
	 * merged, and that entry (and others still in the rings) is older.
	 */
	n->last_tsc = 0;
	return n;
fail:
	free(n->recent);
	free(n->flows);
	free(n);
	return NULL;
}

/* Size of a closed file of ours (0 if it is gone). */
static uint64_t
file_bytes(const char *name)
{
	struct stat st;

	return fstatat(mc.dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 ? (uint64_t)st.st_size : 0;
}

static void
push_closed(struct mc_node *n)
{
	if (n->nclosed == n->cap_closed) {
		const uint32_t cap = n->cap_closed ? n->cap_closed * 2 : 8;
		struct mc_seg *p = realloc(n->closed, cap * sizeof(*p));

		if (p == NULL)
			return; /* not deleted later: over budget rather than lost */
		n->closed = p;
		n->cap_closed = cap;
	}
	n->cur.bytes = file_bytes(n->name);
	n->closed[n->nclosed++] = n->cur;
}

/* Is there less than `bytes` free for MSCOPE_DIR? */
static bool
disk_below(uint64_t bytes)
{
	struct statvfs sv;

	return fstatvfs(mc.dirfd, &sv) == 0 && (uint64_t)sv.f_bavail * sv.f_frsize < bytes;
}

/*
 * A write failed: the writer cut the file to its last complete frame.
 * Close it; what the lost frame held and everything until a new file can
 * be written is counted in pend_loss (one line now, a sidecar, and a LOSS
 * record once writing works again).
 */
static void
fail(struct mc_node *n, uint64_t rec, uint64_t pkt)
{
	const struct mscope_trace_error *e = mscope_writer_error(n->w);
	const uint64_t r = n->unframed_rec + rec, p = n->unframed_pkt + pkt;

	snprintf(n->why, sizeof(n->why), "%s", e != NULL ? e->text : "write failed");
	n->pend_loss_rec += r;
	n->pend_loss_pkt += p;
	n->failed_rec += r;
	n->failed_pkt += p;
	n->unframed_rec = n->unframed_pkt = 0;
	(void)mscope_writer_close(n->w);
	n->w = NULL;
	n->failed = true;
	n->dirty = false;
	push_closed(n);
	if (!n->warned_fail) /* once: a disk that stays nearly full would repeat it */
		MC_LOG("%s: %s; records are counted as lost (and listed in %s.lost) until a new "
		       "file can be written", MC_ESC(n->path), MC_ESC(n->why), MC_ESC(n->name));
	n->warned_fail = true;
	n->retry_tsc = rte_rdtsc() + ms_tsc(RETRY_MS);
	lost_write(n, "writing");
}

bool
mc_seg_wrote(struct mc_node *n, int rc, uint64_t tsc, uint64_t rec, uint64_t pkt)
{
	const uint64_t b = mscope_writer_bytes(n->w);

	if (b != n->last_bytes) {
		/* a frame went out: it held everything before this record */
		n->last_bytes = b;
		n->unframed_rec = n->unframed_pkt = 0;
	}
	if (rc < 0) {
		fail(n, rec, pkt);
		return false;
	}
	n->dirty = true;
	n->unframed_rec += rec;
	n->unframed_pkt += pkt;
	if (rec != 0) {
		if (n->cur.records == 0)
			n->cur.tsc_first = tsc;
		n->cur.tsc_last = tsc;
		n->cur.records += rec;
		n->cur.packets += pkt;
	}
	return true;
}

/* End the frame now (so that what the file holds is on disk). */
static bool
flush_now(struct mc_node *n)
{
	if (n->failed)
		return false;
	return mc_seg_wrote(n, mscope_writer_flush(n->w), 0, 0, 0);
}

/* Write the deletions and pending losses into the node's file, and flush. */
static int
pending_write(struct mc_node *n, uint64_t horizon)
{
	for (uint32_t i = 0; i < n->ndels; i++) {
		struct mscope_deleted d = n->dels[i];

		d.tsc = mc_stamp(n, horizon);
		if (mscope_writer_deleted(n->w, &d) < 0)
			return -1;
	}
	if (n->pend_loss_rec != 0 || n->pend_loss_pkt != 0) {
		struct mscope_loss l = {
			.tsc = mc_stamp(n, horizon),
			.records = n->pend_loss_rec,
			.packets = n->pend_loss_pkt,
		};

		if (mscope_writer_loss(n->w, &l) < 0)
			return -1;
	}
	return mscope_writer_flush(n->w);
}

static bool
pending(const struct mc_node *n)
{
	return n->ndels != 0 || n->pend_loss_rec != 0 || n->pend_loss_pkt != 0;
}

/* Deletions and losses into the file; cleared only once on disk. */
static void
put_pending(struct mc_node *n, uint64_t horizon)
{
	if (n->failed || !pending(n))
		return;
	if (mc_seg_wrote(n, pending_write(n, horizon), 0, 0, 0)) {
		n->ndels = 0;
		n->pend_loss_rec = n->pend_loss_pkt = 0;
	}
}

/*
 * Delete closed segment i of node n: its file goes, a DELETED record says
 * so. @return false if the file could not be removed (it stays counted).
 */
static bool
delete_seg(struct mc_node *n, uint32_t i, uint64_t horizon)
{
	const struct mc_seg s = n->closed[i];
	char name[160];

	seg_name(n, s.number, s.plain, name, sizeof(name));
	if (unlinkat(mc.dirfd, name, 0) != 0 && errno != ENOENT)
		return false;
	memmove(n->closed + i, n->closed + i + 1, (n->nclosed - i - 1) * sizeof(*n->closed));
	n->nclosed--;
	if (n->ndels == n->cap_dels) {
		const uint32_t cap = n->cap_dels ? n->cap_dels * 2 : 8;
		struct mscope_deleted *p = realloc(n->dels, cap * sizeof(*p));

		if (p == NULL)
			return true;
		n->dels = p;
		n->cap_dels = cap;
	}
	n->dels[n->ndels++] = (struct mscope_deleted){
		.segment = s.number,
		.tsc_first = s.tsc_first,
		.tsc_last = s.tsc_last,
		.records = s.records,
		.packets = s.packets,
	};
	put_pending(n, horizon);
	return true;
}

/*
 * The node's next file (segment number + 1). On failure the node stays
 * failed, and named after its last file (numbers have no gaps).
 */
static bool
next_file(struct mc_node *n, struct mscope_trace_error *err)
{
	const struct mc_seg prev = n->cur;

	n->cur.number++;
	memset(err, 0, sizeof(*err));
	if (new_file(n, err) == 0)
		return true;
	n->cur = prev;
	set_name(n, prev.number, prev.plain);
	n->failed = true;
	n->retry_tsc = rte_rdtsc() + ms_tsc(RETRY_MS);
	return false;
}

/* Close the current file and start the next one. */
static void
rotate(struct mc_node *n, uint64_t horizon)
{
	struct mscope_trace_error err;

	if (n->failed || !flush_now(n))
		return;
	(void)mscope_writer_close(n->w); /* flushed: only the closing index can be missing */
	n->w = NULL;
	push_closed(n);
	if (!next_file(n, &err)) {
		snprintf(n->why, sizeof(n->why), "%s", err.text);
		if (!n->warned_fail)
			MC_LOG("%s: %s; records are counted as lost until a new file can be written",
			       MC_ESC(err.file), MC_ESC(err.text));
		n->warned_fail = true;
		return;
	}
	put_pending(n, horizon);
}

/* A failed node: try a new file; on success it takes the counts of what was lost. */
static void
retry(struct mc_node *n, uint64_t horizon)
{
	struct mscope_trace_error err;
	const struct mc_seg prev = n->cur;

	if (!next_file(n, &err))
		return;
	if (pending_write(n, horizon) < 0) {
		/* not even that fits: the new file goes, the old one stays the last */
		(void)mscope_writer_close(n->w);
		n->w = NULL;
		unlinkat(mc.dirfd, n->name, 0);
		n->cur = prev;
		set_name(n, prev.number, prev.plain);
		n->failed = true;
		n->retry_tsc = rte_rdtsc() + ms_tsc(RETRY_MS);
		return;
	}
	n->last_bytes = mscope_writer_bytes(n->w);
	n->ndels = 0;
	n->pend_loss_rec = n->pend_loss_pkt = 0;
	lost_remove(n);
	if (!n->warned_back)
		MC_LOG("%s: writing again; what was lost meanwhile is counted in it",
		       MC_ESC(n->path));
	n->warned_back = true;
}

/* ---------------------------------------------------------------- bounds */

static struct mc_node *oldest_node;
static uint32_t oldest_i;
static uint64_t total_bytes, oldest_tsc;
static unsigned nb_streams;

static void
sum_node(struct mc_node *n, uint64_t unused)
{
	nb_streams++;
	if (n->w != NULL)
		total_bytes += mscope_writer_bytes(n->w);
	for (uint32_t i = 0; i < n->nclosed; i++) {
		total_bytes += n->closed[i].bytes;
		if (oldest_node == NULL || n->closed[i].tsc_last < oldest_tsc) {
			oldest_node = n;
			oldest_i = i;
			oldest_tsc = n->closed[i].tsc_last;
		}
	}
}

/* Scan every node: total bytes, the oldest closed segment. */
static void
survey(void)
{
	oldest_node = NULL;
	total_bytes = 0;
	nb_streams = 0;
	mc_for_each_node(sum_node, 0);
}

/*
 * Rotation size: MSCOPE_SEGMENT_BYTES, and with a budget at most a quarter
 * of each queue's share, so that deleting whole segments keeps the
 * directory near the budget.
 */
static uint64_t
seg_limit(void)
{
	uint64_t lim = mc.cfg.seg_bytes;

	if (mc.cfg.budget != 0) {
		uint64_t share = mc.cfg.budget / 4 / (nb_streams ? nb_streams : 1);

		if (share < MC_MIN_SEG_BYTES)
			share = MC_MIN_SEG_BYTES;
		if (lim == 0 || share < lim)
			lim = share;
	}
	return lim;
}

static uint64_t round_now, round_horizon;

static void
node_round(struct mc_node *n, uint64_t unused)
{
	const uint64_t lim = seg_limit();

	if (n->failed) {
		if (n->w != NULL || round_now < n->retry_tsc)
			return;
		/* a full disk with old segments of ours: free the oldest, as a ring does */
		if (mc_rotating(&mc.cfg) && disk_below(LOW_SPACE)) {
			survey();
			if (oldest_node != NULL)
				delete_seg(oldest_node, oldest_i, round_horizon);
		}
		if (!disk_below(RETRY_SPACE))
			retry(n, round_horizon);
		else
			n->retry_tsc = round_now + ms_tsc(RETRY_MS);
		return;
	}
	if (!mc_rotating(&mc.cfg))
		return;
	if ((mc.cfg.seg_seconds != 0 &&
	     round_now - n->cur_open_tsc >= mc.tsc_hz * mc.cfg.seg_seconds) ||
	    (lim != 0 && mscope_writer_bytes(n->w) >= lim))
		rotate(n, round_horizon);
	while (mc.cfg.segments != 0 && n->nclosed + 1 > mc.cfg.segments &&
	       delete_seg(n, 0, round_horizon))
		;
}

/* Delete the oldest segments of the process while it is over its budget. */
static void
enforce_budget(uint64_t horizon)
{
	for (;;) {
		survey();
		if (oldest_node == NULL || total_bytes <= mc.cfg.budget ||
		    !delete_seg(oldest_node, oldest_i, horizon))
			return;
	}
}

/* ---------------------------------------------------------------- keep */

static struct stat keep_seen;
static uint64_t keep_next;
static bool keep_init;
static int kept_dir = -1;
static unsigned kept_files;

/* Open kept/<name>/ (created if needed), never through a symlink. */
static int
open_kept(const char *name)
{
	int k, d;

	(void)mkdirat(mc.dirfd, "kept", 0777);
	k = openat(mc.dirfd, "kept", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (k < 0)
		return -1;
	(void)mkdirat(k, name, 0777);
	d = openat(k, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	close(k);
	return d;
}

static void
keep_node(struct mc_node *n, uint64_t horizon)
{
	char name[160];

	rotate(n, horizon); /* the kept files are complete (a failed node keeps what it has) */
	for (uint32_t i = 0; i < n->nclosed; i++) {
		seg_name(n, n->closed[i].number, n->closed[i].plain, name, sizeof(name));
		if (linkat(mc.dirfd, name, kept_dir, name, 0) == 0 || errno == EEXIST)
			kept_files++;
	}
	if (n->lost_fd >= 0 && linkat(mc.dirfd, n->lost_name, kept_dir, n->lost_name, 0) == 0)
		kept_files++;
}

/* Is name a kept/ folder name we accept (the charset of NF names)? */
static bool
keep_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 100 || s[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '_' || s[i] == '-'))
			return false;
	return true;
}

/* Do the keep asked for by the request file: link, then acknowledge. */
static void
do_keep(const char *name, uint64_t horizon)
{
	char ack[64], line[128];
	int fd, len;

	kept_dir = open_kept(name);
	if (kept_dir < 0) {
		MC_LOG("keep %s: cannot open %s/kept/%s: %s", name, MC_ESC(mc.cfg.dir), name,
		       strerror(errno));
		return;
	}
	kept_files = 0;
	mc_for_each_node(keep_node, horizon);
	snprintf(ack, sizeof(ack), ".ack-%d", (int)getpid());
	fd = openat(kept_dir, ack, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd >= 0) {
		len = snprintf(line, sizeof(line), "pid %d nf %s files %u\n", (int)getpid(), mc.nf,
			       kept_files);
		(void)!write(fd, line, (size_t)len);
		close(fd);
	}
	close(kept_dir);
	kept_dir = -1;
}

/* SIGUSR2: ask every collector of the directory (this one too) for a keep. */
static void
request_keep(void)
{
	char tmp[64], line[160], stamp[32];
	const time_t t = time(NULL);
	struct tm tm;
	int fd, len;

	gmtime_r(&t, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	snprintf(tmp, sizeof(tmp), KEEP_FILE ".%d", (int)getpid());
	fd = openat(mc.dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	len = snprintf(line, sizeof(line), "mscope-keep 1 %s-signal-%s\n", stamp, mc.nf);
	if (write(fd, line, (size_t)len) != len) {
		close(fd);
		unlinkat(mc.dirfd, tmp, 0);
		return;
	}
	close(fd);
	if (renameat(mc.dirfd, tmp, mc.dirfd, KEEP_FILE) != 0)
		unlinkat(mc.dirfd, tmp, 0);
}

/* A stat every KEEP_POLL_MS; the file is read only when it changed. */
static void
poll_keep(uint64_t now, uint64_t horizon)
{
	struct stat st;
	char buf[192], name[128];
	bool same;

	if (now < keep_next)
		return;
	keep_next = now + ms_tsc(KEEP_POLL_MS);
	if (__atomic_exchange_n(&mc.keep_sig, 0, __ATOMIC_ACQ_REL))
		request_keep();
	if (fstatat(mc.dirfd, KEEP_FILE, &st, AT_SYMLINK_NOFOLLOW) != 0)
		memset(&st, 0, sizeof(st));
	same = st.st_ino == keep_seen.st_ino && st.st_dev == keep_seen.st_dev &&
	       st.st_mtim.tv_sec == keep_seen.st_mtim.tv_sec &&
	       st.st_mtim.tv_nsec == keep_seen.st_mtim.tv_nsec && st.st_size == keep_seen.st_size;
	keep_seen = st;
	if (!keep_init) {
		keep_init = true; /* a request older than this process is not for it */
		return;
	}
	if (same || !S_ISREG(st.st_mode))
		return;
	if (mc_dir_read_small(mc.dirfd, KEEP_FILE, buf, sizeof(buf)) <= 0 ||
	    sscanf(buf, "mscope-keep 1 %127s", name) != 1 || !keep_name_ok(name))
		return;
	do_keep(name, horizon);
}

/* ---------------------------------------------------------------- rounds */

void
mc_seg_round(uint64_t now, uint64_t horizon)
{
	round_now = now;
	round_horizon = horizon;
	survey();
	mc_for_each_node(node_round, 0);
	if (mc.cfg.budget != 0)
		enforce_budget(horizon);
	poll_keep(now, horizon);
}

void
mc_seg_close(struct mc_node *n, uint64_t horizon)
{
	if (!n->failed)
		put_pending(n, horizon);
	if (n->w != NULL && mscope_writer_close(n->w) < 0 && !n->failed) {
		n->failed = true;
		n->pend_loss_rec += n->unframed_rec;
		n->pend_loss_pkt += n->unframed_pkt;
		snprintf(n->why, sizeof(n->why), "final write failed");
	}
	n->w = NULL;
	if (n->failed && n->pend_loss_rec == 0 && n->pend_loss_pkt == 0)
		lost_remove(n); /* only clock records were not written */
	if (n->failed && (n->pend_loss_rec != 0 || n->pend_loss_pkt != 0)) {
		lost_write(n, "final");
		MC_LOG("%s: %" PRIu64 " records (%" PRIu64 " packets) could not be written (%s)%s%s",
		       MC_ESC(n->path), n->pend_loss_rec, n->pend_loss_pkt, MC_ESC(n->why),
		       n->lost_fd >= 0 ? "; counts in " : "",
		       n->lost_fd >= 0 ? MC_ESC(n->lost_name) : "");
	}
	if (n->lost_fd >= 0)
		close(n->lost_fd);
	n->lost_fd = -1;
	n->failed = true;
}
