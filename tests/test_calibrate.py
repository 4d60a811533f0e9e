"""eval.calibrate: λ_d calibrated on a dev split to another condition's FLOPS (Table 2 "in comparable FLOPS")."""

from __future__ import annotations

import math

import pytest
from test_faults import one_line_error, run

from eval.calibrate import SUFFIX, next_value, write_condition
from train.conditions import load_condition


def test_the_next_probe_follows_the_power_law_through_the_last_two():
    """FLOPS = 2 λ^-0.5 exactly: from two probes the secant slope is 0.5 and the next λ_d hits the target; from one
    probe the assumed slope (0.3) moves the right way. Mutations: the ratio inverted (λ moves away from the target),
    the slope's sign flipped."""
    law = lambda x: 2 * x ** -0.5  # noqa: E731
    probes = [(0.01, law(0.01)), (0.02, law(0.02))]
    assert next_value(probes, target=law(0.05)) == pytest.approx(0.05)
    assert next_value(probes[:1], target=law(0.01) * 0.9) > 0.01  # fewer FLOPS wanted: a larger λ_d
    assert next_value(probes[:1], target=law(0.01) * 1.1) < 0.01


def test_the_written_condition_loads_with_its_calibration_record(tmp_path):
    """The calibrated condition keeps the original's fields and seeds, sets lambda_d, drops the expectations measured
    at the old λ_d, and records the procedure; train.conditions reads it back."""
    base = load_condition("l0-mask")
    out = tmp_path / f"l0-mask{SUFFIX}.yaml"
    write_condition(base, load_condition("baseline"), "scifact/dev", 42, 0.02, 1.30,
                    [(0.01, 1.42), (0.0131, 1.31)], out)
    calibrated = load_condition(out)
    assert calibrated.id == "l0-mask-cf" and calibrated.seeds == base.seeds and not calibrated.expected
    assert calibrated.recipe(42).lambda_d == 0.0131 and calibrated.recipe(42).threshold == base.recipe(42).threshold
    assert "calibration:" in out.read_text() and "target_flops: 1.3" in out.read_text()
    assert math.isclose(calibrated.recipe(42).lambda_d, 0.0131)


def test_the_cli_plans_and_refuses_a_misnamed_output(tmp_path):
    ok = run("eval.calibrate", "l0-mask", "--match", "baseline", "--dry-run")
    assert ok.rc == 0 and "writes recipes/conditions/l0-mask-cf.yaml" in ok.out
    err = one_line_error(run("eval.calibrate", "l0-mask", "--match", "baseline", "--out", str(tmp_path / "x.yaml")),
                         "x.yaml")
    assert "l0-mask-cf" in err
