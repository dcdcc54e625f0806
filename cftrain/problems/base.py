"""Records and the generator base shared by every problem family.

A family samples a `Scenario` (program source, hidden domain, observed inputs, true hidden values,
intervention) from a local `random.Random`; this module checks it by execution, applies the quality
filters, and renders the three variants as records. An item is a pure function of (config, seed, index).
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import json
import multiprocessing
import random
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from cftrain.execution import ExecutionError, UnsafeProgram, load_program
from cftrain.problems.truth import VARIANTS, abduction_answer, latent_space

GENERATOR_VERSION = "3"
SPLITS = ("any", "train", "test")
# One program structure in five is held out for test files: train and test never share a structure.
_TEST_BUCKETS = 5
# Observation draws a family offers per sampled program (Scenario.more): one compile, several chances to pass.
DRAWS = 8


def check_probability(name: str, value: float, where: str = "") -> None:
    """Raise ValueError unless 0 <= value <= 1; `where` (e.g. " for family if_else") follows the name."""
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1]{where}; got {value}")


def structure_split(structure: str) -> str:
    return "test" if int(structure, 16) % _TEST_BUCKETS == 0 else "train"


@dataclass
class FamilyConfig:
    """Knobs every family has. Families subclass this and add their own."""

    min_answer_size: int = field(default=1, metadata={"help": "smallest counterfactual answer set allowed"})
    max_answer_size: int = field(default=4, metadata={"help": "largest counterfactual answer set allowed"})
    require_abduction: bool = field(
        default=True,
        metadata={"help": "reject items whose answer is the same when the observation is ignored"},
    )
    split: str = field(
        default="any",
        metadata={"help": "program structures allowed: train (4/5 of them), test (the other 1/5) or any"},
    )
    max_attempts: int = field(default=500, metadata={"help": "samples tried per item before giving up"})
    set_valued: float = field(
        default=0.5,
        metadata={
            "help": "share of items whose counterfactual answer must have 2+ values (drawn per item); "
            "0 sets no requirement (the natural mix)"
        },
    )

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}; got {self.split!r}")
        if not 1 <= self.min_answer_size <= self.max_answer_size:
            raise ValueError(
                f"need 1 <= min_answer_size <= max_answer_size; got {self.min_answer_size}, {self.max_answer_size}"
            )
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1; got {self.max_attempts}")
        check_probability("set_valued", self.set_valued)
        if self.set_valued > 0 and self.max_answer_size < 2:
            raise ValueError(
                f"set_valued > 0 needs max_answer_size >= 2; got {self.max_answer_size} (or set_valued=0)"
            )

    def check_range(self, name: str, low: int, high: int, minimum: int | None = None) -> None:
        """Raise ValueError naming `name` unless low <= high (and low >= minimum)."""
        if low > high or (minimum is not None and low < minimum):
            floor = f" and {name}_min >= {minimum}" if minimum is not None else ""
            raise ValueError(f"need {name}_min <= {name}_max{floor}; got {low}, {high}")


@dataclass(frozen=True)
class Scenario:
    """One sampled world: the program, the hidden variables' domain and true values, one observed run, a change."""

    program: str
    latent_domain: dict[str, tuple[int, int]]
    inputs: dict[str, int]
    truth: dict[str, int]
    intervention: dict[str, int]
    meta: dict[str, Any] = field(default_factory=dict)
    entry: str = "f"
    # False where the family builds only live branches itself (if_else): skips the dead-branch probe's compile.
    check_branches: bool = True
    # Draws another (inputs, truth, intervention) for the same program: check_scenario tries up to DRAWS of
    # them, in order, when one fails a filter, so a program is compiled once for several chances to pass.
    redraw: Callable[[], tuple[dict[str, int], dict[str, int], dict[str, int]]] | None = None
    # The entry's parameters in order, where the family knows them (else the program is loaded to read them).
    params: tuple[str, ...] = ()


class Family:
    """Base of every family: subclasses set `name`, `config_cls`, and implement `sample` and `render`."""

    name: str
    config_cls: type[FamilyConfig] = FamilyConfig
    description: str = ""

    @property
    def variants(self) -> tuple[str, ...]:
        # Abduction asks for "the set of consistent r": defined only for one hidden variable.
        return VARIANTS if self.n_latents == 1 else VARIANTS[:2]

    n_latents: int = 1

    def sample(self, rng: random.Random, cfg: FamilyConfig) -> Scenario:
        raise NotImplementedError

    def render(self, scenario: Scenario, variant: str, output: int) -> str:
        """The task text for one variant; `output` is the observed result of the factual run."""
        raise NotImplementedError

    def prepare(self, cfg: FamilyConfig) -> None:
        """Build what every item of `cfg` shares (if_else: its pool of structures) before workers start."""

    def attempt(self, rng: random.Random, cfg: FamilyConfig, want_set: bool) -> Checked | str:
        """One try at an item: a checked item, or the reason the try was rejected. A family may draw and check
        faster than `sample` + `check_scenario` (if_else does); it must keep their guarantees."""
        return check_scenario(self.sample(rng, cfg), cfg, want_set)

    def make_config(self, **overrides: Any) -> FamilyConfig:
        """Build this family's config from keyword overrides (strings are parsed by the field's type)."""
        fields = {f.name: f for f in dataclasses.fields(self.config_cls)}
        kwargs = {}
        for key, value in overrides.items():
            if key not in fields:
                raise ValueError(f"unknown knob {key!r} for family {self.name}; knobs: {', '.join(fields)}")
            kwargs[key] = _parse_value(key, value, fields[key].default)
        return self.config_cls(**kwargs)

    def knobs(self) -> list[tuple[str, Any, str]]:
        return [(f.name, f.default, f.metadata.get("help", "")) for f in dataclasses.fields(self.config_cls)]


def _parse_value(key: str, value: Any, default: Any) -> Any:
    if not isinstance(value, str):
        return value
    kind = type(default)
    try:
        if kind is bool:
            if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            return value.lower() in ("true", "1", "yes")
        return kind(value)
    except ValueError:
        raise ValueError(f"knob {key!r} needs a {kind.__name__}; got {value!r}") from None


def config_key(cfg: FamilyConfig) -> str:
    """Hash of the knobs set away from their defaults (so adding a knob later keeps every existing item and id).

    max_attempts only bounds the search, so it is left out.
    """
    defaults = {f.name: f.default for f in dataclasses.fields(cfg)}
    knobs = {k: v for k, v in dataclasses.asdict(cfg).items() if k != "max_attempts" and v != defaults[k]}
    return hashlib.sha1(json.dumps(knobs, sort_keys=True).encode()).hexdigest()[:8]


@dataclass(frozen=True)
class Checked:
    """A scenario that passed every filter, with its answers computed by execution."""

    scenario: Scenario
    output: int
    consistent: list[dict[str, int]]
    counterfactual: list[int]
    interventional: list[int]
    structure: str
    knobs: dict[str, Any] = field(default_factory=dict)


def knob_values(cfg: FamilyConfig) -> dict[str, Any]:
    """Every knob's value, defaults included, so a record says which ranges it was drawn from."""
    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}


def check_scenario(scenario: Scenario, cfg: FamilyConfig, want_set: bool = False) -> Checked | str:
    """Run the generator's filters (docs/records.md) on one scenario. Returns the checked item or the reason it was
    rejected.

    `want_set` asks for a counterfactual answer of 2+ values (the item's draw of `set_valued`). Beyond the
    answer checks, three filters remove shortcuts: an output that ignores the intervened input for every hidden
    value, an intervention that changes no consistent world's output (the answer would be the observed output),
    or the true world's (the interventional answer would be), and an `if` whose condition or bodies do not
    matter (`dead_branch`).
    """
    try:
        program = load_program(scenario.program, scenario.entry)
    except UnsafeProgram as e:  # a generator bug, never model output: fail loudly
        raise RuntimeError(f"generator emitted an unsafe program: {e}\n{scenario.program}") from None
    # The structure hash is computed only where needed: here for a split, else for the item that passes.
    if cfg.split != "any" and structure_split(program.structure) != cfg.split:
        return "split"
    space = latent_space(scenario.latent_domain)
    tables: dict[tuple, list[int] | None] = {}

    def table(inputs: dict[str, int]) -> list[int] | None:
        key = tuple(sorted(inputs.items()))
        if key not in tables:
            try:
                tables[key] = program.table(inputs, space)
            except ExecutionError:
                tables[key] = None
        return tables[key]

    first = ""
    draw = scenario.inputs, scenario.truth, scenario.intervention
    for n in range(DRAWS if scenario.redraw else 1):
        if n:
            draw = scenario.redraw()
        result = _check_draw(scenario, *draw, cfg, want_set, space, table)
        if not isinstance(result, str):
            if n:
                scenario = dataclasses.replace(scenario, inputs=draw[0], truth=draw[1], intervention=draw[2])
            return Checked(scenario, *result, program.structure, knob_values(cfg))
        first = first or result
    return first


def _check_draw(
    s: Scenario,
    inputs: dict[str, int],
    truth_values: dict[str, int],
    intervention: dict[str, int],
    cfg: FamilyConfig,
    want_set: bool,
    space: list[dict[str, int]],
    table: Callable,
) -> tuple[int, list[dict[str, int]], list[int], list[int]] | str:
    """The filters for one draw of `s`'s program: (output, consistent, counterfactual, interventional) or a reason."""
    new_inputs = {**inputs, **intervention}
    if new_inputs == inputs:
        return "no-change"
    # Every hidden value must run cleanly on both inputs, so a solver that enumerates never meets an error.
    observed, intervened = table(inputs), table(new_inputs)
    if observed is None or intervened is None:
        return "error"
    result = check_rows(observed, intervened, space.index(truth_values), cfg, want_set)
    if isinstance(result, str):
        return result
    if s.check_branches and dead_branch(s.program, s.entry, [inputs, new_inputs], space, [observed, intervened]):
        return "dead-branch"
    output, consistent, counterfactual, interventional = result
    return output, [space[i] for i in consistent], counterfactual, interventional


def check_rows(
    observed: list[int], intervened: list[int], truth: int, cfg: FamilyConfig, want_set: bool
) -> tuple[int, list[int], list[int], list[int]] | str:
    """The answer filters on a program's outputs over the hidden domain, before (`observed`) and after
    (`intervened`) the intervention, with the true world at index `truth`: (output, indices of the consistent
    worlds, counterfactual answer, interventional answer), or the reason the draw is rejected."""
    output = observed[truth]
    consistent = [i for i, y in enumerate(observed) if y == output]
    if len(consistent) == len(observed):
        return "uninformative"
    if intervened == observed:
        return "input-ignored"
    counterfactual = sorted({intervened[i] for i in consistent})
    if counterfactual == [output]:
        return "no-effect"
    if intervened[truth] == output:
        return "no-effect-truth"
    if not cfg.min_answer_size <= len(counterfactual) <= cfg.max_answer_size:
        return "answer-size"
    if want_set and len(counterfactual) < 2:
        return "not-set-valued"
    if cfg.require_abduction and counterfactual == sorted(set(intervened)):
        return "abduction-unneeded"
    return output, consistent, counterfactual, [intervened[truth]]


_PROBE_IF, _PROBE_TO = "probe_if", "probe_to"


def dead_branch(
    source: str,
    entry: str,
    inputs: list[dict[str, int]],
    space: list[dict[str, int]],
    rows: list[list[int]] | None = None,
) -> bool:
    """True if some `if` can be replaced by one of its bodies without changing any output on `inputs` x `space`:
    a condition constant where it is reached, or two bodies that compute the same thing there.

    One probe program, compiled once: every test `t` becomes `probe_to if probe_if == k else t`, so each `if`
    can be forced either way by arguments. A forced run that fails counts as a change. `rows` are the program's
    outputs on each of `inputs` over `space`, when already known.

    >>> dead_branch("def f(x, r):\\n    if x < 3:\\n        y = r + x\\n    else:\\n        y = x + r\\n    return y",
    ...             "f", [{"x": 1}, {"x": 5}], [{"r": 1}, {"r": 2}])
    True
    >>> dead_branch("def f(x, r):\\n    if r < 2:\\n        return x\\n    return r", "f", [{"x": 0}], [{"r": 1}, {"r": 2}])
    False
    """
    if "if " not in source:
        return False
    tree = ast.parse(source)
    fn = tree.body[0]
    ifs, names = [], {a.arg for a in fn.args.args}
    for node in ast.walk(fn):
        if isinstance(node, ast.If):
            ifs.append(node)
        elif isinstance(node, ast.Name):
            names.add(node.id)
    if not ifs or {_PROBE_IF, _PROBE_TO} & names:
        return False
    for k, node in enumerate(ifs, 1):
        forced = ast.Compare(ast.Name(_PROBE_IF, ast.Load()), [ast.Eq()], [ast.Constant(k)])
        node.test = ast.IfExp(forced, ast.Name(_PROBE_TO, ast.Load()), node.test)
    fn.args.args += [ast.arg(_PROBE_IF), ast.arg(_PROBE_TO)]
    probe = load_program(ast.unparse(tree), entry)  # loaded from its text, checked like any program

    def changes(k: int, to: int) -> bool:
        # Stops at the first changed output: a live branch usually shows within a few runs.
        for x, row in zip(inputs, rows):
            for latent, y in zip(space, row):
                try:
                    if probe.table({**x, _PROBE_IF: k, _PROBE_TO: to}, [latent])[0] != y:
                        return True
                except ExecutionError:
                    return True
        return False

    if rows is None:
        rows = [probe.table({**x, _PROBE_IF: 0, _PROBE_TO: 0}, space) for x in inputs]
    return not all(changes(k, to) for k in range(1, len(ifs) + 1) for to in (0, 1))


def generate_item(family: Family, cfg: FamilyConfig, seed: int, index: int, key: str | None = None) -> Checked:
    """The index-th item of (family, config, seed): sample until every filter passes, or raise."""
    rng = random.Random(f"{family.name}|{key or config_key(cfg)}|{seed}|{index}")
    # Decided once per item, so the share holds whatever each attempt's odds; set_valued=0 draws nothing.
    want_set = cfg.set_valued > 0 and rng.random() < cfg.set_valued
    reasons: dict[str, int] = {}
    for _ in range(cfg.max_attempts):
        result = family.attempt(rng, cfg, want_set)
        if isinstance(result, Checked):
            return result
        reasons[result] = reasons.get(result, 0) + 1
    worst = max(reasons, key=reasons.get)
    raise ValueError(
        f"family {family.name}: no item passed the filters in max_attempts={cfg.max_attempts} "
        f"(rejections: {reasons}); relax {_RELAX[worst]}"
    )


_RELAX = {
    "split": "split (use split=any) or add structure knobs",
    "no-change": "the intervention knobs",
    "error": "the value ranges",
    "uninformative": "the hidden variable's range knobs (widen them) or the input range knobs",
    "input-ignored": "the program-shape knobs (the output ignores the intervened input for every hidden value)",
    "no-effect": "the input range knobs (widen them: the intervention changes no consistent world's output)",
    "no-effect-truth": "the input range knobs (widen them: the intervention leaves the true world's output as is)",
    "answer-size": "min_answer_size/max_answer_size",
    "not-set-valued": "set_valued (lower it, e.g. set_valued=0) or max_answer_size (raise it)",
    "abduction-unneeded": "require_abduction (set require_abduction=false)",
    "dead-branch": "the program-shape knobs (an if whose condition or bodies do not matter was drawn every time)",
}


def to_record(family: Family, key: str, item: Checked, variant: str, seed: int, index: int) -> dict:
    """Render one variant of a checked item as a record (the schema of docs/records.md); `key` is config_key(cfg)."""
    s = item.scenario
    if variant == "abduction":
        answer = abduction_answer(item.consistent)
    else:
        answer = item.counterfactual if variant == "counterfactual" else item.interventional
    return {
        "id": f"{family.name}/{variant}/{key}/{seed}/{index}",
        "family": family.name,
        "variant": variant,
        "program": s.program,
        "entry": s.entry,
        "latent_domain": {k: list(v) for k, v in s.latent_domain.items()},
        "observation": {"inputs": dict(s.inputs), "output": item.output},
        "intervention": dict(s.intervention),
        "revealed": dict(s.truth) if variant == "interventional" else {},
        "answer": answer,
        "question": family.render(s, variant, item.output),
        "meta": {
            "seed": seed,
            "index": index,
            "structure": item.structure,
            "split": structure_split(item.structure),
            "config": key,
            "generator_version": GENERATOR_VERSION,
            "n_consistent": len(item.consistent),
            "knobs": dict(item.knobs),
            **s.meta,
        },
    }


def generate(
    family: Family,
    variant: str,
    n: int,
    seed: int = 0,
    cfg: FamilyConfig | None = None,
    start: int = 0,
    workers: int = 1,
) -> Iterator[dict]:
    """Yield records for items start..start+n-1; `variant="all"` yields every variant of each item in turn.

    `workers` > 1 computes chunks of items in that many processes; the records and their order are the same.
    """
    cfg = cfg or family.config_cls()
    allowed = family.variants
    variants = allowed if variant == "all" else (variant,)
    for v in variants:
        if v not in allowed:
            raise ValueError(f"variant {v!r} is not offered by {family.name}; variants: {', '.join(allowed)}, all")
    if n <= 0:
        raise ValueError(f"n must be > 0; got {n}")
    if type(workers) is not int or workers < 1:
        raise ValueError(f"workers must be an int >= 1; got {workers!r}")
    key = config_key(cfg)
    if workers == 1:
        for index in range(start, start + n):
            yield from _records(family, cfg, key, variants, seed, index, index + 1)
        return
    chunks = [
        (family, cfg, key, variants, seed, lo, min(lo + _CHUNK, start + n)) for lo in range(start, start + n, _CHUNK)
    ]
    family.prepare(cfg)  # built once here, a forked worker inherits it
    methods = multiprocessing.get_all_start_methods()
    # fork starts in milliseconds; the workers only run this module's pure functions, and start no threads.
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    # Leaving the block (done, an error, SIGTERM unwinding the CLI, KeyboardInterrupt, the consumer stopping
    # early) terminates the workers: none outlives the call.
    with context.Pool(min(workers, len(chunks)), initializer=_worker_signals) as pool:
        for records in pool.imap(_chunk, chunks):  # imap keeps the chunks' order
            yield from records


_CHUNK = 32  # items per task: large enough to amortise the pickling, small enough to balance the workers


def _records(family: Family, cfg: FamilyConfig, key: str, variants, seed: int, lo: int, hi: int) -> list[dict]:
    records = []
    for index in range(lo, hi):
        item = generate_item(family, cfg, seed, index, key)
        records += [to_record(family, key, item, v, seed, index) for v in variants]
    return records


def _chunk(task: tuple) -> list[dict]:
    return _records(*task)


def _worker_signals() -> None:
    # The parent handles Ctrl-C and SIGTERM and then terminates the pool; a forked worker must not inherit the
    # CLI's SIGTERM handler (it would unwind with a traceback) nor react to the terminal's SIGINT itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _call(scenario: Scenario, inputs: dict[str, int], latents: dict[str, int] | None = None) -> str:
    """`f(4, r)` for a hidden call, `f(4, 3)` when the hidden values are given, in the function's order."""
    values = {**inputs, **(latents or {name: name for name in scenario.latent_domain})}
    params = scenario.params or load_program(scenario.program, scenario.entry).params
    return f"{scenario.entry}({', '.join(str(values[p]) for p in params)})"


def render_code(scenario: Scenario, variant: str, output: int) -> str:
    """Task text shared by the code families: the program, its hidden variables, one observed run, a question."""
    names = list(scenario.latent_domain)
    ranges = ", ".join(f"{n} is an integer from {lo} to {hi}" for n, (lo, hi) in scenario.latent_domain.items())
    subject = f"{names[0]} is" if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]} are"
    new_inputs = {**scenario.inputs, **scenario.intervention}
    changed = " and ".join(f"{k} been {v}" for k, v in scenario.intervention.items())
    fmt = "Give the set of all possible values as <answer>{...}</answer>."
    code = f"```python\n{scenario.program}\n```"
    if variant == "interventional":
        known = ", ".join(f"{n} = {v}" for n, v in scenario.truth.items())
        head = f"In the Python function below, {ranges}. Here {known}."
        ask = (
            f"We ran {_call(scenario, scenario.inputs, scenario.truth)} and it returned {output}. "
            f"What would {_call(scenario, new_inputs, scenario.truth)} return? {fmt}"
        )
    else:
        head = f"In the Python function below, {subject} hidden ({ranges}), fixed but unknown."
        observed = f"We ran {_call(scenario, scenario.inputs)} and it returned {output}."
        if variant == "counterfactual":
            same = "the same hidden value" if len(names) == 1 else "the same hidden values"
            ask = f"{observed} Had {changed} instead, with {same}, what would {scenario.entry} have returned? {fmt}"
        else:
            ask = (
                f"{observed} Which values of {names[0]} are consistent with this observation? "
                "Give the set of all of them as <answer>{...}</answer>."
            )
    return f"{head}\n\n{code}\n\n{ask}"
