/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mscope keep DIR [--reason TEXT] [--timeout SECONDS]: the flight
 * recorder's trigger. Every collector recording into DIR (with rotation,
 * the last N seconds) closes its current segment files and hard-links its
 * segments into DIR/kept/<UTC time>-<reason>/, where rotation never deletes
 * them. The request is the file DIR/.mscope-keep, which the collectors'
 * writer threads check every 100 ms (a stat); each answers with
 * kept/<name>/.ack-<pid>. Files of processes that are gone are linked here.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"

#define MAX_PIDS 256

static void
usage(FILE *f)
{
	fprintf(f, "usage: mscope keep DIR [--reason TEXT] [--timeout SECONDS]\n\n"
		"Keep what the collectors recording into DIR hold now (flight recorder):\n"
		"each closes its current segment files and hard-links its segments into\n"
		"DIR/kept/<UTC time>-<reason>/, which rotation never deletes. Waits until\n"
		"every live collector of DIR answered (default 5 s) and lists what was kept.\n"
		"Exit 0 when all answered, 1 otherwise.\n");
}

/* The pid in a trace file name: <stem>-<pid>.mst or <stem>-<pid>.<segment>.mst. */
static long
name_pid(const char *name)
{
	char buf[256], *dot, *dash, *end;
	size_t n = strlen(name);
	long pid;

	if (n < 5 || n >= sizeof(buf) || strcmp(name + n - 4, ".mst") != 0)
		return -1;
	memcpy(buf, name, n - 4);
	buf[n - 4] = '\0';
	dot = strrchr(buf, '.');
	if (dot != NULL && dot[1] != '\0' && strspn(dot + 1, "0123456789") == strlen(dot + 1))
		*dot = '\0';
	dash = strrchr(buf, '-');
	if (dash == NULL || dash[1] == '\0')
		return -1;
	pid = strtol(dash + 1, &end, 10);
	return *end == '\0' && pid > 0 ? pid : -1;
}

static bool
alive(long pid)
{
	return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

/* The kept/ folder name: UTC time and the reason in the charset of file names. */
static void
folder_name(const char *reason, char *buf, size_t len)
{
	const time_t t = time(NULL);
	struct tm tm;
	size_t j;

	gmtime_r(&t, &tm);
	j = strftime(buf, len, "%Y%m%dT%H%M%SZ-", &tm);
	for (size_t i = 0; reason[i] != '\0' && j + 1 < len && i < 48; i++) {
		const char c = reason[i];
		const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
				(c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';

		buf[j++] = ok ? c : '_';
	}
	buf[j] = '\0';
}

static int
open_dir_at(int at, const char *name, bool create)
{
	if (create && mkdirat(at, name, 0777) != 0 && errno != EEXIST)
		return -1;
	return openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/* Write the request atomically (a new file renamed over the old one). */
static int
write_request(int dfd, const char *folder)
{
	char tmp[64], line[256];
	int fd, len;

	snprintf(tmp, sizeof(tmp), ".mscope-keep.%d", (int)getpid());
	fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	len = snprintf(line, sizeof(line), "mscope-keep 1 %s\n", folder);
	if (write(fd, line, (size_t)len) != len || close(fd) != 0) {
		unlinkat(dfd, tmp, 0);
		return -1;
	}
	if (renameat(dfd, tmp, dfd, ".mscope-keep") != 0) {
		unlinkat(dfd, tmp, 0);
		return -1;
	}
	return 0;
}

static int
by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
cmd_keep(int argc, char **argv)
{
	const char *dir = NULL, *reason = "manual";
	double timeout = 5;
	long live[MAX_PIDS];
	unsigned nlive = 0, answered = 0, linked_here = 0, nfiles = 0;
	bool acked[MAX_PIDS] = { false };
	char folder[128], ack[64];
	char *files[4096];
	int dfd, kfd, sfd;
	struct dirent *e;
	DIR *d;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(argv[i], "--reason") && i + 1 < argc) {
			reason = argv[++i];
		} else if (!strcmp(argv[i], "--timeout") && i + 1 < argc) {
			char *end;

			timeout = strtod(argv[++i], &end);
			if (*end != '\0' || !(timeout > 0 && timeout <= 3600)) {
				fprintf(stderr, "mscope keep: --timeout %s is not 0..3600 seconds\n",
					argv[i]);
				return 2;
			}
		} else if (argv[i][0] != '-' && dir == NULL) {
			dir = argv[i];
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (dir == NULL) {
		usage(stderr);
		return 2;
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		fprintf(stderr, "mscope keep: %s: %s\n", dir, strerror(errno));
		return 1;
	}
	folder_name(reason, folder, sizeof(folder));
	kfd = open_dir_at(dfd, "kept", true);
	/* two keeps within a second with one reason: -2, -3, ... */
	for (int k = 2; kfd >= 0 && mkdirat(kfd, folder, 0777) != 0 && errno == EEXIST && k < 100;
	     k++) {
		char *dash = k > 2 ? strrchr(folder, '-') : NULL;

		if (dash != NULL)
			*dash = '\0';
		snprintf(folder + strlen(folder), sizeof(folder) - strlen(folder), "-%d", k);
	}
	if (kfd < 0 || (sfd = open_dir_at(kfd, folder, false)) < 0) {
		fprintf(stderr, "mscope keep: cannot create %s/kept/%s: %s\n", dir, folder,
			strerror(errno));
		return 1;
	}
	/* the collectors recording here now; files of dead ones are linked by us */
	d = fdopendir(dup(dfd));
	while (d != NULL && (e = readdir(d)) != NULL) {
		const long pid = name_pid(e->d_name);
		struct stat st;
		unsigned k;

		if (pid < 0 || fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		if (!alive(pid)) {
			linked_here += linkat(dfd, e->d_name, sfd, e->d_name, 0) == 0;
			continue;
		}
		for (k = 0; k < nlive && live[k] != pid; k++)
			;
		if (k == nlive && nlive < MAX_PIDS)
			live[nlive++] = pid;
	}
	if (d != NULL)
		closedir(d);
	if (nlive > 0 && write_request(dfd, folder) != 0) {
		fprintf(stderr, "mscope keep: cannot write %s/.mscope-keep: %s\n", dir,
			strerror(errno));
		return 1;
	}
	for (unsigned t = 0; answered < nlive && t < timeout * 20; t++) {
		struct timespec ts = { 0, 50 * 1000 * 1000 };

		nanosleep(&ts, NULL);
		for (unsigned k = 0; k < nlive; k++) {
			struct stat st;

			snprintf(ack, sizeof(ack), ".ack-%ld", live[k]);
			if (!acked[k] && fstatat(sfd, ack, &st, AT_SYMLINK_NOFOLLOW) == 0) {
				acked[k] = true;
				answered++;
			}
		}
	}
	/* list what is there; the acks were for us only */
	d = fdopendir(dup(sfd));
	while (d != NULL && (e = readdir(d)) != NULL) {
		if (!strncmp(e->d_name, ".ack-", 5))
			unlinkat(sfd, e->d_name, 0);
		else if (e->d_name[0] != '.' && nfiles < 4096)
			files[nfiles++] = strdup(e->d_name);
	}
	if (d != NULL)
		closedir(d);
	qsort(files, nfiles, sizeof(files[0]), by_name);
	printf("kept %s/kept/%s: %u files (%u collectors answered of %u live, %u files of "
	       "exited processes)\n", dir, folder, nfiles, answered, nlive, linked_here);
	for (unsigned i = 0; i < nfiles; i++) {
		printf("  %s\n", files[i]);
		free(files[i]);
	}
	for (unsigned k = 0; k < nlive; k++)
		if (!acked[k])
			fprintf(stderr, "mscope keep: pid %ld did not answer within %g s\n", live[k],
				timeout);
	close(sfd);
	close(kfd);
	close(dfd);
	return answered == nlive ? 0 : 1;
}
