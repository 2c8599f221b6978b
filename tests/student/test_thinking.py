"""Budget forcing on the tiny random student: whatever the model writes, the budget and the output shape hold.

The random model rarely closes its think block on its own, so the early-close, "Wait" and EOS paths are driven
by making it prefer one token (a bias on its LM head).
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

import pytest
import torch

from distill import tools
from distill.answers import format_problems, split_reasoning
from student.chat import prompt_messages
from student.thinking import CLOSER, EFFORT_BUDGETS, GenerationCancelled, generate_with_budget
from tests.scripted import scripted

QUESTIONS = ["What is 12 + 30?", 'How many times does "r" appear in "strawberry"?']


@pytest.fixture(scope="module")
def student(tiny_student):
    from student.load import load_model, load_tokenizer

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model on two shared cores decodes several times faster on one thread
    model, tokenizer = load_model(tiny_student["dir"]), load_tokenizer(tiny_student["dir"])
    prompts = [
        tokenizer.apply_chat_template(prompt_messages(q, ""), tokenize=False, add_generation_prompt=True) for q in QUESTIONS
    ]
    yield model, tokenizer, prompts
    torch.set_num_threads(threads)


@contextmanager
def prefer(model, token_id: int):
    """The model puts (almost) all its probability on `token_id`, wherever it is allowed to."""

    def hook(module, inputs, logits):
        logits = logits.clone()
        logits[..., token_id] += 100.0
        return logits

    handle = model.get_output_embeddings().register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def check(result, budget: int, max_answer: int) -> None:
    """The invariants every result keeps, whatever the model wrote."""
    text = result.text
    assert text.startswith("<think>\n") and text.count("<think>") == 1 and text.count("</think>") == 1
    assert 0 <= result.thinking_tokens <= budget
    assert 1 <= result.answer_tokens <= max_answer  # the answer phase always runs; its EOS is counted
    assert result.finish_reason == "stop" or result.answer_tokens == max_answer
    if result.forced:  # we closed the block: only because the budget was spent
        assert result.thinking_tokens == budget and CLOSER in text
    else:  # the model wrote `</think>` itself, which took at least a token
        assert result.thinking_tokens >= 1
    assert result.extensions == result.reasoning.count("Wait")
    assert split_reasoning(text) == (result.reasoning.strip(), result.answer.strip())
    assert "think block not closed exactly once" not in format_problems(text)


@pytest.mark.parametrize("budget", [0, 4, 16, 64])
def test_budget_holds_on_the_random_model(student, budget):
    model, tokenizer, prompts = student
    results = generate_with_budget(model, tokenizer, prompts, budget, max_answer_tokens=6)
    assert len(results) == len(prompts)
    for r in results:
        check(r, budget, 6)
        assert r.extensions == 0
    if budget == 0:
        assert all(r.forced and r.reasoning.strip() == "" and r.thinking_tokens == 0 for r in results)


def test_early_close_is_kept_without_extend(student):
    model, tokenizer, prompts = student
    with prefer(model, tokenizer.convert_tokens_to_ids("</think>")):
        results = generate_with_budget(model, tokenizer, prompts, 16, max_answer_tokens=4)
    for r in results:
        check(r, 16, 4)
        assert (r.thinking_tokens, r.forced, r.extensions) == (1, False, 0)  # its own `</think>`, counted
        assert r.text.startswith("<think>\n</think>")


@pytest.mark.parametrize("budget", [1, 8, 16, 64])
def test_wait_extends_thinking_within_the_budget(student, budget):
    model, tokenizer, prompts = student
    # Expected: a "Wait" goes in while it and one more token fit; the first follows "<think>\n" directly.
    used, extensions = 0, 0
    while (
        extensions < 3 and used + (size := len(tokenizer.encode("\nWait" if used else "Wait", add_special_tokens=False))) < budget
    ):
        used, extensions = used + size, extensions + 1
    with prefer(model, tokenizer.convert_tokens_to_ids("</think>")):
        results = generate_with_budget(model, tokenizer, prompts, budget, max_answer_tokens=4, extend=3)
    for r in results:
        check(r, budget, 4)
        assert not r.forced  # the model closed the block every time; only its last close was kept
        assert (r.extensions, r.thinking_tokens) == (extensions, used + 1)  # + its final `</think>`
    assert (extensions == 0) == (budget == 1) and (extensions == 3 or budget < 64)  # the cases the budgets were picked for


def test_eos_while_thinking_is_not_an_answer(student):
    model, tokenizer, prompts = student
    with prefer(model, tokenizer.eos_token_id):
        results = generate_with_budget(model, tokenizer, prompts, 5, max_answer_tokens=4)
    for r in results:
        check(r, 5, 4)
        # EOS is suppressed while thinking, so the budget runs out; then the answer ends on EOS at once.
        assert (r.thinking_tokens, r.forced, r.answer_tokens, r.finish_reason, r.answer) == (5, True, 1, "stop", "")


def test_sampling_gives_num_samples_per_prompt_reproducibly(student):
    model, tokenizer, prompts = student
    run = lambda: generate_with_budget(model, tokenizer, prompts, 16, 4, temperature=1.0, num_samples=4, seed=7)  # noqa: E731
    first, again = run(), run()
    assert len(first) == 4 * len(prompts)
    for r in first:
        check(r, 16, 4)
    assert [r.text for r in first] == [r.text for r in again]
    assert len({r.text for r in first[:4]}) > 1  # the samples differ


@pytest.mark.parametrize("close", [False, True])
def test_stream_concatenates_to_the_result(student, close):
    model, tokenizer, prompts = student
    events = []
    with prefer(model, tokenizer.convert_tokens_to_ids("</think>")) if close else torch.no_grad():
        results = generate_with_budget(
            model,
            tokenizer,
            prompts,
            12,
            4,
            extend=1,
            temperature=1.0,
            num_samples=2,
            seed=0,
            on_delta=lambda *e: events.append(e),
        )
    for i, r in enumerate(results):
        streamed = {kind: "".join(t for j, k, t in events if j == i and k == kind) for kind in ("reasoning", "content")}
        assert streamed == {"reasoning": r.reasoning, "content": r.answer}
        assert all(THINK not in t for j, _, t in events if j == i for THINK in ("<think>", "</think>"))


def test_unbounded_thinking_stops_at_the_context_and_an_opened_block_is_not_reopened(student, monkeypatch):
    model, tokenizer, prompts = student
    monkeypatch.setattr(model.config, "max_position_embeddings", 64)  # budget=None thinks until the context is full
    opened = [p + "<think>\n" for p in prompts]  # a template that opens the block itself
    for r, p in zip(generate_with_budget(model, tokenizer, opened, None, max_answer_tokens=4), opened, strict=True):
        room = (
            64 - len(tokenizer.encode(p, add_special_tokens=False)) - 4 - len(tokenizer.encode(CLOSER, add_special_tokens=False))
        )
        check(r, room, 4)
        assert r.thinking_tokens > 0 and (not r.forced or r.thinking_tokens == room)


def test_cancel_stops_generation(student):
    model, tokenizer, prompts = student
    cancel = threading.Event()
    with pytest.raises(GenerationCancelled):
        generate_with_budget(model, tokenizer, prompts, 64, 4, cancel=cancel, on_delta=lambda *e: cancel.set())


def test_arguments_and_effort_names(student):
    model, tokenizer, prompts = student
    assert EFFORT_BUDGETS == {"low": 64, "medium": 256, "high": 1024}
    with pytest.raises(ValueError):
        generate_with_budget(model, tokenizer, prompts, -1, 4)
    with pytest.raises(ValueError):
        generate_with_budget(model, tokenizer, prompts, 4, 0)


def test_a_tool_call_while_thinking_is_run_and_thinking_goes_on(student):
    model, tokenizer, prompts = student
    with scripted(model, tokenizer, "<python>6 * 7</python>", "</think>", "\\boxed{42}"):
        (result,) = generate_with_budget(model, tokenizer, prompts[:1], 64, max_answer_tokens=8)
    assert result.reasoning == tools.call("6 * 7", "42") + "\n"
    assert result.answer == "\\boxed{42}" and not result.forced and result.finish_reason == "stop"
    # The output is context the model reads: it counts against the budget with the model's own tokens.
    read = tokenizer.encode(tools.call("6 * 7", "42") + "\n", add_special_tokens=False)
    assert result.thinking_tokens == len(read) + len(tokenizer.encode("</think>", add_special_tokens=False))


def test_a_call_whose_output_would_not_fit_the_budget_ends_the_thinking(student):
    model, tokenizer, prompts = student
    call = "<python>6 * 7</python>"
    budget = len(tokenizer.encode(call, add_special_tokens=False)) + 2
    with scripted(model, tokenizer, call, "</think>", "\\boxed{42}"):
        (result,) = generate_with_budget(model, tokenizer, prompts[:1], budget, max_answer_tokens=8)
    check(result, budget, 8)
    assert "<output>" not in result.text
