"""The same-model student (benchmarks/bigbench/student.py LoRAStudent, samemodel.py): a tiny randomly
initialised Qwen2 with a tokenizer trained here (no download), LoRA-trained for a few steps, options
scored by log-likelihood; and the harness on a fake LLM, whose rerun reads its cache."""

from __future__ import annotations

import json
import math

import pytest

from benchmarks.bigbench.student import Group, LoRAConfig, LoRAStudent
from benchmarks.bigbench.tasks import Item

from .conftest import SHARED, require_shared

CHAT = ("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
CORPUS = ["Which happened because the storm hit the harbor?", "A. The boats sank.", "B. The sun rose.", "Answer with the letter.",
          "yes no maybe the river froze so we skated", "cause effect event option letter correct", "A B C D E yes no"] * 3


def flat(ll):
    return [v for x in ll for v in x]


def tiny_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<unk>", "<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok.train_from_iterator(CORPUS, trainers.BpeTrainer(vocab_size=300, special_tokens=specials,
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", eos_token="<|im_end|>", pad_token="<|endoftext|>")
    fast.chat_template = CHAT
    return fast


def tiny_model(vocab: int, seed: int = 0):
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    cfg = Qwen2Config(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=4, num_attention_heads=4,
                      num_key_value_heads=2, max_position_embeddings=512, tie_word_embeddings=False)
    return Qwen2ForCausalLM(cfg)


def tiny_student(lora_layers: int = 2, **cfg) -> LoRAStudent:
    tok = tiny_tokenizer()
    c = LoRAConfig(lora_layers=lora_layers, max_length=96, few_shot_length=256, batch=2, epochs=2, lr=5e-3, lora_r=4, lora_alpha=8,
                   lora_dropout=0.0, **cfg)
    return LoRAStudent(tiny_model(len(tok)), tokenizer=tok, config=c, description="Pick the effect.")


def items():
    return [Item(0, "Which happened because the storm hit the harbor?", ["The boats sank.", "The sun rose."], [1, 0], True),
            Item(1, "the river froze", ["The sun rose.", "we skated"], [0, 1], True),
            Item(2, "is it yes", ["yes", "no"], [1, 0], False)]


def test_option_logliks_are_real_and_the_cached_paths_agree():
    st = tiny_student(lora_layers=2)  # the bottom 2 layers are cached, the top 2 run
    full = tiny_student(lora_layers=0)  # the same weights (same seed), every layer every time
    its = items()
    a = st.option_logliks(its)
    b = full.option_logliks(its)
    assert [len(x) for x in a] == [2, 2, 2]
    assert all(math.isfinite(v) and v < 0 for x in a for v in x)
    assert flat(a) == pytest.approx(flat(b), abs=1e-4)
    assert st._bottom_cache  # the split path was taken
    # few-shot: the shared prefix's keys and values computed once give what one full pass gives
    shots = its[:1]
    fs = st.option_logliks(its[1:], examples=shots)
    assert st._prefix_cache is not None
    one_by_one = [full.option_logliks([it], examples=shots)[0] for it in its[1:]]
    assert flat(fs) == pytest.approx(flat(one_by_one), abs=1e-4)
    assert flat(fs) != pytest.approx(flat(a[1:]), abs=1e-3)  # the examples change the reading
    # and both are what one plain forward pass over prompt + option gives
    import torch

    for got, it, sh in ((a[0], its[0], []), (fs[1], its[2], shots)):
        p = full._prompt_ids(full.description, it.text, shots=[(e.text, e.options[e.correct]) for e in sh], budget=10_000)
        want = []
        for o in it.options:
            o_ids = full._answer_ids(o)
            with torch.no_grad():
                logits = full.base(input_ids=torch.tensor([p + o_ids])).logits[0].log_softmax(-1)
            want.append(sum(float(logits[len(p) - 1 + k, t]) for k, t in enumerate(o_ids)))
        assert got == pytest.approx(want, abs=1e-4)


def test_lora_training_moves_the_answer_and_reset_restores_the_base():
    st = tiny_student()
    its = items()
    before = st.option_logliks(its)
    groups = [Group(it.text, it.options, it.correct) for it in its] * 2
    st.cfg.lr = 2e-2
    info = st.train(groups, LoRAConfig(epochs=5))
    assert info["steps"] == 15 and info["trainable_params"] > 0
    assert math.isfinite(info["loss_first"]) and math.isfinite(info["loss_last"]) and info["loss_last"] < info["loss_first"]
    after = st.option_logliks(its)
    # trained towards the correct options: the margin of the correct answer grows on the rows it saw
    margin = lambda ll: sum(x[it.correct] - max(v for j, v in enumerate(x) if j != it.correct) for x, it in zip(ll, its))
    assert margin(after) > margin(before)
    choices, meta = st.answer(its)
    assert choices == [max(range(2), key=x.__getitem__) for x in after] and meta["logliks"] == [[round(v, 4) for v in x] for x in after]
    st.reset()
    assert flat(st.option_logliks(its)) == pytest.approx(flat(before), abs=1e-5)


def test_adapter_round_trip(tmp_path):
    st = tiny_student()
    its = items()
    st.train([Group(it.text, it.options, it.correct) for it in its], LoRAConfig(epochs=1))
    trained = st.option_logliks(its)
    st.save_adapter(tmp_path / "adapter")
    st.reset()
    st.load_adapter(tmp_path / "adapter")
    assert flat(st.option_logliks(its)) == pytest.approx(flat(trained), abs=1e-5)


def test_harness_on_a_fake_build_reads_its_cache_on_rerun(tmp_path, monkeypatch):
    """student_phase over a task's arms: few-shot (base + examples) and a trained arm per built set; a
    second run trains nothing and gives the same result; a changed setting is a new result."""
    from benchmarks.bigbench import samemodel
    from datatune.records import Row

    tasks = require_shared(SHARED / "bigbench" / "datatune", "this test reads a BIG-bench task file")
    task = str(tasks / "cause_and_effect" / "task.json")
    monkeypatch.setenv("DATATUNE_BENCH_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "runs"
    rows = {"datatune": [Row("The storm hit the harbor.\nA. The boats sank.\nB. The sun rose.", "A", source_dataset="x/copa", source_config="c",
                             source_split="train", source_row=i) for i in range(3)],
            "synthetic": [Row("The river froze.\nA. The sun rose.\nB. We skated.", "B", method="synthetic")] * 2}
    for arm in rows:  # a finished build, as build_phase leaves it
        (out / "cause_and_effect__two_sentences" / arm).mkdir(parents=True)
        (out / "cause_and_effect__two_sentences" / arm / "build.json").write_text(json.dumps({"build_s": 1.0, "llm": {"calls": 0}, "model": "fake"}))

    class Spec:
        output_kind, labels = "letter", []

    failed = out / "cause_and_effect__two_sentences" / "datatune_plus_synthetic"
    failed.mkdir(parents=True)  # a build that found no set (build_error.json): the student trained on nothing
    (failed / "build_error.json").write_text(json.dumps({"error": "ConfigError: no candidate dataset fits this task", "build_s": 2.0}))
    monkeypatch.setattr(samemodel, "load_set", lambda adir: (rows[adir.name], Spec(), {}, []))
    st = tiny_student()
    kw = dict(out=out, student=st, size=3, n_test=4, seed=0, arms=("few-shot", "datatune", "datatune+synthetic", "synthetic"), results_dir=tmp_path / "results",
              log=lambda m: None)
    res = samemodel.student_phase(task, **kw)
    arms = res["arms"]
    assert set(arms) == {"few-shot", "datatune", "datatune+synthetic", "synthetic"}
    for a in arms.values():
        sc = a["score"]
        assert sc["items"] == 4 and math.isfinite(sc["normalized_score"]) and math.isfinite(sc["normalized_se"])
        assert all(math.isfinite(v) for x in a["student"]["logliks"] for v in x)
    assert arms["few-shot"]["student"]["shots"] == 2 and arms["datatune"]["student"]["shots"] == 0
    assert arms["datatune"]["student"]["steps"] == 4 and arms["synthetic"]["student"]["steps"] == 2
    assert arms["datatune"]["provenance"]["sources"] == ["x/copa:c"]
    mix = arms["datatune+synthetic"]
    assert mix["rows"] == 0 and mix["student"]["steps"] == 0 and "no candidate" in mix["build_error"] and mix["student"]["adapter"]
    # trained on nothing = the base model zero-shot: the same reading as a fresh student's
    assert mix["student"]["logliks"] == [[round(v, 4) for v in x] for x in tiny_student().option_logliks(
        samemodel.prepare(task, out, n_test=4, seed=0)[1].eval_subset, description=samemodel.load_task(task).description)]
    assert (tmp_path / "cache" / "adapters").is_dir()
    saved = json.loads((tmp_path / "results" / "cause_and_effect__two_sentences" / "result.json").read_text())
    assert set(saved["arms"]) == set(arms)

    # the rerun is read from the cache: nothing is trained or read again
    def boom(*a, **k):
        raise AssertionError("the cached arm was recomputed")

    monkeypatch.setattr(st, "train", boom)
    monkeypatch.setattr(st, "answer", boom)
    again = samemodel.student_phase(task, **kw)
    assert again["arms"] == arms
    # another setting is another result: the cached file is not reused
    st.cfg.epochs = 1
    with pytest.raises(AssertionError, match="recomputed"):
        samemodel.student_phase(task, **kw)


@pytest.mark.slow  # the build's stages on the local catalog: 105 s on 2 busy cores; the tests above are the fast check
def test_build_phase_on_a_fake_llm_then_the_student(catalog, fake_llm, tmp_path, monkeypatch):
    """The whole path on real rows: build_phase builds the DataTune arm with a fake LLM (piqa rows from
    the local catalog), the tiny student trains on them, and a second build_phase reads the finished set."""
    from benchmarks.bigbench import samemodel
    from benchmarks.bigbench.arms import BENCHMARK, Env
    from datatune.embed import HashEmbedder
    from datatune.planner import Candidate
    from retrieval_index.filters import Filters

    from .test_bigbench import bigbench_fake

    tasks = require_shared(SHARED / "bigbench" / "datatune", "this test reads a BIG-bench task file")
    task = str(tasks / "cause_and_effect" / "task.json")
    monkeypatch.setenv("DATATUNE_BENCH_CACHE", str(tmp_path / "cache"))

    def retriever(query, k, exclude, **kw):
        f = Filters.make(exclude=exclude, benchmark=BENCHMARK)
        e = catalog.entry("ybisk/piqa")
        return [Candidate(e, e.config("plain_text"))] if f.allows_entry(e) else []

    llms = []
    env = Env(catalog, lambda: llms.append(1) or fake_llm(bigbench_fake())[0], retriever, HashEmbedder(), None, "fake-model")
    out = tmp_path / "runs"
    built = samemodel.build_phase(task, out=out, env_factory=lambda: env, size=6, n_test=4, seed=0, synthetic_share=0.5,
                                  arms=("datatune",), log=lambda m: None)
    assert built["datatune"]["rows"] == 6 and {k.rsplit(":", 1)[0] for k in built["datatune"]["provenance"]} == {"ybisk/piqa:plain_text"}
    n_llms = len(llms)
    again = samemodel.build_phase(task, out=out, env_factory=lambda: env, size=6, n_test=4, seed=0, synthetic_share=0.5,
                                  arms=("datatune",), log=lambda m: None)
    assert again == built and len(llms) == n_llms  # the finished set is read, nothing is rebuilt
    res = samemodel.student_phase(task, out=out, student=tiny_student(), size=6, n_test=4, seed=0, arms=("few-shot", "datatune"),
                                  results_dir=tmp_path / "results", embedder=HashEmbedder(), catalog=catalog, log=lambda m: None)
    dt = res["arms"]["datatune"]
    assert dt["student"]["training_groups"]["usable"] == 6 and dt["student"]["steps"] == 6
    assert dt["label_accuracy"]["accuracy"] == 1.0 and dt["provenance"]["sources"] == ["ybisk/piqa:plain_text"]
    assert math.isfinite(dt["score"]["normalized_score"]) and math.isfinite(res["arms"]["few-shot"]["score"]["normalized_score"])
