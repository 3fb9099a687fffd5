"""Emulated spectrometers that speak the real wire protocols over real transports, with faults."""
