"""YAML for configs, safe-loaded with bounds: a config cannot make the loader build more than a config.

yaml.safe_load refuses arbitrary objects but not size: an alias bomb (a few lines whose aliases nest
nine deep) is small in memory until something walks it and writes the aliases out (freezing a
target's options, storing the config as JSON), and deep nesting ends in a RecursionError. Here the
text's size, its nesting depth and the size its aliases expand to are bounded before anything walks
it, and a key given twice in one mapping is an error instead of the last one silently winning.
"""

from __future__ import annotations

import functools
import math
import re

from scaleprof.core.text import first_line
from scaleprof.errors import BadInput

MAX_CONFIG_BYTES = 1 << 20
MAX_CONFIG_DEPTH = 32
MAX_CONFIG_NODES = 100_000


def load_yaml(text: str, where: str):
    """yaml.safe_load with bounds: the text's size, its nesting depth and the size its aliases expand to
    (an alias bomb is small text and small in memory until something walks it), and no duplicate keys."""
    import yaml

    if len(text) > MAX_CONFIG_BYTES:
        raise BadInput(f"{where}: larger than {MAX_CONFIG_BYTES // 2**20} MB; a sweep config is a few lines")
    bad = re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", text)
    if bad:                     # PyYAML's reader refuses them too, but from its constructor, unworded
        line = text.count("\n", 0, bad.start()) + 1
        raise BadInput(f"{where}: control character {bad.group()!r} at line {line}: a config is plain text")
    loader = _loader_class()(text)
    try:
        _check_depth(yaml.parse(text, Loader=yaml.SafeLoader), where)
        node = loader.get_single_node()
        if node is not None and _expanded_size(node, {}) > MAX_CONFIG_NODES:
            raise BadInput(f"{where}: its aliases expand to more than {MAX_CONFIG_NODES} values (or refer to "
                           "themselves); write the config out (aliases may repeat small sections only)")
        return None if node is None else loader.construct_document(node)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or first_line(err)
        raise BadInput(f"{where}: malformed YAML{at}: {problem}") from None
    except (ValueError, OverflowError) as err:      # e.g. an integer of more digits than Python converts
        raise BadInput(f"{where}: malformed YAML: {first_line(err)}") from None
    finally:
        loader.dispose()


def _check_depth(events, where: str) -> None:
    """Nesting deeper than MAX_CONFIG_DEPTH is refused before anything recursive reads it."""
    import yaml

    depth = 0
    for event in events:
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_CONFIG_DEPTH:
                raise BadInput(f"{where}: nested more than {MAX_CONFIG_DEPTH} levels deep; a sweep config "
                               "is a mapping of lists and small mappings")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _expanded_size(node, sizes: dict) -> float:
    """Values in ``node`` once every alias is written out, computed without writing them out; an
    alias to a node that contains it (a recursive alias) counts as infinite."""
    import yaml

    if id(node) in sizes:
        return sizes[id(node)]
    sizes[id(node)] = math.inf                # in progress: reaching it again is a cycle
    if isinstance(node, yaml.MappingNode):
        children = [child for pair in node.value for child in pair]
    else:
        children = node.value if isinstance(node, yaml.SequenceNode) else []
    sizes[id(node)] = 1 + sum(_expanded_size(child, sizes) for child in children)
    return sizes[id(node)]


@functools.lru_cache(maxsize=1)
def _loader_class():
    import yaml

    class ConfigLoader(yaml.SafeLoader):
        """SafeLoader that refuses a key given twice in one mapping (the last would silently win)."""

        def construct_mapping(self, node, deep=False):
            if isinstance(node, yaml.MappingNode):
                seen = set()
                for key_node, _ in node.value:
                    if key_node.tag == "tag:yaml.org,2002:merge":
                        continue
                    key = self.construct_object(key_node, deep=True)
                    if not isinstance(key, (str, int, float, bool)):
                        continue                # unhashable keys: SafeLoader's own error
                    if key in seen:
                        raise yaml.constructor.ConstructorError(
                            None, None, f"duplicate key {str(key)[:60]!r} (give each key once)", key_node.start_mark)
                    seen.add(key)
            return super().construct_mapping(node, deep)

    return ConfigLoader
