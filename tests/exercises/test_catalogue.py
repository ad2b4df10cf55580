"""The exercise catalogue: completeness, validity, the seed article's doses, errors, the CLI."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from hipsense.cli import main
from hipsense.errors import ConfigError
from hipsense.exercises.catalogue import (
    Catalogue,
    UnknownExerciseError,
    get_exercise,
    load_catalogue,
)
from hipsense.exercises.spec import (
    MEASURES,
    POSTURES,
    Dose,
    ExerciseSpec,
    ExerciseSpecError,
    Motion,
)

SEED_IDS = (
    "hip_flexor_stretch", "iliotibial_band_stretch", "bridge", "monster_walks",
    "single_leg_bridge", "straight_leg_raise", "single_leg_hip_circles", "scorpion",
    "hip_abductor", "side_to_side", "half_jacks", "reverse_clam_shell", "clam_shells",
    "speed_skaters", "press_ups",
)
VARIANT_IDS = (
    "seated_leg_raise", "side_lying_hip_abduction", "prone_hip_extension", "pelvic_tilt",
    "quadruped_punches", "quadruped_opposite_arm_leg",
    # standing variants found in the CMU exercise sample
    "squat", "lunge", "step_up", "jump", "walk",
)

# The seed article's doses as architecture.md gives them:
# id -> (reps_min, reps_max, hold_s_min, hold_s_max, sides); None = the article gives none.
ARTICLE_DOSES = {
    "hip_flexor_stretch": (1, 1, 30.0, 30.0, "each"),
    "iliotibial_band_stretch": (3, 5, None, None, "each"),
    "bridge": (15, 20, 2.0, 5.0, "both"),
    "single_leg_hip_circles": (8, 10, None, None, "each"),
    "scorpion": (10, 15, None, None, "alternating"),
    "hip_abductor": (10, 12, None, None, "each"),
    "side_to_side": (25, 30, None, None, "both"),
    "half_jacks": (10, 12, None, None, "both"),
    "reverse_clam_shell": (10, 10, 10.0, 10.0, "each"),
    "clam_shells": (10, 15, 2.0, 2.0, "each"),
    "speed_skaters": (12, 15, 2.0, 2.0, "alternating"),
    "press_ups": (15, 20, 5.0, 5.0, "n/a"),
}

# evaluation.md's mapping table: (data set, recording) -> catalogue id.
DATASET_MAPPING = {
    ("uci-pt", "e1"): "seated_leg_raise",
    ("uci-pt", "e3"): "straight_leg_raise",
    ("uci-pt", "e4"): "side_lying_hip_abduction",
    ("uci-pt", "e5"): "prone_hip_extension",
    ("mex-thigh", "01"): "side_to_side",
    ("mex-thigh", "02"): "bridge",
    ("mex-thigh", "03"): "pelvic_tilt",
    ("mex-thigh", "04"): "clam_shells",
    ("mex-thigh", "05"): "press_ups",
    ("mex-thigh", "06"): "quadruped_punches",
    ("mex-thigh", "07"): "quadruped_opposite_arm_leg",
}

SHIPPED_TOML = Path(__file__).parents[2] / "hipsense" / "exercises" / "catalogue.toml"


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


# -- contents ------------------------------------------------------------------------------------


def test_every_seed_and_variant_id_is_present_and_nothing_else(catalogue):
    assert set(catalogue) == set(SEED_IDS) | set(VARIANT_IDS)
    assert len(catalogue) == len(SEED_IDS) + len(VARIANT_IDS)


@pytest.mark.parametrize("exercise_id", SEED_IDS)
def test_seed_exercises_are_marked_seed(catalogue, exercise_id):
    assert catalogue[exercise_id].source == "seed"


@pytest.mark.parametrize("exercise_id", VARIANT_IDS)
def test_variants_are_marked_variant_and_come_from_a_data_set(catalogue, exercise_id):
    spec = catalogue[exercise_id]
    assert spec.source == "variant"
    assert spec.datasets, "a variant is in the catalogue because a data set contains it"


@pytest.mark.parametrize(("exercise_id", "dose"), sorted(ARTICLE_DOSES.items()))
def test_doses_match_the_seed_article(catalogue, exercise_id, dose):
    reps_min, reps_max, hold_min, hold_max, sides = dose
    got = catalogue[exercise_id].dose
    assert got.from_article
    assert (got.reps_min, got.reps_max) == (reps_min, reps_max)
    assert (got.hold_s_min, got.hold_s_max) == (hold_min, hold_max)
    assert got.sides == sides


def test_doses_not_from_the_article_say_so(catalogue):
    for spec in catalogue.values():
        if spec.id not in ARTICLE_DOSES:
            assert not spec.dose.from_article, spec.id


def test_data_set_mapping_matches_evaluation_md(catalogue):
    found = {(ref.dataset, ref.recording): spec.id
             for spec in catalogue.values() for ref in spec.datasets
             if ref.dataset != "cmu-exercise"}  # evaluation.md's table maps UCI and MEx only
    assert found == DATASET_MAPPING


@pytest.mark.parametrize("exercise_id", SEED_IDS + VARIANT_IDS)
def test_every_field_is_valid(catalogue, exercise_id):
    spec = catalogue[exercise_id]
    assert spec.id == exercise_id
    assert spec.posture in POSTURES
    assert spec.measure in MEASURES
    assert spec.name and spec.can_see and spec.cannot_see and spec.instructions
    assert math.isclose(math.hypot(*spec.rest_gravity_thigh), 1.0, abs_tol=1e-6)
    assert math.isclose(math.hypot(*spec.motion.axis_thigh), 1.0, abs_tol=1e-6)
    assert 0 <= spec.motion.rom_deg_min <= spec.motion.rom_deg_max <= 180
    assert spec.thresholds.min_rom_deg <= spec.motion.rom_deg_max
    if spec.measure != "timed":
        # A counted rep must be reachable with a typical range of motion.
        assert 0 < spec.thresholds.min_rom_deg <= spec.motion.rom_deg_min
    if spec.dose.hold_s_min and spec.thresholds.hold_min_s is not None:
        assert spec.thresholds.hold_min_s <= spec.dose.hold_s_min


def test_rest_gravity_follows_the_posture(catalogue):
    # The thigh-frame conventions written in spec.py's docstring.
    expected = {
        "standing": (0.0, -1.0, 0.0),
        "seated": (-1.0, 0.0, 0.0),
        "prone": (1.0, 0.0, 0.0),
        "side_lying": (0.0, 0.0, -1.0),
        "quadruped": (0.0, -1.0, 0.0),
        "kneeling": (0.0, -1.0, 0.0),
    }
    for spec in catalogue.values():
        if spec.posture in expected:
            assert spec.rest_gravity_thigh == pytest.approx(expected[spec.posture]), spec.id
        else:  # supine: flat thigh, or knees bent with the thigh 45° up
            assert spec.rest_gravity_thigh in ((-1.0, 0.0, 0.0), (-0.70710678, 0.70710678, 0.0))


def test_measures_that_need_special_handling(catalogue):
    assert catalogue["single_leg_hip_circles"].measure == "cycles"
    assert set(catalogue["single_leg_hip_circles"].motion.directions) == {
        "clockwise", "counterclockwise"}
    assert catalogue["half_jacks"].measure == "impacts"
    assert catalogue["speed_skaters"].measure == "impacts"
    assert catalogue["monster_walks"].measure == "steps"
    # press-ups tilt the thighs 3-20° on MEx: counted; punches on hands and knees are not seen
    assert catalogue["press_ups"].measure == "reps"
    assert catalogue["quadruped_punches"].measure == "timed"
    assert catalogue["side_to_side"].motion.bidirectional


def test_left_thigh_values_are_mirrored(catalogue):
    side_lying = catalogue["side_lying_hip_abduction"]
    assert side_lying.rest_gravity_for("right") == (0.0, 0.0, -1.0)
    assert side_lying.rest_gravity_for("left") == (0.0, 0.0, 1.0)  # lying on the right side
    # Abduction of the right leg is a rotation about -x, of the left leg about +x.
    assert side_lying.motion.axis_for("left") == (1.0, 0.0, 0.0)
    # Flexion is +z for both legs: the frame's z points to the person's right on both thighs.
    flexion = catalogue["straight_leg_raise"].motion
    assert flexion.axis_for("left") == flexion.axis_for("right") == (0.0, 0.0, 1.0)
    with pytest.raises(ValueError, match="left"):
        side_lying.rest_gravity_for("middle")


# -- lookup --------------------------------------------------------------------------------------


def test_get_exercise_returns_the_spec():
    assert get_exercise("bridge").name == '"Having Babies" Bridge'


def test_unknown_id_lists_the_valid_ids(catalogue):
    with pytest.raises(UnknownExerciseError) as caught:
        get_exercise("bridges")
    message = str(caught.value)
    assert "'bridges'" in message
    assert all(exercise_id in message for exercise_id in catalogue)
    assert isinstance(caught.value, ConfigError) and isinstance(caught.value, KeyError)
    assert catalogue.get("bridges") is None and "bridges" not in catalogue


def test_catalogue_is_read_only(catalogue):
    with pytest.raises(TypeError):
        catalogue["bridge"] = catalogue["bridge"]  # type: ignore[index]
    with pytest.raises(AttributeError):
        catalogue["bridge"].name = "x"  # type: ignore[misc]


# -- errors name the exercise and the field ------------------------------------------------------


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "catalogue.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _shipped_with(old: str, new: str) -> str:
    text = SHIPPED_TOML.read_text(encoding="utf-8")
    assert old in text, old
    return text.replace(old, new, 1)


def test_a_copy_of_the_shipped_file_loads(tmp_path):
    assert len(load_catalogue(_write(tmp_path, SHIPPED_TOML.read_text("utf-8")))) == len(SEED_IDS) + len(VARIANT_IDS)


def test_invalid_toml_is_a_config_error_with_the_line(tmp_path):
    path = _write(tmp_path, "schema_version = 1\n[exercise.bridge\nname = 'x'\n")
    with pytest.raises(ConfigError, match=r"not valid TOML.*line 2"):
        load_catalogue(path)


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_catalogue(tmp_path / "nope.toml")


def test_wrong_schema_version_is_rejected(tmp_path):
    text = _shipped_with("schema_version = 1", "schema_version = 2")
    with pytest.raises(ConfigError, match="schema_version"):
        load_catalogue(_write(tmp_path, text))


@pytest.mark.parametrize(
    ("old", "new", "field", "reason"),
    [
        ('posture = "kneeling"', 'posture = "kneling"', "posture", "not one of"),
        ("reps_min = 15, reps_max = 20", "reps_min = 20, reps_max = 15", "dose.reps_max",
         "must be >="),
        ("reps_min = 15, reps_max = 20", "reps_min = 0, reps_max = 20", "dose.reps_min",
         ">= 1"),
        ('sides = "both", from_article = true }', 'sides = "both", from_article = "yes" }',
         "dose.from_article", "true or false"),
        ("rest_gravity_thigh = [-0.70710678, 0.70710678, 0.0]",
         "rest_gravity_thigh = [-1.0, 1.0, 0.0]", "rest_gravity_thigh", "unit vector"),
        ("min_rom_deg = 10.0, too_fast_s = 1.0, hold_min_s = 2.0",
         "min_rom_deg = 10.0, too_fast_s = -1.0, hold_min_s = 2.0", "thresholds.too_fast_s",
         ">= 0"),
        ("min_rom_deg = 10.0, too_fast_s = 1.0, hold_min_s = 2.0",
         "min_rom_deg = 10.0, too_fast_s = 1.0, hold_min = 2.0", "thresholds.hold_min",
         "unknown key"),
        ('measure = "reps"\n# On the back', 'measure = "counts"\n# On the back', "measure",
         "not one of"),
        ('datasets = [{ dataset = "mex-thigh", recording = "02"',
         'datasets = [{ dataset = "mex", recording = "02"', "datasets[0].dataset", "not one of"),
    ],
)
def test_invalid_field_names_the_exercise_and_the_field(tmp_path, old, new, field, reason):
    # Every replacement above is in the first occurrence's exercise; find which one that is.
    text = _shipped_with(old, new)
    with pytest.raises(ExerciseSpecError) as caught:
        load_catalogue(_write(tmp_path, text))
    error = caught.value
    assert error.field == field
    assert f"field {field!r}" in str(error)
    assert reason in str(error)
    assert error.exercise is not None and f"exercise {error.exercise!r}" in str(error)
    assert error.exercise in ("hip_flexor_stretch", "bridge")


def test_missing_field_is_named(tmp_path):
    text = _shipped_with('can_see = "The thighs levelling out', 'seen = "The thighs levelling out')
    with pytest.raises(ExerciseSpecError, match="exercise 'bridge', field 'seen'"):
        load_catalogue(_write(tmp_path, text))


def test_a_new_exercise_is_only_a_table(tmp_path):
    extra = '''
[exercise.wall_sit]
name = "Wall Sit"
source = "variant"
posture = "seated"
sensor_leg = "either"
measure = "holds"
rest_gravity_thigh = [-1.0, 0.0, 0.0]
can_see = "How long you hold."
cannot_see = "How hard your legs work."
instructions = ["Slide down a wall until your thighs are level, and hold."]
motion = { kind = "none", axis_thigh = [0.0, 0.0, 1.0], rom_deg_min = 0.0, rom_deg_max = 5.0 }
dose = { reps_min = 3, reps_max = 3, hold_s_min = 30.0, hold_s_max = 30.0, sides = "both" }
thresholds = { min_rom_deg = 0.0, hold_min_s = 20.0 }
'''
    path = _write(tmp_path, SHIPPED_TOML.read_text("utf-8") + extra)
    assert get_exercise("wall_sit", load_catalogue(path)).dose.hold_s_min == 30.0


def test_direct_construction_is_validated_too(catalogue):
    bridge = catalogue["bridge"]
    with pytest.raises(ExerciseSpecError, match="exercise 'bridge', field 'posture'"):
        replace(bridge, posture="upside_down")
    with pytest.raises(ExerciseSpecError, match="field 'directions'"):
        Motion(kind="circle", axis_thigh=(0.0, 1.0, 0.0), rom_deg_min=1.0, rom_deg_max=2.0)
    with pytest.raises(ExerciseSpecError, match="field 'sides'"):
        Dose(sides="one")
    with pytest.raises(ExerciseSpecError, match="field 'id'"):
        replace(bridge, id="Bridge!")
    with pytest.raises(ExerciseSpecError, match="thresholds.min_rom_deg"):
        replace(bridge, measure="timed")
    assert isinstance(bridge, ExerciseSpec)


# -- the CLI -------------------------------------------------------------------------------------


def test_cli_json_lists_every_exercise(catalogue):
    result = CliRunner().invoke(main, ["exercises", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["schema_version"] == 1
    assert list(document["exercises"]) == list(catalogue)
    bridge = document["exercises"]["bridge"]
    assert bridge["dose"]["reps_min"] == 15 and bridge["posture"] == "supine"


def test_cli_table_has_one_line_per_exercise(catalogue):
    result = CliRunner().invoke(main, ["exercises"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0].split()[:4] == ["id", "name", "posture", "measure"]
    assert [line.split()[0] for line in lines[1:]] == list(catalogue)
    assert "15-20 reps, hold 2-5 s, both legs" in result.output
