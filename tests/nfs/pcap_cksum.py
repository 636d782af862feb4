#!/usr/bin/env python3
"""Verify the IPv4 header and TCP/UDP/ICMP checksums of every packet in a
pcap whose L4 segment is complete; print counts, exit 1 on any bad one."""
import struct
import sys


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def packets(path):
    with open(path, "rb") as f:
        hdr = f.read(24)
        magic = struct.unpack("<I", hdr[:4])[0]
        end = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
        while True:
            ph = f.read(16)
            if len(ph) < 16:
                return
            _, _, incl, orig = struct.unpack(end + "IIII", ph)
            yield f.read(incl)


def main():
    ok = bad = skipped = 0
    for pkt in packets(sys.argv[1]):
        off = 14
        if len(pkt) < 34:
            skipped += 1
            continue
        etype = struct.unpack("!H", pkt[12:14])[0]
        while etype in (0x8100, 0x88A8):
            etype = struct.unpack("!H", pkt[off + 2:off + 4])[0]
            off += 4
        if etype != 0x0800:
            skipped += 1
            continue
        ihl = (pkt[off] & 0xF) * 4
        tot = struct.unpack("!H", pkt[off + 2:off + 4])[0]
        ip = pkt[off:off + ihl]
        good = csum(ip) == 0xFFFF
        proto = pkt[off + 9]
        frag = struct.unpack("!H", pkt[off + 6:off + 8])[0] & 0x1FFF
        l4 = pkt[off + ihl:off + tot]
        if len(pkt) - off < tot or frag:
            skipped += 1
        elif proto in (6, 17):
            pseudo = ip[12:20] + struct.pack("!BBH", 0, proto, len(l4))
            if proto == 17 and l4[6:8] == b"\0\0":
                pass
            else:
                good = good and csum(pseudo + l4) == 0xFFFF
        elif proto == 1:
            good = good and csum(l4) == 0xFFFF
        if good:
            ok += 1
        else:
            bad += 1
    print("checksums: %d good, %d bad, %d not checked" % (ok, bad, skipped))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
