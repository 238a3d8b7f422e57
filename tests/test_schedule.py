"""Learning-rate schedules (src/train/schedule.c) against torch.optim.lr_scheduler.

For every kind and variant, tests/test_schedule prints the rate at positions
0..N (N >= 120) from a text spec; torch's scheduler, stepped after each
optimizer step, gives its rates over the same positions. They must agree to
1e-9 relative (1e-15 of the base rate where torch's is 0). Warm-up is checked
against torch's ChainedScheduler([LinearLR, S]) where torch can chain S, and
against the product of the two torch schedules otherwise. Resuming from the
state's text must give the very same numbers; the LR range test's ramp and
suggestion are checked against the rule schedule.h documents; bad specs must
fail with a message naming the spec.

usage: test_schedule.py TEST_SCHEDULE_BINARY
"""
import math
import subprocess
import sys
import warnings

import numpy as np
import torch
from torch.optim import lr_scheduler as S

PROG = sys.argv[1]
REL = 1e-9
RNG = np.random.default_rng(5)
results = {"passed": 0, "failed": 0}
warnings.filterwarnings("ignore", category=UserWarning)


def report(title, ok, detail=""):
    results["passed" if ok else "failed"] += 1
    print(f"{'PASS' if ok else 'FAIL'} {title}{': ' + detail if detail else ''}", flush=True)


def graft_lrs(spec, base_lr, steps, metrics=None, resume=None):
    args = [PROG] + (["--resume", str(resume)] if resume is not None else []) + [spec, repr(base_lr), str(steps)]
    stdin = None
    if metrics is not None:
        args.append("-")
        stdin = "\n".join(repr(float(m)) for m in metrics) + "\n"
    proc = subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip())
    return proc.stdout.split()


def torch_lrs(make, base_lr, steps, metrics=None):
    """The rate at positions 0..steps of the scheduler make(optimizer) builds."""
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=base_lr, momentum=0.9)
    sched = make(opt)
    lrs = [opt.param_groups[0]["lr"]]
    for t in range(steps):
        opt.step()
        sched.step(metrics[t]) if metrics is not None else sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    return np.array(lrs)


def compare(title, spec, base_lr, steps, want, metrics=None):
    try:
        got = np.array([float(x) for x in graft_lrs(spec, base_lr, steps, metrics)])
    except RuntimeError as e:
        report(title, False, str(e))
        return
    if got.shape != want.shape:
        report(title, False, f"{got.size} rates, expected {want.size}")
        return
    err = np.abs(got - want)
    bound = REL * np.abs(want) + 1e-15 * base_lr
    worst = int(np.argmax(err / bound))
    ok = bool(np.all(err <= bound))
    rel = float(np.max(err / np.maximum(np.abs(want), 1e-300)))
    exact = " (bit-identical)" if np.array_equal(got, want) else ""
    detail = f"{steps + 1} rates, max rel err {rel:.1e}{exact}"
    if not ok:
        detail += f"; at t={worst}: {got[worst]!r} vs torch {want[worst]!r}"
    report(f"{title} '{spec}'", ok, detail)


def plateau_metrics(steps, mode="min"):
    """A loss that falls, stalls with noise, falls again, then creeps up."""
    t = np.arange(steps)
    m = np.where(t < 25, 1.0 / (1 + t / 8.0), 1.0 / (1 + 25 / 8.0))
    m = m - np.where(t >= 60, (t - 60) * 0.004, 0) + np.where(t >= 90, (t - 90) * 0.01, 0)
    m = m + RNG.normal(0, 0.002, steps)
    m[40] = m[41] = 0.05  # a sudden improvement, then the noisy plateau again
    return list(-m if mode == "max" else m)


# (title, spec, base_lr, steps, torch scheduler factory, plateau metrics or None)
CASES = [
    ("constant", "constant", 0.1, 120, lambda o: S.LambdaLR(o, lambda t: 1.0), None),
    ("step", "step:10", 0.1, 130, lambda o: S.StepLR(o, 10), None),
    ("step", "step:7:0.5", 0.3, 130, lambda o: S.StepLR(o, 7, gamma=0.5), None),
    ("step by name", "step:step_size=7:gamma=0.5", 0.3, 130, lambda o: S.StepLR(o, 7, gamma=0.5), None),
    ("multistep", "multistep:30,60:0.1", 0.1, 120, lambda o: S.MultiStepLR(o, [30, 60], 0.1), None),
    ("multistep repeated", "multistep:10,10,50,51:0.5", 0.2, 120,
     lambda o: S.MultiStepLR(o, [10, 10, 50, 51], 0.5), None),
    ("exp", "exp:0.95", 0.1, 150, lambda o: S.ExponentialLR(o, 0.95), None),
    ("cosine", "cosine:100", 0.1, 120, lambda o: S.CosineAnnealingLR(o, 100), None),
    ("cosine eta_min past T_max", "cosine:30:0.001", 0.05, 150,
     lambda o: S.CosineAnnealingLR(o, 30, eta_min=0.001), None),
    ("onecycle", "onecycle:0.1:200", 0.1, 200, lambda o: S.OneCycleLR(o, 0.1, total_steps=200), None),
    ("onecycle linear pct_start", "onecycle:0.1:150:0.25:anneal=linear", 0.1, 150,
     lambda o: S.OneCycleLR(o, 0.1, total_steps=150, pct_start=0.25, anneal_strategy="linear"), None),
    ("onecycle three_phase", "onecycle:0.05:120:three_phase=1", 0.1, 120,
     lambda o: S.OneCycleLR(o, 0.05, total_steps=120, three_phase=True), None),
    ("onecycle divisors linear three_phase", "onecycle:0.2:125:0.4:anneal=linear:div_factor=10:final_div_factor=100:three_phase=1",
     0.1, 125, lambda o: S.OneCycleLR(o, 0.2, total_steps=125, pct_start=0.4, anneal_strategy="linear",
                                      div_factor=10.0, final_div_factor=100.0, three_phase=True), None),
    ("plateau", "plateau:0.1:5", 0.1, 130, lambda o: S.ReduceLROnPlateau(o, factor=0.1, patience=5),
     plateau_metrics(130)),
    ("plateau defaults", "plateau", 0.1, 130, lambda o: S.ReduceLROnPlateau(o), plateau_metrics(130)),
    ("plateau rel threshold cooldown", "plateau:0.5:2:threshold=0.05:cooldown=3", 0.1, 130,
     lambda o: S.ReduceLROnPlateau(o, factor=0.5, patience=2, threshold=0.05, cooldown=3), plateau_metrics(130)),
    ("plateau max abs min_lr", "plateau:0.5:3:mode=max:threshold_mode=abs:threshold=0.001:cooldown=2:min_lr=0.004",
     0.1, 130, lambda o: S.ReduceLROnPlateau(o, mode="max", factor=0.5, patience=3, threshold_mode="abs",
                                             threshold=0.001, cooldown=2, min_lr=0.004), plateau_metrics(130, "max")),
    ("plateau eps", "plateau:0.5:0:eps=0.02", 0.1, 120,
     lambda o: S.ReduceLROnPlateau(o, factor=0.5, patience=0, eps=0.02), [1.0] * 120),
]


def linear_warmup(start_factor, steps):
    return lambda o: S.LinearLR(o, start_factor=start_factor, end_factor=1.0, total_iters=steps)


def chained(first, second):
    return lambda o: S.ChainedScheduler([first(o), second(o)])


# (title, spec, base_lr, steps, warm-up (start_factor, steps), torch factory, chainable, metrics)
WARMUP_CASES = [
    ("constant", "constant:warmup=4:warmup_start=0.25", 0.1, 120, (0.25, 4), lambda o: S.LambdaLR(o, lambda t: 1.0), False,
     None),
    ("step", "step:10:0.5:warmup=5", 0.1, 120, (1 / 3, 5), lambda o: S.StepLR(o, 10, 0.5), True, None),
    ("multistep", "multistep:30,60:warmup=20:warmup_start=0.1", 0.1, 120, (0.1, 20),
     lambda o: S.MultiStepLR(o, [30, 60]), True, None),
    ("exp", "exp:0.97:warmup=10:warmup_start=0.1", 0.1, 120, (0.1, 10), lambda o: S.ExponentialLR(o, 0.97), True, None),
    ("cosine", "cosine:100:warmup=8", 0.1, 130, (1 / 3, 8), lambda o: S.CosineAnnealingLR(o, 100), True, None),
    ("cosine eta_min", "cosine:100:1e-4:warmup=8", 0.1, 130, (1 / 3, 8),
     lambda o: S.CosineAnnealingLR(o, 100, eta_min=1e-4), False, None),
    ("onecycle", "onecycle:0.1:150:warmup=5:warmup_start=0.5", 0.1, 150, (0.5, 5),
     lambda o: S.OneCycleLR(o, 0.1, total_steps=150), False, None),
    ("plateau", "plateau:0.5:3:warmup=10", 0.1, 130, (1 / 3, 10),
     lambda o: S.ReduceLROnPlateau(o, factor=0.5, patience=3), False, plateau_metrics(130)),
]


def check_schedules():
    for title, spec, base_lr, steps, make, metrics in CASES:
        compare(title, spec, base_lr, steps, torch_lrs(make, base_lr, steps, metrics), metrics)
    for title, spec, base_lr, steps, (start, n), make, chainable, metrics in WARMUP_CASES:
        product = torch_lrs(make, base_lr, steps, metrics) * torch_lrs(linear_warmup(start, n), 1.0, steps)
        compare(f"warm-up x {title} = product of torch's", spec, base_lr, steps, product, metrics)
        if chainable:
            compare(f"warm-up x {title} = torch's ChainedScheduler", spec, base_lr, steps,
                    torch_lrs(chained(linear_warmup(start, n), make), base_lr, steps))


def check_resume():
    specs = [("cosine:50:1e-3:warmup=5", None), ("onecycle:0.1:120:three_phase=1", None),
             ("plateau:0.5:2:cooldown=3:mode=max", plateau_metrics(120, "max")), ("multistep:20,40,80:0.3", None)]
    for spec, metrics in specs:
        straight = graft_lrs(spec, 0.1, 120, metrics)
        for at in (1, 37, 64):
            resumed = graft_lrs(spec, 0.1, 120, metrics, resume=at)
            report(f"resume '{spec}' after {at} advances", resumed == straight,
                   "the same rates, to the last digit" if resumed == straight else "the rates differ")


def check_range():
    out = subprocess.run([PROG, "--range", "1e-7", "10", "100"], capture_output=True, text=True).stdout.split()
    got = np.array([float(x) for x in out])
    want = 1e-7 * (10 / 1e-7) ** (np.arange(100) / 99)
    err = float(np.max(np.abs(got - want) / want))
    report("range ramp 1e-7..10 over 100 steps", got.size == 100 and err <= 1e-12 and got[0] == 1e-7,
           f"max rel err {err:.1e}, last {got[-1]!r}")


def suggestion_rule(lrs, losses):
    """schedule.h's rule, in numpy."""
    smooth, avg, lowest = [], 0.0, math.inf
    for i, loss in enumerate(losses):
        if not math.isfinite(loss):
            break
        avg = 0.98 * avg + 0.02 * loss
        s = avg / (1 - 0.98 ** (i + 1))
        if smooth and s > 4 * lowest:
            break
        lowest = min(lowest, s)
        smooth.append(s)
    m = len(smooth)
    slopes = np.gradient(np.array(smooth), np.log(lrs[:m]))
    return lrs[int(np.argmin(slopes))]


def suggest(lrs, losses):
    text = "".join(f"{lr!r} {loss!r}\n" for lr, loss in zip(lrs, losses))
    proc = subprocess.run([PROG, "--suggest"], input=text, capture_output=True, text=True)
    return (float(proc.stdout), None) if proc.returncode == 0 else (None, proc.stderr.strip())


def check_suggestion():
    n = 200
    lrs = 1e-6 * (1.0 / 1e-6) ** (np.arange(n) / (n - 1))
    x = np.log10(lrs)
    # falls fastest at lr = 10^-3.5, then diverges past 0.1
    clean = 2.3 - 1.5 / (1 + np.exp(-2.5 * (x + 3.5))) + np.where(x > -1, np.expm1(3 * (x + 1)) * 4, 0)
    for title, losses in (("smooth curve", clean), ("noisy curve", clean + RNG.normal(0, 0.03, n))):
        got, err = suggest(lrs, losses)
        if err:
            report(f"suggestion, {title}", False, err)
            continue
        want = suggestion_rule(lrs, list(losses))
        near = abs(math.log10(got) + 3.5) < 1
        report(f"suggestion, {title}", got == want and near,
               f"{got:.3e} (the rule in numpy: {want:.3e}; steepest fall of the curve at 3.2e-04)")
    losses = list(clean)
    losses[60] = float("nan")
    got, err = suggest(lrs, losses)
    report("suggestion stops at a NaN loss", got == suggestion_rule(lrs, losses) and got < lrs[60], f"{got}")
    _, err = suggest(lrs[:5], [1.0, float("inf"), 1, 1, 1])
    report("suggestion with too few losses fails", err is not None and "at least 3 are needed" in err, err)
    _, err = suggest(lrs[::-1][:10], [1.0] * 10)
    report("suggestion with decreasing rates fails", err is not None and "positive and increasing" in err, err)


BAD_SPECS = [
    ("bogus", "unknown kind 'bogus'"),
    ("", "unknown kind ''"),
    ("step", "step needs step_size"),
    ("step:0", "step_size must be >= 1"),
    ("step:10:abc", "gamma is 'abc'; expected a number"),
    ("step::0.1", "step_size is empty"),
    ("step:10:0.1:3", "unexpected '3'"),
    ("multistep:30,20", "milestones must be ascending; 20 follows 30"),
    ("multistep:3,x:0.1", "milestone 'x' is not a step number"),
    ("exp:0", "gamma must be > 0"),
    ("cosine:100:foo=1", "cosine has no parameter 'foo'"),
    ("cosine:0", "T_max must be >= 1"),
    ("onecycle:0.1", "onecycle needs total_steps"),
    ("onecycle:0.1:100:anneal=cubic", "anneal is 'cubic'; expected cos or linear"),
    ("onecycle:0.1:100:1.5", "pct_start must be in [0, 1]"),
    ("plateau:1.5", "factor must be in [0, 1)"),
    ("plateau:0.1:5:mode=avg", "mode is 'avg'; expected min or max"),
    ("plateau:0.1:2.5", "patience is '2.5'; expected an integer"),
    ("cosine:100:warmup=-1", "warmup must be >= 0 steps"),
    ("step:10:warmup_start=0", "warmup_start must be in (0, 1]"),
]


def check_bad_specs():
    for spec, needle in BAD_SPECS:
        proc = subprocess.run([PROG, spec, "0.1", "3"], capture_output=True, text=True)
        err = proc.stderr.strip()
        ok = proc.returncode == 2 and f"schedule '{spec}'" in err and needle in err
        report(f"bad spec '{spec}'", ok, err if ok else f"wanted '{needle}', got: {err!r}")


def main():
    check_schedules()
    check_resume()
    check_range()
    check_suggestion()
    check_bad_specs()
    print(f"{results['passed']} passed, {results['failed']} failed")
    sys.exit(1 if results["failed"] else 0)


if __name__ == "__main__":
    main()
