/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target: the scenario parser (mscope_sim_load_json) and its
 * printer (mscope_sim_scenario_json, `mscope sim --dry-run --json`). Every
 * input must be refused with a message naming a field, or accepted; an
 * accepted scenario printed and parsed again must give the same JSON.
 * A capture named in traffic.pcap is replaced by a missing file, so that
 * the target never opens what an input names (/dev/stdin would block).
 * Built by tools/fuzz-scenario (clang, -Dfuzz=true); the in-tree corpus is
 * replayed in every build by fuzz_scenario_regress.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "mscope_sim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[1024];
	json_error_t je;
	json_t *root = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &je);

	if (root == NULL)
		return 0;
	json_t *traffic = json_object_get(root, "traffic");
	if (json_is_object(traffic) && json_object_get(traffic, "pcap"))
		json_object_set_new(traffic, "pcap", json_string("/nonexistent/fuzz.pcap"));
	struct mscope_sim_scenario *s = mscope_sim_load_json(root, "fuzz", NULL, err, sizeof(err));
	if (s == NULL) {
		/* refused: the message names the scenario */
		if (strncmp(err, "fuzz: ", 6) != 0)
			abort();
	} else {
		json_t *a = mscope_sim_scenario_json(s);
		if (a == NULL)
			abort();
		struct mscope_sim_scenario *t = mscope_sim_load_json(a, "fuzz", NULL, err,
			sizeof(err));
		if (t == NULL) {
			fprintf(stderr, "printed scenario refused: %s\n", err);
			abort();
		}
		json_t *b = mscope_sim_scenario_json(t);
		if (b == NULL || !json_equal(a, b)) {
			fprintf(stderr, "printed scenario changed when loaded again\n");
			abort();
		}
		json_decref(b);
		json_decref(a);
		mscope_sim_free(t);
		mscope_sim_free(s);
	}
	json_decref(root);
	return 0;
}
