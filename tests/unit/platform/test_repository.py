"""The services' repository is the library's, configured from the same environment, and loads
the same aggregates; only its projection skips the library's per-event Protocol check."""

from __future__ import annotations

import pytest
from eventsourcing.application import Application, project_aggregate

from shared.application import ServiceApplication, ServiceRepository
from tests.unit.platform.test_snapshots import Counter, Counting

ENVIRONMENTS = [
    {},
    {"AGGREGATE_CACHE_MAXSIZE": "7"},
    {"AGGREGATE_CACHE_MAXSIZE": "0", "AGGREGATE_CACHE_FASTFORWARD": "n"},
    {
        "AGGREGATE_CACHE_MAXSIZE": "100",
        "AGGREGATE_CACHE_FASTFORWARD_SKIPPING": "y",
        "DEEPCOPY_FROM_AGGREGATE_CACHE": "n",
    },
]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_repository_is_configured_as_the_library_configures_its_own(env: dict[str, str]) -> None:
    app = ServiceApplication(env=env)
    ours = app.repository
    theirs = Application.construct_repository(app)  # the library's, for the same application
    assert isinstance(ours, ServiceRepository)
    assert type(ours.cache) is type(theirs.cache)
    assert getattr(ours.cache, "maxsize", None) == getattr(theirs.cache, "maxsize", None)
    settings = ("event_store", "snapshot_store", "fastforward", "fastforward_skipping", "deepcopy_from_cache")
    for name in settings:
        assert getattr(ours, name) == getattr(theirs, name), name


@pytest.mark.parametrize("env", [{}, {"AGGREGATE_CACHE_MAXSIZE": "10"}])
def test_an_aggregate_loads_as_the_library_projects_it(env: dict[str, str]) -> None:
    app = Counting(env=env)
    counter = Counter("c")
    app.save(counter)
    for n in range(7):  # across a snapshot (every third version), and fast-forwarded when cached
        counter.count(n)
        app.save(counter)
        loaded = app.repository.get(counter.id)
        expected = project_aggregate(None, app.events.get(counter.id))
        assert vars(loaded) == vars(expected)
        assert loaded.seen == list(range(n + 1))
