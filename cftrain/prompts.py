"""Record -> prompt (plain text or chat messages, optional abduct-act-predict scaffold), and gold rationales.

The same `PromptConfig` renders prompts for SFT, GRPO, PPO and evaluation, so a checkpoint is always
evaluated on the prompts it was trained on. Rationales are programmatic: they enumerate the hidden values
(abduction), name the changed input (intervention) and run the changed world forward (prediction),
all computed by executing the record's program, so no teacher model is needed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from cftrain.execution import load_program
from cftrain.problems.truth import latent_space, new_inputs, worlds

TEMPLATES = ("plain", "chat", "compact")
SCAFFOLDS = ("none", "abduct-act-predict")

SCAFFOLD_TEXT = (
    "Work in three steps before answering. Abduction: find the hidden values consistent with the observation. "
    "Intervention: state the changed input. Prediction: run the function with the changed input for each "
    "consistent hidden value. Then give the answer."
)


@dataclass
class PromptConfig:
    """How a record becomes a model input."""

    template: str = field(default="chat", metadata={"help": f"one of {', '.join(TEMPLATES)}"})
    system_prompt: str | None = field(default=None, metadata={"help": "system message for the chat template"})
    scaffold: str = field(default="none", metadata={"help": f"one of {', '.join(SCAFFOLDS)}"})

    def __post_init__(self) -> None:
        if self.template not in TEMPLATES:
            raise ValueError(f"prompt.template must be one of {', '.join(TEMPLATES)}; got {self.template!r}")
        if self.scaffold not in SCAFFOLDS:
            raise ValueError(f"prompt.scaffold must be one of {', '.join(SCAFFOLDS)}; got {self.scaffold!r}")


def prompt_text(record: Mapping, cfg: PromptConfig) -> str:
    text = compact_question(record) if cfg.template == "compact" else record["question"]
    return f"{text}\n\n{SCAFFOLD_TEXT}" if cfg.scaffold == "abduct-act-predict" else text


def compact_question(record: Mapping) -> str:
    """The task in a few tokens for tiny models: the program, then `r in 1..5; f(4,r)=13; what if x=6?`.

    Same information as `question` (hidden ranges, the observed run, the change, what is asked), a third of the
    tokens: a 1M-parameter model trains ~2x faster on it. Real models should get `plain` or `chat`.
    """
    program = load_program(record["program"], record["entry"])
    obs = record["observation"]
    hidden = record["revealed"] or {n: n for n in record["latent_domain"]}
    known = (
        " ".join(f"{n}={v}" for n, v in record["revealed"].items())
        if record["revealed"]
        else " ".join(f"{n} in {lo}..{hi}" for n, (lo, hi) in record["latent_domain"].items())
    )
    ran = f"{_call(program.entry, program.params, {**obs['inputs'], **hidden})}={obs['output']}"
    if record["variant"] == "abduction":
        ask = f"which {','.join(record['latent_domain'])}?"
    else:
        ask = "what if " + " ".join(f"{k}={v}" for k, v in record["intervention"].items()) + "?"
    return f"{record['program']}\n{known}; {ran}; {ask}"


def build_prompt(record: Mapping, cfg: PromptConfig) -> str | list[dict[str, str]]:
    """The model input: a string for `plain` and `compact` (TRL standard format), a list of messages for `chat`."""
    text = prompt_text(record, cfg)
    if cfg.template != "chat":
        # One newline: byte-level BPEs (SmolLM2's, GPT-2's) spell a trailing "\n\n" as one token alone but as two
        # before a word, so SFT would train on a context the prompt never has at inference; "\n" is one token either way
        return f"{text}\n"
    system = [{"role": "system", "content": cfg.system_prompt}] if cfg.system_prompt else []
    return [*system, {"role": "user", "content": text}]


def build_completion(text: str, cfg: PromptConfig) -> str | list[dict[str, str]]:
    """A target completion in the same format as `build_prompt` (for SFT prompt-completion datasets)."""
    return text if cfg.template != "chat" else [{"role": "assistant", "content": text}]


def _call(entry: str, params: tuple[str, ...], values: Mapping[str, int]) -> str:
    return f"{entry}({','.join(str(values[p]) for p in params)})"


def _fmt(values: list[int]) -> str:
    return "{" + ", ".join(str(v) for v in values) + "}"


def answer_line(answer: Iterable[int]) -> str:
    """The final line every target ends with: `<answer>{3, 11}</answer>`."""
    return f"<answer>{_fmt(sorted(set(answer)))}</answer>"


def rationale(record: Mapping) -> str:
    """A gold step-by-step solution ending in `<answer>{...}</answer>`, computed by executing the program.

    One line per step, short enough for a tiny model to imitate:
    `Abduction: f(4,1)=7!=9 f(4,2)=9==9 ... consistent r={2,5}` / `Intervention: x=7` /
    `Prediction: f(7,2)=11 f(7,5)=3` / `<answer>{3, 11}</answer>`.
    """
    program = load_program(record["program"], record["entry"])
    obs = record["observation"]
    changed = new_inputs(record)
    names = sorted(record["latent_domain"])
    consistent = worlds(record, program)
    lines = []
    if record["variant"] == "interventional":
        lines.append("Abduction: given " + " ".join(f"{n}={record['revealed'][n]}" for n in names))
    else:
        space = latent_space(record["latent_domain"])
        outputs = program.table(obs["inputs"], space)  # every run is shown, so every run must succeed
        # each run is compared with the observation where it is computed (`=6==6`, `=3!=6`): finding the consistent
        # values is then a local check and a copy, not a search back over the list (which a 1M model fails at)
        seen = obs["output"]
        runs = " ".join(
            f"{_call(program.entry, program.params, {**obs['inputs'], **lt})}={y}{'==' if y == seen else '!='}{seen}"
            for lt, y in zip(space, outputs)
        )
        if len(names) == 1:
            found = _fmt([latent[names[0]] for latent in consistent])
            lines.append(f"Abduction: {runs} consistent {names[0]}={found}")
        else:
            found = " ".join("(" + ",".join(str(latent[n]) for n in names) + ")" for latent in consistent)
            lines.append(f"Abduction: {runs} consistent ({','.join(names)})={found}")
    if record["variant"] == "abduction":
        lines.append(answer_line(record["answer"]))
        return "\n".join(lines)
    lines.append("Intervention: " + " ".join(f"{k}={v}" for k, v in record["intervention"].items()))
    preds = program.table(changed, consistent)
    calls = (_call(program.entry, program.params, {**changed, **latent}) for latent in consistent)
    lines.append("Prediction: " + " ".join(f"{c}={y}" for c, y in zip(calls, preds)))
    lines.append(answer_line(preds))
    return "\n".join(lines)
