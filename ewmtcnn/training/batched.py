"""Many heads trained at once on cached features: every setting of a grid, for every training set.

- A *task* is one training set (an outer training fold, or its inner-training part) with its own
  shuffling seed, initialisation seed and initial prior.
- Each task trains G heads that see the same batches in the same order, each with its own
  learning rate and weight decay.
- Every head follows `loop.train_epochs` on cached features, up to floating-point rounding: the same
  initialisation, batch order, loss, and SGD with momentum and weight decay as `torch.optim.SGD`.
- The `seed` head's dropout masks come from the task's own generator, not torch's global one.
- The gradient and SGD are written out: autograd's bookkeeping costs more than the arithmetic on
  these small tensors, and `torch.optim.SGD` has one learning rate per tensor, not per head (the
  tests check both against PyTorch).
- The tasks step together: elementwise work on stacked tensors, matrix products one task at a
  time, so a task computes the same numbers, to the bit, alone or beside others (tested).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from threadpoolctl import threadpool_limits
from torch import nn

from ewmtcnn.model.network import SEED_DROPOUT


@dataclass(frozen=True)
class Task:
    """One training set and the seeds and prior its heads start from."""

    train: np.ndarray  # indices into the features of the images it trains on
    seed: int  # shuffles the batches (and draws the seed head's dropout masks)
    init_seed: int  # torch.manual_seed before the fc layer is drawn, as loop.network does
    prior: np.ndarray | None  # the prior layer's initial W (outputs x outputs), or None: no prior layer


@dataclass(frozen=True)
class Optimisation:
    """What every head shares: SGD's momentum, the batch size and the loss's lambda."""

    momentum: float
    batch_size: int
    lam: float


def with_ones(features: torch.Tensor) -> torch.Tensor:
    """Features (N, d) with a column of ones appended: the fc's bias is one more weight row."""
    return torch.cat([features, torch.ones(len(features), 1)], dim=1)


class Bank:
    """The parameters of T tasks x G heads.

    - The fc layers: one (T, d + 1, G*c) matrix; head g owns the columns g*c .. g*c+c-1, and the
      last row is the bias, for features `with_ones`.
    - The prior (T, G, c, c), when there is one.
    """

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

    def parameters(self, tasks: slice) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Views of tasks `tasks`' fc (k, d + 1, G*c) and prior (k, G, c, c; None without one)."""
        return self.weight[tasks], None if self.prior is None else self.prior[tasks]

    def forward(
        self, x: torch.Tensor, weight: torch.Tensor, prior: torch.Tensor | None, masks: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The fc's output z, the prior's input a and the logits z' = W a of k tasks' heads, each (k, G, n, c).

        - `weight` and `prior` as `parameters` gives them; features x (k, n, d + 1), `with_ones`.
        - a is z gated by ReLU (and, in training, the dropout `masks`) for the seed head; else z.
        """
        k, n = x.shape[:2]
        z = _each_task(x, weight).view(k, n, self.heads, self.outputs).transpose(1, 2).contiguous()
        a = z
        if self.gated:
            a = torch.relu(z) if masks is None else torch.relu(z) * masks
        return z, a, a if prior is None else _each_task(a, prior.transpose(-1, -2))

    @torch.no_grad()
    def predict(self, features: torch.Tensor, task: int, rows: np.ndarray) -> np.ndarray:
        """Task `task`'s heads' predicted distributions (G, n, c), float64, of the images `rows`, without dropout."""
        *_, logits = self.forward(features[torch.from_numpy(rows)][None], *self.parameters(slice(task, task + 1)))
        return torch.softmax(logits[0].double(), dim=-1).numpy()

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
#: head (T, G): loss, accuracy and KL over the batches as the heads saw them, as loop.train_epochs
#: (when asked for; else empty). It returns which tasks train on (a boolean per task), or None: all.
EpochHook = Callable[[int, Bank, dict[str, np.ndarray]], Sequence[bool] | None]


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """PyTorch and NumPy's BLAS on one thread: these products are too small to gain from a second."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            yield
    finally:
        torch.set_num_threads(threads)


@one_thread()
def optimise(
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
    """Train every head of `bank` by SGD for up to `epochs` epochs; a task stops when `after_epoch` says so.

    - `features` are `with_ones`; `lr` and `weight_decay` are (T, G) arrays; `figures`: measure the
      training figures.
    - Each step serves every task still training whose batch has the same size (all of them, but at
      the end of an epoch of training sets of different sizes): the Python work of a step is shared
      by those tasks; only their matrix products go task by task.
    """
    lam = optimisation.lam
    # The loss's gradient with respect to the logits is q * scale - mix (see `_figures`): per image,
    # scale = (1 - lambda) + lambda * sum(p) and mix = (1 - lambda) * onehot(y) + lambda * p.
    onehot = torch.nn.functional.one_hot(classes, targets.shape[1]).float()
    mix = (1 - lam) * onehot + lam * targets
    scale = (1 - lam) + lam * targets.sum(dim=1)
    shuffles = [torch.Generator().manual_seed(task.seed) for task in tasks]
    dropouts = [torch.Generator().manual_seed(task.seed) for task in tasks]
    every = _Parameters.of(bank, lr, weight_decay)
    batch = optimisation.batch_size
    training = np.ones(len(tasks), dtype=bool)
    for epoch in range(1, epochs + 1):
        totals = {name: torch.zeros((len(tasks), bank.heads)) for name in ("loss", "correct", "kl")}
        active = np.flatnonzero(training)
        orders = [tasks[t].train[torch.randperm(len(tasks[t].train), generator=shuffles[t]).numpy()] for t in active]
        live = every.take(active)  # the training tasks' parameters, gathered once an epoch
        for start in range(0, max(len(order) for order in orders), batch):
            rows = [order[start : start + batch] for order in orders]
            for size in sorted({len(r) for r in rows} - {0}, reverse=True):  # a smaller set may have run out
                members = np.array([i for i, r in enumerate(rows) if len(r) == size])
                group = live.take(members)
                index = torch.from_numpy(np.stack([rows[i] for i in members]))  # (k, n)
                masks = _dropout(bank, size, [dropouts[t] for t in active[members]]) if bank.gated else None
                x = features[index]
                weight, prior = group.forward_inputs()
                z, a, logits = bank.forward(x, weight, prior, masks)
                d_logits = torch.softmax(logits, dim=-1) * scale[index][:, None, :, None] - mix[index][:, None]
                if figures:
                    for name, values in _figures(logits, targets[index], classes[index], lam).items():
                        totals[name][active[members]] += values.sum(dim=2)
                group.step(_gradients(bank, x, z, a, prior, d_logits / size, masks), optimisation.momentum)
                live.put(members, group)
        every.put(active, live)
        seen = np.array([[len(task.train)] for task in tasks])
        measured = {name: values.numpy() / seen for name, values in totals.items()} if figures else {}
        keep = after_epoch(epoch, bank, measured)
        if keep is not None:
            training &= np.asarray(keep, dtype=bool)
        if not training.any():
            break


def _figures(logits: torch.Tensor, p: torch.Tensor, y: torch.Tensor, lam: float) -> dict[str, torch.Tensor]:
    """The loss (1 - lambda) CE + lambda KL, whether the argmax is the class, and the KL, each (k, G, n).

    - For logits (k, G, n, c), targets p (k, n, c) and classes y (k, n).
    - The loss's gradient with respect to the logits is q - onehot(y) for the cross-entropy and
      q * sum(p) - p for KL(p || q): `optimise` computes it from q directly.
    """
    log_q = torch.log_softmax(logits, dim=-1)
    p = p[:, None]  # (k, 1, n, c)
    kl = (torch.xlogy(p, p) - p * log_q).sum(dim=-1)  # 0 ln 0 = 0, as F.kl_div
    y = y[:, None].expand(log_q.shape[:-1])
    ce = -log_q.gather(-1, y[..., None])[..., 0]
    correct = (log_q.argmax(dim=-1) == y).float()
    return {"loss": (1 - lam) * ce + lam * kl, "correct": correct, "kl": kl}


def _gradients(
    bank: Bank,
    x: torch.Tensor,
    z: torch.Tensor,
    a: torch.Tensor,
    prior: torch.Tensor | None,
    d_logits: torch.Tensor,
    masks: torch.Tensor | None,
) -> list[torch.Tensor]:
    """The gradients of k tasks' heads' batch-mean losses, in `_Parameters.trained`'s order.

    - Back through z' = W a, the seed head's gate and the fc layer z = x M + b, from `d_logits`
      (k, G, n, c), each image's share already divided by the batch size.
    """
    k, heads, n, c = d_logits.shape
    d_a = d_logits if prior is None else _each_task(d_logits, prior)
    d_z = d_a
    if bank.gated:
        d_z = d_a * (z > 0) if masks is None else d_a * (z > 0) * masks
    # the fc (k, d + 1, G*c), its bias row included
    grads = [_each_task(x.transpose(1, 2), d_z.transpose(1, 2).reshape(k, n, heads * c))]
    if bank.train_prior:
        grads.append(_each_task(d_logits.transpose(-1, -2), a))  # (k, G, c, c)
    return grads


def _each_task(left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """left @ right over the leading task axis: one product per task, each into memory of its own.

    - A batched product's kernel may depend on how many matrices it is given (oneDNN's, for the
      6 x 6 priors), and a product's bits on where its output lies (slices of one tensor).
    - A task must compute the same numbers alone as beside others.
    """
    product = torch.mm if left.dim() == 3 else torch.bmm
    return torch.stack([product(mine, theirs) for mine, theirs in zip(left, right, strict=True)])


def _dropout(bank: Bank, images: int, generators: Sequence[torch.Generator]) -> torch.Tensor:
    """Inverted dropout masks (k, G, n, c) for the seed head, each task's drawn from its generator as (n, G, c)."""
    draws = torch.stack([torch.rand((images, bank.heads, bank.outputs), generator=g) for g in generators])
    return (draws.transpose(1, 2) >= SEED_DROPOUT).float() / (1 - SEED_DROPOUT)


class _Parameters:
    """Some tasks' trained parameters, SGD momentum buffers, learning rates and weight decays.

    - Each with a leading task axis; the trained parameters are the fc, and the prior unless frozen.
    - The frozen prior is kept too: the forward pass needs it.
    - `take` gathers some tasks' rows, `put` writes them back.
    - The update is torch.optim.SGD's (weight decay added to the gradient, then momentum, no
      dampening), in place, with each head's own learning rate and weight decay.
    """

    def __init__(
        self,
        trained: list[torch.Tensor],
        buffers: list[torch.Tensor],
        lr: list[torch.Tensor],
        decay: list[torch.Tensor],
        frozen: torch.Tensor | None,
    ) -> None:
        self.trained, self.buffers, self.lr, self.decay, self.frozen = trained, buffers, lr, decay, frozen

    @classmethod
    def of(cls, bank: Bank, lr: np.ndarray, decay: np.ndarray) -> _Parameters:
        """Every task's parameters: the bank's own tensors (updated in place), zero momentum."""
        trained = [bank.weight, *([bank.prior] if bank.train_prior else [])]
        # Per head, spread to each tensor's layout: the fc's columns come in G blocks of c.
        lr_t, decay_t = (torch.as_tensor(v, dtype=torch.float32) for v in (lr, decay))
        shapes = [lambda v: v.repeat_interleave(bank.outputs, dim=1)[:, None, :], lambda v: v[:, :, None, None]]
        return cls(
            trained,
            [torch.zeros_like(t) for t in trained],
            [shape(lr_t) for shape in shapes[: len(trained)]],
            [shape(decay_t) for shape in shapes[: len(trained)]],
            None if bank.train_prior else bank.prior,
        )

    def take(self, rows: np.ndarray) -> _Parameters:
        """The tasks `rows` (positions along the task axis): this same object when all, in order, else copies."""
        if np.array_equal(rows, np.arange(len(self.trained[0]))):
            return self
        index = torch.from_numpy(rows)
        picked = [[t[index] for t in tensors] for tensors in (self.trained, self.buffers, self.lr, self.decay)]
        return _Parameters(*picked, None if self.frozen is None else self.frozen[index])

    def put(self, rows: np.ndarray, part: _Parameters) -> None:
        """Write back what `take(rows)` gave and training changed: the parameters and buffers."""
        if part is not self:
            index = torch.from_numpy(rows)
            for mine, theirs in ((self.trained, part.trained), (self.buffers, part.buffers)):
                for tensor, rows_of in zip(mine, theirs, strict=True):
                    tensor[index] = rows_of

    def forward_inputs(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The fc and the prior (trained or frozen; None without one), as `Bank.forward` takes them."""
        return self.trained[0], self.trained[1] if len(self.trained) > 1 else self.frozen

    def step(self, grads: list[torch.Tensor], momentum: float) -> None:
        """buffer = momentum * buffer + (g + wd * p) (from a zero buffer: g + wd * p); p -= lr * buffer."""
        for param, grad, buffer, lr, decay in zip(self.trained, grads, self.buffers, self.lr, self.decay, strict=True):
            buffer.mul_(momentum).add_(grad.addcmul_(decay, param))
            param.addcmul_(lr, buffer, value=-1)
