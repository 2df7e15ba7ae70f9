"""Receipt coupon: render + send one coupon to a TCP printer on loopback (p50/p99).

Render is ``Layout.render`` (python-escpos ``Dummy``); send is the real driver's job on a fresh
connection: DLE EOT status before, the coupon bytes, status after. The printer is the test
suite's loopback sink, so this excludes the printer's own print time, as the spec asks. The
issue + sign steps are measured by the issuing benchmark, which calls the same
``render_and_send``.
"""

from __future__ import annotations

from bench.report import figure, latency
from config.printer import PrinterConfig
from edge_agent.printing.document import sample_document
from edge_agent.printing.layout import Layout
from edge_agent.printing.print_worker import render_and_send
from hardware.printer.escpos_printer import EscposPrinter
from hardware.printer.tcp_sink import PrinterSink

N = 300


def main() -> None:
    sink = PrinterSink()
    try:
        for label, cfg in (
            ("80mm native QR", PrinterConfig(profile="TM-T88V", paper_width_mm=80)),
            ("58mm raster QR", PrinterConfig(profile="POS-5890", paper_width_mm=58)),
        ):
            layout = Layout(cfg)
            printer = EscposPrinter(kind="network", profile=cfg.paper().name, port=sink.port)
            doc = sample_document()
            render_and_send(layout.render, printer, doc)  # warm-up (imports, first connect)
            render_s, total_s = [], []
            for _ in range(N):
                t = render_and_send(layout.render, printer, doc)
                render_s.append(t.render_s)
                total_s.append(t.total_s)
            latency(f"print {label} render", render_s)
            latency(f"print {label} render+send", total_s, target_p99_us=50_000)
            figure(f"print {label} bytes", len(layout.render(doc)), "bytes")
    finally:
        sink.close()


if __name__ == "__main__":
    main()
