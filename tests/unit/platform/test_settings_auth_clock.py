"""Settings refuse insecure defaults; tokens carry roles; the movable clock only moves forward."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from shared.auth import TokenAuthority, Unauthenticated
from shared.clock import MovableClock
from shared.settings import ServiceSettings


def test_production_refuses_the_development_secret() -> None:
    with pytest.raises(ValidationError, match="IRONARMY_JWT_SECRET must be set"):
        ServiceSettings(environment="production")


def test_production_refuses_a_movable_clock() -> None:
    with pytest.raises(ValidationError, match="movable is refused"):
        ServiceSettings(environment="production", jwt_secret="x" * 40, clock="movable")


def test_one_setting_switches_the_store_to_postgres() -> None:
    env = ServiceSettings(store="postgres", postgres_dbname="prod").eventsourcing_env("leads")
    assert env["PERSISTENCE_MODULE"] == "eventsourcing.postgres" and env["POSTGRES_DBNAME"] == "prod"


def test_pooled_postgres_connections_are_pinged_before_use_only_when_asked() -> None:
    assert ServiceSettings(store="postgres").eventsourcing_env("leads")["POSTGRES_PRE_PING"] == "n"
    pinging = ServiceSettings(store="postgres", postgres_pre_ping=True).eventsourcing_env("leads")
    assert pinging["POSTGRES_PRE_PING"] == "y"


def test_a_service_caches_what_it_saved_unless_another_process_writes_its_store() -> None:
    env = ServiceSettings().eventsourcing_env("leads")
    assert (env["AGGREGATE_CACHE_MAXSIZE"], env["AGGREGATE_CACHE_FASTFORWARD"]) == ("5000", "n")
    observer = ServiceSettings(aggregate_cache_fastforward=True).eventsourcing_env("leads")
    assert observer["AGGREGATE_CACHE_FASTFORWARD"] == "y"


def test_the_relay_reads_in_processes_of_its_own_on_a_store_another_process_can_open(
    tmp_path: Path,
) -> None:
    sqlite = ServiceSettings(data_dir=tmp_path)
    assert sqlite.relay_reader_env("leads") == {
        key: value for key, value in sqlite.eventsourcing_env("leads").items() if "CACHE" not in key
    }
    postgres = ServiceSettings(store="postgres").relay_reader_env("leads")
    assert postgres is not None and postgres["POSTGRES_POOL_SIZE"] == "1"  # a batch at a time
    assert ServiceSettings(store="memory").relay_reader_env("leads") is None
    assert ServiceSettings(data_dir=tmp_path, relay_reader="thread").relay_reader_env("leads") is None
    with pytest.raises(ValidationError, match="relay_reader"):
        ServiceSettings(relay_reader="fork")  # type: ignore[arg-type]
    assert ServiceSettings().relay_readers == 2  # side by side, on two cores
    with pytest.raises(ValidationError, match="relay_readers"):
        ServiceSettings(relay_readers=0)


def test_a_token_says_who_and_in_which_role() -> None:
    tokens = TokenAuthority("s" * 40, "ironarmy")
    principal = tokens.verify(tokens.issue("mgr-1", "manager", region="hangzhou"))
    assert (principal.actor_id, principal.role, principal.region) == ("mgr-1", "manager", "hangzhou")


def test_a_token_with_an_unknown_role_cannot_be_issued_nor_accepted() -> None:
    tokens = TokenAuthority("s" * 40, "ironarmy")
    with pytest.raises(ValueError, match="unknown role"):
        tokens.issue("x", "ceo")
    with pytest.raises(Unauthenticated):
        tokens.verify("not-a-token")


def test_a_remembered_token_is_refused_once_it_expires() -> None:
    now = [time.time()]
    tokens = TokenAuthority("s" * 40, "ironarmy", clock=lambda: now[0])
    token = tokens.issue("rep-1", "rep", ttl=timedelta(minutes=5))
    assert tokens.verify(token) == tokens.verify(token)  # the second from memory
    now[0] += 5 * 60 + 1
    with pytest.raises(Unauthenticated, match="expired"):
        tokens.verify(token)
    with pytest.raises(Unauthenticated, match="expired"):  # and stays refused
        tokens.verify(token)


def test_a_token_signed_with_another_secret_is_refused_whatever_was_remembered() -> None:
    tokens = TokenAuthority("s" * 40, "ironarmy")
    tokens.verify(tokens.issue("rep-1", "rep"))
    forged = TokenAuthority("t" * 40, "ironarmy").issue("rep-1", "rep")
    with pytest.raises(Unauthenticated, match="invalid token"):
        tokens.verify(forged)


def test_the_movable_clock_moves_forward_and_never_back() -> None:
    clock = MovableClock(datetime(2026, 1, 1, tzinfo=UTC))
    assert clock.advance(timedelta(days=2)) == datetime(2026, 1, 3, tzinfo=UTC)
    with pytest.raises(ValueError, match="only moves forward"):
        clock.set(datetime(2025, 12, 31, tzinfo=UTC))
