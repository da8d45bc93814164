"""The raw fork floor: a process of the target's size (it imports the target) that, per byte on
stdin, forks a child which answers one byte on stdout. No protocol, no uniqueness work."""

import gc
import os
import sys

from snapsafe.agent.target import load

load(sys.argv[1])
gc.collect()
gc.freeze()
os.write(1, b"r")
while os.read(0, 1):
    pid = os.fork()
    if pid == 0:
        os.write(1, b"x")
        os._exit(0)
    os.waitpid(pid, 0)
