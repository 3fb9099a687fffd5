"""fieldscan — thin wiring of device/, spectra/ and service/: the CLI, the station and the demo."""

__version__ = "0.1.0"
