import dataclasses

import pytest

from pipelines.config import (
    DEFAULT_PRESET,
    PRESETS_DIR,
    ConfigError,
    PipelineConfig,
    load_config,
    preset_names,
    read_yaml,
    save_config,
)


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_loads_and_says_how_to_run_it(name):
    config = load_config(name)
    assert isinstance(config, PipelineConfig)
    header = (PRESETS_DIR / f"{name}.yaml").read_text().splitlines()
    assert header[0].startswith("#")
    assert any(line.lstrip("# ").startswith("distill run") for line in header if line.startswith("#"))


def test_default_preset_exists():
    assert DEFAULT_PRESET in preset_names()


def test_overrides_are_typed():
    config = load_config(
        "tiny", ["rl.num_generations=8", "sft.learning_rate=1e-4", "tasks.families=[letters]", "sft.lora.rank=16"]
    )
    assert config.rl.num_generations == 8
    assert config.sft.lora.rank == 16 and config.rl.lora.rank == 0
    assert config.sft.learning_rate == pytest.approx(1e-4)
    assert config.tasks.families == ["letters"]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("rl.num_generation=4", "unknown config key rl.num_generation; valid keys in rl: max_steps, .*num_generations"),
        ("rll.steps=1", "unknown config key rll; valid keys: name, seed, tasks"),
        ("sft.max_steps=abc", "sft.max_steps: expected int, got 'abc'"),
        ("sft.learning_rate=fast", "sft.learning_rate: expected a number"),
        ("tasks.families=letters", "tasks.families: expected a list"),
        ("sft=3", "sft: expected a mapping"),
        ("sft.lora.r=8", "unknown config key sft.lora.r; valid keys in sft.lora: rank, alpha"),
        ("sft.lora.rank=big", "sft.lora.rank: expected int"),
        ("novalue", "not of the form section.key=value"),
    ],
)
def test_bad_overrides_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config("tiny", [override])


def test_unknown_preset_lists_the_available_ones():
    with pytest.raises(ConfigError, match="unknown preset 'huge'; available presets: .*tiny"):
        load_config("huge")


def test_flat_params_and_section_hashes():
    config = load_config("tiny")
    flat = config.flat()
    assert flat["rl.num_generations"] == config.rl.num_generations
    assert flat["sft.lora.rank"] == config.sft.lora.rank

    def leaves(node) -> int:
        return sum(leaves(getattr(node, f.name)) for f in dataclasses.fields(node)) if dataclasses.is_dataclass(node) else 1

    assert len(flat) == leaves(config)
    changed = load_config("tiny", ["rl.max_steps=99"])
    assert config.section_hash("sft") == changed.section_hash("sft")
    assert config.section_hash("rl") != changed.section_hash("rl")


@pytest.mark.parametrize("name", preset_names())
def test_a_saved_config_reloads_to_the_same_config(name, tmp_path):
    config = load_config(name)
    save_config(config, tmp_path / "config.yaml")
    again = load_config(None, base=read_yaml(tmp_path / "config.yaml"))
    assert again == config and again.section_hash(*config.to_dict()) == config.section_hash(*config.to_dict())
