"""Report stage (rules/report.smk): the certified-accuracy table of every run, as text
(``report/summary.txt``) and as a self-contained HTML page (``report/index.html``)."""

import base64
import html
import json
from pathlib import Path

from ..artifacts.attacks import read_summary
from ..artifacts.metrics import load_metrics, rerun_certify
from ..atomic import write_text
from ..errors import PipelineError


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def table_rows(all_metrics: list[dict]):
    """Header and rows: one row per radius, one column per (run, method); values in %."""
    columns = [(m["run"], method) for m in all_metrics for method in m["certified_accuracy"]]
    radii = sorted({int(r) for m in all_metrics for acc in m["certified_accuracy"].values() for r in acc})
    by_key = {(m["run"], method): acc for m in all_metrics for method, acc in m["certified_accuracy"].items()}
    names = {(m["run"], method): label for m in all_metrics for method, label in m["methods"].items()}
    header = ["radius"] + [f"{run} {names[(run, method)]}" for run, method in columns]
    rows = [[str(r)] + [_pct(by_key[c].get(str(r))) for c in columns] for r in radii]
    clean = {(m["run"], method): v for m in all_metrics for method, v in m["clean_accuracy"].items()}
    rows.append(["clean acc."] + [_pct(clean[c]) for c in columns])
    median = {(m["run"], method): (v, m["median_radius_plus_one"][method])
              for m in all_metrics for method, v in m["median_radius"].items()}
    rows.append(["median R"] + ["-" if median[c][0] is None else str(median[c][0]) for c in columns])
    rows.append(["R+1 (orig.)"] + ["-" if median[c][1] is None else str(median[c][1]) for c in columns])
    rows.append(["base acc."] + [_pct(next(m for m in all_metrics if m["run"] == c[0])["base_model_accuracy"])
                                 for c in columns])
    return header, rows


def summary_text(all_metrics: list[dict]) -> str:
    header, rows = table_rows(all_metrics)
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    fmt = lambda row: "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths)))  # noqa: E731
    lines = ["Certified accuracy (%) by radius (inserted + removed training samples); r = 0 is clean accuracy",
             fmt(header), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows]
    for m in all_metrics:
        size = m["partition_size"]
        lines.append(f"{m['run']}: {m['dataset']} {m['method'].upper()} k={m['k']}"
                     + (f" d={m['d']}" if m["method"] == "fa" else "")
                     + (f" versions={m['versions']}" if m.get("versions", 1) > 1 else "")
                     + f", learner {m['learner']}, {m['n_models']} models, {m['n_train']} training / {m['n_test']} test "
                     f"samples, partition size min {size['min']} / mean {size['mean']:.1f} / max {size['max']}")
    lines.append("clean acc.: accuracy of the method's prediction; median R: largest radius with certified accuracy "
                 ">= 50 %; R+1 (orig.) is what the original DPA scripts printed")
    return "\n".join(lines) + "\n"


def attack_lines(attack_metrics: list[dict]) -> list[str]:
    """One line per attacked run and family: the headline of metrics/<run>_attacks.json."""
    lines = []
    for m in attack_metrics:
        names = {**m["methods"], "baseline": "undefended"}
        checked = sum(a["certificates_checked"] for a in m["attacks"].values())
        lines.append(f"{m['run']} attacks: every attacked prediction checked against the certificates "
                     f"({checked} certified predictions), none beaten")
        order = [*m["methods"], "baseline"]  # the run's methods, then the undefended model
        for family in [f for f in ("targeted", "label_flip", "backdoor") if f in m["attacks"]]:
            a = m["attacks"][family]
            last = a["budgets"][-1] if a["budgets"] else None
            if family == "targeted":
                parts = [f"{names[k]} {t['flipped_within_radius']} within radius, {t['flipped_at_radius_plus_one']} at "
                         f"radius + 1, {t['flipped_later']} later, {t['never_flipped']} never"
                         for k, t in a["tightness"].items()]
                lines.append(f"  targeted, {a['targets']} targets flipped: " + "; ".join(parts))
            elif last and family == "label_flip":
                lines.append(f"  label flip, budget {last['budget']}: accuracy " + ", ".join(
                    f"{names[k]} {_pct(last['accuracy'][k])} % (clean {_pct(a['clean_accuracy'][k])})" for k in order))
            elif last:
                lines.append(f"  backdoor, budget {last['budget']}: triggered images to class {a['target_class']} "
                             + ", ".join(f"{names[k]} {_pct(last['success_rate'][k])} %" for k in order))
    return lines


def html_page(all_metrics: list[dict], plot_paths) -> str:
    header, rows = table_rows(all_metrics)
    cells = lambda row, tag: "".join(f"<{tag}>{html.escape(c)}</{tag}>" for c in row)  # noqa: E731
    table = (f"<table><thead><tr>{cells(header, 'th')}</tr></thead><tbody>"
             + "".join(f"<tr>{cells(r, 'td')}</tr>" for r in rows) + "</tbody></table>")
    figures = "".join(
        f"<figure><img alt='{html.escape(Path(p).stem)}' src='data:image/png;base64,"
        f"{base64.b64encode(Path(p).read_bytes()).decode()}'><figcaption>{html.escape(Path(p).name)}</figcaption></figure>"
        for p in plot_paths)
    details = "".join(f"<h3>{html.escape(m['run'])}</h3><pre>{html.escape(json.dumps(m, indent=1))}</pre>"
                      for m in all_metrics)
    style = ("body{font-family:sans-serif;max-width:60em;margin:2em auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:.2em .6em;text-align:right}img{max-width:100%}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>Certified accuracy</title><style>{style}</style>"
            f"</head><body><h1>Certified robustness to training-data poisoning</h1>"
            f"<p>Certified accuracy (%) by radius: inserted + removed training samples. r = 0 is clean accuracy.</p>"
            f"{table}{figures}<h2>Metrics</h2>{details}</body></html>\n")


def write_report(metrics_paths, plot_paths, out_dir, attack_paths=()) -> str:
    all_metrics = load_metrics(metrics_paths)
    attack_metrics = [read_summary(p) for p in attack_paths]
    for plot in map(Path, plot_paths):
        if not plot.is_file():
            if plot.stem.endswith("_attacks"):
                raise PipelineError(f"{plot}: plot not found; run snakemake again (attack_summary writes it)")
            run = plot.stem.removesuffix("_certified_accuracy")
            raise PipelineError(f"{plot}: plot not found; {rerun_certify(plot, run, '--plots')}")
    text = summary_text(all_metrics) + "".join(f"{line}\n" for line in attack_lines(attack_metrics))
    page = html_page(all_metrics, plot_paths)  # both built before either is written: no partial output
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)  # the folder the user named with --out-dir
    write_text(out_dir / "summary.txt", text)
    write_text(out_dir / "index.html", page)
    return text
