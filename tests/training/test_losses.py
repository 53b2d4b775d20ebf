"""Losses: the torch sRGB curve matches the engine's, each term behaves as its purpose says."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gsrender.engine import encoding
from gsrender.models.networks import build_model
from gsrender.training import config as C
from gsrender.training import losses as L


def test_srgb_eotf_matches_engine() -> None:
    v = np.concatenate(
        [np.linspace(-0.2, 1.2, 4001, dtype=np.float32), np.float32([0.04045, 0.0404, 0.0405])]
    )
    want = encoding.srgb_eotf(v)
    got = L.srgb_eotf(torch.from_numpy(v)).numpy()
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-7)


def test_srgb_oetf_matches_engine_and_inverts() -> None:
    x = np.linspace(-0.1, 1.1, 2001, dtype=np.float32)
    np.testing.assert_allclose(
        L.srgb_oetf(torch.from_numpy(x)).numpy(), encoding.srgb_oetf(x), rtol=0, atol=2e-7
    )
    v = torch.linspace(0, 1, 101)
    torch.testing.assert_close(L.srgb_oetf(L.srgb_eotf(v)), v, atol=2e-6, rtol=0)


def test_srgb_gradients_are_finite() -> None:
    v = torch.tensor([0.0, 0.02, 0.5, 1.0, 1.5], requires_grad=True)
    (L.srgb_eotf(v).sum() + L.srgb_oetf(v).sum()).backward()
    assert torch.isfinite(v.grad).all()


def _alpha_pair(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    gt = torch.zeros(2, 1, 32, 32)
    gt[:, :, 8:24, 8:24] = 1.0
    gt[:, :, 8:24, 6:8] = 0.5
    pred = torch.clamp(gt + 0.1 * torch.randn(gt.shape, generator=g), 0, 1)
    return pred, gt


@pytest.mark.parametrize("fn", [L.alpha_l1, L.laplacian_l1, L.gradient_l1])
def test_alpha_losses_zero_on_match_positive_otherwise(fn) -> None:
    pred, gt = _alpha_pair()
    assert float(fn(gt, gt)) == pytest.approx(0.0, abs=1e-7)
    assert float(fn(pred, gt)) > 1e-3


def test_laplacian_pyramid_reconstructs_and_handles_tiny_sizes() -> None:
    x = torch.rand(1, 1, 24, 40)
    bands = L.laplacian_pyramid(x, 5)
    assert len(bands) == 5
    assert bands[-1].shape[-2:] == (2, 3)  # 24 -> 12 -> 6 -> 3 -> 2, 40 -> 20 -> 10 -> 5 -> 3
    cur = bands[-1]
    for band in reversed(bands[:-1]):
        up = torch.nn.functional.interpolate(cur, size=band.shape[-2:], mode="bilinear", align_corners=False)
        cur = band + L._gauss_blur(up)
    torch.testing.assert_close(cur, x, atol=1e-5, rtol=0)
    for tiny in [(1, 1, 3, 3), (1, 1, 1, 5)]:
        assert torch.isfinite(L.laplacian_l1(torch.rand(tiny), torch.rand(tiny)))


def test_gradient_loss_ignores_constant_offset_but_not_blur() -> None:
    _, gt = _alpha_pair()
    assert float(L.gradient_l1(gt * 0 + 0.3, gt * 0)) == pytest.approx(0.0, abs=1e-7)
    blurred = torch.nn.functional.avg_pool2d(gt, 5, stride=1, padding=2, count_include_pad=False)
    assert float(L.gradient_l1(blurred, gt)) > 1e-3


def test_gradient_magnitude_loss_is_the_evaluations_grad_error_per_pixel() -> None:
    from gsrender.training.metrics import gradient_error

    _, gt = _alpha_pair()
    blurred = torch.nn.functional.avg_pool2d(gt, 5, stride=1, padding=2, count_include_pad=False)
    pixels = gt[0, 0].numel()
    for pred in (blurred, gt * 0.5, torch.zeros_like(gt)):
        expected = gradient_error(pred[0, 0].numpy(), gt[0, 0].numpy()) * 1000.0 / pixels
        assert float(L.gradient_magnitude_l2(pred, gt)) == pytest.approx(expected, rel=1e-3, abs=1e-6)
    assert float(L.gradient_magnitude_l2(gt, gt)) == pytest.approx(0.0, abs=1e-7)
    flat = torch.full_like(gt, 0.4, requires_grad=True)  # no gradient anywhere: the sqrt stays finite
    L.gradient_magnitude_l2(flat, gt).backward()
    assert torch.isfinite(flat.grad).all() and float(flat.grad.abs().sum()) > 0


def _gskey_batch(n: int = 2, size: int = 16) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    alpha = torch.rand(n, 1, size, size, generator=g)
    fg = torch.rand(n, 3, size, size, generator=g)
    bg = torch.tensor([0.05, 0.45, 0.08]).view(1, 3, 1, 1).expand(n, 3, size, size).clone()
    plate_lin = alpha * fg + (1 - alpha) * bg
    return {"alpha": alpha, "fg": fg, "bg": bg, "plate_lin": plate_lin, "has_fg": torch.ones(n)}


def test_composition_loss_is_zero_for_exact_alpha_and_screen() -> None:
    b = _gskey_batch()
    bg_enc = L.srgb_oetf(b["bg"])
    loss = L.composition_l1(b["alpha"], bg_enc, b["plate_lin"], b["alpha"], b["bg"], b["has_fg"])
    assert float(loss) < 1e-6
    wrong = L.composition_l1(b["alpha"] * 0.5, bg_enc, b["plate_lin"], b["alpha"], b["bg"], b["has_fg"])
    assert float(wrong) > 1e-3


def test_fg_terms_are_masked_by_has_fg() -> None:
    b = _gskey_batch()
    bg_enc = torch.zeros_like(b["bg"])  # badly wrong screen colour
    none = torch.zeros(2)
    assert float(L.composition_l1(b["alpha"], bg_enc, b["plate_lin"], b["alpha"], b["bg"], none)) == 0.0
    assert float(L.bg_l1(bg_enc, b["alpha"], b["bg"], none)) == 0.0
    half = torch.tensor([1.0, 0.0])
    assert float(L.bg_l1(bg_enc, b["alpha"], b["bg"], half)) > 0.0


def test_classifier_ce_targets_rounded_levels() -> None:
    alpha = torch.tensor([0.0, 0.5, 1.0, 0.2]).view(1, 1, 2, 2)
    target = torch.round(alpha * 255).long()
    logits = torch.full((1, 256, 2, 2), -30.0)
    logits.scatter_(1, target, 30.0)
    assert float(L.classifier_ce(logits, alpha)) < 1e-6
    torch.testing.assert_close(L.classifier_alpha(logits), target.float() / 255, atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    ("name", "weights", "parts"),
    [
        (
            "gskey",
            {"l1": 1, "lap": 1, "grad": 0.5, "grad_mag": 2, "comp": 1, "bg": 0.25},
            ["l1", "lap", "grad", "grad_mag", "comp", "bg"],
        ),
        ("seed_regression", {"mse": 1.0}, ["mse"]),
        ("seed_classifier", {"ce": 1.0, "l1": 0.5}, ["l1", "ce"]),
    ],
)
def test_compute_loss_each_model_backpropagates(name: str, weights: dict, parts: list[str]) -> None:
    torch.manual_seed(0)
    model = build_model(name)
    b = _gskey_batch(2, 16)
    b["plate"] = L.srgb_oetf(b["plate_lin"])
    b["screen"] = L.srgb_oetf(b["bg"])
    total, got = L.compute_loss(name, model(b["plate"], b["screen"]), b, weights)
    assert list(got) == parts == L.loss_part_names(name, weights)
    expected = sum(float(weights[k]) * float(v) for k, v in got.items())
    assert float(total.detach()) == pytest.approx(expected, rel=1e-5)
    total.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_loss_names_reject_wrong_terms() -> None:
    with pytest.raises(ValueError, match="does not apply"):
        L.loss_part_names("seed_regression", {"comp": 1.0})
    with pytest.raises(ValueError, match="does not apply"):
        L.loss_part_names("gskey", {"l1": 1.0, "anchor": 1.0})  # no colour-evidence gate
    with pytest.raises(ValueError, match="unknown loss"):
        L.loss_part_names("gskey", {"sad": 1.0})
    with pytest.raises(ValueError, match="zero"):
        L.loss_part_names("gskey", {"l1": 0.0})


def test_anchor_holds_alpha_where_the_gate_is_shut_and_frees_it_where_open() -> None:
    """Left half: the screen's own colour (gate shut); right half: a red subject (gate open)."""
    model = build_model("gskey3", gate="ratio")
    screen = torch.tensor([0.2, 0.7, 0.25]).view(1, 3, 1, 1).expand(1, 3, 8, 8).clone()
    plate = screen.clone()
    plate[:, :, :, 4:] = torch.tensor([0.7, 0.3, 0.2]).view(1, 3, 1, 1)
    gate = model.evidence(plate, screen).gate
    assert float(gate[..., :4].max()) == 0.0 and float(gate[..., 4:].min()) == 1.0
    teacher = torch.full((1, 1, 8, 8), 0.5)
    batch = {"alpha": teacher, "teacher_alpha": teacher, "anchor_mask": L.anchor_mask(gate, teacher)}

    def anchor(student: torch.Tensor) -> float:
        return float(L.compute_loss("gskey3", (student, screen), batch, {"anchor": 1.0})[1]["anchor"])

    assert anchor(teacher.clone()) == 0.0
    raised_on_screen = teacher.clone()
    raised_on_screen[..., :4] += 0.3
    assert anchor(raised_on_screen) == pytest.approx(0.15)
    raised_on_subject = teacher.clone()
    raised_on_subject[..., 4:] += 0.3
    assert anchor(raised_on_subject) == 0.0
    # a subject the teacher keys at 0.95 is held from an opaque threshold of 0.9, not at the default
    near_opaque = torch.full((1, 1, 8, 8), 0.95)
    assert float(L.anchor_mask(gate, near_opaque)[..., 4:].max()) == 0.0
    assert float(L.anchor_mask(gate, near_opaque, 0.9)[..., 4:].min()) == 1.0
    opaque = torch.ones_like(teacher)  # the teacher's confident subject is held too, gate open or not
    batch.update(teacher_alpha=opaque, anchor_mask=L.anchor_mask(gate, opaque))
    assert anchor(opaque - 0.2) == pytest.approx(0.2)


def test_the_anchor_lets_go_where_the_teacher_keys_too_solid_by_more_than_the_tolerance() -> None:
    """A blurred edge the teacher keys too solid: held without a tolerance, freed with one; where
    the teacher is right, keys less than the truth (raising there is how creases leak) or keys
    opaque, it holds."""
    gate = torch.zeros(1, 1, 1, 5)  # shut everywhere: the anchor would hold every pixel
    teacher = torch.tensor([0.0, 0.9, 0.6, 1.0, 0.2]).view(1, 1, 1, 5)
    truth = torch.tensor([0.0, 0.5, 0.55, 1.0, 0.8]).view(1, 1, 1, 5)
    assert L.anchor_mask(gate, teacher).flatten().tolist() == [1.0] * 5
    assert L.anchor_mask(gate, teacher, alpha_gt=truth).flatten().tolist() == [1.0] * 5
    held = L.anchor_mask(gate, teacher, alpha_gt=truth, tolerance=0.1).flatten().tolist()
    assert held == [1.0, 0.0, 1.0, 1.0, 1.0]
    # the opaque hold stays: a teacher keying 0.9 from an opaque threshold of 0.8 is held ...
    held = L.anchor_mask(gate, teacher, 0.8, alpha_gt=truth, tolerance=0.1).flatten().tolist()
    assert held == [1.0] * 5
    # ... unless its own tolerance lets it go (0.9 is 0.4 above the truth; 1.0 is right)
    held = L.anchor_mask(gate, teacher, 0.8, truth, 0.1, opaque_tolerance=0.3).flatten().tolist()
    assert held == [1.0, 0.0, 1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="anchor_tolerance"):
        C.load_config("gskey3", ["loss.anchor_tolerance=1.5"])
