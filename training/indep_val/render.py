"""Render a SceneSpec with Mitsuba 3 into a plate and its exact ground truth.

Four passes of the same scene share the sampler (Mitsuba's `ldsampler`, whose camera-ray
positions depend only on pixel, sample index and seed) and a box pixel filter (the sensor
pixel's area; no splatting across render blocks, so the result does not depend on thread
timing), so sub-pixel coverage is the same in every pass and the render is repeatable:

- plate: screen, subject and lights; path tracing carries the screen's light onto the
  subject (spill), the subject's shadows onto the screen, and hair/glass interreflection;
- screen: the same without the subject (the clean plate);
- fg: the subject and lights without the screen, over black: the premultiplied foreground
  free of spill (no screen light reaches it);
- transmit: the subject made black (reflectance 0; thin glass and opacity masks keep their
  transmission), the screen a uniform unit emitter, no other light. Each pixel is then the
  fraction of camera-ray energy that passes the subject and reaches the screen, so
  alpha = 1 - transmit exactly for what the renderer models (sub-pixel coverage of curves,
  masks' partial opacity, thin-glass Fresnel transmission, depth of field). The passes
  make the same random decisions per camera sample, so alpha matches the plate sample for
  sample (tests: plate = alpha * fg + (1 - alpha) * screen to float rounding where nothing
  spills or shadows); against the noise-free limit, stochastic transmission (glass) carries
  the pass's Monte Carlo noise (about 0.02 at 16 samples per pixel).

The straight foreground is fg / alpha. All radiance passes are scaled by one exposure so the
clean screen sits at the scene's chosen level, then camera noise is added to the plate only.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from . import assets
from .scene_spec import Light, Material, SceneSpec, Shape

VARIANT = "scalar_rgb"  # the LLVM variants need a libLLVM the wheel does not ship; scalar works everywhere
SPP = 16  # ldsampler needs a power-of-4 count; 16 keeps a 24-plate set to minutes on 2 cores
MAX_DEPTH = 6  # camera-subject-screen-light: spill needs 3; hair/glass a few more
ALPHA_EPS = 1e-3
MOTION_SUBFRAMES = 8  # a moving subject's sub-frames per plate
MIN_SUBFRAME_SPP = 4  # ldsampler rounds smaller counts up to 4


def mitsuba():
    """Import Mitsuba with the CPU variant set (ImportError with the reason when it is missing)."""
    import mitsuba as mi

    if mi.variant() != VARIANT:
        mi.set_variant(VARIANT)
    return mi


def renderer_version() -> str:
    import mitsuba as mi

    return f"mitsuba {mi.__version__} ({VARIANT})"


@dataclass
class Rendered:
    """One plate and its ground truth, linear float32."""

    plate: np.ndarray  # HxWx3, with camera noise
    alpha: np.ndarray  # HxW in [0, 1]
    fg: np.ndarray  # HxWx3 straight, spill-free (0 where alpha is 0)
    fg_premult: np.ndarray  # HxWx3, the fg pass itself
    screen: np.ndarray  # HxWx3 clean plate (noise-free render)
    plate_clean: np.ndarray  # HxWx3 plate before camera noise


class _Dicts:
    """Builds Mitsuba scene dictionaries for the passes of one SceneSpec."""

    def __init__(self, spec: SceneSpec, tmp: Path) -> None:
        self.mi = mitsuba()
        self.spec = spec
        self.tmp = tmp
        self._files = 0

    def _file(self, suffix: str) -> Path:
        self._files += 1
        return self.tmp / f"f{self._files}{suffix}"

    def _bitmap(self, arr: np.ndarray) -> dict:
        return {
            "type": "bitmap",
            "bitmap": self.mi.Bitmap(np.ascontiguousarray(arr, np.float32)),
            "raw": True,
            "filter_type": "bilinear",
        }

    def _albedo(self, m: Material) -> dict:
        if m.photo:
            return self._bitmap(np.minimum(assets.photo_albedo(m.photo) * np.array(m.rgb, np.float32), 0.9))
        return {"type": "rgb", "value": list(m.rgb)}

    def bsdf(self, m: Material, black: bool, two_sided: bool) -> dict:
        if m.kind == "thin_glass":
            return {"type": "thindielectric"}  # colourless: its transmission is a grey alpha
        if black or m.kind == "emitter":
            inner: dict = {"type": "diffuse", "reflectance": {"type": "rgb", "value": [0.0, 0.0, 0.0]}}
        elif m.kind == "hair":
            inner = {"type": "hair"}
            if m.hair_sigma_a is not None:
                inner["sigma_a"] = {"type": "rgb", "value": list(m.hair_sigma_a)}
            else:
                inner["eumelanin"], inner["pheomelanin"] = m.melanin
        elif m.kind == "plastic":
            inner = {"type": "roughplastic", "diffuse_reflectance": self._albedo(m), "alpha": m.roughness}
        else:
            inner = {"type": "diffuse", "reflectance": self._albedo(m)}
        if two_sided:
            inner = {"type": "twosided", "bsdf": inner}
        if m.opacity:
            op = assets.opacity_pattern(m.opacity, m.pattern_seed)
            inner = {"type": "mask", "opacity": self._bitmap(op[..., None]), "bsdf": inner}
        return inner

    def _curves_file(self, curves: list[np.ndarray]) -> str:
        path = self._file(".txt")
        with open(path, "w") as f:
            for c in curves:
                for x, y, z, r in c:
                    f.write(f"{x:.6f} {y:.6f} {z:.6f} {r:.6f}\n")
                f.write("\n")
        return str(path)

    def shape(self, s: Shape, black: bool) -> dict:
        T = self.mi.ScalarTransform4f
        if s.kind == "sphere":
            d: dict = {"type": "sphere", "center": list(s.center), "radius": s.radius}
        elif s.kind == "cylinder":
            d = {"type": "cylinder", "p0": list(s.p0), "p1": list(s.p1), "radius": s.radius}
        elif s.kind == "quad":
            d = {"type": "rectangle", "to_world": T(np.asarray(s.matrix, np.float64).tolist())}
        elif s.kind in ("curves", "lines"):
            d = {
                "type": "bsplinecurve" if s.kind == "curves" else "linearcurve",
                "filename": self._curves_file(s.curves),
            }
        else:
            raise ValueError(f"unknown shape kind {s.kind!r}")
        d["bsdf"] = self.bsdf(s.material, black, two_sided=s.kind in ("quad", "cylinder"))
        if s.material.kind == "emitter" and not black:
            d["emitter"] = {"type": "area", "radiance": {"type": "rgb", "value": list(s.material.rgb)}}
        return d

    def screen(self, emitter: bool) -> dict:
        sp = self.spec
        half_h = sp.screen_depth * np.tan(np.deg2rad(sp.fov_deg) / 2) * 1.6 + 0.3
        half_w = half_h * sp.width / sp.height
        v, f, n = assets.wrinkled_screen(sp.screen_depth, half_w, half_h, sp.wrinkle_amp, sp.wrinkle_seed)
        path = self._file(".obj")
        with open(path, "w") as fh:
            fh.writelines(f"v {a:.6f} {b:.6f} {c:.6f}\n" for a, b, c in v)
            fh.writelines(f"vn {a:.6f} {b:.6f} {c:.6f}\n" for a, b, c in n)
            fh.writelines(f"f {a + 1}//{a + 1} {b + 1}//{b + 1} {c + 1}//{c + 1}\n" for a, b, c in f)
        d: dict = {"type": "obj", "filename": str(path)}
        if emitter:
            d["bsdf"] = {"type": "diffuse", "reflectance": {"type": "rgb", "value": [0.0, 0.0, 0.0]}}
            d["emitter"] = {"type": "area", "radiance": {"type": "rgb", "value": [1.0, 1.0, 1.0]}}
        else:
            albedo = list(sp.screen_rgb) if sp.screen_reflects else [0.0, 0.0, 0.0]
            d["bsdf"] = {"type": "diffuse", "reflectance": {"type": "rgb", "value": albedo}}
            if sp.screen_emission > 0:
                glow = [c * sp.screen_emission for c in sp.screen_rgb]
                d["emitter"] = {"type": "area", "radiance": {"type": "rgb", "value": glow}}
        return d

    def light(self, li: Light) -> dict:
        T = self.mi.ScalarTransform4f
        up = (
            [0.0, 1.0, 0.0]
            if abs(li.target[1] - li.position[1]) < 0.95 * np.linalg.norm(np.subtract(li.target, li.position))
            else [1.0, 0.0, 0.0]
        )
        frame = T().look_at(origin=list(li.position), target=list(li.target), up=up)
        if li.kind == "spot":
            return {
                "type": "spot",
                "to_world": frame,
                "intensity": {"type": "rgb", "value": list(li.rgb)},
                "cutoff_angle": li.cutoff_deg,
                "beam_width": li.cutoff_deg * 0.6,
            }
        return {
            "type": "rectangle",
            "to_world": frame @ T().scale([li.size / 2, li.size / 2, 1.0]),
            "bsdf": {"type": "diffuse", "reflectance": {"type": "rgb", "value": [0.0, 0.0, 0.0]}},
            "emitter": {"type": "area", "radiance": {"type": "rgb", "value": list(li.rgb)}},
        }

    def sensor(self, spp: int) -> dict:
        sp = self.spec
        T = self.mi.ScalarTransform4f
        d: dict = {
            "type": "thinlens" if sp.aperture > 0 else "perspective",
            "fov": sp.fov_deg,
            "fov_axis": "y",
            "to_world": T().look_at(origin=[0, 0, 0], target=[0, 0, -1], up=[0, 1, 0]),
            "film": {
                "type": "hdrfilm",
                "width": sp.width,
                "height": sp.height,
                "pixel_format": "rgb",
                "rfilter": {"type": "box"},
            },
            "sampler": {"type": "ldsampler", "sample_count": spp},
        }
        if sp.aperture > 0:
            d["aperture_radius"], d["focus_distance"] = sp.aperture, sp.focus
        return d

    def scene(self, pass_name: str, spp: int) -> dict:
        with_screen = pass_name in ("plate", "screen", "transmit")
        with_subject = pass_name in ("plate", "fg", "transmit")
        with_lights = pass_name != "transmit"
        # transmit: deep paths through masks and glass, no Russian roulette (no extra noise)
        integ = (
            {"type": "path", "max_depth": 32, "rr_depth": 64}
            if pass_name == "transmit"
            else {"type": "path", "max_depth": MAX_DEPTH}
        )
        d: dict = {"type": "scene", "integrator": integ, "sensor": self.sensor(spp)}
        if with_screen:
            d["screen"] = self.screen(emitter=pass_name == "transmit")
        if with_subject:
            for i, s in enumerate(self.spec.subject):
                d[f"subject{i}"] = self.shape(s, black=pass_name == "transmit")
        if with_lights:
            for i, li in enumerate(self.spec.lights):
                d[f"light{i}"] = self.light(li)
        return d


def render_passes(spec: SceneSpec, spp: int = SPP, seed: int | None = None) -> dict[str, np.ndarray]:
    """The four raw passes (HxWx3 float32 each), before exposure and noise.

    A moving subject (spec.motion) is rendered as MOTION_SUBFRAMES sub-frames spread over the
    shutter, spp / MOTION_SUBFRAMES samples each (at least MIN_SUBFRAME_SPP), and every pass
    averaged: the passes stay linear in the camera samples, so alpha = 1 - transmit still
    holds exactly.
    """
    mi = mitsuba()
    seed = spec.seed if seed is None else seed
    if not any(spec.motion):
        return _render_frame(mi, spec, spp, seed)
    travel = np.asarray(spec.motion, np.float64)
    total: dict[str, np.ndarray] = {}
    for k in range(MOTION_SUBFRAMES):
        offset = travel * ((k + 0.5) / MOTION_SUBFRAMES - 0.5)
        sub = replace(spec, subject=[shifted(s, offset) for s in spec.subject], motion=(0.0, 0.0, 0.0))
        sub_spp = max(MIN_SUBFRAME_SPP, spp // MOTION_SUBFRAMES)
        frame = _render_frame(mi, sub, sub_spp, seed * MOTION_SUBFRAMES + k)
        for name, img in frame.items():
            total[name] = total.get(name, 0.0) + img / MOTION_SUBFRAMES
    return total


def _render_frame(mi, spec: SceneSpec, spp: int, seed: int) -> dict[str, np.ndarray]:
    out = {}
    with tempfile.TemporaryDirectory(prefix="gsrender_indep_") as tmp:
        dicts = _Dicts(spec, Path(tmp))
        for name in ("plate", "screen", "fg", "transmit"):
            scene = mi.load_dict(dicts.scene(name, spp))
            img = np.array(mi.render(scene, seed=seed & 0x7FFFFFFF, spp=spp), dtype=np.float32)[..., :3]
            out[name] = np.nan_to_num(img, nan=0.0, posinf=0.0, neginf=0.0)
    return out


def shifted(shape: Shape, offset: np.ndarray) -> Shape:
    """The shape moved by `offset` (metres), whatever its kind."""
    d = np.asarray(offset, np.float64)
    if shape.kind == "quad":
        m = np.array(shape.matrix, np.float64)
        m[:3, 3] += d
        return replace(shape, matrix=m)
    if shape.kind in ("curves", "lines"):
        moved = [np.column_stack([c[:, :3] + d.astype(np.float32), c[:, 3:]]) for c in shape.curves]
        return replace(shape, curves=moved)
    return replace(
        shape,
        center=tuple(float(v) for v in np.add(shape.center, d)),
        p0=tuple(float(v) for v in np.add(shape.p0, d)),
        p1=tuple(float(v) for v in np.add(shape.p1, d)),
    )


def finish(spec: SceneSpec, passes: dict[str, np.ndarray]) -> Rendered:
    """Exposure, alpha, straight foreground and camera noise from the raw passes."""
    alpha = np.clip(1.0 - passes["transmit"].mean(axis=2), 0.0, 1.0)
    alpha[alpha < ALPHA_EPS] = 0.0
    alpha[alpha > 1.0 - ALPHA_EPS] = 1.0
    screen_level = float(np.median(passes["screen"].max(axis=2)))
    k = spec.exposure / max(screen_level, 1e-6)
    plate, screen, fg_pre = (passes[n] * k for n in ("plate", "screen", "fg"))
    fg = np.where(alpha[..., None] > 0, fg_pre / np.maximum(alpha[..., None], ALPHA_EPS), 0.0)
    rng = np.random.default_rng([spec.seed, 0xC0FFEE])
    sigma = np.sqrt(spec.noise_gain * np.maximum(plate, 0.0) + spec.noise_read**2)
    noisy = plate + rng.standard_normal(plate.shape) * sigma
    f32 = np.float32
    return Rendered(
        noisy.astype(f32),
        alpha.astype(f32),
        fg.astype(f32),
        fg_pre.astype(f32),
        screen.astype(f32),
        plate.astype(f32),
    )


def render_scene(spec: SceneSpec, spp: int = SPP) -> Rendered:
    """Render one scene into a plate and its exact ground truth."""
    return finish(spec, render_passes(spec, spp))
