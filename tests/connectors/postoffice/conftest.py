from __future__ import annotations

from collections.abc import Iterator

import pytest

from postroom.connectors.postoffice.delivery import Delivery
from postroom.store import Store
from tests.connectors.postoffice.sf_setup import populate


@pytest.fixture
def world(store: Store) -> Store:
    return populate(store)


@pytest.fixture
def delivery(world: Store) -> Iterator[Delivery]:
    yield Delivery(world)
