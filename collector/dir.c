/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * MSCOPE_DIR: opened once (created with its parents if missing) and then
 * only used through that descriptor, so that every file of the collector is
 * created in it and nowhere else, whatever the path later points to.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "collector_priv.h"

/*
 * Walk `path` component by component. Existing components are the user's
 * (a symlink among them, /var/run -> /run, is followed as the path says);
 * a missing one is created (mode 0777 & ~umask) and from then on nothing is
 * followed: a symlink that appears in the part we created is refused
 * (O_NOFOLLOW), and so is a dangling symlink where a directory is missing
 * (we never create through it).
 */
int
mc_dir_open(const char *path, char *why, size_t why_len)
{
	char buf[PATH_MAX], *p, *next;
	int fd, nfd;
	bool created = false;

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf)) {
		snprintf(why, why_len, "path too long");
		return -1;
	}
	fd = open(buf[0] == '/' ? "/" : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, why_len, "%s", strerror(errno));
		return -1;
	}
	for (p = buf; p != NULL; p = next) {
		while (*p == '/')
			p++;
		next = strchr(p, '/');
		if (next != NULL)
			*next++ = '\0';
		if (*p == '\0')
			continue;
		nfd = openat(fd, p, O_RDONLY | O_DIRECTORY | O_CLOEXEC | (created ? O_NOFOLLOW : 0));
		if (nfd < 0 && errno == ENOENT) {
			if (mkdirat(fd, p, 0777) == 0)
				created = true;
			else if (errno != EEXIST) {
				snprintf(why, why_len, "cannot create %s: %s", p, strerror(errno));
				close(fd);
				return -1;
			}
			/* ours, or raced into existence: either way not followed */
			nfd = openat(fd, p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		}
		if (nfd < 0) {
			const int e = errno;
			struct stat st;
			const bool link = fstatat(fd, p, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
					  S_ISLNK(st.st_mode);

			snprintf(why, why_len, "%s: %s", p,
				 link ? "a symlink where a directory was to be created" : strerror(e));
			close(fd);
			return -1;
		}
		close(fd);
		fd = nfd;
	}
	return fd;
}

/* Read a small regular file of the directory (never a FIFO, device or symlink). */
ssize_t
mc_dir_read_small(int dirfd, const char *name, char *buf, size_t len)
{
	struct stat st;
	ssize_t k;
	const int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || len == 0) {
		close(fd);
		errno = EINVAL;
		return -2;
	}
	k = read(fd, buf, len - 1);
	close(fd);
	if (k < 0)
		return -1;
	buf[k] = '\0';
	return k;
}
