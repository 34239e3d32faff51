"""``python tests/credentials/run_acme_cli.py ARGS``: the real CLI with the test vendor registered."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.credentials.fakevendor import register  # noqa: E402

register()

from connectorctl.cli.main import main  # noqa: E402

main()
