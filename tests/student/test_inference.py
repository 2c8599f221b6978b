"""Batched greedy generation: rows that end leave the batch, and every answer is what one `generate` call gives."""

import io

import torch
from tqdm.auto import tqdm

from distill import tools
from student.inference import generate, greedy
from student.load import load_model, load_tokenizer
from tests.scripted import scripted


def test_answers_that_end_early_leave_the_batch_and_match_one_generate_call(tiny_student):
    model, tokenizer = load_model(tiny_student["dir"]), load_tokenizer(tiny_student["dir"])
    torch.manual_seed(0)
    with torch.no_grad():  # at the usual init every answer repeats one token; wider weights make them differ
        for parameter in model.parameters():
            if parameter.ndim == 2:
                parameter.normal_(0, 0.2)
    prompts = [f"{row['prompt'][0]['content']}\n" for row in tiny_student["rows"][:8]]
    enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    settings = {"do_sample": False, "pad_token_id": tokenizer.pad_token_id, "max_new_tokens": 24}
    with torch.no_grad():
        free = model.generate(**enc, eos_token_id=tokenizer.pad_token_id, **settings)[:, enc["input_ids"].shape[1] :]
    # Make "end of answer" a token that some answers write early and others never: rows then end at different steps.
    counts = torch.stack([(free[:, :12] == t).any(dim=1) for t in range(len(tokenizer))]).sum(dim=1)
    stop = int(((counts > 0) & (counts < len(prompts) - 1)).nonzero()[0, 0])
    tokenizer.eos_token = tokenizer.convert_ids_to_tokens(stop)
    with torch.no_grad():
        expected = model.generate(**enc, eos_token_id=stop, **settings)[:, enc["input_ids"].shape[1] :]

    with tqdm(total=len(prompts), file=io.StringIO()) as bar:
        got = greedy(model, tokenizer, prompts, [24] * len(prompts), bar, chunk=4)
        assert bar.n == len(prompts)

    def tokens(row):
        return [t for t in row.tolist() if t != tokenizer.pad_token_id]

    assert [tokens(row) for row in got] == [tokens(row) for row in expected]
    lengths = {len(tokens(row)) for row in got}
    assert min(lengths) <= 12 and max(lengths) == 24  # some answers ended inside the first chunks, some ran to the limit


def test_a_tool_call_is_run_and_the_answer_goes_on_after_its_output(tiny_student):
    model, tokenizer = load_model(tiny_student["dir"]), load_tokenizer(tiny_student["dir"])
    call = "<python>6 * 7</python>"
    with scripted(model, tokenizer, call, "\\boxed{42}") as ids:
        got = generate(model, tokenizer, ["What is 6 × 7?"] * 3, "", max_new_tokens=64, batch_size=3)
    own = len(ids) - (tokenizer.pad_token_id == tokenizer.eos_token_id)  # the model's tokens; EOS counts unless it is padding
    assert got == [(tools.call("6 * 7", "42") + "\n\\boxed{42}", own)] * 3


def test_a_call_that_uses_the_last_tokens_gets_no_output(tiny_student):
    model, tokenizer = load_model(tiny_student["dir"]), load_tokenizer(tiny_student["dir"])
    call = "<python>6 * 7</python>"
    with scripted(model, tokenizer, call, "\\boxed{42}"):
        limit = len(tokenizer.encode(call, add_special_tokens=False))
        ((text, n_tokens),) = generate(model, tokenizer, ["What is 6 × 7?"], "", max_new_tokens=limit, batch_size=1)
    assert (text, n_tokens) == (call, limit)
