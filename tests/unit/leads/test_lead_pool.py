"""The lead pool: registering one and in bulk, and refusing the same company twice."""

from __future__ import annotations

from uuid import UUID

import pytest

from services.leads.domain.lead import Lead
from services.leads.domain.values import Address, company_key
from shared.domain import Conflict, RuleViolated

from .given import NINGBO, T0, admin, app, new_lead


def test_a_registered_lead_waits_in_the_pool_with_its_address_and_score() -> None:
    leads = app()
    lead_id = leads.register_lead(new_lead("Acme Trading", 87.5), admin())
    lead = leads.lead(str(lead_id))
    assert (lead.status, lead.score, lead.region, lead.lat, lead.lon) == (
        "pool",
        87.5,
        "hangzhou",
        30.2741,
        120.1551,
    )
    assert lead.owners == () and lead.registered_at == T0


def test_the_same_company_twice_is_refused_with_the_existing_leads_id() -> None:
    leads = app()
    first = leads.register_lead(new_lead("Acme Trading Co., Ltd."), admin())
    with pytest.raises(Conflict) as refused:
        leads.register_lead(new_lead("ACME  trading co ltd"), admin())
    assert refused.value.details["existing_lead_id"] == str(first)
    assert refused.value.field == "company_name"


def test_a_registration_code_identifies_a_company_whatever_its_name() -> None:
    assert company_key("Acme", "91330100-MA2B") == company_key("Acme Hangzhou Branch", "91330100ma2b")
    assert company_key("Acme", "91330100MA2B") != company_key("Acme")
    leads = app()
    first = leads.register_lead(new_lead("Acme", code="91330100MA2B"), admin())
    with pytest.raises(Conflict) as refused:
        leads.register_lead(new_lead("Acme Branch", code="91330100 ma2b"), admin())
    assert refused.value.details["existing_lead_id"] == str(first)


def test_full_width_and_half_width_names_are_one_company() -> None:
    assert company_key("ＡＣＭＥ（杭州）有限公司") == company_key("acme(杭州)有限公司")


@pytest.mark.parametrize("score", [-0.01, 100.01])
def test_a_score_outside_0_to_100_is_refused(score: float) -> None:
    with pytest.raises(RuleViolated) as refused:
        app().register_lead(new_lead("Acme", score), admin())
    assert refused.value.field == "score"


@pytest.mark.parametrize("score", [0.0, 100.0])
def test_a_score_on_the_bounds_is_accepted(score: float) -> None:
    leads = app()
    assert leads.lead(str(leads.register_lead(new_lead("Acme", score), admin()))).score == score


@pytest.mark.parametrize(
    ("lat", "lon", "field"), [(90.01, 120.0, "address.lat"), (30.0, -180.01, "address.lon")]
)
def test_coordinates_off_the_globe_are_refused(lat: float, lon: float, field: str) -> None:
    with pytest.raises(RuleViolated) as refused:
        Address("1 Road", "City", lat, lon)
    assert refused.value.field == field


def test_a_bulk_import_saves_the_new_and_reports_duplicates_and_refusals_by_position() -> None:
    leads = app()
    existing = leads.register_lead(new_lead("Old Co"), admin())
    result = leads.register_leads(
        [
            new_lead("New Co", 70),
            new_lead("old co"),  # already a lead
            new_lead("Other Co", 60, "ningbo", address=NINGBO),
            new_lead("NEW CO"),  # the same as the first of this import
            new_lead("Bad Co", 101),
        ],
        admin(),
    )
    assert [d.index for d in result.duplicates] == [1, 3]
    assert result.duplicates[0].existing_lead_id == str(existing)
    assert result.duplicates[1].existing_lead_id == result.registered[0]
    assert [(r.index, r.field) for r in result.refused] == [(4, "score")]
    assert len(result.registered) == 2
    assert {p.region: p.in_pool for p in leads.pool_by_region()} == {"hangzhou": 2, "ningbo": 1}


def test_a_bulk_import_is_saved_in_batches_of_the_configured_size() -> None:
    from services.leads.policy import LeadsPolicy

    leads = app(LeadsPolicy(save_batch_size=3))
    result = leads.register_leads([new_lead(f"Co {i}") for i in range(7)], admin())
    assert len(result.registered) == 7
    assert leads.pool_by_region("hangzhou")[0].in_pool == 7
    assert Lead.create_id(company_key("Co 6")) == UUID(result.registered[6])
