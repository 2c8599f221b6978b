"""Stage cache keys: which config each stage's output depends on."""

from pipelines.config import load_config
from pipelines.run import STAGES, stage_keys


def changed_stages(before: list[str], after: list[str]) -> list[str]:
    old, new = stage_keys(load_config("tiny", before)), stage_keys(load_config("tiny", after))
    return [name for name in old if old[name] != new[name]]


def test_generate_depends_on_the_student_only_when_curation_runs_it():
    assert changed_stages([], ["student.model=smollm2-135m-instruct"])[0] == "sft"
    on = ["curate.student_solved=true"]
    assert changed_stages([], on)[0] == "generate"
    assert changed_stages(on, [*on, "student.model=smollm2-135m-instruct"])[0] == "generate"
    assert changed_stages(on, [*on, "student.instruction=Answer."])[0] == "generate"
    assert changed_stages(on, [*on, "eval.max_new_tokens=64"])[0] == "generate"  # the student's answer length
    assert changed_stages(on, [*on, "eval.variants=[base]"])[0] == "eval"  # the rest of eval is eval's own
    assert changed_stages(on, [*on, "eval.batch_size=4"])[0] == "eval"


def test_without_the_option_keys_are_those_of_the_sections_alone():
    config = load_config("tiny")
    for stage in STAGES:  # so that work dirs made before the option existed stay cached
        assert stage.digest(config) == config.section_hash(*stage.sections), stage.name
    generate = STAGES[0]
    assert "student.model" not in generate.params(config)
    assert {"student.model", "eval.max_new_tokens"} <= set(generate.params(load_config("tiny", ["curate.student_solved=true"])))
    assert "eval.batch_size" not in generate.params(load_config("tiny", ["curate.student_solved=true"]))
