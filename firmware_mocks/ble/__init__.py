"""Bumble GATT-server mock of a Wasatch-style BLE Raman spectrometer, with fault injection."""

from firmware_mocks.ble.device import (
    DEFAULT_ADDRESS,
    DEFAULT_EEPROM,
    BleFaults,
    Emission,
    MockRamanSpectrometer,
)
from firmware_mocks.ble.sample import default_sample, synthetic_sample
from firmware_mocks.ble.standalone import run_standalone

__all__ = [
    "DEFAULT_ADDRESS",
    "DEFAULT_EEPROM",
    "BleFaults",
    "Emission",
    "MockRamanSpectrometer",
    "default_sample",
    "run_standalone",
    "synthetic_sample",
]
