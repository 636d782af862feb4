/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Stands in for an NF with DPDK linked statically: it carries its own
 * rte_eth_dev_start (exported, as with -rdynamic) and DPDK's ethdev trace
 * point names, and no libethdev. The collector must say once that it is
 * inactive, and the program must run normally.
 */
#include <stdint.h>
#include <stdio.h>

/* what ethdev_trace_points.c leaves in a static binary */
const char fake_trace_point_name[] = "lib.ethdev.start";

int rte_eth_dev_start(uint16_t port_id);

int
rte_eth_dev_start(uint16_t port_id)
{
	return port_id == 0 ? 0 : -1;
}

int
main(void)
{
	printf("started %d\n", rte_eth_dev_start(0));
	return 0;
}
