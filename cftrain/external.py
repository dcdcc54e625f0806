"""External evaluation suites (evaluation only, never training): CLadder and CRUXEval-O / CRUXEval-I.

The benchmark files are written by others and are never copied into this repository: the user gives a path
(`cladder=PATH`, `cruxeval-o=PATH`, `cruxeval-i=PATH`, see `parse_external`) or a Hub dataset id
(`cruxeval-o=hf:cruxeval-org/cruxeval`, optionally `hf:ID:SPLIT`; the split defaults to `test`).

- `cladder`: a JSON list of yes/no questions (question_id, given_info, question, answer). Gold: `yes` or `no`.
- `cruxeval-o`: JSONL rows {code, input, output, id}; predict the value of `f(input)`. Gold: the `output` literal.
- `cruxeval-i`: the same rows; give arguments such that `f(arguments) == output`. Checked by running the call.

API: `load_external(name, source)` -> items `{"id", "suite", "prompt_text", "question", "gold", ...}` (`question`
equals `prompt_text`, so `cftrain.prompts.build_prompt` renders an item with the plain or chat template);
`score_external(item, completion)` -> `{"em", "format", "answer", "error"}`; `score_items(items, completions)`
-> one row per completion (items x samples, CRUXEval-I calls run a few at a time); the metrics over those rows are
`cftrain.evaluate.external_metrics(rows)`.

Reading answers. The answer is the content of the last `<answer>...</answer>` (the last closing tag and the last
opening tag before it, as in `cftrain.rewards`); there is no fallback to `\\boxed{}` or to the last word, so a
completion without the tag scores 0. Surrounding whitespace, backticks and a code fence are stripped; content
over 10,000 characters is unreadable. `format` is 1 when the completion has exactly one `<answer>` and one
`</answer>`, in that order, and the content is readable:

- CLadder: readable when the words of the content include `yes` or `no` but not both (case and punctuation do
  not matter: `Yes.`, `**no**`, `the answer is yes`). `yes or no` and `maybe` are unreadable. Prose is not
  understood (`not yes` reads as yes).
- CRUXEval-O: the content must be a Python literal (`ast.literal_eval`), compared with the gold literal by `==`
  as CRUXEval's own `assert f(input) == prediction` does (so `1`, `1.0` and `True` are equal). CRUXEval runs the
  prediction as code; here it is never run, so an expression (`'a' * 3`) is unreadable instead.
- CRUXEval-I: the content is the text inside the call's parentheses (`[1, 2], 'a'`); a whole call `f(...)`, the
  form CRUXEval asks for, is accepted too. Readable when `f(<content>)` parses as a call of `f`. The call is then
  run (below); em is 1 when it returns, within the limits, a value made only of built-in literal types that
  equals the gold output. A prediction that names anything starting with `_` (`__import__`, `__class__`) is
  refused without running (em 0), and so is an attribute that reaches frames or code (`gi_frame`, `f_globals`,
  `tb_frame`, `co_code`, `mro`). The constant baseline (`constant_em`, the share of the most common gold answer)
  is reported for CLadder and CRUXEval-O, not for CRUXEval-I (no constant input is defined for all functions).

The CRUXEval-I sandbox. Each call runs in a fresh child process `python -I -S -B -c RUNNER`, given the function's
code, the call and the gold output as JSON on stdin (the CPU and memory limits on its command line). What holds:

- Resources (OS-enforced by the kernel through rlimits the runner sets on itself before reading the job):
  CPU time (`RLIMIT_CPU`, SIGXCPU kills), address space (`RLIMIT_AS`, 1 GiB: `[0] * 10**10` is a MemoryError),
  file size 0 (`RLIMIT_FSIZE`: no byte can be written to a file), at most 16 open files, no core dumps. The
  parent adds a wall-clock timeout and then kills the child's whole process group (`start_new_session`).
- Nothing is inherited: fds are closed (`close_fds`), the environment is minimal (HOME and TMPDIR point to a
  fresh empty temp folder, which is also the working directory and is deleted afterwards), isolated mode (`-I`:
  no PYTHON* variables, no user site, the script's folder not on sys.path), no `site` (`-S`), no .pyc writes.
- The verdict comes back on a duplicate of stdout the runner keeps; the child's own stdout and stderr point to
  /dev/null, so `print` cannot fake a verdict (code that reaches `os.write` could; the prediction cannot).
- Processes: `RLIMIT_NPROC` 0 makes fork fail for a non-root user. For root the kernel ignores that limit.
- In-process guards only (not an OS guarantee; Python cannot sandbox Python against a determined attacker): the
  prediction is evaluated with a small set of safe builtins (no `open`, `exec`, `eval`, `getattr`,
  `__import__`, `type`, ...) and no names starting with `_`, so it cannot reach `os`, `sys` or an object's
  internals by the usual routes; before any code runs, the runner replaces the process, signal, file-removal
  and `open` functions of `os`/`posix`/`io`/`builtins` with ones that raise, and makes `socket`, `ssl`,
  `subprocess`, `multiprocessing`, `signal`, `ctypes` and friends unimportable. The function's code (from the
  benchmark file) runs with full builtins but under the same guards.

What does NOT hold: there is no seccomp filter, no namespace, no chroot and no privilege drop (the interpreter
may not be readable by another user). Network and file-system isolation are therefore in-process only; run as
root, an escape from the guards could kill other processes or delete files. Evaluate untrusted models in a
container or VM, as an unprivileged user. Timeouts, crashes and refused or hostile predictions score 0 and never
stop the evaluation.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cftrain.rewards import Completion, completion_text

SUITES = ("cladder", "cruxeval-o", "cruxeval-i")
MAX_ANSWER_CHARS = 10_000
CPU_SECONDS = 2
WALL_SECONDS = 5.0
MEMORY_BYTES = 1 << 30
WORKERS = 2

_FENCE = re.compile(r"^```[A-Za-z0-9_+-]*\n(.*)\n```$", re.DOTALL)
_WORD = re.compile(r"[a-z]+")


# ---------------------------------------------------------------- specs and loading


def parse_external(spec: str) -> tuple[str, str] | None:
    """`NAME=PATH` or `NAME=hf:DATASET_ID[:SPLIT]` -> (name, source); None when NAME is not an external suite.

    >>> parse_external("cladder=/data/cladder.json"), parse_external("id")
    (('cladder', '/data/cladder.json'), None)
    """
    name, sep, source = spec.partition("=")
    if not sep or name not in SUITES:
        return None
    if not source:
        raise ValueError(f"external suite {spec!r}: give a path or hf:DATASET_ID after '='")
    return name, source


def load_external(name: str, source: str | Path) -> list[dict]:
    """The items of suite `name` from a file path or `hf:DATASET_ID[:SPLIT]`; bad input -> one-line ValueError."""
    if name not in SUITES:
        raise ValueError(f"unknown external suite {name!r}; one of {', '.join(SUITES)}")
    source = str(source)
    if source.startswith("hf:"):
        rows, where = _hub_rows(source[len("hf:") :]), source
    else:
        rows, where = _file_rows(Path(source), jsonl=name != "cladder"), source
    if name == "cladder":
        return [_cladder_item(row, f"{where}: {label}") for label, row in rows]
    return [_cruxeval_item(row, f"{where}: {label}", name) for label, row in rows]


def _file_rows(path: Path, jsonl: bool) -> list[tuple[str, object]]:
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot read: {exc}") from None
    if not jsonl:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not JSON: {exc}") from None
        if not isinstance(data, list):
            raise ValueError(f"{path}: expected a JSON list of questions, got {type(data).__name__}")
        return [(f"row {i}", row) for i, row in enumerate(data)]
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                rows.append((f"line {number}", json.loads(line)))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}: line {number}: not JSON: {exc}") from None
    return rows


def _hub_rows(dataset: str) -> list[tuple[str, object]]:
    dataset_id, _, split = dataset.partition(":")
    try:
        from datasets import load_dataset  # heavy import, only on this path

        data = load_dataset(dataset_id, split=split or "test")
    except Exception as exc:  # offline, unknown id, bad split: all one line for the CLI
        first = (str(exc).strip().splitlines() or [""])[0]
        raise ValueError(f"hf:{dataset}: cannot load from the Hub: {type(exc).__name__}: {first}") from None
    return [(f"row {i}", dict(row)) for i, row in enumerate(data)]


def _field(row: object, where: str, name: str, kind: type) -> object:
    if not isinstance(row, dict):
        raise ValueError(f"{where}: expected an object, got {type(row).__name__}")
    if name not in row:
        raise ValueError(f"{where}: missing field {name!r}")
    value = row[name]
    # bool is an int subclass; a question id of True is a broken file, not an id
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ValueError(f"{where}: field {name!r} must be {kind.__name__}, got {type(value).__name__}")
    return value


def _cladder_item(row: object, where: str) -> dict:
    question_id = _field(row, where, "question_id", int)
    given_info = _field(row, where, "given_info", str).strip()
    question = _field(row, where, "question", str).strip()
    answer = _field(row, where, "answer", str)
    if answer not in ("yes", "no"):
        raise ValueError(f"{where}: field 'answer' must be 'yes' or 'no', got {answer!r}")
    text = f"{given_info} {question}\n\nAnswer yes or no, as <answer>yes</answer> or <answer>no</answer>."
    return {"id": f"cladder/{question_id}", "suite": "cladder", "prompt_text": text, "question": text, "gold": answer}


def _cruxeval_item(row: object, where: str, suite: str) -> dict:
    code, call_input, output, sample_id = (_field(row, where, name, str) for name in ("code", "input", "output", "id"))
    if "def f(" not in code:
        raise ValueError(f"{where}: field 'code' does not define f")
    try:
        ast.literal_eval(output)
    except Exception:  # any failure means the gold output cannot be compared
        raise ValueError(f"{where}: field 'output' is not a Python literal: {output[:60]!r}") from None
    if suite == "cruxeval-o":
        text = (
            f"{code}\n\nWhat does f({call_input}) return? Give the value as a Python literal in <answer>...</answer>."
        )
        gold = output
    else:
        text = (
            f"{code}\n\nGive an input such that f(...) == {output}. Write the arguments of the call, as they appear "
            "between its parentheses, in <answer>...</answer>."
        )
        gold = call_input
    return {
        "id": f"{suite}/{sample_id}",
        "suite": suite,
        "prompt_text": text,
        "question": text,
        "gold": gold,
        "code": code,
        "input": call_input,
        "output": output,
    }


# ---------------------------------------------------------------- reading answers


def answer_content(text: str) -> str | None:
    """The stripped content of the last `<answer>...</answer>`, or None (no tag, or over 10,000 characters).

    >>> answer_content("x <answer>no</answer> <answer> ```python\\n'a b'\\n``` </answer>")
    "'a b'"
    """
    close = text.rfind("</answer>")
    start = text.rfind("<answer>", 0, close) if close != -1 else -1
    if start == -1:
        return None
    content = text[start + len("<answer>") : close].strip()
    if len(content) > MAX_ANSWER_CHARS:
        return None
    fenced = _FENCE.match(content)
    if fenced:
        content = fenced.group(1)
    return content.strip().strip("`").strip()


def parse_yes_no(content: str | None) -> str | None:
    """`yes` or `no` when the content's words include exactly one of the two, else None.

    >>> parse_yes_no("**Yes.**"), parse_yes_no("the answer is no,"), parse_yes_no("yes or no"), parse_yes_no("ok")
    ('yes', 'no', None, None)
    """
    if content is None:
        return None
    kinds = {word for word in _WORD.findall(content.lower()) if word in ("yes", "no")}
    return kinds.pop() if len(kinds) == 1 else None


def parse_literal(content: str | None) -> tuple[bool, object]:
    """(True, value) when the content is a Python literal, else (False, None); never raises."""
    if content is None:
        return False, None
    try:
        return True, ast.literal_eval(content)
    except BaseException:  # SyntaxError, ValueError, MemoryError, RecursionError: all unreadable
        return False, None


def call_source(content: str | None) -> str | None:
    """`f(<content>)`, or the content itself when it is a whole call of f; None when that is not a call of f."""
    if content is None:
        return None
    for source in (content, f"f({content})"):
        try:
            tree = ast.parse(source, mode="eval")
        except BaseException:  # the parser raises MemoryError/RecursionError on deep nesting
            continue
        call = tree.body
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "f":
            return source
    return None


# Frames, code and tracebacks lead from a generator or lambda to the globals of f, which hold the full builtins.
_INTROSPECTION = ("gi_", "cr_", "ag_", "f_", "tb_", "co_", "mro")


def _refusal(source: str) -> str | None:
    # Blocks the usual routes out of restricted builtins: __import__, __class__.__subclasses__, gen.gi_frame, ...
    for node in ast.walk(ast.parse(source, mode="eval")):
        name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""
        if name.startswith("_") or (isinstance(node, ast.Attribute) and name.startswith(_INTROSPECTION)):
            return f"refused: name {name}"
    return None


def _one_block(text: str) -> bool:
    start, close = text.find("<answer>"), text.find("</answer>")
    return text.count("<answer>") == 1 and text.count("</answer>") == 1 and start < close


# ---------------------------------------------------------------- scoring


def score_external(item: Mapping, completion: Completion, **limits: float) -> dict:
    """Scores of one completion: `em` and `format` (0.0 or 1.0), the read `answer` and an `error` (or None).

    Never raises on a completion: unreadable, refused, crashing or timed-out answers score 0. `limits` are the
    keyword arguments of `run_call` (CRUXEval-I only).
    """
    try:
        text = completion_text(completion)
    except Exception:  # a malformed chat completion is an unreadable answer
        text = ""
    if not isinstance(text, str):
        text = ""
    content = answer_content(text)
    suite = item["suite"]
    error = None
    if suite == "cladder":
        answer = parse_yes_no(content)
        readable, em = answer is not None, answer == item["gold"]
    elif suite == "cruxeval-o":
        readable, value = parse_literal(content)
        answer = content if readable else None
        em = readable and _equal(value, ast.literal_eval(item["gold"]))
    elif suite == "cruxeval-i":
        source = call_source(content)
        readable, answer, em = source is not None, source, False
        if readable:
            error = _refusal(source)
            if error is None:
                em, error = run_call(item["code"], source, item["output"], **limits)
    else:
        raise ValueError(f"item {item.get('id')!r}: unknown suite {suite!r}")
    return {"answer": answer, "em": float(em), "format": float(readable and _one_block(text)), "error": error}


def _equal(a: object, b: object) -> bool:
    try:
        return bool(a == b)
    except BaseException:  # RecursionError on deep literals
        return False


def score_items(
    items: Sequence[Mapping], completions: Sequence[Sequence[Completion]], workers: int = WORKERS, **limits: float
) -> list[dict]:
    """One row per completion, in the order items x samples: id, suite, sample, gold, completion and the scores.

    CRUXEval-I calls run in up to `workers` concurrent child processes; the rest is scored in this process.
    """
    if len(items) != len(completions):
        raise ValueError(f"{len(items)} items but {len(completions)} lists of completions")
    jobs = [(item, index, c) for item, samples in zip(items, completions) for index, c in enumerate(samples)]
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        scores = list(pool.map(lambda job: score_external(job[0], job[2], **limits), jobs))
    return [
        {"id": item["id"], "suite": item["suite"], "sample": index, "gold": item["gold"], "completion": c, **s}
        for (item, index, c), s in zip(jobs, scores)
    ]


# ---------------------------------------------------------------- the CRUXEval-I sandbox

_SAFE_BUILTINS = (
    "abs all any ascii bin bool bytearray bytes callable chr complex dict divmod enumerate filter float format "
    "frozenset hash hex int isinstance iter len list map max min next oct ord pow print range repr reversed "
    "round set slice sorted str sum tuple zip ArithmeticError AssertionError AttributeError Exception "
    "IndexError KeyError LookupError NameError StopIteration TypeError ValueError ZeroDivisionError"
)

# Run as `python -I -S -B -c RUNNER CPU MEMORY`. It limits itself first (the job is untrusted input), keeps a private
# copy of stdout for the verdict, then installs the guards, then runs the code and the call.
RUNNER = r"""
import resource, sys
cpu, memory = int(sys.argv[1]), int(sys.argv[2])
for kind, soft, hard in ((resource.RLIMIT_CPU, cpu, cpu + 1), (resource.RLIMIT_AS, memory, memory),
                         (resource.RLIMIT_CORE, 0, 0), (resource.RLIMIT_FSIZE, 0, 0),
                         (resource.RLIMIT_NOFILE, 16, 16), (resource.RLIMIT_NPROC, 0, 0)):
    resource.setrlimit(kind, (soft, hard))
import ast, builtins, io, json, os, posix
job = json.loads(sys.stdin.read())
verdict_fd = os.dup(1)
write = os.write
null = os.open(os.devnull, os.O_WRONLY)
os.dup2(null, 1)
os.dup2(null, 2)
os.close(null)
os.close(0)

def blocked(*args, **kwargs):
    raise PermissionError("blocked by the cftrain sandbox")

BLOCKED = (
    "kill killpg fork forkpty vfork system popen execv execve execl execle execlp execlpe execvp execvpe spawnv "
    "spawnve spawnl spawnle spawnlp spawnlpe spawnvp spawnvpe posix_spawn posix_spawnp setsid setpgid "
    "remove unlink rmdir removedirs rename renames replace truncate ftruncate chmod fchmod lchmod chown fchown "
    "lchown link symlink mkdir makedirs mkfifo mknod open openpty putenv unsetenv chdir fchdir chroot "
    "setuid seteuid setgid setegid setreuid setregid nice sched_setaffinity"
).split()
for module in (os, posix):
    for name in BLOCKED:
        if hasattr(module, name):
            setattr(module, name, blocked)
builtins.open = io.open = blocked
for name in ("socket _socket ssl _ssl select selectors asyncio subprocess _posixsubprocess multiprocessing "
             "_multiprocessing signal _signal ctypes _ctypes pty fcntl mmap resource shutil").split():
    sys.modules[name] = None
safe = {name: getattr(builtins, name) for name in job["safe"].split()}
safe.update({"True": True, "False": False, "None": None})
PLAIN = (int, float, complex, str, bytes, bool, type(None), list, tuple, dict, set, frozenset)

def plain(value):
    # exact built-in types only: a subclass or a custom object could define an __eq__ that always says yes
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if type(item) not in PLAIN or depth > 100:
            return False
        if type(item) is dict:
            stack.extend((part, depth + 1) for pair in item.items() for part in pair)
        elif type(item) in (list, tuple, set, frozenset):
            stack.extend((part, depth + 1) for part in item)
    return True

try:
    expected = ast.literal_eval(job["output"])
    space = {"__name__": "cftrain_sandbox"}
    exec(compile(job["code"], "<code>", "exec"), space)
    scope = {key: value for key, value in space.items() if not key.startswith("_")}
    scope["__builtins__"] = safe
    result = eval(compile(job["call"], "<call>", "eval"), scope)
    verdict = {"em": bool(plain(result) and result == expected), "error": None}
except BaseException as exc:
    verdict = {"em": False, "error": type(exc).__name__ + ": " + str(exc)[:200]}
write(verdict_fd, json.dumps(verdict).encode())
"""


def run_call(
    code: str, call: str, output: str, cpu_seconds: int = CPU_SECONDS, wall_seconds: float = WALL_SECONDS
) -> tuple[bool, str | None]:
    """Run `call` (e.g. `f([1, 2], 3)`) after `code` in a sandboxed child: (call == output, error or None).

    The call is evaluated with safe builtins only; the code with full builtins. Both under the guards and limits
    of the module doc. Never raises: a timeout, a crash or a killed child is (False, reason).
    """
    job = json.dumps({"code": code, "call": call, "output": output, "safe": _SAFE_BUILTINS})
    folder = tempfile.mkdtemp(prefix="cftrain-sandbox-")
    env = {"PATH": "/usr/bin:/bin", "HOME": folder, "TMPDIR": folder, "LANG": "C.UTF-8"}
    try:
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-B", "-c", RUNNER, str(int(cpu_seconds)), str(MEMORY_BYTES)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=folder,
            env=env,
            close_fds=True,
            start_new_session=True,
        )
    except OSError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        return False, f"cannot start the sandbox: {exc}"
    try:
        out, _ = proc.communicate(job.encode(), timeout=wall_seconds)
    except subprocess.TimeoutExpired:
        _kill_group(proc.pid)
        proc.communicate()
        return False, f"timeout after {wall_seconds}s"
    finally:
        # the group outlives the child only if something forked; its id cannot be reused while the group exists
        _kill_group(proc.pid)
        shutil.rmtree(folder, ignore_errors=True)
    try:
        verdict = json.loads(out.decode())
        return verdict["em"] is True, verdict["error"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        code = proc.returncode
        # SIGXCPU is the CPU limit, SIGXFSZ a write to a file, SIGKILL usually memory outside Python's reach
        return False, f"sandbox killed by {signal.Signals(-code).name}" if code < 0 else f"sandbox exited {code}"


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
