"""A before-snapshot hook that fails: Lambda reports Runtime.BeforeSnapshotError (the runtime exits 64)."""

from snapshot_restore_py import register_before_snapshot


@register_before_snapshot
def flush_cache():
    raise RuntimeError("cache flush failed")


def handler(event, context):
    return "never served"
