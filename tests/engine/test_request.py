import random

import pytest

from ldm_studio.engine.request import MAX_SEED, GenerationRequest


def test_round_trips_through_a_dict_and_ignores_unknown_keys():
    request = GenerationRequest("a cat", "blurry", seed=5, steps=12, guidance=4.5, width=64, height=48)
    data = request.to_dict() | {"from_a_newer_version": 1}
    assert GenerationRequest.from_dict(data) == request


@pytest.mark.parametrize(
    "changes",
    [{"seed": -1}, {"seed": MAX_SEED + 1}, {"steps": 0}, {"width": 30}, {"batch_size": 0}, {"strength": 2}],
)
def test_rejects_impossible_values(changes):
    with pytest.raises(ValueError):
        GenerationRequest("x", **changes)


def test_random_seed_is_in_range_and_batch_seeds_wrap():
    drawn = GenerationRequest("x").with_seed(random.Random(1))
    assert 0 <= drawn.seed <= MAX_SEED
    assert GenerationRequest("x", seed=MAX_SEED).seed_for(1) == 0
