"""Command-line front door; the only part of portconv that imports array libraries (to make arrays and time native anchors); the core never imports it."""
