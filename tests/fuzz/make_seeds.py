#!/usr/bin/python3
"""Seed corpora for the fuzz targets (tests/fuzz/fuzz_*.c), one folder per target.

    /usr/bin/python3 tests/fuzz/make_seeds.py OUT_DIR [--graft GRAFT_EXE] [--testdata DIR]

  loader, model_file  every model.onnx of the ONNX test data, the committed tiny CNNs,
                      and (model_file) models whose initializers live in external data
                      beside them ("data.bin", which fuzz_model_file writes)
  session             seeded random byte strings (the target decodes any bytes into a graph)
  image               PNGs of every colour type and bit depth, interlaced or not, with
                      and without transparency and palettes; JPEGs grey and colour,
                      baseline and progressive, every chroma subsampling, optimised
                      Huffman tables, CMYK; all small
  tensor_pb           the test data's .pb tensors and tensors in every typed field
  checkpoint          checkpoints `graft train` writes for tiny_cnn_bn (SGD with momentum,
                      Adam), one of another head, and the plain model (needs --graft)

Debian's python3 has numpy, Pillow and onnx. Everything is deterministic.
"""
import argparse
import glob
import hashlib
import io
import os
import random
import struct
import subprocess
import sys
import tempfile
import zlib

import numpy as np
from PIL import Image
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = os.path.join(ROOT, "models/onnx/tiny_cnn")


def put(folder, name, data):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def digest(data):
    return hashlib.md5(data).hexdigest()[:16]


# ---- models ----

def models(out, testdata, external):
    for path in sorted(glob.glob(os.path.join(testdata, "**/model.onnx"), recursive=True)):
        data = open(path, "rb").read()
        put(out, digest(data), data)
    for name in ("tiny_cnn", "tiny_cnn_bn"):
        put(out, name, open(os.path.join(TINY, name, "model.onnx"), "rb").read())
    if not external:
        return
    # Initializers in "data.bin": 4096 bytes the fuzz target writes, i * 7 + 3 each.
    for k, (offset, count) in enumerate([(0, 4), (64, 16), (4000, 24), (1, 3)]):
        w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[count])
        w.data_location = TensorProto.EXTERNAL
        for key, value in (("location", "data.bin"), ("offset", str(offset)), ("length", str(4 * count))):
            entry = w.external_data.add()
            entry.key, entry.value = key, value
        graph = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"], name="add")], "ext",
                                  [helper.make_tensor_value_info("x", TensorProto.FLOAT, [count])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [count])], [w])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        put(out, f"external_{k}", model.SerializeToString())


# ---- images ----

def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff)


def png_bytes(width, height, bit_depth, color_type, rows, interlace=False, extra=b""):
    """A PNG written by hand: libpng reads what Pillow cannot write (interlacing,
    1/2/4-bit grey, 16-bit colour). rows[y][x] is a tuple of samples."""
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color_type]

    def scanline(pixels):
        if bit_depth == 16:
            return b"\0" + b"".join(struct.pack(">H", s) for p in pixels for s in p)
        if bit_depth == 8:
            return b"\0" + bytes(s for p in pixels for s in p)
        bits, line = "", bytearray()
        for p in pixels:
            bits += format(p[0], f"0{bit_depth}b")
        bits += "0" * (-len(bits) % 8)
        line.extend(int(bits[i:i + 8], 2) for i in range(0, len(bits), 8))
        return b"\0" + bytes(line)

    raw = b""
    if interlace:  # Adam7: seven sub-images
        passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
        for x0, y0, dx, dy in passes:
            for y in range(y0, height, dy):
                pixels = [rows[y][x] for x in range(x0, width, dx)]
                if pixels:
                    raw += scanline(pixels)
    else:
        for y in range(height):
            raw += scanline(rows[y])
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, int(interlace))
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + extra + png_chunk(b"IDAT", zlib.compress(raw)) +
            png_chunk(b"IEND", b""))


def images(out):
    rng = random.Random(7)
    for width, height in ((1, 1), (7, 5), (16, 9), (33, 17)):
        for color_type, depths in ((0, (1, 2, 4, 8, 16)), (2, (8, 16)), (3, (1, 2, 4, 8)), (4, (8, 16)), (6, (8, 16))):
            for bit_depth in depths:
                channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color_type]
                top = (1 << bit_depth) - 1
                palette = b""
                if color_type == 3:
                    top = min(top, 15)
                    palette = png_chunk(b"PLTE", bytes(rng.randrange(256) for _ in range(3 * (top + 1))))
                    palette += png_chunk(b"tRNS", bytes(rng.randrange(256) for _ in range(top + 1)))
                elif color_type == 0 and bit_depth == 8:
                    palette = png_chunk(b"tRNS", struct.pack(">H", 3))
                rows = [[tuple(rng.randint(0, top) for _ in range(channels)) for _ in range(width)]
                        for _ in range(height)]
                for interlace in (False, True):
                    put(out, f"png_{width}x{height}_c{color_type}_d{bit_depth}{'_i' if interlace else ''}",
                        png_bytes(width, height, bit_depth, color_type, rows, interlace, palette))
    pixels = np.random.default_rng(3).integers(0, 256, (24, 31, 3), dtype=np.uint8)
    rgb = Image.fromarray(pixels, "RGB")
    variants = {"L": rgb.convert("L"), "RGB": rgb, "CMYK": rgb.convert("CMYK")}
    for mode, im in variants.items():
        for progressive in (False, True):
            for subsampling in ((0, 1, 2) if mode == "RGB" else (0,)):
                for optimize in (False, True):
                    buf = io.BytesIO()
                    im.save(buf, "JPEG", quality=80, progressive=progressive, subsampling=subsampling,
                            optimize=optimize)
                    put(out, f"jpeg_{mode}_p{int(progressive)}_s{subsampling}_o{int(optimize)}", buf.getvalue())
    for mode in ("P", "LA", "RGBA", "I;16", "1"):
        buf = io.BytesIO()
        im = rgb.convert("RGBA") if mode == "RGBA" else rgb.convert("LA") if mode == "LA" else rgb.convert(
            "L").convert(mode) if mode in ("I;16", "1") else rgb.convert(mode)
        im.save(buf, "PNG")
        put(out, f"pillow_png_{mode.replace(';', '')}", buf.getvalue())


# ---- tensors ----

def tensors(out, testdata):
    seen = 0
    for path in sorted(glob.glob(os.path.join(testdata, "**/*.pb"), recursive=True)):
        data = open(path, "rb").read()
        if len(data) <= 4096 and seen < 600:
            put(out, digest(data), data)
            seen += 1
    typed = [
        helper.make_tensor("f", TensorProto.FLOAT, [2, 3], [0.5, -1, 2, 3, 4, 5]),
        helper.make_tensor("d", TensorProto.DOUBLE, [3], [1.5, -2, 1e300]),
        helper.make_tensor("i64", TensorProto.INT64, [2, 2], [1, -1, 2 ** 62, -2 ** 62]),
        helper.make_tensor("i32", TensorProto.INT32, [4], [1, -1, 2 ** 30, 7]),
        helper.make_tensor("i8", TensorProto.INT8, [3], [-128, 0, 127]),
        helper.make_tensor("u8", TensorProto.UINT8, [3], [0, 1, 255]),
        helper.make_tensor("u16", TensorProto.UINT16, [2], [0, 65535]),
        helper.make_tensor("i16", TensorProto.INT16, [2], [-32768, 32767]),
        helper.make_tensor("b", TensorProto.BOOL, [3], [True, False, True]),
        helper.make_tensor("h", TensorProto.FLOAT16, [2], np.array([1.5, -2], np.float16).view(np.uint16).tolist()),
        helper.make_tensor("u32", TensorProto.UINT32, [2], [0, 2 ** 32 - 1]),
        helper.make_tensor("u64", TensorProto.UINT64, [2], [0, 2 ** 64 - 1]),
        helper.make_tensor("s", TensorProto.STRING, [2], [b"a", b"bc"]),
        helper.make_tensor("scalar", TensorProto.FLOAT, [], [3.0]),
        helper.make_tensor("empty", TensorProto.FLOAT, [0, 3], []),
        numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(3, 4), "raw"),
    ]
    ext = TensorProto(name="ext", data_type=TensorProto.FLOAT, dims=[4])
    ext.data_location = TensorProto.EXTERNAL
    entry = ext.external_data.add()
    entry.key, entry.value = "location", "data.bin"
    typed.append(ext)
    for t in typed:
        put(out, f"typed_{t.name}", t.SerializeToString())


# ---- checkpoints ----

def checkpoints(out, graft):
    model = os.path.join(TINY, "tiny_cnn_bn", "model.onnx")
    put(out, "plain_model", open(model, "rb").read())
    if not graft:
        return
    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(0)
        xs, ys = os.path.join(tmp, "x.pb"), os.path.join(tmp, "y.pb")
        with open(xs, "wb") as f:
            f.write(numpy_helper.from_array(rng.standard_normal((8, 3, 12, 12)).astype(np.float32), "x")
                    .SerializeToString())
        with open(ys, "wb") as f:
            f.write(numpy_helper.from_array(rng.integers(0, 4, 8).astype(np.int64), "y").SerializeToString())
        runs = {"sgd_momentum": ["--optim", "sgd", "--momentum", "0.9"], "sgd": ["--optim", "sgd"],
                "adam": ["--optim", "adam"], "adam_amsgrad": ["--optim", "adam", "--amsgrad"],
                "other_head": ["--optim", "adam", "--replace-head", "4"]}
        for name, flags in runs.items():
            ck = os.path.join(tmp, name + ".onnx")
            r = subprocess.run([graft, "train", model, "--inputs", xs, "--labels", ys, "--steps", "2", "--batch", "4",
                                "--checkpoint", ck, "--quiet", *flags], capture_output=True, text=True)
            if r.returncode:
                sys.exit(f"graft train for the {name} seed failed: {r.stderr}")
            put(out, "checkpoint_" + name, open(ck, "rb").read())


def datasets(out):
    """fuzz_dataset's inputs: a kind byte, an n_classes byte (IDX: a split and one), the file."""
    rng = np.random.default_rng(5)
    for n, (h, w) in ((3, (4, 5)), (2, (2, 2))):
        images = struct.pack(">IIII", 0x803, n, h, w) + rng.integers(0, 256, n * h * w, dtype=np.uint8).tobytes()
        labels = struct.pack(">II", 0x801, n) + bytes(k % 3 for k in range(n))
        put(out, f"idx_{n}", bytes([0, len(images) & 255, len(images) >> 8, 0]) + images + labels)
    cifar10 = b"".join(bytes([k]) + rng.integers(0, 256, 3072, dtype=np.uint8).tobytes() for k in range(2))
    put(out, "cifar10", bytes([1, 0]) + cifar10)
    cifar100 = b"".join(bytes([k, 7 + k]) + rng.integers(0, 256, 3072, dtype=np.uint8).tobytes() for k in range(2))
    put(out, "cifar100", bytes([2, 0]) + cifar100)
    put(out, "yolo", bytes([3, 0]) + b"0 0.5 0.5 0.4 0.3\n1 0.2 0.7 0.1 0.2\n\n2 0.9 0.1 0.05 0.05\n")
    mask = [[((x + y) % 3,) for x in range(5)] for y in range(4)]
    put(out, "mask_grey", bytes([4, 0]) + png_bytes(5, 4, 8, 0, mask))
    put(out, "mask_packed", bytes([4, 4]) + png_bytes(5, 4, 2, 0, mask, interlace=True))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--graft")
    ap.add_argument("--testdata", default="/usr/share/libonnx-testdata/data")
    a = ap.parse_args()
    models(os.path.join(a.out, "loader"), a.testdata, external=False)
    models(os.path.join(a.out, "model_file"), a.testdata, external=True)
    rng = random.Random(11)
    for k in range(64):
        put(os.path.join(a.out, "session"), f"random_{k}", bytes(rng.randrange(256) for _ in range(rng.randint(16, 160))))
    images(os.path.join(a.out, "image"))
    tensors(os.path.join(a.out, "tensor_pb"), a.testdata)
    checkpoints(os.path.join(a.out, "checkpoint"), a.graft)
    datasets(os.path.join(a.out, "dataset"))
    for target in sorted(os.listdir(a.out)):
        print(f"{target}: {len(os.listdir(os.path.join(a.out, target)))} seeds")


if __name__ == "__main__":
    main()
