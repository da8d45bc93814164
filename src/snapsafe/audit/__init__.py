"""Audit tools: ``scan`` (static rules for init code), and later live clone comparison and image search."""
