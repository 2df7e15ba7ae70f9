"""The BLE scanner harness: bleak against a simulated BlueZ on a private D-Bus, and the twin."""
