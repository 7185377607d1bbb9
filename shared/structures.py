"""Containers whose copies share most of what they hold, for aggregates that grow for years.

A command works on a copy of the cached aggregate (a command failing half-way must not change the
cache), and a value held by an aggregate is replaced, not changed, when the aggregate is shared
between threads. With plain dicts and tuples either costs a copy of everything held: for a rep's
visit log after 10,000 visits most of the cost of logging one more. These cost a small part of
that: a `LayeredDict` copies only the changes made since its contents were last merged, a
`SortedRun` with one item more or less shares every chunk but one.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping
from itertools import chain
from typing import Any, Generic, TypeVar, overload

K = TypeVar("K")
V = TypeVar("V")
T = TypeVar("T")

_MISSING: Any = object()


class LayeredDict(Mapping[K, V]):
    """A dict that copies cheaply: its contents are a base dict that is never changed once made,
    shared by every copy, with the keys set since on top of it, each copy's own.

    Iterates as a dict with the same keys set in the same order would (a key set again keeps its
    place). Keys are set, never deleted: an aggregate's records are replaced, not removed. A copy
    whose original has many keys on top (more than the square root of the base's size, or 32)
    merges them into a base of its own, so a copy costs about the square root of the size.
    """

    __slots__ = ("_added", "_base", "_top")

    def __init__(self, items: Mapping[K, V] | Iterable[tuple[K, V]] = ()) -> None:
        self._base: dict[K, V] = dict(items)
        self._top: dict[K, V] = {}
        self._added = 0  # keys on top that the base does not hold

    def __getitem__(self, key: K) -> V:
        value = self._top.get(key, _MISSING)
        return self._base[key] if value is _MISSING else value

    @overload
    def get(self, key: K, /) -> V | None: ...

    @overload
    def get(self, key: K, /, default: V | T) -> V | T: ...

    def get(self, key: K, /, default: Any = None) -> Any:
        value = self._top.get(key, _MISSING)
        return self._base.get(key, default) if value is _MISSING else value

    def __contains__(self, key: object) -> bool:
        return key in self._top or key in self._base

    def __setitem__(self, key: K, value: V) -> None:
        if key not in self._top and key not in self._base:
            self._added += 1
        self._top[key] = value

    def __len__(self) -> int:
        return len(self._base) + self._added

    def __iter__(self) -> Iterator[K]:
        base, top = self._base, self._top
        if not top:
            return iter(base)
        return chain(base, (key for key in top if key not in base))

    def __repr__(self) -> str:
        return f"LayeredDict({dict(self.items())!r})"

    def copy(self) -> LayeredDict[K, V]:
        copied: LayeredDict[K, V] = object.__new__(type(self))
        base, top = self._base, self._top
        if len(top) > max(32, len(base) ** 0.5):
            copied._base, copied._top, copied._added = {**base, **top}, {}, 0
        else:
            copied._base, copied._top, copied._added = base, top.copy(), self._added
        return copied

    def to_dict(self) -> dict[K, V]:
        return {**self._base, **self._top}


class SortedRun(Generic[T]):
    """Items in the order of a key, immutable, held in chunks of a few hundred: a run with an
    item more (`inserted`) or less (`removed`) is a new run sharing every chunk but one with this
    one, so it costs a few hundred references, not one per item. `between` answers the items
    whose key, or any key the order also sorts (a part of it), falls in a range."""

    __slots__ = ("_chunks", "_key", "_lasts", "_len")

    CHUNK = 256  # a chunk that grows past twice this is split in two

    def __init__(self, items: Iterable[T] = (), *, key: Callable[[T], Any]) -> None:
        ordered = sorted(items, key=key)
        size = self.CHUNK
        chunks = tuple(tuple(ordered[i : i + size]) for i in range(0, len(ordered), size))
        self._set(chunks, len(ordered), key)

    def _set(self, chunks: tuple[tuple[T, ...], ...], length: int, key: Callable[[T], Any]) -> None:
        self._chunks = chunks
        self._lasts = tuple(chunk[-1] for chunk in chunks)  # for finding an item's chunk
        self._len = length
        self._key = key

    def _with(self, j: int, replaced_by: tuple[tuple[T, ...], ...], length: int) -> SortedRun[T]:
        """This run with its chunk j replaced by `replaced_by` (none, one or two chunks)."""
        run: SortedRun[T] = object.__new__(type(self))
        chunks, lasts = self._chunks, self._lasts
        run._chunks = (*chunks[:j], *replaced_by, *chunks[j + 1 :])
        run._lasts = (*lasts[:j], *(chunk[-1] for chunk in replaced_by), *lasts[j + 1 :])
        run._len = length
        run._key = self._key
        return run

    def inserted(self, item: T) -> SortedRun[T]:
        """This run with `item` after every item of an equal key."""
        key = self._key
        chunks = self._chunks
        if not chunks:
            return self._with(0, ((item,),), 1)
        k = key(item)
        j = min(bisect_right(self._lasts, k, key=key), len(chunks) - 1)
        chunk = chunks[j]
        i = bisect_right(chunk, k, key=key)
        grown = (*chunk[:i], item, *chunk[i:])
        if len(grown) > 2 * self.CHUNK:
            half = len(grown) // 2
            return self._with(j, (grown[:half], grown[half:]), self._len + 1)
        return self._with(j, (grown,), self._len + 1)

    def removed(self, item: T) -> SortedRun[T]:
        """This run without the item of `item`'s key; KeyError when it holds none."""
        key = self._key
        k = key(item)
        j = bisect_left(self._lasts, k, key=key)
        if j < len(self._chunks):
            chunk = self._chunks[j]
            i = bisect_left(chunk, k, key=key)
            if key(chunk[i]) == k:
                rest = chunk[:i] + chunk[i + 1 :]
                return self._with(j, (rest,) if rest else (), self._len - 1)
        raise KeyError(k)

    def between(self, low: Any, high: Any, by: Callable[[T], Any]) -> tuple[T, ...]:
        """The items with `low` <= by(item) <= `high`, in order (`by`: the key or a part of it)."""
        chunks = self._chunks
        j = bisect_left(self._lasts, low, key=by)
        if j == len(chunks):
            return ()
        i = bisect_left(chunks[j], low, key=by)
        parts = []
        for chunk in chunks[j:]:
            end = bisect_right(chunk, high, lo=i, key=by)
            parts.append(chunk[i:end])
            if end < len(chunk):
                break
            i = 0
        return parts[0] if len(parts) == 1 else tuple(chain.from_iterable(parts))

    def items(self) -> tuple[T, ...]:
        """Every item, in order (a copy of them all: for walking the whole run)."""
        chunks = self._chunks
        return chunks[0] if len(chunks) == 1 else tuple(chain.from_iterable(chunks))

    def __iter__(self) -> Iterator[T]:
        return chain.from_iterable(self._chunks)

    def __len__(self) -> int:
        return self._len
