"""Assessment.measure_each: many subjects against one threshold, judged in-process."""

from __future__ import annotations

from pytest_maintcheck.verdict import Assessment, Threshold, Verdict


def test_the_worst_value_is_the_metric_and_each_subject_past_a_level_a_finding() -> None:
    limit = Threshold.parse("deadTupleRatio", {"warn": 0.1, "fail": 0.2})
    assessment = Assessment()
    verdict = assessment.measure_each(
        limit,
        iter([("a", 0.05), ("b", 0.15), ("c", 0.5), ("d", None)]),
        action=lambda table: f"VACUUM {table}",
    )
    assert verdict is Verdict.VIOLATION
    assert assessment.metrics["deadTupleRatio"] == 0.5
    assert [(f.verdict, f.action) for f in assessment.findings] == [
        (Verdict.VIOLATION, "VACUUM c"),
        (Verdict.DEGRADED, "VACUUM b"),
    ]
    assert assessment.findings[0].description.startswith("c: dead tuple ratio 50%")
    assert assessment.notes == ["dead tuple ratio not measured for d"]


def test_past_the_shown_findings_the_rest_is_one_more_line() -> None:
    limit = Threshold.parse("daysToExpiry", {"warn": 30, "fail": 7})  # lower is worse
    assessment = Assessment()
    subjects = [(f"cert-{i}", float(i)) for i in range(10)]
    assessment.measure_each(limit, subjects, shown=3)
    assert assessment.metrics["daysToExpiry"] == 0
    described = [f.description for f in assessment.findings]
    assert [d.split(":")[0] for d in described[:3]] == ["cert-0", "cert-1", "cert-2"]
    assert described[3].startswith("+7 more past")
    assert assessment.verdict is Verdict.VIOLATION


def test_nothing_measured_passes_only_with_a_note() -> None:
    limit = Threshold.parse("deadTupleRatio", 0.2)
    assessment = Assessment()
    assert assessment.measure_each(limit, [("a", None)]) is Verdict.PASS
    assert assessment.metrics["deadTupleRatio"] is None
    assert assessment.notes == ["dead tuple ratio not measured for a"]
