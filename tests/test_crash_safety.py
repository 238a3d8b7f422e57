#!/usr/bin/env python3
"""Crash safety of checkpoints and exported models: written to a temporary beside
the file, fsynced, renamed over it, the folder fsynced; so a process killed at any
moment leaves the previous checkpoint intact, and a full disk gives an error that
names the file, leaves the previous file as it was and leaves no temporary behind.

    test_crash_safety.py GRAFT_EXE SOURCE_ROOT

  - strace (when installed) shows the order: create the temporary (O_EXCL), fsync
    it, rename it over the file, fsync the folder;
  - `graft train --checkpoint-every 1` is killed with SIGKILL at random moments,
    many times (GRAFT_KILLS, default 24 per model), on tiny_cnn_bn and on a wide
    model whose 25 MB checkpoints make most kills land inside a write; after every
    kill the checkpoint loads (onnx and graft) and is bit for bit the checkpoint an
    uninterrupted run writes at the same step;
  - a file-size limit (RLIMIT_FSIZE) and, where a private tmpfs can be mounted
    (unshare), a really full disk: the checkpoint, the export and `graft run`'s
    outputs each fail with a message naming the file, the old file is unchanged and
    no temporary is left.
"""
import hashlib
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

GRAFT, ROOT = sys.argv[1], sys.argv[2]
TINY = os.path.join(ROOT, "models/onnx/tiny_cnn/tiny_cnn_bn/model.onnx")
KILLS = int(os.environ.get("GRAFT_KILLS", "24"))
failures, passes = [], 0


def check(what, ok, detail=""):
    global passes
    print(f"{'ok  ' if ok else 'FAIL'} {what}{'  ' + detail if detail and not ok else ''}", flush=True)
    if ok:
        passes += 1
    else:
        failures.append(what)


def run(*args, fsize=None):
    def limit():
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    return subprocess.run(args, capture_output=True, text=True, preexec_fn=limit, timeout=600)


def write_pb(path, array, name):
    with open(path, "wb") as f:
        f.write(numpy_helper.from_array(array, name).SerializeToString())
    return path


def md5(path):
    with open(path, "rb") as f:
        return hashlib.md5(f.read()).hexdigest()


def temporaries(folder, name):
    return sorted(f for f in os.listdir(folder) if f.startswith(name + ".tmp."))


def contents(path):
    """Initializers (name -> dtype, shape, bytes) and metadata of an ONNX file;
    raises if the file is not a complete, valid model."""
    m = onnx.load(path)
    onnx.checker.check_model(m)
    inits = {t.name: (t.data_type, tuple(t.dims), numpy_helper.to_array(t).tobytes()) for t in m.graph.initializer}
    return inits, {p.key: p.value for p in m.metadata_props}


# ---- the models ----

def wide_model(path):
    """x [N,1024] -> Gemm 1024x3072 -> Relu -> Gemm 3072x8: 12.6 MB of weights, with Adam's
    two moments a 38 MB checkpoint."""
    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array((rng.standard_normal((3072, 1024)) * 0.02).astype(np.float32), "fc1.weight")
    b1 = numpy_helper.from_array(np.zeros(3072, np.float32), "fc1.bias")
    w2 = numpy_helper.from_array((rng.standard_normal((8, 3072)) * 0.02).astype(np.float32), "fc2.weight")
    b2 = numpy_helper.from_array(np.zeros(8, np.float32), "fc2.bias")
    nodes = [helper.make_node("Gemm", ["x", "fc1.weight", "fc1.bias"], ["h"], transB=1, name="fc1"),
             helper.make_node("Relu", ["h"], ["r"], name="relu"),
             helper.make_node("Gemm", ["r", "fc2.weight", "fc2.bias"], ["y"], transB=1, name="fc2")]
    graph = helper.make_graph(nodes, "wide", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1024])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 8])], [w1, b1, w2, b2])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    return path


def data(tmp, name, shape, classes):
    rng = np.random.default_rng(1)
    xs = write_pb(os.path.join(tmp, f"{name}_x.pb"), rng.standard_normal((12, *shape)).astype(np.float32), "x")
    ys = write_pb(os.path.join(tmp, f"{name}_y.pb"), rng.integers(0, classes, 12).astype(np.int64), "y")
    return ["--inputs", xs, "--labels", ys, "--batch", "4", "--seed", "3", "--optim", "adam", "--quiet"]


# ---- the order of the system calls ----

def syscall_order(tmp, common):
    if not shutil.which("strace"):
        print("skip the system-call order: strace is not installed")
        return
    ck, out = os.path.join(tmp, "order_ck.onnx"), os.path.join(tmp, "order_out.onnx")
    trace = os.path.join(tmp, "strace.log")
    r = run("strace", "-f", "-o", trace, "-e", "trace=openat,fsync,fdatasync,rename,renameat,renameat2,close",
            GRAFT, "train", TINY, *common, "--steps", "2", "--checkpoint", ck, "--out", out)
    check("graft train under strace", r.returncode == 0, r.stderr[-800:])
    lines = open(trace).read().splitlines()
    for target in (ck, out):
        events, tmp_fd, dir_fd = [], None, None
        for line in lines:
            if f'"{target}.tmp.' in line and "openat(" in line and "O_EXCL" in line and "= " in line:
                tmp_fd = line.rsplit("= ", 1)[1].split()[0]
                events.append("create")
            elif tmp_fd and f"fsync({tmp_fd})" in line and "create" in events and "rename" not in events:
                events.append("fsync file")
            elif "rename" in line and f'"{target}.tmp.' in line and f'"{target}"' in line and line.rstrip().endswith("= 0"):
                events.append("rename")
            elif "rename" in events and "O_DIRECTORY" in line and "openat(" in line and "= " in line:
                dir_fd = line.rsplit("= ", 1)[1].split()[0]
            elif dir_fd and f"fsync({dir_fd})" in line:
                events.append("fsync folder")
                break
        name = os.path.basename(target)
        check(f"{name}: temporary created exclusively, fsynced, renamed over it, folder fsynced",
              events[-4:] == ["create", "fsync file", "rename", "fsync folder"], f"saw {events}")


# ---- killed at random moments ----

def kills(tmp, model, common, label, rng):
    ck = os.path.join(tmp, f"{label}_ck.onnx")
    refs = {}

    def reference(step):
        if step not in refs:
            path = os.path.join(tmp, f"{label}_ref{step}.onnx")
            r = run(GRAFT, "train", model, *common, "--steps", str(step), "--checkpoint", path)
            if r.returncode:
                raise RuntimeError(r.stderr)
            refs[step] = contents(path)
            os.remove(path)
        return refs[step]

    # the file exists before the first kill: the checkpoint of step 1
    r = run(GRAFT, "train", model, *common, "--steps", "1", "--checkpoint", ck)
    check(f"{label}: first checkpoint", r.returncode == 0, r.stderr)
    # how long the start takes: kills are spread over the next few checkpoints
    t0 = time.time()
    run(GRAFT, "train", model, *common, "--steps", "3", "--checkpoint-every", "1", "--checkpoint",
        os.path.join(tmp, f"{label}_timing.onnx"))
    span = max(time.time() - t0, 0.2)
    intact = mid_write = 0
    steps_seen = set()
    for k in range(KILLS):
        p = subprocess.Popen([GRAFT, "train", model, *common, "--steps", "1000000", "--checkpoint-every", "1",
                              "--checkpoint", ck], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.1, 1.5) * span)
        p.send_signal(signal.SIGKILL)
        p.wait()
        left = temporaries(tmp, os.path.basename(ck))
        mid_write += bool(left)
        for f in left:
            os.remove(os.path.join(tmp, f))
        try:
            inits, meta = contents(ck)
            step = int(meta["graft.step"])
            ok = (inits, meta) == reference(step)
            steps_seen.add(step)
        except Exception as e:  # a torn or missing file
            ok, step = False, f"unreadable: {e}"
        if ok:
            intact += 1
        else:
            print(f"  kill {k}: checkpoint at step {step} is not the uninterrupted run's")
    check(f"{label}: {KILLS} kills with SIGKILL ({mid_write} inside a write, checkpoints of steps "
          f"{min(steps_seen) if steps_seen else '-'}..{max(steps_seen) if steps_seen else '-'} found): every "
          f"checkpoint intact and bit for bit the uninterrupted run's", intact == KILLS, f"{KILLS - intact} damaged")
    r = run(GRAFT, "train", model, *common, "--steps", str(max(steps_seen) + 1 if steps_seen else 2), "--resume", ck)
    check(f"{label}: training resumes from the last checkpoint left", r.returncode == 0, r.stderr[-400:])
    return mid_write


# ---- a full disk ----

def full_by_rlimit(tmp, common):
    ck, out = os.path.join(tmp, "limit_ck.onnx"), os.path.join(tmp, "limit_out.onnx")
    r = run(GRAFT, "train", TINY, *common, "--steps", "1", "--checkpoint", ck, "--out", out)
    check("checkpoint and export before the limit", r.returncode == 0, r.stderr)
    before = md5(ck), md5(out)
    for what, flags, path in (("checkpoint", ["--checkpoint", ck], ck), ("export", ["--out", out], out)):
        r = run(GRAFT, "train", TINY, *common, "--steps", "2", *flags, fsize=4096)
        check(f"{what} over a 4 KiB file-size limit: exit 1, names the file and the reason",
              r.returncode == 1 and os.path.basename(path) in r.stderr and "File too large" in r.stderr,
              f"exit {r.returncode}: {r.stderr.strip()[-400:]}")
        check(f"{what} over the limit: the old file is unchanged, no temporary left",
              md5(path) == before[0 if path == ck else 1] and not temporaries(tmp, os.path.basename(path)),
              str(temporaries(tmp, os.path.basename(path))))
    # graft run's outputs are written the same way
    odir = os.path.join(tmp, "limit_run")
    x = write_pb(os.path.join(tmp, "run_x.pb"), np.zeros((256, 3, 12, 12), np.float32), "input")
    r = run(GRAFT, "run", out, "--input", x, "--output-dir", odir)
    y = os.path.join(odir, "output_0.pb")
    old = md5(y) if r.returncode == 0 else None
    x2 = write_pb(os.path.join(tmp, "run_x2.pb"), np.ones((256, 3, 12, 12), np.float32), "input")
    r = run(GRAFT, "run", out, "--input", x2, "--output-dir", odir, fsize=4096)
    check("graft run's output over the limit: exit 1, names the file, old output unchanged, no temporary",
          old is not None and r.returncode == 1 and "output_0.pb" in r.stderr and "File too large" in r.stderr and
          md5(y) == old and not temporaries(odir, "output_0.pb"), f"exit {r.returncode}: {r.stderr.strip()[-400:]}")


def full_tmpfs(tmp, common):
    if not shutil.which("unshare"):
        print("skip the full tmpfs: unshare is not installed")
        return
    mnt, res = os.path.join(tmp, "mnt"), os.path.join(tmp, "tmpfs_results")
    os.makedirs(mnt)
    os.makedirs(res)
    # Inside a private mount namespace: a 512 KiB tmpfs, a checkpoint and an export that fit,
    # then the disk filled to the last few KiB and the same again, one step further.
    script = f"""
set -u
mount -t tmpfs -o size=512k graft-full {mnt} || exit 77
{GRAFT} train {TINY} {' '.join(common)} --steps 1 --checkpoint {mnt}/ck.onnx --out {mnt}/out.onnx 2>{res}/first.err
echo $? > {res}/first.rc
md5sum {mnt}/ck.onnx {mnt}/out.onnx > {res}/before.md5
free=$(df -k --output=avail {mnt} | tail -1)
dd if=/dev/zero of={mnt}/filler bs=1k count=$((free - 4)) 2>/dev/null
{GRAFT} train {TINY} {' '.join(common)} --steps 2 --checkpoint {mnt}/ck.onnx 2>{res}/ck.err; echo $? > {res}/ck.rc
{GRAFT} train {TINY} {' '.join(common)} --steps 2 --out {mnt}/out.onnx 2>{res}/out.err; echo $? > {res}/out.rc
md5sum {mnt}/ck.onnx {mnt}/out.onnx > {res}/after.md5
ls {mnt} > {res}/ls
"""
    r = subprocess.run(["unshare", "-r", "-m", "sh", "-c", script], capture_output=True, text=True, timeout=600)
    if r.returncode == 77 or not os.path.exists(os.path.join(res, "first.rc")):
        print(f"skip the full tmpfs: cannot mount one here ({r.stderr.strip()[:200]})")
        return
    read = lambda f: open(os.path.join(res, f)).read()
    check("tmpfs: first checkpoint and export fit", read("first.rc").strip() == "0", read("first.err"))
    for what in ("ck", "out"):
        err = read(f"{what}.err")
        check(f"tmpfs full: the {'checkpoint' if what == 'ck' else 'export'} fails naming the file and the reason",
              read(f"{what}.rc").strip() == "1" and f"{what}.onnx" in err and "No space left on device" in err,
              f"exit {read(f'{what}.rc').strip()}: {err.strip()[-400:]}")
    check("tmpfs full: the old files are unchanged", read("before.md5") == read("after.md5"))
    check("tmpfs full: no temporary left", read("ls").split() == ["ck.onnx", "filler", "out.onnx"], read("ls"))


def main():
    rng = random.Random(20240607)
    with tempfile.TemporaryDirectory(prefix="graft-crash-") as tmp:
        common = data(tmp, "tiny", (3, 12, 12), 10)
        syscall_order(tmp, common)
        kills(tmp, TINY, common, "tiny_cnn_bn", rng)
        wide = wide_model(os.path.join(tmp, "wide.onnx"))
        mid = kills(tmp, wide, data(tmp, "wide", (1024,), 8), "wide", rng)
        check("the wide model's kills landed inside writes (the case that matters) at least once", mid > 0)
        full_by_rlimit(tmp, common)
        full_tmpfs(tmp, common)
    print(f"crash safety: {passes} passed, {len(failures)} failed")
    for f in failures:
        print("  FAIL", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
