"""What an experiment is: a claim, its settings, a measurement, a decision rule and a figure.

An experiment file defines one subclass of :class:`Experiment`:

* ``name``, ``title`` and ``claim`` (the claim in plain words, as the classic lesson states it);
* ``settings(mode)``: the setup, written at the top of the file with units in comments, for the
  modes ``"tiny"`` (tests: seconds), ``"quick"`` (the default report: well under a minute) and
  ``"full"`` (more seeds and data);
* ``measure(settings, progress)``: runs the training / probing and returns plain numbers
  (JSON-able: floats, lists, dicts), every seed kept;
* ``decide(numbers)``: a pure function of those numbers that returns a :class:`Verdict`; a test
  changes the numbers and checks the verdict follows;
* ``figure(numbers, fig)``: draws the figure from the same numbers;
* ``counterfactual(numbers)``: the numbers with the effect reversed, so tests can show that the
  verdict follows from the numbers.

The runner (:func:`actlab.experiments.runner.run_experiments`) calls them in that order, catches any error
as a result (an experiment that fails reports ``"error"``, the lab goes on) and the report shows
claim, setup, figure, numbers and verdict.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, ClassVar, Iterable, Literal, Sequence

import numpy as np

from actlab._progress import Progress  # noqa: F401  (re-exported for the experiments)

Mode = Literal["tiny", "quick", "full"]
MODES: tuple[str, ...] = ("tiny", "quick", "full")
Status = Literal["confirmed", "not confirmed", "inconclusive", "error"]


@dataclass(frozen=True)
class Verdict:
    """The outcome of a decision rule: a status and the reason, with the figures behind it."""

    status: Status
    reason: str

    @staticmethod
    def from_checks(checks: Sequence["Check"], *, require: str = "all") -> "Verdict":
        """Combine checks: confirmed if every (or ``require="any"``: some) check passes clearly,
        not confirmed if one clearly fails, else inconclusive.
        """
        if not checks:
            return Verdict("inconclusive", "no checks could be made")
        reasons = "; ".join(c.text() for c in checks)
        states = [c.state for c in checks]
        if require == "any":
            if "pass" in states:
                return Verdict("confirmed", reasons)
            if all(s == "fail" for s in states):
                return Verdict("not confirmed", reasons)
            return Verdict("inconclusive", reasons)
        if all(s == "pass" for s in states):
            return Verdict("confirmed", reasons)
        if "fail" in states:
            return Verdict("not confirmed", reasons)
        return Verdict("inconclusive", reasons)


@dataclass(frozen=True)
class Check:
    """One comparison in a decision rule.

    ``state`` is ``"pass"`` when the claim's direction holds by a clear margin, ``"fail"`` when
    the opposite holds by a clear margin, ``"unclear"`` otherwise.
    """

    description: str
    state: Literal["pass", "fail", "unclear"]
    detail: str = ""

    def text(self) -> str:
        mark = {"pass": "holds", "fail": "fails", "unclear": "unclear"}[self.state]
        return f"{self.description}: {mark}" + (f" ({self.detail})" if self.detail else "")


def mean_std(values: Iterable[float]) -> tuple[float, float]:
    """Mean and sample standard deviation over seeds, ignoring non-finite values (NaN if none)."""
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=float)
    if v.size == 0:
        return math.nan, math.nan
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


def fmt_ms(values: Iterable[float], digits: int = 3) -> str:
    """``"m ± s"`` over seeds."""
    m, s = mean_std(values)
    return f"{m:.{digits}g} ± {s:.2g}"


def compare(
    description: str,
    a: Sequence[float],
    b: Sequence[float],
    *,
    expect: Literal["less", "greater"],
    factor: float = 1.0,
    z: float = 2.0,
    log: bool = False,
) -> Check:
    """Is ``a`` clearly ``expect`` than ``factor * b`` over seeds?

    "Clearly" means the gap between the means is larger than ``z`` standard errors of the
    difference (Welch), so run-to-run noise alone cannot flip it. With ``log=True`` the
    comparison is made on log10 values (for quantities that span decades, such as gradient
    norms); ``factor`` then multiplies before the log.
    """
    def tr(v: Sequence[float], f: float = 1.0) -> np.ndarray:
        arr = np.asarray([x * f for x in v if x is not None and math.isfinite(x)], dtype=float)
        if log:
            arr = np.log10(np.clip(arr, 1e-300, None))
        return arr

    xa, xb = tr(a), tr(b, factor)
    if xa.size == 0 or xb.size == 0:
        return Check(description, "unclear", "no finite measurements")
    diff = xa.mean() - xb.mean()
    se = math.sqrt((xa.var(ddof=1) / xa.size if xa.size > 1 else 0.0) + (xb.var(ddof=1) / xb.size if xb.size > 1 else 0.0))
    margin = z * se
    unit = "log10 " if log else ""
    detail = f"{unit}{xa.mean():.4g} vs {unit}{xb.mean():.4g}" + (f" x {factor:g}" if factor != 1 and not log else "")
    detail += f", margin {margin:.2g}"
    good = diff < -margin if expect == "less" else diff > margin
    bad = diff > margin if expect == "less" else diff < -margin
    return Check(description, "pass" if good else "fail" if bad else "unclear", detail)


def threshold(description: str, values: Sequence[float], *, below: float | None = None, above: float | None = None) -> Check:
    """Do all seeds sit below (or above) a fixed threshold? Pass if all do, fail if none do."""
    v = [x for x in values if x is not None and math.isfinite(x)]
    if not v:
        return Check(description, "unclear", "no finite measurements")
    if below is not None:
        ok = [x < below for x in v]
        detail = f"{fmt_ms(v)} vs < {below:g}"
    elif above is not None:
        ok = [x > above for x in v]
        detail = f"{fmt_ms(v)} vs > {above:g}"
    else:
        raise ValueError("threshold() needs below= or above=")
    state = "pass" if all(ok) else "fail" if not any(ok) else "unclear"
    return Check(description, state, detail)


# Experiments call ``progress(fraction_done, message)`` between units of work (actlab._progress).


def _no_progress(fraction: float, message: str) -> None:
    return None


class Experiment:
    """Base class of a lab experiment (see the module docstring)."""

    name: ClassVar[str]
    title: ClassVar[str]
    claim: ClassVar[str]
    #: what is measured and how the verdict is decided, in plain words (shown in the report)
    method: ClassVar[str] = ""
    #: data sets the experiment needs beyond what ships (e.g. "mnist"); the lab skips it with a clear note when missing
    needs: ClassVar[tuple[str, ...]] = ()

    #: the setup per mode (``"tiny"``, ``"quick"``, ``"full"``), written at the top of the file
    settings_by_mode: ClassVar[dict[str, dict[str, Any]]] = {}

    def settings(self, mode: Mode) -> dict[str, Any]:
        if mode not in self.settings_by_mode:
            raise ValueError(f"{self.name}: no settings for mode {mode!r}; valid: {', '.join(self.settings_by_mode)}")
        return dict(self.settings_by_mode[mode])

    def measure(self, settings: dict[str, Any], progress: Progress = _no_progress) -> dict[str, Any]:
        raise NotImplementedError

    def decide(self, numbers: dict[str, Any]) -> Verdict:
        raise NotImplementedError

    def figure(self, numbers: dict[str, Any], fig: Any) -> None:
        """Draw on the matplotlib ``Figure`` ``fig`` (already created, empty)."""
        raise NotImplementedError

    def table(self, numbers: dict[str, Any]) -> list[dict[str, Any]]:
        """Rows for the report's numbers table (default: none beyond the JSON)."""
        return []

    def counterfactual(self, numbers: dict[str, Any]) -> dict[str, Any]:
        """The same numbers with the measured effect reversed (e.g. the two arms swapped).

        Tests feed it to :meth:`decide` to show the verdict follows the numbers: a confirmed
        claim must come out differently on its counterfactual.
        """
        raise NotImplementedError


@dataclass
class ExperimentResult:
    """Everything the report shows for one experiment."""

    name: str
    title: str
    claim: str
    method: str
    mode: str
    settings: dict[str, Any]
    numbers: dict[str, Any]
    verdict: Verdict
    table: list[dict[str, Any]] = field(default_factory=list)
    figure_png: bytes | None = None
    seconds: float = 0.0
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("figure_png")
        d["verdict"] = asdict(self.verdict)
        return _jsonable(d)


def _jsonable(obj: Any) -> Any:
    from actlab._json import jsonable

    return jsonable(obj)
