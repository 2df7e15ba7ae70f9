"""Pure domain core: values in, values out; no files, sockets or clocks."""
