"""Reading suite YAML safely: YAML 1.2 numbers, no duplicate keys, bounded alias expansion, FILE:LINE errors.

PyYAML's ``SafeLoader`` is extended rather than replaced (ruamel.yaml would be a second YAML library for one
resolver): its YAML 1.1 float rule needs a dot, so ``1e-3`` and ``1e6`` were strings; here they are floats, as in
YAML 1.2. A key given twice in one mapping is an error (PyYAML keeps the last silently). Anchors and aliases
still work, but the size of the document once every alias is expanded is capped (:data:`MAX_NODES`), so a
few hundred bytes of nested anchors ("billion laughs") are refused in microseconds instead of exhausting memory.
The size is counted on the node graph, memoised per node, without building anything.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

#: the most nodes (scalars, lists, mappings) a suite may have once its aliases are expanded
MAX_NODES = 100_000
#: the largest suite file read (bytes); suites are a few hundred bytes
MAX_BYTES = 1 << 20

_FLOAT_12 = re.compile(r"""^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$""")


class YamlError(ValueError):
    """A YAML problem at ``line`` (1-based, or None). The caller turns it into its own error with the file name."""

    def __init__(self, line: int | None, message: str) -> None:
        self.line, self.message = line, message
        super().__init__(message)


class SuiteLoader(yaml.SafeLoader):
    """SafeLoader + YAML 1.2 exponent floats + duplicate keys refused."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            try:
                if key in seen:
                    raise YamlError(
                        line,
                        f"key {_short(key)} appears twice in one mapping (first on line {seen[key]}); keep one of them",
                    )
                seen[key] = line
            except TypeError:  # an unhashable key: SafeConstructor reports it
                continue
        return super().construct_mapping(node, deep=deep)


SuiteLoader.yaml_implicit_resolvers = {k: list(v) for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
SuiteLoader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_12, list("-+0123456789."))


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def expanded_size(node: yaml.Node, limit: int = MAX_NODES) -> int:
    """Nodes in the document once aliases are expanded (shared nodes counted at every use), stopping past ``limit``."""
    memo: dict[int, int] = {}

    def size(n: yaml.Node) -> int:
        if id(n) in memo:
            return memo[id(n)]
        memo[id(n)] = limit + 1  # a node inside itself (recursive alias) is too big
        total = 1
        if isinstance(n, yaml.SequenceNode):
            children = n.value
        elif isinstance(n, yaml.MappingNode):
            children = [c for pair in n.value for c in pair]
        else:
            children = []
        for c in children:
            total += size(c)
            if total > limit:
                break
        memo[id(n)] = total
        return total

    return size(node)


def load_yaml(text: str) -> tuple[yaml.Node | None, Any]:
    """The node tree (for line numbers) and the data of one YAML document. Raises :class:`YamlError`."""
    loader = SuiteLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, None
        if expanded_size(node) > MAX_NODES:
            raise YamlError(
                node.start_mark.line + 1,
                f"the document expands to more than {MAX_NODES} values through its anchors and aliases; "
                "a suite needs a few dozen: write the values out or use fewer nested aliases",
            )
        return node, loader.construct_document(node)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        raise YamlError(mark.line + 1 if mark else None, f"not valid YAML: {e.problem or e.context}") from None
    except yaml.YAMLError as e:
        raise YamlError(None, f"not valid YAML: {e}") from None
    except RecursionError:
        raise YamlError(None, "the YAML nests too deeply; a suite is a few levels deep") from None
    finally:
        loader.dispose()


def read_text(path: Path) -> str:
    """The text of a suite file, as UTF-8. Raises :class:`YamlError` (line of a bad byte) or ``OSError``."""
    with open(path, "rb") as f:
        data = f.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise YamlError(None, f"is larger than {MAX_BYTES >> 10} KiB; a suite is a short YAML file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise YamlError(
            line, f"is not UTF-8 (byte 0x{data[e.start]:02x} at offset {e.start}); save the file as UTF-8"
        ) from None
