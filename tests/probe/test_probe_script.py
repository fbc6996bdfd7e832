"""``actlab.probe.script``: a user's script probed unchanged, from each optimizer's first step."""

from __future__ import annotations

import json
import runpy
import sys
import textwrap

import torch

from actlab.probe.script import run_script

# Writes its own per-step losses (as exact float hex) to the file named by its first argument.
SCRIPT = textwrap.dedent('''
    import json, sys
    import torch
    import torch.nn.functional as F
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    losses = []
    for i in range(6):
        x, y = torch.randn(32, 8), torch.randint(0, 3, (32,))
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(float(loss).hex())
    json.dump(losses, open(sys.argv[1], "w"))
''')


def test_the_first_step_is_recorded_and_training_unchanged(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    plain, probed = tmp_path / "plain.json", tmp_path / "probed.json"
    saved = sys.argv
    sys.argv = [str(script), str(plain)]
    try:
        runpy.run_path(str(script), run_name="__main__")
    finally:
        sys.argv = saved
    add = torch.optim.Optimizer.add_param_group
    found = run_script(script, [str(probed)])
    assert torch.optim.Optimizer.add_param_group is add  # the patch is undone
    (probe,) = found.probes
    assert not probe._attached
    data = probe.read()
    # every step, the first included: its forward, its backward and its loss
    assert data.steps() == [0, 1, 2, 3, 4, 5]
    assert sorted(data.param_norms) == [0, 1, 2, 3, 4, 5]
    assert [s for s, _ in data.losses] == [0, 1, 2, 3, 4, 5]
    own = [float.fromhex(v) for v in json.loads(probed.read_text())]
    assert [v for _, v in data.losses] == own
    assert json.loads(probed.read_text()) == json.loads(plain.read_text())  # bit-identical training


def test_parameters_added_later_get_their_own_probe(tmp_path):
    # an optimizer made for one model and then given another's parameters (add_param_group)
    script = tmp_path / "two.py"
    script.write_text(textwrap.dedent('''
        import torch
        from torch import nn
        a, b = nn.Sequential(nn.Linear(4, 4), nn.ReLU()), nn.Sequential(nn.Linear(4, 2), nn.Sigmoid())
        opt = torch.optim.SGD(a.parameters(), lr=0.1)
        opt.add_param_group({"params": b.parameters()})
        for _ in range(3):
            opt.zero_grad()
            b(a(torch.randn(8, 4))).sum().backward()
            opt.step()
    '''))
    found = run_script(script)
    assert [type(p.model).__name__ for p in found.probes] == ["Sequential", "Sequential"]
    first, second = found.probes
    assert first.steps() == [0, 1, 2] and second.steps() == [0, 1, 2]


def test_one_model_two_optimizers_is_one_probe(tmp_path):
    script = tmp_path / "gan.py"
    script.write_text(textwrap.dedent('''
        import torch
        from torch import nn
        m = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 1))
        o1 = torch.optim.SGD(m[0].parameters(), lr=0.1)
        o2 = torch.optim.Adam(m[2].parameters(), lr=0.1)
        for _ in range(2):
            o1.zero_grad(); o2.zero_grad()
            m(torch.randn(8, 4)).sum().backward()
            o1.step(); o2.step()
    '''))
    found = run_script(script)
    assert len(found.probes) == 1 and found.probes[0].steps() == [0, 1]
