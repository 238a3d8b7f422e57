"""Writes the images tests/test_image.c decodes and resizes, with the pixels
it must get, then runs it on them.

PNGs are written by the small encoder below rather than by Pillow, so that
every bit depth, colour type, palette transparency and Adam7 interlacing is
exactly what the file says; their expected 8-bit pixels come from numpy.
JPEGs and the resize and crop references come from Pillow (and torchvision's
Resize/CenterCrop where installed), the libraries graft's preprocessing must
match. Needs numpy and Pillow: run it with Debian's /usr/bin/python3.

usage: image_fixtures.py TEST_IMAGE_EXE     write into a temporary folder and run the test
       image_fixtures.py --out DIR          only write the fixtures
"""
import os
import struct
import subprocess
import sys
import tempfile
import zlib

try:
    import numpy as np
    from PIL import Image
except ImportError as e:  # 77: meson's "skipped"
    print(f"skipped: {e} (run with Debian's /usr/bin/python3; apt-get install python3-pil python3-numpy)")
    sys.exit(77)

ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # PNG colour type -> samples per pixel


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def pack_rows(samples, depth):
    """Rows of samples (h x w*channels) as PNG scanlines, each with filter byte 0."""
    out = bytearray()
    for row in samples:
        out.append(0)
        if depth == 16:
            out += row.astype(">u2").tobytes()
        elif depth == 8:
            out += row.astype(np.uint8).tobytes()
        else:
            out += np.packbits(np.unpackbits(row.astype(np.uint8)[:, None], axis=1)[:, 8 - depth:]).tobytes()
    return bytes(out)


def write_png(path, samples, color_type, depth, palette=None, trns=None, interlaced=False):
    """samples: h x w x channels integers in the file's depth (palette indices for type 3)."""
    h, w = samples.shape[:2]
    flat = samples.reshape(h, w, -1)
    if interlaced:
        raw = b"".join(pack_rows(flat[y0::dy, x0::dx].reshape(-1, len(range(x0, w, dx)) * flat.shape[2]), depth)
                       for x0, y0, dx, dy in ADAM7 if x0 < w and y0 < h)
    else:
        raw = pack_rows(flat.reshape(h, -1), depth)
    body = chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, int(interlaced)))
    if palette is not None:
        body += chunk(b"PLTE", palette.astype(np.uint8).tobytes())
    if trns is not None:
        body += chunk(b"tRNS", bytes(trns))
    body += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + body)


def save_expected(path, rgb):
    """The 8-bit RGB (h x w x 3) or grey (h x w) pixels as binary PPM/PGM."""
    rgb = np.asarray(rgb, dtype=np.uint8)
    magic = b"P6" if rgb.ndim == 3 else b"P5"
    with open(path, "wb") as f:
        f.write(magic + b"\n%d %d\n255\n" % (rgb.shape[1], rgb.shape[0]) + rgb.tobytes())


def luma(rgb):
    """Rec. 601 luma, as Pillow's convert('L') and libjpeg's grey output."""
    r, g, b = (rgb[..., k].astype(np.float64) for k in range(3))
    return np.floor(0.299 * r + 0.587 * g + 0.114 * b + 0.5).clip(0, 255)


def scale_to_8(v, depth):
    return np.floor(v * 255.0 / (2 ** depth - 1) + 0.5)


def photo(h, w, seed):
    """Smooth gradients, an edge and some noise: something like a photo to resample."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([128 + 100 * np.sin(x / 7.0 + k) * np.cos(y / 11.0 - k) for k in range(3)], axis=-1)
    base[(x - w / 2) ** 2 + (y - h / 2) ** 2 < (min(h, w) / 3) ** 2] *= 0.4
    return (base + rng.normal(0, 12, base.shape)).clip(0, 255).astype(np.uint8)


def write_pngs(out):
    rng = np.random.default_rng(1)
    h, w = 13, 21  # odd sizes: partial Adam7 blocks, rows that do not fill a byte
    for depth in (1, 2, 4, 8, 16):
        v = rng.integers(0, 2 ** depth, (h, w, 1))
        write_png(f"{out}/grey{depth}.png", v, 0, depth)
        save_expected(f"{out}/grey{depth}.pgm", scale_to_8(v[..., 0], depth))
    for depth in (8, 16):
        v = rng.integers(0, 2 ** depth, (h, w, 3))
        write_png(f"{out}/rgb{depth}.png", v, 2, depth)
        save_expected(f"{out}/rgb{depth}.ppm", scale_to_8(v, depth))
        a = rng.integers(0, 2 ** depth, (h, w, 4))
        write_png(f"{out}/rgba{depth}.png", a, 6, depth)  # alpha is dropped, not composed
        save_expected(f"{out}/rgba{depth}.ppm", scale_to_8(a[..., :3], depth))
        ga = rng.integers(0, 2 ** depth, (h, w, 2))
        write_png(f"{out}/grey_alpha{depth}.png", ga, 4, depth)
        save_expected(f"{out}/grey_alpha{depth}.pgm", scale_to_8(ga[..., 0], depth))
    for depth in (4, 8):
        palette = rng.integers(0, 256, (2 ** depth, 3))
        idx = rng.integers(0, 2 ** depth, (h, w, 1))
        write_png(f"{out}/palette{depth}.png", idx, 3, depth, palette=palette,
                  trns=list(range(0, 256, 256 // 2 ** depth))[:2 ** depth // 2])
        save_expected(f"{out}/palette{depth}.ppm", palette[idx[..., 0]])
    v = rng.integers(0, 256, (h, w, 3))
    write_png(f"{out}/interlaced_rgb8.png", v, 2, 8, interlaced=True)
    save_expected(f"{out}/interlaced_rgb8.ppm", v)
    v = rng.integers(0, 2 ** 16, (h, w, 1))
    write_png(f"{out}/interlaced_grey16.png", v, 0, 16, interlaced=True)
    save_expected(f"{out}/interlaced_grey16.pgm", scale_to_8(v[..., 0], 16))
    # Loaded as grey, a colour PNG becomes its luma (checked within one level).
    save_expected(f"{out}/rgb8_luma.pgm", luma(np.asarray(Image.open(f"{out}/rgb8.ppm"))))


def write_jpegs(out):
    img = Image.fromarray(photo(37, 53, 2))
    img.save(f"{out}/photo.jpg", quality=90)
    decoded = Image.open(f"{out}/photo.jpg")
    decoded.convert("RGB").save(f"{out}/photo_jpg.ppm")
    grey = Image.open(f"{out}/photo.jpg")
    grey.draft("L", grey.size)  # libjpeg's own grey output: the luma plane, not the luma of decoded RGB
    grey.convert("L").save(f"{out}/photo_jpg_luma.pgm")
    img.convert("L").save(f"{out}/grey.jpg", quality=90)
    Image.open(f"{out}/grey.jpg").convert("RGB").save(f"{out}/grey_jpg.ppm")
    img.save(f"{out}/progressive.jpg", quality=80, progressive=True)
    Image.open(f"{out}/progressive.jpg").convert("RGB").save(f"{out}/progressive_jpg.ppm")


def write_broken(out):
    with open(f"{out}/rgb8.png", "rb") as f:
        png = f.read()
    with open(f"{out}/photo.jpg", "rb") as f:
        jpg = f.read()
    files = {
        "truncated.png": png[: len(png) // 2],
        "truncated.jpg": jpg[: len(jpg) // 2],
        # a flipped byte inside the IDAT data: its CRC no longer matches
        "corrupt.png": png[:60] + bytes([png[60] ^ 0xFF]) + png[61:],
        "header_only.jpg": jpg[:20],
        "not_an_image.png": b"this is a text file, not a picture\n",
        "empty.jpg": b"",
    }
    for name, data in files.items():
        with open(f"{out}/{name}", "wb") as f:
            f.write(data)


def write_resizes(out):
    """Pillow's BILINEAR resize (antialiased when shrinking) at several sizes,
    and torchvision's Resize(shorter side) + CenterCrop, the classification
    preprocessing graft reproduces."""
    src = Image.fromarray(photo(61, 97, 3))
    src.save(f"{out}/resize_src.png")
    for w, h in [(40, 25), (13, 7), (97, 30), (200, 130), (150, 45), (1, 1)]:
        src.resize((w, h), Image.BILINEAR).save(f"{out}/resize_{w}x{h}.ppm")
        src.convert("L").resize((w, h), Image.BILINEAR).save(f"{out}/resize_grey_{w}x{h}.pgm")
    src.convert("L").save(f"{out}/resize_src_grey.png")

    tall = Image.fromarray(photo(300, 203, 4))
    tall.save(f"{out}/tall.png")
    for shorter, crop in [(256, 224), (100, 81), (500, 333)]:
        try:
            from torchvision import transforms
            resized = transforms.Resize(shorter)(tall)
            cropped = transforms.CenterCrop(crop)(resized)
        except ImportError:  # torchvision's formulas: longer side truncated, offsets rounded half to even
            w, h = tall.size
            resized = tall.resize((shorter, int(shorter * h / w)), Image.BILINEAR)
            left, top = round((resized.width - crop) / 2), round((resized.height - crop) / 2)
            cropped = resized.crop((left, top, left + crop, top + crop))
        resized.save(f"{out}/tall_shorter{shorter}.ppm")
        cropped.save(f"{out}/tall_shorter{shorter}_crop{crop}.ppm")


def write_all(out):
    os.makedirs(out, exist_ok=True)
    write_pngs(out)
    write_jpegs(out)
    write_broken(out)
    write_resizes(out)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--out":
        write_all(sys.argv[2])
        return 0
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    with tempfile.TemporaryDirectory(prefix="graft-images-") as out:
        write_all(out)
        return subprocess.run([sys.argv[1], out]).returncode


if __name__ == "__main__":
    sys.exit(main())
