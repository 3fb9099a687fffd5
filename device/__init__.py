"""fieldscan.device — spectrometer drivers (serial OBP, Bluetooth LE) over pure protocol codecs."""

from device.errors import DeviceError

__all__ = ["DeviceError"]
