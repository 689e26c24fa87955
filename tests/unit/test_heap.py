"""trim_heap gives the C heap's free pages back: RSS falls after a fragmenting workload.

The workload frees most of 48 MiB of 2 KiB objects (above pymalloc's 512-byte limit, so they
live on glibc's heap) but keeps one in 32 alive, so the freed memory is in holes the heap cannot
shrink past, which glibc keeps until ``malloc_trim`` releases them.
"""

from __future__ import annotations

import gc

from runlater.heap import can_trim, trim_heap


def _rss_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS line")


def test_this_machine_can_trim() -> None:
    assert can_trim(), "the test machine runs glibc, which has malloc_trim"


def test_trim_returns_the_holes_of_a_fragmented_heap() -> None:
    blocks = [bytearray(2048) for _ in range(24 * 1024)]  # 48 MiB on the C heap
    kept = blocks[::32]
    del blocks
    gc.collect()
    before = _rss_kib()
    released = trim_heap()
    after = _rss_kib()
    assert kept  # the survivors pin the heap while the holes are measured
    assert released
    assert before - after > 24 * 1024, f"RSS {before} KiB -> {after} KiB"
