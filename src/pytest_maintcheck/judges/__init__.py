"""Judging rules: typed functions from a frozen measurement to findings on an Assessment.

No pytest here: unit tests call them on measurements made for the test, and each check in
``checks/`` reads as the procedure (get the target's measurement, judge it). Issue 14's rules
live in ``pytest_maintcheck.rules`` (the same kind of functions, not moved).
"""
