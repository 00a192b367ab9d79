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

from recsys_assets.core.io.storage import pid_alive

_PR_SET_PDEATHSIG = 1
#: The parent's pid, handed to a child by the process that starts it (``LocalJobRunner`` sets it
#: for every job): a child whose imports take seconds on a busy machine may only call
#: ``die_with_parent`` after its parent died, when ``getppid()`` already names another process.
PARENT_PID_ENV = "RECSYS_PARENT_PID"


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Deliver ``sig`` to this process when its parent exits, or now if it already has.

    Linux does it in the kernel (``prctl(PR_SET_PDEATHSIG)``); elsewhere a daemon thread
    watches the parent pid once a second. The parent is the pid handed in ``PARENT_PID_ENV``
    (taken out of the environment, so this process's own children do not inherit it), else
    ``getppid()`` at the call.
    """
    handed = os.environ.pop(PARENT_PID_ENV, "")
    # A blocked or ignored signal survives exec: a child started from a thread that blocks it
    # (an event loop's signal receiver does) would never get its parent's death signal.
    if sig in signal.pthread_sigmask(signal.SIG_BLOCK, []):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [sig])
    if signal.getsignal(sig) == signal.SIG_IGN:
        signal.signal(sig, signal.SIG_DFL)
    current = os.getppid()
    parent = int(handed) if handed.isdigit() else current
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    else:
        threading.Thread(target=_watch, args=(os.getppid(), sig), name="die-with-parent", daemon=True).start()
    # A handed pid that is not our parent but still alive came from further up (a stale
    # variable): the parent we have is the one watched.
    stale = parent != current and pid_alive(parent)
    # The parent may have died before the call: then nothing would ever send the signal.
    if os.getppid() != (current if stale else parent):
        os.kill(os.getpid(), sig)


def _watch(parent: int, sig: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os.kill(os.getpid(), sig)
