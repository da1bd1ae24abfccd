"""Writes scikit-learn's digits (1797 8x8 grayscale images, 10 classes; the
data ships inside the package, so no download) as the dataset folder that
python/train_digits.py trains on and `anvil eval --dataset DIR` scores:

    .venv/bin/python python/make_digits.py            # -> build/digits
    .venv/bin/python python/make_digits.py -o DIR

DIR/{train,test}_images.npy  uint8 [N, 8, 8], values 0..255
DIR/{train,test}_labels.npy  int64 [N], 0..9
DIR/dataset.json             how it was made (split, seed, sizes)

The split is stratified 80/20 with a fixed seed. Pixels are stored at 8x8
(115 KB in all; 224x224x3 would be 270 MB, too big to carry to the GPU
machine) and already scaled from sklearn's 0..16 to 0..255 as
(v * 255 + 8) // 16, in integers, so the consumers only enlarge: each pixel
becomes a 28x28 block (nearest neighbour, 8 * 28 = 224) replicated to R, G
and B. python/train_digits.py (upscale_digits) and src/io/digits_dataset.h
(upscale_digit) do exactly that, so both see identical pixels."""
import argparse
import json
import os

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

SEED = 0
TEST_FRACTION = 0.2


def scale_to_bytes(images):
    """sklearn's 0..16 pixels as 0..255, rounded half up, in exact integers."""
    return ((images.astype(np.int64) * 255 + 8) // 16).astype(np.uint8)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser.add_argument("-o", "--output", default=os.path.join(root, "build", "digits"),
                        help="dataset folder to write (default: build/digits)")
    args = parser.parse_args()

    digits = load_digits()
    images = scale_to_bytes(digits.images)  # [1797, 8, 8]
    labels = digits.target.astype(np.int64)
    train_x, test_x, train_y, test_y = train_test_split(
        images, labels, test_size=TEST_FRACTION, random_state=SEED, stratify=labels)

    os.makedirs(args.output, exist_ok=True)
    for split, x, y in (("train", train_x, train_y), ("test", test_x, test_y)):
        np.save(os.path.join(args.output, f"{split}_images.npy"), np.ascontiguousarray(x))
        np.save(os.path.join(args.output, f"{split}_labels.npy"), np.ascontiguousarray(y))
    meta = {
        "source": "sklearn.datasets.load_digits",
        "classes": 10,
        "image_size": 8,
        "pixel_scale": "(v * 255 + 8) // 16 of sklearn's 0..16",
        "upscale": "nearest neighbour, 28x28 blocks, gray replicated to RGB: 224x224x3",
        "split": "stratified", "test_fraction": TEST_FRACTION, "seed": SEED,
        "train": int(len(train_y)), "test": int(len(test_y)),
    }
    with open(os.path.join(args.output, "dataset.json"), "w") as f:
        json.dump(meta, f, indent=2)
    print(f"wrote {args.output}: train {len(train_y)}, test {len(test_y)} images of 8x8, "
          f"10 classes")


if __name__ == "__main__":
    main()
