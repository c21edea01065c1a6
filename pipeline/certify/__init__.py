"""Certificates, one module per method. All functions are vectorised over test samples."""


def method_names(method: str, run_off: bool) -> list[str]:
    """Certificates of a run: its aggregation (dpa or fa), and Run-Off Election on top if asked."""
    return [method] + ([f"{method}_roe"] if run_off else [])
