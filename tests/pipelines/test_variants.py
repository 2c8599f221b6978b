"""Model variants of a run: where each lives, GGUF files included, and which stage must have run."""

import pytest

from pipelines.config import load_config
from pipelines.stages import VARIANT_STAGE, gguf_path, loadable_ref, variant_ref
from pipelines.workdir import MissingInput, Workdir


def test_gguf_variants_are_files_written_by_quantize(tmp_path):
    config, workdir = load_config("tiny"), Workdir(tmp_path)
    assert {"gguf-f16", "gguf-q8_0", "gguf-q4_0"} <= set(VARIANT_STAGE)
    with pytest.raises(MissingInput, match="distill quantize"):
        variant_ref(config, workdir, "gguf-q4_0")
    path = gguf_path(workdir, "q4_0")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"GGUF")
    assert variant_ref(config, workdir, "gguf-q4_0") == str(path) == str(tmp_path / "models" / "gguf" / "student-q4_0.gguf")
    with pytest.raises(ValueError, match="unknown model variant 'gguf-q2_k'"):
        variant_ref(config, workdir, "gguf-q2_k")


def test_quantize_config_defaults_and_loadable_ref(tmp_path):
    config = load_config("tiny")
    assert config.quantize.gguf == ["f16", "q8_0", "q4_0"] and config.bench.concurrency == [1, 4]
    assert loadable_ref(Workdir(tmp_path), str(tmp_path / "models" / "rl")) == str(tmp_path / "models" / "rl")
