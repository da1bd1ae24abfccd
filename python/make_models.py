#!/usr/bin/env python3
"""Writes torchvision's ResNet-18, ResNet-50 and MobileNetV2 as ONNX models.

The graphs are what torch.onnx.export produces for the torchvision modules in
eval mode at opset 17 with a dynamic batch, minus the Conv+BatchNormalization
fusion: every BatchNormalization stays a node, so the importer and the
optimizer see the model as a user would export it before optimization.
Weights are seeded random numbers (torch is not needed): He-normal convs and
BatchNormalization statistics near the identity, then calibrated on random
images (calibration.py) so activations keep a unit scale through the depth
of the network and the top-1 class follows the input.

Names follow the torchvision module paths ("layer1.0.conv1.weight"), so a
node or a tensor can be matched with its PyTorch counterpart.

    python python/make_models.py --model resnet18 --classes 1000 --seed 0 -o resnet18.onnx
"""

import argparse
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from calibration import calibrate

OPSET = 17
BN_EPSILON = 1e-5
BN_MOMENTUM = 0.9  # torch exports 1 - momentum; inference ignores it
IMAGE_SIZE = 224
CALIBRATION_IMAGES = 4

# Parameter counts of torchvision's models at 1000 classes, as
# sum(p.numel() for p in model.parameters()): BN running stats excluded.
TORCHVISION_PARAMETERS = {
    "resnet18": 11_689_512,
    "resnet50": 25_557_032,
    "mobilenetv2": 3_504_872,
}


class GraphBuilder:
    """Accumulates nodes and initializers; parameters are drawn from one RNG."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.nodes = []
        self.params = {}  # initializer name -> float32 array, in creation order
        self.parameter_count = 0  # what nn.Module.parameters() would count
        self.clip_bounds = None

    def _add_initializer(self, name, array, is_parameter):
        self.params[name] = np.asarray(array, np.float32)
        if is_parameter:
            self.parameter_count += array.size

    def conv(self, name, x, in_channels, out_channels, kernel, stride=1, groups=1):
        """A bias-free Conv with torchvision's padding (kernel // 2)."""
        # torchvision initializes convs with kaiming_normal_(mode="fan_out");
        # calibrate() rescales them.
        fan_out = out_channels // groups * kernel * kernel
        shape = (out_channels, in_channels // groups, kernel, kernel)
        weight = self.rng.normal(0.0, np.sqrt(2.0 / fan_out), shape)
        self._add_initializer(f"{name}.weight", weight, True)
        pad = kernel // 2
        self.nodes.append(
            helper.make_node(
                "Conv",
                [x, f"{name}.weight"],
                [f"{name}.out"],
                name=name,
                dilations=[1, 1],
                group=groups,
                kernel_shape=[kernel, kernel],
                pads=[pad, pad, pad, pad],
                strides=[stride, stride],
            )
        )
        return f"{name}.out"

    def batch_norm(self, name, x, channels):
        """An inference BatchNormalization with plausible trained statistics."""
        # calibrate() gives every Conv a unit output std, so statistics near
        # the identity are what training would have measured; their spread
        # makes each channel's affine transform distinct, so a mixed-up
        # channel index shows in the outputs.
        self._add_initializer(f"{name}.weight", self.rng.uniform(0.8, 1.2, channels), True)
        self._add_initializer(f"{name}.bias", self.rng.normal(0.0, 0.05, channels), True)
        self._add_initializer(f"{name}.running_mean", self.rng.normal(0.0, 0.05, channels), False)
        self._add_initializer(f"{name}.running_var", self.rng.uniform(0.5, 1.5, channels), False)
        self.nodes.append(
            helper.make_node(
                "BatchNormalization",
                [x] + [f"{name}.{p}" for p in ("weight", "bias", "running_mean", "running_var")],
                [f"{name}.out"],
                name=name,
                epsilon=BN_EPSILON,
                momentum=BN_MOMENTUM,
            )
        )
        return f"{name}.out"

    def relu(self, name, x):
        self.nodes.append(helper.make_node("Relu", [x], [f"{name}.out"], name=name))
        return f"{name}.out"

    def relu6(self, name, x):
        """ReLU6 as torch exports it since opset 11: Clip with bound inputs."""
        if self.clip_bounds is None:
            self._add_initializer("relu6.min", np.array(0.0), False)
            self._add_initializer("relu6.max", np.array(6.0), False)
            self.clip_bounds = ["relu6.min", "relu6.max"]
        node = helper.make_node("Clip", [x] + self.clip_bounds, [f"{name}.out"], name=name)
        self.nodes.append(node)
        return f"{name}.out"

    def add(self, name, a, b):
        self.nodes.append(helper.make_node("Add", [a, b], [f"{name}.out"], name=name))
        return f"{name}.out"

    def max_pool(self, name, x):
        self.nodes.append(
            helper.make_node(
                "MaxPool",
                [x],
                [f"{name}.out"],
                name=name,
                ceil_mode=0,
                kernel_shape=[3, 3],
                pads=[1, 1, 1, 1],
                strides=[2, 2],
            )
        )
        return f"{name}.out"

    def classifier(self, name, x, in_features, classes, output):
        """GlobalAveragePool, Flatten(axis 1) and a Linear layer as Gemm."""
        self.nodes.append(helper.make_node("GlobalAveragePool", [x], ["pool.out"], name="pool"))
        self.nodes.append(
            helper.make_node("Flatten", ["pool.out"], ["flatten.out"], name="flatten", axis=1)
        )
        # nn.Linear's default init, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), before
        # calibrate() centers and scales it.
        bound = 1.0 / np.sqrt(in_features)
        weight = self.rng.uniform(-bound, bound, (classes, in_features))
        self._add_initializer(f"{name}.weight", weight, True)
        self._add_initializer(f"{name}.bias", self.rng.uniform(-bound, bound, classes), True)
        self.nodes.append(
            helper.make_node(
                "Gemm",
                ["flatten.out", f"{name}.weight", f"{name}.bias"],
                [output],
                name=name,
                alpha=1.0,
                beta=1.0,
                transB=1,
            )
        )

    def conv_bn(self, prefix, x, in_ch, out_ch, kernel, stride=1, groups=1, conv="conv", bn="bn"):
        """Conv `prefix+conv` followed by BatchNormalization `prefix+bn`."""
        x = self.conv(f"{prefix}{conv}", x, in_ch, out_ch, kernel, stride, groups)
        return self.batch_norm(f"{prefix}{bn}", x, out_ch)


# ---- ResNet (torchvision.models.resnet) ----------------------------------------


def downsample(g, prefix, x, in_planes, out_planes, stride):
    """The shortcut projection: a strided 1x1 Conv and BatchNormalization."""
    return g.conv_bn(f"{prefix}downsample.", x, in_planes, out_planes, 1, stride, conv="0", bn="1")


def basic_block(g, prefix, x, in_planes, planes, stride):
    """torchvision BasicBlock (expansion 1)."""
    out = g.conv_bn(prefix, x, in_planes, planes, 3, stride, conv="conv1", bn="bn1")
    out = g.relu(f"{prefix}relu1", out)
    out = g.conv_bn(prefix, out, planes, planes, 3, conv="conv2", bn="bn2")
    shortcut = x
    if stride != 1 or in_planes != planes:
        shortcut = downsample(g, prefix, x, in_planes, planes, stride)
    return g.relu(f"{prefix}relu2", g.add(f"{prefix}add", out, shortcut)), planes


def bottleneck(g, prefix, x, in_planes, planes, stride):
    """torchvision Bottleneck (ResNet V1.5: the stride is on the 3x3 conv)."""
    width, out_planes = planes, planes * 4
    out = g.conv_bn(prefix, x, in_planes, width, 1, conv="conv1", bn="bn1")
    out = g.relu(f"{prefix}relu1", out)
    out = g.conv_bn(prefix, out, width, width, 3, stride, conv="conv2", bn="bn2")
    out = g.relu(f"{prefix}relu2", out)
    out = g.conv_bn(prefix, out, width, out_planes, 1, conv="conv3", bn="bn3")
    shortcut = x
    if stride != 1 or in_planes != out_planes:
        shortcut = downsample(g, prefix, x, in_planes, out_planes, stride)
    return g.relu(f"{prefix}relu3", g.add(f"{prefix}add", out, shortcut)), out_planes


def resnet(g, block, layers, classes):
    x = g.conv_bn("", "input", 3, 64, 7, 2, conv="conv1", bn="bn1")
    x = g.max_pool("maxpool", g.relu("relu", x))
    channels = 64
    for stage, (planes, blocks) in enumerate(zip((64, 128, 256, 512), layers), start=1):
        for i in range(blocks):
            stride = 2 if stage > 1 and i == 0 else 1
            x, channels = block(g, f"layer{stage}.{i}.", x, channels, planes, stride)
    g.classifier("fc", x, channels, classes, "output")


# ---- MobileNetV2 (torchvision.models.mobilenetv2) --------------------------------

# (expansion t, output channels c, repeats n, first stride s), width 1.0; every
# channel count is already a multiple of 8, so _make_divisible leaves it alone.
MOBILENET_V2_SETTINGS = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
]


def conv_bn_relu6(g, prefix, x, in_channels, out_channels, kernel, stride=1, groups=1):
    """torchvision Conv2dNormActivation with ReLU6: children 0, 1, 2."""
    x = g.conv_bn(prefix, x, in_channels, out_channels, kernel, stride, groups, conv="0", bn="1")
    return g.relu6(f"{prefix}2", x)


def inverted_residual(g, prefix, x, inp, oup, stride, expand_ratio):
    hidden = int(round(inp * expand_ratio))
    out, layer = x, 0
    if expand_ratio != 1:
        out = conv_bn_relu6(g, f"{prefix}conv.0.", out, inp, hidden, 1)
        layer = 1
    out = conv_bn_relu6(g, f"{prefix}conv.{layer}.", out, hidden, hidden, 3, stride, groups=hidden)
    out = g.conv(f"{prefix}conv.{layer + 1}", out, hidden, oup, 1)
    out = g.batch_norm(f"{prefix}conv.{layer + 2}", out, oup)
    if stride == 1 and inp == oup:
        out = g.add(f"{prefix}add", x, out)
    return out


def mobilenet_v2(g, classes):
    x = conv_bn_relu6(g, "features.0.", "input", 3, 32, 3, 2)
    channels, index = 32, 1
    for t, c, n, s in MOBILENET_V2_SETTINGS:
        for i in range(n):
            x = inverted_residual(g, f"features.{index}.", x, channels, c, s if i == 0 else 1, t)
            channels, index = c, index + 1
    x = conv_bn_relu6(g, f"features.{index}.", x, channels, 1280, 1)
    # classifier.0 is Dropout(0.2), the identity at inference.
    g.classifier("classifier.1", x, 1280, classes, "output")


# ---- Model assembly -------------------------------------------------------------

BUILDERS = {
    "resnet18": lambda g, classes: resnet(g, basic_block, (2, 2, 2, 2), classes),
    "resnet50": lambda g, classes: resnet(g, bottleneck, (3, 4, 6, 3), classes),
    "mobilenetv2": mobilenet_v2,
}


def make_model(name, classes=1000, seed=0):
    """Returns (ModelProto, parameter count) for a torchvision model name."""
    g = GraphBuilder(seed)
    BUILDERS[name](g, classes)
    size = IMAGE_SIZE
    images = g.rng.standard_normal((CALIBRATION_IMAGES, 3, size, size), np.float32)
    calibrate(g.nodes, g.params, images)
    graph = helper.make_graph(
        g.nodes,
        name,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, size, size])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", classes])],
        [numpy_helper.from_array(array, name) for name, array in g.params.items()],
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="anvil make_models.py",
        doc_string=f"torchvision {name}, {classes} classes, random weights (seed {seed})",
    )
    # The IR version onnx writes by default may be newer than older runtimes
    # read; 8 is what opset 17 needs.
    model.ir_version = 8
    return model, g.parameter_count


def validate(model, classes):
    """onnx.checker plus shape inference down to the [N, classes] output."""
    onnx.checker.check_model(model, full_check=True)
    inferred = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    (output,) = inferred.graph.output
    dims = [d.dim_param or d.dim_value for d in output.type.tensor_type.shape.dim]
    if dims != ["N", classes]:
        raise SystemExit(f"shape inference gives output {dims}, expected ['N', {classes}]")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, choices=sorted(BUILDERS))
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-o", "--output", required=True, help="where to write the .onnx file")
    args = parser.parse_args(argv)
    if args.classes < 1:
        parser.error("--classes must be positive")

    model, parameters = make_model(args.model, args.classes, args.seed)
    validate(model, args.classes)
    onnx.save(model, args.output)
    nodes = len(model.graph.node)
    print(f"{args.model}: {parameters:,} parameters, {nodes} nodes -> {args.output}")
    expected = TORCHVISION_PARAMETERS[args.model]
    if args.classes == 1000 and parameters != expected:
        print(f"error: torchvision's {args.model} has {expected:,} parameters", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
