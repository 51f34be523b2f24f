"""Judging rules of the bundled checks: typed functions from a frozen measurement (and the
target's thresholds, and ``now`` where time matters) to an Assessment. No probing and no
pytest here, so unit tests call them directly on measurements made for the test, and each
check in checks/ reads as its procedure: measure the target, judge it.

Issue 14's rules live in ``pytest_maintcheck.rules`` (the same kind of functions, not moved).
"""
