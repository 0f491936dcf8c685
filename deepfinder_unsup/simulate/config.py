"""Simulation parameters and their domain randomisation: each may be fixed, a range, or a set of choices.

A parameter is given as a number (fixed), ``[lo, hi]`` (uniform), ``{"log": [lo, hi]}`` (log-uniform) or
``{"choices": [...]}``; every sub-tomogram draws its own values. A JSON file with any subset of the fields of
:class:`SimConfig` overrides the defaults (``deepfinder-unsup simulate --config FILE``).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..io.files import InputError, require_file
from .microscope import Microscope


def draw(spec: Any, rng: np.random.Generator):
    """One value of a parameter spec (number, [lo, hi], {"log": [lo, hi]}, {"choices": [...]})."""
    if isinstance(spec, dict):
        if "choices" in spec:
            return spec["choices"][int(rng.integers(len(spec["choices"])))]
        if "log" in spec:
            lo, hi = spec["log"]
            return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
        raise InputError(f"unknown parameter spec {spec!r}")
    if isinstance(spec, (list, tuple)):
        lo, hi = spec
        return float(rng.uniform(lo, hi))
    return spec


SNR_REFERENCES = ("box", "particle")
FIXED_FIELDS = ("box_size", "voxel_size", "margin", "wobble", "p_membrane", "membrane_bound", "negative_class")
# what the picks of one tomogram share: the microscope, the reconstruction, the noise (``one_acquisition``)
ACQUISITION_FIELDS = (
    "sim_voxel_size",
    "snr",
    "snr_reference",
    "defocus_um",
    "tilt_max",
    "tilt_min",
    "tilt_step",
    "tilt_scheme",
    "tilt_error_deg",
    "voltage_kv",
    "cs_mm",
    "amplitude_contrast",
    "phase_plate",
    "total_dose",
    "bfactor",
    "ctf_correction",
    "wbp_filter",
    "sirt_iterations",
    "noise_colour",
    "lowpass",
    "polarity",
)


def _finite_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and bool(np.isfinite(value))


def check_spec(name: str, spec: Any) -> None:
    """One clear error for a parameter spec ``draw`` cannot draw from: a range that is not two finite numbers
    in order, a log range not above 0, an empty set of choices, an unknown kind of spec."""
    if isinstance(spec, dict):
        if set(spec) == {"choices"}:
            if not isinstance(spec["choices"], (list, tuple)) or not spec["choices"]:
                raise InputError(f"{name} {spec!r}: 'choices' must be a non-empty list")
            return
        if set(spec) == {"log"}:
            if not isinstance(spec["log"], (list, tuple)):
                raise InputError(f"{name} {spec!r}: 'log' must be a range [lo, hi]")
            check_spec(name, spec["log"])
            if spec["log"][0] <= 0:
                raise InputError(f"{name} {spec!r}: a log-uniform range must be above 0")
            return
        raise InputError(f"{name} {spec!r}: a spec is a number, [lo, hi], {{'log': [lo, hi]}} or {{'choices': [...]}}")
    if isinstance(spec, (list, tuple)):
        if len(spec) != 2 or not all(_finite_number(v) for v in spec):
            raise InputError(f"{name} {list(spec)!r}: a range is two finite numbers [lo, hi]")
        if spec[0] > spec[1]:
            raise InputError(f"{name} {list(spec)!r}: the range runs backwards (lo above hi)")


def spec_bounds(spec: Any) -> tuple[float, float] | None:
    """The smallest and largest number a (checked) spec can draw; None when it draws no numbers."""
    if isinstance(spec, dict):
        values = spec.get("log") or [v for v in spec["choices"] if _finite_number(v)]
    elif isinstance(spec, (list, tuple)):
        values = list(spec)
    else:
        values = [spec] if _finite_number(spec) else []
    return (float(min(values)), float(max(values))) if values else None


@dataclass
class SimConfig:
    """Everything that defines a simulated sub-tomogram data set (defaults: broad domain randomisation)."""

    box_size: int = 40  # output box (voxels)
    voxel_size: float = 10.0  # output voxel size (Å)
    margin: int = 8  # simulated box = box_size + 2 margin (output voxels), then cropped
    sim_voxel_size: Any = field(default_factory=lambda: {"choices": [6.0, 8.0, 10.0, 10.0, 12.0, 13.68, 16.0]})
    snr: Any = field(default_factory=lambda: {"log": [0.03, 1.0]})
    # what the SNR is of: "box" (everything in it) or "particle" (the central particle alone; negatives: a
    # random structure reconstructed for its power, not placed): context then adds signal, not noise
    snr_reference: Any = "box"
    defocus_um: Any = field(default_factory=lambda: [1.0, 6.0])
    tilt_max: Any = field(default_factory=lambda: {"choices": [45, 50, 55, 60, 65, 70]})
    tilt_min: Any = field(default_factory=lambda: {"choices": [-70, -65, -60, -55, -50, -45]})
    tilt_step: Any = field(default_factory=lambda: {"choices": [1.5, 2, 3, 3, 4]})
    tilt_scheme: Any = field(default_factory=lambda: {"choices": ["dose-symmetric", "bidirectional"]})
    tilt_error_deg: Any = field(default_factory=lambda: {"choices": [0.0, 0.0, 0.3, 0.7]})
    voltage_kv: Any = field(default_factory=lambda: {"choices": [300, 300, 200]})
    cs_mm: Any = 2.7
    amplitude_contrast: Any = field(default_factory=lambda: [0.05, 0.15])
    phase_plate: Any = field(default_factory=lambda: {"choices": [False, False, False, False, True]})
    total_dose: Any = field(default_factory=lambda: [40.0, 180.0])
    bfactor: Any = field(default_factory=lambda: [0.0, 1500.0])
    ctf_correction: Any = field(default_factory=lambda: {"choices": ["none", "flip", "flip", "multiply"]})
    wbp_filter: Any = field(default_factory=lambda: {"choices": ["ramp", "shepp-logan", "cosine", "hamming", "sirt"]})
    sirt_iterations: Any = field(default_factory=lambda: {"choices": [5, 10, 20]})
    noise_colour: Any = field(default_factory=lambda: {"choices": [0.0, 0.0, 0.5, 1.0]})  # noise power ~ 1/|k|^beta
    lowpass: Any = field(default_factory=lambda: {"choices": [None, None, None, 0.6, 0.4]})  # fraction of Nyquist
    background: Any = field(default_factory=lambda: [0.0, 0.3])  # smooth cytoplasm-like density (x protein)
    wobble: bool = True  # procedural structures: small rigid-body motion of subunits
    polarity: Any = field(default_factory=lambda: {"choices": [1, -1]})  # -1: protein bright
    shift_max: Any = 2.0  # random centre offset, voxels (uniform in a ball)
    n_neighbours: Any = field(default_factory=lambda: {"choices": [0, 1, 1, 2, 2, 3, 4]})
    p_membrane: float = 0.25  # chance of a membrane in the box
    membrane_bound: list = field(default_factory=list)  # class names always simulated on a membrane
    negative_class: bool = True  # add class 0: no central particle

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Refuse, naming the parameter, what no draw could make a microscope of."""
        for f in dataclasses.fields(self):
            if f.name not in FIXED_FIELDS:
                check_spec(f.name, getattr(self, f.name))
        kinds = self.snr_reference.get("choices", []) if isinstance(self.snr_reference, dict) else [self.snr_reference]
        if not kinds or any(k not in SNR_REFERENCES for k in kinds):
            raise InputError(f"snr_reference {self.snr_reference!r}: choose from {', '.join(SNR_REFERENCES)}")
        low, high = spec_bounds(self.tilt_min), spec_bounds(self.tilt_max)
        if low is None or high is None or low[0] < -90 or high[1] > 90 or low[1] >= high[0]:
            raise InputError(
                f"tilt_min {self.tilt_min!r} and tilt_max {self.tilt_max!r}: every draw must give "
                "-90 <= tilt_min < tilt_max <= 90 degrees"
            )

    def microscope(self, rng: np.random.Generator) -> Microscope:
        """One draw of the acquisition. A phase plate shifts the phase by pi/2 and works near focus."""
        phase_plate = bool(draw(self.phase_plate, rng))
        defocus = float(draw(self.defocus_um, rng))
        return Microscope(
            tilt_min=float(draw(self.tilt_min, rng)),
            tilt_max=float(draw(self.tilt_max, rng)),
            tilt_step=float(draw(self.tilt_step, rng)),
            voltage_kv=float(draw(self.voltage_kv, rng)),
            cs_mm=float(draw(self.cs_mm, rng)),
            amplitude_contrast=float(draw(self.amplitude_contrast, rng)),
            defocus_um=defocus / 4 if phase_plate else defocus,
            total_dose=float(draw(self.total_dose, rng)),
            bfactor=float(draw(self.bfactor, rng)),
            ctf_correction=str(draw(self.ctf_correction, rng)),
            phase_shift=np.pi / 2 if phase_plate else 0.0,
            tilt_scheme=str(draw(self.tilt_scheme, rng)),
            tilt_error_deg=float(draw(self.tilt_error_deg, rng)),
            tilt_error_pattern=int(rng.integers(8)),
            wbp_filter=str(draw(self.wbp_filter, rng)),
            sirt_iterations=int(draw(self.sirt_iterations, rng)),
        )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_file(cls, path) -> SimConfig:
        path = require_file(path, "simulation config")
        try:
            values = json.loads(Path(path).read_text())
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: not valid JSON ({exc})") from None
        return cls.from_dict(values, where=str(path))

    @classmethod
    def from_dict(cls, values: dict, where: str = "config") -> SimConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - names
        if unknown:
            raise InputError(f"{where}: unknown simulation parameter(s) {', '.join(sorted(unknown))}")
        try:
            return cls(**values)
        except InputError as exc:
            raise InputError(f"{where}: {exc}") from None


def one_acquisition(config: SimConfig, rng: np.random.Generator) -> SimConfig:
    """``config`` with each of ``ACQUISITION_FIELDS`` drawn once: sub-tomograms simulated with it share one
    microscope, reconstruction and noise level, as the picks of one tomogram do, while each particle's pose,
    position, neighbours, membrane and background are still drawn for it."""
    values = config.to_dict()
    for name in ACQUISITION_FIELDS:
        values[name] = draw(values[name], rng)
    return SimConfig(**values)


def fixed_config(**overrides) -> SimConfig:
    """A config without randomisation (mid values), for tests and controlled experiments."""
    base: dict[str, Any] = dict(
        sim_voxel_size=10.0,
        snr=0.2,
        defocus_um=3.0,
        tilt_max=60,
        tilt_min=-60,
        tilt_step=3,
        tilt_scheme="dose-symmetric",
        tilt_error_deg=0.0,
        voltage_kv=300,
        amplitude_contrast=0.07,
        phase_plate=False,
        total_dose=100.0,
        bfactor=0.0,
        ctf_correction="none",
        wbp_filter="ramp",
        sirt_iterations=10,
        noise_colour=0.0,
        lowpass=None,
        background=0.0,
        wobble=False,
        polarity=1,
        shift_max=0.0,
        n_neighbours=0,
        p_membrane=0.0,
    )
    base.update(overrides)
    return SimConfig(**base)
