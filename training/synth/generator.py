"""Assemble a green-screen plate with exact ground truth.

Order of operations, chosen so the ground truth stays exact:
  1. sample a scene (screen, subject groups, spill, shadow, camera) from one seeded RNG;
  2. render the subject as premultiplied colour P and coverage a; F = P / a;
  3. F_spill = F + s * screen colour, with s largest near edges and in thin/partial areas
     (screen light wrapping around the subject); GT fg is F, without spill;
  4. scale F, F_spill and the screen B by the exposure, then I = a*F_spill + (1-a)*B;
  5. the camera (noise, sharpening, 4:2:0, quantisation) changes only the plate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .camera import MODES, CameraSpec, apply_camera, sample_camera
from .foreground import ELEMENT_KINDS, MODIFIER_KINDS, Group, sample_groups
from .raster import blur
from .screen import FOLD_DEPTH, SCREEN_TONES, Screen, make_screen

ALPHA_FLOOR = 1e-3  # coverage below this is set to exactly 0 (blur tails)
SCENE_KINDS = ("empty", "markers", "no_markers", "shadow", "spill", "no_spill")
KNOWN_KINDS = ELEMENT_KINDS + MODIFIER_KINDS + SCREEN_TONES + SCENE_KINDS + MODES


@dataclass
class Plate:
    """One synthetic frame and its exact ground truth (all scene-linear Rec.709, float32)."""

    plate: np.ndarray  # HxWx3: what the camera recorded (noise, exposure, quantisation, compression)
    alpha: np.ndarray  # HxW in [0, 1], exact coverage
    fg: np.ndarray  # HxWx3 straight foreground colour without spill (0 where alpha == 0)
    screen: np.ndarray  # HxWx3 clean screen behind the subject (lighting, wrinkles, seams, markers)
    kinds: tuple[str, ...]  # tags of what is in it


@dataclass
class Clean:
    """The composite before the camera, with the spill-contaminated foreground it used."""

    image: np.ndarray  # a * fg_spill + (1 - a) * screen, exactly (float32 arithmetic)
    alpha: np.ndarray
    fg: np.ndarray
    fg_spill: np.ndarray
    screen: np.ndarray


@dataclass
class Spill:
    """Screen light on the subject: what makes the plate's F differ from the GT fg."""

    strength: float  # spill at a fully exposed edge, as a fraction of the screen colour
    base: float  # overall screen bounce on the whole subject
    sigma: float  # how far from the edge spill reaches (px)
    tint: np.ndarray  # spill light colour (linear), about the screen colour


@dataclass
class Shadow:
    """The subject's soft shadow on the screen (part of the clean background B)."""

    dx: float
    dy: float
    sigma: float
    strength: float


@dataclass(frozen=True)
class LightingMix:
    """How the set's light touches the subject and the screen (training knobs).

    Soft shadows beside the subject are where real keys leave 0.1-0.2 alpha: the smooth screen
    estimate there is filled from brighter screen around it (how often, how dark). A key light
    off to the side casts the subject's shadow farther and sharper (reach, blur): a dark,
    subject-shaped patch of screen well away from the subject, which a keyer must not key in. Spill base is
    the screen light bounced evenly onto the whole subject, as a fraction of the screen colour:
    light clothing near a real screen takes a broad tint, and a keyer taught only edge spill
    reads that tint as screen showing through. Light check is the share of people wearing light
    checked shirting tinted by that bounce: between its lines a keyer finds near-white cloth of
    the screen's hue and punches holes. Fold depth is how much light the screen's wrinkles take:
    a photographed crease can be half as bright as the screen around it, deeper than the smooth
    screen estimate follows, and a keyer that spares thin dark lines for strands keys it in.
    """

    shadow_share: float = 0.15
    shadow_strength: tuple[float, float] = (0.15, 0.5)
    spill_base: tuple[float, float] = (0.0, 0.06)
    shadow_reach: float = 0.1  # how far the shadow falls from the subject, as a share of the frame
    shadow_blur: tuple[float, float] = (3.0, 20.0)  # its softness (Gaussian sigma, px at 256)
    light_check: float = 0.0  # share of people in light checked shirting tinted by the screen
    fold_depth: tuple[float, float] = FOLD_DEPTH  # the screen's wrinkles: how much light they take


DEFAULT_LIGHTING = LightingMix()


@dataclass(frozen=True)
class CameraMix:
    """How often the camera softens the subject's edges (training knobs): the share of randomly
    drawn plates whose subject moves during the exposure, and whose subject is out of focus.

    A blurred edge mixes the subject with the screen over several pixels, and its colour looks
    like a solid, screen-tinted subject's: the shares set how much of that a keyer is shown.
    """

    motion_blur: float = 0.2
    defocus: float = 0.15


DEFAULT_CAMERA_MIX = CameraMix()


@dataclass(frozen=True)
class SubjectMix:
    """How often a randomly drawn plate holds the subjects a keyer finds hardest to level
    (training knobs): a semi-transparent slab or veil, and thin single-colour strands or wires.

    A slab's mix with the screen has the colour of light, screen-tinted cloth, and a faint dark
    strand that of a crease in the screen: only the plates say which is which, and these shares
    set how often they do.
    """

    semi_transparent: float = 0.25
    thin: float = 0.2


DEFAULT_SUBJECT_MIX = SubjectMix()


@dataclass
class Scene:
    """Everything random about a shot; rendering it at time t is deterministic."""

    height: int
    width: int
    screen: Screen
    groups: list[Group]
    spill: Spill
    shadow: Shadow | None
    camera: CameraSpec
    tags: tuple[str, ...]


def _pick_kinds(
    rng: np.random.Generator,
    kinds: Sequence[str] | None,
    camera_mix: CameraMix = DEFAULT_CAMERA_MIX,
    subject_mix: SubjectMix = DEFAULT_SUBJECT_MIX,
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Element kinds and modifiers: listed ones exactly, otherwise a random mix."""
    listed = tuple(kinds or ())
    unknown = [k for k in listed if k not in KNOWN_KINDS]
    if unknown:
        raise ValueError(f"unknown plate kinds {unknown}; known: {', '.join(KNOWN_KINDS)}")
    if "empty" in listed:
        return (), ()
    elements = tuple(k for k in ELEMENT_KINDS if k in listed)
    modifiers = tuple(k for k in MODIFIER_KINDS if k in listed)
    if not elements:
        if not modifiers and rng.random() < 0.05:
            return (), ()
        probs = {
            "solid": 0.6,
            "hair": 0.45,
            "fur": 0.12,
            "semi_transparent": subject_mix.semi_transparent,
            "thin": subject_mix.thin,
            "open": 0.35,
        }
        elements = tuple(k for k in ELEMENT_KINDS if rng.random() < probs[k])
        if not elements:
            elements = (ELEMENT_KINDS[int(rng.integers(len(ELEMENT_KINDS)))],)
        if not modifiers:
            mprobs = {
                "motion_blur": camera_mix.motion_blur,
                "defocus": camera_mix.defocus,
                "greenish_fg": 0.15,
                "hdr": 0.12,
                "large": 0.1,
            }
            modifiers = tuple(k for k in MODIFIER_KINDS if rng.random() < mprobs[k])
    return elements, modifiers


def sample_scene(
    rng: np.random.Generator,
    height: int,
    width: int,
    kinds: Sequence[str] | None = None,
    lighting: LightingMix = DEFAULT_LIGHTING,
    camera_mix: CameraMix = DEFAULT_CAMERA_MIX,
    subject_mix: SubjectMix = DEFAULT_SUBJECT_MIX,
) -> Scene:
    """Draw every random choice of a shot (see generate_plate for `kinds`)."""
    listed = tuple(kinds or ())
    elements, modifiers = _pick_kinds(rng, kinds, camera_mix, subject_mix)
    scale = min(height, width) / 256.0
    tone = next((k for k in SCREEN_TONES if k in listed), None)
    markers = True if "markers" in listed else (False if "no_markers" in listed else None)
    screen = make_screen(rng, height, width, tone, markers, lighting.fold_depth)
    groups, subject_tags = sample_groups(
        rng, height, width, elements, modifiers, lighting.light_check, screen.colour
    )

    no_spill = rng.random() < 0.25
    no_spill = "no_spill" in listed or (no_spill and "spill" not in listed)
    spill = Spill(
        strength=0.0 if no_spill else float(rng.uniform(0.05, 0.45)),
        base=0.0 if no_spill else float(rng.uniform(*lighting.spill_base)),
        sigma=float(rng.uniform(1.5, 8.0) * scale),
        tint=(screen.colour * rng.uniform(0.8, 1.2, 3)).astype(np.float32),
    )
    shadow = None
    if groups and ("shadow" in listed or rng.random() < lighting.shadow_share):
        shadow = Shadow(
            float(rng.uniform(-lighting.shadow_reach, lighting.shadow_reach) * width),
            float(rng.uniform(0.0, lighting.shadow_reach) * height),
            float(rng.uniform(*lighting.shadow_blur) * scale),
            float(rng.uniform(*lighting.shadow_strength)),
        )
    mode = next((k for k in MODES if k in listed), None)
    camera = sample_camera(rng, mode)

    tags = [t for t in screen.tags if t != "screen"] + list(subject_tags)
    if not groups:
        tags.append("empty")
    if groups and not no_spill:
        tags.append("spill")
    if shadow is not None:
        tags.append("shadow")
    tags.append(camera.mode)
    return Scene(height, width, screen, groups, spill, shadow, camera, tuple(dict.fromkeys(tags)))


def _shift(img: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """Translate with zero fill (no wrap-around)."""
    out = np.zeros_like(img)
    h, w = img.shape[:2]
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    if abs(dx) < w and abs(dy) < h:
        out[yd, xd] = img[ys, xs]
    return out


def render_clean(scene: Scene, t: float = 0.0) -> Clean:
    """Composite the scene at time t exactly, before any camera degradation."""
    h, w = scene.height, scene.width
    prem = np.zeros((h, w, 3), np.float32)
    alpha = np.zeros((h, w), np.float32)
    for i, group in enumerate(scene.groups):
        p, a = group.render(h, w, t)
        if i == 0:
            prem, alpha = p, a
        else:
            prem = p + prem * (1.0 - a[..., None])
            alpha = a + alpha * (1.0 - a)
    alpha = np.clip(alpha, 0.0, 1.0)
    alpha[alpha < ALPHA_FLOOR] = 0.0
    covered = alpha > 0
    fg = np.zeros_like(prem)
    np.divide(prem, alpha[..., None], out=fg, where=covered[..., None])
    np.maximum(fg, 0.0, out=fg)

    screen = scene.screen.image
    if scene.shadow is not None and covered.any():
        sh = scene.shadow
        occ = blur(_shift(alpha, int(round(sh.dx)), int(round(sh.dy))), sh.sigma)
        screen = screen * (1.0 - np.float32(sh.strength) * occ)[..., None]

    fg_spill = fg
    if scene.spill.strength > 0 and covered.any():
        sp = scene.spill
        edge = np.clip(1.0 - blur(alpha, sp.sigma), 0.0, 1.0)
        amount = np.where(covered, np.float32(sp.base) + np.float32(sp.strength) * edge, 0.0)
        fg_spill = fg + amount[..., None] * sp.tint

    e = np.float32(scene.camera.exposure)
    fg, fg_spill, screen = fg * e, fg_spill * e, screen * e
    a = alpha[..., None]
    image = a * fg_spill + (1.0 - a) * screen
    return Clean(
        image.astype(np.float32),
        alpha,
        fg.astype(np.float32),
        fg_spill.astype(np.float32),
        screen.astype(np.float32),
    )


def render_plate(scene: Scene, t: float, rng: np.random.Generator) -> Plate:
    """Render the scene at time t and pass it through the camera (rng drives the noise)."""
    clean = render_clean(scene, t)
    plate = apply_camera(clean.image, scene.camera, rng)
    return Plate(plate, clean.alpha, clean.fg, clean.screen, scene.tags)


def generate_clean(seed: int, height: int, width: int, kinds: Sequence[str] | None = None) -> Clean:
    """The pre-camera composite of generate_plate(seed, ...): for checking GT exactness."""
    rng = np.random.default_rng(seed)
    return render_clean(sample_scene(rng, height, width, kinds))


def generate_plate(
    seed: int,
    height: int,
    width: int,
    kinds: Sequence[str] | None = None,
    lighting: LightingMix = DEFAULT_LIGHTING,
    camera_mix: CameraMix = DEFAULT_CAMERA_MIX,
    subject_mix: SubjectMix = DEFAULT_SUBJECT_MIX,
) -> Plate:
    """Generate one plate with exact ground truth; the same seed gives identical arrays.

    kinds: None for a random mix. Otherwise the element kinds listed ("solid", "hair",
    "fur", "semi_transparent", "thin") are exactly the ones drawn ("hair" may bring the head
    it grows on, tagged "solid"); modifiers listed ("motion_blur", "defocus", "greenish_fg",
    "hdr", "large") are applied and no others; "empty" gives a plate with no subject;
    "dark_screen"/"bright_screen", "markers"/"no_markers", "shadow", "spill"/"no_spill" and a camera
    mode ("float", "8bit", "8bit_420", "10bit_422") force those choices. The returned
    Plate.kinds lists what was actually drawn.
    """
    rng = np.random.default_rng(seed)
    scene = sample_scene(rng, height, width, kinds, lighting, camera_mix, subject_mix)
    return render_plate(scene, 0.0, rng)
