"""Certificates, one module per method (docs/design.md#certificates); all vectorised over test samples.

The registry: every certificate's name, display label, whether it needs every model's scores (logits)
and the function computing (prediction int64[n], radius int64[n]) from votes int16[n, n_models], logits
float32[n, n_models, C] or None, labels int64[n], the number of classes and, for FA, the bucket feed.
"""

from . import dpa, fa, roe

METHODS = {
    "dpa": {"label": "DPA", "needs_logits": False,
            "certify": lambda votes, logits, labels, n_classes, feed: dpa.certify(votes, labels, n_classes)},
    "fa": {"label": "FA", "needs_logits": False,
           "certify": lambda votes, logits, labels, n_classes, feed: fa.certify(votes, labels, n_classes, feed)},
    "dpa_roe": {"label": "DPA+ROE", "needs_logits": True,
                "certify": lambda votes, logits, labels, n_classes, feed: roe.certify_dpa(votes, logits, labels,
                                                                                          n_classes)},
    "fa_roe": {"label": "FA+ROE", "needs_logits": True,
               "certify": lambda votes, logits, labels, n_classes, feed: roe.certify_fa(votes, logits, labels,
                                                                                        n_classes, feed)},
}


def method_names(method: str, run_off: bool) -> list[str]:
    """Certificates of a run: its aggregation (dpa or fa), and Run-Off Election on top if asked."""
    return [method] + ([f"{method}_roe"] if run_off else [])


def needs_logits(methods) -> bool:
    """Whether any of ``methods`` needs every model's scores (the predict stage then stores them)."""
    return any(METHODS[m]["needs_logits"] for m in methods)


def needs_feed(methods) -> bool:
    """Whether any of ``methods`` needs the bucket -> models feed (FA's)."""
    return any(m.startswith("fa") for m in methods)


def label_of(name: str, versions: int = 1) -> str:
    """Display name: dpa -> DPA, fa_roe -> FA+ROE; DPA with several versions per partition -> DPA*."""
    label = METHODS[name]["label"] if name in METHODS else name.upper()
    return label.replace("DPA", "DPA*", 1) if versions > 1 else label
