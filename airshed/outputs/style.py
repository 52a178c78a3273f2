"""Reproducible figure style and saving for airshed's maps and plots.

Every figure is a :class:`matplotlib.figure.Figure` drawn on an Agg canvas (never through pyplot, so no
GUI backend and no global figure registry are involved) inside :func:`figure_style`, which starts from
matplotlib's defaults -- whatever the user's ``matplotlibrc`` says -- and fixes the fonts (DejaVu, shipped
with matplotlib), the resolution and the SVG hash salt. :func:`save_figure` writes atomically and strips
the creation date and software version from the file metadata, so the same run gives byte-identical PNG
and PDF files with a given matplotlib version.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from pathlib import Path

import matplotlib as mpl
import matplotlib.style
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from airshed.atomic_files import OUTPUT_FOLDER, Destination, atomic_path
from airshed.errors import AirshedInputError

DPI = 110
"""Resolution of saved figures, dots per inch."""

FORMATS = ("png", "pdf", "svg")
"""File formats :func:`save_figure` writes."""

UNIT_LABELS = {"ug m-3": "µg m⁻³", "1": "", "person ug m-3": "person µg m⁻³", "kg": "kg", "t": "t"}
"""CF unit strings as printed on figures."""

_RC = {
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],
    "font.size": 9.0,
    "axes.titlesize": 10.0,
    "figure.titlesize": 11.0,
    "legend.fontsize": 8.0,
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    "savefig.facecolor": "white",
    "figure.facecolor": "white",
    "svg.hashsalt": "airshed",
    "svg.fonttype": "path",
    "pdf.fonttype": 42,
    "image.interpolation": "nearest",
    "axes.unicode_minus": True,
}

_NO_METADATA = {
    "png": {"Software": None},
    "pdf": {"Creator": None, "Producer": None, "CreationDate": None},
    "svg": {"Creator": None, "Date": None},
}


@contextlib.contextmanager
def figure_style() -> Iterator[None]:
    """Matplotlib's default style plus airshed's fixed fonts and resolution, for one block."""
    with mpl.style.context("default", after_reset=True), mpl.rc_context(_RC):
        yield


def new_figure(width_in: float, height_in: float) -> Figure:
    """Create an Agg-backed figure of the given size, inches (call inside :func:`figure_style`)."""
    fig = Figure(figsize=(width_in, height_in), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def unit_label(units: str | None) -> str:
    """Print form of a CF unit string (``ug m-3`` -> ``µg m⁻³``)."""
    if not units:
        return ""
    return UNIT_LABELS.get(units, units)


def _freeze_layout(fig: Figure) -> None:
    """Solve the constrained layout once and keep it.

    Constrained layout iterates from the previous solution at every draw, so saving one figure twice
    (PNG then PDF) would move axes by ~1e-6 inch and change the bytes of the second file.
    """
    if fig.get_layout_engine() is not None:
        fig.draw_without_rendering()
        fig.set_layout_engine("none")


def save_figure(fig: Figure, path: Path, fmt: str | None = None, dpi: float = DPI,
                destination: Destination = OUTPUT_FOLDER) -> Path:
    """Write ``fig`` atomically to ``path`` without timestamps in its metadata.

    Parameters
    ----------
    fig
        The figure.
    path
        Target file; its folder must exist.
    fmt
        ``"png"``, ``"pdf"`` or ``"svg"``; default from the file suffix.
    dpi
        Raster resolution, dots per inch.
    destination
        Names the option that chooses ``path`` in the error for a folder that is missing or not writable.
    """
    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    if fmt not in FORMATS:
        raise AirshedInputError(f"figure format {fmt!r} of {path} is not supported; use one of {FORMATS}")
    with figure_style(), atomic_path(path, destination=destination) as tmp:
        _freeze_layout(fig)
        fig.savefig(tmp, format=fmt, dpi=dpi, metadata=_NO_METADATA[fmt])
    return path


def figure_png_bytes(fig: Figure, dpi: float = DPI) -> bytes:
    """PNG encoding of ``fig`` (no metadata timestamps), for embedding in HTML."""
    buffer = io.BytesIO()
    with figure_style():
        _freeze_layout(fig)
        fig.savefig(buffer, format="png", dpi=dpi, metadata=_NO_METADATA["png"])
    return buffer.getvalue()
