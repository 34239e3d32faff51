"""An application's inbound hook, named in ``inbound.<service>.hooks`` for the serve process under test:
it appends each message it is given to the file named by ``$INBOUND_HOOK_LOG``."""

from __future__ import annotations

import json
import os

from connectorctl.inbound import InboundMessage


def record(message: InboundMessage) -> None:
    with open(os.environ["INBOUND_HOOK_LOG"], "a", encoding="utf-8") as fh:
        fh.write(json.dumps(message.to_dict()) + "\n")
