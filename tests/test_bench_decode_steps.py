"""bench.decode_steps on the real model with tiny settings: it runs, prints every cell and its ratios, and refuses
bad arguments with a usage error."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import decode_steps


@pytest.mark.real_model
@pytest.mark.parametrize("kv", ["f16", "f32"])
def test_decode_steps_prints_every_cell_and_the_ratios(
    embedded_model: Path, kv: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--prefix", "8,40", "--width", "1,3", "--kv", kv, "--model", str(embedded_model)]
    assert decode_steps.main(argv) == 0
    out = capsys.readouterr().out
    assert f"; {kv} cache" in out
    for prefix in (8, 40):
        for width in (1, 3):
            assert f"prefix {prefix:5d}  width {width:2d}:" in out
        assert f"  prefix {prefix:5d}: width 3: " in out


@pytest.mark.parametrize("argv", [["--prefix", "a"], ["--width", "0"], ["--width", "65"], ["--kv", "q8_0"]])
def test_bad_arguments_are_a_usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        decode_steps.main(argv)
    assert stop.value.code == 2
    assert "error:" in capsys.readouterr().err
