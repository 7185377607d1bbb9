"""Copying an aggregate for a command: its containers are copied, the frozen records in them shared."""

from __future__ import annotations

from typing import Any, TypeVar

from shared.structures import LayeredDict

A = TypeVar("A")


def copy_sharing_frozen_values(aggregate: A) -> A:
    """A copy whose dicts and lists are its own, holding the same values.

    The repository copies a cached aggregate before every command so that a command that fails
    half-way cannot corrupt the cache. The library's deepcopy walks every visit, flag and datetime
    (most of the cost of logging a visit); it is not needed when every value held is immutable and
    a change replaces a value instead of mutating it, which the aggregates that use this keep to.
    """
    copied = object.__new__(type(aggregate))
    copied.__dict__.update(
        {name: _own(value) for name, value in aggregate.__dict__.items()}  # one level: nothing nests
    )
    return copied


def _own(value: Any) -> Any:
    if isinstance(value, dict | list | set | LayeredDict):  # a LayeredDict copies only its changes
        return value.copy()
    return value
