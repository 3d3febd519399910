"""The YAML files people edit (sender overrides, the coder's synonyms, the note lexicons, critical-lab limits), read
as yaml.safe_load reads them but refusing a key written twice in one mapping: PyYAML keeps the last without a word,
so a second entry for a local code, or a second "M32.9:" list further down the coder's file (it happened: "lupus
flare" was coded as discoid lupus), silently replaced the first."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class _UniqueKeys(yaml.SafeLoader):
    pass


def _unique_mapping(loader: _UniqueKeys, node: yaml.MappingNode) -> dict:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"{key!r} is written twice in one mapping", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeys.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def read_yaml(path: str | Path) -> Any:
    """The file's YAML; yaml.YAMLError (naming the file, line and column) for bad YAML or a key written twice."""
    with Path(path).open(encoding="utf-8") as stream:
        return yaml.load(stream, Loader=_UniqueKeys)  # a SafeLoader: no arbitrary objects
