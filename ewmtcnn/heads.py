"""Many heads trained at once on cached features: every setting of a grid as one batched
computation (one product for all of a training set's heads), for every training set.

A *task* is one training set (an outer training fold, or the inner-training part of one) with
its own shuffling seed, initialisation seed and initial prior; each task trains G heads that see
the same batches in the same order, each with its own learning rate and weight decay. Every
head follows `training.fit` on cached features, up to floating-point rounding: the same
initialisation (`nn.Linear` after `torch.manual_seed(init_seed)`), the same batch order
(`torch.randperm` from a generator seeded with the task's seed), the same loss, and SGD with
momentum and weight decay as `torch.optim.SGD` computes it. Only the `seed` head's dropout
masks come from the task's own generator instead of torch's global one.

The gradient is written out rather than left to autograd, whose bookkeeping cost more than the
arithmetic on these small tensors, and so is SGD, since `torch.optim.SGD` has one learning rate
per parameter tensor while here each head has its own (both are checked against PyTorch by the
tests). Tasks take their steps one after the other on their own slices of the parameters, so a
task computes the same numbers, to the bit, alone or beside others (a fold run alone equals the
same fold within the all-folds run).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ewmtcnn.models import SEED_DROPOUT


@dataclass(frozen=True)
class Task:
    """One training set and the seeds and prior its heads start from."""

    train: np.ndarray  # indices into the features of the images it trains on
    seed: int  # shuffles the batches (and draws the seed head's dropout masks)
    init_seed: int  # torch.manual_seed before the fc layer is drawn, as training.network does
    prior: np.ndarray | None  # the prior layer's initial W (outputs x outputs), or None: no prior layer


@dataclass(frozen=True)
class Optimisation:
    """What every head shares: SGD's momentum, the batch size and the loss's lambda."""

    momentum: float
    batch_size: int
    lam: float


def with_ones(features: torch.Tensor) -> torch.Tensor:
    """Features (N, d) with a column of ones appended: the fc layer's bias becomes one more weight
    row, so a head's fc is one product and one update."""
    return torch.cat([features, torch.ones(len(features), 1)], dim=1)


class Bank:
    """The parameters of T tasks x G heads: the fc layers as one (T, d + 1, G*c) matrix (head g owns
    the columns g*c .. g*c+c-1; the last row is the bias, for features `with_ones`), and the
    prior (T, G, c, c) when there is one."""

    def __init__(self, width: int, outputs: int, tasks: Sequence[Task], heads: int, head: str, freeze: bool) -> None:
        weights = []
        for task in tasks:
            torch.manual_seed(task.init_seed)
            fc = nn.Linear(width, outputs)
            weights.append(torch.cat([fc.weight.detach().T, fc.bias.detach()[None]]).repeat(1, heads))
        self.weight = torch.stack(weights).contiguous()
        self.heads, self.outputs = heads, outputs
        self.prior: torch.Tensor | None = None
        if tasks[0].prior is not None:
            priors = torch.stack([torch.from_numpy(np.asarray(t.prior, dtype=np.float32)) for t in tasks])
            self.prior = priors[:, None].repeat(1, heads, 1, 1).contiguous()
        self.train_prior = self.prior is not None and not freeze
        self.gated = head == "seed" and self.prior is not None  # without a prior both heads are the fc alone

    def trainable(self, task: int) -> list[torch.Tensor]:
        """Views of task `task`'s trained parameters, each with a leading axis of 1."""
        own = slice(task, task + 1)
        return [self.weight[own], *([self.prior[own]] if self.train_prior else [])]

    def forward(
        self, x: torch.Tensor, task: int, masks: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """For task `task`'s heads and features `x` (n, d + 1, `with_ones`): the fc's output z, the
        prior's input a (z gated by ReLU and, in training, the dropout `masks` for the seed head;
        else z) and the logits z' = W a, each (n, G, c)."""
        z = (x @ self.weight[task]).view(len(x), self.heads, self.outputs)
        a = z
        if self.gated:
            a = torch.relu(z) if masks is None else torch.relu(z) * masks
        logits = (
            a if self.prior is None else torch.bmm(a.transpose(0, 1), self.prior[task].transpose(1, 2)).transpose(0, 1)
        )
        return z, a, logits

    @torch.no_grad()
    def predict(self, features: torch.Tensor, task: int, rows: np.ndarray) -> np.ndarray:
        """Task `task`'s heads' predicted distributions (G, n, c), float64, of the images `rows` of
        `features` (`with_ones`); evaluation: no dropout."""
        *_, logits = self.forward(features[torch.from_numpy(rows)], task)
        return torch.softmax(logits.double(), dim=-1).transpose(0, 1).numpy()

    def state(self, task: int, head: int) -> dict[str, torch.Tensor]:
        """One head's weights as EmotionNet's state dict (fc, and the prior when there is one)."""
        columns = slice(head * self.outputs, (head + 1) * self.outputs)
        state = {
            "fc.weight": self.weight[task, :-1, columns].T.contiguous(),
            "fc.bias": self.weight[task, -1, columns].clone(),
        }
        if self.prior is not None:
            state["prior.weight"] = self.prior[task, head].clone()
        return state


#: Called after every epoch with the epoch (from 1), the bank, and the epoch's training figures per
#: head (T, G): loss, accuracy and KL over the batches as the heads saw them, as training.fit (when
#: asked for; else empty). It returns which tasks train on (a boolean per task), or None: all.
EpochHook = Callable[[int, Bank, dict[str, np.ndarray]], Sequence[bool] | None]


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """PyTorch on one thread: these products are too small to gain from a second (measured: the
    same time), which is then free for another experiment of a queue."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@_one_thread()
def train(
    bank: Bank,
    features: torch.Tensor,
    targets: torch.Tensor,
    classes: torch.Tensor,
    tasks: Sequence[Task],
    lr: np.ndarray,
    weight_decay: np.ndarray,
    epochs: int,
    optimisation: Optimisation,
    after_epoch: EpochHook,
    figures: bool = True,
) -> None:
    """Train every head of `bank` for up to `epochs` epochs (a task stops when `after_epoch` says so);
    `features` are `with_ones`; `lr` and `weight_decay` are (T, G) arrays; `figures`: measure the
    training figures."""
    lam = optimisation.lam
    # The loss's gradient with respect to the logits is q * scale - mix (see `_gradient`): per image,
    # scale = (1 - lambda) + lambda * sum(p) and mix = (1 - lambda) * onehot(y) + lambda * p.
    onehot = torch.nn.functional.one_hot(classes, targets.shape[1]).float()
    mix = (1 - lam) * onehot + lam * targets
    scale = (1 - lam) + lam * targets.sum(dim=1)
    shuffles = [torch.Generator().manual_seed(task.seed) for task in tasks]
    dropouts = [torch.Generator().manual_seed(task.seed) for task in tasks]
    sgd = [
        _SGD(bank.trainable(t), lr[t], weight_decay[t], bank.outputs, optimisation.momentum) for t in range(len(tasks))
    ]
    batch = optimisation.batch_size
    training = [True] * len(tasks)
    for epoch in range(1, epochs + 1):
        totals = {name: torch.zeros((len(tasks), bank.heads)) for name in ("loss", "correct", "kl")}
        orders = {
            t: task.train[torch.randperm(len(task.train), generator=shuffles[t]).numpy()]
            for t, task in enumerate(tasks)
            if training[t]
        }
        for start in range(0, max(len(order) for order in orders.values()), batch):
            for t, order in orders.items():
                index = torch.from_numpy(order[start : start + batch])
                if len(index) == 0:
                    continue  # a smaller training set has run out of batches
                masks = _dropout(bank, len(index), dropouts[t]) if bank.gated else None
                x = features[index]
                z, a, logits = bank.forward(x, t, masks)
                d_logits = torch.softmax(logits, dim=-1) * scale[index, None, None] - mix[index, None]
                measured = _figures(logits, targets[index], classes[index], lam) if figures else {}
                sgd[t].step(_gradients(bank, t, x, z, a, d_logits / len(index), masks))
                for name, values in measured.items():
                    totals[name][t] += values.sum(dim=0)
        seen = np.array([[len(task.train)] for task in tasks])
        measured = {name: values.numpy() / seen for name, values in totals.items()} if figures else {}
        keep = after_epoch(epoch, bank, measured)
        if keep is not None:
            training = [before and now for before, now in zip(training, keep, strict=True)]
        if not any(training):
            break


def _figures(logits: torch.Tensor, p: torch.Tensor, y: torch.Tensor, lam: float) -> dict[str, torch.Tensor]:
    """Per image and head (n, G): the loss (1 - lambda) CE + lambda KL, whether the argmax is the
    class, and the KL. (Its gradient with respect to the logits is q - onehot(y) for the
    cross-entropy and q * sum(p) - p for KL(p || q): `train` computes it from q directly.)"""
    log_q = torch.log_softmax(logits, dim=-1)
    p = p[:, None]  # (n, 1, c)
    kl = (torch.xlogy(p, p) - p * log_q).sum(dim=-1)  # 0 ln 0 = 0, as F.kl_div
    y = y[:, None].expand(log_q.shape[:2])
    ce = -log_q.gather(-1, y[..., None])[..., 0]
    correct = (log_q.argmax(dim=-1) == y).float()
    return {"loss": (1 - lam) * ce + lam * kl, "correct": correct, "kl": kl}


def _gradients(
    bank: Bank,
    task: int,
    x: torch.Tensor,
    z: torch.Tensor,
    a: torch.Tensor,
    d_logits: torch.Tensor,
    masks: torch.Tensor | None,
) -> list[torch.Tensor]:
    """The gradients of task `task`'s heads' batch-mean losses, in `bank.trainable(task)`'s order,
    back through z' = W a, the seed head's gate and the fc layer z = x M + b; `d_logits` is the
    gradient of the batch mean (each image's share already divided by the batch size)."""
    by_head = d_logits.transpose(0, 1)  # (G, n, c)
    d_a = d_logits if bank.prior is None else torch.bmm(by_head, bank.prior[task]).transpose(0, 1)
    d_z = d_a
    if bank.gated:
        d_z = d_a * (z > 0) if masks is None else d_a * (z > 0) * masks
    grads = [(x.T @ d_z.reshape(len(x), -1))[None]]  # the fc (1, d + 1, G*c), its bias row included
    if bank.train_prior:
        grads.append(torch.bmm(by_head.transpose(1, 2), a.transpose(0, 1))[None])  # (1, G, c, c)
    return grads


def _dropout(bank: Bank, images: int, generator: torch.Generator) -> torch.Tensor:
    """Inverted dropout masks (n, G, c) for the seed head, from the task's own generator."""
    draws = torch.rand((images, bank.heads, bank.outputs), generator=generator)
    return (draws >= SEED_DROPOUT).float() / (1 - SEED_DROPOUT)


class _SGD:
    """torch.optim.SGD's update (weight decay added to the gradient, then momentum, no dampening),
    in place, for one task's heads, each with its own learning rate and weight decay."""

    def __init__(
        self, params: list[torch.Tensor], lr: np.ndarray, decay: np.ndarray, outputs: int, momentum: float
    ) -> None:
        self.params = params
        self.momentum = momentum
        # Per head, spread to each tensor's layout: the fc's columns come in G blocks of c.
        lr_t, decay_t = (torch.as_tensor(v, dtype=torch.float32) for v in (lr, decay))
        shapes = [lambda v: v.repeat_interleave(outputs)[None, None, :], lambda v: v[None, :, None, None]]
        self.lr = [shape(lr_t) for shape in shapes[: len(params)]]
        self.decay = [shape(decay_t) for shape in shapes[: len(params)]]
        self.buffers: list[torch.Tensor | None] = [None] * len(params)

    def step(self, grads: list[torch.Tensor]) -> None:
        """buffer = momentum * buffer + (g + wd * p) (the first step: g + wd * p); p -= lr * buffer."""
        for i, (param, grad) in enumerate(zip(self.params, grads, strict=True)):
            update = grad.addcmul_(self.decay[i], param)
            if self.buffers[i] is None:
                self.buffers[i] = update
            else:
                self.buffers[i].mul_(self.momentum).add_(update)
            param.addcmul_(self.lr[i], self.buffers[i], value=-1)
