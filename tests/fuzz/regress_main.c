/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Regression driver: replays fuzz inputs (files, or every file in the given
 * directories) through LLVMFuzzerTestOneInput, so the corpus runs as an
 * ordinary test in builds without libFuzzer (as zstd's regression driver).
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	long len;

	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0) {
		fprintf(stderr, "regress: cannot read %s\n", path);
		if (f)
			fclose(f);
		return -1;
	}
	/* exact size so ASan catches reads one past the end */
	buf = malloc(len ? (size_t)len : 1);
	if (buf == NULL || fread(buf, 1, (size_t)len, f) != (size_t)len) {
		fprintf(stderr, "regress: cannot read %s\n", path);
		fclose(f);
		free(buf);
		return -1;
	}
	fclose(f);
	LLVMFuzzerTestOneInput(buf, (size_t)len);
	free(buf);
	return 0;
}

int
main(int argc, char **argv)
{
	size_t n = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE_OR_DIR...\n", argv[0]);
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		struct stat sb;

		if (stat(argv[i], &sb) != 0) {
			fprintf(stderr, "regress: %s: not found\n", argv[i]);
			return 1;
		}
		if (S_ISDIR(sb.st_mode)) {
			struct dirent **ents;
			const int k = scandir(argv[i], &ents, NULL, alphasort);

			if (k < 0) {
				fprintf(stderr, "regress: cannot list %s\n", argv[i]);
				return 1;
			}
			for (int j = 0; j < k; j++) {
				char path[4096];

				if (ents[j]->d_name[0] != '.') {
					snprintf(path, sizeof(path), "%s/%s", argv[i], ents[j]->d_name);
					if (run_file(path) < 0)
						return 1;
					n++;
				}
				free(ents[j]);
			}
			free(ents);
		} else {
			if (run_file(argv[i]) < 0)
				return 1;
			n++;
		}
	}
	printf("regress: %zu inputs replayed\n", n);
	return n > 0 ? 0 : 1;
}
