"""The containers a long-lived aggregate holds answer exactly as a dict and a sorted tuple would,
and a copy or a new run never changes the one it came from."""

from __future__ import annotations

import random
from bisect import insort

import pytest

from shared.structures import LayeredDict, SortedRun


def test_a_layered_dict_and_its_copies_each_answer_as_a_dict_would() -> None:
    rng = random.Random(3)
    lineage: list[tuple[LayeredDict[str, int], dict[str, int]]] = [(LayeredDict(), {})]
    for step in range(3000):
        layered, model = rng.choice(lineage[-5:])  # copies of recent ones, as commands make
        layered, model = layered.copy(), model.copy()
        for _ in range(rng.randrange(1, 4)):
            key = f"k{rng.randrange(step + 10)}"  # new keys, and keys set again
            layered[key] = model[key] = step
        lineage.append((layered, model))
        probe = f"k{rng.randrange(step + 20)}"
        assert (probe in layered) == (probe in model)
        assert layered.get(probe) == model.get(probe) and layered.get(probe, -1) == model.get(probe, -1)
    for layered, model in lineage[::50]:  # every copy still holds what it held when made
        assert list(layered.items()) == list(model.items())  # the same order too
        assert len(layered) == len(model) and layered == model and layered.to_dict() == model
    with pytest.raises(KeyError):
        LayeredDict({"a": 1}).copy()["b"]


def test_a_layered_dict_copy_copies_its_changes_not_its_contents() -> None:
    layered = LayeredDict({f"k{n}": n for n in range(10_000)})
    for n in range(50):
        layered = layered.copy()
        layered[f"new{n}"] = n
    # Fewer changes than the square root of its size: still on top of the base it started with.
    assert len(layered._top) == 50 and len(layered._base) == 10_000
    for n in range(60):
        layered = layered.copy()
        layered[f"more{n}"] = n
    assert len(layered._top) < 100 and len(layered) == 10_110  # merged into a base of its own


class SmallChunks(SortedRun[int]):
    CHUNK = 2  # splits after a handful of items, as a run of thousands does after hundreds


def test_a_sorted_run_answers_as_a_sorted_tuple_through_inserts_and_removals() -> None:
    rng = random.Random(5)
    run: SortedRun[int] = SmallChunks(key=lambda x: x)
    model: list[int] = []
    kept: list[tuple[SortedRun[int], tuple[int, ...]]] = []
    for step in range(1500):
        if model and rng.random() < 0.3:
            item = rng.choice(model)
            run = run.removed(item)
            model.remove(item)
        else:
            item = rng.randrange(-500, 500) * 1000 + step  # distinct items, random places
            run = run.inserted(item)
            insort(model, item)
        kept.append((run, tuple(model)))
        assert run.items() == tuple(model) and tuple(run) == tuple(model) and len(run) == len(model)
        low = rng.randrange(-520, 520)
        high = low + rng.choice((0, 1, 3, 40, 2000))
        # by a part of the key: the thousands, as a history asks by the time alone
        expected = tuple(x for x in model if low <= x // 1000 <= high)
        assert run.between(low, high, lambda x: x // 1000) == expected, f"step {step}"
    for run, items in kept[::25]:  # every run is as it was made
        assert run.items() == items
    with pytest.raises(KeyError):
        run.removed(10**9)


def test_a_sorted_run_keeps_items_of_equal_key_in_the_order_they_came() -> None:
    run: SortedRun[tuple[int, str]] = SmallChunks(key=lambda x: x[0])  # type: ignore[arg-type]
    for n, name in enumerate("abcdefg"):
        run = run.inserted((n % 2, name))
    assert run.items() == ((0, "a"), (0, "c"), (0, "e"), (0, "g"), (1, "b"), (1, "d"), (1, "f"))
    assert run.between(1, 1, lambda x: x[0]) == ((1, "b"), (1, "d"), (1, "f"))
    assert SortedRun([(2, "x"), (1, "y")], key=lambda x: x[0]).items() == ((1, "y"), (2, "x"))
