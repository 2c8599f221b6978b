"""Each curation filter on planted traces, and the funnel adding up."""

from __future__ import annotations

import pytest

from distill.filters import (
    FILTERS,
    FilterConfig,
    apply_filters,
    decontaminate,
    dedup,
    difficulty,
    jaccard,
    language,
    latin_share,
    length,
    minhash,
    pass_rates,
    repetition,
    repetition_share,
    shingle_hashes,
    student_solved,
    verified,
    well_formed,
)
from distill.records import Problem, Trace

STORY = (
    "First I write the number of apples Anna has, then the number Ben gives her, and I add them with care. "
    "Anna starts with twelve apples in a basket near the door of the old farmhouse by the river. "
    "Ben brings seven more from the orchard behind the barn, where the trees grow in long straight rows. "
    "Twelve and seven make nineteen, and checking by counting up from twelve also lands on nineteen."
)
# Longer, for near duplicates: one changed word alters 5 of its word 5-grams, which must stay under 10%.
LONG = STORY + (
    " To be sure of the sum I also split seven into three and four: twelve plus three is fifteen, and fifteen plus "
    "four is nineteen. Another way is to take one from seven to make twelve into thirteen, leaving six, and thirteen "
    "plus six is nineteen again. Three different routes agree, so the basket now holds nineteen apples in total."
)


def trace(pid="p1", reasoning=STORY, answer="So \\boxed{19}.", sample=0, ok=True, tokens=None) -> Trace:
    n = len(reasoning.split()) + len(answer.split()) if tokens is None else tokens
    return Trace(pid, "custom", sample, "test", "m", reasoning, answer, reasoning_tokens=n, answer_tokens=0, verified=ok)


def problems(*ids: str, family: str = "custom", verifier: str = "math") -> dict[str, Problem]:
    return {i: Problem(i, family, f"Question {i}: how many apples?", "19", meta={"verifier": verifier}) for i in ids}


CFG = FilterConfig()


def test_verified_keeps_only_verified_traces():
    kept, removed = verified([trace(ok=True), trace(ok=False)], problems("p1"), CFG)
    assert len(kept) == 1 and removed[0][1] == "did not verify"


def test_format_wants_one_closed_think_block_and_one_answer():
    good, two = trace(), trace(answer="\\boxed{19} or \\boxed{20}")
    unclosed = trace(reasoning="work </think> more")  # the think block closes twice
    kept, removed = well_formed([good, two, unclosed], problems("p1"), CFG)
    assert kept == [good]
    assert [why for _, why in removed] == ["more than one boxed answer", "think block not closed exactly once"]
    code = trace(answer="```python\nprint(19)\n```")
    assert well_formed([code], problems("p1", verifier="code"), CFG)[0] == [code]  # code answers with a block, not a box


def test_length_bounds_the_token_count():
    short, fine, long = trace(tokens=3), trace(tokens=100), trace(tokens=5000)
    kept, removed = length([short, fine, long], problems("p1"), FilterConfig(min_tokens=10, max_tokens=4096))
    assert kept == [fine]
    assert [why for _, why in removed] == ["3 tokens, fewer than 10", "5000 tokens, more than 4096"]


def test_repetition_catches_loops_not_prose():
    loop = trace(reasoning=STORY[:120] + " Wait, let me check again." * 40)
    assert repetition_share(STORY, 4) == 0.0 and repetition_share(loop.text, 4) > 0.8
    kept, removed = repetition([trace(), loop], problems("p1"), CFG)
    assert len(kept) == 1 and removed[0][0] is loop and "of 4-grams repeat" in removed[0][1]


def test_language_wants_latin_script_and_allows_math_symbols():
    plain = trace()
    chinese = trace(reasoning="首先，我们计算苹果的数量。安娜有十二个苹果，本给了她七个，所以一共是十九个。")
    maths = trace(reasoning="12 × 7 = 84, and π ≈ 3.14159; so 2πr with r = 1 is ≈ 6.283.")
    assert latin_share(chinese.reasoning) == 0 and latin_share(maths.reasoning) > 0.9
    kept, removed = language([plain, chinese, maths], problems("p1"), CFG)
    assert kept == [plain, maths] and removed[0][0] is chinese and "Latin-script" in removed[0][1]


def test_dedup_drops_exact_and_near_duplicates_and_keeps_the_first():
    first = trace("p1", reasoning=LONG)
    exact = trace("p2", reasoning=LONG, sample=1)
    near = trace("p3", reasoning=LONG.replace("old farmhouse", "new farmhouse"))
    other = trace("p4", reasoning="A completely different line of thought about triangles and their angles, " * 2)
    kept, removed = dedup([first, exact, near, other], problems("p1", "p2", "p3", "p4"), CFG)
    assert kept == [first, other]
    assert [why for _, why in removed] == ["exact duplicate of p1#0", "near duplicate of p1#0"]
    # A looser threshold than the pair's Jaccard keeps it; a strict one does not.
    assert 0.9 < jaccard(first.text, near.text) < 0.99
    assert len(dedup([first, near], {}, FilterConfig(near_duplicate_jaccard=0.99))[0]) == 2


def test_minhash_estimates_jaccard():
    for other in (STORY.replace("Anna starts", "Anna begins"), LONG, "Something else entirely, about triangles."):
        estimate = float((minhash(shingle_hashes(STORY)) == minhash(shingle_hashes(other))).mean())
        assert abs(estimate - jaccard(STORY, other)) < 0.1
    assert len(shingle_hashes("one two three")) == 1  # shorter than a shingle: the whole text is one
    assert len(shingle_hashes(STORY + " " + STORY)) < 2 * len(shingle_hashes(STORY))  # a set: repeats count once


EVAL = ["Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May."]


def test_decontaminate_drops_questions_sharing_an_8_gram_with_the_eval_set():
    probs = {
        "leak": Problem("leak", "custom", "NATALIA sold clips to 48 of her friends, in April! How many?", "1"),
        "seven": Problem("seven", "custom", "She sold clips to 48 of her neighbours in June.", "1"),  # 7 shared words at most
        "short": Problem("short", "custom", "What is 2 + 2?", "4"),
        "builtin": Problem("builtin", "letters", EVAL[0], "3"),  # built-in families are split by key
    }
    traces = [trace(pid) for pid in probs]
    kept, removed = decontaminate(traces, probs, CFG, eval_questions=[*EVAL, "what is 2+2"])
    assert [t.problem_id for t in kept] == ["seven", "builtin"]
    assert removed[0][1] == "question shares the 8-gram 'natalia sold clips to 48 of her friends' with an eval question"
    assert removed[1][1] == "question is an eval question"
    assert decontaminate(traces, probs, CFG)[1] == []  # no eval set: nothing to remove


def test_difficulty_uses_pass_rates_from_all_samples():
    traces = [trace("hard", sample=i, ok=i == 0) for i in range(4)] + [trace("easy", sample=i) for i in range(4)]
    traces += [trace("mid", sample=i, ok=i < 2) for i in range(4)]
    rates = pass_rates(traces)
    assert rates == {"hard": 0.25, "easy": 1.0, "mid": 0.5}
    cfg = FilterConfig(min_pass_rate=0.5, max_pass_rate=0.9)
    kept, removed = difficulty(traces, problems("hard", "easy", "mid"), cfg)
    assert {t.problem_id for t in kept} == {"mid"}
    assert "pass rate 0.25 below 0.5 (too hard)" in {why for _, why in removed}
    assert "pass rate 1.00 above 0.9 (too easy)" in {why for _, why in removed}


def test_apply_filters_records_reasons_and_the_funnel_adds_up():
    ids = [f"p{i}" for i in range(6)]
    probs = problems(*ids) | {"leak": Problem("leak", "custom", EVAL[0] + " How many clips?", "72")}
    traces = [
        trace("p0"),  # kept
        trace("p1", sample=1, ok=False),  # did not verify
        trace("p2", answer="no box"),  # format
        trace("p3", tokens=99999),  # length
        trace("p4", reasoning="loop " * 200),  # repetition
        trace("p5", reasoning="只有中文的推理过程，没有拉丁字母。" * 3),  # language
        trace("p1"),  # exact duplicate of p0's text
        trace("leak", reasoning="Natalia sold 48 clips in April and 24 in May, 72 in all, checked twice."),  # contaminated
    ]
    cfg = FilterConfig(min_pass_rate=0.5)  # p1 passes 1 of 2 samples: kept by difficulty
    kept, rejected, funnel = apply_filters(traces, probs, EVAL, cfg)
    assert [name for name, _ in funnel] == ["input", *cfg.enabled]
    assert [count for _, count in funnel] == [8, 7, 6, 5, 4, 3, 2, 1, 1]
    assert len(kept) + len(rejected) == funnel[0][1] and len(kept) == funnel[-1][1]
    stages = [t.reasons[-1].split(":")[0] for t in rejected]
    assert stages == ["verified", "format", "length", "repetition", "language", "dedup", "decontaminate"]
    assert kept == [traces[0]] and traces[2].reasons == ["format: no boxed answer"]


def test_filters_can_be_switched_off_and_unknown_ones_are_named():
    traces = [trace(ok=False), trace()]
    kept, rejected, funnel = apply_filters(traces, problems("p1"), [], FilterConfig(enabled=["length"]))
    assert len(kept) == 2 and funnel == [("input", 2), ("length", 2)]
    with pytest.raises(ValueError, match="unknown filter 'fuzzy'; available filters: verified, format"):
        apply_filters(traces, problems("p1"), [], FilterConfig(enabled=["fuzzy"]))
    with pytest.raises(ValueError, match="problems are not given"):
        apply_filters(traces, {}, [], CFG)
    assert set(CFG.enabled) == set(FILTERS)


def test_student_solved_drops_every_trace_of_the_problems_the_student_answers():
    probs = problems("p0", "p1", "p2")
    traces = [trace(pid, sample=i, reasoning=f"{STORY} Take {pid}, sample {i}.") for pid in probs for i in range(2)]
    kept, removed = student_solved(traces, probs, CFG, solved={"p1", "elsewhere"})
    assert {t.problem_id for t in kept} == {"p0", "p2"} and len(kept) == 4
    assert [(t.problem_id, why) for t, why in removed] == [("p1", "the base student already answers it correctly")] * 2


def test_student_solved_runs_last_only_when_on_and_needs_the_solved_ids():
    probs = problems("p0", "p1", "p2")
    traces = [trace(pid, reasoning=f"{STORY} Take {pid}.") for pid in probs] + [trace("p2", sample=1, ok=False)]
    assert [name for name, _ in apply_filters(traces, probs, [], CFG, solved={"p1"})[2]] == ["input", *CFG.enabled]
    cfg = FilterConfig(student_solved=True)
    kept, rejected, funnel = apply_filters(traces, probs, [], cfg, solved={"p1", "p2"})
    assert funnel == [("input", 4), ("verified", 3), *[(name, 3) for name in cfg.enabled[1:]], ("student_solved", 1)]
    assert [t.problem_id for t in kept] == ["p0"]
    assert [(t.problem_id, t.reasons[-1]) for t in rejected] == [
        ("p2", "verified: did not verify"),
        ("p1", "student_solved: the base student already answers it correctly"),
        ("p2", "student_solved: the base student already answers it correctly"),
    ]
    assert "student_solved" not in FILTERS  # a switch of its own: its input comes from running the student
    with pytest.raises(ValueError, match="curate.student_solved is on but no solved problem ids were given"):
        apply_filters(traces, probs, [], cfg)
