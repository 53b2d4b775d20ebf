"""GsKeyNet2 and GsKeyNet3 (its half-resolution-head successor): blue/green symmetry, no alpha over
visible screen, no holes in plain subject, export and tiling through the engine."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gsrender.engine.backends.onnx_runtime import OnnxRuntimeBackend
from gsrender.engine.classic_keyer import classic_key
from gsrender.engine.keyer import key_frame, prepare_frame
from gsrender.export import onnx_export as E
from gsrender.models.networks import build_model
from gsrender.models.networks.gskey2 import (
    GATES,
    LOCAL_RADIUS,
    STRENGTHS,
    channels,
    colour_difference,
    colour_evidence,
    local_key,
    ratio_gate,
    raw_colour_difference,
    screen_aligned,
    screen_gate,
    srgb_to_linear,
)
from gsrender.training import config as C
from gsrender.training.synth.generator import generate_plate

SWAP = [0, 2, 1]
KEYERS = ("gskey2", "gskey3")


def _random_model(name: str, seed: int = 5, gain: float = 3.0, **kwargs: object) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = build_model(name, **kwargs).eval()
    with torch.no_grad():  # bigger than the init so the correction is far from zero
        for p in model.parameters():
            p.mul_(gain)
    return model


def _inputs(seed: int, size: int = 96) -> tuple[np.ndarray, torch.Tensor, torch.Tensor]:
    p = generate_plate(seed, size, size, ["solid", "hair", "no_markers"])
    fr = prepare_frame(p.plate, stride=8)
    return p.plate, torch.from_numpy(fr.plate_padded)[None], torch.from_numpy(fr.screen_padded)[None]


@pytest.mark.parametrize("gate", GATES)
@pytest.mark.parametrize("name", KEYERS)
def test_a_blue_screen_keys_exactly_like_the_green_screen_it_mirrors(name: str, gate: str) -> None:
    model = _random_model(name, gate=gate)
    _, plate, screen = _inputs(11)
    with torch.no_grad():
        a_green, bg_green = model(plate, screen)
        a_blue, bg_blue = model(plate[:, SWAP], screen[:, SWAP])
    assert torch.equal(a_green, a_blue)
    assert torch.equal(bg_green[:, SWAP], bg_blue)


@pytest.mark.parametrize("gate", GATES)
@pytest.mark.parametrize("name", KEYERS)
def test_alpha_cannot_be_raised_where_the_plate_is_the_local_screen(name: str, gate: str) -> None:
    """Even a network that asks for alpha 1 everywhere leaves screen (and shadowed screen) at 0."""
    model = _random_model(name, gate=gate)
    with torch.no_grad():
        model.h_out.weight.zero_()
        model.h_out.bias[0] = 10.0  # "paint everything opaque"
    screen_lin = np.array([0.08, 0.45, 0.1], np.float32)
    plate = np.broadcast_to(screen_lin, (32, 64, 3)).copy()
    plate[:, 16:32] *= 0.35  # a shadow on the screen: darker, same chromaticity
    plate[:, 40:56] = [0.5, 0.3, 0.2]  # a skin-coloured subject
    fr = prepare_frame(plate, screen_colour=screen_lin, stride=8)
    with torch.no_grad():
        alpha, _ = model(torch.from_numpy(fr.plate_padded)[None], torch.from_numpy(fr.screen_padded)[None])
    a = alpha[0, 0].numpy()
    assert a[:, :32].max() <= 0.7  # at most the colour-difference key (0.65 in the shadow)
    assert a[:, 0:16].max() < 0.02
    assert a[:, 42:54].min() == 1.0


@pytest.mark.parametrize("name", KEYERS)
def test_with_no_correction_it_is_the_colour_difference_key(name: str) -> None:
    model = _random_model(name)
    with torch.no_grad():
        model.h_out.weight.zero_()
        model.h_out.bias.zero_()
    plate_lin, plate, screen = _inputs(4)
    with torch.no_grad():
        alpha = model(plate, screen)[0][0, 0].numpy()
        blue = (screen[:, 2:3] > screen[:, 1:2]).float()  # the generator draws blue screens too
        p_lin, s_lin = (srgb_to_linear(screen_aligned(x, blue)) for x in (plate, screen))
        key = colour_difference(p_lin, s_lin)[0, 0].numpy()
    np.testing.assert_array_equal(alpha, key)
    fr = prepare_frame(plate_lin, stride=8)
    h, w = plate_lin.shape[:2]
    classic = classic_key(plate_lin, fr.screen.smooth, fr.screen.colour, clip_black=0.0, clip_white=1.0)
    # the same formula as the classic keyer, from the encoded inputs (8-bit-ish rounding aside)
    assert np.abs(alpha[:h, :w] - classic).mean() < 0.01


def test_the_ratio_gate_stays_shut_on_dark_and_tinted_screen_and_opens_on_a_mix() -> None:
    """Why the ratio gate: the sum gate opens on a deep shadow (its epsilon pulls dark chromaticity
    towards 0) and on a slightly warmer patch of screen; the ratio gate stays shut on both and still
    opens where a grey strand covers half of the pixel."""
    screen = torch.tensor([0.08, 0.45, 0.1]).view(1, 3, 1, 1)
    deep_shadow = screen * 0.04
    warm_patch = torch.tensor([0.1, 0.45, 0.1]).view(1, 3, 1, 1)  # red / green 0.18 -> 0.22
    strand = screen * 0.5 + torch.full_like(screen, 0.3) * 0.5
    assert screen_gate(deep_shadow, screen).item() > 0.2
    assert screen_gate(warm_patch, screen).item() > 0.0
    s = channels(screen)
    assert ratio_gate(channels(deep_shadow), s).item() == 0.0
    assert ratio_gate(channels(warm_patch), s).item() == 0.0
    assert ratio_gate(channels(strand), s).item() == 1.0


@pytest.mark.parametrize("gate", GATES)
def test_the_per_channel_evidence_is_the_reference_arithmetic(gate: str) -> None:
    """colour_evidence works on single channels (fewer full-resolution copies); it must give exactly
    what the 3-channel reference functions give: align, decode, key, gate."""
    torch.manual_seed(1)
    plate, screen = torch.rand(2, 3, 24, 40), torch.rand(2, 3, 24, 40)
    screen[0, 2] += 0.5  # one blue guide, one mixed
    ev = colour_evidence(plate, screen, gate, (0.05, 0.95))
    blue = (screen[:, 2:3] > screen[:, 1:2]).float()
    p, s = screen_aligned(plate, blue), screen_aligned(screen, blue)
    p_lin, s_lin = srgb_to_linear(p), srgb_to_linear(s)
    raw = raw_colour_difference(p_lin, s_lin)
    reference_gate = (
        ratio_gate(channels(p_lin), channels(s_lin)) if gate == "ratio" else screen_gate(p_lin, s_lin)
    )
    assert torch.equal(ev.features()[:, :6], torch.cat([p, s], dim=1))
    assert torch.equal(ev.raw, raw)
    assert torch.equal(ev.key, torch.clamp((raw - 0.05) * (1.0 / (0.95 - 0.05)), 0.0, 1.0))
    assert torch.equal(ev.gate, reference_gate)


def test_an_unknown_gate_or_clip_is_refused() -> None:
    with pytest.raises(ValueError, match="model.kwargs.gate must be one of sum, ratio"):
        build_model("gskey3", gate="chroma")
    for black, white in ((0.5, 0.4), (-0.1, 0.9), (0.05, 1.2), (0.3, 0.3)):
        with pytest.raises(ValueError, match="clip_black and clip_white"):
            build_model("gskey3", clip_black=black, clip_white=white)


@pytest.mark.parametrize("name", KEYERS)
def test_with_the_classic_clip_and_no_correction_it_is_the_classic_key(name: str) -> None:
    """clip_black / clip_white: the key the correction starts from is the classic keyer's, with its
    clean-up."""
    model = _random_model(name, gate="ratio", clip_black=0.05, clip_white=0.95)
    with torch.no_grad():
        model.h_out.weight.zero_()
        model.h_out.bias.zero_()
    plate_lin, plate, screen = _inputs(4)
    with torch.no_grad():
        alpha = model(plate, screen)[0][0, 0].numpy()
    fr = prepare_frame(plate_lin, stride=8)
    h, w = plate_lin.shape[:2]
    classic = classic_key(plate_lin, fr.screen.smooth, fr.screen.colour)  # its defaults: 0.05, 0.95
    assert np.abs(alpha[:h, :w] - classic).mean() < 0.01
    assert (alpha == 0.0).mean() > 0.3 and (alpha == 1.0).mean() > 0.05  # both ends are clipped


@pytest.fixture(scope="module", params=[*KEYERS, "gskey3_ratio"])
def exported(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[torch.nn.Module, Path]:
    config_name = request.param
    d = tmp_path_factory.mktemp(config_name)
    cfg = C.load_config(config_name)
    name = cfg["model"]["name"]
    model = _random_model(name, **cfg["model"]["kwargs"])
    torch.save(
        {"model": model.state_dict(), "config": cfg, "config_sha256": C.config_sha256(cfg)}, d / "ck.pt"
    )
    return model, E.export_onnx(d / "ck.pt", d / f"{name}.onnx")


def test_export_matches_torch_and_names_the_model(exported) -> None:
    model, path = exported
    res = E.validate_onnx(model, path, plates=1, plate_size=64)
    assert res["ok"], res
    names = {"GsKeyNet2": "gskey2", "GsKeyNet3": "gskey3"}
    assert E.read_metadata(path)["gsrender.model"] == names[type(model).__name__]


def _assert_tiles_assemble_to_the_untiled_key(path: Path) -> None:
    """Keyed in 48- and 96-pixel tiles, the exported model's alpha and colour equal the untiled key's."""
    backend = OnnxRuntimeBackend(path, threads=1)
    plate = generate_plate(21, 150, 230, ["open", "hair"]).plate
    whole = key_frame(plate, backend, tile=0)
    for tile in (48, 96):
        tiled = key_frame(plate, backend, tile=tile)
        assert np.abs(tiled.alpha - whole.alpha).max() <= 1e-4
        assert np.abs(tiled.premult - whole.premult).max() <= 1e-4


def test_tiles_assemble_to_the_untiled_key(exported) -> None:
    _assert_tiles_assemble_to_the_untiled_key(exported[1])


def test_phase_two_is_exported_as_taking_a_clean_plate_guide(tmp_path, exported) -> None:
    """Trained with clean-screen guides (data.clean_guide > 0): the engine may guide it by a clean plate."""
    _, phase1 = exported
    assert E.read_metadata(phase1)["gsrender.clean_plate_guide"] == "0"
    cfg = C.load_config("gskey2_phase2")
    assert cfg["model"]["kwargs"]["hold_subject"] and cfg["data"]["clean_guide"] > 0
    model = build_model("gskey2", **cfg["model"]["kwargs"])
    torch.save({"model": model.state_dict(), "config": cfg}, tmp_path / "p2.pt")
    path = E.export_onnx(tmp_path / "p2.pt", tmp_path / "p2.onnx")
    assert E.read_metadata(path)["gsrender.clean_plate_guide"] == "1"


@pytest.mark.parametrize("name", KEYERS)
def test_hold_subject_keeps_plain_subject_opaque(name: str) -> None:
    """A network that asks for alpha 0 everywhere still cannot punch holes in skin or denim."""
    torch.manual_seed(2)
    model = build_model(name, hold_subject=True).eval()
    with torch.no_grad():
        model.h_out.weight.zero_()
        model.h_out.bias[0] = -10.0  # "make everything transparent"
    screen_lin = np.array([0.08, 0.45, 0.1], np.float32)
    plate = np.broadcast_to(screen_lin, (32, 64, 3)).copy()
    plate[:, 16:32] = [0.5, 0.3, 0.2]  # skin
    plate[:, 40:56] = [0.1, 0.15, 0.3]  # denim
    fr = prepare_frame(plate, screen_colour=screen_lin, stride=8)
    with torch.no_grad():
        alpha = model(torch.from_numpy(fr.plate_padded)[None], torch.from_numpy(fr.screen_padded)[None])[0]
    a = alpha[0, 0].numpy()
    assert a[:, 18:30].min() == 1.0 and a[:, 42:54].min() == 1.0
    assert a[:, :8].max() == 0.0  # the screen is still free to go to 0


@pytest.mark.parametrize("name", KEYERS)
def test_hold_clear_keeps_spill_tinted_light_clothing_but_not_shadows(name: str) -> None:
    """A network that asks for alpha 0 everywhere: with hold_clear a light shirt tinted by spill
    (key near 1, a colour clearly not the screen's) keeps its key, a shadow on the screen does not."""
    screen_lin = np.array([0.08, 0.45, 0.1], np.float32)
    plate = np.broadcast_to(screen_lin, (32, 64, 3)).copy()
    plate[:, 16:32] *= 0.35  # a shadow on the screen: darker, same chromaticity
    plate[:, 40:56] = [0.55, 0.6, 0.58]  # a light grey shirt with a green cast: key about 0.9
    fr = prepare_frame(plate, screen_colour=screen_lin, stride=8)
    inputs = torch.from_numpy(fr.plate_padded)[None], torch.from_numpy(fr.screen_padded)[None]
    alphas = {}
    for hold_clear in (False, True):
        torch.manual_seed(2)
        model = build_model(name, hold_subject=True, hold_clear=hold_clear).eval()
        with torch.no_grad():
            model.h_out.weight.zero_()
            model.h_out.bias[0] = -10.0  # "make everything transparent"
            alphas[hold_clear] = model(*inputs)[0][0, 0].numpy()
    shirt, shadow = (slice(None), slice(42, 54)), (slice(None), slice(18, 30))
    assert alphas[False][shirt].max() == 0.0  # without it the shirt can be emptied
    assert alphas[True][shirt].min() > 0.8  # with it the shirt keeps (nearly) its key
    assert alphas[True][shadow].max() == 0.0  # and shadows on the screen still go


EDGE_RULES = {
    "gate": "ratio",
    "clip_black": 0.05,
    "clip_white": 0.95,
    "strength": "weighted",
    "clip_edges": True,
    "hold_detail": True,
    "detail": "guided",
}


def test_an_unknown_strength_or_detail_is_refused() -> None:
    with pytest.raises(ValueError, match="strength must be one of max, weighted, local, got 'ibk'"):
        build_model("gskey3", strength="ibk")
    with pytest.raises(ValueError, match="model.kwargs.detail must be one of bilinear, guided"):
        build_model("gskey3", detail="bicubic")


def _strand_plate(strand: list[float], coverage: float, size: int = 48) -> tuple[torch.Tensor, torch.Tensor]:
    """Encoded plate with a vertical strand of the given linear colour and coverage over a green screen."""
    from gsrender.engine.encoding import encode_for_network

    screen = np.array([0.08, 0.5, 0.1], np.float32)
    lin = np.broadcast_to(screen, (size, size, 3)).copy()
    lin[:, size // 2] = coverage * np.asarray(strand, np.float32) + (1 - coverage) * screen
    plate = encode_for_network(lin)
    guide = encode_for_network(np.broadcast_to(screen, (size, size, 3)).copy())
    return torch.from_numpy(plate)[None], torch.from_numpy(guide)[None]


def test_the_weighted_strength_gives_a_brown_strand_its_coverage() -> None:
    """A brown strand (red above green) 40% over the screen: the "max" strength keys it well above
    0.4, the weighted one (green - (red + blue) / 2, near 0 for brown) at 0.4."""
    plate, screen = _strand_plate([0.30, 0.20, 0.10], 0.4)
    col = plate.shape[-1] // 2
    k_max = colour_evidence(plate, screen, "ratio", strength="max").key[0, 0, 10, col].item()
    k_w = colour_evidence(plate, screen, "ratio", strength="weighted").key[0, 0, 10, col].item()
    assert k_max > 0.45  # 0.47: the strand counts 17% more than its coverage
    assert abs(k_w - 0.4) < 0.02


def test_clip_edges_leaves_a_soft_edge_alone_and_clips_flat_screen() -> None:
    """A soft edge (grey over the screen, coverage 0 -> 1 over 12 px): the classic clip steepens it
    and zeroes its faint end, the edge-aware one keeps the plain key there; a flat screen with a
    faint tint (key 0.04) all over is still clipped to 0."""
    from gsrender.engine.encoding import encode_for_network

    screen = np.array([0.08, 0.5, 0.1], np.float32)
    grey = np.array([0.3, 0.3, 0.3], np.float32)
    cover = np.clip((np.arange(48, dtype=np.float32) - 18) / 12, 0, 1)[None, :, None]
    lin = cover * grey + (1 - cover) * screen
    lin = np.broadcast_to(lin, (40, 48, 3)).copy()
    plate = torch.from_numpy(encode_for_network(lin))[None]
    guide = torch.from_numpy(encode_for_network(np.broadcast_to(screen, (40, 48, 3)).copy()))[None]
    plain = colour_evidence(plate, guide, "ratio", (0.05, 0.95))
    edges = colour_evidence(plate, guide, "ratio", (0.05, 0.95), clip_edges=True)
    ramp = slice(19, 30)  # coverage 1/12 .. 11/12
    raw = torch.clamp(plain.raw, 0, 1)[0, 0, 20, ramp]
    torch.testing.assert_close(edges.start[0, 0, 20, ramp], raw, atol=1e-5, rtol=0)
    assert float((plain.start[0, 0, 20, ramp] - raw).abs().max()) > 0.03
    assert torch.equal(edges.key, plain.key)  # the trunk still sees the clipped key
    tint = np.broadcast_to(0.04 * grey + 0.96 * screen, (40, 48, 3)).copy()
    flat = colour_evidence(
        torch.from_numpy(encode_for_network(tint))[None], guide, "ratio", (0.05, 0.95), True
    )
    assert float(flat.start.abs().max()) == 0.0


def test_the_torch_flatness_is_the_engine_rule() -> None:
    from gsrender.engine.edge_clip import flatness as np_flatness
    from gsrender.models.networks.gskey2 import flatness

    rng = np.random.default_rng(3)
    key = np.clip(rng.normal(0.3, 0.2, (40, 52)), 0, 1).astype(np.float32)
    key[:, 20:] = 0.0
    ours = flatness(torch.from_numpy(key)[None, None])[0, 0].numpy()
    np.testing.assert_allclose(ours, np_flatness(key), atol=1e-5)


@pytest.mark.parametrize("name", KEYERS)
def test_hold_detail_lowers_only_pixels_of_the_screens_colour(name: str) -> None:
    """With a correction that lowers everything, hold_detail keeps every pixel whose gate is open."""
    model = _random_model(name, hold_subject=False, gate="ratio", hold_detail=True)
    with torch.no_grad():
        model.h_out.weight.zero_()
        model.h_out.bias.copy_(torch.tensor([-0.5, 0.0, 0.0, 0.0]))
    _, plate, screen = _inputs(4)
    with torch.no_grad():
        alpha = model(plate, screen)[0]
        ev = model.evidence(plate, screen)
    opened = ev.gate >= 1.0
    assert opened.any()
    assert torch.equal(alpha[opened], ev.start[opened])
    shut = (ev.gate <= 0.0) & (ev.start > 0.6)
    assert shut.any() and bool((alpha[shut] < ev.start[shut] - 0.4).all())


def test_guided_detail_is_the_smoothed_upsample_on_a_flat_key() -> None:
    from gsrender.models.networks.gskey import _up
    from gsrender.models.networks.gskey3 import _box3, guided_up

    torch.manual_seed(0)
    delta = torch.randn(1, 1, 12, 16)
    flat = torch.full((1, 1, 24, 32), 0.7)
    torch.testing.assert_close(guided_up(delta, flat), _up(_box3(_box3(delta))), atol=1e-4, rtol=0)


def test_guided_detail_follows_a_strand_the_key_resolves() -> None:
    """A correction that lowers a half-resolution neighbourhood and a one-pixel strand in the key: the
    bilinear upsample smears the correction over the strand's neighbours; the guided one puts it where
    the key is and leaves the screen beside it at the plain upsample's value (or closer to 0)."""
    from gsrender.models.networks.gskey3 import guided_up

    key = torch.zeros(1, 1, 32, 32)
    key[..., 16] = 0.6
    delta = -F.avg_pool2d(key, 2)  # the correction a network would predict: remove the strand
    guided = guided_up(delta, key)
    on, beside = guided[0, 0, 8:24, 16], guided[0, 0, 8:24, 14]
    assert float(on.mean()) < -0.4  # the strand's correction is at the strand's strength
    assert float(beside.abs().mean()) < 0.05


def _export_checked(
    tmp_path: Path, model: torch.nn.Module, cfg: dict, override: str, exported: torch.nn.Module
) -> None:
    """Save model with cfg, export it with one --set override, and check the export: it matches
    `exported` (the model the override makes), records the override and its tiles assemble."""
    torch.save(
        {"model": model.state_dict(), "config": cfg, "config_sha256": C.config_sha256(cfg)}, tmp_path / "c.pt"
    )
    path = E.export_onnx(tmp_path / "c.pt", tmp_path / "m.onnx", overrides=[override])
    assert E.validate_onnx(exported, path, plates=1, plate_size=64)["ok"]
    assert override in E.read_metadata(path)["gsrender.export_overrides"]
    _assert_tiles_assemble_to_the_untiled_key(path)


def test_edge_rules_export_and_tile_like_the_untiled_key(tmp_path: Path) -> None:
    """Every edge option together: torch and ONNX agree, the halo covers the guided upsampling and the
    flatness square (tiles assemble within 1e-4), and the options are recorded in the metadata."""
    cfg = C.load_config("gskey3_ratio")
    cfg["model"]["kwargs"].update(EDGE_RULES)
    model = _random_model("gskey3", **cfg["model"]["kwargs"])
    _export_checked(tmp_path, model, cfg, "model.kwargs.detail=guided", model)


def test_the_local_key_is_the_classic_keyers_local_form() -> None:
    """Random subject patches, a strand and a screen with falloff: the torch key equals the render
    engine's classic keyer (its default "local" form, unclipped) everywhere, frame edges included
    (the square's mean counts only pixels inside)."""
    from gsrender.engine.classic_keyer import classic_key

    rng = np.random.default_rng(0)
    screen = np.array([0.08, 0.5, 0.1], np.float32) * rng.uniform(0.8, 1.1, (40, 50, 1)).astype(np.float32)
    plate = screen.copy()
    plate[10:30, 0:25] = rng.uniform(0, 1, (20, 25, 3))
    plate[0:12, 40:50] = [0.3, 0.24, 0.1]
    plate[5:35, 30] = 0.5 * np.array([0.3, 0.2, 0.1]) + 0.5 * screen[5:35, 30]
    prop = np.array([0.08, 0.15, 0.6], np.float32)  # a blue prop, its edge blurred over 8 px
    plate[28:40, 33:40] = prop
    for i, cover in enumerate(np.linspace(1.0, 0.0, 10)[1:9]):
        plate[28:40, 40 + i] = cover * prop + (1 - cover) * screen[28:40, 40 + i]

    def torch_channels(x: np.ndarray) -> tuple[torch.Tensor, ...]:
        return tuple(torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None].split(1, dim=1))

    raw, k_max = local_key(torch_channels(plate), torch_channels(screen))
    engine = classic_key(plate, screen, screen[0, 0], form="local", clip_black=0.0, clip_white=1.0, channel=1)
    np.testing.assert_allclose(np.clip(raw[0, 0].numpy(), 0, 1), engine, atol=1e-4, rtol=0)
    assert plate[36, 43, 2] > plate[36, 43, 1] and 0.7 < engine[36, 43] < 0.95  # the hue hold let go
    p_t, s_t = (torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None] for x in (plate, screen))
    assert torch.equal(k_max, raw_colour_difference(p_t, s_t))


@pytest.mark.parametrize("coverage", [0.5, 0.7])
def test_the_local_key_gives_a_brown_strand_beside_its_root_its_coverage(coverage: float) -> None:
    """A brown strand (red above green) over the screen, 3 px from its opaque root: the "max" key
    counts it well above its coverage, the weighted one well below, the local one (its root's
    strength subtracted) within 0.015."""
    from gsrender.engine.encoding import encode_for_network

    brown = np.array([0.30, 0.24, 0.10], np.float32)
    screen = np.array([0.08, 0.5, 0.1], np.float32)
    lin = np.broadcast_to(screen, (48, 48, 3)).copy()
    lin[:, :21] = brown
    lin[:, 24] = coverage * brown + (1 - coverage) * screen
    plate = torch.from_numpy(encode_for_network(lin))[None]
    guide = torch.from_numpy(encode_for_network(np.broadcast_to(screen, (48, 48, 3)).copy()))[None]
    key = {f: colour_evidence(plate, guide, "ratio", strength=f).key[0, 0, 20, 24].item() for f in STRENGTHS}
    assert abs(key["local"] - coverage) < 0.015
    assert key["max"] > coverage + 0.04
    assert key["weighted"] < coverage - 0.04


def test_the_local_key_holds_a_cyan_subject_opaque() -> None:
    """A cyan subject (blue above green): its Keying-node strength is well above 0, so the weighted
    key leaves it a quarter transparent; the local key's hue hold keeps it opaque, and the screen
    around it stays 0."""
    from gsrender.engine.encoding import encode_for_network

    screen = np.array([0.08, 0.5, 0.1], np.float32)
    lin = np.broadcast_to(screen, (48, 48, 3)).copy()
    lin[10:38, 10:38] = [0.05, 0.4, 0.5]
    plate = torch.from_numpy(encode_for_network(lin))[None]
    guide = torch.from_numpy(encode_for_network(np.broadcast_to(screen, (48, 48, 3)).copy()))[None]
    local = colour_evidence(plate, guide, "ratio", (0.05, 0.95), strength="local").key[0, 0]
    weighted = colour_evidence(plate, guide, "ratio", (0.05, 0.95), strength="weighted").key[0, 0]
    assert float(local[10:38, 10:38].min()) == 1.0
    assert float(weighted[10:38, 10:38].max()) < 0.8
    assert float(local[:, :8].max()) == 0.0 and float(local[:, 40:].max()) == 0.0


@pytest.mark.parametrize("name", KEYERS)
def test_with_the_local_key_hold_subject_still_holds_plain_subject(name: str) -> None:
    """The local key is near 1 inside any solid subject (its own strength is the reference), so the
    hold rules read the "max" key: skin (red well above green) keeps alpha 1 under a correction that
    lowers everything."""
    from gsrender.engine.encoding import encode_for_network

    model = _random_model(name, gate="ratio", strength="local", hold_subject=True)
    with torch.no_grad():
        model.h_out.weight.zero_()
        model.h_out.bias.copy_(torch.tensor([-0.5, 0.0, 0.0, 0.0]))
    screen = np.array([0.08, 0.5, 0.1], np.float32)
    lin = np.broadcast_to(screen, (64, 64, 3)).copy()
    lin[16:48, 16:48] = [0.5, 0.3, 0.2]
    plate = torch.from_numpy(encode_for_network(lin))[None]
    guide = torch.from_numpy(encode_for_network(np.broadcast_to(screen, (64, 64, 3)).copy()))[None]
    with torch.no_grad():
        alpha = model(plate, guide)[0][0, 0]
        ev = model.evidence(plate, guide)
    assert float(ev.raw[0, 0, 20:44, 20:44].max()) < 1.1  # the local key alone would not hold it
    assert float(alpha[20:44, 20:44].min()) == 1.0


def test_the_local_key_exports_and_tiles_like_the_untiled_key(tmp_path: Path) -> None:
    """The shipped export options with strength=local: torch and ONNX agree, the halo covers the
    local square on top of the trunk and the guided upsampling (tiles assemble within 1e-4)."""
    from gsrender.models.networks import receptive_radius

    cfg = C.load_config("gskey3_ratio")
    cfg["model"]["kwargs"].update(gate="ratio", clip_black=0.05, clip_white=0.95, detail="guided")
    model = _random_model("gskey3", **cfg["model"]["kwargs"])
    local = _random_model("gskey3", **cfg["model"]["kwargs"], strength="local")
    assert receptive_radius(local) == receptive_radius(model) + LOCAL_RADIUS
    _export_checked(tmp_path, model, cfg, "model.kwargs.strength=local", local)


def test_the_detail_transfer_exports_and_tiles_like_the_untiled_key(tmp_path: Path) -> None:
    """The shipped options with the detail transfer on: torch and ONNX agree, the halo covers the
    Gaussian and the clear-screen reach beyond the corrected key (tiles assemble within 1e-4)."""
    from gsrender.models.networks import receptive_radius
    from gsrender.models.networks.detail_transfer import detail_reach

    cfg = C.load_config("gskey3_ratio")
    shipped = dict(gate="ratio", clip_black=0.05, clip_white=0.95, detail="guided", strength="local")
    cfg["model"]["kwargs"].update(shipped)
    model = _random_model("gskey3", **cfg["model"]["kwargs"])
    transfer = _random_model("gskey3", **cfg["model"]["kwargs"], detail_scale=2)
    assert receptive_radius(transfer) == receptive_radius(model) + detail_reach(2)
    _export_checked(tmp_path, model, cfg, "model.kwargs.detail_scale=2", transfer)


@pytest.mark.parametrize("scale", [-1, 9, 2.5, True])
def test_a_detail_scale_that_is_not_a_whole_number_of_pixels_in_range_is_refused(scale: object) -> None:
    with pytest.raises(ValueError, match="model.kwargs.detail_scale must be a whole number of pixels, 0"):
        build_model("gskey3", detail_scale=scale)
