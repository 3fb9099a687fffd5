"""What every spectrometer driver offers, whatever its transport (serial OBP, Bluetooth LE)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable

from spectra.spectrum import Spectrum


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """Identity and calibration read from the instrument when it is opened."""

    model: str
    serial: str
    pixel_count: int
    wavelength_coeffs: tuple[float, ...]  # wavelength (nm) = Σ c[i] · pixel**i
    laser_nm: float | None = None
    firmware: str | None = None
    transport: str = ""  # "serial:/dev/ttyUSB0", "ble:AA:BB:…"
    extra: dict[str, Any] = field(default_factory=dict)  # battery %, TE temperature, …

    def to_dict(self) -> dict[str, Any]:
        """JSON-able mapping, as printed by ``fieldscan scan --json``."""
        out = asdict(self)
        out["wavelength_coeffs"] = list(self.wavelength_coeffs)
        return out


@dataclass(frozen=True, slots=True)
class AcquisitionSettings:
    """What the officer (or the CLI) asks of one acquisition."""

    integration_time_ms: float = 100.0
    averages: int = 1
    laser: bool = True
    dark_subtract: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.integration_time_ms <= 60_000:
            raise ValueError(
                f"integration time must be in (0, 60000] ms, got {self.integration_time_ms}"
            )
        if not 1 <= self.averages <= 1000:
            raise ValueError(f"averages must be in [1, 1000], got {self.averages}")


@runtime_checkable
class Spectrometer(Protocol):
    """A connected instrument. Synchronous; a driver over an async stack hides its loop."""

    def identify(self) -> DeviceInfo:
        """Identity and calibration (cached after the first call)."""
        ...

    def acquire(self, settings: AcquisitionSettings) -> Spectrum:
        """Configure, acquire and return a Raman spectrum (axis in cm⁻¹ Raman shift)."""
        ...

    def close(self) -> None:
        """Release the port or link; idempotent."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class ClosingSpectrometer:
    """Mixin: ``with`` support for a driver whose ``close()`` is idempotent."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
