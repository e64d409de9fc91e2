from wattlm.data.base import PHASES, Filter, Step, StepParams
from wattlm.data.steps import STEPS, StepSpec, build_steps, step_class


def test_table_names_match_the_classes_and_every_step_declares_phase_and_params():
    for name, cls in STEPS.items():
        assert cls.name == name  # the name in report.json is the name a recipe uses
        assert issubclass(cls, Step) and cls.phase in PHASES
        assert issubclass(cls.Params, StepParams)
        if issubclass(cls, Filter):
            assert cls.drop_reason != Filter.drop_reason, f"{name} names its own drop reason"


def test_build_steps_gives_fresh_objects_with_validated_params():
    spec = StepSpec(name="filter_too_short", params={"min_chars": 7})
    first, second = build_steps([spec, spec])
    assert first is not second and first.params.min_chars == second.params.min_chars == 7
    assert step_class("near_dedup").Params().threshold == 0.7
