"""Progress bars of the pipeline (rich), or nothing when they are switched off."""

from __future__ import annotations

from collections.abc import Callable


class ProgressBar:
    """Rich progress bar over ``total`` steps, a context manager that yields ``advance()``.

    A no-op (``advance`` does nothing) when ``enabled`` is False, so callers need no branch.
    """

    def __init__(self, enabled: bool, total: int, label: str, unit: str = "h"):
        self.enabled, self.total, self.label, self.unit = enabled, total, label, unit

    def __enter__(self) -> Callable[[], None]:
        if not self.enabled:
            return lambda: None
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self._bar = Progress(TextColumn("{task.description}"), BarColumn(),
                             TextColumn(f"{{task.completed}}/{{task.total}} {self.unit}"),
                             TimeElapsedColumn(), TimeRemainingColumn(), transient=False)
        self._bar.__enter__()
        task = self._bar.add_task(self.label, total=self.total)
        return lambda: self._bar.advance(task)

    def __exit__(self, *exc) -> bool:
        if self.enabled:
            self._bar.__exit__(*exc)
        return False
