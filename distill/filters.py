"""Curation filters over teacher traces: each can be switched off, and every removal is counted.

A filter is a plain function `(traces, problems, cfg) -> (kept, removed)`, `removed` pairing each
dropped trace with the reason. Two take one more input, bound by `apply_filters`: `decontaminate`
the eval-set questions, `difficulty` the per-problem pass rates of the traces *before* any filter.
`apply_filters` runs the filters named in `cfg.enabled`, in that order, appends
"<filter>: <reason>" to each removed trace's `reasons`, and returns the funnel of counts.

One more, `student_solved`, is optional and runs last when `cfg.student_solved` is on: it drops the problems the
base student already answers, whose ids the caller finds by running the student (distill/ never does).

It expects every trace to carry its verdict already (`distill.curate.verify_traces`), unverified
ones included: they are what the pass rates are computed from, and `verified` is the first stage.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from functools import cache, lru_cache, partial

import numpy as np

from distill.records import Problem, Trace
from distill.tasks import FAMILIES
from distill.verify import format_problems_for, verifier_of

Removed = list[tuple[Trace, str]]
Filter = Callable[..., tuple[list[Trace], Removed]]


@dataclass
class FilterConfig:
    enabled: list[str] = field(
        default_factory=lambda: ["verified", "format", "length", "repetition", "language", "dedup", "decontaminate", "difficulty"]
    )
    min_tokens: int = 1  # reasoning + answer tokens, as the teacher counted them
    max_tokens: int = 16384
    repetition_n: int = 4  # word n-grams
    max_repetition: float = 0.5  # share of n-grams that repeat an earlier one; degenerate loops score near 1
    min_latin_share: float = 0.9  # of non-space characters: Latin letters, digits, (non-CJK) punctuation, symbols
    near_duplicate_jaccard: float = 0.9  # of word 5-gram sets, as MinHash estimates it (about ±0.03 at 0.9)
    contamination_n: int = 8  # open-r1's rule: any shared 8-gram of words with an eval question
    # Built-in families split train/eval by key, disjoint by construction; their template wording ("how many
    # times does the letter e appear") would read as contamination, so they are exempt unless listed out.
    contamination_exempt: list[str] = field(default_factory=lambda: sorted(FAMILIES))
    min_pass_rate: float = 0.0  # verified / sampled per problem; keep problems the teacher solves this often
    max_pass_rate: float = 1.0  # and drop those it always solves, when set below 1
    # Drop problems the base student already answers (greedy, one attempt, graded as eval grades): costs one
    # student generation per training problem, and makes the generate stage depend on the student config.
    student_solved: bool = False


def _words(text: str) -> list[str]:
    """Lower-case words with punctuation stripped, the unit every n-gram rule here counts in."""
    return re.sub(r"[^\w\s]", " ", text.lower()).split()


def _ngrams(words: list[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]


# ----------------------------------------------------------------------------- per-trace filters


def verified(traces: list[Trace], problems: dict[str, Problem], cfg: FilterConfig) -> tuple[list[Trace], Removed]:
    """Rejection sampling: only traces whose answer verified (the verifier's reasons are already in `reasons`)."""
    return [t for t in traces if t.verified], [(t, "did not verify") for t in traces if not t.verified]


def _split(traces: list[Trace], why: Callable[[Trace], str | None]) -> tuple[list[Trace], Removed]:
    kept, removed = [], []
    for trace in traces:
        reason = why(trace)
        if reason is None:
            kept.append(trace)
        else:
            removed.append((trace, reason))
    return kept, removed


def well_formed(traces: list[Trace], problems: dict[str, Problem], cfg: FilterConfig) -> tuple[list[Trace], Removed]:
    """Think block closed once and exactly one final answer (a python block, for code problems)."""
    return _split(traces, lambda t: "; ".join(format_problems_for(t.text, verifier_of(problems[t.problem_id]))) or None)


def length(traces: list[Trace], problems: dict[str, Problem], cfg: FilterConfig) -> tuple[list[Trace], Removed]:
    def why(trace: Trace) -> str | None:
        tokens = trace.reasoning_tokens + trace.answer_tokens
        if tokens < cfg.min_tokens:
            return f"{tokens} tokens, fewer than {cfg.min_tokens}"
        return f"{tokens} tokens, more than {cfg.max_tokens}" if tokens > cfg.max_tokens else None

    return _split(traces, why)


def repetition_share(text: str, n: int) -> float:
    """Share of the word n-grams that repeat an earlier one: 0 for fresh text, near 1 for a loop."""
    grams = _ngrams(_words(text), n)
    return (len(grams) - len(set(grams))) / len(grams) if grams else 0.0


def repetition(traces: list[Trace], problems: dict[str, Problem], cfg: FilterConfig) -> tuple[list[Trace], Removed]:
    def why(trace: Trace) -> str | None:
        share = repetition_share(trace.text, cfg.repetition_n)
        return f"{share:.0%} of {cfg.repetition_n}-grams repeat" if share > cfg.max_repetition else None

    return _split(traces, why)


@lru_cache(maxsize=4096)
def _latin_or_neutral(char: str) -> bool:
    # Digits, punctuation and symbols (maths, currency) belong to no script, except the CJK and full-width
    # forms from U+3000 on ("，" "。"), which only come with CJK text; letters must be Latin.
    category = unicodedata.category(char)
    if category[0] in "NPS":
        return ord(char) < 0x3000
    return category[0] == "L" and "LATIN" in unicodedata.name(char, "")


def latin_share(text: str) -> float:
    chars = [c for c in text if not c.isspace()]
    return sum(map(_latin_or_neutral, chars)) / len(chars) if chars else 1.0


def language(traces: list[Trace], problems: dict[str, Problem], cfg: FilterConfig) -> tuple[list[Trace], Removed]:
    def why(trace: Trace) -> str | None:
        share = latin_share(trace.reasoning + trace.answer_text)  # not the tags, which are Latin anyway
        return f"only {share:.0%} Latin-script characters" if share < cfg.min_latin_share else None

    return _split(traces, why)


# ----------------------------------------------------------------------------- duplicates

# 16 bands of 8 rows: a pair at Jaccard 0.9 shares a band with p > 0.999, a pair at 0.5 with p = 0.06.
_PERMUTATIONS, _BANDS = 128, 16
_rng = np.random.default_rng(0)  # fixed: the same texts always get the same signatures
_A = _rng.integers(0, 2**63, _PERMUTATIONS, dtype=np.uint64) * np.uint64(2) + np.uint64(1)  # odd 64-bit multipliers
_B = _rng.integers(0, 2**63, _PERMUTATIONS, dtype=np.uint64)


def shingle_hashes(text: str, n: int = 5) -> np.ndarray:
    """32-bit hashes of the text's distinct word n-grams (the whole text, when shorter than n words)."""
    words = np.array([zlib.crc32(word.encode()) for word in _words(text) or [""]], np.uint64)
    n = min(n, len(words))
    grams = np.zeros(len(words) - n + 1, np.uint64)
    for k in range(n):  # a polynomial over n consecutive word hashes, wrapping mod 2**64
        grams = grams * np.uint64(1_000_003) + words[k : len(words) - n + 1 + k]
    return np.unique((grams ^ (grams >> np.uint64(32))) & np.uint64(0xFFFFFFFF))


def minhash(hashes: np.ndarray) -> np.ndarray:
    """A MinHash signature: per permutation, the least of `(a * h + b) >> 32` over the 32-bit hashes (the
    multiply-add-shift universal family; numpy's uint64 arithmetic wraps mod 2**64 as it requires)."""
    return ((np.outer(_A, hashes) + _B[:, None]) >> np.uint64(32)).min(axis=1)


def jaccard(a: str, b: str) -> float:
    """Exact Jaccard similarity of two texts' word 5-gram sets (what the signatures estimate)."""
    x, y = shingle_hashes(a), shingle_hashes(b)
    return len(np.intersect1d(x, y)) / len(np.union1d(x, y))


def dedup(traces: list[Trace], problems: dict[str, Problem], cfg: FilterConfig) -> tuple[list[Trace], Removed]:
    """Exact duplicates of the text, then near duplicates (estimated Jaccard of word 5-grams); the first stays.
    LSH bands find the candidates in linear time; the signatures decide, so memory stays 1 KB per trace."""
    kept, removed = [], []
    seen_text: dict[str, Trace] = {}
    buckets: dict[tuple[int, bytes], list[int]] = defaultdict(list)  # (band, its rows) -> indexes into kept
    signatures: list[np.ndarray] = []
    rows = _PERMUTATIONS // _BANDS
    for trace in traces:
        if (twin := seen_text.get(trace.text)) is not None:
            removed.append((trace, f"exact duplicate of {twin.problem_id}#{twin.sample}"))
            continue
        signature = minhash(shingle_hashes(trace.text))
        keys = [(band, signature[band * rows : (band + 1) * rows].tobytes()) for band in range(_BANDS)]
        candidates = sorted({i for key in keys for i in buckets.get(key, ())})
        near = next((i for i in candidates if (signatures[i] == signature).mean() >= cfg.near_duplicate_jaccard), None)
        if near is not None:
            twin = kept[near]
            removed.append((trace, f"near duplicate of {twin.problem_id}#{twin.sample}"))
            continue
        seen_text[trace.text] = trace
        for key in keys:
            buckets[key].append(len(kept))
        kept.append(trace)
        signatures.append(signature)
    return kept, removed


# ----------------------------------------------------------------------------- against the eval set; difficulty


def decontaminate(
    traces: list[Trace], problems: dict[str, Problem], cfg: FilterConfig, *, eval_questions: Iterable[str] = ()
) -> tuple[list[Trace], Removed]:
    """Drop traces whose question shares a word n-gram with an eval question (lower-case, no punctuation),
    or, for questions shorter than n words, equals one. Families in `cfg.contamination_exempt` pass."""
    n = cfg.contamination_n
    eval_grams, eval_texts = set(), set()
    for question in eval_questions:
        words = _words(question)
        eval_grams.update(_ngrams(words, n))
        eval_texts.add(" ".join(words))

    @cache
    def why(problem_id: str) -> str | None:
        if problems[problem_id].family in cfg.contamination_exempt:
            return None
        words = _words(problems[problem_id].question)
        shared = next((g for g in _ngrams(words, n) if g in eval_grams), None)
        if shared is not None:
            return f"question shares the {n}-gram {' '.join(shared)!r} with an eval question"
        return "question is an eval question" if " ".join(words) in eval_texts else None

    return _split(traces, lambda t: why(t.problem_id))


def pass_rates(traces: list[Trace]) -> dict[str, float]:
    """Verified / sampled, per problem."""
    made, good = defaultdict(int), defaultdict(int)
    for trace in traces:
        made[trace.problem_id] += 1
        good[trace.problem_id] += trace.verified
    return {pid: good[pid] / made[pid] for pid in made}


def difficulty(
    traces: list[Trace], problems: dict[str, Problem], cfg: FilterConfig, *, rates: dict[str, float] | None = None
) -> tuple[list[Trace], Removed]:
    """Keep problems whose pass rate lies in [min_pass_rate, max_pass_rate]. `rates` must come from all
    samples before filtering; without it they are computed from `traces`."""
    rates = pass_rates(traces) if rates is None else rates

    def why(trace: Trace) -> str | None:
        rate = rates[trace.problem_id]
        if rate < cfg.min_pass_rate:
            return f"pass rate {rate:.2f} below {cfg.min_pass_rate:g} (too hard)"
        return f"pass rate {rate:.2f} above {cfg.max_pass_rate:g} (too easy)" if rate > cfg.max_pass_rate else None

    return _split(traces, why)


def student_solved(
    traces: list[Trace], problems: dict[str, Problem], cfg: FilterConfig, *, solved: Collection[str] = ()
) -> tuple[list[Trace], Removed]:
    """Drop traces of the problems in `solved`: those the base student answers correctly already, so teaching
    them spends SFT steps on nothing new."""
    solved = set(solved)
    return _split(traces, lambda t: "the base student already answers it correctly" if t.problem_id in solved else None)


FILTERS: dict[str, Filter] = {
    "verified": verified,
    "format": well_formed,
    "length": length,
    "repetition": repetition,
    "language": language,
    "dedup": dedup,
    "decontaminate": decontaminate,
    "difficulty": difficulty,
}


def check(cfg: FilterConfig) -> None:
    unknown = [name for name in cfg.enabled if name not in FILTERS]
    if unknown:
        raise ValueError(f"curate.enabled: unknown filter {unknown[0]!r}; available filters: {', '.join(FILTERS)}")


def apply_filters(
    traces: list[Trace],
    problems: dict[str, Problem],
    eval_questions: Iterable[str],
    cfg: FilterConfig,
    solved: Collection[str] | None = None,
) -> tuple[list[Trace], list[Trace], list[tuple[str, int]]]:
    """`(kept, rejected, funnel)`; the funnel starts with ("input", n) and has one (stage, count after) per filter.
    `solved`: the ids of the problems the base student answers correctly, needed when `cfg.student_solved` is on."""
    check(cfg)
    missing = sorted({t.problem_id for t in traces} - problems.keys())
    if missing:
        raise ValueError(f"{len(missing)} traces' problems are not given, e.g. {missing[0]!r}")
    bound = FILTERS | {
        "decontaminate": partial(decontaminate, eval_questions=list(eval_questions)),
        "difficulty": partial(difficulty, rates=pass_rates(traces)),  # before any filter, or every rate reads 1
    }
    steps = [(name, bound[name]) for name in cfg.enabled]
    if cfg.student_solved:
        if solved is None:
            raise ValueError("curate.student_solved is on but no solved problem ids were given: run the base student first")
        steps.append(("student_solved", partial(student_solved, solved=solved)))
    kept, rejected, funnel = list(traces), [], [("input", len(traces))]
    for name, step in steps:
        kept, removed = step(kept, problems, cfg)
        for trace, reason in removed:
            trace.reasons.append(f"{name}: {reason}")
            rejected.append(trace)
        funnel.append((name, len(kept)))
    return kept, rejected, funnel
