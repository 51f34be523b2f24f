"""Judging rules of issue 14's checks: plain functions from a measurement to an Assessment,
so tests call them on measurements made for the test and the checks stay a few lines."""
