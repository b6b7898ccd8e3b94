import pytest

from ttsr.backends.profiles import Profile, ProfileError
from ttsr.runtime.batching import plan_batches

A = ((10, 10), (40, 40))
B = ((12, 8), (48, 32))


def test_groups_equal_sizes_in_first_seen_order():
    batches = plan_batches([A, B, A, A, B], batch_size=2)
    assert [(b.indices, b.real, b.lr_size) for b in batches] == [
        ((0, 2), 2, (10, 10)), ((3,), 1, (10, 10)), ((1, 4), 2, (12, 8))]
    covered = sorted(i for b in batches for i in b.indices[:b.real])
    assert covered == [0, 1, 2, 3, 4]


def test_pad_to_full_repeats_the_last_pair():
    batches = plan_batches([A, A, A], batch_size=2, pad_to_full=True)
    assert [(b.indices, b.real) for b in batches] == [((0, 1), 2), ((2, 2), 1)]


def test_profiles_cap_the_batch_and_pad_to_their_minimum():
    small = Profile((8, 8), (10, 10), (10, 10), (40, 40), (40, 40), (40, 40), 1, 2, 2)
    large = Profile((12, 8), (12, 8), (12, 8), (32, 32), (48, 32), (48, 32), 3, 3, 3)
    batches = plan_batches([A, A, A, B], batch_size=8, profiles=[small, large])
    assert [(b.indices, b.real, b.profile) for b in batches] == [
        ((0, 1), 2, 0), ((2,), 1, 0), ((3, 3, 3), 1, 1)]


def test_no_profile_fits():
    small = Profile((8, 8), (10, 10), (10, 10), (40, 40), (40, 40), (40, 40))
    with pytest.raises(ProfileError, match="LR 12x8 with Ref 48x32 fits no engine profile"):
        plan_batches([A, B], batch_size=1, profiles=[small])


def test_batch_size_must_be_positive():
    with pytest.raises(ValueError, match="batch size 0"):
        plan_batches([A], batch_size=0)
