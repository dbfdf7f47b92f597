"""Thin clients: the Python client library, DaVinci Resolve scripts, the Premiere UXP panel."""
