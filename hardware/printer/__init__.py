"""Receipt printers: the python-escpos driver and its simulated twin (same port, same contract)."""
