"""Ocean Binary Protocol: pure codec, deframer, message table, and the serial driver."""

from device.obp.driver import ObpSpectrometer, open_spectrometer
from device.obp.errors import ErrorCode, FrameError, ObpError

__all__ = ["ErrorCode", "FrameError", "ObpError", "ObpSpectrometer", "open_spectrometer"]
