"""The playground's responsiveness: time to the first frame after ``actlab play``, and frames
with new data per second while the default net trains (goals: < 3 s and >= 10 per second).

Starts ``actlab play --no-browser`` as a user would, reads the URL it prints, connects a
WebSocket client (the ``websockets`` package) the way the page does, asks for the opening setup
(or ``--setup``), and presses play.  Counted:

- *URL*: process start -> URL printed (imports + server listening);
- *first frame*: process start -> the first frame of the opening setup received (what the page
  shows first; the page itself adds its own load time, ~0.1 s locally); a ``--setup`` is given to
  ``actlab play`` too, as a shared link would be;
- *frames/s*: distinct frames (new sequence numbers, each with a new training step) received per
  second over ``--seconds`` of training, and the training steps per second alongside;
- *CPU ms*: CPU time of the training thread per frame and per step (medians, from the frames),
  which a busy machine does not inflate as it does wall time.

Timings depend on the machine's load: print them with it (the load average is printed too).
``--starts N`` starts the server N times and reports each start-up and their median (the frame
rate is measured on the last start).

    python benchmarks/play.py
    python benchmarks/play.py --starts 5 --seconds 4
    python benchmarks/play.py --seconds 10 --setup "activation=sigmoid&depth=10" --json-out out.json

Exits 1 when a goal is missed; `--json` prints the figures as JSON on stdout (the lines above go
to stderr).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import time

from _bench import add_output_options, finish, parse, progress, tables


async def _measure(url: str, t0: float, seconds: float, config: dict) -> dict:
    """First frame after ``t0``, then (``seconds`` > 0) frames while training."""
    import websockets

    ws_url = url.replace("http://", "ws://").split("?")[0] + "ws"
    async with websockets.connect(ws_url, max_size=2**24) as ws:
        await ws.send(json.dumps({"type": "configure", "config": config}))
        first = None
        while first is None:
            m = json.loads(await ws.recv())
            if m["type"] == "error":
                raise SystemExit(f"server refused the setup: {m['message']}")
            if m["type"] == "frame":
                first = time.perf_counter() - t0
        if seconds <= 0:
            return {"first_frame_s": first}
        await ws.send(json.dumps({"type": "play"}))
        seqs, steps, frame_cpu, step_cpu = set(), [], [], []
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            try:
                m = json.loads(await asyncio.wait_for(ws.recv(), timeout=max(0.01, seconds - (time.perf_counter() - start))))
            except asyncio.TimeoutError:
                break
            if m["type"] == "frame" and m["state"] == "running":
                seqs.add(m["seq"])
                steps.append(m["step"])
                cost = m.get("cost") or {}
                frame_cpu.append(cost.get("frame_cpu_ms"))
                if cost.get("step_cpu_ms") is not None:
                    step_cpu.append(cost["step_cpu_ms"])
        elapsed = time.perf_counter() - start
        await ws.send(json.dumps({"type": "pause"}))
    return {"first_frame_s": first, "frames_per_s": len(seqs) / elapsed,
            "steps_per_s": (max(steps) - min(steps)) / elapsed if len(steps) > 1 else 0.0,
            "frames": len(seqs), "seconds": elapsed,
            "frame_cpu_ms": statistics.median(x for x in frame_cpu if x is not None) if frame_cpu else None,
            "step_cpu_ms": statistics.median(step_cpu) if step_cpu else None}


def _start(setup: str, config: dict, seconds: float) -> dict:
    """Start ``actlab play [SETUP]`` once: URL and first frame (and the frame rate when ``seconds`` > 0)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", "from actlab.cli import main; main()", "play", "--no-browser"]
                            + ([setup] if setup else []),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = None
        while url is None:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                raise SystemExit(f"actlab play exited with {proc.returncode}")
            m = re.search(r"http://\S+/", line)
            url = m.group(0) if m else None
        t_url = time.perf_counter() - t0
        res = asyncio.run(_measure(url, t0, seconds, config))
    finally:
        proc.terminate()
        proc.wait(30)
    res["url_s"] = t_url
    return res


FIRST_FRAME_S = 3.0   # goal: process start -> first frame, seconds
FRAMES_PER_S = 10.0   # goal: frames with new data per second while training


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=8.0, help="how long to train while counting frames")
    ap.add_argument("--setup", default="", help="a setup as in a shared link ('activation=relu&depth=10')")
    ap.add_argument("--starts", type=int, default=1, help="start the server this many times (median start-up)")
    add_output_options(ap)
    args = parse(ap, argv)

    from actlab.play.config import parse_query

    config = parse_query(args.setup)[0].to_dict()
    runs = []
    n = max(1, args.starts)
    for i in range(n):
        progress(f"start {i + 1}/{n}: `actlab play --no-browser` ...")
        runs.append(_start(args.setup, config, args.seconds if i == n - 1 else 0.0))
        progress(f"  URL after {runs[-1]['url_s']:.2f} s, first frame after {runs[-1]['first_frame_s']:.2f} s")
    res = runs[-1]
    res["starts"] = [{"url_s": r["url_s"], "first_frame_s": r["first_frame_s"]} for r in runs]
    res["url_s"] = statistics.median(r["url_s"] for r in runs)
    res["first_frame_s"] = statistics.median(r["first_frame_s"] for r in runs)
    res["setup"] = config
    res["load_average"] = os.getloadavg()
    res["cpus"] = os.cpu_count()
    res["targets"] = [{"target": f"first frame < {FIRST_FRAME_S:g} s", "value": res["first_frame_s"],
                       "met": res["first_frame_s"] < FIRST_FRAME_S},
                      {"target": f"frames with new data >= {FRAMES_PER_S:g}/s", "value": res["frames_per_s"],
                       "met": res["frames_per_s"] >= FRAMES_PER_S}]
    with tables(args):
        if len(runs) > 1:
            print("start-ups (URL / first frame, s): "
                  + ", ".join(f"{r['url_s']:.2f} / {r['first_frame_s']:.2f}" for r in runs))
        print(f"actlab play: URL after {res['url_s']:.2f} s, first frame after {res['first_frame_s']:.2f} s "
              f"(goal < {FIRST_FRAME_S:g} s)" + (f", medians of {len(runs)} starts" if len(runs) > 1 else ""))
        print(f"training: {res['frames_per_s']:.1f} frames with new data per second (goal >= {FRAMES_PER_S:g}), "
              f"{res['steps_per_s']:.0f} steps/s, over {res['seconds']:.1f} s")
        if res["frame_cpu_ms"] is not None and res["step_cpu_ms"] is not None:
            f, st = res["frame_cpu_ms"], res["step_cpu_ms"]
            print(f"CPU time of the training thread (median): {f:.1f} ms per frame, {st:.1f} ms per step; "
                  f"a core of its own would allow ~{min(20.0, 1e3 / (f + st)):.0f} frames/s at the 20/s cap")
        la = res["load_average"]
        print(f"machine: {res['cpus']} CPUs, load average {la[0]:.1f} / {la[1]:.1f} / {la[2]:.1f} (1 / 5 / 15 min)")
    return finish(args, res, failed=[t["target"] for t in res["targets"] if not t["met"]])


if __name__ == "__main__":
    sys.exit(main())
