#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Ask a DPDK program's telemetry socket (v2, as dpdk-telemetry.py does).

usage: tel_query.py SOCKET COMMAND

Prints the reply on one line for the test scripts: a dict as " key=value"
pairs, an array as its items separated by spaces. Exit status 0, or 3 when
the program answered null (unknown command, bad parameter), 1 when the
socket cannot be reached or the reply is not JSON.
"""
import json
import socket
import sys


def main():
    if len(sys.argv) != 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    path, cmd = sys.argv[1], sys.argv[2]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(5)
    try:
        s.connect(path)
        hello = json.loads(s.recv(1024).decode())
        s.send(cmd.encode())
        reply = json.loads(s.recv(hello["max_output_len"]).decode())
    except (OSError, ValueError, KeyError) as e:
        print(f"tel_query: {path}: {e}", file=sys.stderr)
        return 1
    finally:
        s.close()
    value = reply.get(cmd.split(",", 1)[0])
    if value is None:
        print(f"tel_query: {cmd}: null reply: {reply}", file=sys.stderr)
        return 3
    if isinstance(value, dict):
        print("".join(f" {k}={v}" for k, v in value.items()))
    elif isinstance(value, list):
        print(" ".join(str(v) for v in value))
    else:
        print(value)
    return 0


if __name__ == "__main__":
    sys.exit(main())
