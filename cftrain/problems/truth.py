"""What a record means, computed by executing its program: the one owner of a record's answer.

The sandbox (`cftrain.execution`) only runs programs. This module reads the record: the hidden assignments its
domain allows, the ones consistent with the observation (its *worlds*), and the answer of each variant. The record
gate (`records.check_record`), the rationales (`cftrain.prompts`), the trace detectors (`cftrain.traces`), the
step rewards' truth (`cftrain.steps`) and the data card call these; docs/records.md states the contract.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator, Mapping

from cftrain.execution import MAX_SECONDS, ExecutionError, Program, load_program

VARIANTS = ("counterfactual", "interventional", "abduction")


def latent_space(latent_domain: Mapping[str, list[int] | tuple[int, int]]) -> list[dict[str, int]]:
    """Every assignment of the hidden variables, in a fixed order."""
    names = sorted(latent_domain)
    ranges = [range(latent_domain[n][0], latent_domain[n][1] + 1) for n in names]
    return [dict(zip(names, values)) for values in itertools.product(*ranges)]


def runs(program: Program, inputs: Mapping[str, int], latents: list[dict[str, int]]) -> Iterator[tuple[dict, int]]:
    """(hidden assignment, output) for each assignment whose run succeeds: a run that fails is no possible world.
    ExecutionError when all of them take more than MAX_SECONDS of CPU time (each run is capped too, but a domain
    multiplies the runs)."""
    deadline = time.thread_time() + MAX_SECONDS
    for latent in latents:
        try:
            yield latent, program.table(inputs, [latent])[0]
        except ExecutionError:
            pass
        if time.thread_time() > deadline:
            raise ExecutionError("time (whole domain) limit exceeded")


def consistent_latents(
    program: Program, latent_domain: Mapping, inputs: Mapping[str, int], output: int
) -> list[dict[str, int]]:
    """L* = hidden assignments under which the program maps `inputs` to `output` (failing runs are inconsistent)."""
    return [latent for latent, y in runs(program, inputs, latent_space(latent_domain)) if y == output]


def outcomes(program: Program, inputs: Mapping[str, int], latents: list[dict[str, int]]) -> list[int]:
    """Sorted set of outputs for `inputs` under each hidden assignment. Raises ExecutionError if any fails."""
    return sorted(set(program.table(inputs, latents)))


def new_inputs(record: Mapping) -> dict[str, int]:
    """The observed inputs with the intervention applied."""
    return {**record["observation"]["inputs"], **record["intervention"]}


def worlds(record: Mapping, program: Program | None = None) -> list[dict[str, int]]:
    """The hidden assignments the answer ranges over: the revealed one for `interventional`, else those consistent
    with the observation."""
    if record["variant"] == "interventional":
        return [dict(record["revealed"])]
    program = program or load_program(record["program"], record["entry"])
    obs = record["observation"]
    return consistent_latents(program, record["latent_domain"], obs["inputs"], obs["output"])


def abduction_answer(latents: list[dict[str, int]]) -> list[int]:
    """The abduction answer: the values of the one hidden variable over `latents`."""
    return sorted({value for latent in latents for value in latent.values()})


def solve(record: Mapping) -> list[int]:
    """The gold answer of a record, recomputed from its program (the definition in docs/records.md)."""
    variant = record["variant"]
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {', '.join(VARIANTS)}; got {variant!r}")
    program = load_program(record["program"], record["entry"])
    latents = worlds(record, program)
    return abduction_answer(latents) if variant == "abduction" else outcomes(program, new_inputs(record), latents)


def answer_ignoring_observation(record: Mapping) -> list[int] | None:
    """The answer with the observation ignored (every hidden value kept), or None where that is not defined
    (`interventional` reveals the hidden values). An answer equal to it needs no abduction."""
    domain = record["latent_domain"]
    if record["variant"] == "abduction":
        return abduction_answer(latent_space(domain))
    if record["variant"] != "counterfactual":
        return None
    program = load_program(record["program"], record.get("entry", "f"))
    return sorted({y for _, y in runs(program, new_inputs(record), latent_space(domain))})
