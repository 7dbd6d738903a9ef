"""The embedded local model (Qwen2.5-Coder-1.5B, llama.cpp via xllamacpp): time per edit, with
speculative decoding (n-gram drafting from the prompt, no draft model) and the prompt cache on and
off, measured in the same run on the same requests.

Each configuration loads its own model (the drafter is a load-time setting of llama.cpp) and runs,
in this order, through the real ``spark-ls check`` code path (``spark_ls.cli.main(["check", ...])``
in-process, handed the already-loaded session, so the figures are "after the model is loaded"):

1. the README quick start, ``check examples/buggy.py`` (fix-bug on ``average``), on a fresh cache;
2. a second action on the same file (``--action add-docstring``): the prompt shares the
   instructions and the function with the first one, so only the task tail should be evaluated;
3. (not in --quick) a few edits on a small corpus of other files.

Configurations: ``before`` = speculative decoding off (what spark-ls shipped before; llama.cpp's
default prompt caching left on), ``after`` = speculative decoding on (the default now), and
``no cache`` = speculative on, prompt cache off (what the second action would cost without the
KV cache; it runs only steps 1-2). Greedy decoding (temperature 0): the outputs of before/after are compared verbatim.

CPU-heavy: run it alone (``flock /tmp/heavy.lock python -m bench local`` on a shared machine).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.loaded_model import SharedSession

TITLE = "embedded local model: time per edit, speculative decoding and prompt cache on/off (same run)"

ROOT = Path(__file__).resolve().parent.parent
QUICK_START = ROOT / "examples" / "buggy.py"
QUICK_START_TARGET_S = 5.0
QUICK_START_RERUNS = 5  # new processes re-running the quick start; the target is on their median
SPEEDUP_TARGET = 3.0

# A small corpus of other edits (written for this benchmark): (file name, source, action).
CORPUS: list[tuple[str, str, str]] = [
    (
        "headers.py",
        """def parse_header(line, defaults=None):
    result = dict(defaults or {})
    if not line:
        return result
    for part in line.split(";"):
        if "=" not in part:
            continue
        key, value = part.split("=", 1)
        key = key.strip().lower()
        value = value.strip()
        if value.startswith('"') and value.endswith('"'):
            value = value[1:-1]
        result[key] = value
    return result
""",
        "add-types",
    ),
    (
        "inventory.py",
        """class Inventory:
    def __init__(self):
        self.items = {}

    def restock(self, name, count):
        if count <= 0:
            raise ValueError("count must be positive")
        self.items[name] = self.items.get(name, 0) + count
        return self.items[name]

    def take(self, name, count):
        have = self.items.get(name, 0)
        if count > have:
            raise KeyError(name)
        self.items[name] = have - count
        return self.items[name]
""",
        "add-docstring",
    ),
    (
        "window.py",
        '''def moving_average(values, size):
    """Averages of every window of `size` consecutive values."""
    out = []
    for start in range(len(values) - size):
        window = values[start:start + size]
        out.append(sum(window) / size)
    return out
''',
        "fix-bug",
    ),
]



class _Refusing(SharedSession):
    def __init__(self, shared: SharedSession) -> None:
        super().__init__(shared._session)

    async def complete(self, req: Any, **kwargs: Any) -> Any:
        from spark_ls.model.types import ModelError

        raise ModelError("unavailable", "warm-up: no model call")


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _check(shared: SharedSession, path: Path, action: str | None) -> dict[str, Any]:
    """Run ``spark-ls check PATH [--action A]`` in-process on the shared, loaded session."""
    import spark_ls.model as model_package
    from spark_ls.cli import main

    argv = ["check", str(path), "--quiet", "--jobs", "1"] + (
        ["--action", action] if action else []
    )
    out, err = io.StringIO(), io.StringIO()
    before = len(shared.usages)
    original = model_package.open_session
    model_package.open_session = lambda *_a, **_k: shared  # type: ignore[assignment]
    try:
        started, cpu = time.perf_counter(), _cpu_seconds()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
        seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    finally:
        model_package.open_session = original  # type: ignore[assignment]
    usages = shared.usages[before:]
    return {
        "seconds": seconds,
        "cpu": cpu,
        "code": code,
        "diff": out.getvalue(),
        "stderr": err.getvalue(),
        "usages": usages,
    }


def _sum(usages: list[dict[str, Any]], key: str) -> float:
    return float(sum(u.get(key) or 0 for u in usages))


def _summary(result: dict[str, Any]) -> dict[str, Any]:
    usages = result["usages"]
    generated = _sum(usages, "output_tokens")
    generation_ms = _sum(usages, "generation_ms")
    first = [
        u.get("first_token_ms") for u in usages if u.get("first_token_ms") is not None
    ]
    return {
        "seconds": result["seconds"],
        "cpu": result["cpu"],
        "requests": len(usages),
        "prompt tokens": int(_sum(usages, "input_tokens")),
        "prompt evaluated": int(_sum(usages, "prompt_evaluated")),
        "restored": int(_sum(usages, "restored_tokens")),
        "prompt ms": _sum(usages, "prompt_ms"),
        "ttft ms": first[0] if first else None,
        "generated": int(generated),
        "tok/s": generated / (generation_ms / 1000.0) if generation_ms else None,
        "drafted": int(_sum(usages, "draft_tokens")),
        "accepted": int(_sum(usages, "draft_accepted")),
        "diff": result["diff"],
        "code": result["code"],
    }


def _load(speculative: bool, prompt_cache: bool, state_dir: Path) -> tuple[SharedSession, float]:
    from spark_ls.config import Settings
    from spark_ls.model import session as session_module
    from spark_ls.model.local import LocalModel

    settings = Settings(transport="local")
    session = session_module.open_session(settings)
    transport = session._transport  # the embedded model's adapter (a _LocalTransport)
    transport._model = LocalModel(
        settings, speculative=speculative, prompt_cache=prompt_cache, prompt_state_dir=state_dir
    )
    started = time.perf_counter()
    asyncio.run(
        session.start()
    )  # the model object does not keep to one event loop; check runs its own
    return SharedSession(session), time.perf_counter() - started


def _measure(
    configs: dict[str, tuple[bool, bool]],
    corpus_dir: Path | None,
    quick_start: Path,
    corpus_labels: tuple[str, ...],
) -> dict[str, dict[str, Any]]:
    """Every configuration loaded at once (the weights are one shared mapping), then each step run
    on each configuration in turn, so a burst of load on the machine hits all of them alike."""
    states = quick_start.parent / "prompt-state"
    state_dirs = {label: states / str(index) for index, label in enumerate(configs)}
    loaded = {label: _load(*flags, state_dirs[label]) for label, flags in configs.items()}
    out: dict[str, dict[str, Any]] = {
        label: {"load s": seconds, "corpus": []}
        for label, (_s, seconds) in loaded.items()
    }
    steps: list[tuple[str, Path, str | None]] = [
        ("quick start", quick_start, None),
        ("second action", quick_start, "add-docstring"),
    ]
    if corpus_dir is not None:
        steps += [
            (f"corpus:{name}", corpus_dir / name, action)
            for name, _source, action in CORPUS
        ]
    try:
        # Unmeasured: one check on a copy of the quick start whose model request fails at once
        # loads the whole check pipeline (imports, grammar, queries) before anything is timed.
        warm = quick_start.parent / "warm_up.py"
        warm.write_bytes(quick_start.read_bytes())
        _check(_Refusing(next(iter(loaded.values()))[0]), warm, None)
        labels = list(loaded)
        for index, (key, path, action) in enumerate(steps):
            turn = index % len(labels)  # rotate who goes first
            for label in labels[turn:] + labels[:turn]:
                if key.startswith("corpus:") and label not in corpus_labels:
                    continue
                shared = loaded[label][0]
                summary = _summary(_check(shared, path, action))
                if key.startswith("corpus:"):
                    out[label]["corpus"].append((path.name, action, summary))
                else:
                    out[label][key] = summary
        # A new process re-running the quick start: a fresh model (a new llama.cpp context, empty
        # KV cache) whose first request finds the prompt state the "after" run saved on disk.
        # Repeated, because one run on a shared 2-core machine moves by a third from run to run.
        rerun_label = "after (speculative on)"
        if rerun_label in configs:
            reruns = []
            for _ in range(QUICK_START_RERUNS):
                rerun, _seconds = _load(*configs[rerun_label], state_dirs[rerun_label])
                try:
                    reruns.append(_summary(_check(rerun, quick_start, None)))
                finally:
                    asyncio.run(rerun._session.close())
            out[rerun_label]["next process"] = sorted(reruns, key=lambda s: s["seconds"])
    finally:
        for shared, _seconds in loaded.values():
            asyncio.run(shared._session.close())
    return out


def _missing_model() -> str | None:
    try:
        import xllamacpp  # noqa: F401
    except ImportError:
        return "xllamacpp is not installed (pip install '.[local]')"
    from spark_ls.model.weights import ensure_weights

    try:
        ensure_weights(None)
    except Exception as exc:  # noqa: BLE001 - whatever makes the weights unavailable is the reason
        return f"the embedded model's weights are not available: {exc}"
    return None


async def _tiny() -> dict[str, Any]:
    """Smoke configuration: one load with the shipped settings, two short requests sharing a prefix."""
    from spark_ls.config import Settings
    from spark_ls.model.local import LocalModel
    from spark_ls.model.types import ModelRequest

    state_dir = Path(tempfile.mkdtemp(prefix="spark-ls-bench-state-"))
    model = LocalModel(Settings(transport="local"), prompt_state_dir=state_dir)
    try:
        await model.start()
        context = "File t.py:\n```python\ndef add(a, b):\n    return a + b\n```"
        first = await model.complete(
            ModelRequest(
                "Reply with the function.",
                "Task: rename it.",
                context=context,
                max_output_tokens=4,
            )
        )
        second = await model.complete(
            ModelRequest(
                "Reply with the function.",
                "Task: add types.",
                context=context,
                max_output_tokens=4,
            )
        )
    finally:
        await model.close()
        shutil.rmtree(state_dir, ignore_errors=True)
    return {"first": dict(first.usage), "second": dict(second.usage)}


def run(quick: bool, tiny: bool = False) -> dict:
    missing = _missing_model()
    if missing:
        return {"skipped": missing, "rows": [], "targets": [], "notes": []}
    if tiny:
        usage = asyncio.run(_tiny())
        rows = [
            {
                "request": name,
                **{
                    k: usage[name].get(k)
                    for k in (
                        "input_tokens",
                        "prompt_evaluated",
                        "output_tokens",
                        "draft_tokens",
                    )
                },
            }
            for name in usage
        ]
        reused = (usage["second"].get("prompt_evaluated") or 0) < (
            usage["second"].get("input_tokens") or 0
        )
        return {
            "rows": rows,
            "targets": [
                (
                    "tiny: the second request reuses the shared prefix",
                    reused,
                    f"{usage['second'].get('prompt_evaluated')} of {usage['second'].get('input_tokens')} evaluated",
                )
            ],
            "notes": ["tiny smoke configuration (max 4 output tokens)"],
        }

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        quick_start = root / "buggy.py"
        quick_start.write_bytes(QUICK_START.read_bytes())
        corpus_dir = None
        if not quick:
            corpus_dir = root
            for name, source, _action in CORPUS:
                (root / name).write_text(source)
        configs = {
            "before (speculative off)": (False, True),
            "after (speculative on)": (True, True),
            "after, prompt cache off": (True, False),
        }
        results = _measure(
            configs, corpus_dir, quick_start, corpus_labels=tuple(list(configs)[:2])
        )
    load_after = os.getloadavg()[0]

    before, after, nocache = (results[k] for k in configs)
    rows: list[dict[str, Any]] = []

    def row(label: str, what: str, s: dict[str, Any], **extra: Any) -> None:
        rows.append(
            {
                "configuration": label,
                "run": what,
                "time s": s["seconds"],
                "CPU s": s["cpu"],
                "ttft ms": s["ttft ms"],
                "gen tok/s": s["tok/s"],
                "generated": s["generated"],
                "drafted/accepted": f"{s['drafted']}/{s['accepted']}",
                "prompt tokens (evaluated/total)": f"{s['prompt evaluated']}/{s['prompt tokens']}",
                **extra,
            }
        )

    for label, res in results.items():
        row(
            label,
            "quick start: check examples/buggy.py",
            res["quick start"],
            **{"load s": res["load s"]},
        )
        row(label, "2nd action, same file (add-docstring)", res["second action"])
        if "next process" in res:
            runs = res["next process"]
            row(
                label,
                f"quick start again, in a new process (prompt state from disk): median of {len(runs)}",
                runs[len(runs) // 2],
            )
        for name, action, s in res.get("corpus", []):
            row(label, f"corpus: {action} {name}", s)

    qs_before, qs_after = (
        before["quick start"]["seconds"],
        after["quick start"]["seconds"],
    )
    pairs = [
        ("quick start", before["quick start"], after["quick start"]),
        ("2nd action", before["second action"], after["second action"]),
    ]
    pairs += [
        (f"{a} {n}", sb, sa)
        for (n, a, sb), (_n, _a, sa) in zip(
            before.get("corpus", []), after.get("corpus", []), strict=True
        )
    ]
    edit_before = sum(b["seconds"] for _, b, _ in pairs)
    edit_after = sum(a["seconds"] for _, _, a in pairs)
    speedup = edit_before / edit_after if edit_after else 0.0
    cpu_before = sum(b["cpu"] for _, b, _ in pairs)
    cpu_after = sum(a["cpu"] for _, _, a in pairs)
    cpu_speedup = cpu_before / cpu_after if cpu_after else 0.0
    identical = [name for name, b, a in pairs if b["diff"] == a["diff"]]
    differing = [name for name, b, a in pairs if b["diff"] != a["diff"]]
    second = after["second action"]
    second_nc = nocache["second action"]
    shared_prefix_reused = (
        second["prompt evaluated"] < second["prompt tokens"]
        and second_nc["prompt evaluated"] >= second_nc["prompt tokens"] - 1
    )
    reruns = after["next process"]
    rerun = reruns[len(reruns) // 2]
    gen_before = before["quick start"]["tok/s"] or 0.0
    gen_after = after["quick start"]["tok/s"] or 0.0
    targets = [
        (
            f"quick start check <= {QUICK_START_TARGET_S:g} s after the model is loaded (speculative on)",
            qs_after <= QUICK_START_TARGET_S,
            f"{qs_after:.1f} s (before: {qs_before:.1f} s)",
        ),
        (
            f"quick start re-run in a new process <= {QUICK_START_TARGET_S:g} s after the model is loaded (prompt state restored from disk)",
            rerun["seconds"] <= QUICK_START_TARGET_S,
            (
                f"median {rerun['seconds']:.1f} s of {len(reruns)} new processes ({reruns[0]['seconds']:.1f}-{reruns[-1]['seconds']:.1f} s); "
                f"{rerun['prompt evaluated']} of {rerun['prompt tokens']} prompt tokens evaluated, {rerun['restored']} restored"
            ),
        ),
        (
            f"time per edit {SPEEDUP_TARGET:g}x faster than before (sum over {len(pairs)} edits, same run)",
            speedup >= SPEEDUP_TARGET,
            f"{speedup:.2f}x wall ({edit_before:.1f} s -> {edit_after:.1f} s); {cpu_speedup:.2f}x CPU ({cpu_before:.1f} -> {cpu_after:.1f} CPU s)",
        ),
        (
            "2nd action in the same file evaluates only the tail after the shared prefix",
            shared_prefix_reused,
            f"{second['prompt evaluated']} of {second['prompt tokens']} prompt tokens evaluated (cache off: {second_nc['prompt evaluated']} of {second_nc['prompt tokens']})",
        ),
        (
            "identical outputs with speculative decoding on and off (temperature 0)",
            not differing,
            f"{len(identical)}/{len(pairs)} identical",
        ),
    ]
    notes = [
        "command: flock /tmp/heavy.lock python -m bench local"
        + (" --quick" if quick else ""),
        (
            "time s = the whole `spark-ls check` run in-process (planning, prompt, generation, splice, verification, report) with the model already loaded; "
            "ttft = time to the first streamed token of the first request; gen tok/s = generated tokens / generation time; drafted/accepted = n-gram draft tokens proposed / accepted."
        ),
        f"generation speed on the quick start: {gen_before:.1f} -> {gen_after:.1f} tokens/s ({(gen_after / gen_before if gen_before else 0):.2f}x)",
        (
            f"machine load (1-minute average) {load_before:.1f} before and {load_after:.1f} after the run, on {os.cpu_count()} cores: "
            "other processes compete for the cores, so absolute times are pessimistic; configurations run back to back, compare within the run."
        ),
    ]
    if differing:
        notes.append(
            "outputs that differ between speculative on/off: "
            + ", ".join(differing)
            + " (llama.cpp evaluates draft tokens in a batch; "
            "batched and single-token CPU kernels round differently, which can flip a near-tie at temperature 0)"
        )
    return {"rows": rows, "targets": targets, "notes": notes}
