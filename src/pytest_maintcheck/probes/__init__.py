"""Probes: plain functions that measure a target system. No pytest, no verdicts."""
