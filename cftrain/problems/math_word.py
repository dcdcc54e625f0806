"""`math_word` (OOD: domain): counterfactual word problems rendered in English from a small causal program.

Each item is a story (prices with a hidden per-unit fee, packing into boxes of hidden capacity, money left
over at a hidden price, teams of hidden size, a machine's hidden pace, a trip at a hidden speed) told in one
of several forms, each form a different program such as `def f(trays, fee): return trays * (6 + fee)`. The
record carries that program and truth comes from executing it, exactly as for the code families; only the
question text is English. The story's nouns name the program's inputs, and forms vary the expression shape,
so stories give many program structures for the train/test split. Integer division and remainders
(boxes, leftovers, teams, pace, stamps, gift cards, markers, laps) make several hidden values fit one
observation: their answers are sets.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from cftrain.problems.base import Family, FamilyConfig, Scenario
from cftrain.problems.registry import register


@dataclass(frozen=True)
class _Form:
    """One way to tell a story: the program's return expression and the sentences that explain it.

    `expr` uses {q} for the visible input's name and {a}, {b}, {c} for constants drawn from `consts`;
    `observed` may use {n} (the observed input) and {out} (the observed result); `above` names a constant
    the visible input must exceed (so `q - b` stays a real count).
    """

    expr: str
    setup: str
    observed: str
    asked: str
    consts: tuple[tuple[str, int, int], ...] = ()
    above: str = ""


@dataclass(frozen=True)
class _Story:
    """The sentences shared by a story's forms. {lo}/{hi} bound the hidden value, {v} is its true value."""

    hidden: str  # the hidden quantity's name in the program
    low: int  # its smallest value; the domain is low .. low + hidden_width - 1
    param: str  # the visible input's name; "{q}" means the story's noun
    divisor: int  # the visible input goes up to quantity_max // divisor
    words: tuple[dict[str, str], ...]
    intro: str
    domain: str
    reveal: str
    change: str  # the counterfactual condition, with {n2}
    same: str
    abduct: str
    forms: tuple[_Form, ...]


_PAID = "She ordered {n} {q} and paid ${out} in total."
_PAY = "what would she have paid in total?"
_ONE_AT_A_TIME = "Lee fills one {box} at a time and starts a new {box} only when the current one is full."
_FULL_ONLY = "Lee fills as many {boxes} as possible; the {q} that cannot fill a whole {box} are left over."
_BOUGHT = "He started with ${n} of his own; the number of {things} he bought was {out}."
_LEFT = "He started with ${n} of his own and had ${out} left."
_STARTS = "It starts as soon as it is switched on."
_SIT_OUT = "The coach makes as many full {units} as possible; anyone left over sits out."

_STORIES: dict[str, _Story] = {
    "price": _Story(
        hidden="fee",
        low=1,
        param="{q}",
        divisor=8,
        words=(
            {"q": "trays", "sg": "tray"},
            {"q": "mugs", "sg": "mug"},
            {"q": "tickets", "sg": "ticket"},
            {"q": "lamps", "sg": "lamp"},
            {"q": "chairs", "sg": "chair"},
            {"q": "plants", "sg": "plant"},
        ),  # fmt: skip
        intro="Dana orders {q} online. Each {sg} costs ${a} plus a handling fee, charged once per {sg}.",
        domain="The handling fee is the same for every {sg}: a whole number of dollars from {lo} to {hi}.",
        reveal="The handling fee is ${v} per {sg}.",
        change="Had she ordered {n2} {q} instead",
        same="the same handling fee",
        abduct="What could the handling fee per {sg} be?",
        forms=(
            _Form("{q} * ({a} + fee)", "", _PAID, _PAY, (("a", 4, 15),)),
            _Form(
                "{q} * ({a} + fee) + {b}",
                "The order also has a flat ${b} delivery charge.",
                _PAID,
                _PAY,
                (("a", 4, 15), ("b", 3, 12)),
            ),
            _Form(
                "{q} * {a} + {q} * fee + {b}",
                "The order also has a flat ${b} delivery charge.",
                _PAID,
                _PAY,
                (("a", 4, 15), ("b", 3, 12)),
            ),
            _Form(
                "({q} - {b}) * ({a} + fee)",
                "A coupon makes {b} of the {q} free, handling fee included.",
                _PAID,
                _PAY,
                (("a", 4, 15), ("b", 1, 3)),
                above="b",
            ),
            _Form(
                "{q} * ({a} + fee) - {q} // {b} * {c}",
                "She gets ${c} off for each complete group of {b} {q} in the order.",
                _PAID,
                _PAY,
                (("a", 4, 15), ("b", 3, 6), ("c", 1, 4)),
            ),
            _Form(
                "{q} * ({a} + fee) // {b}",
                "The shop gives one loyalty stamp for every full ${b} of the order's total.",
                "She ordered {n} {q}; the number of stamps she earned was {out}.",
                "how many stamps would she have earned?",
                (("a", 4, 15), ("b", 10, 30)),
            ),
            _Form(
                "({q} * ({a} + fee) + {b} - 1) // {b}",
                "She pays with ${b} gift cards only, using as few as cover the total; no change is given.",
                "She ordered {n} {q}; the number of gift cards she used was {out}.",
                "how many gift cards would she have used?",
                (("a", 4, 15), ("b", 10, 30)),
            ),
        ),
    ),
    "boxes": _Story(
        hidden="capacity",
        low=12,
        param="{q}",
        divisor=1,
        words=(
            {"q": "cookies", "box": "box", "boxes": "boxes"},
            {"q": "eggs", "box": "carton", "boxes": "cartons"},
            {"q": "apples", "box": "crate", "boxes": "crates"},
            {"q": "bottles", "box": "case", "boxes": "cases"},
            {"q": "books", "box": "bin", "boxes": "bins"},
            {"q": "muffins", "box": "tin", "boxes": "tins"},
        ),  # fmt: skip
        intro="Lee packs {q} into {boxes}. Every {box} holds the same number of {q}.",
        domain="The number of {q} one {box} holds is a whole number from {lo} to {hi}.",
        reveal="One {box} holds {v} {q}.",
        change="Had Lee had {n2} {q} instead",
        same="the same {box} size",
        abduct="How many {q} could one {box} hold?",
        forms=(
            _Form(
                "({q} + capacity - 1) // capacity",
                _ONE_AT_A_TIME + " The last {box} may be only partly full.",
                "For {n} {q}, the number of {boxes} used was {out}.",
                "how many {boxes} would have been used?",
            ),
            _Form(
                "{q} // capacity",
                _FULL_ONLY + " Only full {boxes} are shipped.",
                "For {n} {q}, the number of full {boxes} shipped was {out}.",
                "how many full {boxes} would have been shipped?",
            ),
            _Form(
                "{q} % capacity",
                _FULL_ONLY,
                "For {n} {q}, the number of {q} left over was {out}.",
                "how many {q} would have been left over?",
            ),
            _Form(
                "{q} // capacity * {a}",
                _FULL_ONLY + " Lee is paid ${a} for each full {box}.",
                "For {n} {q}, Lee was paid ${out}.",
                "how much would Lee have been paid?",
                (("a", 2, 9),),
            ),
            _Form(
                "({q} + capacity - 1) // capacity * {a}",
                _ONE_AT_A_TIME + " The last {box} may be only partly full. Each {box} costs ${a}.",
                "For {n} {q}, the {boxes} cost ${out} in total.",
                "what would the {boxes} have cost in total?",
                (("a", 2, 9),),
            ),
            _Form(
                "({q} + capacity - 1) // capacity + {a}",
                _ONE_AT_A_TIME + " The last {box} may be only partly full. Lee also brings {a} spare empty {boxes}.",
                "For {n} {q}, Lee brought {out} {boxes} in all.",
                "how many {boxes} would Lee have brought in all?",
                (("a", 2, 5),),  # from 2: "{a} spare empty {boxes}" is plural
            ),
        ),
    ),
    "leftover": _Story(
        hidden="price",
        low=12,
        param="budget",
        divisor=1,
        words=(
            {"things": "pens", "thing": "pen"},
            {"things": "notebooks", "thing": "notebook"},
            {"things": "stickers", "thing": "sticker"},
            {"things": "markers", "thing": "marker"},
            {"things": "postcards", "thing": "postcard"},
            {"things": "snacks", "thing": "snack"},
        ),  # fmt: skip
        intro="Sam spends his money on {things}, buying as many as he can afford. Every {thing} has the same price.",
        domain="The price of one {thing} is a whole number of dollars from {lo} to {hi}.",
        reveal="One {thing} costs ${v}.",
        change="Had he started with ${n2} of his own instead",
        same="the same price",
        abduct="What could the price of one {thing} be?",
        forms=(
            _Form("budget % price", "", _LEFT, "how much money would he have had left?"),
            _Form("budget - budget // price * price", "", _LEFT, "how much money would he have had left?"),
            _Form(
                "budget // price + {a}",
                "He already owned {a} {things} before shopping.",
                "He started with ${n} of his own; afterwards he owned {out} {things} in all.",
                "how many {things} would he have owned in all?",
                (("a", 2, 12),),
            ),
            _Form("budget // price", "", _BOUGHT, "how many {things} would he have bought?"),
            _Form(
                "(budget + {a}) % price",
                "Before shopping, his aunt gives him ${a} more.",
                _LEFT,
                "how much money would he have had left?",
                (("a", 2, 9),),
            ),
            _Form(
                "(budget + {a}) // price",
                "Before shopping, his aunt gives him ${a} more.",
                _BOUGHT,
                "how many {things} would he have bought?",
                (("a", 2, 9),),
            ),
        ),
    ),
    "groups": _Story(
        hidden="size",
        low=8,
        param="{q}",
        divisor=1,
        words=(
            {"q": "players", "unit": "team", "units": "teams"},
            {"q": "students", "unit": "group", "units": "groups"},
            {"q": "scouts", "unit": "patrol", "units": "patrols"},
            {"q": "rowers", "unit": "crew", "units": "crews"},
            {"q": "volunteers", "unit": "squad", "units": "squads"},
            {"q": "campers", "unit": "cabin", "units": "cabins"},
        ),  # fmt: skip
        intro="A coach splits {q} into {units}; a full {unit} always has the same number of {q}.",
        domain="The number of {q} in a full {unit} is a whole number from {lo} to {hi}.",
        reveal="A full {unit} has {v} {q}.",
        change="Had there been {n2} {q} instead",
        same="the same {unit} size",
        abduct="How many {q} could be in a full {unit}?",
        forms=(
            _Form(
                "{q} // size",
                _SIT_OUT,
                "With {n} {q}, the number of {units} was {out}.",
                "how many {units} would there have been?",
            ),
            _Form(
                "{q} % size",
                _SIT_OUT,
                "With {n} {q}, the number of {q} who sat out was {out}.",
                "how many {q} would have sat out?",
            ),
            _Form(
                "{q} // size * size",
                _SIT_OUT,
                "With {n} {q}, the number of {q} who played in a {unit} was {out}.",
                "how many {q} would have played in a {unit}?",
            ),
            _Form(
                "{q} // size * {a}",
                _SIT_OUT + " Each {unit} is given {a} water bottles.",
                "With {n} {q}, the number of water bottles handed out was {out}.",
                "how many water bottles would have been handed out?",
                (("a", 2, 6),),
            ),
            _Form(
                "({q} + size - 1) // size",
                "The coach fills one {unit} at a time; the last {unit} may be smaller, and no one sits out.",
                "With {n} {q}, the number of {units} was {out}.",
                "how many {units} would there have been?",
            ),
        ),
    ),
    "rate": _Story(
        hidden="pace",
        low=2,
        param="minutes",
        divisor=1,
        words=(
            {"things": "bottles", "thing": "bottle"},
            {"things": "toys", "thing": "toy"},
            {"things": "loaves", "thing": "loaf"},
            {"things": "candles", "thing": "candle"},
            {"things": "bricks", "thing": "brick"},
            {"things": "mugs", "thing": "mug"},
        ),  # fmt: skip
        intro="A machine makes {things} one at a time at a steady pace.",
        domain="Each {thing} takes the same whole number of minutes, from {lo} to {hi}.",
        reveal="Each {thing} takes {v} minutes.",
        change="Had the machine been switched on for {n2} minutes instead",
        same="the same pace",
        abduct="How many minutes could each {thing} take?",
        forms=(
            _Form(
                "minutes // pace",
                _STARTS,
                "After being switched on for {n} minutes, the number of {things} it had finished was {out}.",
                "how many {things} would it have finished?",
            ),
            _Form(
                "minutes // pace + {a}",
                _STARTS + " There were already {a} {things} on the shelf, and each finished {thing} joins them.",
                "After it was switched on for {n} minutes, the shelf held {out} {things}.",
                "how many {things} would the shelf have held?",
                (("a", 2, 12),),
            ),
            _Form(
                "minutes // pace * {a}",
                _STARTS + " Each finished {thing} sells for ${a}.",
                "After it was switched on for {n} minutes, the finished {things} sold for ${out} in total.",
                "what would the finished {things} have sold for in total?",
                (("a", 2, 9),),
            ),
            _Form(
                "(minutes - {a}) // pace",
                "After being switched on it first needs {a} minutes to warm up, and only then starts making {things}.",
                "After being switched on for {n} minutes, the number of {things} it had finished was {out}.",
                "how many {things} would it have finished?",
                (("a", 2, 8),),
                above="a",
            ),
        ),
    ),
    "travel": _Story(
        hidden="speed",
        low=10,
        param="hours",
        divisor=16,
        words=({"who": "cyclist"}, {"who": "rower"}, {"who": "skater"}, {"who": "rider"}),
        intro="A {who} keeps a steady usual speed.",
        domain="The {who}'s usual speed is a whole number of km per hour from {lo} to {hi}.",
        reveal="The {who}'s usual speed is {v} km per hour.",
        change="Had the {who} travelled for {n2} hours instead",
        same="the same usual speed",
        abduct="What could the {who}'s usual speed be, in km per hour?",
        forms=(
            _Form(
                "hours * speed",
                "",
                "In {n} hours the {who} covered {out} km.",
                "how many km would the {who} have covered?",
            ),
            _Form(
                "hours * speed + {a}",
                "Before the timer started, the {who} had already covered {a} km.",
                "After {n} hours on the timer, the {who} had covered {out} km in all.",
                "how many km in all would the {who} have covered?",
                (("a", 3, 20),),
            ),
            _Form(
                "hours * (speed + {a})",
                "Today a tailwind adds {a} km per hour to that speed.",
                "With the tailwind, in {n} hours the {who} covered {out} km.",
                "how many km would the {who} have covered with the tailwind?",
                (("a", 1, 5),),
            ),
            _Form(
                "hours * speed // {a}",
                "A marker stands every {a} km along the route, the first one {a} km from the start.",
                "In {n} hours the number of markers the {who} reached was {out}.",
                "how many markers would the {who} have reached?",
                (("a", 7, 25),),
            ),
            _Form(
                "hours * speed % {a}",
                "The route is a loop of {a} km that starts and ends at the start line.",
                "After {n} hours the {who} was {out} km past the start line on the current lap.",
                "how many km past the start line on the current lap would the {who} have been?",
                (("a", 20, 60),),
            ),
        ),
    ),
}
STORIES = tuple(_STORIES)
_FORMAT = "Give the set of all possible values as <answer>{...}</answer>."


@dataclass
class MathWordConfig(FamilyConfig):
    stories: str = field(default=",".join(STORIES), metadata={"help": f"comma-separated stories from {STORIES}"})
    hidden_width: int = field(default=6, metadata={"help": "how many values the hidden quantity can take"})
    quantity_min: int = field(default=2, metadata={"help": "smallest visible count (items, dollars, minutes)"})
    quantity_max: int = field(
        default=600,
        metadata={"help": "largest visible count; ordered items use an eighth of it, travel hours a sixteenth"},
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        unknown = [s for s in self.story_names() if s not in _STORIES]
        if unknown or not self.story_names():
            raise ValueError(f"stories must be a comma-separated subset of {', '.join(STORIES)}; got {self.stories!r}")
        if self.hidden_width < 2:
            raise ValueError(f"hidden_width must be >= 2 so the hidden quantity is unknown; got {self.hidden_width}")
        self.check_range("quantity", self.quantity_min, self.quantity_max, minimum=2)

    def story_names(self) -> list[str]:
        return [s.strip() for s in self.stories.split(",") if s.strip()]


class MathWord(Family):
    name = "math_word"
    config_cls = MathWordConfig
    description = "OOD domain: English word problems (prices, boxes, leftovers, teams, rates) from a small program"

    def sample(self, rng: random.Random, cfg: MathWordConfig) -> Scenario:
        story_name = rng.choice(cfg.story_names())
        story = _STORIES[story_name]
        form_index = rng.randrange(len(story.forms))
        words_index = rng.randrange(len(story.words))
        form, words = story.forms[form_index], story.words[words_index]
        consts = {name: rng.randint(low, high) for name, low, high in form.consts}
        param = story.param.format(**words)
        low = max(cfg.quantity_min, consts[form.above] + 1 if form.above else 0)
        high = max(low + 1, cfg.quantity_max // story.divisor)
        lo = story.low
        hi = lo + cfg.hidden_width - 1

        def draw() -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
            n_obs, n_new = rng.sample(range(low, high + 1), 2)
            return {param: n_obs}, {story.hidden: rng.randint(lo, hi)}, {param: n_new}

        inputs, truth, intervention = draw()
        return Scenario(
            program=f"def f({param}, {story.hidden}):\n    return {form.expr.format(q=param, **consts)}",
            latent_domain={story.hidden: (lo, hi)},
            inputs=inputs,
            truth=truth,
            intervention=intervention,
            redraw=draw,
            meta={"story": story_name, "form": form_index, "words": words_index, "consts": consts},
        )

    def render(self, scenario: Scenario, variant: str, output: int) -> str:
        story = _STORIES[scenario.meta["story"]]
        form = story.forms[scenario.meta["form"]]
        ((hidden, (lo, hi)),) = scenario.latent_domain.items()
        ((param, n),) = scenario.inputs.items()
        values = {
            **story.words[scenario.meta["words"]],
            **scenario.meta["consts"],
            "n": n,
            "n2": scenario.intervention[param],
            "out": output,
            "lo": lo,
            "hi": hi,
            "v": scenario.truth[hidden],
        }
        known = story.reveal if variant == "interventional" else story.domain
        if variant == "counterfactual":
            question = f"{story.change}, with {story.same}, {form.asked}"
        elif variant == "interventional":
            question = f"{story.change}, {form.asked}"
        else:
            question = story.abduct
        sentences = [story.intro, form.setup, known, form.observed, question]
        return " ".join(s.format(**values) for s in sentences if s) + " " + _FORMAT


register(MathWord())
