"""Small matplotlib helpers for the benchmark plots (PNG, drawn from the stored results only).

matplotlib comes with the ``bench`` extra (``make bench`` installs it). Without it
the page is still rendered; the plots already in ``docs/benchmarks/`` are kept.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def figure(panels: int = 1, width: float = 5.2, height: float = 3.6) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, panels, figsize=(width * panels, height), squeeze=False)
    for ax in axes[0]:
        ax.grid(True, which="major", alpha=0.3)
        ax.grid(True, which="minor", alpha=0.1)
    return fig, (axes[0] if panels > 1 else axes[0][0])


def save(fig: Any, outdir: Path, name: str, note: str | None = None) -> str:
    import matplotlib.pyplot as plt

    if note:
        fig.text(0.01, 0.01, note, fontsize=7, color="0.4")
    fig.tight_layout(rect=(0, 0.03 if note else 0, 1, 1))
    outdir.mkdir(parents=True, exist_ok=True)
    # Fixed metadata, so that rendering the same results twice gives the same bytes.
    fig.savefig(outdir / name, dpi=100, metadata={"Software": None})
    plt.close(fig)
    return name


def plain_numbers(ax: Any) -> None:
    """Tick labels as plain numbers (1, 10, 100, 0.5) rather than powers of ten, on log axes too."""
    from matplotlib.ticker import FuncFormatter

    fmt = FuncFormatter(lambda v, _pos: f"{v:,.10g}")
    for axis in (ax.xaxis, ax.yaxis):
        if axis.get_scale() == "log":
            axis.set_major_formatter(fmt)
            axis.set_minor_formatter(FuncFormatter(lambda v, _pos: ""))
