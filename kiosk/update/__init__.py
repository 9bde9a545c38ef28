"""The unit's signed A/B updates: two root slots, RAUC bundles, a boot that tries a new slot
once and falls back by itself (docs/updates.md)."""
