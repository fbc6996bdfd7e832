"""One playground run: the lab builds, initialises and trains the net, the probe measures it, and
the session turns the latest measurements into a *frame* (plain JSON) for the browser.

The training loop is the lab's :func:`actlab.lab.train`, run in a worker thread with a
:class:`~actlab.lab.train.Callback` that pauses it (play / pause / step) and, at most every
``frame_interval`` seconds, builds a frame from the model and the probe.  Nothing here measures a
statistic of its own: losses and errors come from :func:`actlab.lab.train.evaluate`, gradient
norms, dead and saturated fractions and findings from :class:`actlab.Probe`, the predicted
gradient line from :func:`actlab.theory.gradient_profile`, saturated regions from
:func:`actlab.plot.activations.curves`.  What the frame adds is only what is drawn: the
decision surface and each hidden unit's output over the plane, activation histograms and
predictions on sample images.
"""

from __future__ import annotations

import base64
import math
import threading
import time
import warnings
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor, nn

from actlab.activations import get as get_spec
from actlab.activations import spec_for_module
from actlab.lab.data import Dataset, load_dataset
from actlab.lab.init import init_weights
from actlab.lab.models import MLP
from actlab.lab.train import Callback, TrainConfig, evaluate, train
from actlab.play.config import FEATURES, PlayConfig
from actlab.probe import Probe
from actlab.probe.quantities.dead import dead_on_data
from actlab.probe.quantities.histogram import LIMIT, histogram
from actlab.probe.quantities.inactive import inactive_units

# Sizes of what is drawn (not of what is measured): kept small so a frame is ~10-30 kB of JSON.
SURFACE = 48          # decision surface: SURFACE x SURFACE grid over the data's square
THUMB = 16            # each hidden unit's output over the plane: THUMB x THUMB
MAX_THUMB_LAYERS, MAX_THUMB_UNITS = 10, 16
DISPLAY_BATCH = 512   # training examples the histograms and the dead-unit map are taken over
SAMPLE_IMAGES = 12    # image sets: test images whose predictions are shown
EVAL_MAX = 1000       # frame losses over at most this many examples per split (a fixed subset)
OFF_CENTRE_MAX = 0.1  # |mean| / rms of the weights beyond which no theory line is drawn
FINDINGS_EVERY = 0.5  # seconds between runs of the probe's detectors while training (each run costs milliseconds)
PROBE_SPAN = 200      # recorded steps per probe before a fresh one takes over (findings: recent steps;
                      # the detectors read every record, so a longer span makes frames slower)
STEPS_MAX = 1_000_000   # "train until stopped": the lab's loop needs a step count (and keeps 4 bytes per step)


class _Closed(Exception):
    """Raised inside the training thread to end it (reset, new setup, closed page)."""


def _b64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype=np.uint8).tobytes()).decode("ascii")


def _u8(v: Tensor, lo: float, hi: float) -> np.ndarray:
    """Map ``[lo, hi]`` to 0..255 (clipped) for a compact image."""
    span = hi - lo if hi > lo else 1.0
    return ((v.clamp(lo, hi) - lo) * (255.0 / span)).round().to(torch.uint8).numpy()


def json_number(v: float) -> float | None:
    """JSON has no NaN / Inf: they travel as null and the browser draws a gap."""
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None


def load_data(cfg: PlayConfig) -> Dataset:
    """The data set of ``cfg`` through the lab's loader (split, noise and features applied there)."""
    frac = 1.0 - cfg.train_pct / 100.0
    kw: dict[str, Any] = {"preprocess": FEATURES[cfg.features], "seed": cfg.seed, "test_fraction": frac}
    if cfg.plane:
        # n is the training share of 500 points, so the split control moves points between the sides.
        kw.update(n=max(2, round(500 * cfg.train_pct / 100)), noise=cfg.noise)
    elif cfg.data != "digits":
        kw.update(n=5000, n_test=1000)  # MNIST-size sets: a subset keeps a step at a few ms on a CPU
    return load_dataset(cfg.data, **kw)


def build_model(cfg: PlayConfig, data: Dataset) -> MLP:
    """The lab's MLP for ``cfg``, initialised by the lab's scheme (or N(0, sigma_w^2 / fan_in))."""
    model = MLP(data.in_features, data.out_features, depth=cfg.depth, width=cfg.width,
                activation=cfg.activation, dropout=cfg.dropout)
    return _initialise(model, cfg)


def _initialise(model: MLP, cfg: PlayConfig) -> MLP:
    if cfg.sigma_w2 is not None:
        # lecun_normal draws N(0, gain^2 / fan_in): with gain = sigma_w it is the mean-field init.
        return init_weights(model, "lecun_normal", gain=math.sqrt(cfg.sigma_w2), seed=cfg.seed)
    return init_weights(model, cfg.init, seed=cfg.seed, **({"value": 0.1} if cfg.init == "constant" else {}))


def weight_variance(model: MLP) -> tuple[float, float]:
    """``(sigma_w^2, sigma_b^2)`` read off the initialised hidden weights: ``mean(W^2) * fan_in``
    and ``mean(b^2)`` over the hidden-to-hidden layers (the first layer when there is only one),
    so the theory line describes the init that was drawn, whatever the scheme."""
    layers = model.hidden_layers()
    square = layers[1:] or layers
    sw = [float(l.weight.detach().double().pow(2).mean()) * l.weight.shape[1] for l in square]
    sb = [float(l.bias.detach().double().pow(2).mean()) for l in square if l.bias is not None]
    return float(np.mean(sw)), float(np.mean(sb)) if sb else 0.0


TWIN = 512  # the wide twin's hidden width: 262k weights, so sigma_w^2 is read to ~0.3% (1 s.e.)


def scheme_variance(cfg: PlayConfig, width: int = TWIN) -> tuple[float, float, float]:
    """``(sigma_w^2, sigma_b^2, |mean| / rms)`` of ``cfg``'s init *as a distribution*: read off a
    wide twin (``width x width`` hidden layer) initialised the same way; the relative standard
    error of ``sigma_w^2`` is at most ``sqrt(2 / width^2)`` (Gaussian weights; less for uniform
    ones, none for orthogonal ones).

    Mean-field theory is about the distribution, not one small draw: an 8 x 8 layer's
    ``mean(W^2) * fan_in`` scatters by ~20% around it (He for ReLU would read as "chaotic").
    It also assumes zero-mean weights; the third figure says how far the scheme is from that
    (``"constant"``: 1).
    """
    twin = _initialise(MLP(width, 2, depth=2, width=width, activation=cfg.activation, dropout=0.0), cfg)
    sw, sb = weight_variance(twin)
    w = twin.hidden_layers()[1].weight.detach().double()
    rms = float(w.pow(2).mean().sqrt())
    return sw, sb, abs(float(w.mean())) / rms if rms > 0 else 0.0


def activation_sheet(name: str) -> dict[str, Any]:
    """f and f' of an activation on its default plot range, its saturated regions and properties."""
    from actlab.plot.activations import curves

    spec = get_spec(name)
    c = curves(spec, n=241)
    s = spec.summary()
    keep = ("name", "title", "formula", "derivative_formula", "saturates", "zero_centred",
            "monotone", "smooth", "can_die", "note")
    props = {k: s[k] for k in keep if k in s}
    props["range_text"] = spec.range_text()
    return {
        "name": spec.name, "lo": c.lo, "hi": c.hi,
        "x": [json_number(v) for v in c.x_f.tolist()], "f": [json_number(v) for v in c.f.tolist()],
        "xd": [json_number(v) for v in c.x_df.tolist()], "df": [json_number(v) for v in c.df.tolist()],
        "saturated": [list(r) for r in c.saturated], "props": props,
    }


def plane_grid(box: tuple[float, float, float, float], n: int) -> Tensor:
    """``(n * n, 2)`` points over ``box = (x0, x1, y0, y1)``, row by row from the top left (the
    order an image's pixels are drawn in)."""
    x0, x1, y0, y1 = box
    yy, xx = torch.meshgrid(torch.linspace(y1, y0, n), torch.linspace(x0, x1, n), indexing="ij")
    return torch.stack([xx.reshape(-1), yy.reshape(-1)], 1)


def surface_values(out: Tensor) -> tuple[Tensor | None, str]:
    """What the decision surface shows of a model's outputs on a grid, in ``[0, 1]``, and what
    that is (with its range over the plane, so a flat surface reads as flat, not as broken): with
    2 outputs (class scores) the probability of class 1 (softmax); with 1 output its sign, scaled
    by the largest ``|output|`` over the plane (0.5: output 0, the boundary of a logit or of
    targets +-1); with more, ``None`` and why not (two colours show two classes)."""
    out = out.detach().float().reshape(out.shape[0], -1)
    k = out.shape[1]
    if k == 2:
        p = torch.softmax(out, 1)[:, 1]
        return p, f"probability of class 1 ({float(p.min()):.3g} to {float(p.max()):.3g} over the plane)"
    if k == 1:
        o = torch.nan_to_num(out[:, 0], nan=0.0)
        m = float(o.abs().max())
        return (0.5 + 0.5 * o / m if m > 0 and math.isfinite(m) else torch.full_like(o, 0.5)), \
            f"the output's sign ({float(o.min()):.3g} to {float(o.max()):.3g} over the plane; grey: 0)"
    return None, f"the model has {k} outputs; the two-colour surface shows 1 output or 2 classes"


def saturated_regions(spec: Any, params: dict[str, Any] | None = None) -> list[list[float]]:
    """The saturated stretches ``[[a, b], ...]`` of an activation over the histograms' widest
    range (``|x| <= LIMIT``), from :func:`actlab.plot.activations.curves`; ``[]`` where it cannot
    say (a hyperparameter the plot cannot take)."""
    from actlab.plot.activations import curves

    try:
        c = curves(spec, params, x_range=(-LIMIT, LIMIT), n=4001)
    except (ValueError, TypeError):
        return []
    return [[float(a), float(b)] for a, b in c.saturated]


def theory_sheet(activation: str, sigma_w2: float, sigma_b2: float = 0.0, depth: int = 10) -> dict[str, Any]:
    """q*, chi_1, phase and the critical sigma_w^2 from :func:`actlab.theory.analyse`, or why not."""
    from actlab.theory import TheoryError, analyse

    try:
        mf = analyse(activation, sigma_w2, sigma_b2, depth)
    except (TheoryError, ValueError) as e:
        return {"ok": False, "why": f"mean-field theory does not apply to {activation}: {e}"}
    return {"ok": True, "sigma_w2": sigma_w2, "sigma_b2": sigma_b2, "q_star": json_number(mf.q_star),
            "chi_1": json_number(mf.chi_1), "phase": mf.phase, "critical_sigma_w2": json_number(mf.critical_sigma_w2),
            "depth_scale": json_number(mf.xi_q), "notes": list(mf.notes)}


class ProbeView:
    """The probe's part of a frame: per-layer gradient norms, dead and saturated fractions per
    activation layer, and the findings (re-run at most every :data:`FINDINGS_EVERY` seconds
    while training, since each run of the detectors reads every record)."""

    def __init__(self) -> None:
        self._findings: list[dict[str, Any]] = []
        self._notes: list[str] = []
        self._at = -math.inf

    def panels(self, probe: Probe, *, busy: bool, layers: list[str] | None = None,
               profile: list[float] | None = None, offset: int = 0) -> dict[str, Any]:
        """Args:
            probe: the probe to read (from the thread that trains).
            busy: training is running (findings are then refreshed on a timer, else every call).
            layers: the weight layers of the depth profile, input side first; ``None``: every layer
                with a parameter gradient, in forward order (any model).
            profile: the theory's ``||dL/du^l|| / ||dL/du^{L+1}||`` for ``layers[:-1]``; drawn
                through the last layer's measured value.
            offset: training step at which ``probe`` was attached.
        """
        steps = probe.steps()
        if not steps:
            return {"grads": None, "findings": [], "notes": [], "probe_steps": 0}
        if layers is not None:
            which = "output"  # ||dL/du^l||: the quantity the mean-field profile predicts
            got = probe.layer_grad_norms(which=which)
            names = layers
        else:
            which = "params"
            got = probe.layer_grad_norms(which=which)
            names = list(got)
        measured = [json_number(got.get(n, math.nan)) for n in names]
        theory = None
        if profile is not None and measured and measured[-1] is not None:
            theory = [measured[-1] * p for p in profile] + [measured[-1]]
        last = max(steps)
        acts = sorted((r for r in probe.records() if r.step == last and r.kind == "activation"), key=lambda r: r.order)
        now = time.perf_counter()
        if now - self._at >= FINDINGS_EVERY or not busy:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                found = probe.findings()
            # The detectors say when they see too little (a window longer than the run): shown as notes.
            self._notes = sorted({str(w.message) for w in caught})
            self._findings = [{"severity": f.severity, "kind": f.kind, "message": f.message, "cause": f.cause,
                               "advice": f.advice, "layers": list(f.layers)} for f in found]
            self._at = now
        return {
            "grads": {"layers": names, "measured": measured, "theory": theory, "which": which},
            "dead": [json_number(r.dead) for r in acts], "saturated_frac": [json_number(r.saturated) for r in acts],
            "act_layers": [r.layer for r in acts], "findings": self._findings,
            "notes": self._notes + ([f"the probe is renewed every {PROBE_SPAN} steps to keep frames fast: the steps in "
                                     f"these findings count from training step {offset}"] if offset else []),
            "probe_steps": len(steps), "probe_from": offset,
        }


class FrameSource:
    """What the server reads from a run: the newest :attr:`frame`, its sequence number
    :attr:`seq`, and :attr:`on_frame`, called after each new frame (from the producing thread)."""

    def __init__(self) -> None:
        self.seq = 0
        self.frame: dict[str, Any] = {}
        self.on_frame: Callable[[], None] | None = None
        self._frame_lock = threading.Lock()

    def _post(self, frame: dict[str, Any]) -> None:
        with self._frame_lock:
            self.seq += 1
            frame["seq"] = self.seq
            self.frame = frame
        if self.on_frame is not None:
            self.on_frame()


class Session(FrameSource):
    """A net training in a worker thread, paused until told to run, publishing frames.

    Args:
        config: the setup.
        frame_interval: seconds between frames while running.  Default: ``0.05`` (20 per second)
        on_frame: called (from the training thread) after each new frame.

    The newest frame is :attr:`frame` with sequence number :attr:`seq`; a reader compares
    ``seq`` with the last one it sent and sends only new data.
    """

    def __init__(self, config: PlayConfig, *, frame_interval: float = 0.05,
                 on_frame: Callable[[], None] | None = None) -> None:
        super().__init__()
        self.config = config
        self.frame_interval = float(frame_interval)
        self.on_frame = on_frame
        torch.manual_seed(config.seed)
        self.data = load_data(config)
        self.model = build_model(config, self.data)
        self.drawn_sigma_w2 = weight_variance(self.model)[0]
        self.sigma_w2, self.sigma_b2, self._off_centre = scheme_variance(config)
        self.spec = get_spec(config.activation)
        self._cond = threading.Condition()
        self._budget = 0          # steps allowed before pausing; -1: run until paused
        self._closing = False
        self.state = "paused"     # paused | running | diverged | stopped | error
        self.error = ""
        self.steps = 0
        self._probe: Probe | None = None
        self._probe_from = 0
        self._last_frame = 0.0
        self._view = ProbeView()
        self._cost_cpu, self._cost_steps = 0.0, 0
        self._intro: dict[str, Any] | None = None
        self._prepare_display()
        self._thread = threading.Thread(target=self._run, name=f"actlab-play-{id(self):x}", daemon=True)
        self._publish()
        self._thread.start()

    # ------------------------------------------------------------------ controls
    def play(self) -> None:
        with self._cond:
            if self.state in ("paused", "running"):
                self._budget, self.state = -1, "running"
                self._cond.notify_all()

    def pause(self) -> None:
        with self._cond:
            if self.state == "running":
                self._budget, self.state = 0, "paused"
                self._cond.notify_all()

    def step(self, n: int = 1) -> None:
        """Run ``n`` more steps, then pause (a frame is published when they are done)."""
        with self._cond:
            if self.state in ("paused", "running"):
                self._budget, self.state = int(n), "running"
                self._cond.notify_all()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the training thread and detach the probe."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    # ------------------------------------------------------------------ the training thread
    def _run(self) -> None:
        cfg = self.config
        tc = TrainConfig(optimiser=cfg.optimiser, lr=cfg.lr, batch_size=cfg.batch_size,
                         weight_decay=cfg.weight_decay, seed=cfg.seed, steps=STEPS_MAX, eval_every=STEPS_MAX)
        try:
            self._theory_line()
            result = train(self.model, self.data, tc, callbacks=[_Gate(self)])
            if result.diverged:
                self.state, self.error = "diverged", f"the loss became NaN or Inf at step {result.diverged_at}"
        except _Closed:
            self.state = "stopped"
        except Exception as e:  # a setup the lab refuses mid-run: shown, the server keeps going
            self.state, self.error = "error", f"{type(e).__name__}: {e}"
        finally:
            if self._probe is not None:
                self._probe.detach()
        if not self._closing:
            self._publish()

    def _attach_probe(self) -> None:
        if self._probe is not None:
            self._probe.detach()
        self._probe = Probe(self.model, every=1, param_outputs=True).attach()
        self._probe_from = self.steps

    def _gate(self, stepped: bool) -> None:
        """Between steps: publish a frame when due, then wait while paused."""
        now = time.perf_counter()
        with self._cond:
            if stepped and self._budget > 0:
                self._budget -= 1
            done_stepping = self._budget == 0 and self.state == "running"
            if done_stepping:
                self.state = "paused"
        if done_stepping or now - self._last_frame >= self.frame_interval:
            self._publish()
        with self._cond:
            while self._budget == 0 and not self._closing:
                self._cond.wait()
            if self._closing:
                raise _Closed()

    # ------------------------------------------------------------------ frames
    def _prepare_display(self) -> None:
        d = self.data
        g = torch.Generator().manual_seed(self.config.seed + 7)
        n_ev = min(EVAL_MAX, d.n_train)
        self._ev = torch.randperm(d.n_train, generator=g)[:n_ev].sort().values
        self._te = torch.arange(min(EVAL_MAX, d.n_test))
        self._disp = self._ev[:DISPLAY_BATCH]
        self._linear = [n for n, m in self.model.named_modules() if isinstance(m, nn.Linear)]
        self._saturated = saturated_regions(self.spec)
        self._profile: list[float] | None = None
        self._theory_note = ""
        if self.config.plane:
            r = float(d.x_train.abs().max()) * 1.1 or 1.0
            self._extent = r
            self._grid = plane_grid((-r, r, -r, r), SURFACE)
            self._tgrid = plane_grid((-r, r, -r, r), THUMB)
        else:
            self._samples = torch.arange(min(SAMPLE_IMAGES, d.n_test))

    def _theory_line(self) -> None:
        """The theory's line for the gradient panel (or why there is none).  Computed by the training
        thread before its first step, not when the session is built: importing the theory (scipy)
        is then not on the way to the first frame, which has no gradients to draw it against."""
        from actlab.theory import TheoryError, gradient_profile

        q_in = float(self.data.x_train.double().pow(2).mean())
        try:
            if self._off_centre > OFF_CENTRE_MAX:
                raise TheoryError(f"the weights of {self.config.init!r} are not zero-mean (|mean| / rms = "
                                  f"{self._off_centre:.2f}); mean-field theory assumes zero-mean random weights")
            prof = gradient_profile(self.config.activation, self.sigma_w2, self.sigma_b2, self.config.depth,
                                    q_in=q_in if q_in > 0 else 1e-12)
            self._profile = [float(v) for v in prof]
        except (TheoryError, ValueError) as e:
            self._theory_note = f"no theory line: {e}"

    def intro(self) -> dict[str, Any]:
        """What does not change while training: points or sample images, the setup, the theory
        (built once; the server's start-up builds it before the first page asks)."""
        if self._intro is None:
            self._intro = self._make_intro()
        return self._intro

    def _make_intro(self) -> dict[str, Any]:
        d, cfg = self.data, self.config
        out: dict[str, Any] = {
            "config": cfg.to_dict(), "plane": cfg.plane, "n_train": d.n_train, "n_test": d.n_test,
            "n_classes": d.n_classes, "sigma_w2": json_number(self.sigma_w2), "sigma_b2": json_number(self.sigma_b2),
            "drawn_sigma_w2": json_number(self.drawn_sigma_w2),
            "sigma_w2_rel_se": None if self.config.sigma_w2 is not None else math.sqrt(2.0) / TWIN,
            "layers": self._linear, "saturated": self._saturated,
        }
        if cfg.plane:
            pts = torch.cat([d.x_train, d.x_test])
            lab = torch.cat([d.y_train, d.y_test])
            out["extent"] = self._extent
            out["points"] = [[round(float(a), 3), round(float(b), 3), int(c), int(i >= d.n_train)]
                             for i, ((a, b), c) in enumerate(zip(pts.tolist(), lab.tolist()))]
        else:
            shape = d.input_shape[-2:] if len(d.input_shape) > 1 else None
            side = int(round(math.sqrt(d.in_features)))
            h, w = shape if shape else (side, d.in_features // side)
            imgs = []
            for i in self._samples.tolist():
                x = d.x_test[i].reshape(-1)
                lo, hi = float(x.min()), float(x.max())
                imgs.append({"px": _b64(_u8(x, lo, hi)), "label": int(d.y_test[i])})
            out["images"] = {"h": int(h), "w": int(w), "items": imgs}
        return out

    def _publish(self) -> None:
        # Frames are due frame_interval after the previous one *started*, so the rate is set by
        # the interval, not by the interval plus the cost of a frame.
        self._last_frame = time.perf_counter()
        cpu0 = time.thread_time()
        try:
            frame = self._build_frame()
        except Exception as e:  # a frame that cannot be drawn must not stop the run
            frame = {"step": self.steps, "state": self.state, "error": f"frame failed: {type(e).__name__}: {e}"}
        # CPU seconds of this thread (not wall time, which a busy machine inflates): what a frame
        # and a training step cost, for benchmarks/play.py.
        cpu1 = time.thread_time()
        steps = self.steps - self._cost_steps
        frame["cost"] = {"frame_cpu_ms": 1e3 * (cpu1 - cpu0),
                         "step_cpu_ms": 1e3 * (cpu0 - self._cost_cpu) / steps if steps > 0 else None}
        self._cost_cpu, self._cost_steps = cpu1, self.steps
        self._post(frame)

    @torch.no_grad()
    def _build_frame(self) -> dict[str, Any]:
        d, model = self.data, self.model
        was = model.training
        model.eval()
        try:
            tr = evaluate(model, d.x_train[self._ev], d.y_train[self._ev], d.y_train[self._ev], "ce")
            te = evaluate(model, d.x_test[self._te], d.y_test[self._te], d.y_test[self._te], "ce")
            vals = torch.stack([*tr, *te]).tolist()
            frame: dict[str, Any] = {
                "step": self.steps, "state": self.state, "error": self.error,
                "loss": {"train": json_number(vals[0]), "test": json_number(vals[2]),
                         "train_error": json_number(vals[1]), "test_error": json_number(vals[3])},
            }
            _, pre, post = model.forward_all(d.x_train[self._disp])
            frame["hist"] = [self._histogram(p) for p in pre]
            frame["dead_units"] = self._dead_on_data(model, pre, post)
            if self.config.plane:
                frame.update(self._plane(model))
            else:
                logits = model(d.x_test[self._samples])
                prob = torch.softmax(logits.float(), 1)
                pv, pk = prob.max(1)
                frame["predictions"] = [[int(k), round(float(v), 3)] for k, v in zip(pk.tolist(), pv.tolist())]
        finally:
            model.train(was)
        frame.update(self._probe_view())
        return frame

    def _dead_on_data(self, model: MLP, pre: list[Tensor], post: list[Tensor]) -> list[list[int]] | None:
        """Per hidden unit, 1 if it is dead on the display batch (f' = 0 on every example), by the
        probe's own rule (:func:`inactive_units`, :func:`dead_on_data`); ``None`` where f' is not
        one number per unit (maxout)."""
        if not self.spec.elementwise:
            return None
        out = []
        for act, x, y in zip(model.activations(), pre, post):
            found = spec_for_module(act)
            if found is None:
                return None
            spec, params = found
            d = spec.derivative(x, y, {**params, "training": False})
            out.append([int(v) for v in dead_on_data([inactive_units(d.expand_as(x).abs())]).tolist()])
        return out

    def _histogram(self, pre: Tensor) -> dict[str, Any]:
        r, counts = histogram(pre)  # the probe's own histogram (the one implementation)
        return {"r": float(r), "counts": counts.tolist()}

    def _plane(self, model: MLP) -> dict[str, Any]:
        p1, _ = surface_values(model(self._grid))
        units = []
        _, _, post = model.forward_all(self._tgrid)
        for h in post[:MAX_THUMB_LAYERS]:
            # Each unit scaled to its own range over the plane, so the thumbnail shows where it is
            # high and low; a unit constant over the plane (to 1e-6 of its size) is drawn flat.
            h = torch.nan_to_num(h[:, :MAX_THUMB_UNITS].float(), nan=0.0, posinf=0.0, neginf=0.0)
            lo, hi = h.amin(0), h.amax(0)
            span = hi - lo
            flat = span <= 1e-6 * torch.maximum(hi.abs(), lo.abs()).clamp_min(1e-30)
            t = torch.where(flat, torch.zeros_like(h), (h - lo) / span.clamp_min(1e-30) * 2.0 - 1.0)
            px = _u8(t, -1.0, 1.0).T
            units.append([_b64(row) for row in px])
        return {"surface": _b64(_u8(p1, 0.0, 1.0)), "units": units}

    def _probe_view(self) -> dict[str, Any]:
        if self._probe is None:
            return {"grads": None, "findings": [], "probe_steps": 0}
        return {**self._view.panels(self._probe, busy=self.state == "running", layers=self._linear,
                                    profile=self._profile, offset=self._probe_from), "theory_note": self._theory_note}


class _Gate(Callback):
    """The lab trainer's hooks into the session: probe on start, pause and publish between steps."""

    def __init__(self, session: Session) -> None:
        self.s = session

    def on_start(self, model: nn.Module, config: TrainConfig) -> None:
        self.s._attach_probe()

    def on_eval(self, step: int, model: nn.Module, metrics: dict[str, float]) -> bool | None:
        self.s._gate(False)  # step 0: wait for play / step before the first update
        return None

    def on_step_end(self, step: int, model: nn.Module, loss: Tensor) -> None:
        s = self.s
        s.steps = step + 1
        if s._probe is not None and s.steps - s._probe_from >= PROBE_SPAN:
            # The probe keeps every record; a fresh one every PROBE_SPAN steps keeps frames cheap,
            # and the findings describe the recent steps, which is what the panel is for.
            s._attach_probe()
        s._gate(True)


__all__ = ["FrameSource", "ProbeView", "Session", "activation_sheet", "build_model", "load_data", "plane_grid", "saturated_regions",
           "scheme_variance", "surface_values", "theory_sheet", "weight_variance"]
