#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""fsync_rate.py - the disk's durable-append rate, the reference next to
cairn's durable registrations: appends 4 KiB and calls fdatasync in a loop
for SECONDS in DIR (the registry's data directory, so the same file system
and device), then prints one `key=value` line: ops/s, mean, p50, p99 and max
latency in ms. One fdatasync per write is what a log without group commit
pays per acknowledged record.

usage: fsync_rate.py DIR [SECONDS]
"""
import os
import sys
import time


def main():
    if len(sys.argv) < 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    directory = sys.argv[1]
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 3.0
    path = os.path.join(directory, "fsync-probe.%d" % os.getpid())
    block = os.urandom(4096)
    lat = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fsync(fd)
        start = time.perf_counter()
        end = start + seconds
        now = start
        while now < end:
            t0 = time.perf_counter()
            if os.write(fd, block) != len(block):
                raise OSError("short write")
            os.fdatasync(fd)
            now = time.perf_counter()
            lat.append(now - t0)
        total = now - start
    finally:
        os.close(fd)
        os.unlink(path)
    lat.sort()
    n = len(lat)
    print("fsync ops=%d seconds=%.3f ops_per_s=%.1f mean_ms=%.3f p50_ms=%.3f p99_ms=%.3f max_ms=%.3f"
          % (n, total, n / total, 1000 * sum(lat) / n, 1000 * lat[n // 2],
             1000 * lat[min(n - 1, int(n * 0.99))], 1000 * lat[-1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
