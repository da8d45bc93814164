"""A secret that must never reach the snapshot: kept in a snapsafe.Secret, refilled per clone.

    snapsafe run examples/secret_refill.py:handler

At init the function derives a session key. Before the snapshot snapsafe wipes it (the snapshot
holds zeros); every clone refills it in an after-restore hook, so no two clones share a key.
"""

import hashlib
import hmac
import os

import snapsafe

SESSION_KEY = snapsafe.Secret(os.urandom(32))  # made at init; wiped before the snapshot


@snapsafe.after_restore
def new_session_key():
    SESSION_KEY.fill(os.urandom(32))


def handler(event, context):
    message = str(event).encode()
    key = SESSION_KEY.reveal()  # a short-lived copy, only inside the handler
    return {
        "key_id": hashlib.sha256(key).hexdigest()[:16],
        "signature": hmac.new(key, message, hashlib.sha256).hexdigest()[:16],
    }
