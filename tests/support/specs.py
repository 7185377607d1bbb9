"""The services that exist in this tree (a service joins the cross-service tests when it lands)."""

from __future__ import annotations

import importlib
from typing import Any

from shared.events.base import SERVICES
from shared.service import ServiceSpec
from tests.support.probe import probe_spec


def available_specs(*, with_probe: bool = True) -> dict[str, ServiceSpec[Any]]:
    specs: dict[str, ServiceSpec[Any]] = {"probe": probe_spec()} if with_probe else {}
    for name in SERVICES:
        try:
            module = importlib.import_module(f"services.{name}.bootstrap")
        except ModuleNotFoundError:
            continue
        specs[name] = module.spec()
    return specs
