"""Child processes that never outlive their parent.

A run's step processes, the job processes they start and the parser workers all call
``die_with_parent``: when the process that started them dies, even by ``kill -9``, they get
SIGTERM instead of running on and writing into artifacts nobody will publish.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

_PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Deliver ``sig`` to this process when its parent exits.

    Linux does it in the kernel (``prctl(PR_SET_PDEATHSIG)``); elsewhere a daemon thread
    watches the parent pid once a second.
    """
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    else:
        threading.Thread(target=_watch, args=(parent, sig), name="die-with-parent", daemon=True).start()
    # The parent may have died before the call: then nothing would ever send the signal.
    if os.getppid() != parent:
        os.kill(os.getpid(), sig)


def _watch(parent: int, sig: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os.kill(os.getpid(), sig)
