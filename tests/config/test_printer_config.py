"""The printer config section: defaults, bounds, template rules, profile/paper consistency."""

from __future__ import annotations

import pytest

from config.load import ConfigError, parse_config
from config.model import AgentConfig


def test_defaults_print_on_80mm_with_native_qr() -> None:
    printer = AgentConfig().printer
    assert printer.paper().name == "TM-T88V" and printer.use_native_qr()
    assert printer.timeout_s <= 5  # never python-escpos's 60 s


@pytest.mark.parametrize(
    ("section", "needle"),
    [
        ({"port": 0}, "printer.port"),
        ({"timeout_s": 60}, "printer.timeout_s"),
        ({"paper_width_mm": 76}, "printer.paper_width_mm"),
        ({"profile": "POS-5890"}, "58 mm"),
        ({"profile": "POS-5890", "paper_width_mm": 58, "native_qr": "yes"}, "native QR"),
        ({"template": [{"text": "{code} {expiry} {reprint}"}]}, "qr"),
        ({"template": [{"text": "{qr} {code}"}]}, "alone"),
        (
            {"template": [{"text": "{qr}"}, {"text": "{coupon} {code} {expiry} {reprint}"}]},
            "coupon",
        ),
        ({"retry_base_s": 10, "retry_cap_s": 5}, "retry_cap_s"),
        ({"colour": "red"}, "printer.colour"),
    ],
)
def test_bad_printer_settings_are_refused(section: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"printer": section})
    assert needle in str(err.value)


def test_unknown_model_with_its_paper_width_is_accepted() -> None:
    cfg = parse_config({"printer": {"profile": "TM-m30", "paper_width_mm": 80}})
    assert cfg.printer.paper().name == "TM-T20II"
    cfg = parse_config({"printer": {"profile": "Acme-58", "paper_width_mm": 58}})
    assert cfg.printer.paper().name == "POS-5890" and not cfg.printer.use_native_qr()
