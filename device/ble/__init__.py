"""Bluetooth LE Raman spectrometers (Wasatch-style GATT profile) through bleak.

- :mod:`device.ble.protocol` — the pure codec (GENERIC framing, status codes, SPECTRA
  reassembly, EEPROM parsing), tested byte for byte;
- :class:`WasatchBLE` — the async driver (``async with WasatchBLE(address, backend=…)``);
- :func:`open_spectrometer` / :func:`discover` — the blocking API the CLI uses;
- :mod:`device.ble.bumble_backend` — a bleak backend over bumble's in-process virtual link.

Set ``FIELDSCAN_BLE_BACKEND=mock`` to make :func:`open_spectrometer` and :func:`discover`
talk to an in-process firmware mock instead of a radio (CI, demos).
"""

from device.ble.driver import WasatchBLE
from device.ble.sync import BleSpectrometer, DiscoveredDevice, discover, open_spectrometer

__all__ = ["BleSpectrometer", "DiscoveredDevice", "WasatchBLE", "discover", "open_spectrometer"]
