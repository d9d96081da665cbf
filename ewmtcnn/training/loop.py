"""Training one EW-MTCNN network: the loss, SGD with two learning-rate groups, the per-epoch history.

- Runs on cached backbone features or fine-tunes the whole network on random views of the image
  store (the paper's protocol).
- On CUDA it computes in bf16 autocast; on every device convolutions run channels_last.
- `Trained` is what training a network or a bank of heads leaves, whichever trained it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ewmtcnn import InputError
from ewmtcnn.config.sections import Train
from ewmtcnn.data.dataset import EMOTIONS
from ewmtcnn.evaluation import metrics
from ewmtcnn.model import wheel
from ewmtcnn.model.network import EmotionNet
from ewmtcnn.training.inputs import CachedFeatures, Data, Inputs
from ewmtcnn.training.variant import Variant


def loss(logits: torch.Tensor, classes: torch.Tensor, targets: torch.Tensor, lam: float) -> torch.Tensor:
    """(1 - lambda) * CE(z', y) + lambda * KL(p || softmax(z')).

    - The KL is summed over emotions and averaged over the batch (the LDL convention; the public
      reimplementation also divided by c).
    """
    log_q = F.log_softmax(logits, dim=1)
    return (1 - lam) * F.nll_loss(log_q, classes) + lam * F.kl_div(log_q, targets, reduction="batchmean")


def initial_prior(v: Variant, data: Data, train_idx: np.ndarray, seed: int) -> np.ndarray | None:
    """The prior layer's initial matrix for training on `train_idx`.

    - `corr` priors come from those images' labels only, so held-out labels never leak in.
    - `rand` is drawn from `seed`.
    """
    probabilities = data.labels.loc[train_idx, list(EMOTIONS)].to_numpy()
    keep = v.neutral == "keep"
    return wheel.prior_matrix(v.init, sigma=v.sigma, probabilities=probabilities, neutral=keep, seed=seed)


def network(v: Variant, data: Data, train_idx: np.ndarray, seed: int) -> tuple[EmotionNet, np.ndarray | None]:
    """The untrained network for training on `train_idx`, and its initial prior (`initial_prior`).

    - `seed` (the train stage derives it from the fold) seeds the initialisation, so a fold trains
      the same alone or beside the others.
    """
    prior = initial_prior(v, data, train_idx, v.run.seed)
    torch.manual_seed(seed)
    if isinstance(data.inputs, CachedFeatures):
        backbone, width = None, data.inputs.features.shape[1]
    else:
        backbone, width = v.backbone.build(v.pretrained, v.weights), v.backbone.features
    return EmotionNet(width, len(data.emotions), v.head, prior, v.freeze, backbone), prior


def device() -> torch.device:
    """CUDA when there is a GPU, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _on(device: torch.device, x: torch.Tensor) -> torch.Tensor:
    if x.dim() == 4:  # images: channels_last suits convolutions on both GPU and oneDNN
        return x.to(device, memory_format=torch.channels_last, non_blocking=True)
    return x.to(device, non_blocking=True)


def _autocast(device: torch.device) -> contextlib.AbstractContextManager:
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()


def step(
    model: EmotionNet,
    optimiser: torch.optim.Optimizer,
    x: torch.Tensor,
    classes: torch.Tensor,
    targets: torch.Tensor,
    lam: float,
    dev: torch.device,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One SGD step on a batch; returns the batch loss and logits."""
    with _autocast(dev):
        logits = model(_on(dev, x))
    batch_loss = loss(logits.float(), classes.to(dev), targets.to(dev), lam)
    optimiser.zero_grad(set_to_none=True)
    batch_loss.backward()
    optimiser.step()
    return batch_loss, logits


def optimiser(model: EmotionNet, train: Train) -> torch.optim.SGD:
    """SGD with momentum and weight decay; the backbone and the head at their own learning rates."""
    groups = model.parameter_groups(train.lr_backbone, train.lr_head)
    return torch.optim.SGD(groups, lr=train.lr_head, momentum=train.momentum, weight_decay=train.weight_decay)


def predict(model: EmotionNet, inputs: Inputs, indices: np.ndarray, batch_size: int, dev: torch.device) -> np.ndarray:
    """Predicted distributions (N, c) in float64, in evaluation mode."""
    model.eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(indices), batch_size):
            with _autocast(dev):
                logits = model(_on(dev, inputs.for_evaluation(indices[start : start + batch_size])))
            out.append(torch.softmax(logits.double(), dim=1).cpu().numpy())
    return np.concatenate(out) if out else np.empty((0, model.fc.out_features))


def diverged(what: str, train: Train) -> InputError:
    """The error for a training run whose numbers left the finite range: the step was too large."""
    return InputError(
        f"{what}: training diverged; lower train.lr_head (now {train.lr_head:g}) "
        f"or train.lr_backbone (now {train.lr_backbone:g})"
    )


def checked(q: np.ndarray, what: str, train: Train) -> np.ndarray:
    """`q`, refused when training diverged: a NaN, or a probability of exactly 0 (an infinite KL)."""
    if not np.isfinite(q).all() or (q <= 0).any():
        raise diverged(f"{what}: predicted probabilities of NaN or exactly 0", train)
    return q


@dataclass
class Trained:
    """A trained network or head: its per-epoch history, its weights and its predictions at its last epoch."""

    history: pd.DataFrame
    state: dict[str, torch.Tensor]  # EmotionNet's state dict, on the CPU
    held_out: np.ndarray  # predicted distributions of its held-out images
    in_place: np.ndarray  # predicted distributions of its own training images


def train_epochs(
    model: EmotionNet,
    inputs: Inputs,
    targets: np.ndarray,
    classes: np.ndarray,
    train_idx: np.ndarray,
    train: Train,
    desc: str = "training",
) -> Iterator[dict[str, float]]:
    """Train `model` on `train_idx`, yielding each epoch's figures: epoch, train_loss, train_acc, train_kl.

    - The figures are averaged over the epoch's batches as the model saw them (augmented views
      when fine-tuning).
    - A generator: a caller with a test set evaluates the model between epochs; the final model,
      which has none, simply trains.
    - Randomness (initialisation aside) comes from one generator seeded with `train.seed`.
    - A non-finite loss stops training with an error that names the learning rates.
    """
    dev = device()
    model.to(dev, memory_format=torch.channels_last)  # faster convolutions on CUDA and on CPU (oneDNN)
    generator = torch.Generator().manual_seed(train.seed)
    sgd = optimiser(model, train)
    p_all = torch.from_numpy(targets.astype(np.float32))
    y_all = torch.from_numpy(classes.astype(np.int64))
    for epoch in tqdm(range(1, train.epochs + 1), desc=desc, unit="epoch"):
        model.train()
        order = train_idx[torch.randperm(len(train_idx), generator=generator).numpy()]
        seen, total_loss, q_seen = 0, 0.0, []
        for start in range(0, len(order), train.batch_size):
            batch = order[start : start + train.batch_size]
            if len(batch) < 2 and model.backbone is not None:
                continue  # batch norm cannot train on a single image; it rejoins next epoch
            x = inputs.for_training(batch, generator)
            batch_loss, logits = step(model, sgd, x, y_all[batch], p_all[batch], train.lam, dev)
            seen += len(batch)
            total_loss += batch_loss.item() * len(batch)
            q_seen.append((batch, torch.softmax(logits.detach().double(), dim=1).cpu().numpy()))
        if not np.isfinite(total_loss):
            raise diverged(f"{desc}: the loss became {total_loss} in epoch {epoch}", train)
        seen_idx = np.concatenate([b for b, _ in q_seen])
        q_train = np.concatenate([q for _, q in q_seen])
        yield {
            "epoch": epoch,
            "train_loss": total_loss / seen,
            "train_acc": metrics.accuracy(classes[seen_idx], q_train),
            "train_kl": float(metrics.distances(targets[seen_idx], q_train)["kl"].mean()),
        }


def train_fold(
    model: EmotionNet,
    inputs: Inputs,
    targets: np.ndarray,
    classes: np.ndarray,
    train_idx: np.ndarray,
    test_idx: np.ndarray,
    train: Train,
    desc: str = "training",
) -> Trained:
    """Train `model` on `train_idx` and evaluate it on `test_idx` after every epoch.

    - History: train_* as `train_epochs` yields them; test_* measured on the test fold after the epoch.
    - The test figures are a learning curve for readers: no choice reads them.
    """
    dev = device()
    rows = []
    for row in train_epochs(model, inputs, targets, classes, train_idx, train, desc):
        q_test = checked(predict(model, inputs, test_idx, train.batch_size * 4, dev), desc, train)
        test_loss = _loss_of(q_test, classes[test_idx], targets[test_idx], train.lam)
        test_acc = metrics.accuracy(classes[test_idx], q_test)
        test_kl = float(metrics.distances(targets[test_idx], q_test)["kl"].mean())
        rows.append({**row, "test_loss": test_loss, "test_acc": test_acc, "test_kl": test_kl})
    q_train_in_place = checked(predict(model, inputs, train_idx, train.batch_size * 4, dev), desc, train)
    return Trained(pd.DataFrame(rows), weights(model), q_test, q_train_in_place)


def weights(model: EmotionNet) -> dict[str, torch.Tensor]:
    """The model's state dict, detached, on the CPU."""
    return {k: t.detach().cpu() for k, t in model.state_dict().items()}


def _loss_of(q: np.ndarray, classes: np.ndarray, targets: np.ndarray, lam: float) -> float:
    """The training loss, from predicted distributions (for the test fold's history)."""
    log_q = torch.from_numpy(np.log(q))
    return float(loss(log_q, torch.from_numpy(classes.astype(np.int64)), torch.from_numpy(targets), lam))
