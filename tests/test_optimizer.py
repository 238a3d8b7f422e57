"""Optimizer-step ops (domain ai.graft: SGDStep, AdamStep, RMSpropStep, ASGDStep) and
gradient clipping (GradNorm, ClipGradScale), each a one-node model run with `graft run`,
against torch 1.13's torch.optim (foreach=False) and torch.nn.utils.clip_grad_norm_.

Trajectories: 20 steps on a random float32 parameter with a fixed random gradient
sequence; each step's outputs are fed back as the next step's state, `step` counts
from 1 and `lr` is a float32 scalar input. Covered: SGD plain, momentum, dampening,
Nesterov, weight decay, an lr changed between steps; Adam and AdamW with and without
weight decay, amsgrad, other betas/eps; RMSprop plain, weight decay, momentum,
centered, both; ASGD with default t0 and with t0 = 5 (averaging starts), weight decay,
other lambd/alpha; a parameter big enough for the kernels' threads. Learning rates
are float32 values, so torch's Python-double lr and graft's float32 lr input agree.
Tolerance: at every step, for the parameter and every state tensor,
max|graft - torch| <= 1e-6 * max|torch param| (state: max|torch state|). The kernels
follow torch's float32 operation order (fused multiply-adds where torch's kernels
fuse), so the test also reports whether each trajectory is bit-identical, and
requires it: any difference is a departure from torch's order of operations.

Clipping: GradNorm of several gradients (one spanning several of its fixed blocks)
against the float64 sum, within 1e-6 relative, and the same bits on 1 and 3 threads;
ClipGradScale against torch's clip coefficient (bit-identical) with max_norm below and
above the norm; the clipped gradients against clip_grad_norm_'s.
Bad inputs (shapes, dtypes, scalars, missing state, step 0, missing max_norm) fail
with a message naming what is wrong.

usage: test_optimizer.py GRAFT_BINARY
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

GRAFT = sys.argv[1]
TMP = tempfile.mkdtemp(prefix="graft-optimizer-")
RNG = np.random.default_rng(11)
STEPS = 20
REL = 1e-6
results = {"passed": 0, "failed": 0}


def report(title, ok, detail=""):
    results["passed" if ok else "failed"] += 1
    print(f"{'PASS' if ok else 'FAIL'} {title}{': ' + detail if detail else ''}", flush=True)


class OneNode:
    """A one-node ai.graft model. `inputs` lists (name, elem_type, shape) or None for an
    omitted input; `outputs` lists names or None for an omitted output."""

    count = 0

    def __init__(self, op, inputs, outputs, attrs):
        OneNode.count += 1
        self.base = os.path.join(TMP, f"m{OneNode.count}")
        os.makedirs(self.base)
        self.inputs = [i for i in inputs if i is not None]
        self.n_outputs = sum(o is not None for o in outputs)
        node = helper.make_node(op, [i[0] if i else "" for i in inputs], [o or "" for o in outputs],
                                name="node", domain="ai.graft", **attrs)
        graph = helper.make_graph(
            [node], "g", [helper.make_tensor_value_info(n, t, s) for n, t, s in self.inputs],
            [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs if o])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                        helper.make_opsetid("ai.graft", 1)])
        self.path = os.path.join(self.base, "model.onnx")
        onnx.save(model, self.path)

    def run(self, values, threads=None):
        """values: one array per present input. Returns (outputs or None, stderr)."""
        args = [GRAFT, "run", self.path, "--output-dir", self.base]
        for (name, _, _), v in zip(self.inputs, values):
            path = os.path.join(self.base, name + ".pb")
            with open(path, "wb") as f:
                f.write(numpy_helper.from_array(np.asarray(v), name).SerializeToString())
            args += ["--input", path]
        for i in range(self.n_outputs):
            path = os.path.join(self.base, f"output_{i}.pb")
            if os.path.exists(path):
                os.remove(path)
        if threads:
            args += ["--threads", str(threads)]
        proc = subprocess.run(args, capture_output=True, text=True, timeout=300)
        if proc.returncode != 0 or "runtime error" in proc.stderr or "Sanitizer" in proc.stderr:
            return None, proc.stderr.strip() or f"exit {proc.returncode}"
        return [numpy_helper.to_array(onnx.load_tensor(os.path.join(self.base, f"output_{i}.pb")))
                for i in range(self.n_outputs)], proc.stderr


F32, I64 = TensorProto.FLOAT, TensorProto.INT64


def f32(x):
    """A float32 value as a Python float: what both sides use for lr."""
    return float(np.float32(x))


def tensor_slot(name, shape):
    return (name, F32, list(shape))


def scalar_slot(name, elem=F32):
    return (name, elem, [])


# ---- trajectories ----

class Case:
    """One optimizer variant: how to build graft's node and torch's optimizer, and how
    the state maps between them.
    state: list of (graft input name, torch state key, initial value: "zeros" or a callable(lr)).
    layout: the node's input order, naming "param", "grad", "lr", "step", state names or None.
    outputs: the state names each output after the param is the new value of (None: omitted)."""

    def __init__(self, title, op, attrs, torch_opt, state, layout, outputs, shape=(37, 29), lrs=None):
        self.title, self.op, self.attrs, self.torch_opt = title, op, attrs, torch_opt
        self.state, self.layout, self.outputs, self.shape = state, layout, outputs, shape
        self.lrs = lrs or [f32(0.01)] * STEPS


def run_torch(case, param0, grads):
    p = torch.nn.Parameter(torch.from_numpy(param0.copy()))
    opt = case.torch_opt([p], case.lrs[0])
    trajectory = []
    for k in range(STEPS):
        for group in opt.param_groups:
            group["lr"] = case.lrs[k]
        p.grad = torch.from_numpy(grads[k].copy())
        opt.step()
        st = opt.state[p]
        trajectory.append([p.detach().numpy().copy()] +
                          [np.asarray(st[key].detach().numpy() if torch.is_tensor(st[key]) else st[key],
                                      np.float32).copy() for _, key, _ in case.state])
    return trajectory


def run_graft(case, param0, grads):
    shape = case.shape
    kinds = {s[0]: s for s in case.state}
    slots = []
    for name in case.layout:
        if name is None:
            slots.append(None)
        elif name in ("param", "grad"):
            slots.append(tensor_slot(name, shape))
        elif name == "lr":
            slots.append(scalar_slot("lr"))
        elif name == "step":
            slots.append(scalar_slot("step", I64))
        else:
            slots.append(tensor_slot(name, shape) if kinds[name][2] == "zeros" else scalar_slot(name))
    outputs = ["param_new"] + [None if s is None else s + "_new" for s in case.outputs]
    node = OneNode(case.op, slots, outputs, case.attrs)
    values = {"param": param0}
    for name, _, init in case.state:
        values[name] = np.zeros(shape, np.float32) if init == "zeros" else np.asarray(init(case.lrs[0]), np.float32)
    trajectory = []
    for k in range(STEPS):
        values["grad"] = grads[k]
        values["lr"] = np.asarray(case.lrs[k], np.float32)
        values["step"] = np.asarray(k + 1, np.int64)
        out, err = node.run([values[n] for n in case.layout if n is not None])
        if out is None:
            return None, f"step {k + 1}: {err}"
        values["param"] = out[0]
        for name, v in zip([s for s in case.outputs if s is not None], out[1:]):
            values[name] = v
        trajectory.append([values["param"]] + [values[name] for name, _, _ in case.state])
    return trajectory, ""


def check_case(case):
    param0 = RNG.standard_normal(case.shape).astype(np.float32)
    # per-step scales vary the gradients' size, so amsgrad's max and RMSprop's averages move
    grads = [(RNG.standard_normal(case.shape) * RNG.uniform(0.2, 3.0)).astype(np.float32) for _ in range(STEPS)]
    ref = run_torch(case, param0, grads)
    got, err = run_graft(case, param0, grads)
    if got is None:
        report(case.title, False, err)
        return
    worst, identical = 0.0, True
    names = ["param"] + [name for name, _, _ in case.state]
    for k in range(STEPS):
        for name, g, r in zip(names, got[k], ref[k]):
            g, r = np.asarray(g, np.float64).reshape(r.shape), np.asarray(r, np.float64)
            scale = float(np.max(np.abs(r)))
            err = float(np.max(np.abs(g - r)))
            if err > REL * scale:
                report(case.title, False, f"step {k + 1}, {name}: max err {err:.3e} > {REL:g} * {scale:.3e}")
                return
            worst = max(worst, err / scale if scale else err)
            identical = identical and np.array_equal(g, r)
    report(case.title, identical, f"{STEPS} steps, max err {worst:.2e} relative, "
                                  f"{'bit-identical' if identical else 'NOT bit-identical'}")


def sgd(title, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0, **kw):
    attrs = dict(momentum=momentum, dampening=dampening, nesterov=int(nesterov), weight_decay=weight_decay)
    opt = lambda params, lr: torch.optim.SGD(params, lr=lr, momentum=momentum, dampening=dampening,
                                             nesterov=nesterov, weight_decay=weight_decay, foreach=False)
    if momentum:
        return Case(title, "SGDStep", attrs, opt, [("momentum_buf", "momentum_buffer", "zeros")],
                    ["param", "grad", "momentum_buf", "lr", "step"], ["momentum_buf"], **kw)
    return Case(title, "SGDStep", attrs, opt, [], ["param", "grad", None, "lr", "step"], [], **kw)


def adam(title, adamw=False, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, **kw):
    attrs = dict(beta1=betas[0], beta2=betas[1], epsilon=eps, weight_decay=weight_decay, decoupled=int(adamw),
                 amsgrad=int(amsgrad))
    cls = torch.optim.AdamW if adamw else torch.optim.Adam
    opt = lambda params, lr: cls(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                                 foreach=False)
    state = [("exp_avg", "exp_avg", "zeros"), ("exp_avg_sq", "exp_avg_sq", "zeros")]
    layout = ["param", "grad", "exp_avg", "exp_avg_sq", "lr", "step"]
    if amsgrad:
        state.append(("max_exp_avg_sq", "max_exp_avg_sq", "zeros"))
        layout.append("max_exp_avg_sq")
    return Case(title, "AdamStep", attrs, opt, state, layout, [s[0] for s in state], **kw)


def rmsprop(title, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False, **kw):
    attrs = dict(alpha=alpha, epsilon=eps, weight_decay=weight_decay, momentum=momentum, centered=int(centered))
    opt = lambda params, lr: torch.optim.RMSprop(params, lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                                 momentum=momentum, centered=centered, foreach=False)
    state = [("square_avg", "square_avg", "zeros")]
    layout = ["param", "grad", "square_avg", "lr", None, None]
    outputs = ["square_avg", None, None]
    if momentum:
        state.append(("momentum_buf", "momentum_buffer", "zeros"))
        layout[4], outputs[1] = "momentum_buf", "momentum_buf"
    if centered:
        state.append(("grad_avg", "grad_avg", "zeros"))
        layout[5], outputs[2] = "grad_avg", "grad_avg"
    while layout[-1] is None:
        layout.pop()
    while outputs[-1] is None:
        outputs.pop()
    return Case(title, "RMSpropStep", attrs, opt, state, layout, outputs, **kw)


def asgd(title, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay=0.0, **kw):
    attrs = dict(lambd=lambd, alpha=alpha, t0=t0, weight_decay=weight_decay)
    opt = lambda params, lr: torch.optim.ASGD(params, lr=lr, lambd=lambd, alpha=alpha, t0=t0,
                                              weight_decay=weight_decay, foreach=False)
    state = [("ax", "ax", "zeros"), ("eta", "eta", lambda lr: lr), ("mu", "mu", lambda lr: 1.0)]
    return Case(title, "ASGDStep", attrs, opt, state, ["param", "grad", "ax", "eta", "mu", "lr", "step"],
                ["ax", "eta", "mu"], **kw)


DECAYING_LR = [f32(0.05 * 0.9 ** k) for k in range(STEPS)]

CASES = [
    sgd("SGD"),
    sgd("SGD weight_decay=0.01", weight_decay=0.01),
    sgd("SGD momentum=0.9", momentum=0.9),
    sgd("SGD momentum=0.9 dampening=0.1", momentum=0.9, dampening=0.1),
    sgd("SGD momentum=0.9 nesterov", momentum=0.9, nesterov=True),
    sgd("SGD momentum=0.8 nesterov weight_decay=5e-4", momentum=0.8, nesterov=True, weight_decay=5e-4),
    sgd("SGD momentum=0.9 dampening=0.5 weight_decay=1e-3, lr changing every step", momentum=0.9,
        dampening=0.5, weight_decay=1e-3, lrs=DECAYING_LR),
    sgd("SGD momentum=0.9 on 38700 elements (threads)", momentum=0.9, weight_decay=1e-4, shape=(300, 129)),
    adam("Adam"),
    adam("Adam weight_decay=0.01 (L2)", weight_decay=0.01),
    adam("Adam amsgrad", amsgrad=True),
    adam("Adam amsgrad weight_decay=0.1 betas=(0.8,0.99) eps=1e-6", amsgrad=True, weight_decay=0.1,
         betas=(0.8, 0.99), eps=1e-6),
    adam("AdamW weight_decay=0.01", adamw=True, weight_decay=0.01),
    adam("AdamW weight_decay=0 ", adamw=True),
    adam("AdamW amsgrad weight_decay=0.05, lr changing every step", adamw=True, amsgrad=True,
         weight_decay=0.05, lrs=DECAYING_LR),
    adam("Adam on 38700 elements (threads)", weight_decay=1e-4, shape=(300, 129)),
    rmsprop("RMSprop"),
    rmsprop("RMSprop alpha=0.9 eps=1e-6 weight_decay=0.01", alpha=0.9, eps=1e-6, weight_decay=0.01),
    rmsprop("RMSprop momentum=0.9", momentum=0.9),
    rmsprop("RMSprop centered", centered=True),
    rmsprop("RMSprop centered momentum=0.5 weight_decay=1e-3", centered=True, momentum=0.5, weight_decay=1e-3),
    rmsprop("RMSprop centered momentum=0.9 on 38700 elements (threads)", centered=True, momentum=0.9,
            shape=(300, 129)),
    asgd("ASGD"),
    asgd("ASGD t0=5 (averaging from step 6)", t0=5),
    asgd("ASGD t0=3 lambd=0.01 alpha=0.5 weight_decay=0.01", t0=3, lambd=0.01, alpha=0.5, weight_decay=0.01,
         lrs=[f32(0.05)] * STEPS),
    asgd("ASGD t0=2 on 38700 elements, lr changing every step (threads)", t0=2, shape=(300, 129),
         lrs=DECAYING_LR),
]


# ---- omitted outputs ----

def check_omitted_outputs():
    """A step whose optional state outputs are omitted computes the same new parameter
    (the kernels write omitted outputs to scratch), and a finite one: one step 3 from
    random state, on 38700 elements (threads), against the same node with every output."""
    shape = (300, 129)
    # op, attributes, inputs in order, state outputs after the parameter, which of the outputs are omitted
    cases = [("SGDStep", dict(momentum=0.9, nesterov=1, weight_decay=1e-4), ["param", "grad", "momentum_buf", "lr", "step"],
              ["momentum_buf"], [1]),
             ("AdamStep", dict(weight_decay=0.01), ["param", "grad", "exp_avg", "exp_avg_sq", "lr", "step"],
              ["exp_avg", "exp_avg_sq"], [1, 2]),
             ("AdamStep", dict(amsgrad=1, decoupled=1, weight_decay=0.01),
              ["param", "grad", "exp_avg", "exp_avg_sq", "lr", "step", "max_exp_avg_sq"],
              ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"], [1, 3]),
             ("RMSpropStep", dict(centered=1, momentum=0.9, weight_decay=1e-3),
              ["param", "grad", "square_avg", "lr", "momentum_buf", "grad_avg"],
              ["square_avg", "momentum_buf", "grad_avg"], [1, 2, 3]),
             ("ASGDStep", dict(t0=1), ["param", "grad", "ax", "eta", "mu", "lr", "step"], ["ax"], [1])]
    scalars = {"lr": 0.01, "eta": 0.01, "mu": 0.5}
    for op, attrs, layout, state, omitted in cases:
        slots = [scalar_slot(n) if n in scalars else scalar_slot("step", I64) if n == "step" else tensor_slot(n, shape)
                 for n in layout]
        values = {n: RNG.standard_normal(shape).astype(np.float32) for n in ["param", "grad"] + state}
        # second moments positive; RMSprop's above the square of its mean gradient (centered)
        for n in state:
            if "sq" in n:
                values[n] = np.abs(values[n]) * 0.1 + (n == "square_avg")
        if "grad_avg" in values:
            values["grad_avg"] *= 0.1
        for n, v in scalars.items():
            values[n] = np.asarray(f32(v), np.float32)
        values["step"] = np.asarray(3, np.int64)
        full = OneNode(op, slots, ["param_new"] + [n + "_new" for n in state], attrs)
        part = OneNode(op, slots, ["param_new"] + [None if k + 1 in omitted else n + "_new" for k, n in enumerate(state)],
                       attrs)
        want, err = full.run([values[n] for n in layout])
        got, err2 = part.run([values[n] for n in layout])
        title = f"{op} {attrs} with outputs {omitted} omitted: the same new parameter"
        if want is None or got is None:
            report(title, False, err or err2)
            continue
        report(title, np.all(np.isfinite(want[0])) and np.array_equal(want[0], got[0]))


# ---- clipping ----

def check_clipping():
    shapes = [(64, 3, 3, 3), (64,), (300, 300), (10,)]      # the third spans several 65536-element blocks
    grads = [(RNG.standard_normal(s) * RNG.uniform(0.1, 2)).astype(np.float32) for s in shapes]
    node = OneNode("GradNorm", [tensor_slot(f"g{i}", s) for i, s in enumerate(shapes)], ["norm"], {})
    exact = float(np.sqrt(sum(np.sum(g.astype(np.float64) ** 2) for g in grads)))
    params = [torch.nn.Parameter(torch.zeros(s)) for s in shapes]
    for p, g in zip(params, grads):
        p.grad = torch.from_numpy(g.copy())
    torch_norm = float(torch.nn.utils.clip_grad_norm_(params, max_norm=1e9))
    runs = [node.run(grads, threads)[0] for threads in (None, 1, 3)]
    if runs[0] is None:
        report("GradNorm", False, node.run(grads)[1])
        return
    norm = float(runs[0][0])
    report("GradNorm against the float64 norm and torch's", abs(norm - exact) <= REL * exact and
           abs(norm - torch_norm) <= REL * exact,
           f"graft {norm:.9g}, float64 {exact:.9g}, torch {torch_norm:.9g}")
    report("GradNorm: the same bits on 1 and 3 threads",
           all(r is not None and np.array_equal(r[0], runs[0][0]) for r in runs))

    for max_norm in (norm / 7, norm * 3, 0.5):
        node = OneNode("ClipGradScale", [scalar_slot("norm")], ["scale"], {"max_norm": max_norm})
        out, err = node.run([np.asarray(norm, np.float32)])
        ref = torch.clamp(float(np.float32(max_norm)) / (torch.tensor(norm, dtype=torch.float32) + 1e-6), max=1.0)
        if out is None:
            report(f"ClipGradScale max_norm={max_norm:.4g}", False, err)
            continue
        # the clipped gradients, as clip_grad_norm_ leaves them
        for p, g in zip(params, grads):
            p.grad = torch.from_numpy(g.copy())
        torch.nn.utils.clip_grad_norm_(params, max_norm=float(np.float32(max_norm)))
        clipped_same = all(np.allclose(g * out[0], p.grad.numpy(), rtol=REL, atol=0) for p, g in zip(params, grads))
        report(f"ClipGradScale max_norm={max_norm:.4g} (norm {norm:.4g})",
               np.array_equal(out[0], ref.numpy()) and clipped_same,
               f"scale {float(out[0]):.9g}, torch {float(ref):.9g}, clipped gradients "
               f"{'as' if clipped_same else 'NOT as'} clip_grad_norm_")


# ---- bad inputs ----

def expect_error(title, op, slots, outputs, attrs, values, needles):
    node = OneNode(op, slots, outputs, attrs)
    out, err = node.run(values)
    ok = out is None and all(n in err for n in needles) and "Sanitizer" not in err and "runtime error" not in err
    first = err.splitlines()[0][:240] if err else "no error"
    report(title, ok, first if ok else f"wanted {needles}, got: {err or 'success'}")


def check_bad_inputs():
    p, g = np.ones((4, 3), np.float32), np.ones((4, 3), np.float32)
    lr, step = np.asarray(0.1, np.float32), np.asarray(1, np.int64)
    sgd_slots = lambda gs=(4, 3), lr_shape=(), step_type=I64: [
        tensor_slot("param", (4, 3)), tensor_slot("grad", gs), None, ("lr", F32, list(lr_shape)),
        scalar_slot("step", step_type)]
    expect_error("SGDStep: grad of another shape", "SGDStep", sgd_slots((3, 4)), ["o"], {},
                 [p, np.ones((3, 4), np.float32), lr, step], ["grad", "shape [3,4]", "[4,3]"])
    expect_error("SGDStep: lr not a scalar", "SGDStep", sgd_slots(lr_shape=(2,)), ["o"], {},
                 [p, g, np.ones(2, np.float32), step], ["lr", "scalar"])
    expect_error("SGDStep: step not int64", "SGDStep", sgd_slots(step_type=TensorProto.INT32), ["o"], {},
                 [p, g, lr, np.asarray(1, np.int32)], ["step", "int64"])
    expect_error("SGDStep: momentum without a buffer", "SGDStep", sgd_slots(), ["o"], {"momentum": 0.9},
                 [p, g, lr, step], ["momentum_buf", "momentum"])
    expect_error("SGDStep: step 0", "SGDStep", sgd_slots(), ["o"], {}, [p, g, lr, np.asarray(0, np.int64)],
                 ["step is 0"])
    expect_error("AdamStep: amsgrad without max_exp_avg_sq", "AdamStep",
                 [tensor_slot("param", (4, 3)), tensor_slot("grad", (4, 3)), tensor_slot("m", (4, 3)),
                  tensor_slot("v", (4, 3)), scalar_slot("lr"), scalar_slot("step", I64)],
                 ["o", "m2", "v2"], {"amsgrad": 1}, [p, g, p, p, lr, step], ["max_exp_avg_sq", "amsgrad"])
    expect_error("AdamStep: exp_avg_sq of another shape", "AdamStep",
                 [tensor_slot("param", (4, 3)), tensor_slot("grad", (4, 3)), tensor_slot("m", (4, 3)),
                  tensor_slot("v", (12,)), scalar_slot("lr"), scalar_slot("step", I64)],
                 ["o", "m2", "v2"], {}, [p, g, p, np.ones(12, np.float32), lr, step], ["exp_avg_sq", "shape"])
    expect_error("RMSpropStep: centered without grad_avg", "RMSpropStep",
                 [tensor_slot("param", (4, 3)), tensor_slot("grad", (4, 3)), tensor_slot("sq", (4, 3)),
                  scalar_slot("lr")], ["o", "sq2"], {"centered": 1}, [p, g, p, lr], ["grad_avg", "centered"])
    expect_error("ASGDStep: eta not a scalar", "ASGDStep",
                 [tensor_slot("param", (4, 3)), tensor_slot("grad", (4, 3)), tensor_slot("ax", (4, 3)),
                  tensor_slot("eta", (4, 3)), scalar_slot("mu"), scalar_slot("lr"), scalar_slot("step", I64)],
                 ["o", "ax2", "eta2", "mu2"], {}, [p, g, p, p, np.asarray(1, np.float32), lr, step],
                 ["eta", "scalar"])
    expect_error("ClipGradScale: no max_norm", "ClipGradScale", [scalar_slot("norm")], ["s"], {},
                 [np.asarray(1, np.float32)], ["max_norm"])
    expect_error("GradNorm: int64 gradient", "GradNorm", [("g", I64, [3])], ["n"], {},
                 [np.ones(3, np.int64)], ["int64"])


def main():
    for case in CASES:
        check_case(case)
    check_omitted_outputs()
    check_clipping()
    check_bad_inputs()
    print(f"{results['passed']} passed, {results['failed']} failed")
    sys.exit(1 if results["failed"] else 0)


if __name__ == "__main__":
    main()
