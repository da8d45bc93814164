"""A cold start for `snapsafe audit`: import the target the ordinary way (no snapshot), answer one
event, print ``{"ok", "payload", "error", "fingerprint"}`` as one JSON line on stdout.

    python -m snapsafe.agent.cold TARGET EVENT_JSON
"""

from __future__ import annotations

import json
import sys
import time
import uuid

from snapsafe.agent import fingerprint
from snapsafe.agent.context import LambdaContext
from snapsafe.agent.main import EXIT_INIT_FAILED, lambda_error
from snapsafe.agent.target import TargetLoadError, load


def main(argv: list[str]) -> int:
    target, event_json = argv
    out = sys.stdout
    sys.stdout = sys.stderr  # the handler's prints must not mix with the one JSON line
    try:
        handler = load(target)
    except TargetLoadError as err:
        print(f"{err}", file=sys.stderr)
        return EXIT_INIT_FAILED
    request_id = str(uuid.uuid4())
    context = LambdaContext(request_id, target.rsplit(":", 1)[-1], 128, "", int(time.time() * 1000) + 60000, "cold")
    try:
        payload, error = handler(json.loads(event_json), context), None
    except Exception as exc:
        payload, error = None, lambda_error(exc)
    fp = fingerprint.collect(payload if error is None else error["errorType"])
    out.write(json.dumps({"ok": error is None, "payload": payload, "error": error, "fingerprint": fp},
                         default=repr) + "\n")
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
