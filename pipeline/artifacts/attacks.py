"""Attack results (docs/attacks.md), written by the attack stage (pipeline/stages/attack.py).

- ``work/<run>/attacks/<attack>/result.json``: one attack family's result (``write_result``): the settings,
  per budget the success and the poisoning-overfitting figures, per target (targeted) its radius and the
  poisons that flipped it, and how many certified predictions the attacks were checked against.
- ``work/<run>/attacks/<attack>/edits/``: every attack's edit in the files a run's ``insert:`` and ``exclude:``
  read (pipeline/edits.py): ``target_<test id>.npz`` (targeted: the plan's poisons in order, x and y; an attack
  of budget B inserts the first B) or ``B<budget>/insert.npz`` and ``B<budget>/exclude.txt``. Deterministic
  bytes (fixed zip timestamps).
- ``metrics/<run>_attacks.json``, ``plots/<run>_attacks.csv`` (one row per budget, the column ``radius``, one
  column per curve) and ``plots/<run>_attacks.png`` (one panel per family): the run's attack summary.
"""

import os
import shutil
import tempfile
from pathlib import Path

from ..atomic import atomic_path, check_folder, write_json
from ..certify import label_of
from ..npz import write_npz
from .records import read_json_record


def write_result(path, result: dict) -> None:
    write_json(path, result)


def read_result(path) -> dict:
    """An attack family's result.json."""
    return read_json_record(path, {"attack", "methods", "budgets", "certificates_checked"}, "attack result")


def write_edits(out_dir, family: str, edits: dict) -> None:
    """Each attack's edit as the files a run's ``insert:`` / ``exclude:`` read: ``target_<id>.npz`` (targeted:
    the plan's poisons in order; budget B inserts the first B) or ``B<budget>/insert.npz`` and
    ``B<budget>/exclude.txt``; written to a temporary folder, then renamed onto ``out_dir``."""
    out_dir = Path(out_dir)
    check_folder(out_dir)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        for key, edit in edits.items():
            images, labels = edit[0], edit[1]
            if family == "targeted":
                write_npz(tmp / f"target_{key}.npz", {"x": images, "y": labels})
                continue
            folder = tmp / f"B{key}"
            folder.mkdir()
            write_npz(folder / "insert.npz", {"x": images, "y": labels})
            removed = edit[2]
            (folder / "exclude.txt").write_text("".join(f"{i}\n" for i in removed.tolist()))
        os.chmod(tmp, 0o755)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise



def write_curves(path, columns: dict) -> None:
    """The CSV from {column: {budget: value}} (an empty cell where a curve has no value at a budget)."""
    budgets = sorted({b for col in columns.values() for b in col})
    lines = ["radius," + ",".join(columns)]
    for b in budgets:
        lines.append(f"{b}," + ",".join("" if b not in col else f"{col[b]:.6f}" for col in columns.values()))
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")


SERIES_STYLE = {"baseline": {"color": "black", "linestyle": ":"}}


def write_summary(metrics_path, curve_path, plot_path, run, results: list) -> dict:
    """metrics/<run>_attacks.json, plots/<run>_attacks.csv and .png from the families' results; returns the metrics."""
    metrics = summary_metrics(run, results)
    curves = summary_curves(results)
    write_json(metrics_path, metrics)
    write_curves(curve_path, curves)
    plot_attacks(plot_path, run, results)
    return metrics


def read_summary(path) -> dict:
    """metrics/<run>_attacks.json (write_summary's)."""
    return read_json_record(path, {"run", "methods", "attacks"}, "attack summary",
                            "delete it and run snakemake again (attack_summary writes it)")


def summary_metrics(run, results: list) -> dict:
    """metrics/<run>_attacks.json from the families' results: per family its per-budget rows and checks (targeted:
    the tightness of the certificates; label_flip: clean accuracy; backdoor: its settings and clean success)."""
    metrics = {"run": run, "methods": {}, "attacks": {}}
    for res in results:
        entry = {"budgets": res["budgets"], "certificates_checked": res["certificates_checked"],
                 "soundness_violations": 0}  # a violation fails the attack step: a result exists only without one
        if res["attack"] == "targeted":
            entry.update(targets=len(res["targets"]), tightness=res["tightness"])
        elif res["attack"] == "label_flip":
            entry.update(clean_accuracy=res["clean_accuracy"])
        else:
            entry.update({k: res[k] for k in ("target_class", "patch", "triggered", "clean_success_rate")})
        metrics["attacks"][res["attack"]] = entry
        metrics["methods"].update({m: label_of(m) for m in res["methods"]})
    return metrics


def summary_curves(results: list) -> dict:
    """The curves of plots/<run>_attacks.csv: {column: {budget: value}}, per family and method (and the undefended
    model): targets flipped and targets certified; accuracy under label flipping and certified accuracy;
    backdoor success and its certified bound."""
    columns = {}
    for res in results:
        family, methods, rows = res["attack"], res["methods"], res["budgets"]
        every = [*methods, "baseline"]
        if family == "targeted":  # every budget, from the curve
            at = res["curve"]["budget"]
            columns.update({f"targeted_flipped_{m}": dict(zip(at, res["curve"]["success_rate"][m])) for m in every})
            columns.update({f"targeted_certified_{m}": dict(zip(at, res["curve"]["certified"][m])) for m in methods})
        elif family == "label_flip":
            columns.update({f"label_flip_accuracy_{m}": {0: res["clean_accuracy"][m],
                                                         **{r["budget"]: r["accuracy"][m] for r in rows}} for m in every})
            columns.update({f"label_flip_certified_{m}": {r["budget"]: r["certified_accuracy"][m] for r in rows}
                            for m in methods})
        else:
            columns.update({f"backdoor_success_{m}": {0: res["clean_success_rate"][m],
                                                      **{r["budget"]: r["success_rate"][m] for r in rows}}
                            for m in every})
            columns.update({f"backdoor_bound_{m}": {r["budget"]: r["certified_bound"][m] for r in rows}
                            for m in methods})
    return columns


def plot_attacks(path, run, results) -> None:
    """One panel per attack family: success (or accuracy) against budget for each method and the undefended
    model, solid; what the certificates allow, dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, max(1, len(results)), figsize=(5 * max(1, len(results)), 4), dpi=110, squeeze=False)
    for ax, res in zip(axes[0], results):
        family, methods, rows = res["attack"], res["methods"], res["budgets"]
        budgets = [r["budget"] for r in rows]
        colors = {m: f"C{i}" for i, m in enumerate(methods)}
        name = lambda m: "undefended (k=1)" if m == "baseline" else label_of(m)  # noqa: E731
        if family == "targeted":  # every budget, from the curve
            at = res["curve"]["budget"]
            for m in methods:
                ax.step(at, [100 * (1 - c) for c in res["curve"]["certified"][m]], where="post", linestyle="--",
                        linewidth=3, color=colors[m], alpha=0.4, label=f"{name(m)}: not certified")
            for m in [*methods, "baseline"]:
                ax.step(at, [100 * v for v in res["curve"]["success_rate"][m]], where="post", label=f"{name(m)} attack",
                        **SERIES_STYLE.get(m, {"color": colors.get(m)}))
            ax.set_ylabel("targets flipped (%)")
            ax.set_title(f"targeted, hash-aware ({len(res['targets'])} targets)")
        elif family == "label_flip":
            xs = [0, *budgets]
            for m in [*methods, "baseline"]:
                ax.plot(xs, [100 * res["clean_accuracy"][m], *(100 * r["accuracy"][m] for r in rows)], marker="o",
                        label=f"{name(m)} under attack", **SERIES_STYLE.get(m, {"color": colors.get(m)}))
            for m in methods:  # at budget 0, every correct prediction is certified
                ax.plot(xs, [100 * res["clean_accuracy"][m], *(100 * r["certified_accuracy"][m] for r in rows)],
                        linestyle="--", marker=".", color=colors[m], alpha=0.7, label=f"{name(m)} certified")
            ax.set_ylabel("test accuracy (%)")
            ax.set_title("label flipping")
        else:
            xs = [0, *budgets]
            for m in [*methods, "baseline"]:
                ax.plot(xs, [100 * res["clean_success_rate"][m], *(100 * r["success_rate"][m] for r in rows)],
                        marker="o", label=f"{name(m)} attack", **SERIES_STYLE.get(m, {"color": colors.get(m)}))
            for m in methods:  # at budget 0, the bound is the clean rate
                ax.plot(xs, [100 * res["clean_success_rate"][m], *(100 * r["certified_bound"][m] for r in rows)],
                        linestyle="--", marker=".", color=colors[m], alpha=0.7, label=f"{name(m)}: certified bound")
            ax.set_ylabel(f"triggered images -> class {res['target_class']} (%)")
            ax.set_title(f"backdoor ({res['patch']}x{res['patch']} patch)")
        ax.set_xlabel("budget (inserted + removed training samples)")
        ax.set_ylim(-2, 102)  # lines at 0 and 100 % stay visible
        ax.set_xlim(left=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"{run}: attacks against the certificates")
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
