"""The named steps of a training run that need no training stack: schedule, records and progress events."""

from __future__ import annotations

import io
import json
from types import SimpleNamespace

from studio.trainer.examples import Example
from studio.trainer.jobspec import JobSpec
from studio.trainer.progress import Progress
from studio.trainer.train import ProgressEvents, _dataset_records, _schedule


def test_schedule_caps_warm_up_at_a_tenth_of_the_run() -> None:
    spec = JobSpec(batch_size=4, grad_accum=2, epochs=2)
    assert _schedule(spec, 80) == (20, 2)  # 10 steps per epoch, warm-up 150 capped to 2
    assert _schedule(spec.model_copy(update={"max_steps": 4}), 80) == (4, 0)
    assert _schedule(JobSpec(epochs=1, warmup_steps=5), 10_000) == (313, 5)


def test_records_follow_the_stage() -> None:
    example = Example(system="Be kind.", prompt="Hi", chosen="Hello", rejected="Go away")
    (sft,) = _dataset_records("sft", [example])
    assert sft["prompt"] == [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"}]
    assert sft["completion"] == [{"role": "assistant", "content": "Hello"}]
    (dpo,) = _dataset_records("dpo", [example])
    assert dpo["chosen"] == sft["completion"] and dpo["rejected"] == [{"role": "assistant", "content": "Go away"}]


def test_progress_events_of_a_dpo_run() -> None:
    stream = io.StringIO()
    events = ProgressEvents("dpo", Progress(stream))
    state = SimpleNamespace(global_step=3, max_steps=6, epoch=0.5, is_world_process_zero=True)
    events.on_train_begin(None, state, None)
    events.on_log(None, state, None, logs={"learning_rate": 1e-4})  # no loss: not a step
    events.on_log(None, state, None, logs={"loss": 0.69, "learning_rate": 1e-4, "rewards/margins": 0.1})
    events.on_save(SimpleNamespace(output_dir="/run/checkpoints"), state, None)
    events.on_log(None, SimpleNamespace(**{**vars(state), "is_world_process_zero": False}), None, logs={"loss": 1.0})
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["event"] for line in lines] == ["step", "checkpoint"]
    step = lines[0]
    assert (step["stage"], step["step"], step["total"], step["loss"], step["reward_margin"]) == ("dpo", 3, 6, 0.69, 0.1)
    assert step["reward_accuracy"] is None and step["eta_s"] is not None
    assert lines[1]["path"] == "/run/checkpoints/checkpoint-3"
