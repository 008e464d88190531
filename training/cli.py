"""`python -m training`: train the scratch softmax regression, fit its novelty detector, then export and verify them.

python -m training                      # the book's settings, artifacts/ on success
python -m training --recipe best --device cuda
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import torch
from tqdm import tqdm

from training.arguments import ArgumentParser, UsageError, positive
from training.data import LABELS, DataNotFoundError, load_fashion_mnist
from training.export import ExportError, TrainingSummary, export
from training.novelty_eval import fit_and_evaluate, table
from training.ood import OodSetsUnavailable, build_sets
from training.train import RECIPES, EpochMetrics, fit


def build_parser() -> ArgumentParser:
    book, best = RECIPES["book"], RECIPES["best"]
    parser = ArgumentParser(
        prog="python -m training",
        description="Train the scratch softmax regression (D2L 3.6) on Fashion-MNIST and export it to ONNX.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    results = parser.add_argument_group("what is trained (changes the result)")
    results.add_argument(
        "--recipe",
        choices=sorted(RECIPES),
        default="book",
        help=f"book: plain SGD as the book ({book.epochs} epochs); best: standardised inputs, "
        f"L2 {best.weight_decay}, cosine lr, {best.epochs} epochs",
    )
    results.add_argument("--epochs", type=positive(int), help="passes over the training set (default: the recipe's)")
    results.add_argument("--lr", type=positive(float), help="learning rate (default: the recipe's)")
    results.add_argument("--batch-size", type=positive(int), help="images per SGD step (default: the recipe's)")
    results.add_argument("--seed", type=int, default=0, help="seeds initial weights and shuffling")
    where = parser.add_argument_group("where and how fast (does not change the result)")
    where.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="auto takes CUDA if present")
    where.add_argument("--data-dir", type=Path, default=Path("data"), help="Fashion-MNIST root (DIR/FashionMNIST/raw/)")
    where.add_argument("--out-dir", type=Path, default=Path("artifacts"), help="where the artifacts are published")
    where.add_argument("--quiet", action="store_true", help="no progress output, only the final summary")
    return parser


def choose_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available; use --device cpu or --device auto")
    return torch.device(name)


def run(args: argparse.Namespace) -> None:
    overrides = {k: v for k, v in (("epochs", args.epochs), ("lr", args.lr), ("batch_size", args.batch_size)) if v}
    config = replace(RECIPES[args.recipe], seed=args.seed, **overrides)
    device = choose_device(args.device)
    train_split, test_split = load_fashion_mnist(args.data_dir)
    ood_sets = build_sets()  # before training: a missing font is reported at once

    # the bar only on a terminal; logs (docker, CI) get one line per epoch
    show_bar = not args.quiet and sys.stderr.isatty()
    bar = tqdm(total=config.epochs, unit="epoch", disable=not show_bar, desc=f"{config.recipe} on {device.type}")

    def report(m: EpochMetrics) -> None:
        bar.update()
        bar.set_postfix(loss=f"{m.loss:.4f}", test_acc=f"{m.test_accuracy:.4f}")
        if not args.quiet:
            tqdm.write(
                f"epoch {m.epoch:3d}  loss {m.loss:.4f}  train acc {m.train_accuracy:.4f}  "
                f"test acc {m.test_accuracy:.4f}  {m.seconds:.3f}s"
            )

    with bar:
        result = fit(config, train_split, test_split, device, on_epoch=report)
    novelty = fit_and_evaluate(result.net, train_split, test_split, ood_sets)
    summary = TrainingSummary(config.to_dict(), str(device), result.seconds, result.history)
    manifest = export(result.net, novelty, summary, train_split, test_split, LABELS, args.out_dir)
    metrics, found = manifest["metrics"], manifest["novelty"]
    print(
        f"test accuracy {metrics['test_accuracy']:.4f} (train {metrics['train_accuracy']:.4f}) after "
        f"{config.epochs} epochs, {result.seconds:.2f}s of training on {device.type}\n"
        f"novelty detector ({found['method']}) fitted in {found['fit']['seconds']:.2f}s on {found['fit']['images']}; "
        f"threshold {found['threshold']:.4f} accepts {found['validation_accepted']:.1%} of the validation images "
        f"({found['fit']['validation']}) and {found['test_accepted']:.1%} of the test set\n"
        f"{table(found)}\n"
        f"model {args.out_dir / 'model.onnx'} (version {manifest['version']}, verified against torch); "
        f"manifest, weights and pictures in {args.out_dir}/\n"
        f"Triton/KServe model repository: {args.out_dir / manifest['model_repository']['path']}/ "
        f"(version {manifest['model_repository']['version']})"
    )


def main(argv: list[str] | None = None) -> int:
    try:
        run(build_parser().parse_args(argv))
    except UsageError as error:
        print(f"python -m training: error: {error}", file=sys.stderr)
        return 2
    except (DataNotFoundError, OodSetsUnavailable, ExportError) as error:
        print(f"python -m training: error: {error}", file=sys.stderr)
        return 1
    except OSError as error:  # e.g. an --out-dir that cannot be written
        print(f"python -m training: error: {error.strerror or error}: {error.filename or ''}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("python -m training: interrupted; previous artifacts left as they were", file=sys.stderr)
        return 130
    return 0
