"""Stage cache keys: which config each stage's output depends on; the settings check before any stage runs."""

import re

import pytest

from pipelines.config import ConfigError, load_config
from pipelines.run import STAGE_NAMES, STAGES, preflight, stage_keys


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


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("tasks.families=[letter]", "generate settings: tasks.families: unknown task families ['letter']"),
        ("teacher.backend=vllm", "generate settings: teacher.model: the vllm backend needs a model"),
        ("curate.enabled=[verify]", "generate settings: curate.enabled: unknown filter 'verify'"),
        ("sft.lora.rank=-1", "sft settings: lora: rank and alpha must be >= 0"),
        ("student.dtype=fp8", "sft settings: unknown dtype 'fp8'"),
        ("rl.rewards=[correct]", "rl settings: rl.rewards: unknown reward 'correct'; available rewards: correctness"),
        ("rl.families=[letter]", "rl settings: rl.families: 'letter' is not a family of this run (letters, arithmetic)"),
        ("rl.batch_size=6", "rl settings: rl.batch_size (6) must be a multiple of rl.num_generations"),
        ("quantize.gguf=[q5_k]", "quantize settings: unknown quantization 'q5_k'"),
        ("quantize.calibration=-1", "quantize settings: quantize.calibration must be a number of traces, 0 or more; got -1"),
        ("eval.variants=[rl,gguf-q5_k]", "eval settings: eval.variants: unknown model variant 'gguf-q5_k'"),
        ("quantize.methods=[int8]", "eval settings: eval.variants names 'nf4', which this run does not write"),
        ("eval.budgets=[]", "eval settings: scaling needs budgets >= 0"),
        ("bench.runtime=llama", "bench settings: unknown runtime 'llama'"),
    ],
)
def test_a_bad_setting_of_any_stage_is_refused_before_the_first_starts(override, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        preflight(load_config("tiny", [override]), STAGE_NAMES)


def test_only_the_stages_that_will_run_are_checked():
    preflight(load_config("tiny"), STAGE_NAMES)
    preflight(load_config("tiny", ["rl.rewards=[correct]"]), ("generate", "sft"))
