"""Training losses for the three keying networks.

Alpha terms (L1, Laplacian pyramid, Sobel gradient, and ``grad_mag``: the evaluation's
Gaussian-derivative gradient error) apply to every model through its
alpha prediction. Model-specific terms:

* gskey: ``comp`` compares the premultiplied foreground the render engine will compute,
  ``plate_lin - (1 - alpha) * srgb_eotf(bg)``, with the exact one,
  ``plate_lin - (1 - alpha_gt) * bg_gt`` (spill included, since the engine keeps the
  plate's colour). This trains alpha and the local screen colour together for what the
  compositor actually receives. ``bg`` supervises the screen colour directly where it
  shows through (weighted by 1 - alpha_gt). Both need a known clean screen, so samples
  with ``has_fg == 0`` (artist-keyed user frames) are masked out of them.
* gskey2/gskey3 ``anchor``: keeps alpha at a frozen teacher's (the fine-tune's starting weights) where
  the colour-evidence gate is shut (plainly the screen's colour) or the teacher is opaque, so a
  fine-tune may only move the edge band (the trainer supplies ``teacher_alpha``, ``anchor_mask``).
* seed_regression: ``mse`` on the sigmoid alpha (the seed's original objective).
* seed_classifier: ``ce``, cross entropy against the 256 quantised alpha levels.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F

from gsrender.models.networks import KEYERS

from .metrics import GRAD_SIGMA, gauss_deriv_kernels

LEVELS = 256
LAP_LEVELS = 5
# Linear values of the premultiplied foreground are clipped to this range before the
# L1: HDR highlights (or a blown-out guess) should not dominate the batch.
COMP_CLIP = (-1.0, 4.0)

# Every weight a config may set; a weight of 0 skips the term entirely.
LOSS_TERMS = ("l1", "lap", "grad", "grad_mag", "comp", "bg", "anchor", "mse", "ce")
# [loss] keys that are not weights: how a term is computed
LOSS_SETTINGS = ("anchor_opaque", "anchor_tolerance", "anchor_opaque_tolerance")
# The keyers with a colour-evidence gate (CorrectingKeyer.evidence), which the anchor term needs.
GATED = ("gskey2", "gskey3")
# Teacher alpha from which a pixel counts as confident opaque subject for the anchor term
# (the default of loss.anchor_opaque).
ANCHOR_OPAQUE = 0.99


def srgb_eotf(encoded: torch.Tensor) -> torch.Tensor:
    """sRGB-encoded [0,1] -> linear [0,1]; the torch twin of gsrender.engine.encoding.srgb_eotf."""
    v = torch.clamp(encoded, 0.0, 1.0)
    return torch.where(v <= 0.04045, v / 12.92, torch.pow((v + 0.055) / 1.055, 2.4))


def srgb_oetf(linear: torch.Tensor) -> torch.Tensor:
    """Linear [0,1] -> sRGB-encoded [0,1]; the torch twin of gsrender.engine.encoding.srgb_oetf."""
    x = torch.clamp(linear, 0.0, 1.0)
    # The clamp inside pow keeps the unused branch finite, so its gradient is never NaN.
    return torch.where(
        x <= 0.0031308, 12.92 * x, 1.055 * torch.pow(torch.clamp(x, min=1e-8), 1.0 / 2.4) - 0.055
    )


def _masked_mean(err: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """Mean of err, or weighted mean (weight broadcast to err) with an empty weight giving 0."""
    if weight is None:
        return err.mean()
    w = weight.expand_as(err)
    return (err * w).sum() / torch.clamp(w.sum(), min=1.0)


def alpha_l1(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Plain per-pixel L1 on alpha."""
    return torch.abs(pred - gt).mean()


def _gauss_kernel(channels: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    k1 = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], device=device, dtype=dtype) / 16.0
    k2 = torch.outer(k1, k1)
    return k2.expand(channels, 1, 5, 5).contiguous()


def _gauss_blur(x: torch.Tensor) -> torch.Tensor:
    # Replicate padding works for any size (reflect needs > 2 pixels), so tiny crops are fine.
    k = _gauss_kernel(x.shape[1], x.device, x.dtype)
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="replicate"), k, groups=x.shape[1])


def laplacian_pyramid(x: torch.Tensor, levels: int = LAP_LEVELS) -> list[torch.Tensor]:
    """Band-pass levels (finest first) plus the low-pass residual as the last entry."""
    bands = []
    cur = x
    for _ in range(levels - 1):
        if min(cur.shape[-2:]) < 2:
            break
        down = _gauss_blur(cur)[..., ::2, ::2]
        up = _gauss_blur(F.interpolate(down, size=cur.shape[-2:], mode="bilinear", align_corners=False))
        bands.append(cur - up)
        cur = down
    bands.append(cur)
    return bands


def laplacian_l1(pred: torch.Tensor, gt: torch.Tensor, levels: int = LAP_LEVELS) -> torch.Tensor:
    """L1 on a 5-level Laplacian pyramid, level i weighted 2^i (normalised to sum to 1).

    Why: per-pixel L1 barely notices a matte that is right on average but has the wrong
    structure (soft where hair is crisp, a halo around the subject); the pyramid scores
    each frequency band separately. Coarse levels have fewer, larger-scale pixels, hence
    the 2^i; the normalisation keeps the term on the scale of the plain L1, so the loss
    weights in the configs stay comparable.
    """
    pp, pg = laplacian_pyramid(pred, levels), laplacian_pyramid(gt, levels)
    scale = sum(2.0**i for i in range(len(pp)))
    total = pred.new_zeros(())
    for i, (bp, bg) in enumerate(zip(pp, pg, strict=True)):
        total = total + (2.0**i / scale) * torch.abs(bp - bg).mean()
    return total


def _sobel(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    kx = (
        torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], device=x.device, dtype=x.dtype)
        / 8.0
    )
    c = x.shape[1]
    wx = kx.expand(c, 1, 3, 3).contiguous()
    wy = kx.t().expand(c, 1, 3, 3).contiguous()
    xp = F.pad(x, (1, 1, 1, 1), mode="replicate")
    return F.conv2d(xp, wx, groups=c), F.conv2d(xp, wy, groups=c)


def gradient_l1(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """L1 between Sobel gradients of the predicted and true alpha: sharp, noise-free edges."""
    px, py = _sobel(pred)
    gx, gy = _sobel(gt)
    return torch.abs(px - gx).mean() + torch.abs(py - gy).mean()


# The evaluation's 1-D Gaussian and derivative taps (metrics.gradient_error), built once.
_GRAD_TAPS = tuple(torch.from_numpy(k).float() for k in gauss_deriv_kernels(GRAD_SIGMA))


def _gauss_grad_mag(x: torch.Tensor) -> torch.Tensor:
    """|grad x| from the evaluation's Gaussian-derivative filters (sigma 1.4, replicated border)."""
    g, dg = (k.to(device=x.device, dtype=x.dtype) for k in _GRAD_TAPS)
    r = g.numel() // 2
    xp = F.pad(x, (r, r, r, r), mode="replicate")
    gx = F.conv2d(F.conv2d(xp, g.view(1, 1, -1, 1)), dg.view(1, 1, 1, -1))
    gy = F.conv2d(F.conv2d(xp, dg.view(1, 1, -1, 1)), g.view(1, 1, 1, -1))
    return torch.sqrt(gx * gx + gy * gy + 1e-8)


def gradient_magnitude_l2(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of the gradient magnitudes: the evaluation's Grad error per pixel.

    Why beside ``grad``: the Sobel L1 on gradient vectors scores a faint strand erased and a
    strand thickened by a pixel about as lightly as any other per-pixel error; the
    measured Grad (Gaussian derivatives, squared, as in the alphamatting.com benchmark) punishes
    both hard, so training on it aims at the edge quality the keyer is judged by.
    """
    mag_pred, mag_gt = _gauss_grad_mag(torch.cat([pred, gt])).chunk(2)  # one filtering pass
    return torch.square(mag_pred - mag_gt).mean()


def _per_sample(mask: torch.Tensor | None, n: int, ref: torch.Tensor) -> torch.Tensor:
    if mask is None:
        return ref.new_ones(n, 1, 1, 1)
    return mask.to(ref.dtype).reshape(n, 1, 1, 1)


def composition_l1(
    alpha: torch.Tensor,
    bg_encoded: torch.Tensor,
    plate_lin: torch.Tensor,
    alpha_gt: torch.Tensor,
    bg_gt_lin: torch.Tensor,
    has_fg: torch.Tensor | None = None,
) -> torch.Tensor:
    """L1 between the engine's premultiplied foreground and the exact one (linear light).

    Masked per sample by ``has_fg``: without a known clean screen there is no target.
    """
    pred = plate_lin - (1.0 - alpha) * srgb_eotf(bg_encoded)
    target = plate_lin - (1.0 - alpha_gt) * bg_gt_lin
    err = torch.abs(torch.clamp(pred, *COMP_CLIP) - torch.clamp(target, *COMP_CLIP))
    return _masked_mean(err, _per_sample(has_fg, err.shape[0], err))


def bg_l1(
    bg_encoded: torch.Tensor,
    alpha_gt: torch.Tensor,
    bg_gt_lin: torch.Tensor,
    has_fg: torch.Tensor | None = None,
) -> torch.Tensor:
    """L1 on the encoded screen colour, weighted by how much of it shows (1 - alpha_gt)."""
    err = torch.abs(bg_encoded - srgb_oetf(bg_gt_lin))
    w = (1.0 - alpha_gt) * _per_sample(has_fg, err.shape[0], err)
    return _masked_mean(err, w)


def anchor_mask(
    gate: torch.Tensor,
    teacher_alpha: torch.Tensor,
    opaque: float = ANCHOR_OPAQUE,
    alpha_gt: torch.Tensor | None = None,
    tolerance: float = 0.0,
    opaque_tolerance: float = 0.0,
) -> torch.Tensor:
    """Where the anchor holds (0..1): the gate shut (1 - gate), or the teacher's alpha >= opaque.

    With a tolerance > 0 the gate's hold lets go wherever the teacher keys more than the ground
    truth by more than that: the gate is only partly shut across a motion-blurred or defocused
    edge, and holding a teacher that keys that edge too solid fights the exact coverage the plate
    gives. Where the teacher keys less than the truth it still holds (raising alpha where the gate
    is shut is what leaks dark screen creases into the key), and so does the opaque hold (light,
    screen-tinted clothing keyed solid, which real photographs need and the plates rarely show),
    unless an opaque tolerance > 0 lets it go too where the teacher is that far above the truth.
    """
    gate_hold = 1.0 - gate
    opaque_hold = (teacher_alpha >= opaque).to(gate.dtype)
    if alpha_gt is not None:
        over = teacher_alpha - alpha_gt
        if tolerance > 0.0:
            gate_hold = gate_hold * (over <= tolerance).to(gate.dtype)
        if opaque_tolerance > 0.0:
            opaque_hold = opaque_hold * (over <= opaque_tolerance).to(gate.dtype)
    return torch.maximum(gate_hold, opaque_hold)


def anchor_l1(pred: torch.Tensor, teacher_alpha: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """|alpha - teacher alpha| weighted by the anchor mask, over all pixels: the edge band is free."""
    return ((pred - teacher_alpha).abs() * mask).mean()


def classifier_ce(logits: torch.Tensor, alpha_gt: torch.Tensor) -> torch.Tensor:
    """Cross entropy against round(alpha * 255): the seed classifier's objective."""
    target = torch.round(torch.clamp(alpha_gt, 0.0, 1.0) * (LEVELS - 1)).long().squeeze(1)
    return F.cross_entropy(logits.float(), target)


def classifier_alpha(logits: torch.Tensor) -> torch.Tensor:
    """Softmax expectation over the 256 levels (same read-out as SeedClassifier.predict_alpha)."""
    probs = torch.softmax(logits.float(), dim=1)
    levels = torch.linspace(0.0, 1.0, LEVELS, device=logits.device, dtype=probs.dtype)
    return (probs * levels.view(1, -1, 1, 1)).sum(dim=1, keepdim=True)


def outputs_alpha(model_name: str, outputs: torch.Tensor | tuple[torch.Tensor, ...]) -> torch.Tensor:
    """The alpha (N,1,H,W) of a model's raw forward output."""
    if model_name in KEYERS:
        return outputs[0]
    if model_name == "seed_classifier":
        return classifier_alpha(outputs)  # type: ignore[arg-type]
    if model_name == "seed_regression":
        return outputs  # type: ignore[return-value]
    raise ValueError(f"unknown model '{model_name}'")


def loss_part_names(model_name: str, weights: Mapping[str, float]) -> list[str]:
    """The loss parts compute_loss reports for this model and weights (CSV column order)."""
    keyers = {k: {"comp", "bg", "anchor"} if k in GATED else {"comp", "bg"} for k in KEYERS}
    allowed = {**keyers, "seed_regression": {"mse"}, "seed_classifier": {"ce"}}
    if model_name not in allowed:
        raise ValueError(f"unknown model '{model_name}'")
    unknown = set(weights) - set(LOSS_TERMS) - set(LOSS_SETTINGS)
    if unknown:
        raise ValueError(f"unknown loss terms {sorted(unknown)}; known: {', '.join(LOSS_TERMS)}")
    names = []
    for term in LOSS_TERMS:
        w = float(weights.get(term, 0.0))
        if w == 0.0:
            continue
        if term in ("comp", "bg", "anchor", "mse", "ce") and term not in allowed[model_name]:
            raise ValueError(f"loss term '{term}' does not apply to model '{model_name}'")
        names.append(term)
    if not names:
        raise ValueError("all loss weights are zero")
    return names


def compute_loss(
    model_name: str,
    outputs: torch.Tensor | tuple[torch.Tensor, ...],
    batch: Mapping[str, torch.Tensor],
    weights: Mapping[str, float],
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Weighted total loss and its unweighted parts (detached), for one batch.

    ``batch`` holds the dataset keys (alpha, plate_lin, bg, has_fg, ...) on the model's
    device. Losses are computed in float32 even when the forward ran under autocast.
    """
    names = loss_part_names(model_name, weights)
    alpha_gt = batch["alpha"].float()
    alpha = outputs_alpha(model_name, outputs).float()
    has_fg = batch.get("has_fg")
    parts: dict[str, torch.Tensor] = {}
    for term in names:
        if term == "l1":
            parts[term] = alpha_l1(alpha, alpha_gt)
        elif term == "lap":
            parts[term] = laplacian_l1(alpha, alpha_gt)
        elif term == "grad":
            parts[term] = gradient_l1(alpha, alpha_gt)
        elif term == "grad_mag":
            parts[term] = gradient_magnitude_l2(alpha, alpha_gt)
        elif term == "comp":
            parts[term] = composition_l1(
                alpha, outputs[1].float(), batch["plate_lin"].float(), alpha_gt, batch["bg"].float(), has_fg
            )
        elif term == "bg":
            parts[term] = bg_l1(outputs[1].float(), alpha_gt, batch["bg"].float(), has_fg)
        elif term == "anchor":
            parts[term] = anchor_l1(alpha, batch["teacher_alpha"].float(), batch["anchor_mask"].float())
        elif term == "mse":
            parts[term] = F.mse_loss(alpha, alpha_gt)
        elif term == "ce":
            parts[term] = classifier_ce(outputs, alpha_gt)  # type: ignore[arg-type]
    total = sum((float(weights[k]) * v for k, v in parts.items()), alpha.new_zeros(()))
    return total, {k: v.detach() for k, v in parts.items()}
