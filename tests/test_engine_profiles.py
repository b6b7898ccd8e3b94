import pytest

from ttsr.backends.profiles import (Profile, ProfileError, check_graph_inputs, choose_profile,
                                  input_shapes, make_profile, parse_size)


def profile(**overrides):
    values = dict(lr_min=(8, 8), lr_opt=(16, 24), lr_max=(32, 40), ref_min=(32, 32),
                  ref_opt=(64, 96), ref_max=(128, 160), batch_min=1, batch_opt=2, batch_max=4)
    values.update(overrides)
    return Profile(**values)


def test_parse_size_forms():
    assert parse_size("40x32") == (40, 32)
    assert parse_size("40X32") == (40, 32)
    assert parse_size("24") == (24, 24)
    with pytest.raises(ProfileError, match="not HxW"):
        parse_size("4x")


def test_shapes_follow_the_four_inputs():
    shapes = profile().shapes()
    assert shapes["lq"] == ((1, 3, 8, 8), (2, 3, 16, 24), (4, 3, 32, 40))
    assert shapes["lq_up"] == ((1, 3, 32, 32), (2, 3, 64, 96), (4, 3, 128, 160))
    assert shapes["ref"] == ((1, 3, 32, 32), (2, 3, 64, 96), (4, 3, 128, 160))
    assert shapes["ref_downup"] == shapes["ref"]
    assert input_shapes(3, (5, 7), (12, 8))["lq_up"] == (3, 3, 20, 28)


@pytest.mark.parametrize("overrides, message", [
    (dict(ref_opt=(62, 96)), "multiple of 4"),
    (dict(ref_min=(30, 32)), "multiple of 4"),
    (dict(lr_opt=(40, 24)), "LR size must satisfy min <= opt <= max"),
    (dict(ref_max=(128, 92)), "Ref size must satisfy"),
    (dict(batch_opt=8), "batch must satisfy"),
    (dict(batch_min=0, batch_opt=0), "batch min 0"),
    (dict(lr_min=(0, 8)), "must be positive"),
])
def test_invalid_profiles_are_one_line_errors(overrides, message):
    with pytest.raises(ProfileError, match=message) as info:
        profile(**overrides)
    assert "\n" not in str(info.value)


def test_make_profile_fills_missing_bounds_from_opt():
    made = make_profile([None, (16, 16), None], [(32, 32), None, (64, 64)], [None, None, 4])
    assert (made.lr_min, made.lr_opt, made.lr_max) == ((16, 16),) * 3
    assert (made.ref_min, made.ref_opt, made.ref_max) == ((32, 32), (64, 64), (64, 64))
    assert (made.batch_min, made.batch_opt, made.batch_max) == (4, 4, 4)
    with pytest.raises(ProfileError, match="--min-lr, --opt-lr, --max-lr"):
        make_profile([None, None, None], [(32, 32)] * 3, [1, 1, 1])


def test_dict_round_trip_and_malformed_record():
    original = profile()
    assert Profile.from_dict(original.to_dict()) == original
    broken = original.to_dict()
    broken["lr_min"] = [8]
    with pytest.raises(ProfileError, match="malformed profile"):
        Profile.from_dict(broken)


def test_choose_profile_picks_the_first_that_fits():
    small = profile(lr_max=(16, 24), lr_opt=(16, 24))
    large = profile(lr_min=(17, 8), lr_opt=(24, 24), batch_max=2, batch_opt=1)
    assert choose_profile([small, large], (12, 12), (64, 64)) == 0
    assert choose_profile([small, large], (20, 12), (64, 64)) == 1
    assert choose_profile([small, large], (20, 12), (64, 64), batch=2) == 1
    with pytest.raises(ProfileError, match="batch 3 of LR 20x12 with Ref 64x64 fits no engine profile"):
        choose_profile([small, large], (20, 12), (64, 64), batch=3)
    with pytest.raises(ProfileError, match="Ref 200x64"):
        choose_profile([small], (12, 12), (200, 64))


def test_check_graph_inputs_static_and_missing_dims():
    dynamic = {name: [None, 3, None, None] for name in ("lq", "lq_up", "ref", "ref_downup")}
    check_graph_inputs(profile(), dynamic)
    static = dict(dynamic, lq=[1, 3, 16, 16])
    with pytest.raises(ProfileError, match="graph input lq has static dim 0 = 1"):
        check_graph_inputs(profile(), static)
    fixed = profile(lr_min=(16, 16), lr_opt=(16, 16), lr_max=(16, 16), batch_opt=1, batch_max=1)
    check_graph_inputs(fixed, static)
    with pytest.raises(ProfileError, match="no input"):
        check_graph_inputs(profile(), {"lq": [None, 3, None, None]})
