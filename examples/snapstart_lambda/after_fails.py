"""An after-restore hook that fails: Lambda reports Runtime.AfterRestoreError (the runtime exits 65)."""

from snapshot_restore_py import register_after_restore


@register_after_restore
def reconnect():
    raise ConnectionError("database unreachable after restore")


def handler(event, context):
    return "never served"
