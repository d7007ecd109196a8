"""Job specs: defaults < YAML < flags, and one-line errors that name the file and place."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.core.errors import InputError
from studio.trainer.jobspec import FULL_LEARNING_RATE, LORA_LEARNING_RATE, require, resolve_spec

NO_FLAGS: dict[str, object] = {"learning_rate": None, "epochs": None, "beta": None}


def test_defaults_follow_the_recipe() -> None:
    spec = resolve_spec(None, NO_FLAGS)
    assert (spec.beta, spec.epochs, spec.warmup_steps, spec.batch_size * spec.grad_accum) == (0.1, 3.0, 150, 32)
    assert spec.effective_learning_rate == LORA_LEARNING_RATE == 5e-5
    assert resolve_spec(None, {"method": "full"}).effective_learning_rate == FULL_LEARNING_RATE


def test_yaml_overrides_defaults_and_flags_override_yaml(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text("format: cosa-studio/train-job/v1\nbeta: 0.2\nepochs: 1\nlearning_rate: 1.0e-5\n")
    spec = resolve_spec(path, {"beta": None, "epochs": 2.0, "learning_rate": None})
    assert spec.beta == 0.2  # from YAML
    assert spec.epochs == 2.0  # flag beats YAML
    assert spec.effective_learning_rate == 1e-5
    assert spec.max_length == 1024  # default


def test_unknown_yaml_field_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text("beta: 0.1\nlearnin_rate: 3\n")
    with pytest.raises(InputError) as caught:
        resolve_spec(path, {})
    assert str(caught.value).startswith(f"{path}:2")


def test_prompt_limit_must_leave_room_for_a_reply() -> None:
    with pytest.raises(InputError, match="max_prompt_length"):
        resolve_spec(None, {"max_length": 256, "max_prompt_length": 256})


def test_require_names_the_missing_flag() -> None:
    with pytest.raises(InputError, match="--data"):
        require(resolve_spec(None, {"base": "x.gguf"}), "base", "data")


def test_shipped_job_specs_load() -> None:
    shipped = sorted((Path(__file__).resolve().parents[2] / "resources" / "trainer").glob("*.job.yaml"))
    assert shipped
    for path in shipped:
        spec = resolve_spec(path, {})
        assert spec.base and spec.data and spec.output


def test_every_spec_field_is_a_flag_of_sft_and_dpo() -> None:
    from studio.trainer.cli import make_parser
    from studio.trainer.jobspec import JobSpec, job_flag_names

    assert set(job_flag_names()) == set(JobSpec.model_fields) - {"format"}
    parser = make_parser()
    for stage in ("sft", "dpo"):
        args = parser.parse_args([stage])
        assert {name: getattr(args, name) for name in job_flag_names()} == dict.fromkeys(job_flag_names())


def test_flags_are_typed_from_the_spec(capsys: pytest.CaptureFixture[str]) -> None:
    from studio.trainer.cli import make_parser

    parser = make_parser()
    args = parser.parse_args(
        ["dpo", "--lora-r", "8", "--learning-rate", "1e-4", "--method", "full", "--no-gradient-checkpointing"]
    )
    assert (args.lora_r, args.learning_rate, args.method, args.gradient_checkpointing) == (8, 1e-4, "full", False)
    assert parser.parse_args(["sft", "--gradient-checkpointing"]).gradient_checkpointing is True
    with pytest.raises(SystemExit):
        parser.parse_args(["sft", "--device", "tpu"])
    assert "invalid choice: 'tpu'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parser.parse_args(["sft", "--batch-size", "many"])
    assert "invalid int value: 'many'" in capsys.readouterr().err
