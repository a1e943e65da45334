"""Software-defined assets, one module per aggregate family."""
