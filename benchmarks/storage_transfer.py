"""Upload and download a large file through ``connectorctl storage`` vs obstore called directly.

Both run as separate processes against the same local S3 server (moto in
server mode on 127.0.0.1), alternating, so machine noise hits both alike.
Prints the median wall-time ratio (target <= 1.10) and the peak RSS of the
``connectorctl`` process (target < 100 MB for a 200 MB file).

    .venv/bin/python benchmarks/storage_transfer.py [--mb 200] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KEY_ID, SECRET, BUCKET = "AKIABENCH", "bench-secret", "bench-bucket"

DIRECT = """
import sys, obstore
from pathlib import Path
from obstore.store import S3Store
url, action, key, path = sys.argv[1:5]
store = S3Store("%s", endpoint=url, region="us-east-1", access_key_id="%s", secret_access_key="%s",
                virtual_hosted_style_request=False, client_options={"allow_http": True})
if action == "put":
    obstore.put(store, key, Path(path))
elif action == "head":
    obstore.head(store, key)
else:
    with open(path, "wb") as f:
        for chunk in obstore.get(store, key).stream():
            f.write(chunk)
""" % (BUCKET, KEY_ID, SECRET)


def run(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one child process.

    The peak is the child's own VmHWM, sampled until it exits: ``ru_maxrss``
    from wait4 would also count the parent's size at fork time.
    """
    started = time.perf_counter()
    child = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak_kb = 0
    while child.poll() is None:
        try:
            status = Path(f"/proc/{child.pid}/status").read_text()
            peak_kb = max(peak_kb, int(status.split("VmHWM:")[1].split()[0]))
        except (OSError, IndexError, ValueError):
            pass
        time.sleep(0.02)
    elapsed = time.perf_counter() - started
    if child.returncode != 0:
        sys.exit(f"{' '.join(argv[:4])} failed: {child.stderr.read().decode()[-2000:] if child.stderr else ''}")
    return elapsed, peak_kb / 1024


def in_process(url: str, source: Path, tmp: Path, rounds: int) -> dict[str, tuple[float, float]]:
    """The same transfers through ``Connector.storage()`` (pipeline, log rows) and obstore, in this process:
    what the library adds, without the CLI's interpreter start-up."""
    import obstore
    from obstore.store import S3Store

    sys.path.insert(0, str(ROOT))
    from connectorctl.adapters.storage.s3 import S3Options
    from connectorctl.credentials.static import StaticCredentialProvider
    from connectorctl.gateway import Connector
    from connectorctl.settings import Settings

    home = tmp / "inproc"
    home.mkdir()
    settings = Settings(home=home, database=home / "state.db", config_path=None, storage_vendor="s3",
                        vendors={"s3": S3Options(base_url=url, bucket=BUCKET, region="us-east-1")})
    direct = S3Store(BUCKET, endpoint=url, region="us-east-1", access_key_id=KEY_ID, secret_access_key=SECRET,
                     virtual_hosted_style_request=False, client_options={"allow_http": True})

    def direct_get() -> None:
        with open(tmp / "direct.in", "wb") as f:
            for chunk in obstore.get(direct, "direct.bin").stream():
                f.write(chunk)

    timings: dict[str, dict[str, list[float]]] = {}
    with Connector(settings, credentials=StaticCredentialProvider({"s3": {"access_key_id": KEY_ID, "secret_access_key": SECRET}})) as connector:
        storage = connector.storage()
        cases = {
            "put": (lambda: storage.put("ours.bin", source), lambda: obstore.put(direct, "direct.bin", source)),
            "get": (lambda: storage.download_to("ours.bin", tmp / "ours.in"), direct_get),
        }
        for _ in range(rounds):
            for name, (ours, theirs) in cases.items():
                for label, fn in (("ours", ours), ("direct", theirs)):
                    started = time.perf_counter()
                    fn()
                    timings.setdefault(name, {}).setdefault(label, []).append(time.perf_counter() - started)
    return {name: (statistics.median(t["ours"]), statistics.median(t["direct"])) for name, t in timings.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import socket

    import boto3
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # its own process: its CPU and memory stay apart
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(url + "/moto-api/")
            break
        except httpx.TransportError:
            if time.monotonic() > deadline:
                sys.exit("moto server did not start")
            time.sleep(0.2)
    boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET).create_bucket(Bucket=BUCKET)

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        (home / "config.yaml").write_text(
            f"storage_vendor: s3\nvendors:\n  s3:\n    base_url: {url}\n    bucket: {BUCKET}\n    region: us-east-1\n"
            f"    credentials: {{access_key_id: 'env:BENCH_KEY_ID', secret_access_key: 'env:BENCH_SECRET'}}\n")
        env = {**os.environ, "CONNECTORCTL_HOME": str(home), "BENCH_KEY_ID": KEY_ID, "BENCH_SECRET": SECRET, "PYTHONPATH": str(ROOT)}
        source = Path(tmp) / "source.bin"
        block = os.urandom(1024 * 1024)
        with open(source, "wb") as f:
            for _ in range(args.mb):
                f.write(block)
        ours = [sys.executable, "-m", "connectorctl", "storage"]
        direct = [sys.executable, "-c", DIRECT, url]
        cases = {
            "put": (ours + ["put", str(source), "ours.bin"], direct + ["put", "direct.bin", str(source)]),
            "get": (ours + ["get", "ours.bin", str(Path(tmp) / "ours.out")], direct + ["get", "direct.bin", str(Path(tmp) / "direct.out")]),
            "stat": (ours + ["stat", "ours.bin"], direct + ["head", "direct.bin", "-"]),  # the fixed cost of starting each process
        }
        results: dict[str, dict[str, list[float]]] = {}
        peak = 0.0
        for _ in range(args.rounds):
            for name, (our_cmd, direct_cmd) in cases.items():
                for label, cmd in (("ours", our_cmd), ("direct", direct_cmd)):
                    seconds, rss = run(cmd, env)
                    results.setdefault(name, {}).setdefault(label, []).append(seconds)
                    if label == "ours":
                        peak = max(peak, rss)
        assert (Path(tmp) / "ours.out").read_bytes() == source.read_bytes(), "download differs from the upload"
        library = in_process(url, source, Path(tmp), args.rounds)
    server.terminate()
    server.wait()

    print(f"{args.mb} MB against moto S3 on 127.0.0.1, {args.rounds} rounds, median wall time per process")
    medians = {name: (statistics.median(t["ours"]), statistics.median(t["direct"])) for name, t in results.items()}
    startup = medians["stat"][0] - medians["stat"][1]
    for name, (ours_s, direct_s) in medians.items():
        print(f"  {name:4}: connectorctl storage {ours_s:6.2f} s   obstore direct {direct_s:6.2f} s   ratio {ours_s / direct_s:.3f}")
    worst = max(medians["put"][0] / medians["put"][1], medians["get"][0] / medians["get"][1])
    print(f"worst transfer ratio {worst:.3f} (target <= 1.10); peak RSS of connectorctl {peak:.0f} MB (target < 100 MB)")
    print(f"of which CLI start-up (stat vs head): {startup:.2f} s per command; without it: "
          + ", ".join(f"{n} {(medians[n][0] - startup) / medians[n][1]:.3f}" for n in ("put", "get")))
    print("in one process, Connector.storage() (pipeline and log rows included) vs obstore:")
    for name, (ours_s, direct_s) in library.items():
        print(f"  {name:4}: library {ours_s:6.2f} s   obstore direct {direct_s:6.2f} s   ratio {ours_s / direct_s:.3f}")


if __name__ == "__main__":
    main()
