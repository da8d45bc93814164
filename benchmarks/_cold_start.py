"""A cold start: a fresh interpreter imports the target, initialises it and answers one event."""

import json
import sys
import time

from snapsafe.agent.context import LambdaContext
from snapsafe.agent.target import load

handler = load(sys.argv[1])
context = LambdaContext("cold", "cold", 128, "", int(time.time() * 1000) + 30000, "cold")
sys.stdout.write(json.dumps(handler(json.loads(sys.argv[2]), context)) + "\n")
sys.stdout.flush()
