"""The receipt printer section. (Initial shape; the printing work extends it.)"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from config.base import Section


class PrinterConfig(Section):
    kind: Annotated[
        Literal["network", "usb", "serial", "file", "simulated"],
        Field(description="How the printer is reached; 'simulated' is the built-in twin."),
    ] = "simulated"
