import pytest

from distill.tasks import FAMILIES, letters, make_problems, split_of
from distill.tasks.arithmetic import STORIES, apply


def _recompute(problem):
    meta = problem.meta
    if problem.family == "letters":
        return meta["word"].count(meta["letter"])
    if meta["kind"] == "word":
        _, op1, op2 = STORIES[meta["story"]]
        return apply(op2, apply(op1, meta["a"], meta["b"]), meta["c"])
    return apply(meta["op"], meta["a"], meta["b"])


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_answers_are_right_and_in_the_question(family):
    for problem in make_problems([family], 300, "train", seed=3):
        assert problem.answer == str(_recompute(problem))
        if family == "letters":
            assert problem.meta["word"] in problem.question and f'"{problem.meta["letter"]}"' in problem.question.replace(
                f"{problem.meta['letter']}'s", f'"{problem.meta["letter"]}"'
            )


def test_splits_are_disjoint_by_word_and_by_operands():
    train = make_problems(["letters", "arithmetic"], 400, "train", seed=0)
    held_out = make_problems(["letters", "arithmetic"], 100, "eval", seed=0)
    assert not {p.meta["word"] for p in train if p.family == "letters"} & {
        p.meta["word"] for p in held_out if p.family == "letters"
    }
    assert not {p.question for p in train} & {p.question for p in held_out}
    for problem in held_out:
        key = problem.meta["word"] if problem.family == "letters" else None
        if key:
            assert split_of(key, 0.2) == "eval"


def test_generation_is_seeded_and_ids_unique():
    first = make_problems(["arithmetic"], 50, "eval", seed=7)
    assert first == make_problems(["arithmetic"], 50, "eval", seed=7)
    assert first != make_problems(["arithmetic"], 50, "eval", seed=8)
    assert len({p.id for p in first}) == len(first) == 50


def test_letters_cover_absent_and_doubled_letters_and_word_lengths():
    problems = make_problems(["letters"], 400, "train", seed=1)
    counts = [int(p.answer) for p in problems]
    assert counts.count(0) > 40 and sum(c >= 2 for c in counts) > 40
    assert all(letters.MIN_LEN <= len(p.meta["word"]) <= letters.MAX_LEN for p in problems)


def test_arithmetic_covers_every_kind():
    kinds = {p.meta["kind"] for p in make_problems(["arithmetic"], 200, "train", seed=0)}
    assert kinds == {"add", "sub", "mul", "word"}


def test_unknown_family_and_split_are_errors():
    with pytest.raises(ValueError, match="unknown task families.*letters"):
        make_problems(["geometry"], 1, "train", seed=0)
    with pytest.raises(ValueError, match="unknown split"):
        make_problems(["letters"], 1, "test", seed=0)
