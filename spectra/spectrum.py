"""The immutable :class:`Spectrum` value that every layer passes around."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from spectra.errors import SpectrumValueError

FloatArray = npt.NDArray[np.float64]

#: Fewer points than this cannot carry a usable vibrational fingerprint.
MIN_POINTS = 16


class SpectrumKind(enum.StrEnum):
    """What the axis and the intensities mean."""

    RAMAN = "raman"  # axis: Raman shift, cm⁻¹
    IR_ABSORBANCE = "ir_absorbance"  # axis: wavenumber, cm⁻¹
    NIR = "nir"  # axis: wavenumber, cm⁻¹


@dataclass(frozen=True, slots=True)
class Acquisition:
    """How a spectrum was measured. Every field is optional: files often omit them."""

    device_model: str | None = None
    device_serial: str | None = None
    firmware: str | None = None
    laser_nm: float | None = None
    integration_time_ms: float | None = None
    averages: int | None = None
    timestamp: datetime | None = None
    operator: str | None = None

    def __post_init__(self) -> None:
        for name in ("laser_nm", "integration_time_ms"):
            value = getattr(self, name)
            if value is not None and not (np.isfinite(value) and value > 0):
                raise SpectrumValueError(f"{name} must be a positive finite number, got {value!r}")
        if self.averages is not None and self.averages < 1:
            raise SpectrumValueError(f"averages must be >= 1, got {self.averages!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able mapping (timestamp as ISO 8601)."""
        out: dict[str, Any] = {}
        for name in self.__slots__:
            value = getattr(self, name)
            out[name] = value.isoformat() if isinstance(value, datetime) else value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Acquisition:
        """Inverse of :meth:`to_dict`; unknown keys are ignored."""
        kwargs = {k: data[k] for k in cls.__slots__ if data.get(k) is not None}
        if isinstance(kwargs.get("timestamp"), str):
            kwargs["timestamp"] = datetime.fromisoformat(kwargs["timestamp"])
        return cls(**kwargs)


def _frozen(values: npt.ArrayLike, what: str) -> FloatArray:
    try:
        array = np.array(values, dtype=np.float64)  # a copy: callers keep their own arrays
    except (TypeError, ValueError) as exc:
        raise SpectrumValueError(f"{what} is not numeric: {exc}") from None
    if array.ndim != 1:
        raise SpectrumValueError(f"{what} must be one-dimensional, got shape {array.shape}")
    return array


@dataclass(frozen=True, slots=True, eq=False)
class Spectrum:
    """One measured or reference spectrum.

    The axis is in cm⁻¹ (Raman shift for :attr:`SpectrumKind.RAMAN`, wavenumber
    otherwise) and is stored ascending; a descending input is sorted together
    with its intensities. Arrays are copied and made read-only.

    Raises
    ------
    SpectrumValueError
        (a ``ValueError``) when lengths differ, there are fewer than 16 points,
        a value is not finite, or two axis points coincide.
    """

    axis: FloatArray
    intensities: FloatArray
    kind: SpectrumKind = SpectrumKind.RAMAN
    name: str = ""
    acquisition: Acquisition = field(default_factory=Acquisition)

    def __post_init__(self) -> None:
        axis = _frozen(self.axis, "axis")
        values = _frozen(self.intensities, "intensities")
        if axis.shape != values.shape:
            raise SpectrumValueError(
                f"axis has {axis.size} points but intensities have {values.size}"
            )
        if axis.size < MIN_POINTS:
            raise SpectrumValueError(
                f"a spectrum needs at least {MIN_POINTS} points, got {axis.size}"
            )
        for what, array in (("axis", axis), ("intensities", values)):
            bad = np.flatnonzero(~np.isfinite(array))
            if bad.size:
                raise SpectrumValueError(
                    f"{what} has {bad.size} non-finite value(s) (NaN or inf), "
                    f"first at index {bad[0]}"
                )
        order = np.argsort(axis, kind="stable")
        axis, values = axis[order], values[order]
        repeated = np.flatnonzero(np.diff(axis) == 0)
        if repeated.size:
            raise SpectrumValueError(f"axis is not strictly monotonic: {axis[repeated[0]]} repeats")
        axis.flags.writeable = False
        values.flags.writeable = False
        object.__setattr__(self, "axis", axis)
        object.__setattr__(self, "intensities", values)
        object.__setattr__(self, "kind", SpectrumKind(self.kind))

    def __len__(self) -> int:
        return int(self.axis.size)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Spectrum):
            return NotImplemented
        return (
            self.kind == other.kind
            and self.name == other.name
            and self.acquisition == other.acquisition
            and np.array_equal(self.axis, other.axis)
            and np.array_equal(self.intensities, other.intensities)
        )

    __hash__ = None  # type: ignore[assignment]  # arrays make it unhashable, like list

    def with_values(
        self, intensities: npt.ArrayLike, axis: npt.ArrayLike | None = None
    ) -> Spectrum:
        """A new spectrum with the same kind, name and metadata but other values."""
        new_axis = self.axis if axis is None else np.asarray(axis, dtype=np.float64)
        return replace(self, intensities=np.asarray(intensities, dtype=np.float64), axis=new_axis)

    def renamed(self, name: str) -> Spectrum:
        """A copy carrying another name."""
        return replace(self, name=name)
