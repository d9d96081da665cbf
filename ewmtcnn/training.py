"""Training EW-MTCNN on one fold: the loss, SGD with two learning-rate groups, the per-epoch
history, and the predictions that the evaluate stage reads.

The same loop serves both modes: on cached backbone features (the default, seconds per
fold on a CPU) and fine-tuning the whole network on random views of the image store (the
paper's protocol; on CUDA with bf16 autocast and channels_last when a GPU is present).
"""
from __future__ import annotations

import contextlib
import pickle
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ewmtcnn import InputError, augment, dataset, images, layout, metrics, models, params, wheel
from ewmtcnn.atomic import written
from ewmtcnn.dataset import DISTRIBUTION, EMOTIONS
from ewmtcnn.models import EmotionNet

NEUTRAL_CHOICES = ("drop", "keep")
HISTORY = ("train_loss", "train_acc", "train_kl", "test_loss", "test_acc", "test_kl")


@dataclass(frozen=True)
class Settings:
    """The `train.*` params that shape the optimisation."""

    epochs: int
    batch_size: int
    lr_backbone: float
    lr_head: float
    momentum: float
    weight_decay: float
    lam: float
    seed: int


def outputs(neutral: str) -> tuple[str, ...]:
    """The emotions the network predicts, in output order."""
    return DISTRIBUTION if neutral == "keep" else EMOTIONS


def distributions(labels: pd.DataFrame, neutral: str) -> np.ndarray:
    """Target distributions (N, c): the six emotions renormalised, or all seven."""
    probs = labels[list(outputs(neutral))].to_numpy(dtype=np.float64)
    total = probs.sum(axis=1, keepdims=True)
    if (total <= 0).any():
        empty = labels.loc[total[:, 0] <= 0, "image"].tolist()
        raise InputError(f"{len(empty)} image(s) have no emotion votes, only neutral, so data.neutral: drop "
                         f"leaves no distribution: {', '.join(empty[:5])}; use data.neutral: keep")
    return probs / total


def loss(logits: torch.Tensor, classes: torch.Tensor, targets: torch.Tensor, lam: float) -> torch.Tensor:
    """(1 - lambda) * CE(z', y) + lambda * KL(p || softmax(z')), the KL summed over emotions and
    averaged over the batch (the LDL convention; the reimplementation also divided by c)."""
    log_q = F.log_softmax(logits, dim=1)
    return (1 - lam) * F.nll_loss(log_q, classes) + lam * F.kl_div(log_q, targets, reduction="batchmean")


class Inputs(Protocol):
    """What the network reads for a set of images: cached features or image views."""

    def train(self, indices: np.ndarray, generator: torch.Generator) -> torch.Tensor: ...

    def test(self, indices: np.ndarray) -> torch.Tensor: ...


@dataclass
class CachedFeatures:
    """Pooled backbone features computed once: the same input in training and evaluation."""

    features: np.ndarray

    def train(self, indices: np.ndarray, generator: torch.Generator) -> torch.Tensor:
        return torch.from_numpy(np.asarray(self.features[indices], dtype=np.float32))

    def test(self, indices: np.ndarray) -> torch.Tensor:
        return self.train(indices, torch.Generator())


@dataclass
class ImageViews:
    """Random crop-and-flip views of the uint8 store for training, the centre crop for evaluation."""

    store: np.ndarray
    mean: augment.Stats
    std: augment.Stats

    def train(self, indices: np.ndarray, generator: torch.Generator) -> torch.Tensor:
        return augment.views(self.store[indices], generator=generator, mean=self.mean, std=self.std)

    def test(self, indices: np.ndarray) -> torch.Tensor:
        return augment.centre(self.store[indices], mean=self.mean, std=self.std)


# --- what params.yaml selects: shared by the per-fold train stage and the final model -----------


@dataclass(frozen=True)
class Variant:
    """The variant to train: class label, outputs, prior, network and optimisation."""

    label: str
    neutral: str
    init: str
    freeze: bool
    sigma: float
    backbone: str
    pretrained: bool
    weights: str | None
    head: str
    finetune: bool
    run: Settings


def variant(p: Mapping[str, Any]) -> Variant:
    """The variant that the params select, every value checked."""
    number = (int, float)
    return Variant(
        label=params.choice(p, "data.label", dataset.LABELS),
        neutral=params.choice(p, "data.neutral", NEUTRAL_CHOICES),
        init=params.choice(p, "prior.init", wheel.INITS),
        freeze=params.get(p, "prior.freeze", bool),
        sigma=params.get(p, "prior.sigma", number),
        backbone=params.choice(p, "model.backbone", models.BACKBONES),
        pretrained=params.get(p, "model.pretrained", bool),
        weights=params.get(p, "model.weights", str) or None,
        head=params.choice(p, "model.head", models.HEADS),
        finetune=params.get(p, "train.finetune", bool),
        run=Settings(
            epochs=params.get(p, "train.epochs", int), batch_size=params.get(p, "train.batch_size", int),
            lr_backbone=params.get(p, "train.lr_backbone", number), lr_head=params.get(p, "train.lr_head", number),
            momentum=params.get(p, "train.momentum", number), weight_decay=params.get(p, "train.weight_decay", number),
            lam=params.get(p, "train.lambda", number), seed=params.get(p, "train.seed", int)))


@dataclass
class Data:
    """What training reads, one row per image of the labels table, in its order."""

    labels: pd.DataFrame
    emotions: tuple[str, ...]  # the outputs, in order
    targets: np.ndarray  # (N, outputs) distributions
    classes: np.ndarray  # (N,) index of each image's class label in EMOTIONS
    inputs: Inputs  # cached features, or views of the image store when fine-tuning


def load_data(v: Variant) -> Data:
    """The labels, targets and inputs of every image, from the preprocess and features stages' outputs."""
    labels = dataset.read_labels(layout.LABELS)
    inputs: Inputs
    if v.finetune:
        inputs = ImageViews(images.open_store(layout.IMAGES), *models.normalisation(v.backbone))
    else:
        inputs = CachedFeatures(np.load(layout.FEATURES, mmap_mode="r"))
        if len(inputs.features) != len(labels):
            raise InputError(f"{layout.FEATURES} has {len(inputs.features)} rows for {len(labels)} images; rerun `dvc repro features`")
    return Data(labels, outputs(v.neutral), distributions(labels, v.neutral),
                labels[v.label].map(EMOTIONS.index).to_numpy(), inputs)


def network(v: Variant, data: Data, train_idx: np.ndarray, fold: int) -> tuple[EmotionNet, np.ndarray | None]:
    """The untrained network for training on `train_idx`, and its initial prior.

    corr priors come from `train_idx`'s labels only, so held-out labels never leak in. The
    initialisation is seeded by `fold`, so a fold trains the same alone or within the loop.
    """
    prior = wheel.prior_matrix(v.init, sigma=v.sigma, probabilities=data.labels.loc[train_idx, list(EMOTIONS)].to_numpy(),
                               neutral=v.neutral == "keep", seed=v.run.seed)
    torch.manual_seed(v.run.seed * 1000 + fold)
    if isinstance(data.inputs, CachedFeatures):
        backbone, dim = None, data.inputs.features.shape[1]
    else:
        backbone, dim = models.build_backbone(v.backbone, v.pretrained, v.weights)
    return EmotionNet(dim, len(data.emotions), v.head, prior, v.freeze, backbone), prior


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _on(device: torch.device, x: torch.Tensor) -> torch.Tensor:
    if x.dim() == 4:  # images: channels_last suits convolutions on both GPU and oneDNN
        return x.to(device, memory_format=torch.channels_last, non_blocking=True)
    return x.to(device, non_blocking=True)


def _autocast(device: torch.device) -> contextlib.AbstractContextManager:
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()


def step(model: EmotionNet, optimiser: torch.optim.Optimizer, x: torch.Tensor, classes: torch.Tensor,
         targets: torch.Tensor, lam: float, dev: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """One SGD step on a batch; returns the batch loss and logits."""
    with _autocast(dev):
        logits = model(_on(dev, x))
    batch_loss = loss(logits.float(), classes.to(dev), targets.to(dev), lam)
    optimiser.zero_grad(set_to_none=True)
    batch_loss.backward()
    optimiser.step()
    return batch_loss, logits


def optimiser(model: EmotionNet, settings: Settings) -> torch.optim.SGD:
    """SGD with momentum and weight decay; the backbone and the head at their own learning rates."""
    return torch.optim.SGD(model.parameter_groups(settings.lr_backbone, settings.lr_head), lr=settings.lr_head,
                           momentum=settings.momentum, weight_decay=settings.weight_decay)


def predict(model: EmotionNet, inputs: Inputs, indices: np.ndarray, batch_size: int, dev: torch.device) -> np.ndarray:
    """Predicted distributions (N, c) in float64, in evaluation mode."""
    model.eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(indices), batch_size):
            with _autocast(dev):
                logits = model(_on(dev, inputs.test(indices[start : start + batch_size])))
            out.append(torch.softmax(logits.double(), dim=1).cpu().numpy())
    return np.concatenate(out) if out else np.empty((0, model.fc.out_features))


@dataclass
class FoldResult:
    """What one fold's training leaves: its history and its predictions."""

    history: pd.DataFrame
    test: np.ndarray  # predicted distributions of the test fold's images
    train: np.ndarray  # predicted distributions of the training images, in place


def fit(model: EmotionNet, inputs: Inputs, targets: np.ndarray, classes: np.ndarray, train_idx: np.ndarray,
        settings: Settings, desc: str = "training") -> Iterator[dict[str, float]]:
    """Train `model` on `train_idx`, yielding after every epoch its figures: epoch, train_loss,
    train_acc, train_kl, averaged over the epoch's batches as the model saw them (augmented
    views when fine-tuning).

    A generator, so that a caller with a test set can evaluate the model between epochs, and
    the final model, which has none, simply trains. Randomness (initialisation aside) comes
    from one generator seeded with `settings.seed`.
    """
    dev = device()
    model.to(dev, memory_format=torch.channels_last)  # faster convolutions on CUDA and on CPU (oneDNN)
    generator = torch.Generator().manual_seed(settings.seed)
    sgd = optimiser(model, settings)
    p_all = torch.from_numpy(targets.astype(np.float32))
    y_all = torch.from_numpy(classes.astype(np.int64))
    for epoch in tqdm(range(1, settings.epochs + 1), desc=desc, unit="epoch"):
        model.train()
        order = train_idx[torch.randperm(len(train_idx), generator=generator).numpy()]
        seen, total_loss, q_seen = 0, 0.0, []
        for start in range(0, len(order), settings.batch_size):
            batch = order[start : start + settings.batch_size]
            if len(batch) < 2 and model.backbone is not None:
                continue  # batch norm cannot train on a single image; it rejoins next epoch
            batch_loss, logits = step(model, sgd, inputs.train(batch, generator), y_all[batch], p_all[batch],
                                      settings.lam, dev)
            seen += len(batch)
            total_loss += batch_loss.item() * len(batch)
            q_seen.append((batch, torch.softmax(logits.detach().double(), dim=1).cpu().numpy()))
        seen_idx = np.concatenate([b for b, _ in q_seen])
        q_train = np.concatenate([q for _, q in q_seen])
        train_scores = metrics.fold_scores(targets[seen_idx], q_train, classes[seen_idx])
        yield {"epoch": epoch, "train_loss": total_loss / seen, "train_acc": train_scores["acc"],
               "train_kl": train_scores["kl"]}


def train_fold(model: EmotionNet, inputs: Inputs, targets: np.ndarray, classes: np.ndarray,
               train_idx: np.ndarray, test_idx: np.ndarray, settings: Settings, desc: str = "training") -> FoldResult:
    """Train `model` on `train_idx` and evaluate it on `test_idx` after every epoch.

    History: train_* as `fit` yields them; test_* are measured on the test fold after the epoch.
    """
    dev = device()
    rows = []
    for row in fit(model, inputs, targets, classes, train_idx, settings, desc):
        q_test = predict(model, inputs, test_idx, settings.batch_size * 4, dev)
        test_scores = metrics.fold_scores(targets[test_idx], q_test, classes[test_idx])
        test_loss = _loss_of(q_test, classes[test_idx], targets[test_idx], settings.lam)
        rows.append({**row, "test_loss": test_loss, "test_acc": test_scores["acc"], "test_kl": test_scores["kl"]})
    q_train_in_place = predict(model, inputs, train_idx, settings.batch_size * 4, dev)
    return FoldResult(pd.DataFrame(rows), q_test, q_train_in_place)


def _loss_of(q: np.ndarray, classes: np.ndarray, targets: np.ndarray, lam: float) -> float:
    """The training loss, from predicted distributions (for the test fold's history)."""
    log_q = torch.from_numpy(np.log(np.clip(q, 1e-300, None)))
    return float(loss(log_q, torch.from_numpy(classes.astype(np.int64)), torch.from_numpy(targets), lam))


# --- a trained fold on disk --------------------------------------------------------------------


def prediction_table(images: Sequence[str], fold: int, label_names: Sequence[str], emotions: Sequence[str],
                     true: np.ndarray, pred: np.ndarray) -> pd.DataFrame:
    """One row per image: image, fold, label, true_<emotion>..., pred_<emotion>..."""
    table = pd.DataFrame({"image": list(images), "fold": fold, "label": list(label_names)})
    for j, e in enumerate(emotions):
        table[f"true_{e}"] = true[:, j]
    for j, e in enumerate(emotions):
        table[f"pred_{e}"] = pred[:, j]
    return table


def save_fold(directory: Path, model: EmotionNet, prior_initial: np.ndarray | None, history: pd.DataFrame,
              test: pd.DataFrame, train: pd.DataFrame) -> None:
    """Write one fold's weights, history and predictions, all or nothing."""
    with written(directory, directory=True) as tmp:
        torch.save({"model": model.state_dict(), "prior_initial": prior_initial}, tmp / "model.pt")
        history.to_csv(tmp / "history.csv", index=False)
        test.to_csv(tmp / "test.csv", index=False)
        train.to_csv(tmp / "train.csv", index=False)


# --- the final model on disk -----------------------------------------------------------------

FINAL_FORMAT = "ewmtcnn-final-1"  # a file of another layout is refused, not misread


@dataclass(frozen=True)
class FinalModel:
    """The model trained on every image, with what prediction needs to rebuild and feed it."""

    state: dict[str, torch.Tensor]  # EmotionNet's state dict: fc and prior, and the backbone when fine-tuned
    prior_initial: np.ndarray | None  # builds the prior layer (None: prior.init none), then the state overwrites it
    prior_init: str
    backbone: str
    pretrained: bool
    weights: str | None  # model.weights: with `pretrained`, which backbone the cached features came from
    head: str
    finetune: bool  # True: `state` holds the backbone; False: the head reads `backbone`'s pooled features
    outputs: tuple[str, ...]  # emotion names, in output order
    size: int  # preprocess.size: images are resized and centre-cropped to this square first
    images: int  # how many images it was trained on
    history: tuple[dict[str, float], ...]  # per epoch, as `fit` yields it

    def save(self, path: Path) -> None:
        """One torch file of plain tensors, strings and numbers, so that `load_final` needs no unpickling of code."""
        content = {f.name: getattr(self, f.name) for f in fields(self)}
        content["state"] = {k: v.cpu() for k, v in self.state.items()}
        content["prior_initial"] = None if self.prior_initial is None else torch.from_numpy(self.prior_initial)
        torch.save({"format": FINAL_FORMAT, **content}, path)


def load_final(path: Path) -> FinalModel:
    """The final model in `path`; a missing, unreadable or foreign file is an InputError naming it."""
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise InputError(f"{path}: model not found; train it with `dvc repro final` (or name one with --model)") from None
    except OSError as e:  # a folder, no permission
        raise InputError(f"{path}: cannot be read ({e.strerror or e})") from None
    except (RuntimeError, EOFError, ValueError, pickle.UnpicklingError):
        # torch's own messages run to paragraphs about unpickling; which one is beside the point.
        content = None
    names = {f.name for f in fields(FinalModel)}
    if not isinstance(content, dict) or content.get("format") != FINAL_FORMAT or set(content) != names | {"format"}:
        raise InputError(f"{path}: not a final EW-MTCNN model (as `dvc repro final` writes)")
    prior = content["prior_initial"]
    return FinalModel(**{**{k: content[k] for k in names}, "prior_initial": None if prior is None else prior.numpy()})
