"""`snapsafe bench`: every engine against cold start and the alternatives, measured side by side."""
