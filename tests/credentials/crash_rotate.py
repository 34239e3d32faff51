"""``python crash_rotate.py POINT``: run ``creds rotate-key`` and SIGKILL this process at POINT.

POINT is one of after_previous, after_current, mid_transaction, after_commit.
Nothing is mocked except the kill itself: the key file, the database and the
rotation code are the real ones.
"""

import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from connectorctl.credentials import masterkey, rotation  # noqa: E402

POINT = sys.argv[1]


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


real_store, real_clear, real_reseal = masterkey.MasterKeys.store, masterkey.MasterKeys.clear, rotation.reseal_row
resealed = []


def store(self, slot, key):  # type: ignore[no-untyped-def]
    real_store(self, slot, key)
    if (POINT, slot) in (("after_previous", "previous"), ("after_current", "current")):
        die()


def clear(self, slot):  # type: ignore[no-untyped-def]
    if POINT == "after_commit":
        die()
    real_clear(self, slot)


def reseal_row(*args):  # type: ignore[no-untyped-def]
    real_reseal(*args)
    resealed.append(1)
    if POINT == "mid_transaction" and len(resealed) == 2:
        die()


masterkey.MasterKeys.store, masterkey.MasterKeys.clear, rotation.reseal_row = store, clear, reseal_row

from connectorctl.cli.main import run  # noqa: E402

sys.exit(run(["creds", "rotate-key", "--json"]))
