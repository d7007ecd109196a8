"""One rendering of pydantic validation errors, shared by the loader, the CLI, the trainer and the panes."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from studio.core.errors import one_line, validation_problem


class _Inner(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str
    items: list[_Inner] = []

    @field_validator("title")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("title is blank\nwrite one")
        return value


def _problem(data: object) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        _Doc.model_validate(data)
    return caught.value


def test_unknown_and_missing_fields_are_named() -> None:
    assert str(validation_problem(_problem({"title": "t", "colour": "red"}))) == "colour: unknown field 'colour'"
    problem = validation_problem(_problem({"title": "t", "items": [{}]}))
    assert problem.loc == ("items", 0, "text")
    assert str(problem) == "items.0.text: missing required field 'text'"


def test_value_errors_lose_the_prefix_and_stay_on_one_line() -> None:
    problem = validation_problem(_problem({"title": " "}))
    assert (problem.where, problem.detail) == ("title", "title is blank write one")


def test_further_problems_are_counted() -> None:
    problem = validation_problem(_problem({"title": " ", "a": 1, "b": 2}))
    assert problem.more == 2
    assert problem.detail.endswith("(and 2 more problems)")
    only_unknown = validation_problem(_problem({"title": "t", "a": 1, "b": 2}))
    assert only_unknown.detail == "unknown field 'a' (and 1 more problem)"


def test_a_whole_document_problem_has_no_place() -> None:
    problem = validation_problem(_problem([1, 2]))
    assert problem.where == ""
    assert str(problem) == problem.detail


def test_one_line_covers_other_errors() -> None:
    with pytest.raises(ValueError) as caught:
        json.loads("{")
    assert one_line(caught.value).startswith("Expecting property name")
    assert one_line(_problem({"title": "t", "x": 1})) == "x: unknown field 'x'"
