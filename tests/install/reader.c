/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A program of someone else's: built against the *installed* libmscope-trace
 * (pkg-config mscope-trace) by tests/install/install.sh, it reads trace
 * files with the public API only and prints one line of counts per file.
 */
#include <mscope_trace.h>
#include <stdio.h>

int
main(int argc, char **argv)
{
	int status = 0;

	for (int i = 1; i < argc; i++) {
		struct mscope_trace_error err = { { 0 } };
		struct mscope_trace_reader *r = mscope_reader_open(argv[i], &err);
		const struct mscope_trace_header *h;
		struct mscope_record rec;
		unsigned long long n[8] = { 0 }, rx = 0, tx = 0, drops = 0;
		int rc;

		if (r == NULL) {
			fprintf(stderr, "reader: %s: %s\n", err.file, err.text);
			status = 1;
			continue;
		}
		h = mscope_reader_header(r);
		while ((rc = mscope_reader_next(r, &rec, &err)) == 1) {
			if ((unsigned)rec.type < 8)
				n[rec.type]++;
			if (rec.type == MSCOPE_REC_RX)
				rx += rec.u.rx.n;
			else if (rec.type == MSCOPE_REC_TX)
				tx += rec.u.tx.accepted;
			else if (rec.type == MSCOPE_REC_DROP)
				drops += rec.u.drop.n;
		}
		printf("%s nf=%s role=%u rx_records=%llu tx_records=%llu flows=%llu "
		       "rx=%llu tx=%llu drops=%llu\n",
		       argv[i], h->nf_name, h->role, n[MSCOPE_REC_RX], n[MSCOPE_REC_TX],
		       n[MSCOPE_REC_FLOW], rx, tx, drops);
		if (rc < 0) {
			fprintf(stderr, "reader: %s: offset %llu: %s\n", err.file,
				(unsigned long long)err.offset, err.text);
			status = 1;
		}
		mscope_reader_close(r);
	}
	return status;
}
