"""Data-dependent scaling of random CNN weights, in plain numpy.

A randomly initialized network is a poor test model: without trained
BatchNormalization statistics, residual sums grow block after block, and
every input lands on nearly the same pooled features (the positive mean of
the last ReLU dominates), so the top-1 class is one class for all inputs.

calibrate() runs the graph on random standard-normal images and fixes both,
the way training would: each Conv's weights are scaled so its output has unit
standard deviation (LSUV initialization, Mishkin & Matas 2016), which makes
the BatchNormalization statistics (running_var near 1) plausible, and the
classifier is centered on the mean features and scaled so the logits spread
over a few units. Only the magnitude of the random draws changes.

The evaluator handles the ops make_models.py emits, with its attributes:
symmetric pads, dilation 1, groups 1 or depthwise.
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

LOGIT_SPREAD = 2.0  # std of a logit over inputs after calibration


def _attributes(node):
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def conv2d(x, weight, stride, pad, groups):
    """NCHW convolution; groups must be 1 or the channel count."""
    channels = x.shape[1]
    kernel = weight.shape[2]
    x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out_h = (x.shape[2] - kernel) // stride + 1
    out_w = (x.shape[3] - kernel) // stride + 1
    if groups == 1:
        windows = sliding_window_view(x, (kernel, kernel), axis=(2, 3))[:, :, ::stride, ::stride]
        y = np.tensordot(windows, weight, axes=([1, 4, 5], [1, 2, 3]))  # N, H, W, M
        return np.ascontiguousarray(y.transpose(0, 3, 1, 2))
    if groups != channels or weight.shape[:2] != (channels, 1):
        raise ValueError(f"calibration handles groups 1 or depthwise, not {groups}")
    y = np.zeros((x.shape[0], channels, out_h, out_w), np.float32)
    for i in range(kernel):
        for j in range(kernel):
            tap = x[:, :, i : i + stride * out_h : stride, j : j + stride * out_w : stride]
            y += tap * weight[None, :, 0, i, j, None, None]
    return y


def max_pool(x, kernel, stride, pad):
    x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), constant_values=-np.inf)
    out_h = (x.shape[2] - kernel) // stride + 1
    out_w = (x.shape[3] - kernel) // stride + 1
    y = np.full((x.shape[0], x.shape[1], out_h, out_w), -np.inf, np.float32)
    for i in range(kernel):
        for j in range(kernel):
            tap = x[:, :, i : i + stride * out_h : stride, j : j + stride * out_w : stride]
            np.maximum(y, tap, out=y)
    return y


def batch_norm(x, gamma, beta, mean, var, epsilon):
    scale = gamma / np.sqrt(var + epsilon)
    return (x - mean[:, None, None]) * scale[:, None, None] + beta[:, None, None]


def _evaluate(node, inputs, attrs):
    op = node.op_type
    if op == "Conv":
        return conv2d(inputs[0], inputs[1], attrs["strides"][0], attrs["pads"][0], attrs["group"])
    if op == "BatchNormalization":
        return batch_norm(*inputs, attrs["epsilon"])
    if op == "Relu":
        return np.maximum(inputs[0], 0)
    if op == "Clip":
        return np.clip(inputs[0], inputs[1], inputs[2])
    if op == "Add":
        return inputs[0] + inputs[1]
    if op == "MaxPool":
        return max_pool(inputs[0], attrs["kernel_shape"][0], attrs["strides"][0], attrs["pads"][0])
    if op == "GlobalAveragePool":
        return inputs[0].mean(axis=(2, 3), keepdims=True)
    if op == "Flatten":
        return inputs[0].reshape(inputs[0].shape[0], -1)
    raise ValueError(f"calibration cannot evaluate {op}")


def _last_uses(nodes):
    last = {}
    for index, node in enumerate(nodes):
        for name in node.input:
            last[name] = index
    return last


def calibrate(nodes, params, images):
    """Scales each Conv weight in `params` (name -> float32 array, changed in
    place) to unit output std on `images`, then calibrates the final Gemm."""
    values = {"input": images}
    last_use = _last_uses(nodes)
    for index, node in enumerate(nodes):
        if node.op_type == "Gemm":
            _calibrate_classifier(values[node.input[0]], params, node.input[1], node.input[2])
            return
        inputs = [values[n] if n in values else params[n] for n in node.input]
        y = _evaluate(node, inputs, _attributes(node))
        if node.op_type == "Conv":
            scale = np.float32(1.0 / y.std(dtype=np.float64))
            params[node.input[1]] *= scale
            y *= scale
        values[node.output[0]] = y.astype(np.float32, copy=False)
        for name in node.input:
            if last_use.get(name) == index and name in values:
                del values[name]
    raise ValueError("calibration found no Gemm classifier")


def _calibrate_classifier(features, params, weight_name, bias_name):
    """Makes the logits depend on the input: the bias cancels the mean
    features and the weights give each logit a spread of LOGIT_SPREAD."""
    features = features.astype(np.float64)
    weight = params[weight_name].astype(np.float64)
    mean = features.mean(axis=0)
    weight *= LOGIT_SPREAD / ((features - mean) @ weight.T).std()
    params[weight_name] = weight.astype(np.float32)
    params[bias_name] = (params[bias_name] - weight @ mean).astype(np.float32)
