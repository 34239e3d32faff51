"""Pipeline overhead: raw httpx.Client vs the full resilience pipeline, interleaved.

Both sides POST the same ~1 KB JSON body to a loopback server over keep-alive.
The pipeline side adds the rate limiter (a real quota, high enough never to
block), the SQLite circuit breaker, tenacity retry and one integration-log row
per call.  Blocks of A and B alternate so machine noise hits both alike.

    python benchmarks/pipeline_overhead.py [--calls 2000] [--block 200] [--database postgresql://...] [--breakdown]
Target: pipeline/raw <= 1.25, with every call's log row committed before the call returns.
With ``--database`` a third side runs the same pipeline on that PostgreSQL database, in the same blocks.
With ``--breakdown`` two more sides show where the overhead goes: the pipeline with no audit row at
all, and the pipeline whose audit row is the smallest commit SQLite can make (a five-column row in
a table with no index or trigger, in its own file, same connection settings).  The second is the
floor for any design that commits a row before the call returns.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx  # noqa: E402

import _server  # noqa: E402

TARGET = 1.25


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000, help="calls per side (default 2000)")
    parser.add_argument("--block", type=int, default=200, help="calls per alternating block")
    parser.add_argument("--database", help="also run the pipeline on this postgresql:// database")
    parser.add_argument("--breakdown", action="store_true", help="also run the pipeline without an audit row and with the smallest one")
    args = parser.parse_args()

    home = tempfile.mkdtemp(prefix="cc-bench-")
    os.environ["CONNECTORCTL_HOME"] = home
    Path(home, "config.yaml").write_text(
        "vendors:\n  fake:\n    rate_limits: [{limit: 1000000, per_seconds: 1}]\n", encoding="utf-8"
    )
    from connectorctl.gateway import Connector
    from connectorctl.resilience.pipeline import AttemptRecord, Call, Pipeline, VendorResponse

    server, url = _server.start_process()
    body = json.dumps({"to": [{"email": f"user{i}@example.com"} for i in range(8)], "subject": "x" * 200, "text": "y" * 500}).encode()
    assert 900 <= len(body) <= 1200, len(body)
    client = httpx.Client(headers={"Content-Type": "application/json"})
    connector = Connector()
    connectors = {"pipeline": connector}
    if args.database:
        from dataclasses import replace

        connectors["postgresql"] = Connector(replace(connector.settings, database=args.database))
    request_data = {"size": len(body)}

    def raw() -> None:
        client.post(url, content=body).json()

    def call() -> VendorResponse:
        response = client.post(url, content=body)
        return VendorResponse(response.json(), http_status=response.status_code)

    def piped(pipeline: Any) -> Callable[[], None]:
        return lambda: pipeline.execute(Call("fake", "send_email", url, "POST", request_data=request_data, idempotent=True), call)

    sides = {"raw": raw, **{name: piped(c.pipeline) for name, c in connectors.items()}}
    if args.breakdown:
        from connectorctl.ids import new_ulid
        from connectorctl.store.db import connect

        floor_db = connect(Path(home, "floor.db"))
        floor_db.execute("CREATE TABLE t (id TEXT, service TEXT, operation TEXT, http_status INTEGER, request TEXT)")

        def smallest_commit(r: AttemptRecord) -> None:
            floor_db.execute("INSERT INTO t VALUES (?, ?, ?, ?, ?)", (new_ulid(), r.service, r.operation, r.http_status, r.request.json()))

        clock = connector.pipeline.clock
        sides["no audit row"] = piped(Pipeline(connector.settings, connector.db, clock, hooks=[]))
        sides["smallest commit"] = piped(Pipeline(connector.settings, connector.db, clock, hooks=[smallest_commit]))
    for fn in sides.values():  # warm up connections, statement caches, imports
        for _ in range(50):
            fn()

    per_call: dict[str, list[float]] = {name: [] for name in sides}
    blocks = max(1, args.calls // args.block)
    for _ in range(blocks):
        for name, fn in sides.items():
            for _ in range(args.block):
                t0 = time.perf_counter()
                fn()
                per_call[name].append(time.perf_counter() - t0)

    rows = connector.db.conn.execute("SELECT count(*) FROM integration_logs").fetchone()[0]
    raw_med = statistics.median(per_call["raw"]) * 1e6
    pipe_med = statistics.median(per_call["pipeline"]) * 1e6
    raw_mean = statistics.fmean(per_call["raw"]) * 1e6
    pipe_mean = statistics.fmean(per_call["pipeline"]) * 1e6
    print(f"calls per side     {len(per_call['raw'])} (in {blocks} alternating blocks of {args.block})")
    print(f"log rows written   {rows}")
    print(f"raw httpx          median {raw_med:8.1f} µs   mean {raw_mean:8.1f} µs")
    print(f"full pipeline      median {pipe_med:8.1f} µs   mean {pipe_mean:8.1f} µs")
    print(f"added per call     median {pipe_med - raw_med:8.1f} µs   mean {pipe_mean - raw_mean:8.1f} µs")
    ratio = pipe_med / raw_med
    print(f"ratio pipeline/raw {ratio:.3f} (median)   {pipe_mean / raw_mean:.3f} (mean)   target <= {TARGET:.2f}: {'PASS' if ratio <= TARGET else 'FAIL'}")
    for name in ("no audit row", "smallest commit"):
        if name in per_call:
            med = statistics.median(per_call[name]) * 1e6
            print(f"{name:18s} median {med:8.1f} µs   ratio to raw {med / raw_med:.3f}")
    if "postgresql" in per_call:
        pg_med = statistics.median(per_call["postgresql"]) * 1e6
        pg_rows = connectors["postgresql"].db.conn.execute("SELECT count(*) FROM integration_logs").fetchone()[0]
        print(f"postgresql         median {pg_med:8.1f} µs   mean {statistics.fmean(per_call['postgresql']) * 1e6:8.1f} µs"
              f"   ({connectors['postgresql'].db.label}, {pg_rows} log rows)")
        print(f"ratio postgresql/raw {pg_med / raw_med:.3f}   postgresql/sqlite {pg_med / pipe_med:.3f} (medians)")
    client.close()
    server.terminate()
    for c in connectors.values():
        c.close()


if __name__ == "__main__":
    main()
