"""Families -> records -> files and `datasets.Dataset`: mixtures with manifests, and the frozen eval suites.

Frozen suites live in `data/suites/<family>.jsonl` (every variant, generated with `split=test` for the
training family) with sha256 checksums in `data/MANIFEST.json`; `make data` regenerates them byte for byte.
`resolve_suite` is the one reading of a suite spec (`id`, `ood`, `all`, a family, a `.jsonl` path, an external
benchmark), for `load_suite` (the training-time hook, the data card) and `cftrain eval` alike.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from glob import escape as glob_escape
from pathlib import Path
from typing import Any

from cftrain.datacard import data_card, record_structure, structures
from cftrain.external import parse_external
from cftrain.problems import VARIANTS, generate, get_family
from cftrain.problems.base import GENERATOR_VERSION, check_probability
from cftrain.problems.records import json_lines, read_records
from cftrain.prompts import PromptConfig, answer_line, build_completion, build_prompt, rationale
from cftrain.steps import step_truth

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
ID_FAMILIES = ("if_else",)
OOD_FAMILIES = ("if_else_long", "while", "multi_r", "math_word")
SUITE_ITEMS = 200
SUITE_SEED = 1234


@dataclass
class Source:
    """One slice of a mixture: `n` items of a family (each item gives one record per variant)."""

    family: str = field(metadata={"help": "a registered family (see `cftrain families`)"})
    n: int = field(metadata={"help": "number of items"})
    variants: list[str] | str = field(default="all", metadata={"help": "list of variants, or 'all'"})
    seed: int = field(default=0, metadata={"help": "generation seed"})
    knobs: dict[str, Any] = field(default_factory=dict, metadata={"help": "family config overrides"})
    answer_only: float = field(
        default=0.0,
        metadata={
            "help": "share of records whose SFT target is the `<answer>` line alone, no rationale (chosen by a hash "
            "of the record id). Answer-only data: SFT can only copy such an answer; RL uses it as the reward"
        },
    )

    def __post_init__(self) -> None:
        family = get_family(self.family)
        if self.n <= 0:
            raise ValueError(f"n must be > 0 for family {self.family}; got {self.n}")
        check_probability("answer_only", self.answer_only, f" for family {self.family}")
        for v in [self.variants] if isinstance(self.variants, str) else self.variants:
            if v != "all" and v not in family.variants:
                raise ValueError(f"variant {v!r} is not offered by {self.family}; variants: {family.variants}, all")
        family.make_config(**self.knobs)  # fail early on a bad knob

    def records(self, split: str) -> Iterator[dict]:
        family = get_family(self.family)
        cfg = family.make_config(**{"split": split, **self.knobs})
        wanted = family.variants if self.variants == "all" else self.variants
        for record in generate(family, "all", self.n, self.seed, cfg):
            if record["variant"] in wanted:
                if self.answer_only and _unit(record["id"]) < self.answer_only:
                    record["target"] = "answer"
                yield record


def _unit(text: str) -> float:
    """A stable number in [0, 1) from a string (the same on every machine and Python run)."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2**64


def partial_prefix(path: str | Path) -> str:
    """Name prefix of the temp files and folders that are renamed to `path` when complete: `.NAME.partial-PID-`."""
    return f".{Path(path).name}.partial-{os.getpid()}-"


def remove_stale_partials(path: str | Path) -> None:
    """Remove the temp files/folders of `path` left by writers that were killed (their process no longer exists)."""
    path = Path(path)
    for stale in path.parent.glob(f".{glob_escape(path.name)}.partial-*-*"):
        pid = stale.name.removeprefix(f".{path.name}.partial-").split("-")[0]
        if not pid.isdigit() or _alive(int(pid)):
            continue
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        pass
    return True


def write_jsonl(records: Iterable[Mapping], path: str | Path) -> str:
    """Write records atomically (temp file + rename: nothing half-written); return the file's sha256.

    The temp file is `.NAME.partial-PID-XXXX` next to `path`; one left by a killed writer is removed by the next write.
    """
    path = Path(path)
    digest = hashlib.sha256()
    remove_stale_partials(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=partial_prefix(path))
    try:
        with os.fdopen(fd, "w") as f:
            for record in records:
                line = json.dumps(record, sort_keys=True) + "\n"
                digest.update(line.encode())
                f.write(line)
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return digest.hexdigest()


def read_jsonl(path: str | Path) -> list[dict]:
    """Every JSON line of a file (metrics logs, samples): no schema check; records go through `read_records`.

    A bad line raises a one-line ValueError naming `file:line`.
    """
    return [row for _, row in json_lines(path, max_line_bytes=None)]


def sha256_file(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def slug(name: str) -> str:
    """`name` as one safe file or folder name (runs of other characters become `-`); empty when nothing is left."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")


def counts(records: Iterable[Mapping]) -> dict[str, int]:
    return dict(sorted(Counter(f"{r['family']}/{r['variant']}" for r in records).items()))


def build_mixture(train: list[Source], test: list[Source], out_dir: str | Path) -> dict:
    """Write train.jsonl, test.jsonl and manifest.json; return the manifest.

    Train items use the families' `train` structures; test items of a family that is also trained on use
    its held-out `test` structures, so train and test share no canonical program structure (checked, not
    assumed: a test source of another family that happens to share one is refused, naming the `split` knob).
    The manifest records the data card of each side (test against train) and, per frozen suite, how many of
    its structures the training data uses (see `suite_overlap`).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    trained = {s.family for s in train}
    train_records = [r for s in train for r in s.records("train")]
    test_records = [r for s in test for r in s.records("test" if s.family in trained else "any")]
    train_structures = structures(train_records)
    for source in test:
        shared = structures(r for r in test_records if r["family"] == source.family) & train_structures
        if shared:
            raise ValueError(
                f"test source {source.family}: {len(shared)} program structures also appear in train (canonical "
                f"hash); set knobs: {{split: test}} on it and split: train on the train sources"
            )
    manifest = {
        "generator_version": GENERATOR_VERSION,
        "train": {"sources": [asdict(s) for s in train], "counts": counts(train_records)},
        "test": {"sources": [asdict(s) for s in test], "counts": counts(test_records)},
        "structure_overlap": 0,
        "suite_overlap": suite_overlap(train_structures),
        "card": {"train": data_card(train_records), "test": data_card(test_records, against=train_records)},
    }
    if train_records:
        manifest["train"]["sha256"] = write_jsonl(train_records, out / "train.jsonl")
    if test_records:
        manifest["test"]["sha256"] = write_jsonl(test_records, out / "test.jsonl")
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def suite_overlap(train_structures: set[str], data_dir: str | Path = DATA_DIR) -> dict[str, dict[str, int]]:
    """Per frozen suite file: its records and distinct structures, and how many of each are in `train_structures`.

    Structures are recomputed from each suite program with the canonical hash (a stored `meta.structure` may come
    from an older hash). A suite missing from `data_dir` is left out.
    """
    overlap = {}
    for path in sorted((Path(data_dir) / "suites").glob("*.jsonl")):
        hashes = []
        for where, row in json_lines(path):
            if not isinstance(row, dict) or not isinstance(row.get("program"), str):
                raise ValueError(f"{where}: field program: expected a string in a JSON object")
            hashes.append(record_structure(row))
        shared = set(hashes) & train_structures
        overlap[path.stem] = {
            "records": len(hashes),
            "records_shared": sum(h in shared for h in hashes),
            "structures": len(set(hashes)),
            "structures_shared": len(shared),
        }
    return overlap


# ---------------------------------------------------------------- frozen suites


def suite_records(family: str, items: int = SUITE_ITEMS) -> list[dict]:
    """Regenerate a frozen suite from code: every variant of the first `items` items."""
    split = "test" if family in ID_FAMILIES else "any"
    return list(Source(family, items, "all", SUITE_SEED).records(split))


def write_suites(data_dir: str | Path = DATA_DIR) -> dict:
    suites = Path(data_dir) / "suites"
    suites.mkdir(parents=True, exist_ok=True)
    manifest = {"generator_version": GENERATOR_VERSION, "items": SUITE_ITEMS, "seed": SUITE_SEED, "files": {}}
    for family in ID_FAMILIES + OOD_FAMILIES:
        records = suite_records(family)
        manifest["files"][f"suites/{family}.jsonl"] = {
            "sha256": write_jsonl(records, suites / f"{family}.jsonl"),
            "counts": counts(records),
        }
    (Path(data_dir) / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


@dataclass(frozen=True)
class Suite:
    """What a suite spec names: the record files it reads, or an external benchmark (`external.parse_external`)."""

    spec: str
    files: tuple[Path, ...] = ()
    external: tuple[str, str] | None = None  # (benchmark name, path or hf:DATASET_ID)


def resolve_suite(spec: str, external: bool = True) -> Suite:
    """The one reading of a suite spec: `id`, `ood`, `all`, a family with a frozen suite, a path to a `.jsonl` file,
    or (with `external`, for evaluation only) an external benchmark `cladder=PATH`, `cruxeval-o=PATH`, ...

    ValueError for an unknown spec, a missing `.jsonl` file, or a frozen suite file that is not there. Without
    `external`, an external spec is an unknown suite (training-time suites are frozen suites or record files).
    """
    if external and (benchmark := parse_external(spec)) is not None:
        return Suite(spec, external=benchmark)
    if spec.endswith(".jsonl"):
        if not Path(spec).is_file():
            raise ValueError(f"suite {spec}: no such file")
        return Suite(spec, files=(Path(spec),))
    families = {"id": ID_FAMILIES, "ood": OOD_FAMILIES, "all": ID_FAMILIES + OOD_FAMILIES}.get(spec, (spec,))
    if any(f not in ID_FAMILIES + OOD_FAMILIES for f in families):
        raise ValueError(f"unknown suite {spec!r}; suites: id, ood, all, a family name, or a .jsonl path")
    files = tuple(DATA_DIR / "suites" / f"{f}.jsonl" for f in families)
    for f in files:
        if not f.is_file():
            raise ValueError(f"suite {spec}: {f} is missing; generate the frozen suites with `cftrain suites`")
    return Suite(spec, files=files)


def load_suite(name: str, n: int | None = None, variants: Iterable[str] | None = None) -> list[dict]:
    """Records of a suite: `id`, `ood`, `all`, a family name, or a path to a `.jsonl` file (`resolve_suite`).

    `n` keeps the first n items per family x variant (suites are ordered, so this is a stable subset).
    """
    # Every record is checked (schema, sandbox, answer recomputed): the frozen suites too, which takes well under
    # a second for all of them.
    records = [record for path in resolve_suite(name, external=False).files for record in read_records(path)]
    keep = set(variants) if variants else set(VARIANTS)
    seen: Counter = Counter()
    out = []
    for r in records:
        key = (r["family"], r["variant"])
        if r["variant"] in keep and (n is None or seen[key] < n):
            seen[key] += 1
            out.append(r)
    return out


# ---------------------------------------------------------------- datasets


def sft_target(record: Mapping) -> str:
    """What SFT imitates for a record: see `to_dataset`."""
    if record.get("target") == "answer":
        return answer_line(record["answer"])
    return record.get("trace") or rationale(record)


def to_dataset(records: list[Mapping], prompt: PromptConfig, with_rationale: bool = False):
    """A `datasets.Dataset` with `prompt` and the answer columns; for RL (no `with_rationale`) the `truth` the step
    rewards read; with `with_rationale` a `completion`:
    the `<answer>` line alone for an answer-only record (`target: answer`), else the record's verified teacher `trace`
    when it has one (see `cftrain distill`), else the gold rationale."""
    from datasets import Dataset

    rows = {
        "id": [r["id"] for r in records],
        "family": [r["family"] for r in records],
        "variant": [r["variant"] for r in records],
        "answer": [list(r["answer"]) for r in records],
        "prompt": [build_prompt(r, prompt) for r in records],
    }
    if with_rationale:
        rows["completion"] = [build_completion(sft_target(r), prompt) for r in records]
    else:  # RL: what the step rewards check (cftrain.steps); SFT reads no reward, so it skips running every program
        rows["truth"] = [json.dumps(step_truth(r)) for r in records]
    return Dataset.from_dict(rows)


def records_or_suite(spec: str, flag: str = "") -> list[dict]:
    """Checked records of a `.jsonl` file (through the record gate) or of a suite (id, ood, all, a family name)."""
    where = f"{flag} {spec}".strip()
    path = Path(spec)
    if path.is_dir():
        raise ValueError(f"{where}: is a folder; expected a records .jsonl file or a suite (id, ood, all, a family)")
    if path.is_file() or spec.endswith(".jsonl"):
        records = read_records(path)
        if not records:
            raise ValueError(f"{where}: no records in the file")
        return records
    return load_suite(spec)
