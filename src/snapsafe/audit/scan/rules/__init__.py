"""One module per rule; their codes are assigned in :mod:`snapsafe.audit.scan.codes`.

Each module's docstring is its documentation page (``python -m snapsafe.audit.scan.docs``): a
first line, then the parts ``## What it does``, ``## Why is this bad?``, ``## Example`` and
``## Use instead``, optionally ``## Notes``.
"""
