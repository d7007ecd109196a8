"""Example configs for a first start: the five business scenarios and one categorical config, ready to probe and
check before the author writes anything.

Examples are ordinary configs with the ``example`` tag and an "Example:" title, so they can be edited, deleted
(while they are unreviewed drafts without check runs) and added again at any time.
"""

from __future__ import annotations

from studio.core.documents import SafetyConfig
from studio.core.store.configs import ConfigRepo
from studio.core.taxonomy import Category
from studio.core.templates import CATEGORICAL_TEMPLATE_ID, list_templates, new_config

EXAMPLE_TAG = "example"
EXAMPLE_PREFIX = "example-"
#: The categorical example allows two related categories, so its merged suite has allowed, partial and
#: disallowed probes; the seed fixes its phrasing.
CATEGORICAL_EXAMPLE = (Category.VIOLENCE, Category.WEAPONS)
CATEGORICAL_EXAMPLE_SEED = 7


def _as_example(config: SafetyConfig) -> SafetyConfig:
    tags = [EXAMPLE_TAG, *(t for t in config.tags if t != EXAMPLE_TAG)]
    return SafetyConfig.model_validate({**config.model_dump(), "title": f"Example: {config.title}", "tags": tags})


def example_configs(author: str = "") -> list[SafetyConfig]:
    """One draft per scenario template, then the categorical example; ids start with ``example-``."""
    scenarios = [
        new_config(template.id, config_id=EXAMPLE_PREFIX + template.id, author=author)
        for template in list_templates()
        if "scenario" in template.tags
    ]
    categorical = new_config(
        CATEGORICAL_TEMPLATE_ID,
        config_id=EXAMPLE_PREFIX + CATEGORICAL_TEMPLATE_ID,
        allowed=CATEGORICAL_EXAMPLE,
        seed=CATEGORICAL_EXAMPLE_SEED,
        author=author,
    )
    return [_as_example(config) for config in (*scenarios, categorical)]


def add_examples(configs: ConfigRepo, author: str = "") -> list[SafetyConfig]:
    """Store the examples that are missing (an example the author kept, edited or submitted is left alone);
    returns the ones added."""
    return [configs.create(example) for example in example_configs(author) if not configs.exists(example.id)]


def is_example(config: SafetyConfig) -> bool:
    return EXAMPLE_TAG in config.tags
