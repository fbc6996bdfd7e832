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
import numbers
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Iterable, Literal, Sequence

import numpy as np

from actlab._progress import Progress  # noqa: F401  (re-exported for the experiments)

Mode = Literal["tiny", "quick", "full"]
MODES: tuple[str, ...] = ("tiny", "quick", "full")
Status = Literal["confirmed", "not confirmed", "inconclusive", "error"]


#: The level of every statistical decision: a clause holds (or fails) when the two-sided
#: ``1 - LEVEL`` confidence interval of its effect lies wholly on one side. A verdict needs every
#: clause to hold, so "confirmed" is an intersection-union test and keeps this level.
LEVEL = 0.05

Role = Literal["rule", "sanity"]


@dataclass(frozen=True)
class Check:
    """One clause of a decision rule, with the figures behind it.

    ``state`` is ``"pass"`` when the claim's direction holds at the stated level, ``"fail"``
    when the opposite holds at that level, ``"unclear"`` otherwise (including "the test is
    undefined"). ``effect`` is the estimated effect in the clause's own units and ``ci`` its
    two-sided ``1 - LEVEL`` confidence interval; ``test`` names how they were computed.
    ``role="sanity"`` marks an identity or definitional check: it is shown apart and never
    decides a verdict.
    """

    description: str
    state: Literal["pass", "fail", "unclear"]
    detail: str = ""
    effect: float | None = None
    ci: tuple[float, float] | None = None
    test: str = ""
    role: Role = "rule"

    def text(self) -> str:
        mark = {"pass": "holds", "fail": "fails", "unclear": "unclear"}[self.state]
        return f"{self.description}: {mark}" + (f" ({self.detail})" if self.detail else "")

    def as_sanity(self) -> "Check":
        """The same check, shown as a sanity check (never deciding the verdict)."""
        return Check(self.description, self.state, self.detail, self.effect, self.ci, self.test, "sanity")


@dataclass(frozen=True)
class Verdict:
    """The outcome of a decision rule: a status and the reason, with the checks behind it.

    ``checks`` are the rule's clauses (they decide ``status``); ``sanity`` are identities and
    definitional checks shown beside it that never decide it.
    """

    status: Status
    reason: str
    checks: tuple[Check, ...] = ()
    sanity: tuple[Check, ...] = ()

    @staticmethod
    def from_checks(checks: Sequence[Check], *, require: str = "all", sanity: Sequence[Check] = (),
                    note: str = "") -> "Verdict":
        """Combine the rule's checks: confirmed if every (or ``require="any"``: some) check
        passes, not confirmed if one fails (``"any"``: all fail), else inconclusive.

        ``sanity`` checks are carried along for the report and never change the status;
        ``note`` is appended to the reason (figures reported outside the rule).
        """
        sanity = tuple(c.as_sanity() for c in sanity)
        if not checks:
            return Verdict("inconclusive", "no checks could be made" + (f"; {note}" if note else ""), (), sanity)
        reasons = "; ".join(c.text() for c in checks) + (f"; {note}" if note else "")
        states = [c.state for c in checks]
        if require == "any":
            status: Status = ("confirmed" if "pass" in states else
                              "not confirmed" if all(s == "fail" for s in states) else "inconclusive")
        else:
            status = ("confirmed" if all(s == "pass" for s in states) else
                      "not confirmed" if "fail" in states else "inconclusive")
        return Verdict(status, reasons, tuple(checks), sanity)


def _finite(values: Iterable[Any]) -> np.ndarray:
    """The finite numbers among ``values`` (None, strings such as "diverged", NaN and inf dropped)."""
    return np.asarray([float(x) for x in values if isinstance(x, numbers.Real) and not isinstance(x, bool)
                       and math.isfinite(x)], dtype=float)


def mean_std(values: Iterable[float]) -> tuple[float, float]:
    """Mean and sample standard deviation over seeds, ignoring non-finite values (NaN if none)."""
    v = _finite(values)
    if v.size == 0:
        return math.nan, math.nan
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


def fmt_ms(values: Iterable[float], digits: int = 3) -> str:
    """``"m ± s (n)"`` over seeds: mean ± sample standard deviation of the n finite values;
    ``"no finite value (0/k)"`` when none is finite, ``(n/k)`` when some are not."""
    vals = list(values)
    v = _finite(vals)
    if v.size == 0:
        return f"no finite value (0/{len(vals)})"
    m, s = mean_std(v)
    count = f" ({v.size}/{len(vals)})" if v.size != len(vals) else ""
    return f"{m:.{digits}g} ± {s:.2g}{count}"


def t_interval(values: Sequence[float], level: float = LEVEL) -> tuple[float, float, float]:
    """(mean, low, high): the mean of ``values`` with its two-sided ``1 - level`` Student-t interval."""
    from scipy import stats

    v = _finite(values)
    if v.size < 2:
        m = float(v.mean()) if v.size else math.nan
        return m, math.nan, math.nan
    m, se = float(v.mean()), float(v.std(ddof=1) / math.sqrt(v.size))
    h = float(stats.t.ppf(1 - level / 2, v.size - 1)) * se
    return m, m - h, m + h


def welch(a: Sequence[float], b: Sequence[float], level: float = LEVEL) -> tuple[float, float, float, float]:
    """(difference of means a - b, CI low, CI high, degrees of freedom): Welch's two-sample t
    interval at two-sided level ``1 - level``. The interval is NaN when it is undefined (an arm
    with fewer than two values, or both arms without spread)."""
    from scipy import stats

    xa, xb = _finite(a), _finite(b)
    diff = float(xa.mean() - xb.mean()) if xa.size and xb.size else math.nan
    if xa.size < 2 or xb.size < 2:
        return diff, math.nan, math.nan, math.nan
    va, vb = xa.var(ddof=1) / xa.size, xb.var(ddof=1) / xb.size
    se2 = va + vb
    if se2 == 0.0:
        return diff, math.nan, math.nan, math.nan
    df = se2 ** 2 / ((va ** 2 / (xa.size - 1) if va else 0.0) + (vb ** 2 / (xb.size - 1) if vb else 0.0))
    h = float(stats.t.ppf(1 - level / 2, df)) * math.sqrt(se2)
    return diff, diff - h, diff + h, float(df)


def compare(
    description: str,
    a: Sequence[float],
    b: Sequence[float],
    *,
    expect: Literal["less", "greater"],
    factor: float = 1.0,
    log: bool = False,
    level: float = LEVEL,
) -> Check:
    """Is ``a`` ``expect`` than ``factor * b`` over seeds, at the stated level?

    The test is Welch's two-sample t: the difference of means ``mean(a) - mean(factor * b)``
    and its two-sided ``1 - level`` confidence interval with the t-quantile at the
    Welch-Satterthwaite degrees of freedom. The clause holds when the interval lies wholly on
    the claimed side of 0, fails when it lies wholly on the other side, and is unclear
    otherwise - also when the test is undefined (an arm with fewer than two finite values, or
    both arms with zero spread: then no difference can be called clear). With ``log=True``
    the comparison is made on log10 values (for quantities that span decades); ``factor``
    multiplies before the log.
    """
    def tr(v: Sequence[float], f: float = 1.0) -> np.ndarray:
        arr = _finite(v) * f
        if log:
            arr = np.log10(np.clip(arr, 1e-300, None))
        return arr

    xa, xb = tr(a), tr(b, factor)
    test = f"Welch t, two-sided {1 - level:.0%} CI" + (" on log10" if log else "")
    if xa.size == 0 or xb.size == 0:
        return Check(description, "unclear", "no finite measurements", test=test)
    diff, lo, hi, df = welch(xa, xb, level)
    unit = "log10 " if log else ""
    detail = f"{unit}{xa.mean():.4g} vs {unit}{xb.mean():.4g}" + (f" (= {factor:g} x b)" if factor != 1 and not log else "")
    if not math.isfinite(lo):
        why = ("fewer than 2 finite values in an arm" if min(xa.size, xb.size) < 2
               else "both arms have zero spread")
        return Check(description, "unclear", f"{detail}; cannot decide: {why}, the test is undefined",
                     diff, None, test)
    detail += f"; difference {diff:.3g}, {1 - level:.0%} CI [{lo:.3g}, {hi:.3g}], df {df:.1f}"
    good = hi < 0 if expect == "less" else lo > 0
    bad = lo > 0 if expect == "less" else hi < 0
    return Check(description, "pass" if good else "fail" if bad else "unclear", detail, diff, (lo, hi), test)


def threshold(description: str, values: Sequence[float], *, below: float | None = None,
              above: float | None = None) -> Check:
    """Do all seeds sit below (or above) a fixed threshold? Pass if all do, fail if none do.

    This is a rule on every seed, not a test on the mean; the mean's t interval is reported
    beside it as the effect.
    """
    v = _finite(values)
    test = "every seed vs a fixed threshold"
    if not v.size:
        return Check(description, "unclear", "no finite measurements", test=test)
    if below is not None:
        ok = v < below
        detail = f"{fmt_ms(values)} vs < {below:g}"
    elif above is not None:
        ok = v > above
        detail = f"{fmt_ms(values)} vs > {above:g}"
    else:
        raise ValueError("threshold() needs below= or above=")
    state = "pass" if ok.all() else "fail" if not ok.any() else "unclear"
    m, lo, hi = t_interval(v)
    return Check(description, state, detail, m, (lo, hi) if math.isfinite(lo) else None, test)


def mean_beyond(description: str, values: Sequence[float], *, below: float | None = None,
                above: float | None = None, level: float = LEVEL) -> Check:
    """Is the mean over seeds below (or above) a fixed value, at the stated level?

    One-sample t: the mean's two-sided ``1 - level`` interval wholly on the claimed side holds,
    wholly on the other side fails, else unclear (also when it is undefined).
    """
    if (below is None) == (above is None):
        raise ValueError("mean_beyond() needs exactly one of below= or above=")
    m, lo, hi = t_interval(values, level)
    bound = below if below is not None else above
    test = f"one-sample t, two-sided {1 - level:.0%} CI"
    if not math.isfinite(m):
        return Check(description, "unclear", "no finite measurements", test=test)
    if not math.isfinite(lo):
        return Check(description, "unclear", f"mean {m:.3g}; cannot decide: the interval is undefined", m, None, test)
    detail = f"mean {m:.3g}, {1 - level:.0%} CI [{lo:.3g}, {hi:.3g}] vs {'<' if below is not None else '>'} {bound:g}"
    if below is not None:
        state = "pass" if hi < below else "fail" if lo > below else "unclear"
    else:
        state = "pass" if lo > above else "fail" if hi < above else "unclear"  # type: ignore[operator]
    return Check(description, state, detail, m, (lo, hi), test)


def proportion(description: str, successes: int, trials: int, *, below: float | None = None,
               above: float | None = None, level: float = LEVEL) -> Check:
    """Is a pooled share ``successes / trials`` below (or above) a fixed value, at the stated level?

    The test is the exact (Clopper-Pearson) binomial interval at two-sided ``1 - level``: it
    holds when the interval lies wholly on the claimed side, fails when wholly on the other,
    and is unclear otherwise (also with no trials). Pool counts over seeds (and say so).
    """
    from scipy import stats

    if (below is None) == (above is None):
        raise ValueError("proportion() needs exactly one of below= or above=")
    test = f"exact binomial (Clopper-Pearson), two-sided {1 - level:.0%} CI"
    if trials <= 0:
        return Check(description, "unclear", "no units to count (0 trials)", test=test)
    ci = stats.binomtest(int(successes), int(trials)).proportion_ci(1 - level, method="exact")
    lo, hi, share = float(ci.low), float(ci.high), successes / trials
    bound = below if below is not None else above
    detail = (f"{successes}/{trials} = {share:.3g}, {1 - level:.0%} CI [{lo:.3g}, {hi:.3g}] vs "
              f"{'<' if below is not None else '>'} {bound:g}")
    if below is not None:
        state = "pass" if hi < below else "fail" if lo > below else "unclear"
    else:
        state = "pass" if lo > above else "fail" if hi < above else "unclear"  # type: ignore[operator]
    return Check(description, state, detail, share, (lo, hi), test)


def to_target(v: Any, cap: float) -> float:
    """Time (steps, epochs) to a target of one run as stored in the numbers: a number is itself,
    ``None`` (not reached) counts as ``cap``, ``"diverged"`` as infinite (dropped by the tests)."""
    if v == "diverged":
        return math.inf
    return cap if v is None else float(v)


def best_setting(per_setting: Sequence[Sequence[Any]], cap: float) -> int:
    """Index of the setting (e.g. learning rate) whose runs reach the target soonest on average
    (:func:`to_target`; ties: the first, i.e. the smaller learning rate)."""
    return int(np.argmin([np.mean([to_target(v, cap) for v in runs]) for runs in per_setting]))


def fmt_to_target(runs: Sequence[Any], cap: float) -> str:
    """``"m ± s (r/k)"``: time to target over seeds (not reached = cap) and how many of k reached it."""
    reached = sum(isinstance(v, (int, float)) and not isinstance(v, bool) for v in runs)
    return f"{fmt_ms([to_target(v, cap) for v in runs])} ({reached}/{len(runs)} reached)"


def inside_grid(label: str, best: int, grid: Sequence[float]) -> Check:
    """Sanity check that a tuned setting's best value ``grid[best]`` lies inside its grid, not at an
    edge (an edge optimum means the true optimum may lie beyond it: widen the grid).

    ``label`` names the tuned arm ("tanh", "binary, MSE"). Shown apart, it never decides a verdict,
    but the report flags it when it fails.
    """
    inside = 0 < best < len(grid) - 1
    edge = "" if inside else " - the lowest value" if best == 0 else " - the highest value"
    detail = f"best {grid[best]:g} of {', '.join(f'{g:g}' for g in grid)}{edge}"
    return Check(f"{label}: best value inside the grid, not at its edge", "pass" if inside else "fail", detail,
                 float(best), None, "index of the best value in the grid", "sanity")


def lr_grid_rows(runs: dict[str, Sequence[Sequence[Any]]], lrs: Sequence[float], cap: float,
                 unit: str) -> list[dict[str, Any]]:
    """Report rows for a learning-rate grid: per activation, time to target at each lr (:func:`fmt_to_target`),
    the best lr (:func:`best_setting`) and the time there. ``runs[act][i]`` are the seeds' runs at ``lrs[i]``."""
    rows = []
    for act, per_lr in runs.items():
        best = best_setting(per_lr, cap)
        row: dict[str, Any] = {"activation": act}
        row.update({f"lr {lr:g}: {unit} (reached)": fmt_to_target(per_lr[i], cap) for i, lr in enumerate(lrs)})
        row["best lr"] = lrs[best]
        row[f"{unit} at best lr"] = fmt_ms([to_target(v, cap) for v in per_lr[best]])
        rows.append(row)
    return rows


def ratio_text(check: Check, label: str) -> str:
    """``"<label> 2.3 (95% CI 1.9 to 2.8)"``: the ratio b / a read from a ``compare(..., log=True)``
    check of a against b (its effect is log10 a - log10 b)."""
    if check.effect is None or not math.isfinite(check.effect):
        return f"{label} undefined"
    ci = f" (95% CI {10 ** -check.ci[1]:.2g} to {10 ** -check.ci[0]:.2g})" if check.ci else ""
    return f"{label} {10 ** -check.effect:.2g}{ci}"


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
    #: the source of the claim: paper, figure or table
    source: ClassVar[str] = ""
    #: what the source found, in its own setting (shown beside what we found)
    source_found: ClassVar[str] = ""
    #: how this experiment's setup differs from the source's ("" when it repeats it); see :meth:`proxy`
    proxy_note: ClassVar[str] = ""
    #: data sets the experiment needs beyond what ships (e.g. "mnist"); the lab skips it with a clear note when missing
    needs: ClassVar[tuple[str, ...]] = ()
    #: seconds a run took per mode, as last measured on one core (the lab's parallel runner starts
    #: the longest first, so a long experiment does not start last); scheduling only, never a result
    expected_seconds: ClassVar[dict[str, float]] = {}

    #: the setup per mode (``"tiny"``, ``"quick"``, ``"full"``), written at the top of the file
    settings_by_mode: ClassVar[dict[str, dict[str, Any]]] = {}

    def settings(self, mode: Mode) -> dict[str, Any]:
        if mode not in self.settings_by_mode:
            raise ValueError(f"{self.name}: no settings for mode {mode!r}; valid: {', '.join(self.settings_by_mode)}")
        return dict(self.settings_by_mode[mode])

    def proxy(self, mode: Mode) -> str:
        """How the setup of ``mode`` differs from the source's ("" when it repeats the source's)."""
        return self.proxy_note

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
    source: str = ""
    source_found: str = ""
    proxy: str = ""
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
