"""Per-call cost of ``StoreCredentialProvider.get`` (what every vendor call pays), env master key.

Usage: python benchmarks/creds_get.py [N]
"""

from __future__ import annotations

import base64
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

N = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
os.environ["CONNECTORCTL_HOME"] = tempfile.mkdtemp(prefix="creds-bench-")
os.environ["CONNECTORCTL_MASTER_KEY"] = base64.b64encode(os.urandom(32)).decode()

from connectorctl.gateway import Connector  # noqa: E402

with Connector() as connector:
    connector.credentials.store.put("sendgrid", None, "api_key", {"api_key": "SG." + "x" * 66}, None, time.time())
    connector.credentials.store.put("sendgrid", "t1", "api_key", {"api_key": "SG." + "y" * 66}, None, time.time())
    for label, tenant in (("global", None), ("tenant", "t1"), ("tenant->global fallback", "t2")):
        runs = []
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(N):
                connector.credentials.get("sendgrid", tenant)
            runs.append((time.perf_counter() - t0) / N * 1e6)
        print(f"get() {label:<24} median {statistics.median(runs):6.1f} µs  [{min(runs):.1f}-{max(runs):.1f}] over 5 runs x {N}")
