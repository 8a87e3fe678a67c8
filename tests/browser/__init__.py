"""Browser tests (Playwright + Debian's Chromium) against the real app on a loopback port.

A package on purpose: its conftest is then imported as `browser.conftest` and does not replace
the `conftest` module that the other test modules import helpers from (`from conftest import …`).
"""
