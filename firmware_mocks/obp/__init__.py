"""An emulated OBP Raman module on a pseudo-terminal, with fault injection."""

from firmware_mocks.obp.faults import Faults, parse_fault
from firmware_mocks.obp.instrument import EmulatedModule, ModuleSpec
from firmware_mocks.obp.pty_server import PtyMock
from firmware_mocks.obp.samples import resolve_sample

__all__ = ["EmulatedModule", "Faults", "ModuleSpec", "PtyMock", "parse_fault", "resolve_sample"]
