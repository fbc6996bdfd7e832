// actlab play: the page. One state table (two setups, A and B) that serialises to the URL;
// frames from the server are drawn on <canvas>es by the small functions below. No libraries.
"use strict";

const LR = [1e-5, 1e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1, 3, 10];
const L2 = [0, 1e-5, 1e-4, 1e-3, 0.01, 0.1];
const DROPOUT = [0, 0.1, 0.2, 0.3, 0.5];
let SHARED = []; // the controls A and B always share (data and seed), from the server
const ORANGE = [245, 147, 34], BLUE = [8, 119, 189], WHITE = [232, 234, 237];
const RUN_COLOURS = { a: "#0877bd", b: "#d6336c" };
const HISTORY = 120; // frames kept for the dead / saturated maps

const S = {
  ws: null, controls: null, defaults: null,
  cfg: { a: null, b: null }, editing: "a", compare: false, playing: false,
  views: {}, errors: [], frames: 0, theoryTimer: null, ready: {},
};
window.actlab = S; // for tests and the curious: S.ws, S.cfg, S.views

const $ = (id) => document.getElementById(id);
const fmt = (v) => (v === null || v === undefined || !isFinite(v)) ? "n/a"
  : (Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0)) ? v.toExponential(1) : (+v.toPrecision(3)).toString();

function log(msg, cls) {
  const el = document.createElement("div");
  el.className = cls || "";
  el.textContent = msg;
  $("log").prepend(el);
  while ($("log").childNodes.length > 8) $("log").lastChild.remove();
}

// ------------------------------------------------------------------ URL <-> state
function parseValue(name, text) {
  const c = S.controls[name];
  if (!c) return undefined;
  if (c.optional && (text === "" || text === "null")) return null;
  if (c.kind === "choice") return text;
  const v = Number(text);
  return Number.isFinite(v) ? v : undefined;
}

function fromURL() {
  const q = new URLSearchParams(location.search);
  const a = { ...S.defaults }, bDiff = {};
  let compare = q.get("compare") === "1";
  for (const [k, v] of q.entries()) {
    const isB = k.startsWith("b.");
    const name = isB ? k.slice(2) : k;
    const val = parseValue(name, v);
    if (val === undefined) continue; // the server checks everything; unknown keys are ignored here
    if (isB) { bDiff[name] = val; compare = true; } else a[name] = val;
  }
  S.cfg.a = a;
  S.cfg.b = compare ? { ...a, activation: "relu", init: "he_normal", sigma_w2: null, ...bDiff } : null;
  for (const k of SHARED) if (S.cfg.b) S.cfg.b[k] = a[k];
  S.compare = compare;
}

function toURL() {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(S.cfg.a)) if (v !== S.defaults[k]) q.set(k, v === null ? "null" : v);
  if (S.compare && S.cfg.b) {
    q.set("compare", "1");
    for (const [k, v] of Object.entries(S.cfg.b)) if (v !== S.cfg.a[k]) q.set("b." + k, v === null ? "null" : v);
  }
  const s = q.toString();
  history.replaceState(null, "", s ? "?" + s : location.pathname);
}

// ------------------------------------------------------------------ controls
function fillSelect(id, values, label) {
  const el = $(id);
  el.innerHTML = "";
  for (const v of values) {
    const o = document.createElement("option");
    o.value = String(v);
    o.textContent = label ? label(v) : String(v);
    el.appendChild(o);
  }
}

const logSlider = { to: (v) => Math.round((Math.log10(v) + 2) / 3 * 1000), from: (p) => Math.pow(10, p / 1000 * 3 - 2) };

function showControls() {
  const c = S.cfg[S.editing];
  for (const name of Object.keys(S.controls)) {
    const el = $("c-" + name);
    if (!el) continue;
    const v = c[name];
    if (name === "sigma_w2") continue;
    if (name === "noise") {
      const own = S.noiseDefaults[c.data];
      el.disabled = own === undefined || S.editing === "b"; // image sets have no noise control
      el.value = v === null ? (own || 0) : v;
      $("o-noise").textContent = own === undefined ? "n/a" : v === null ? `${own} (set's own)` : v;
      continue;
    }
    el.value = String(v);
    if (name === "train_pct") $("o-train_pct").textContent = v + "%";
  }
  const sw = c.sigma_w2 !== null ? c.sigma_w2 : (S.ready[S.editing] && S.ready[S.editing].sigma_w2) || 1;
  $("c-sigma_w2").value = logSlider.to(Math.min(10, Math.max(0.01, sw)));
  $("o-sigma_w2").textContent = c.sigma_w2 !== null ? `σw² = ${fmt(c.sigma_w2)}: weights N(0, σw²/fan_in)`
    : `σw² = ${fmt(sw)} (${c.init})`;
  const r = S.ready[S.editing];
  if (r && r.drawn_sigma_w2 !== null) $("o-sigma_w2").textContent += `; this draw: ${fmt(r.drawn_sigma_w2)}`;
  $("c-init").classList.toggle("overridden", c.sigma_w2 !== null);
  for (const k of SHARED) { const el = $("c-" + k); if (el && k !== "noise") el.disabled = S.editing === "b"; }
  document.querySelectorAll("#edit-tabs button").forEach((b) => b.classList.toggle("on", b.dataset.run === S.editing));
}

function setControl(name, value) {
  const runs = S.editing === "a" && SHARED.includes(name) && S.compare ? ["a", "b"] : [S.editing];
  for (const r of runs) {
    S.cfg[r][name] = value;
    if (name === "init") S.cfg[r].sigma_w2 = null; // picking a scheme hands the scale back to it
  }
  showControls();
  toURL();
  for (const r of runs) configure(r);
  if (name === "activation") requestActivation();
  requestTheory();
}

function bindControls() {
  fillSelect("c-data", S.controls.data.choices);
  fillSelect("c-features", S.controls.features.choices);
  fillSelect("c-activation", S.controls.activation.choices);
  fillSelect("c-init", S.controls.init.choices);
  fillSelect("c-optimiser", S.controls.optimiser.choices);
  fillSelect("c-lr", LR);
  fillSelect("c-weight_decay", L2);
  fillSelect("c-dropout", DROPOUT);
  for (const name of Object.keys(S.controls)) {
    const el = $("c-" + name);
    if (!el || name === "sigma_w2") continue;
    const ev = el.type === "range" ? "change" : "change";
    el.addEventListener(ev, () => {
      const v = parseValue(name, el.value);
      if (v === undefined) return log(`${name}: not a number`, "err");
      setControl(name, v);
    });
    if (el.type === "range") el.addEventListener("input", () => {
      const o = $("o-" + name);
      if (o) o.textContent = el.value + (name === "train_pct" ? "%" : "");
    });
  }
  const sw = $("c-sigma_w2");
  sw.addEventListener("input", () => {
    const v = +logSlider.from(+sw.value).toPrecision(3);
    $("o-sigma_w2").textContent = `σw² = ${fmt(v)} (release to train with it)`;
    requestTheory(v);
  });
  sw.addEventListener("change", () => setControl("sigma_w2", +logSlider.from(+sw.value).toPrecision(3)));
  $("btn-play").onclick = () => transport(S.playing ? "pause" : "play");
  $("btn-step").onclick = () => transport("step");
  $("btn-reset").onclick = () => transport("reset");
  $("btn-link").onclick = () => { toURL(); navigator.clipboard && navigator.clipboard.writeText(location.href).catch(() => {}); log("link: " + location.href); };
  $("compare").onchange = () => setCompare($("compare").checked);
  document.querySelectorAll("#edit-tabs button").forEach((b) => b.onclick = () => { S.editing = b.dataset.run; showControls(); requestActivation(); requestTheory(); });
  document.addEventListener("keydown", (e) => {
    if (e.code === "Space" && !["INPUT", "SELECT"].includes(document.activeElement.tagName)) { e.preventDefault(); $("btn-play").click(); }
  });
}

function setCompare(on) {
  S.compare = on;
  $("compare").checked = on;
  $("edit-tabs").hidden = !on;
  if (on) {
    S.cfg.b = S.cfg.b || { ...S.cfg.a, activation: "relu", init: "he_normal", sigma_w2: null };
    for (const k of SHARED) S.cfg.b[k] = S.cfg.a[k];
    configure("b");
  } else {
    S.editing = "a";
    if (S.views.b) { send({ type: "close", run: "b" }); S.views.b.root.remove(); delete S.views.b; }
  }
  showControls();
  toURL();
}

function transport(kind) {
  const runs = S.compare ? ["a", "b"] : ["a"];
  if (kind === "reset") { S.playing = false; for (const r of runs) configure(r); }
  else {
    for (const r of runs) send({ type: kind, run: r });
    S.playing = kind === "play";
  }
  $("btn-play").innerHTML = S.playing ? "&#10074;&#10074; pause" : "&#9654; play";
}

// ------------------------------------------------------------------ socket
function send(obj) { if (S.ws && S.ws.readyState === 1) S.ws.send(JSON.stringify(obj)); }

function configure(run) {
  S.playing = false;
  $("btn-play").innerHTML = "&#9654; play";
  send({ type: "configure", run, config: S.cfg[run] });
}

function requestTheory(sigmaW2) {
  clearTimeout(S.theoryTimer);
  S.theoryTimer = setTimeout(() => {
    const c = S.cfg[S.editing], r = S.ready[S.editing];
    const sw = sigmaW2 || (c.sigma_w2 !== null ? c.sigma_w2 : (r && r.sigma_w2) || 1);
    send({ type: "theory", activation: c.activation, sigma_w2: Math.min(10, Math.max(0.01, sw)),
      sigma_b2: r && r.sigma_b2 ? Math.min(5, r.sigma_b2) : 0, depth: c.depth });
  }, 40);
}

function requestActivation() { send({ type: "activation", name: S.cfg[S.editing].activation }); }

function connect() {
  const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
  S.ws = ws;
  ws.onopen = () => {
    $("status").textContent = "connected";
    if (S.live) { send({ type: "watch" }); return; }
    configure("a");
    if (S.compare) configure("b");
    requestActivation();
    requestTheory();
  };
  ws.onclose = () => { $("status").textContent = "disconnected (reload to reconnect)"; document.body.dataset.connected = "0"; };
  ws.onmessage = (ev) => {
    const m = JSON.parse(ev.data);
    if (m.type === "frame") { S.frames++; view(m.run).frame(m); }
    else if (m.type === "ready") { S.ready[m.run] = m; view(m.run).ready(m); if (m.run === S.editing) { showControls(); requestTheory(); } }
    else if (m.type === "theory") drawTheory(m);
    else if (m.type === "activation") drawActivation(m);
    else if (m.type === "error") { S.errors.push(m.message); log(m.message, "err"); }
    else if (m.type === "closed") { /* nothing to draw */ }
  };
  document.body.dataset.connected = "1";
}

// ------------------------------------------------------------------ side panels
function drawTheory(m) {
  const el = $("theory"), mark = $("crit-mark");
  if (!m.ok) { el.innerHTML = `<span class="blind">${esc(m.why)}</span>`; mark.hidden = true; el.dataset.phase = ""; return; }
  // A scheme's sigma_w^2 is estimated from a wide draw: within 3 standard errors of the critical
  // value the estimate cannot tell the phases apart, and the panel says so instead of guessing.
  const r = S.ready[S.editing], se = r && r.sigma_w2_rel_se;
  const fromScheme = r && r.sigma_w2 !== null && Math.abs(m.sigma_w2 - r.sigma_w2) < 1e-9 * r.sigma_w2;
  const near = fromScheme && se && m.critical_sigma_w2 && Math.abs(m.sigma_w2 - m.critical_sigma_w2) <= 3 * se * m.sigma_w2;
  const phase = near ? "critical" : m.phase;
  el.dataset.phase = phase;
  el.innerHTML = `<div>q* = <b>${fmt(m.q_star)}</b> &nbsp; &chi;<sub>1</sub> = <b>${fmt(m.chi_1)}</b></div>` +
    `<div>phase: <b class="phase ${phase}">${phase}</b> at &sigma;<sub>w</sub><sup>2</sup> = ${fmt(m.sigma_w2)}` +
    (near ? ` <span class="blind">(the scheme's &sigma;<sub>w</sub><sup>2</sup> is the critical one within its estimate, &plusmn;${(300 * se).toFixed(1)}%)</span>` : "") + `</div>` +
    `<div>critical &sigma;<sub>w</sub><sup>2</sup> = <b>${fmt(m.critical_sigma_w2)}</b> <button id="use-critical">use it</button></div>` +
    (m.notes && m.notes.length ? `<div class="blind">${esc(m.notes.join("; "))}</div>` : "");
  if (m.critical_sigma_w2 && m.critical_sigma_w2 >= 0.01 && m.critical_sigma_w2 <= 10) {
    mark.hidden = false;
    mark.style.left = (logSlider.to(m.critical_sigma_w2) / 10) + "%";
  } else mark.hidden = true;
  const b = $("use-critical");
  if (b) b.onclick = () => setControl("init", "critical");
}

function drawActivation(m) {
  const cv = $("act-plot"), g = cv.getContext("2d"), W = cv.width, H = cv.height;
  g.clearRect(0, 0, W, H);
  const ys = [...m.f, ...m.df].filter((v) => v !== null);
  let lo = Math.min(...ys), hi = Math.max(...ys);
  if (hi - lo < 1e-9) { lo -= 1; hi += 1; }
  lo = Math.max(lo, -6); hi = Math.min(hi, 6);
  const X = (x) => (x - m.lo) / (m.hi - m.lo) * W, Y = (y) => H - 8 - (y - lo) / (hi - lo) * (H - 16);
  g.fillStyle = "#e9e9ef";
  for (const [a, b] of m.saturated) g.fillRect(X(a), 0, X(b) - X(a), H);
  g.strokeStyle = "#bbb"; g.beginPath(); g.moveTo(0, Y(0)); g.lineTo(W, Y(0)); g.moveTo(X(0), 0); g.lineTo(X(0), H); g.stroke();
  line(g, m.x, m.f, X, Y, "#0877bd", []);
  line(g, m.xd, m.df, X, Y, "#f59322", []);
  g.fillStyle = "#0877bd"; g.fillText("f", 4, 12); g.fillStyle = "#f59322"; g.fillText("f'", 14, 12);
  const p = m.props || {};
  $("act-props").innerHTML = `<b>${esc(p.title || m.name)}</b> &middot; range ${esc(p.range_text || "")} &middot; saturates: ${esc(String(p.saturates))}` +
    ` &middot; zero-centred: ${p.zero_centred ? "yes" : "no"}${p.can_die ? " &middot; units can die" : ""}` +
    (p.note ? `<div class="note">${esc(p.note)}</div>` : "");
}

function line(g, xs, ys, X, Y, colour, dash) {
  g.strokeStyle = colour; g.lineWidth = 1.6; g.setLineDash(dash); g.beginPath();
  let pen = false;
  for (let i = 0; i < xs.length; i++) {
    if (xs[i] === null || ys[i] === null) { pen = false; continue; }
    const px = X(xs[i]), py = Y(ys[i]);
    if (pen) g.lineTo(px, py); else g.moveTo(px, py);
    pen = true;
  }
  g.stroke(); g.setLineDash([]);
}

function esc(s) { return String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c])); }

// ------------------------------------------------------------------ one run's panels
function view(run) {
  if (!S.views[run]) S.views[run] = new RunView(run);
  return S.views[run];
}

function b64(s) { const bin = atob(s), a = new Uint8Array(bin.length); for (let i = 0; i < bin.length; i++) a[i] = bin.charCodeAt(i); return a; }

function diverging(t) { // 0 -> orange, 0.5 -> light grey, 1 -> blue
  const [a, b, u] = t < 0.5 ? [ORANGE, WHITE, t * 2] : [WHITE, BLUE, (t - 0.5) * 2];
  return [0, 1, 2].map((i) => Math.round(a[i] + (b[i] - a[i]) * u));
}

function paint(cv, px, n) {
  const g = cv.getContext("2d"), img = g.createImageData(n, n);
  for (let i = 0; i < n * n; i++) {
    const [r, gg, b] = diverging(px[i] / 255);
    img.data.set([r, gg, b, 255], i * 4);
  }
  const tmp = document.createElement("canvas");
  tmp.width = tmp.height = n;
  tmp.getContext("2d").putImageData(img, 0, 0);
  g.imageSmoothingEnabled = true;
  g.drawImage(tmp, 0, 0, cv.width, cv.height);
}

class RunView {
  constructor(run) {
    this.run = run;
    this.root = $("run-template").content.firstElementChild.cloneNode(true);
    this.root.id = "run-" + run;
    this.root.dataset.run = run;
    this.q = (sel) => this.root.querySelector(sel);
    $("runs").appendChild(this.root);
    this.reset();
  }

  reset() {
    this.losses = []; this.dead = []; this.sat = []; this.last = null; this.intro = null;
    this.q(".f-list").innerHTML = "";
    this.root.dataset.step = "0";
  }

  ready(m) {
    this.reset();
    this.intro = m;
    if (m.live) {
      this.q(".run-title").textContent = m.title;
      this.q(".units").hidden = true;
      this.q(".samples").innerHTML = "";
      this.q(".c-surface").hidden = true;
      this.q(".plane-caption").textContent = "decision surface: waiting for the first frame";
      this.q(".hists").innerHTML = "";
      this.q(".grads figcaption").textContent = "gradient norm of each layer's parameters (log), from your probe";
      return;
    }
    const c = m.config;
    this.q(".run-title").textContent = (S.compare ? this.run.toUpperCase() + ": " : "") +
      `${c.activation}, depth ${c.depth} x ${c.width}, ${c.sigma_w2 !== null ? "N(0, " + c.sigma_w2 + "/fan_in)" : c.init} init, ${c.optimiser} lr ${c.lr} on ${c.data}`;
    this.q(".run-title").style.color = RUN_COLOURS[this.run];
    this.q(".plane").hidden = false;
    this.q(".units").hidden = !m.plane;
    this.q(".plane-caption").textContent = m.plane ? "decision surface (points: train filled, test hollow)" : "test images: label / prediction (p)";
    this.q(".c-surface").hidden = !m.plane;
    const samples = this.q(".samples");
    samples.innerHTML = "";
    if (!m.plane) {
      for (const it of m.images.items) {
        const d = document.createElement("div"), cv = document.createElement("canvas");
        cv.width = m.images.w; cv.height = m.images.h;
        const g = cv.getContext("2d"), img = g.createImageData(m.images.w, m.images.h), px = b64(it.px);
        for (let i = 0; i < px.length; i++) img.data.set([px[i], px[i], px[i], 255], i * 4);
        g.putImageData(img, 0, 0);
        const t = document.createElement("span");
        t.textContent = `${it.label}`;
        d.append(cv, t);
        samples.appendChild(d);
      }
    }
    this.q(".thumbs").innerHTML = "";
    this.q(".hists").innerHTML = "";
  }

  frame(f) {
    this.last = f;
    this.root.dataset.step = f.step;
    this.root.dataset.state = f.state;
    if (f.loss && f.loss.train !== null) {
      const prev = this.losses[this.losses.length - 1];
      if (!prev || prev.step !== f.step) this.losses.push({ step: f.step, ...f.loss });
      if (this.losses.length > 2000) this.losses = this.losses.filter((_, i) => i % 2 === 0);
    }
    if (f.dead) { this.dead.push(f.dead); this.sat.push(f.saturated_frac); if (this.dead.length > HISTORY) { this.dead.shift(); this.sat.shift(); } }
    this.drawLoss();
    if (this.intro && this.intro.plane && f.surface) this.drawPlane(f);
    if (this.intro && this.intro.live) this.drawLiveSurface(f);
    if (f.predictions) this.drawPredictions(f);
    if (f.hist) this.drawHists(f.hist);
    drawGrads();
    this.drawDead();
    this.drawFindings(f);
    const st = f.state === "running" || f.state === "paused" ? "" : ` — ${f.state}${f.error ? ": " + f.error : ""}`;
    $("status").textContent = `step ${f.step}${st}`;
    if (f.error && f.state === "error") log(f.error, "err");
  }

  drawLoss() {
    const cv = this.q(".c-loss"), g = cv.getContext("2d"), W = cv.width, H = cv.height, L = this.losses;
    g.clearRect(0, 0, W, H);
    const r = this.q(".r-loss");
    if (!L.length) return;
    const first = L[0], last = L[L.length - 1];
    r.textContent = `step ${last.step}: train ${fmt(last.train)} (error ${fmt(last.train_error)}), test ${fmt(last.test)} (error ${fmt(last.test_error)})`;
    r.dataset.first = first.train; r.dataset.last = last.train; r.dataset.step = last.step;
    const all = views().flatMap((v) => v.losses.flatMap((p) => [p.train, p.test])).filter((v) => v !== null && isFinite(v));
    const hi = Math.max(...all, 1e-3) * 1.05, maxStep = Math.max(...views().map((v) => v.losses.length ? v.losses[v.losses.length - 1].step : 1), 1);
    const X = (s) => 30 + s / maxStep * (W - 36), Y = (v) => H - 14 - v / hi * (H - 22);
    axes(g, W, H, `${fmt(hi)}`, `${maxStep}`);
    line(g, L.map((p) => p.step), L.map((p) => p.train), X, Y, RUN_COLOURS[this.run], []);
    line(g, L.map((p) => p.step), L.map((p) => p.test), X, Y, RUN_COLOURS[this.run], [4, 3]);
  }

  drawPlane(f) {
    const cv = this.q(".c-surface"), n = Math.round(Math.sqrt(b64(f.surface).length));
    paint(cv, b64(f.surface), n);
    const g = cv.getContext("2d"), e = this.intro.extent, W = cv.width;
    const P = (v) => (v + e) / (2 * e) * W;
    for (const [x, y, c, test] of this.intro.points) {
      g.beginPath(); g.arc(P(x), W - P(y), 2.2, 0, 7);
      g.strokeStyle = "#fff"; g.lineWidth = 0.7;
      g.fillStyle = c ? "rgb(8,119,189)" : "rgb(245,147,34)";
      if (test) { g.strokeStyle = g.fillStyle; g.lineWidth = 1.2; g.stroke(); } else { g.fill(); g.stroke(); }
    }
    const th = this.q(".thumbs");
    if (th.childNodes.length !== f.units.length) {
      th.innerHTML = "";
      f.units.forEach((row, l) => {
        const d = document.createElement("div"); d.className = "trow";
        const lab = document.createElement("span"); lab.textContent = l + 1; d.appendChild(lab);
        row.forEach(() => { const c = document.createElement("canvas"); c.width = c.height = 22; d.appendChild(c); });
        th.appendChild(d);
      });
    }
    f.units.forEach((row, l) => {
      const cvs = th.childNodes[l].querySelectorAll("canvas");
      row.forEach((u, j) => { if (cvs[j]) paint(cvs[j], b64(u), Math.round(Math.sqrt(b64(u).length))); });
    });
  }

  // Your own model (actlab.play.watch): its outputs over the box of the inputs seen so far, with
  // the latest batch as dots (their labels are not known here), or the server's reason for none.
  drawLiveSurface(f) {
    const cv = this.q(".c-surface"), cap = this.q(".plane-caption");
    this.root.dataset.surface = f.surface ? "1" : "0";
    if (!f.surface) { cv.hidden = true; cap.textContent = "no decision surface: " + (f.surface_note || "no frame yet"); return; }
    cv.hidden = false;
    cap.textContent = `decision surface: ${f.surface_what} (dots: inputs of the latest batch)`;
    const px = b64(f.surface);
    paint(cv, px, Math.round(Math.sqrt(px.length)));
    const g = cv.getContext("2d"), [x0, x1, y0, y1] = f.box, W = cv.width, H = cv.height;
    g.fillStyle = "rgba(30,30,30,0.75)";
    for (const [x, y] of f.points) { g.beginPath(); g.arc((x - x0) / (x1 - x0) * W, H - (y - y0) / (y1 - y0) * H, 1.8, 0, 7); g.fill(); }
  }

  drawPredictions(f) {
    const items = this.q(".samples").childNodes;
    f.predictions.forEach(([k, p], i) => {
      if (!items[i]) return;
      const lab = this.intro.images.items[i].label, s = items[i].querySelector("span");
      s.textContent = `${lab} / ${k} (${p.toFixed(2)})`;
      s.className = k === lab ? "ok" : "bad";
    });
  }

  drawHists(hist) {
    const box = this.q(".hists");
    if (box.childNodes.length !== hist.length) {
      box.innerHTML = "";
      hist.forEach((h, l) => { const c = document.createElement("canvas"); c.width = 86; c.height = 46; c.title = h.layer || `layer ${l + 1}`; box.appendChild(c); });
    }
    hist.forEach((h, l) => {
      // A playground net has one activation (the intro's regions); your own model's layers each carry theirs.
      const sat = h.saturated || (this.intro ? this.intro.saturated : []);
      const cv = box.childNodes[l], g = cv.getContext("2d"), W = cv.width, H = cv.height;
      g.clearRect(0, 0, W, H);
      const X = (x) => (x + h.r) / (2 * h.r) * W;
      g.fillStyle = "#dcdce4";
      for (const [a, b] of sat) { const x0 = X(Math.max(a, -h.r)), x1 = X(Math.min(b, h.r)); if (x1 > x0) g.fillRect(x0, 0, x1 - x0, H - 9); }
      const mx = Math.max(...h.counts, 1), bw = W / h.counts.length;
      g.fillStyle = RUN_COLOURS[this.run];
      h.counts.forEach((c, i) => { const bh = c / mx * (H - 12); g.fillRect(i * bw, H - 9 - bh, bw - 0.5, bh); });
      g.fillStyle = "#555"; g.font = "8px sans-serif";
      g.fillText(`${h.layer || l + 1}: ±${fmt(h.r)}`, 2, H - 1);
    });
  }

  drawDead() {
    const cv = this.q(".c-dead"), g = cv.getContext("2d"), W = cv.width, H = cv.height;
    g.clearRect(0, 0, W, H);
    g.font = "9px sans-serif";
    // Left: each hidden unit now, dead on the display batch (f' = 0 on every example).
    const units = this.last && this.last.dead_units, uw = W * 0.3;
    if (units) {
      const L = units.length, n = Math.max(...units.map((r) => r.length), 1);
      const cw = Math.min(12, (uw - 4) / n), rh = Math.min(12, (H - 14) / Math.max(L, 1));
      units.forEach((row, l) => row.forEach((dead, j) => {
        g.fillStyle = dead ? "#c92a2a" : "#d3e9d6";
        g.fillRect(j * cw, l * rh, cw - 1, rh - 1);
      }));
      const nd = units.flat().reduce((a, b) => a + b, 0);
      g.fillStyle = "#555"; g.fillText(`dead on data now: ${nd} units`, 0, H - 1);
      this.root.dataset.deadUnits = nd;
    } else { g.fillStyle = "#888"; g.fillText("per-unit map: n/a here", 0, 12); }
    // Right: the probe's dead and saturated fractions per layer over the last frames.
    if (!this.dead.length) { g.fillStyle = "#888"; g.fillText("fractions appear after the first step", uw + 8, 20); return; }
    const L = this.dead[this.dead.length - 1].length, half = (W - uw - 16) / 2, cw = half / HISTORY, rh = (H - 12) / Math.max(L, 1);
    const draw = (hist, x0, rgb) => hist.forEach((col, t) => col.forEach((v, l) => {
      g.fillStyle = v === null ? "#f4f4f4" : `rgba(${rgb},${0.08 + 0.92 * v})`;
      g.fillRect(x0 + t * cw, l * rh, Math.ceil(cw), rh - 1);
    }));
    draw(this.dead, uw + 8, "214,39,40");
    draw(this.sat, uw + 16 + half, "117,65,175");
    g.fillStyle = "#555";
    g.fillText("dead over the window", uw + 8, H - 1);
    g.fillText("saturated", uw + 16 + half, H - 1);
  }

  drawFindings(f) {
    const ul = this.q(".f-list");
    const key = JSON.stringify([f.findings, f.notes]);
    if (key === this._findingsKey) return;
    this._findingsKey = key;
    ul.innerHTML = "";
    if (!f.findings || (!f.findings.length && !(f.notes || []).length)) {
      ul.innerHTML = `<li class="none">${f.probe_steps ? "no problems found so far" : "appear once the net trains"}</li>`;
      return;
    }
    for (const x of f.findings) {
      const li = document.createElement("li");
      li.className = "sev-" + x.severity;
      li.dataset.kind = x.kind;
      li.innerHTML = `<div class="msg">${esc(x.message)}</div>` + (x.cause ? `<div class="cause">cause: ${esc(x.cause)}</div>` : "") +
        (x.advice ? `<div class="advice">fix: ${esc(x.advice)}</div>` : "");
      ul.appendChild(li);
    }
    for (const n of f.notes || []) { const li = document.createElement("li"); li.className = "blind"; li.textContent = n; ul.appendChild(li); }
  }
}

function views() { return Object.values(S.views); }

function axes(g, W, H, top, right) {
  g.strokeStyle = "#999"; g.lineWidth = 1; g.beginPath(); g.moveTo(30, 4); g.lineTo(30, H - 14); g.lineTo(W - 4, H - 14); g.stroke();
  g.fillStyle = "#555"; g.font = "9px sans-serif"; g.fillText(top, 0, 10); g.fillText(right, W - 30, H - 3);
}

// The gradient panels of both runs share one log scale, so A and B can be read against each other.
function drawGrads() {
  const vs = views().filter((v) => v.last && v.last.grads);
  const vals = vs.flatMap((v) => [...v.last.grads.measured, ...(v.last.grads.theory || [])]).filter((x) => x !== null && x > 0);
  for (const v of views()) {
    const cv = v.q(".c-grads"), g = cv.getContext("2d"), W = cv.width, H = cv.height, r = v.q(".r-grads");
    g.clearRect(0, 0, W, H);
    if (!v.last || !v.last.grads) { g.fillStyle = "#888"; g.fillText("press play or step: gradients appear after the first step", 34, 20); r.textContent = ""; continue; }
    let lo = Math.floor(Math.log10(Math.min(...vals))), hi = Math.ceil(Math.log10(Math.max(...vals)));
    if (hi <= lo) hi = lo + 1;
    const gr = v.last.grads, n = gr.measured.length;
    const X = (i) => 34 + i / Math.max(n - 1, 1) * (W - 44), Y = (x) => H - 16 - (Math.log10(x) - lo) / (hi - lo) * (H - 24);
    g.strokeStyle = "#eee"; g.fillStyle = "#777"; g.font = "9px sans-serif";
    for (let e = lo; e <= hi; e += Math.max(1, Math.ceil((hi - lo) / 6))) { g.beginPath(); g.moveTo(30, Y(10 ** e)); g.lineTo(W, Y(10 ** e)); g.stroke(); g.fillText("1e" + e, 2, Y(10 ** e) + 3); }
    for (let i = 0; i < n; i++) g.fillText(i === n - 1 ? "out" : String(i + 1), X(i) - 4, H - 4);
    const xs = gr.measured.map((_, i) => i);
    const pos = (a) => a.map((x) => (x !== null && x > 0 ? x : null));
    if (gr.theory) line(g, xs, pos(gr.theory), X, Y, "#888", [5, 4]);
    line(g, xs, pos(gr.measured), X, Y, RUN_COLOURS[v.run], []);
    g.fillStyle = RUN_COLOURS[v.run];
    gr.measured.forEach((x, i) => { if (x !== null && x > 0) { g.beginPath(); g.arc(X(i), Y(x), 2.5, 0, 7); g.fill(); } });
    const first = gr.measured[0], last = gr.measured[n - 1];
    const ratio = first !== null && last ? first / last : null;
    r.dataset.ratio = ratio === null ? "" : ratio;
    r.textContent = `layer 1 / output: ${fmt(ratio)}` + (gr.theory ? ` (theory ${fmt(gr.theory[0] / gr.theory[n - 1])})` : (v.last.theory_note ? ` (${v.last.theory_note})` : ""));
  }
}

// ------------------------------------------------------------------ start
async function main() {
  const r = await fetch("/api/controls");
  const j = await r.json();
  S.controls = j.controls;
  S.defaults = j.default;
  SHARED = j.shared;
  S.noiseDefaults = j.noise;
  bindControls();
  fromURL();
  S.live = new URLSearchParams(location.search).get("live") === "1";
  if (S.live) { $("controls").hidden = true; document.querySelector(".transport").hidden = true; }
  $("compare").checked = S.compare;
  $("edit-tabs").hidden = !S.compare;
  showControls();
  connect();
}
main();
