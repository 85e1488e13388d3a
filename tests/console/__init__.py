"""The console's browser tests: Playwright driving Debian's Chromium against `gsp demo --keep-running`."""
