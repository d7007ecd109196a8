"""`studio settings set`: GPU layers and suite ids in range, and a settings file holding a bad value can be repaired
with the command, which still refuses a bad new value."""

from __future__ import annotations

import pytest

from studio.cli.main import main
from studio.core.errors import ExitCode
from studio.core.settings import InferenceSettings, load_settings, settings_path


def _set(capsys: pytest.CaptureFixture[str], key: str, value: str) -> tuple[int, str, str]:
    code = main(["settings", "set", key, value])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("value", ["-3", "-2", "99999999999999999999", "1000", "1.5", "banana"])
def test_gpu_layers_out_of_range_are_refused(capsys: pytest.CaptureFixture[str], value: str) -> None:
    code, _, err = _set(capsys, "inference.gpu", value)
    assert code == ExitCode.INPUT
    assert "settings: inference.gpu:" in err and "(takes auto, cpu or a whole number from -1 to 999)" in err
    assert not settings_path().exists()


@pytest.mark.parametrize(("value", "stored"), [("-1", -1), ("0", 0), ("33", 33), ("auto", "auto"), ("cpu", "cpu")])
def test_gpu_settings_in_range_are_kept(capsys: pytest.CaptureFixture[str], value: str, stored: object) -> None:
    assert _set(capsys, "inference.gpu", value)[0] == ExitCode.OK
    assert load_settings().inference.gpu == stored


def test_the_required_suite_must_be_a_suite_id(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _set(capsys, "gate.required_suite", "Bad Suite!")
    assert code == ExitCode.INPUT and "gate.required_suite: 'Bad Suite!' is not an id" in err
    assert _set(capsys, "gate.required_suite", "scenario-game-studio")[0] == ExitCode.OK
    assert load_settings().gate.required_suite == "scenario-game-studio"
    assert _set(capsys, "gate.required_suite", "none")[0] == ExitCode.OK
    assert load_settings().gate.required_suite is None


def test_a_non_finite_number_is_named_so(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _set(capsys, "gate.min_score", "nan")
    assert code == ExitCode.INPUT and "gate.min_score: nan is not a finite number" in err


def test_a_bad_value_in_the_file_can_be_replaced(capsys: pytest.CaptureFixture[str]) -> None:
    path = settings_path()
    path.write_text("gate:\n  min_score: 7\n  min_valid_rate: 0.5\n", encoding="utf-8")
    assert main(["settings", "show"]) == ExitCode.INPUT  # the file cannot be loaded
    capsys.readouterr()
    # A bad new value is still refused, and the file is left as it was.
    code, _, err = _set(capsys, "gate.min_score", "9")
    assert code == ExitCode.INPUT and "gate.min_score:" in err
    assert path.read_text(encoding="utf-8") == "gate:\n  min_score: 7\n  min_valid_rate: 0.5\n"
    code, out, err = _set(capsys, "gate.min_score", "0.25")
    assert code == ExitCode.OK and out.strip() == "gate.min_score = 0.25" and err == ""
    settings = load_settings()
    assert settings.gate.min_score == 0.25 and settings.gate.min_valid_rate == 0.5


def test_several_bad_values_are_repaired_one_key_at_a_time(capsys: pytest.CaptureFixture[str]) -> None:
    path = settings_path()
    path.write_text("gate:\n  min_score: 7\ninference:\n  gpu: -3\n", encoding="utf-8")
    code, _, err = _set(capsys, "gate.min_score", "0.1")
    assert code == ExitCode.OK
    assert "still has a bad setting: inference.gpu:" in err and "studio settings set inference.gpu VALUE" in err
    code, _, err = _set(capsys, "inference.gpu", "-1")
    assert code == ExitCode.OK and err == ""
    settings = load_settings()
    assert settings.gate.min_score == 0.1 and settings.inference.gpu == -1


def test_an_unreadable_settings_file_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    path = settings_path()
    path.mkdir()
    code, _, err = _set(capsys, "gate.min_score", "0.1")
    assert code == ExitCode.INPUT and err.strip() == f"studio: error: {path}: is a directory, not a file"
    path.rmdir()
    path.write_text("- a list\n", encoding="utf-8")
    code, _, err = _set(capsys, "gate.min_score", "0.1")
    assert code == ExitCode.INPUT and "expected a mapping of settings" in err


def test_the_model_refuses_gpu_layers_out_of_range() -> None:
    from pydantic import ValidationError

    for bad in (-3, 10**20):
        with pytest.raises(ValidationError):
            InferenceSettings(gpu=bad)
    assert InferenceSettings(gpu=-1).gpu == -1
