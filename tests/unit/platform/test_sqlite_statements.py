"""A save's rows go to SQLite in multi-row statements of a few shapes only, whatever its size."""

from __future__ import annotations

from shared.persistence import ROWS_PER_INSERT, statement_sizes


def test_every_row_is_in_one_statement_of_a_few_shapes() -> None:
    shapes: set[int] = set()
    for count in range(3 * ROWS_PER_INSERT + 2):
        sizes = list(statement_sizes(count))
        assert sum(sizes) == count
        assert all(0 < size <= ROWS_PER_INSERT for size in sizes)
        assert len(sizes) <= count // ROWS_PER_INSERT + ROWS_PER_INSERT.bit_length()
        shapes.update(sizes)
    # Each shape is a statement the connection prepares once and keeps (its cache holds 128).
    assert shapes == {1 << n for n in range(ROWS_PER_INSERT.bit_length())}
