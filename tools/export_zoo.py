#!/usr/bin/python3
"""Export the nnjit model zoo: ONNX files plus a reference input and torch's
output for each model, for the loader, the op tests and the benchmarks.

Usage:
    /usr/bin/python3 tools/export_zoo.py                  # export what is missing into models/
    /usr/bin/python3 tools/export_zoo.py --only resnet50,darts_net --force
    /usr/bin/python3 tools/export_zoo.py --list
    /usr/bin/python3 tools/export_zoo.py --out /tmp/zoo
    /usr/bin/python3 tools/export_zoo.py --set coverage   # into models/coverage/

For each model NAME the output folder gets NAME.onnx, NAME.input.npy (seeded
random input, 1x3x224x224 float32) and NAME.output.npy (torch's output in eval
mode), and zoo.json lists every model present there. Weights are seeded random
(torchvision weights cannot be downloaded here); every BatchNorm gets random
running statistics and affine parameters, and every zero-initialised bias a
small random value, so that BN folding and bias handling are exercised with
non-trivial values. Everything is seeded per model, so a rerun
reproduces the same files. The batch axis is exported as the symbolic dim
"batch" so the loader's binding of symbolic dims is exercised.

Needs Debian's python3-torch, python3-torchvision, python3-onnx and numpy;
run it with /usr/bin/python3, not a venv python.
"""

import argparse
import collections
import json
import os
import sys
import time
import warnings
import zlib
from pathlib import Path

import numpy as np

OPSET = 13
INPUT_NAME = "input"
OUTPUT_NAME = "output"
BATCH_DIM = "batch"
INPUT_SHAPE = (1, 3, 224, 224)
# Past this the reference output is more likely to test float rounding than
# the kernels; none of the zoo's models comes near it.
MAX_SANE_ABS = 1e4
MIN_SANE_STD = 1e-6


def _tv(name):
    def build():
        import torchvision
        return getattr(torchvision.models, name)(weights=None)
    return build


def _zoo_net(cls_name):
    def build():
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import zoo_nets
        return getattr(zoo_nets, cls_name)()
    return build


# Order matters only for printing and zoo.json.
MODELS = collections.OrderedDict([
    ("mobilenet_v2", _tv("mobilenet_v2")),
    ("mobilenet_v3_small", _tv("mobilenet_v3_small")),
    ("efficientnet_b0", _tv("efficientnet_b0")),
    ("resnet50", _tv("resnet50")),
    ("resnext50_32x4d", _tv("resnext50_32x4d")),
    ("shufflenet_v2_x1_0", _tv("shufflenet_v2_x1_0")),
    ("squeezenet1_1", _tv("squeezenet1_1")),
    ("darts_net", _zoo_net("DartsNet")),
    ("repvgg_net", _zoo_net("RepVGGNet")),
])

# The coverage set (--set coverage): more torchvision architectures, checked against torch
# only (the ctest suite "coverage"), not benchmarked. Dense and Inception-style concats,
# SE blocks of other shapes, grouped convs at other widths, LayerNorm and GELU (ConvNeXt),
# shifted-window attention built from hundreds of shape ops (Swin), Fused-MBConv
# (EfficientNetV2), attention written as Einsum (MaxViT). Left out: the very large ones
# (alexnet, vgg, wide_resnet: weights only), vit_b_16 (its head is zero-initialised, so
# the output is the bias whatever the kernels compute) and inception_v3 (its
# random-weight output overflows the sanity check).
COVERAGE = collections.OrderedDict((name, _tv(name)) for name in [
    "googlenet", "densenet121", "mnasnet1_0", "regnet_y_400mf", "regnet_x_400mf",
    "mobilenet_v3_large", "resnet18", "squeezenet1_0", "shufflenet_v2_x0_5",
    "convnext_tiny", "efficientnet_v2_s", "swin_t", "maxvit_t",
])
SETS = {"zoo": MODELS, "coverage": COVERAGE}


def model_seed(name):
    # crc32 rather than hash(): str hashes are salted per process.
    return zlib.crc32(name.encode()) & 0x7FFFFFFF


def file_names(name):
    return {"onnx": f"{name}.onnx", "input": f"{name}.input.npy",
            "output": f"{name}.output.npy"}


def randomize_batchnorm(model, generator):
    import torch
    count = 0
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            n = module.num_features

            def uniform(lo, hi):
                return torch.rand(n, generator=generator) * (hi - lo) + lo

            module.running_mean.copy_(uniform(-0.2, 0.2))
            module.running_var.copy_(uniform(0.5, 2.0))
            if module.affine:
                module.weight.data.copy_(uniform(0.5, 1.5))
                module.bias.data.copy_(uniform(-0.2, 0.2))
            count += 1
    return count


def randomize_zero_biases(model, generator):
    """torchvision zero-initialises conv and linear biases; a kernel that
    dropped its bias would then still match the reference output. Identical
    zero biases also make torch deduplicate them into Identity nodes, which
    trained models do not show."""
    import torch
    count = 0
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            continue
        bias = getattr(module, "bias", None)
        if isinstance(bias, torch.nn.Parameter) and not bool(bias.any()):
            bias.data.copy_(torch.rand(bias.shape, generator=generator) * 0.2 - 0.1)
            count += 1
    return count


def check_sane(name, out):
    if not np.all(np.isfinite(out)):
        raise RuntimeError(f"{name}: torch output has inf/NaN")
    max_abs, std = float(np.abs(out).max()), float(out.std())
    if std < MIN_SANE_STD:
        raise RuntimeError(f"{name}: torch output is (nearly) constant, std={std:g}")
    if max_abs > MAX_SANE_ABS:
        raise RuntimeError(f"{name}: torch output too large, max|out|={max_abs:g}")
    return max_abs, std


def save_npy(path, array):
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.save(f, array)
    os.replace(tmp, path)


def check_onnx(name, path):
    import onnx
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    for value in list(model.graph.input) + list(model.graph.output):
        dim0 = value.type.tensor_type.shape.dim[0]
        if dim0.dim_param != BATCH_DIM:
            raise RuntimeError(f"{name}: {value.name} has no symbolic '{BATCH_DIM}' axis")
    return model


def export_one(name, out_dir):
    """Builds, runs and exports one model; files are written under temporary
    names and renamed at the end so an interrupted run never leaves a set
    that a later run would mistake for complete."""
    import torch

    seed = model_seed(name)
    torch.manual_seed(seed)
    model = {**MODELS, **COVERAGE}[name]()
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        randomize_batchnorm(model, generator)
        randomize_zero_biases(model, generator)
    model.eval()

    x = np.random.default_rng(seed).standard_normal(INPUT_SHAPE).astype(np.float32)
    with torch.no_grad():
        y = model(torch.from_numpy(x)).numpy().astype(np.float32)
    check_sane(name, y)

    files = file_names(name)
    onnx_path = out_dir / files["onnx"]
    tmp_onnx = onnx_path.with_name(onnx_path.name + ".tmp")
    with warnings.catch_warnings():
        # torch warns about constant folding and the traced size() of shuffle
        # and flatten ops; those are expected and drown the one-line summary.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, torch.from_numpy(x), str(tmp_onnx),
            opset_version=OPSET, do_constant_folding=True,
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: BATCH_DIM}, OUTPUT_NAME: {0: BATCH_DIM}})
    check_onnx(name, tmp_onnx)
    save_npy(out_dir / files["input"], x)
    save_npy(out_dir / files["output"], y)
    os.replace(tmp_onnx, onnx_path)


def describe(name, out_dir):
    """zoo.json entry, read back from the files so it is right for models
    exported by earlier runs too."""
    import onnx
    files = file_names(name)
    model = onnx.load(str(out_dir / files["onnx"]), load_external_data=False)
    x = np.load(out_dir / files["input"], mmap_mode="r")
    y = np.load(out_dir / files["output"])
    ops = collections.Counter(node.op_type for node in model.graph.node)
    return {
        "name": name,
        "files": files,
        "opset": OPSET,
        "seed": model_seed(name),
        "inputs": [{"name": INPUT_NAME, "shape": list(x.shape), "dtype": str(x.dtype),
                    "dims": [BATCH_DIM] + list(x.shape[1:])}],
        "outputs": [{"name": OUTPUT_NAME, "shape": list(y.shape), "dtype": str(y.dtype),
                     "dims": [BATCH_DIM] + list(y.shape[1:])}],
        "output_max_abs": float(np.abs(y).max()),
        "output_std": float(y.std()),
        "nodes": len(model.graph.node),
        "op_types": dict(sorted(ops.items())),
    }


def parse_args(argv):
    models_dir = Path(__file__).resolve().parent.parent / "models"
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path,
                   help=f"output folder (default: {models_dir}, or its coverage/ for --set coverage)")
    p.add_argument("--set", choices=sorted(SETS), default="zoo",
                   help="which models: the benchmark zoo (default) or the coverage set")
    p.add_argument("--only", help="comma-separated model names (default: all of the set)")
    p.add_argument("--force", action="store_true", help="re-export models whose files exist")
    p.add_argument("--list", action="store_true", help="print the model names and exit")
    p.add_argument("--ops", action="store_true", help="also print each model's op types")
    args = p.parse_args(argv)
    if args.out is None:
        args.out = models_dir / "coverage" if args.set == "coverage" else models_dir
    return args


def main(argv=None):
    args = parse_args(argv)
    models = SETS[args.set]
    if args.list:
        print("\n".join(models))
        return 0
    names = list(models)
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in models]
        if unknown:
            print(f"unknown model(s): {', '.join(unknown)}; --list shows the names",
                  file=sys.stderr)
            return 2

    import torch
    torch.set_num_threads(2)
    args.out.mkdir(parents=True, exist_ok=True)

    started = time.time()
    infos = {}
    for name in names:
        present = all((args.out / f).exists() for f in file_names(name).values())
        t0 = time.time()
        if present and not args.force:
            status = "kept"
        else:
            export_one(name, args.out)
            status = "exported"
        info = infos[name] = describe(name, args.out)
        print(f"{name:20s} {status:8s} {time.time() - t0:6.1f}s  nodes={info['nodes']:4d}  "
              f"out={tuple(info['outputs'][0]['shape'])}  max|out|={info['output_max_abs']:.4g}  "
              f"std={info['output_std']:.4g}", flush=True)
        if args.ops:
            print("    " + " ".join(f"{op}:{n}" for op, n in info["op_types"].items()))

    # zoo.json lists every model present in the folder, not only this run's.
    entries = [infos[n] if n in infos else describe(n, args.out) for n in models
               if all((args.out / f).exists() for f in file_names(n).values())]
    save_json = args.out / "zoo.json"
    tmp = save_json.with_name(save_json.name + ".tmp")
    tmp.write_text(json.dumps({"opset": OPSET, "models": entries}, indent=2) + "\n")
    os.replace(tmp, save_json)
    print(f"{len(entries)} model(s) in {save_json} ({time.time() - started:.1f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
