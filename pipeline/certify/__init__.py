"""Certificates, one module per method (docs/design.md#certificates); all vectorised over test samples.

The registry: every certificate's name, display label, whether it needs Run-Off Election's run-off data
(which classes each finalist beats in every model: certify/roe.py ``beats``) and the function computing
(prediction int64[n], radius int64[n]) from votes int16[n, n_models], beats bool[n, n_models, 2, C] or None,
labels int64[n], the number of classes and, for FA, the bucket feed.
"""

from . import dpa, fa, roe

METHODS = {
    "dpa": {"label": "DPA", "run_off": False,
            "certify": lambda votes, beats, labels, n_classes, feed: dpa.certify(votes, labels, n_classes)},
    "fa": {"label": "FA", "run_off": False,
           "certify": lambda votes, beats, labels, n_classes, feed: fa.certify(votes, labels, n_classes, feed)},
    "dpa_roe": {"label": "DPA+ROE", "run_off": True,
                "certify": lambda votes, beats, labels, n_classes, feed: roe.certify_dpa(votes, beats, labels,
                                                                                         n_classes)},
    "fa_roe": {"label": "FA+ROE", "run_off": True,
               "certify": lambda votes, beats, labels, n_classes, feed: roe.certify_fa(votes, beats, labels,
                                                                                       n_classes, feed)},
}


def method_names(method: str, run_off: bool) -> list[str]:
    """Certificates of a run: its aggregation (dpa or fa), and Run-Off Election on top if asked."""
    return [method] + ([f"{method}_roe"] if run_off else [])


def needs_run_off(methods) -> bool:
    """Whether any of ``methods`` needs the finalists' beats (the predict stage then adds its run-off pass)."""
    return any(METHODS[m]["run_off"] for m in methods)


def run_off_data(methods, votes, scores, n_classes: int):
    """The finalists' beats from every model's votes int[n, m] and scores float[n, m, C] when one of ``methods``
    needs them, else None."""
    return roe.beats_from_logits(votes, scores, n_classes) if needs_run_off(methods) else None


def needs_feed(methods) -> bool:
    """Whether any of ``methods`` needs the bucket -> models feed (FA's)."""
    return any(m.startswith("fa") for m in methods)


def label_of(name: str, versions: int = 1) -> str:
    """Display name: dpa -> DPA, fa_roe -> FA+ROE; DPA with several versions per partition -> DPA*."""
    label = METHODS[name]["label"] if name in METHODS else name.upper()
    return label.replace("DPA", "DPA*", 1) if versions > 1 else label
