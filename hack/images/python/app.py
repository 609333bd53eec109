"""The program of kd.local/python-app:1 (see hack/images/build_images.py).

A long-running process for py-spy to look at: its main thread's stack is always
``<module>`` -> ``main`` -> ``kd_outer`` -> ``kd_inner``, alternating a little work
with a short sleep so ``py-spy dump`` and ``py-spy top`` both find it at little CPU cost.
"""

from __future__ import annotations

import os
import signal
import sys
import time


def kd_inner(rounds: int) -> int:
    # A little real work, so the frame is sometimes on-CPU (py-spy top shows it).
    total = 0
    for i in range(20_000):
        total += i * rounds
    time.sleep(0.2)
    return total


def kd_outer() -> None:
    rounds = 0
    while True:
        rounds += 1
        kd_inner(rounds)


def _stop(signum: int, _frame: object) -> None:
    # As pid 1 the kernel ignores SIGTERM unless there is a handler: exit cleanly on it.
    print(f"kd python-app stopping on signal {signum}", flush=True)
    sys.exit(0)


def main() -> None:
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    print(f"kd python-app started: pid {os.getpid()}, stack main -> kd_outer -> kd_inner", flush=True)
    kd_outer()


if __name__ == "__main__":
    main()
