"""Exports a torchvision model to ONNX the way the guide's step 1 does:
FP32, dynamic batch, input named "input", output "output".

    python3 bench/export_torchvision.py --model resnet18 -o resnet18.onnx

Weights are torchvision's architecture with seeded random initialization
(the GPU machine has no internet, so no pretrained download)."""
import argparse

import torch
import torchvision


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("-o", "--output", required=True)
    parser.add_argument("--opset", type=int, default=17)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = getattr(torchvision.models, args.model)(weights=None).eval()
    x = torch.randn(1, 3, 224, 224)
    torch.onnx.export(model, x, args.output, input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "N"}, "output": {0: "N"}},
                      opset_version=args.opset, dynamo=False)
    print(f"exported {args.model} to {args.output}")


if __name__ == "__main__":
    main()
