"""The batched head trainer: each of its heads trains as `loop.train_epochs` trains a single head, on the
same seed, to float tolerance; a task's numbers do not depend on the other tasks in the bank."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ewmtcnn.config.sections import Train
from ewmtcnn.model import wheel
from ewmtcnn.model.network import EmotionNet
from ewmtcnn.training import batched
from ewmtcnn.training.batched import Bank, Optimisation, Task
from ewmtcnn.training.inputs import CachedFeatures
from ewmtcnn.training.loop import train_epochs
from support import separable

N, D, C = 90, 12, 6
OPT = Optimisation(momentum=0.9, batch_size=16, lam=0.7)


@pytest.fixture(scope="module")
def problem() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return separable(N, D, C, shift=2)


def single(problem, train_idx, prior, freeze, lr, wd, epochs, seed=3, init_seed=7, head="direct") -> EmotionNet:
    """What the per-fold loop does: EmotionNet after torch.manual_seed(init_seed), then loop.train_epochs."""
    features, targets, classes = problem
    torch.manual_seed(init_seed)
    model = EmotionNet(D, C, head, prior, freeze, None)
    settings = Train(
        finetune=False,
        recipe="fixed",
        epochs=epochs,
        batch_size=OPT.batch_size,
        lr_backbone=0,
        lr_head=lr,
        momentum=OPT.momentum,
        weight_decay=wd,
        lam=OPT.lam,
        seed=seed,
        pca=0,
    )
    for _ in train_epochs(model, CachedFeatures(features), targets, classes, train_idx, settings):
        pass
    return model


def train_heads(problem, tasks, lr, wd, epochs, freeze, head="direct", after_epoch=lambda *_: None) -> Bank:
    features, targets, classes = problem
    bank = Bank(D, C, tasks, len(lr[0]), head, freeze)
    batched.optimise(
        bank,
        batched.with_ones(torch.from_numpy(features)),
        torch.from_numpy(targets.astype(np.float32)),
        torch.from_numpy(classes),
        tasks,
        np.array(lr),
        np.array(wd),
        epochs,
        OPT,
        after_epoch,
    )
    return bank


@pytest.mark.parametrize(("init", "freeze"), [("original", True), ("original", False), ("none", True), ("rand", False)])
def test_every_head_matches_a_single_head_trained_alone(problem, init: str, freeze: bool) -> None:
    prior = wheel.prior_matrix(init, sigma=0.6, probabilities=None, neutral=False, seed=0)
    # Two tasks of different sizes (the smaller runs out of batches first), two settings each.
    tasks = [Task(np.arange(0, 70), 3, 7, prior), Task(np.arange(20, 90, 2), 5, 11, prior)]
    settings = [(0.05, 0.0), (0.01, 0.01)]
    lr = [[s[0] for s in settings]] * 2
    wd = [[s[1] for s in settings]] * 2
    bank = train_heads(problem, tasks, lr, wd, epochs=4, freeze=freeze)
    for t, task in enumerate(tasks):
        for g, (rate, decay) in enumerate(settings):
            reference = single(problem, task.train, prior, freeze, rate, decay, 4, task.seed, task.init_seed)
            expected = reference.state_dict()
            got = bank.state(t, g)
            assert set(got) == set(expected)
            for name, value in expected.items():
                np.testing.assert_allclose(got[name].numpy(), value.numpy(), rtol=1e-4, atol=1e-5, err_msg=name)
    # and the heads did learn something different from each other and from their start
    assert not torch.allclose(bank.state(0, 0)["fc.weight"], bank.state(0, 1)["fc.weight"])


def test_the_written_out_gradients_equal_autograds(problem) -> None:
    """The seed head's dropout cannot match the single-head loop's draws, so the written-out
    gradient is checked against autograd instead, on the same batch and masks: back through the
    prior, the gate and the fc layer (for any upstream gradient), and the loss's gradient with
    respect to the logits."""
    features, targets, classes = problem
    prior = wheel.wheel_prior()
    tasks = [Task(np.arange(N), 0, 1, prior), Task(np.arange(10, 50), 2, 3, prior)]
    bank = Bank(D, C, tasks, 3, "seed", freeze=False)
    x = batched.with_ones(torch.from_numpy(features[10:26]))[None]
    masks = batched._dropout(bank, 16, [torch.Generator().manual_seed(0)])
    weight, prior = bank.parameters(slice(1, 2))
    z, a, logits = bank.forward(x, weight, prior, masks)
    upstream = torch.randn(logits.shape, generator=torch.Generator().manual_seed(1))
    written_out = batched._gradients(bank, x, z, a, prior, upstream, masks)

    weight, w_prior = (t.clone().requires_grad_() for t in (weight, prior))
    total = 0
    for g in range(3):  # each head as EmotionNet computes it: fc, ReLU, dropout, prior
        fc = x[0] @ weight[0, :, g * C : (g + 1) * C]
        total = total + (((torch.relu(fc) * masks[0, g]) @ w_prior[0, g].T) * upstream[0, g]).sum()
    total.backward()
    for mine, param in zip(written_out, (weight, w_prior), strict=True):
        np.testing.assert_allclose(mine.numpy(), param.grad.numpy(), rtol=1e-4, atol=1e-6)

    # d loss / d logits = q * ((1 - lambda) + lambda * sum(p)) - ((1 - lambda) * onehot(y) + lambda * p)
    logits = torch.randn((1, 3, 16, C), generator=torch.Generator().manual_seed(2), requires_grad=True)
    p, y = torch.from_numpy(targets[:16].astype(np.float32)), torch.from_numpy(classes[:16])
    loss = batched._figures(logits, p[None], y[None], OPT.lam)["loss"].sum()
    loss.backward()
    onehot = torch.nn.functional.one_hot(y, C).float()
    q = torch.softmax(logits.detach(), dim=-1)
    mix, scale = (1 - OPT.lam) * onehot + OPT.lam * p, (1 - OPT.lam) + OPT.lam * p.sum(dim=1)
    np.testing.assert_allclose((q * scale[:, None] - mix).numpy(), logits.grad.numpy(), atol=1e-6)


def test_a_task_trains_the_same_alone_or_with_others(problem) -> None:
    prior = wheel.wheel_prior()
    tasks = [
        Task(np.arange(0, 60), 3, 7, prior),
        Task(np.arange(30, 90), 4, 8, prior),
        Task(np.arange(5, 85), 5, 9, prior),
    ]
    together = train_heads(problem, tasks, [[0.03, 0.01]] * 3, [[0.0, 0.001]] * 3, epochs=3, freeze=False, head="seed")
    alone = train_heads(problem, tasks[1:2], [[0.03, 0.01]], [[0.0, 0.001]], epochs=3, freeze=False, head="seed")
    for g in range(2):
        for name, value in alone.state(0, g).items():
            assert torch.equal(together.state(1, g)[name], value), name


def test_the_epoch_hook_sees_the_training_figures(problem) -> None:
    seen: list[tuple[int, dict]] = []
    tasks = [Task(np.arange(N), 0, 0, None)]

    def hook(epoch: int, _: Bank, figures: dict) -> None:
        seen.append((epoch, figures))

    train_heads(problem, tasks, [[0.1]], [[0.0]], 5, True, after_epoch=hook)
    assert [e for e, _ in seen] == [1, 2, 3, 4, 5]
    losses = [f["loss"][0, 0] for _, f in seen]
    assert losses[-1] < losses[0] and all(0 <= f["correct"][0, 0] <= 1 for _, f in seen)


@pytest.mark.parametrize("head", ["direct", "seed"])
def test_a_task_trains_the_same_alone_or_with_others_at_the_pipelines_sizes(head: str) -> None:
    """Batches of 32 and seven outputs, where a batched product over all tasks (oneDNN's, for the
    7 x 7 priors) gave other bits than the same product of one task alone."""
    features, targets, classes = separable(300, 40, 7, shift=2)
    prior = wheel.prior_matrix("original", sigma=0.6, probabilities=None, neutral=True, seed=0)
    sizes = [(0, 240), (30, 300), (10, 250), (50, 290)]  # training sets of different sizes
    tasks = [Task(np.arange(a, b), 3 + t, 7 + t, prior) for t, (a, b) in enumerate(sizes)]
    lr, wd = [[0.03, 0.01, 0.003]], [[0.0, 0.001, 0.01]]
    opt = Optimisation(momentum=0.9, batch_size=32, lam=0.7)
    inputs = (
        batched.with_ones(torch.from_numpy(features.astype(np.float32))),
        torch.from_numpy(targets.astype(np.float32)),
        torch.from_numpy(classes),
    )

    def trained(chosen: list[Task]) -> Bank:
        bank = Bank(40, 7, chosen, 3, head, freeze=False)
        batched.optimise(
            bank, *inputs, chosen, np.array(lr * len(chosen)), np.array(wd * len(chosen)), 3, opt, lambda *_: None
        )
        return bank

    together = trained(tasks)
    for t, task in enumerate(tasks):
        alone = trained([task])
        for g in range(3):
            for name, value in alone.state(0, g).items():
                assert torch.equal(together.state(t, g)[name], value), (t, g, name)
