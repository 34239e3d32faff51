"""CLI start-up: `connectorctl --help` and `connectorctl send email --help` against a minimal
three-command Typer app's `--help` (and its subcommand's `--help`), as whole processes, interleaved.

    python benchmarks/startup.py [--runs 15]
Target: each connectorctl command <= 1.2x the minimal app (median wall time).
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
MINIMAL_APP = '''
import typer

app = typer.Typer(help="A minimal three-command app.")


@app.command()
def alpha(name: str = "x") -> None:
    """First command."""


@app.command()
def beta(count: int = 1) -> None:
    """Second command."""


@app.command()
def gamma(flag: bool = False) -> None:
    """Third command."""


if __name__ == "__main__":
    app()
'''


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    minimal = Path(tempfile.mkdtemp()) / "minimal_app.py"
    minimal.write_text(MINIMAL_APP)
    # An installed package has bytecode (pip compiles it); an editable checkout under
    # PYTHONDONTWRITEBYTECODE=1 would recompile every module on every run instead.
    import compileall

    compileall.compile_dir(str(ROOT / "connectorctl"), quiet=1)
    compileall.compile_file(str(minimal), quiet=1)
    env = dict(os.environ, PYTHONPATH=str(ROOT), CONNECTORCTL_HOME=tempfile.mkdtemp(), NO_COLOR="1")
    commands = {
        "minimal typer --help": [sys.executable, str(minimal), "--help"],
        "minimal typer alpha --help": [sys.executable, str(minimal), "alpha", "--help"],
        "connectorctl --help": [sys.executable, "-m", "connectorctl", "--help"],
        "connectorctl send email --help": [sys.executable, "-m", "connectorctl", "send", "email", "--help"],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(2):  # warm the OS file cache
        for cmd in commands.values():
            subprocess.run(cmd, env=env, capture_output=True, check=True)
    for _ in range(args.runs):
        for name, cmd in commands.items():
            t0 = time.perf_counter()
            subprocess.run(cmd, env=env, capture_output=True, check=True)
            times[name].append(time.perf_counter() - t0)
    base = statistics.median(times["minimal typer --help"])
    sub_base = statistics.median(times["minimal typer alpha --help"])
    for name, values in times.items():
        med = statistics.median(values)
        ratio = med / base
        line = f"{name:32s} median {med * 1000:7.1f} ms  [{min(values) * 1000:.0f}-{max(values) * 1000:.0f}]  vs minimal --help {ratio:.2f}"
        if name == "connectorctl send email --help":
            # Typer >= 0.2x imports pydantic to coerce parameters of any subcommand, so a subcommand's help
            # is also compared with the minimal app's subcommand help (like for like).
            line += f"  vs minimal alpha --help {med / sub_base:.2f}"
        if name.startswith("connectorctl"):
            line += f"   target <= 1.20: {'PASS' if ratio <= 1.2 else 'FAIL'}"
        print(line)


if __name__ == "__main__":
    main()
