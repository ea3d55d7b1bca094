import pytest

from tunix_rt.errors import TunixError
from tunix_rt.ids import canonical_milestone, check_run_id


@pytest.mark.parametrize(
    ("given", "expected"),
    [("M7", "M07"), ("m7", "M07"), ("M07", "M07"), ("M44", "M44"), ("M120", "M120"), ("M0001", "M01"), (" m44 ", "M44")],
)
def test_canonical_ids(given: str, expected: str) -> None:
    assert canonical_milestone(given) == expected


@pytest.mark.parametrize("bad", ["M4x", "44", "M-1", "../M1", "M", "", "MM1", "M1.0", "M 1", "M1/..", "M1234567"])
def test_invalid_ids_are_refused(bad: str) -> None:
    with pytest.raises(TunixError):
        canonical_milestone(bad)


@pytest.mark.parametrize("bad", ["../x", "a/b", "..", "M44_v1", "", "x" * 80, "a\\b"])
def test_run_ids_cannot_escape(bad: str) -> None:
    with pytest.raises(TunixError):
        check_run_id(bad)


def test_run_id_ok() -> None:
    assert check_run_id("m44_v2") == "m44_v2"
