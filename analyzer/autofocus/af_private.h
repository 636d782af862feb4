/* SPDX-License-Identifier: BSD-3-Clause */
/* Internals shared by the autofocus sources; not installed. */
#ifndef MSCOPE_AF_PRIVATE_H
#define MSCOPE_AF_PRIVATE_H

/** Whether a protocol carries ports (TCP, UDP, DCCP, SCTP, UDP-Lite). */
static inline int
af_proto_has_ports(int proto)
{
	return proto == 6 || proto == 17 || proto == 33 || proto == 132 || proto == 136;
}

#endif
