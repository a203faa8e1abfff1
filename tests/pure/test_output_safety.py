"""Never lose a user's data (issue 15): outputs that overlap inputs, folders we did not
write, replaces killed half-way, values from data that would become paths."""
from __future__ import annotations

import pytest

from curation.paths import NAME_MAX, unsafe_name, unsafe_root


# ---------------------------------------------------------------- the rules (pure)
@pytest.mark.parametrize("value, reason", [
    ("n01440764", None), ("000010003.jpg", None), ("a.b.JPEG", None), ("é" * 127, None),
    ("", "empty"), (None, "not_a_string"), (7, "not_a_string"), ("a/b", "separator"),
    ("/etc", "separator"), ("..\\x", "separator"), ("..", "dot_dot"), (".", "dot_dot"),
    ("x..y", "dot_dot"), ("a\x00b", "control_char"), ("a\tb", "control_char"), ("a\nb", "control_char"),
    ("x" * (NAME_MAX + 1), "too_long"), ("é" * 128, "too_long"),
])
def test_one_rule_for_values_that_become_path_components(value, reason):
    assert unsafe_name(value) == reason


def test_every_imagenet_wnid_and_alias_is_a_safe_name():
    """The subsets' and match-freq's file paths hold only known wnids (others are dropped
    as unknown_wnid), so the rule never drops a real class."""
    from curation.concepts import WNID_ALIASES, wnids

    assert all(unsafe_name(w) is None for w in list(wnids()) + list(WNID_ALIASES) + list(WNID_ALIASES.values()))
    assert unsafe_root("../datasets/laionet") is None
    assert unsafe_root("root\twith tab") == "control_char" and unsafe_root("a/" + "x" * 300) == "too_long"
