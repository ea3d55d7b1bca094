"""Every numeric setting is a finite number within its bounds (D27): `nan` compares false with everything
and silently switched the size check off."""

from __future__ import annotations

import pytest

from _support import add_setting

PHASE = "ProjectFiles/Milestones/Phase1"
BAD = ["nan", "inf", "-inf", "0", "-1", "1e400", "1e300", '"10"', "true"]


@pytest.mark.parametrize("value", BAD)
@pytest.mark.parametrize("setting", ["max_file_mb", "render_timeout_s", "[close]\ntimeout_s"])
def test_a_numeric_setting_out_of_bounds_is_refused_before_anything_is_written(project, run_cli, setting, value) -> None:
    add_setting(project.root, f"{setting} = {value}")
    done = run_cli("start", "M44", "--title", "t")
    assert done.code == 2, done
    assert done.err.count("\n") == 1 and setting.split("\n")[-1] in done.err, done.err
    assert not (project.root / PHASE).exists()


@pytest.mark.parametrize("setting", ["max_file_mb = 0.5", "render_timeout_s = 2", "[close]\ntimeout_s = 60"])
def test_sane_values_are_taken(project, run_cli, setting) -> None:
    add_setting(project.root, setting)
    assert run_cli("start", "M44", "--title", "t").code == 0
    name, value = setting.split("\n")[-1].split(" = ")
    settings = project.__class__.find(project.root).settings
    holder = settings.close if setting.startswith("[close]") else settings
    assert getattr(holder, name) == float(value)
